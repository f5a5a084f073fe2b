#!/bin/bash
# test-serve-read.sh - reads through `vhd serve` equal `vhd convert --raw` of
# the same chain: corpus disks and chains (a grown leaf, an SR chain,
# vhd-lib's pair, qemu's dynamic, tap's fixed), a raw parent and a 12-level
# chain with partial blocks; with `qemu-img compare` over NBD, `qemu-img
# convert` from nbd+unix:// to a raw file and `nbdcopy -C 4` (four
# connections, block status skipping holes) to a raw file, both compared
# byte for byte; vhd convert's sha256 must also equal the corpus manifest's,
# and every hole in nbdinfo --map reads as zeros in it.
# The SR tree: its active leaf (depth 6) and the clone leaf, whose chain
# goes through the hidden level with sector-granular writes.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdcopy qemu-img
need_corpus
manifest_sha() { awk -F'\t' -v p="$1" '$1 == p { print $6 }' "$CORPUS/MANIFEST.tsv"; }

n=0
check_read() {   # FILE [MANIFEST-PATH]
	local f=$1 want=${2:+$(manifest_sha "$2")}
	rm -f "$TMP/model.raw" "$TMP/copy.raw" "$TMP/qemu.raw"
	"$VHD" convert --raw "$f" "$TMP/model.raw" >/dev/null || fail "$f: vhd convert"
	[ -z "$want" ] || [ "$(raw_sha "$TMP/model.raw")" = "$want" ] || fail "$f: vhd convert differs from the manifest"
	serve_start "$f" --read-only
	qemu-img compare -f raw -F raw "$TMP/model.raw" "$URI" >"$TMP/cmp" 2>&1 ||
		{ cat "$TMP/cmp"; fail "$f: qemu-img compare over NBD differs from vhd convert"; }
	qemu-img convert -f raw -O raw "$URI" "$TMP/qemu.raw" || fail "$f: qemu-img convert from NBD"
	cmp "$TMP/model.raw" "$TMP/qemu.raw" || fail "$f: qemu-img convert over NBD differs from vhd convert"
	# what block status calls a hole must read as zeros (test-serve-map
	# compares it with vhd map --chain)
	nbd_extents "$URI" >"$TMP/nbd.map" || fail "$f: nbdinfo --map"
	holes_read_zero "$TMP/nbd.map" "$TMP/model.raw" || fail "$f: block status says zero where there is data"
	nbdcopy -C 4 "$URI" "$TMP/copy.raw" || fail "$f: nbdcopy -C 4"
	[ "$(raw_sha "$TMP/copy.raw")" = "$(raw_sha "$TMP/model.raw")" ] || fail "$f: nbdcopy's copy differs"
	serve_stop
	n=$((n + 1))
}

cp -r "$CORPUS/good/grow" "$CORPUS/good/sr1" "$CORPUS/good/vhdlib-pair" "$TMP/"
cp "$CORPUS/good/qemu-dyn-data.vhd" "$CORPUS/good/tap-fixed.vhd" "$TMP/"
check_read "$TMP/grow/leaf.vhd" good/grow/leaf.vhd
check_read "$TMP/sr1/6ffe6666-fa72-466d-ba90-0d4688e10883.vhd" good/sr1/6ffe6666-fa72-466d-ba90-0d4688e10883.vhd
check_read "$TMP/sr1/b1082730-6a6d-48ec-b5d2-3309b6d2590d.vhd" good/sr1/b1082730-6a6d-48ec-b5d2-3309b6d2590d.vhd
check_read "$TMP/vhdlib-pair/child.vhd" good/vhdlib-pair/child.vhd
check_read "$TMP/qemu-dyn-data.vhd" good/qemu-dyn-data.vhd
check_read "$TMP/tap-fixed.vhd" good/tap-fixed.vhd

make_raw_child "$TMP/raw" || fail "a child of a raw parent"
check_read "$TMP/raw/child.vhd"

make_chain "$TMP/deep" 11 16 6 || fail "make_chain"
check_read "$TMP/deep/l11.vhd"
[ "$n" -eq 8 ] || fail "$n exports read, expected 8"
pass "$n exports read equal to vhd convert (qemu-img compare, qemu-img convert, nbdcopy -C 4), corpus shas matched"
