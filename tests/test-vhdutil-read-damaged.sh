#!/bin/bash
# vhd-util read on a damaged image whose footer claims more blocks than its
# BAT has (a 4-entry BAT): with a 64 MiB size every read fails as in blktap
# 4.0.8 ("Failed to get bat", -EINVAL: it reads only the footer's entries
# and refuses a shorter BAT); with 9 MiB (four entries read, a fifth block
# of sectors) -t and -i on a sector past the BAT fail with -ERANGE and
# "block N past end of file", sectors inside it still work; a sector count
# whose byte size wraps around is refused.
. "$(dirname "$0")/functions.sh"
requires python3
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"

"$VU" create -n d.vhd -s 8 >/dev/null || fail create      # 4 blocks of 2 MiB
rand_sectors 1 | "$VHDIO" write d.vhd 4096 || fail write  # sector 8, block 0
# set_size FILE BYTES: both footers' current size, checksums fixed
set_size() {
	python3 - "$1" "$2" <<'PY' || fail "patching the footer"
import struct, sys
f = open(sys.argv[1], "r+b"); end = f.seek(0, 2)
for off in (0, end - 512):
    f.seek(off); ft = bytearray(f.read(512))
    struct.pack_into(">Q", ft, 48, int(sys.argv[2])); ft[64:68] = b"\0" * 4
    struct.pack_into(">I", ft, 64, ~sum(ft) & 0xffffffff)
    f.seek(off); f.write(ft)
PY
}
# blktap 4.0.8 reads the BAT entries of the footer's size (in 2 MiB units)
# and fails with -EINVAL when the header has fewer: a 64 MiB footer over
# a 4-entry BAT reads nothing
set_size d.vhd $(( 64 << 20 ))
for opt in "-i 8" "-t 8" "-B" "-b 0"; do
	out=$("$VU" read -n d.vhd $opt 2>&1); rc=$?
	[ $rc = 22 ] && [ "$out" = "Failed to get bat for d.vhd: -22" ] || fail "read $opt over a short BAT: exit $rc, '$out'"
done
# a size that is not a multiple of 2 MiB: 4 entries are read, sectors of a
# fifth block exist, past the BAT: -ERANGE, "block 4 past end of file"
set_size d.vhd $(( 9 << 20 ))
[ "$("$VU" read -n d.vhd -i 8)" = "block 0: sec: 8: 1" ] || fail "read -i 8: $("$VU" read -n d.vhd -i 8)"
"$VU" read -n d.vhd -t 8 | grep -q '^logical sector 8: block number: 0, ' || fail "read -t 8"
for opt in -t -i; do
	out=$("$VU" read -n d.vhd $opt 17000 2>&1); rc=$?
	[ $rc = 34 ] && [ "$out" = "block 4 past end of file" ] || fail "read $opt 17000: exit $rc, '$out'"
done
out=$("$VU" read -n d.vhd -i 16383 -c 2 2>&1); rc=$?   # block 3's last sector, then block 4
[ $rc = 34 ] && [ "$out" = "$(printf 'block 3: sec: 4095: 0\nblock 4 past end of file')" ] ||
	fail "read -i across the BAT's end: exit $rc, '$out'"
# -B: blocks of the footer's size (block size units, rounded down) fit
[ "$("$VU" read -n d.vhd -B | od -An -tx1 | tr -d ' ')" = 80 ] || fail "read -B on 9 MiB"
# a count whose byte size wraps around to a small one
out=$("$VU" read -n d.vhd -t 0 -c 36028797018963968 2>&1 | head -c 200; exit "${PIPESTATUS[0]}"); rc=$?
[ $rc = 34 ] || fail "read -t with a wrapping count: exit $rc, '$out'"
# -r at a sector whose byte offset wraps around (2^55 + 1 sectors)
out=$("$VU" read -n d.vhd -r 36028797018963969 -c 1 2>&1 | head -c 200; exit "${PIPESTATUS[0]}"); rc=$?
[ $rc = 34 ] || fail "read -r at a wrapping sector: exit $rc, '$out'"
set_size d.vhd $(( 8 << 20 ))
[ "$("$VU" read -n d.vhd -B | od -An -tx1 | tr -d ' ')" = 80 ] || fail "read -B on the repaired size"
pass "a BAT shorter than the footer's size: -EINVAL as blktap 4.0.8; read -t/-i past the BAT: -ERANGE; wrapping counts and sectors refused"
