#!/bin/bash
# vhd-util options the corpus has no recorded output for, pinned to the
# formats of blktap's source (vhd-util-read.c, -query.c, -check.c,
# -coalesce.c, -fill.c); each expected line is built here from the values
# the test wrote, so a wrong format or value fails.
. "$(dirname "$0")/functions.sh"
requires python3 od
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"

"$VU" create -n a.vhd -s 10 >/dev/null || fail create          # 5 blocks of 2 MiB
rand_sectors 3 >d3 && "$VHDIO" write a.vhd 4096 <d3 || fail write   # sectors 8..10, block 0
rand_sectors 2 >d2 && "$VHDIO" write a.vhd $((3 * 2097152 + 512)) <d2 || fail write  # block 3

# read -e: blktap prints each run of set bitmap bits as "START LENGTH"
[ "$("$VU" read -n a.vhd -e 0 -c 20480)" = "$(printf '8 3\n12289 2')" ] ||
	fail "read -e: $("$VU" read -n a.vhd -e 0 -c 20480)"
[ "$("$VU" read -n a.vhd -e 0 -c 20480 -x)" = "$(printf '0x8 0x3\n0x3001 0x2')" ] || fail "read -e -x"
# blktap prints "sector %s past end of file" on stdout, -ERANGE
out=$("$VU" read -n a.vhd -e 20000 -c 481); rc=$?
[ $rc -eq 34 ] && [ "$out" = "sector 20000 past end of file" ] || fail "read -e range: $rc $out"
# read -B: one bit per block, MSB first (blocks 0 and 3: 1001 0000)
[ "$("$VU" read -n a.vhd -B | od -An -tx1 | tr -d ' ')" = 90 ] || fail "read -B"
# read -R BYTE -c N: N bytes at a byte offset, through the chain
want=$(dd if=d3 bs=1 skip=5 count=700 status=none | sha256sum)
[ "$("$VU" read -n a.vhd -R 4101 -c 700 | sha256sum)" = "$want" ] || fail "read -R"
expect_exit 34 "$VU" read -n a.vhd -R $((10 * 1048576 - 3)) -c 4
# usage: blktap lists -B, -e sec and -R byte, exits with a positive EINVAL
out=$("$VU" read -h); rc=$?
[ $rc -eq 22 ] && grep -qx -- '-e sec      output extent list of allocated logical sectors' <<<"$out" &&
	grep -qx -- '-R byte     read num bytes at byte' <<<"$out" &&
	grep -qx -- '-B          print entire bat as a bitmap' <<<"$out" || fail "read usage: $out"

# query: blktap prints -a before -S; -S is max BAT entries << 1
[ "$("$VU" query -n a.vhd -S -a)" = "$(printf '2\n10')" ] || fail "query -a -S: $("$VU" query -n a.vhd -S -a)"
# -m: the batmap header's marker as a signed char
expect_exit 0 "$VU" set -n a.vhd -f marker -v 200
[ "$("$VU" query -n a.vhd -m)" = "marker: -56" ] || fail "query -m signed: $("$VU" query -n a.vhd -m)"
# -m without a batmap (qemu, fixed): blktap reads an xattr, 0 when absent
expect_exit 0 "$VU" create -n f.vhd -s 2 -r
[ "$("$VU" query -n f.vhd -m)" = "marker: 0" ] || fail "query -m fixed: $("$VU" query -n f.vhd -m)"
# -u: the first locator's name as stored; -p resolves it
expect_exit 0 "$VU" snapshot -n b.vhd -p a.vhd
[ "$("$VU" query -n b.vhd -u -p)" = "./a.vhd" ] || fail "query -u: $("$VU" query -n b.vhd -u -p)"
[ "$("$VU" query -n b.vhd -p)" = "$TMP/a.vhd" ] || fail "query -p"
[ "$("$VU" query -n a.vhd -p)" = "a.vhd has no parent" ] || fail "query -p no parent"

# check -s: no "is valid"; blktap's "%s: secs allocated: 0x%x secs written:
# 0x%x (%.2f%%)", with -p the oldest first and then "not in parent/ancestors"
rand_sectors 4 | "$VHDIO" write b.vhd 4096 || fail "write b"           # over sectors 8..11
out=$("$VU" check -n b.vhd -s -p); rc=$?
want=$(printf '%s\n%s' \
	"a.vhd: secs allocated: 0x2000 secs written: 0x5 (0.06%)" \
	"b.vhd: secs allocated: 0x1000 secs written: 0x4 (0.10%) secs not in parent: 0x1 (25.00%) secs not in ancestors: 0x1 (25.00%)")
