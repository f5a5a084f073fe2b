#!/bin/bash
# `make demo`, the README's first command: it runs to its end, the chain's
# content is unchanged by the coalesce and the SR's leaf by the GC, and the
# chains end one deep (the merged chain) and shallower than 9 (the GC's).
. "$(dirname "$0")/functions.sh"
cd "$ROOT" || fail "cd $ROOT"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s B="$B" demo >"$TMP/out" 2>&1 ||
	{ tail -30 "$TMP/out"; fail "make demo failed"; }
sed 's/\x1b\[[0-9;]*m//g' "$TMP/out" >"$TMP/plain"
grep -q 'content of leaf.vhd: sha256 .* (unchanged)' "$TMP/plain" || fail "the coalesce changed leaf.vhd's content"
last=$(grep 'content of l8.vhd:' "$TMP/plain") || fail "the GC part did not run to its end"
[ "$(echo "$last" | awk '{print $5}')" = "$(echo "$last" | awk '{print $7}')" ] || fail "the GC changed l8.vhd: $last"
depths=$(grep -A1 'vhd depth ' "$TMP/plain" | grep -Ex '[0-9]+' | paste -sd' ')
gc_depth=$(echo "$depths" | awk '{print $4}')
[ "$depths" = "3 2 9 $gc_depth" ] && [ "$gc_depth" -lt 9 ] ||
	fail "depths shown: $depths (expected 3, 2, then 9 and less after the GC)"
pass "make demo: ran to its end; depths $depths; contents unchanged by the coalesce and the GC"
