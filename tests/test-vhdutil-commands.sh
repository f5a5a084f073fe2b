#!/bin/bash
# vhd-util create, snapshot, query, set, coalesce and resize on fresh images:
# results checked by content checksums and by vhd-util check / vhd info.
. "$(dirname "$0")/functions.sh"
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"

expect_exit 0 "$VU" create -n a.vhd -s 100
[ "$("$VU" query -n a.vhd -v)" = 100 ] || fail "create -s 100: wrong virtual size"
[ "$("$VU" check -n a.vhd)" = "a.vhd is valid" ] || fail "created image is not valid"
sum=$(raw_sha a.vhd)
# documented difference: blktap overwrites an existing file, vhdkit refuses (EEXIST)
expect_exit 17 "$VU" create -n a.vhd -s 50
[ "$(raw_sha a.vhd)" = "$sum" ] || fail "create overwrote an existing file"
expect_exit 22 "$VU" create -n x.vhd            # no size: usage, EINVAL

rand_sectors 300 >data && "$VHDIO" write a.vhd 1048576 <data || fail "write a"
expect_exit 0 "$VU" snapshot -n b.vhd -p a.vhd
[ "$("$VU" query -n b.vhd -d)" = "chain depth: 2" ] || fail "snapshot: depth"
[ "$("$VU" query -n b.vhd -p)" = "$TMP/a.vhd" ] || fail "query -p: $("$VU" query -n b.vhd -p)"
# b is empty: a snapshot of it links to a (blktap's default), unless -e
expect_exit 0 "$VU" snapshot -n c.vhd -p b.vhd
[ "$("$VU" query -n c.vhd -d)" = "chain depth: 2" ] || fail "snapshot did not skip the empty parent"
expect_exit 0 "$VU" snapshot -n d.vhd -p b.vhd -e
[ "$("$VU" query -n d.vhd -d)" = "chain depth: 3" ] || fail "snapshot -e did not link to b"
out=$("$VU" snapshot -n e.vhd -p d.vhd -e -l 3); rc=$?
[ $rc -eq 28 ] && [ "$out" = "snapshot depth exceeded: current depth: 3, limit: 3" ] ||
	fail "snapshot -l: rc $rc: $out"

# set hidden / marker; the batmap stays valid (blktap's marker corrupts it)
expect_exit 0 "$VU" set -n a.vhd -f hidden -v 1
[ "$("$VU" query -n a.vhd -f)" = "hidden: 1" ] || fail "set hidden"
expect_exit 0 "$VU" set -n a.vhd -f marker -v 1
[ "$("$VU" query -n a.vhd -m)" = "marker: 1" ] || fail "set marker"
[ "$("$VU" check -n a.vhd)" = "a.vhd is valid" ] || fail "set marker left an invalid image"
expect_exit 22 "$VU" set -n a.vhd -f nosuch -v 1

# coalesce: 57 sectors at an odd offset in b; "Coalesced N sectors" without newline
rand_sectors 57 >d2 && "$VHDIO" write b.vhd $((3 * 1048576 + 3 * 512)) <d2 || fail "write b"
chain=$(content_sha b.vhd)
"$VU" coalesce -n b.vhd >out; rc=$?
[ $rc -eq 0 ] && [ "$(cat out)" = "Coalesced 57 sectors" ] && [ "$(tail -c 1 out | od -An -c | tr -d ' ')" = s ] ||
	fail "coalesce: rc $rc: $(cat out)"
[ "$(content_sha a.vhd)" = "$chain" ] || fail "coalesce: parent content differs from the chain's"

# resize -j: grows, journal removed, content kept, image valid
before=$("$VHDIO" cat a.vhd | sha256sum)
expect_exit 0 "$VU" resize -n a.vhd -s 180 -j a.journal
[ "$("$VU" query -n a.vhd -v)" = 180 ] || fail "resize: size"
[ ! -e a.journal ] || fail "resize left its journal"
[ "$("$VU" check -n a.vhd)" = "a.vhd is valid" ] || fail "resized image invalid"
[ "$("$VHDIO" cat a.vhd | head -c $((100 << 20)) | sha256sum)" = "$before" ] || fail "resize changed data"
[ "$("$VHDIO" cat a.vhd | tail -c $((80 << 20)) | tr -d '\0' | wc -c)" = 0 ] || fail "grown area not zero"
expect_exit 22 "$VU" resize -n a.vhd -s 50 -j a.journal    # shrinking
expect_exit 22 "$VU" resize -n a.vhd -s 300                # neither -j nor -f

# modify -p: re-point c at b (same content as a now)
expect_exit 0 "$VU" modify -n c.vhd -p b.vhd
[ "$("$VU" query -n c.vhd -d)" = "chain depth: 3" ] || fail "modify -p"
# fixed disk; repair of an intact image changes nothing
expect_exit 0 "$VU" create -n f.vhd -s 4 -r
[ "$("$VU" query -n f.vhd -v)" = 4 ] || fail "create -r"
sum=$(raw_sha b.vhd); expect_exit 0 "$VU" repair -n b.vhd
[ "$(raw_sha b.vhd)" = "$sum" ] || fail "repair changed a valid image"
# usage and --debug
"$VU" >out; [ $? -eq 0 ] && grep -q '^COMMAND := { create | snapshot' out || fail "help"
expect_exit 0 "$VU" query --debug -n b.vhd -v
pass "create, snapshot (-e, -l), query, set, coalesce, resize, modify, repair"
