#!/bin/bash
# `vhd coalesce --relink` merges a hidden node into its parent, re-points
# all of its children (two leaves) at the parent and deletes it; every
# visible disk reads the same before and after.  A relink interrupted after
# re-pointing the children is completed by `vhd recover`.
. "$(dirname "$0")/functions.sh"
make_chain "$TMP/c" 2 32 30 || fail "building the chain"
"$VHD" snapshot "$TMP/c/l1.vhd" "$TMP/c/sib.vhd" >/dev/null || fail snapshot
random_writes "$TMP/c/sib.vhd" 32 10 64
a=$(content_sha "$TMP/c/l2.vhd") b=$(content_sha "$TMP/c/sib.vhd")
expect_exit 0 "$VHD" coalesce --relink "$TMP/c/l1.vhd"
[ -e "$TMP/c/l1.vhd" ] && fail "l1.vhd still exists after --relink"
[ "$(content_sha "$TMP/c/l2.vhd")" = "$a" ] || fail "l2 content changed"
[ "$(content_sha "$TMP/c/sib.vhd")" = "$b" ] || fail "sibling content changed"
for f in l2 sib; do
	"$VHD" info --json "$TMP/c/$f.vhd" | grep -q "\"parent_name\":\"l0.vhd\"" || fail "$f does not point at l0"
	[ "$("$VHD" depth "$TMP/c/$f.vhd")" = 2 ] || fail "$f depth not 2"
done

# interrupted between re-pointing and deleting: crash at the first unlink
make_chain "$TMP/d" 2 16 10 || fail "building the second chain"
want=$(content_sha "$TMP/d/l2.vhd")
cp -a "$TMP/d" "$TMP/d0"
steps=$(LD_PRELOAD=$CRASHPOINT CRASH_COUNT_FILE=$TMP/cnt "$VHD" coalesce --relink "$TMP/d0/l1.vhd" >/dev/null 2>&1; cat "$TMP/cnt")
[ "$steps" -gt 5 ] || fail "counting steps failed"
# find the crash point just before the unlink of l1.vhd by trying from the end
for at in $(seq "$steps" -1 1); do
	rm -rf "$TMP/e" && cp -a "$TMP/d" "$TMP/e"
	crash_run "$at" kill 1 "$VHD" coalesce --relink "$TMP/e/l1.vhd" >/dev/null 2>&1
	if [ -e "$TMP/e/l1.vhd" ] && "$VHD" info --json "$TMP/e/l2.vhd" | grep -q "\"parent_name\":\"l0.vhd\""; then
		break
	fi
done
[ -e "$TMP/e/l1.vhd" ] || fail "no crash point left l1.vhd with l2 re-pointed"
cp -a "$TMP/e" "$TMP/f"
# the next `vhd coalesce` of the same child completes it too
expect_exit 0 "$VHD" coalesce --relink "$TMP/f/l1.vhd"
[ -e "$TMP/f/l1.vhd" ] && fail "re-run coalesce did not delete l1.vhd"
ls -a "$TMP/f" | grep -q journal && fail "journal left after the re-run"
[ "$(content_sha "$TMP/f/l2.vhd")" = "$want" ] || fail "content changed by the re-run"
[ "$(content_sha "$TMP/e/l2.vhd")" = "$want" ] || fail "content changed at the crash"
expect_exit 0 "$VHD" recover "$TMP/e"
grep -q "1 operation finished" "$TMP/.out" || fail "recover did not report the operation"
[ -e "$TMP/e/l1.vhd" ] && fail "recover did not delete l1.vhd"
ls -a "$TMP/e" | grep -q journal && fail "journal left after recover"
[ "$(content_sha "$TMP/e/l2.vhd")" = "$want" ] || fail "content changed by recover"
pass "relink re-pointed two children and deleted the node; recover and a re-run each finished a crashed relink (crash point $at of $steps)"
