#!/bin/bash
# vhd check on fixed images: footer tests and the file size (a disk larger
# than its file is invalid); blktap's check prints nothing for fixed disks.
. "$(dirname "$0")/functions.sh"
f=$TMP/f.vhd
"$VHD" create --fixed "$f" 4M >/dev/null || fail create
out=$("$VHD" check "$f") || fail "new fixed image: $out"
sum=$(raw_sha "$f")
# cut 1 MiB of data, keeping the footer at the end: the disk does not fit
g=$TMP/g.vhd
{ head -c $((3 * 1024 * 1024)) "$f"; tail -c 512 "$f"; } >"$g"
out=$("$VHD" check "$g"); rc=$?
[ $rc = 3 ] || fail "short fixed: exit $rc: $out"
grep -qx "$g: fixed disk of 4194304 bytes does not fit in a file of 3146240 bytes" <<<"$out" || fail "short fixed: $out"
# a bad footer checksum
printf '\x00' | dd of="$f" bs=1 seek=$((4 * 1024 * 1024 + 64)) conv=notrunc status=none
[ "$(raw_sha "$f")" != "$sum" ] || fail "the damage changed nothing (test is wrong)"
out=$("$VHD" check "$f"); rc=$?
[ $rc = 3 ] || fail "bad checksum: exit $rc: $out"
grep -q "^$f: primary footer invalid: invalid checksum (0x" <<<"$out" || fail "bad checksum: $out"
pass "fixed: valid when made, too short and bad checksum reported"
