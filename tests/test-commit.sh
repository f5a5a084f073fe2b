#!/bin/bash
# `vhd commit --base BASE TOP` merges every layer between into BASE in one
# pass: BASE then reads as TOP; TOP (and its child) read as before.  With
# --relink, TOP's children point at BASE and TOP and the layers between are
# gone.  BASE must be an ancestor of TOP.
. "$(dirname "$0")/functions.sh"
make_chain "$TMP/c" 4 32 20 || fail "building the chain"
"$VHD" set "$TMP/c/l3.vhd" hidden on >/dev/null   # l4 is the visible leaf
top=$(content_sha "$TMP/c/l3.vhd") leaf=$(content_sha "$TMP/c/l4.vhd")
expect_exit 0 "$VHD" commit --base "$TMP/c/l0.vhd" "$TMP/c/l3.vhd"
[ "$(content_sha "$TMP/c/l0.vhd")" = "$top" ] || fail "base does not read as the top after commit"
[ "$(content_sha "$TMP/c/l3.vhd")" = "$top" ] || fail "top changed"
[ "$(content_sha "$TMP/c/l4.vhd")" = "$leaf" ] || fail "leaf changed"

make_chain "$TMP/d" 4 32 20 || fail "building the chain"
leaf=$(content_sha "$TMP/d/l4.vhd")
expect_exit 2 "$VHD" commit --base "$TMP/d/l4.vhd" "$TMP/d/l2.vhd"     # not an ancestor: a wrong argument
expect_exit 0 "$VHD" commit --relink --base "$TMP/d/l1.vhd" "$TMP/d/l3.vhd"
for f in l2 l3; do [ -e "$TMP/d/$f.vhd" ] && fail "$f.vhd not deleted"; done
[ "$(content_sha "$TMP/d/l4.vhd")" = "$leaf" ] || fail "leaf changed by commit --relink"
[ "$("$VHD" depth "$TMP/d/l4.vhd")" = 3 ] || fail "leaf depth is not 3 after collapsing two layers"
pass "commit merged 3 layers into the base; --relink collapsed l2..l3 under l4"
