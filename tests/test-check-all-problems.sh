#!/bin/bash
# vhd check reports every problem, not only the first: a bad header checksum
# together with trailing garbage, and two separate pairs of overlapping BAT
# entries (blktap's check stops at the first of each).
. "$(dirname "$0")/functions.sh"
requires python3
# header_sum FILE: recompute the dynamic header's checksum
fix_header_sum() {
	python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(512); h = bytearray(f.read(1024))
h[36:40] = b'\0' * 4
struct.pack_into('>I', h, 36, ~sum(h) & 0xffffffff)
f.seek(512); f.write(h)
PY
}
set_bat() {   # set_bat FILE BLOCK VALUE_FROM_BLOCK: BAT[BLOCK] = BAT[VALUE_FROM_BLOCK]
	python3 - "$@" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(512 + 16); t, = struct.unpack('>Q', f.read(8))
f.seek(t + 4 * int(sys.argv[3])); v = f.read(4)
f.seek(t + 4 * int(sys.argv[2])); f.write(v)
PY
}

# 1: header checksum broken and 4 KiB of garbage after the footer
a=$TMP/a.vhd
"$VHD" create "$a" 8M >/dev/null || fail create
printf '\xde\xad' | dd of="$a" bs=1 seek=$((512 + 36)) conv=notrunc status=none
rand_sectors 8 >>"$a"
out=$("$VHD" check "$a"); rc=$?
[ $rc = 3 ] || fail "exit $rc: $out"
grep -q "^$a: primary footer invalid: invalid cookie$" <<<"$out" || fail "garbage not reported: $out"
grep -q "^$a: header is invalid: invalid checksum" <<<"$out" || fail "header checksum not reported: $out"
grep -q "^$a: note: a copy of the footer is at offset 0xc00.*4096 bytes after it" <<<"$out" ||
	fail "trailing garbage not located: $out"
tail -n1 <<<"$out" | grep -qx "$a: 2 problems" || fail "count: $out"

# 2: blocks 0..3 allocated, then BAT[1] := BAT[0] and BAT[3] := BAT[2]
b=$TMP/b.vhd
"$VHD" create "$b" 16M >/dev/null || fail create
for i in 0 1 2 3; do
	rand_sectors 1 | "$VHDIO" write "$b" $((i * 2 * 1024 * 1024)) || fail "write $i"
done
"$VHD" check "$b" >/dev/null || fail "image not valid before the damage"
set_bat "$b" 1 0 && set_bat "$b" 3 2 || fail "set_bat"
out=$("$VHD" check "$b"); rc=$?
[ $rc = 3 ] || fail "exit $rc: $out"
[ "$(grep -c 'clobbers block' <<<"$out")" = 2 ] || fail "expected two overlaps: $out"
grep -qE "^$b: block 0 \(offset 0x[0-9a-f]+\) clobbers block 1 " <<<"$out" || fail "pair 0/1: $out"
grep -qE "^$b: block 2 \(offset 0x[0-9a-f]+\) clobbers block 3 " <<<"$out" || fail "pair 2/3: $out"
# the lost blocks' data at the end of the file is not a problem
tail -n1 <<<"$out" | grep -qx "$b: 2 problems" || fail "count: $out"
# with a third defect in the header, all three kinds show
printf '\x01' | dd of="$b" bs=1 seek=$((512 + 60)) conv=notrunc status=none   # reserved1
fix_header_sum "$b"
out=$("$VHD" check "$b")
grep -q "header is invalid: invalid reserved bits" <<<"$out" || fail "reserved bits: $out"
[ "$(grep -c 'clobbers block' <<<"$out")" = 2 ] || fail "overlaps after header damage: $out"
pass "header checksum + trailing garbage, and two overlap pairs (+ header reserved bits), all reported"
