#!/bin/bash
# vhd convert raw -> dynamic -> raw and raw -> fixed -> dynamic keep the
# content; output is sparse: a dynamic VHD allocates exactly the 2 MiB
# blocks holding non-zero bytes (allocated-but-zero input is skipped), raw
# and fixed outputs are holes where the data is zero; an odd-sized raw input
# is padded to a whole sector; .raw/.img pick raw output, --from overrides
# detection.
. "$(dirname "$0")/functions.sh"
requires /usr/bin/python3 stat

# sparse 40 MiB raw: random runs at random sector offsets (crossing 2 MiB
# blocks) and one allocated run of zeros
R=$TMP/in.raw
truncate -s 40M "$R"
for _ in $(seq 14); do
	len=$(( RANDOM % 3000 + 1 )); off=$(( (RANDOM * 32768 + RANDOM) % (81920 - len) ))
	rand_sectors "$len" | dd of="$R" bs=512 seek="$off" conv=notrunc status=none
done
dd if=/dev/zero of="$R" bs=1M seek=30 count=4 conv=notrunc status=none

# what the file holds, computed here: non-zero 2 MiB blocks and 4 KiB grains
facts() {
	/usr/bin/python3 - "$1" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
B, G = 2 << 20, 4096
blocks = [i for i in range(0, len(data), B) if data[i:i + B].strip(b"\0")]
grains = sum(1 for i in range(0, len(data), G) if data[i:i + G].strip(b"\0"))
print(len(blocks), grains, ",".join(str(b // 512) for b in blocks))
EOF
}
read -r nblocks ngrains starts < <(facts "$R")
[ "$nblocks" -gt 3 ] || fail "test data too sparse ($nblocks blocks)"

"$VHD" convert "$R" "$TMP/d.vhd" >/dev/null || fail "raw -> dynamic"
[ "$(content_sha "$TMP/d.vhd")" = "$(raw_sha "$R")" ] || fail "dynamic content differs from the raw input"
info() { "$VHD" info --json "$1" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[\"$2\"])"; }
[ "$(info "$TMP/d.vhd" type)" = dynamic ] || fail "output is not dynamic"
got=$(info "$TMP/d.vhd" allocated_blocks)
[ "$got" = "$nblocks" ] || fail "dynamic output allocates $got blocks, $nblocks hold data"
# vhd map: one 4096-sector extent per non-zero block (merged when adjacent)
want=$(/usr/bin/python3 -c "
s=[int(x) for x in '$starts'.split(',')]; out=[]
for a in s:
    if out and out[-1][1] == a: out[-1][1] = a + 4096
    else: out.append([a, a + 4096])
print('\n'.join('%d %d' % (a, b - a) for a, b in out))")
[ "$("$VHD" map --sectors "$TMP/d.vhd")" = "$want" ] || fail "map of the dynamic output is not the non-zero blocks"

"$VHD" convert "$TMP/d.vhd" "$TMP/back.raw" >/dev/null || fail "dynamic -> raw (.raw)"
cmp -s "$R" "$TMP/back.raw" || fail "raw round trip differs"
# sparse: no more blocks on disk than the non-zero 4 KiB grains (+ slack)
used=$(( $(stat -c '%b * %B' "$TMP/back.raw") ))
[ "$used" -le $(( ngrains * 4096 + 65536 )) ] || fail "raw output uses $used bytes for $ngrains non-zero grains"
[ "$used" -lt "$(stat -c %s "$TMP/back.raw")" ] || fail "raw output is not sparse"

"$VHD" convert --fixed "$R" "$TMP/f.vhd" >/dev/null || fail "raw -> fixed"
[ "$(info "$TMP/f.vhd" type)" = fixed ] || fail "output is not fixed"
[ "$(stat -c %s "$TMP/f.vhd")" = $(( 40 * 1048576 + 512 )) ] || fail "fixed file size"
[ "$(content_sha "$TMP/f.vhd")" = "$(raw_sha "$R")" ] || fail "fixed content differs"
used=$(( $(stat -c '%b * %B' "$TMP/f.vhd") ))
[ "$used" -le $(( ngrains * 4096 + 65536 )) ] || fail "fixed output is not sparse ($used bytes used)"
"$VHD" convert "$TMP/f.vhd" "$TMP/fd.vhd" >/dev/null || fail "fixed -> dynamic"
[ "$(content_sha "$TMP/fd.vhd")" = "$(raw_sha "$R")" ] || fail "fixed -> dynamic content differs"
[ "$(info "$TMP/fd.vhd" allocated_blocks)" = "$nblocks" ] || fail "fixed -> dynamic allocation"

# an odd size: padded with zeros to a whole sector
head -c $(( 3 * 1048576 + 700 )) /dev/urandom > "$TMP/odd.bin"
"$VHD" convert --from raw "$TMP/odd.bin" "$TMP/odd.vhd" >/dev/null || fail "odd raw -> vhd"
[ "$(info "$TMP/odd.vhd" virtual_size)" = $(( 3 * 1048576 + 1024 )) ] || fail "odd size not rounded up"
cp "$TMP/odd.bin" "$TMP/odd.pad" && truncate -s $(( 3 * 1048576 + 1024 )) "$TMP/odd.pad"
[ "$(content_sha "$TMP/odd.vhd")" = "$(raw_sha "$TMP/odd.pad")" ] || fail "odd content differs"

# .img means raw, --dynamic overrides it; --from raw copies a VHD's bytes
"$VHD" convert "$TMP/d.vhd" "$TMP/x.img" >/dev/null || fail "-> .img"
cmp -s "$R" "$TMP/x.img" || fail ".img output is not the raw content"
"$VHD" convert --dynamic "$TMP/d.vhd" "$TMP/y.img" >/dev/null || fail "--dynamic .img"
[ "$(content_sha "$TMP/y.img")" = "$(raw_sha "$R")" ] || fail "--dynamic .img content"
"$VHD" convert --from raw --raw "$TMP/d.vhd" "$TMP/bytes.raw" >/dev/null || fail "--from raw"
cmp -s "$TMP/d.vhd" "$TMP/bytes.raw" || fail "--from raw did not copy the file's bytes"
j=$("$VHD" convert --json "$TMP/d.vhd" "$TMP/z.raw") || fail "--json"
echo "$j" | /usr/bin/python3 -c '
import json, sys; j = json.load(sys.stdin)
assert j["input_format"] == "vhd" and j["output_format"] == "raw", j
assert j["virtual_size"] == 40 << 20, j' || fail "--json summary wrong: $j"
pass "round trips keep the content; $nblocks of 20 blocks allocated; outputs sparse"
