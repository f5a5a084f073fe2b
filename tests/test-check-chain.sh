#!/bin/bash
# vhd check --chain checks every ancestor: a damaged grandparent (bad
# backup footer checksum, which does not stop reads) passes a plain check of
# the leaf but is reported, naming the grandparent, with --chain.
. "$(dirname "$0")/functions.sh"
d=$TMP/c
make_chain "$d" 2 8 3 || fail "make_chain"
leaf=$d/l2.vhd
out=$("$VHD" check --chain "$leaf") || fail "undamaged chain: $out"
sum=$(content_sha "$leaf")
printf '\xde\xad\xbe\xef' | dd of="$d/l0.vhd" bs=1 seek=64 conv=notrunc status=none
[ "$(content_sha "$leaf")" = "$sum" ] || fail "the damage changed the content (test is wrong)"
out=$("$VHD" check "$leaf") || fail "plain check of the leaf should pass: $out"
out=$("$VHD" check --chain "$leaf"); rc=$?
[ $rc = 3 ] || fail "--chain exit $rc: $out"
grep -q "^$d/l0.vhd: backup footer invalid: invalid checksum" <<<"$out" || fail "grandparent not named: $out"
sed '$d' <<<"$out" | grep -q "^$d/l[12].vhd:" && fail "undamaged levels reported: $out"
tail -n1 <<<"$out" | grep -qx "$leaf: 2 problems" || fail "verdict: $out"
# a chain whose parent is missing: the leaf itself is invalid
mv "$d/l1.vhd" "$d/gone.vhd"
out=$("$VHD" check "$leaf"); rc=$?
[ $rc = 3 ] || fail "missing parent: exit $rc: $out"
grep -q "^$leaf: error resolving $d/l1.vhd: -2" <<<"$out" || fail "missing parent message: $out"
grep -q "^$leaf: could not find parent l1.vhd" <<<"$out" || fail "could not find parent: $out"
pass "--chain reports a damaged grandparent by its path; a missing parent is invalid"
