#!/bin/bash
# vhd-util check -p on a disk whose locator names the file itself (found by
# the fuzzer: blktap follows it for ever, and -s grows without end) stops
# after 256 files with "error checking parents: -40" and exit 40 (with -s,
# the statistics of the 256 follow, as blktap prints them after an error).
. "$(dirname "$0")/functions.sh"
VU=$B/vhd-util
cp "$ROOT/fuzz/regressions/self-parent-loop.vhd" "$TMP/fuzz.vhd"
for opts in "-p" "-p -s"; do
	# shellcheck disable=SC2086
	timeout 60 "$VU" check -n "$TMP/fuzz.vhd" $opts >"$TMP/out" 2>&1; rc=$?
	[ $rc -eq 40 ] || fail "check $opts on a parent loop exited $rc, expected 40: $(tail -2 "$TMP/out")"
	grep -qxF "error checking parents: -40" "$TMP/out" ||
		fail "check $opts does not give the loop error: $(tail -1 "$TMP/out")"
done
n=$(grep -c "is valid" "$TMP/out")
[ "$n" -eq 0 ] || fail "check -p -s printed 'is valid' $n times (-s prints statistics instead)"
n=$(grep -c "^fuzz.vhd: secs allocated" "$TMP/out")
[ "$n" -eq 256 ] || fail "check -p -s gave statistics for $n files, expected 256"
pass "check -p and -p -s on a self-locating disk: exit 40 after 256 files"
