#!/bin/bash
# qemu-img reads what vhdkit writes, and vhdkit reads what qemu writes.
#  - vhdkit images: a dynamic VHD with unaligned random writes crossing
#    blocks, a raw -> dynamic and a raw -> fixed convert, and the flattened
#    convert of a 4-layer chain with unaligned writes in every layer:
#    `qemu-img compare -f vpc IMG -F raw REF` and the sha256 of
#    `qemu-img convert -f vpc -O raw` equal vhdkit's reading.
#  - qemu images (qemu-img create -f vpc, dynamic, fixed and force_size,
#    random qemu-io writes at random sector offsets crossing blocks):
#    `vhd convert` to raw equals `qemu-img convert -O raw`, and
#    `vhd convert` to dynamic compares equal in qemu-img.
. "$(dirname "$0")/functions.sh"
requires qemu-img qemu-io
export LC_ALL=C

# qemu_reads IMG REF: qemu-img sees REF's content in IMG (compare and convert)
qemu_reads() {
	qemu-img compare -q -f vpc "$1" -F raw "$2" || fail "qemu-img compare: $1 differs from $2"
	qemu-img convert -f vpc -O raw "$1" "$TMP/q.raw" || fail "qemu-img convert $1"
	[ "$(raw_sha "$TMP/q.raw")" = "$(raw_sha "$2")" ] || fail "qemu-img convert of $1: sha256 differs"
}

# vhdkit -> qemu
"$VHD" create "$TMP/dyn.vhd" 30M >/dev/null || fail "create"
random_writes "$TMP/dyn.vhd" 30 25 3000 || fail "writes"
"$VHDIO" cat "$TMP/dyn.vhd" > "$TMP/dyn.ref"
qemu_reads "$TMP/dyn.vhd" "$TMP/dyn.ref"

"$VHD" convert "$TMP/dyn.ref" "$TMP/conv.vhd" >/dev/null || fail "raw -> dynamic"
qemu_reads "$TMP/conv.vhd" "$TMP/dyn.ref"
"$VHD" convert --fixed "$TMP/dyn.ref" "$TMP/fixed.vhd" >/dev/null || fail "raw -> fixed"
qemu_reads "$TMP/fixed.vhd" "$TMP/dyn.ref"

make_chain "$TMP/chain" 3 24 12 || fail "make_chain"
"$VHDIO" cat "$TMP/chain/l3.vhd" > "$TMP/chain.ref"
"$VHD" convert "$TMP/chain/l3.vhd" "$TMP/flat.vhd" >/dev/null || fail "chain -> dynamic"
qemu_reads "$TMP/flat.vhd" "$TMP/chain.ref"
"$VHDIO" cat "$TMP/chain/l0.vhd" > "$TMP/base.ref"
qemu_reads "$TMP/chain/l0.vhd" "$TMP/base.ref"

# qemu -> vhdkit
qwrites() {   # qwrites IMG SIZE_MB: 12 random qemu-io writes of random data
	local args=() len off i total=$(( $2 * 2048 ))
	for i in $(seq 12); do
		len=$(( RANDOM % 2500 + 1 )); off=$(( (RANDOM * 32768 + RANDOM) % (total - len) ))
		rand_sectors "$len" > "$TMP/pat$i"
		args+=(-c "write -s $TMP/pat$i $((off * 512)) $((len * 512))")
	done
	qemu-io -f vpc "${args[@]}" "$1" >/dev/null || fail "qemu-io writes into $1"
}
for opts in subformat=dynamic subformat=fixed subformat=dynamic,force_size=on; do
	img=$TMP/qemu.vhd
	rm -f "$img"
	qemu-img create -q -f vpc -o "$opts" "$img" 21M || fail "qemu-img create $opts"
	qwrites "$img" 20
	qemu-img convert -f vpc -O raw "$img" "$TMP/qemu.ref" || fail "qemu-img convert"
	"$VHD" convert --force "$img" "$TMP/ours.raw" >/dev/null || fail "vhd convert $opts -> raw"
	cmp -s "$TMP/ours.raw" "$TMP/qemu.ref" || fail "$opts: vhd convert to raw differs from qemu-img's"
	"$VHD" convert --force "$img" "$TMP/ours.vhd" >/dev/null || fail "vhd convert $opts -> dynamic"
	qemu_reads "$TMP/ours.vhd" "$TMP/qemu.ref"
done
pass "qemu-img reads vhdkit's dynamic, fixed, converted and flattened images; vhdkit reads qemu's"
