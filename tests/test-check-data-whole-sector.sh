#!/bin/bash
# vhd check --data finds data under a clear bitmap bit anywhere in a sector
# (first byte zero, later bytes not: blktap misses those), reports runs, and
# a batmap bit set for a block whose bitmap is not full.  Plain check reads
# no data and calls the image valid.
. "$(dirname "$0")/functions.sh"
requires python3
f=$TMP/d.vhd
"$VHD" create "$f" 8M >/dev/null || fail create
rand_sectors 1 | "$VHDIO" write "$f" 0 || fail "write block 0"
rand_sectors 4096 | "$VHDIO" write "$f" $((2 * 1024 * 1024)) || fail "write block 1"
# poke BLOCK SECTOR BYTE COUNT: COUNT bytes 0x5a at BYTE of data sector SECTOR;
# clearbit BLOCK SECTOR: clear that sector's bitmap bit
python3 - "$f" <<'PY' || fail "corrupting"
import struct, sys
f = open(sys.argv[1], 'r+b')
def bat(b):
    f.seek(512 + 16); table, = struct.unpack('>Q', f.read(8))
    f.seek(table + 4 * b); return struct.unpack('>I', f.read(4))[0] * 512
def poke(block, sector, byte, count):
    f.seek(bat(block) + 512 + sector * 512 + byte); f.write(b'\x5a' * count)
poke(0, 5, 100, 20)            # one sector, its first byte left 0
for s in (9, 10, 11):          # a run of three
    poke(0, s, 1, 511)
off = bat(1) + 7 // 8          # block 1: clear the bit of sector 7
f.seek(off); v = f.read(1)[0]; f.seek(off); f.write(bytes([v & ~(0x80 >> 7)]))
PY
out=$("$VHD" check "$f") || fail "plain check should pass (no data read): $out"
out=$("$VHD" check --data "$f"); rc=$?
[ $rc = 3 ] || fail "--data exit $rc: $out"
grep -qx "$f: sector 0x5 of block 0x0 has data where bitmap is clear" <<<"$out" || fail "sector 5 not found: $out"
grep -qx "$f: sectors 0x9-0xb of block 0x0 have data where bitmap is clear" <<<"$out" || fail "run 9-11 not found: $out"
grep -qx "$f: batmap shows block 1 full but its bitmap is not" <<<"$out" || fail "batmap vs bitmap: $out"
# block 1's sector 7 holds data with its bit now clear: reported too
grep -qx "$f: sector 0x7 of block 0x1 has data where bitmap is clear" <<<"$out" || fail "block 1 sector 7: $out"
tail -n1 <<<"$out" | grep -qx "$f: 4 problems" || fail "count: $out"
pass "--data: whole-sector test (first byte 0), runs, batmap vs bitmap; plain check reads no data"
