#!/bin/bash
# test-serve-map.sh - `nbdinfo --map` (base:allocation, the plugin's block
# status) equal to `vhd map --chain` over the whole disk, data and holes, on
# the corpus: every visible leaf of the SR tree (depth 6, sector-granular
# writes at odd offsets, empty snapshot leaves), the grown leaf (data past
# its parent's end), vhd-lib's pair, qemu's dynamic disks (one whose size is
# not a whole number of blocks), tap's dynamic and fixed disks, qemu's fixed
# disk (a size not a multiple of 4 KiB), an empty 1 GiB disk; and a raw
# parent and a 12-level chain with partial blocks.  Both sides are put in
# the form "OFFSET LENGTH TYPE" with adjacent equal extents merged
# (serve-functions.sh says why) and compared line for line.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdinfo
need_corpus

n=0 extents=0
check_map() {   # FILE
	local f=$1 size
	serve_start "$f" --read-only
	size=$(nbdinfo --size "$URI") || fail "$f: nbdinfo --size"
	nbd_extents "$URI" >"$TMP/nbd.map" || fail "$f: nbdinfo --map"
	serve_stop
	vhd_extents "$f" "$size" >"$TMP/vhd.map" || fail "$f: vhd map --chain"
	[ -s "$TMP/vhd.map" ] || fail "$f: empty map"
	cmp -s "$TMP/vhd.map" "$TMP/nbd.map" ||
		{ diff "$TMP/vhd.map" "$TMP/nbd.map" | head -20; fail "$f: nbdinfo --map differs from vhd map --chain"; }
	n=$((n + 1)) extents=$((extents + $(wc -l <"$TMP/vhd.map")))
	echo "$(basename "$f"): $(wc -l <"$TMP/vhd.map") extents equal"
}

cp -r "$CORPUS/good/grow" "$CORPUS/good/sr1" "$CORPUS/good/vhdlib-pair" "$TMP/"
for f in qemu-dyn-data qemu-dyn-forcesize qemu-fixed tap-dyn-data-256m tap-dyn-empty-1g tap-fixed; do
	cp "$CORPUS/good/$f.vhd" "$TMP/"
	check_map "$TMP/$f.vhd"
done
# the SR tree's visible leaves (hidden 0 in the manifest)
for f in $(awk -F'\t' '$1 ~ /^good\/sr1\// && $11 == 0 { print $1 }' "$CORPUS/MANIFEST.tsv"); do
	check_map "$TMP/sr1/$(basename "$f")"
done
check_map "$TMP/grow/leaf.vhd"
check_map "$TMP/vhdlib-pair/child.vhd"

make_raw_child "$TMP/raw" || fail "a child of a raw parent"
check_map "$TMP/raw/child.vhd"
make_chain "$TMP/deep" 11 16 6 || fail "make_chain"
check_map "$TMP/deep/l11.vhd"
[ "$n" -eq 17 ] || fail "$n exports checked, expected 17 (the corpus changed?)"
# the SR chain's sector-granular writes alone give tens of extents
[ "$extents" -gt 60 ] || fail "only $extents extents in all: not a real test"
pass "$n exports: nbdinfo --map equal to vhd map --chain ($extents extents, data and holes)"
