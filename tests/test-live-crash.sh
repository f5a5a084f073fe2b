#!/bin/bash
# test-live-crash.sh - a live leaf-coalesce survives the death of its
# server at any point: nbdkit with the plugin (tests/tools/live-crash.py)
# is killed with SIGKILL at a random moment of the merge, or by
# tests/preload/crashpoint.so at a random counted call (kill -9 there, or a
# power cut losing a random part of what was not fsynced), while a guest
# writes batches ended by a FLUSH; a quarter of the rounds keep the guest
# idle during the merge and crash in the last calls of the run, which are
# the pivot's.  After the crash: `vhd check` passes and every sector holds
# what it held at the last acknowledged FLUSH or a value written since.
# In half of the pivot rounds `vhd recover DIR` runs first and must leave
# no swap pending, with the leaf's UUID at the leaf's path.
# Then `vhd serve` starts again: an acknowledged merge is resumed (or was
# finished by the pivot's recovery), one not acknowledged is asked for
# again; it completes, the chain is one shorter, and the content is what
# the crash left.  LIVE_CRASH_ROUNDS (default 4) rounds.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
requires nbdkit
HARNESS="$ROOT/tests/tools/live-crash.py"
PLUGIN=$B/nbdkit-vhd-plugin.so
rounds=${LIVE_CRASH_ROUNDS:-4}
export CRASH_PRELOAD=$CRASHPOINT

# count_calls GUEST SEED: the calls of a run without a crash, to choose
# crash points in (with an idle guest, the same in every run of that seed)
count_calls() {
	local c=$TMP/count-$1-$2
	live_chain "$c" 16
	CRASH_COUNT_FILE=$c/n "$PY" "$HARNESS" "$c" "$PLUGIN" "$VHDIO" "$2" "$1" >"$c/out" 2>&1 ||
		{ cat "$c/out" >&2; fail "the $1 run without crash failed"; }
	cat "$c/n"
	rm -rf "$c"
}
busy_calls=$(count_calls busy 1)
[ "$busy_calls" -gt 100 ] || fail "too few counted calls: $busy_calls"

# restart with `vhd serve`: the merge resumes or is asked for again, then
# completes; the content stays what the crash left
restart_and_finish() {
	local d=$1 r=$2 phase depth
	serve_start "$d/leaf.vhd"
	depth=$("$VHD" depth "$d/leaf.vhd")
	phase=$(live_field 'l["phase"]')
	if [ "$phase" = idle ] && [ "$depth" = 2 ]; then
		grep -q '"acked": true' "$d/state.json" &&
			fail "round $r: an acknowledged live coalesce was not resumed after the crash"
		ctl_query '{"cmd":"live-coalesce"}' | grep -q '"ok":true' || fail "round $r: live-coalesce refused"
	fi
	if [ "$depth" = 2 ]; then
		phase=$(live_wait done failed) || fail "round $r: the resumed merge did not finish: $phase"
		[ "$phase" = done ] || fail "round $r: the resumed merge failed: $(live_field 'l["error"]')"
	fi
	serve_stop
	[ "$("$VHD" depth "$d/leaf.vhd")" = 1 ] || fail "round $r: chain depth not 1 after the merge"
	[ ! -e "$d/base.vhd" ] || fail "round $r: the parent's old name is still there"
	"$VHD" check "$d/leaf.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "round $r: vhd check after the merge"; }
	"$VHDIO" cat "$d/leaf.vhd" | cmp -s - "$d/after.raw" || fail "round $r: content changed by the resumed merge"
	[ "$(uuid_of "$d/leaf.vhd")" = "$uuid" ] || fail "round $r: the leaf's path lost the leaf's UUID"
}

for r in $(seq "$rounds"); do
	d=$TMP/r$r
	live_chain "$d" 16
	uuid=$(uuid_of "$d/leaf.vhd")
	calls=$busy_calls
	case $((r % 4)) in
	1) guest=idle; calls=$(count_calls idle "$r")
	   at=$(( calls - RANDOM % 14 - 1 )); mode=$([ $((r % 8)) -eq 5 ] && echo kill || echo powerloss) ;;
	2) guest=busy; at="after:0.$(( RANDOM % 9 + 1 ))"; mode=kill ;;
	3) guest=busy; at=$(( (RANDOM * 32768 + RANDOM) % busy_calls + 1 )); mode=kill ;;
	0) guest=busy; at=$(( (RANDOM * 32768 + RANDOM) % busy_calls + 1 )); mode=powerloss ;;
	esac
	out=$("$PY" "$HARNESS" "$d" "$PLUGIN" "$VHDIO" "$r" "$guest" "$at" "$mode") ||
		fail "round $r ($guest guest, $mode at $at): $out"
	"$VHD" check --chain "$d/leaf.vhd" >"$TMP/check" 2>&1 ||
		{ cat "$TMP/check"; fail "round $r ($mode at $at): vhd check after the crash"; }
	if [ "$guest" = idle ] && [ $((r % 8)) -eq 1 ]; then
		"$VHD" recover "$d" >"$TMP/rec" 2>&1 || { cat "$TMP/rec"; fail "round $r: vhd recover after the crash"; }
		[ ! -e "$d/.vhdleaf-leaf.vhd.journal" ] || fail "round $r: vhd recover left the leaf swap pending"
		[ "$(uuid_of "$d/leaf.vhd")" = "$uuid" ] || fail "round $r: the leaf's UUID changed (vhd recover)"
	fi
	restart_and_finish "$d" "$r"
	echo "round $r: $guest guest, $mode at $at (of $calls calls): $out"
	rm -rf "$d"
done
pass "$rounds crashes (SIGKILL at a random moment, kill -9 / power loss at a random call, in the pivot) during a live coalesce: flushed data kept, vhd check passes, the merge resumed and completed, depth 1"
