#!/bin/bash
# test-serve-read.sh - reads through `vhd serve` equal `vhd convert --raw` of
# the same chain: corpus disks and chains (a grown leaf, an SR chain,
# vhd-lib's pair, qemu's dynamic, tap's fixed), a raw parent and a 12-level
# chain with partial blocks; with `qemu-img compare` over NBD and `nbdcopy
# -C 4` (four connections, block status skipping holes) to a raw file,
# whose sha256 must also equal the corpus manifest's.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdcopy qemu-img
need_corpus
manifest_sha() { awk -F'\t' -v p="$1" '$1 == p { print $6 }' "$CORPUS/MANIFEST.tsv"; }

n=0
check_read() {   # FILE [MANIFEST-PATH]
	local f=$1 want=${2:+$(manifest_sha "$2")}
	rm -f "$TMP/model.raw" "$TMP/copy.raw"
	"$VHD" convert --raw "$f" "$TMP/model.raw" >/dev/null || fail "$f: vhd convert"
	[ -z "$want" ] || [ "$(raw_sha "$TMP/model.raw")" = "$want" ] || fail "$f: vhd convert differs from the manifest"
	serve_start "$f" --read-only
	qemu-img compare -f raw -F raw "$TMP/model.raw" "$URI" >"$TMP/cmp" 2>&1 ||
		{ cat "$TMP/cmp"; fail "$f: qemu-img compare over NBD differs from vhd convert"; }
	nbdcopy -C 4 "$URI" "$TMP/copy.raw" || fail "$f: nbdcopy -C 4"
	[ "$(raw_sha "$TMP/copy.raw")" = "$(raw_sha "$TMP/model.raw")" ] || fail "$f: nbdcopy's copy differs"
	serve_stop
	n=$((n + 1))
}

cp -r "$CORPUS/good/grow" "$CORPUS/good/sr1" "$CORPUS/good/vhdlib-pair" "$TMP/"
cp "$CORPUS/good/qemu-dyn-data.vhd" "$CORPUS/good/tap-fixed.vhd" "$TMP/"
check_read "$TMP/grow/leaf.vhd" good/grow/leaf.vhd
check_read "$TMP/sr1/6ffe6666-fa72-466d-ba90-0d4688e10883.vhd" good/sr1/6ffe6666-fa72-466d-ba90-0d4688e10883.vhd
check_read "$TMP/vhdlib-pair/child.vhd" good/vhdlib-pair/child.vhd
check_read "$TMP/qemu-dyn-data.vhd" good/qemu-dyn-data.vhd
check_read "$TMP/tap-fixed.vhd" good/tap-fixed.vhd

mkdir "$TMP/raw"
head -c $((5 * 1024 * 1024 + 1536)) /dev/urandom >"$TMP/raw/disk.img"
"$VHD" snapshot --raw-parent "$TMP/raw/disk.img" "$TMP/raw/child.vhd" >/dev/null || fail "raw-parent snapshot"
random_writes "$TMP/raw/child.vhd" 5 20 64 || fail "writes into the raw parent's child"
check_read "$TMP/raw/child.vhd"

make_chain "$TMP/deep" 11 16 6 || fail "make_chain"
check_read "$TMP/deep/l11.vhd"
pass "$n exports read equal to vhd convert (qemu-img compare, nbdcopy -C 4), corpus shas matched"