[ $rc -eq 0 ] && [ "$out" = "$want" ] || fail "check -s -p: rc $rc: $out"
# -B precludes -b and -s (usage, -EINVAL)
out=$("$VU" check -n a.vhd -B -s); rc=$?
[ $rc -eq 22 ] && grep -q '^options: -n <file> .*\[-B do not check BAT for overlapping (precludes -s, -b)\]' <<<"$out" ||
	fail "check -B -s: $rc $out"
[ "$("$VU" check -n a.vhd -B)" = "a.vhd is valid" ] || fail "check -B"
# -b reports every bad sector of the first bad block, then dumps
off=$("$VU" read -n a.vhd -b 3 | sed -n 's/^block: 3: offset: //p')
printf 'xx' | dd of=a.vhd bs=1 seek=$((off + 512 + 7 * 512 + 100)) conv=notrunc status=none
printf 'yy' | dd of=a.vhd bs=1 seek=$((off + 512 + 9 * 512)) conv=notrunc status=none
out=$("$VU" check -n a.vhd -b); rc=$?
[ $rc -eq 22 ] && [ "$(head -3 <<<"$out")" = "$(printf '%s\n%s\n%s' \
	'sector 0x7 of block 0x3 has data where bitmap is clear' \
	'sector 0x9 of block 0x3 has data where bitmap is clear' \
	'a.vhd appears invalid; dumping metadata')" ] || fail "check -b: $rc $(head -3 <<<"$out")"
# -I: blktap does not open the parent at all
python3 - b.vhd <<'PY' || fail "uuid edit"
import struct, sys
f = open(sys.argv[1], "r+b"); h = bytearray(f.read(1536)[512:1536])
h[40] ^= 0xff; h[36:40] = b"\0\0\0\0"
s = (~sum(h) & 0xffffffff); h[36:40] = struct.pack(">I", s)
f.seek(512); f.write(h)
PY
[ "$("$VU" check -n b.vhd | head -1)" = "invalid parent $TMP/a.vhd: invalid parent uuid" ] ||
	fail "check without -I: $("$VU" check -n b.vhd | head -1)"
[ "$("$VU" check -n b.vhd -I)" = "b.vhd is valid" ] || fail "check -I"

# coalesce: blktap's messages and usage
out=$("$VU" coalesce -n a.vhd); rc=$?
[ $rc -eq 22 ] && [ "$out" = "$(printf '%s\n%s' 'coalescing of non-differencing disks is not supported' 'error coalescing: -22')" ] ||
	fail "coalesce of a base: $rc $out"
out=$("$VU" coalesce -n b.vhd -o x); rc=$?
[ $rc -eq 22 ] && [ "$out" = "options: <-n name> [-s sparse] [-p progress] [-h help]" ] || fail "coalesce -o: $out"

# fill: option checks, then -b allocates without changing content
"$VU" create -n c.vhd -s 10 >/dev/null && rand_sectors 3 | "$VHDIO" write c.vhd 4096 || fail "c"
before=$(content_sha c.vhd)
out=$("$VU" fill -n c.vhd -f 3); rc=$?
[ $rc -eq 22 ] && [ "$(head -1 <<<"$out")" = "-f/-t can only be used with -b" ] || fail "fill -f: $out"
out=$("$VU" fill -n c.vhd -b -f 10 -t 3); [ "$(head -1 <<<"$out")" = "invalid sector range 10-3" ] || fail "fill range"
out=$("$VU" fill -n c.vhd -B); [ "$(head -1 <<<"$out")" = "-B can only be used with -b" ] || fail "fill -B"
expect_exit 0 "$VU" fill -n c.vhd -b -f 4096 -t 8191
[ "$("$VU" read -n c.vhd -B | od -An -tx1 | tr -d ' ')" = c0 ] || fail "fill -b -f -t: blocks"
[ "$("$VU" check -n c.vhd)" = "c.vhd is valid" ] || fail "fill -b: invalid image"
[ "$("$VU" read -n c.vhd -r 0 -c 4096 | sha256sum | cut -d' ' -f1)" = \
  "$("$VHDIO" cat c.vhd | head -c 2097152 | sha256sum | cut -d' ' -f1)" ] || fail "read -r"
[ "$(content_sha c.vhd)" = "$before" ] || fail "fill -b changed the content"
pass "read -e -B -R, query -a -S -m -u -p, check -s -p -B -b -I, coalesce, fill options"
