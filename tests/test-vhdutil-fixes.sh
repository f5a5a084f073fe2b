#!/bin/bash
# Where vhd-util (vhdkit) is right and blktap is not, as the man page says:
# check -b finds data in a clear-bitmap sector whose first byte is not zero;
# the BAT overlap test is fast on a large BAT (blktap: O(n^2), seconds);
# a bad header fails at once (blktap retries for 10 s).
. "$(dirname "$0")/functions.sh"
requires python3 dd
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"

"$VU" create -n a.vhd -s 8 >/dev/null || fail create
rand_sectors 1 | "$VHDIO" write a.vhd 0 || fail write
off=$("$VU" read -n a.vhd -b 0 | sed -n 's/^block: 0: offset: //p')
[ -n "$off" ] || fail "read -b 0 gave no offset"
# sector 5 of block 0 (bit clear): first byte 0xff, the rest zero
printf '\377' | dd of=a.vhd bs=1 seek=$((off + 512 + 5 * 512)) conv=notrunc status=none
out=$("$VU" check -n a.vhd -b); rc=$?
[ $rc -eq 22 ] && [ "$(head -1 <<<"$out")" = "sector 0x5 of block 0x0 has data where bitmap is clear" ] ||
	fail "check -b missed data in a sector whose first byte is set: rc $rc: $(head -1 <<<"$out")"
[ "$("$VU" check -n a.vhd)" = "a.vhd is valid" ] || fail "plain check reads data"

# 32768 allocated blocks (a 64 GiB disk, sparse file), no overlap; then one
"$VU" create -n big.vhd -s 65536 >/dev/null || fail "create big"
python3 - big.vhd <<'PY' || fail "building the big BAT"
import struct, sys
f = open(sys.argv[1], "r+b")
img = f.read(8192)
table = struct.unpack(">Q", img[512 + 16:512 + 24])[0]
n = struct.unpack(">I", img[512 + 28:512 + 32])[0]
foot = img[0:512]
first = 16384                     # sectors: past the metadata
span = 4096 + 1 + 7               # bitmap + data, 4 KiB aligned stride
bat = b"".join(struct.pack(">I", first + i * span) for i in range(n))
f.seek(table); f.write(bat)
end = (first + n * span) * 512
f.truncate(end + 512); f.seek(end); f.write(foot)
PY
start=$(date +%s%N)
out=$("$VU" check -n big.vhd); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -eq 0 ] && [ "$out" = "big.vhd is valid" ] || fail "big: rc $rc: $(head -2 <<<"$out")"
[ $ms -lt 1000 ] || fail "check of 32768 blocks took $ms ms"
# block 20000 made to overlap block 20001: blktap's message
python3 - big.vhd <<'PY' || fail "making an overlap"
import struct, sys
f = open(sys.argv[1], "r+b")
img = f.read(2048)
table = struct.unpack(">Q", img[512 + 16:512 + 24])[0]
f.seek(table + 4 * 20001); v = struct.unpack(">I", f.read(4))[0]
f.seek(table + 4 * 20000); f.write(struct.pack(">I", v - 100))
PY
out=$("$VU" check -n big.vhd | head -1)
want=$(printf 'block 20000 (offset 0x%x) clobbers block 20001 (offset 0x%x)' \
	$((16384 + 20001 * 4104 - 100)) $((16384 + 20001 * 4104)))
[ "$out" = "$want" ] || fail "overlap: '$out', expected '$want'"

# a bad header: no 10-second retry
cp "$CORPUS/bad/header-bad-checksum.vhd" h.vhd 2>/dev/null || { need_corpus; fail "corpus"; }
start=$(date +%s)
expect_exit 22 "$VU" query -n h.vhd -v
[ $(( $(date +%s) - start )) -lt 3 ] || fail "bad header took seconds"
pass "check -b (first byte set), O(n log n) overlap check in $ms ms with blktap's message, no retry"
