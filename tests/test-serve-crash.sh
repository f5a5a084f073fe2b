#!/bin/bash
# test-serve-crash.sh - durability of writes through NBD: nbdkit with the
# plugin runs under tests/preload/crashpoint.so and is killed (kill -9, or a
# power cut that loses a random part of what was not fsynced) at a random
# one of the calls that change the file, while a client sends batches of 16
# concurrent writes, zeroes and trims, each batch ended by a FLUSH
# (tests/tools/nbd-crash.py).  After the crash `vhd check` must pass, every
# sector must hold what it held at the last acknowledged FLUSH or a value
# written since, and `vhd serve` must open the file again (lock gone).
# SERVE_CRASH_ROUNDS (default 6) rounds, half kill, half power loss.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit
CRASH_PY="$ROOT/tests/tools/nbd-crash.py"
PLUGIN=$B/nbdkit-vhd-plugin.so
rounds=${SERVE_CRASH_ROUNDS:-6}
export CRASH_PRELOAD=$CRASHPOINT

"$VHD" create "$TMP/count.vhd" 16M >/dev/null || fail "create"
CRASH_COUNT_FILE=$TMP/count "$PY" "$CRASH_PY" "$TMP/count.vhd" "$PLUGIN" "$VHDIO" 0 >/dev/null ||
	fail "the run without crash failed"
calls=$(cat "$TMP/count")
[ "$calls" -gt 50 ] || fail "only $calls counted calls in a whole run"
for r in $(seq "$rounds"); do
	mode=kill; [ $((r % 2)) -eq 0 ] && mode=powerloss
	at=$(( (RANDOM * 32768 + RANDOM) % calls + 1 ))
	rm -f "$TMP/d.vhd"
	"$VHD" create "$TMP/d.vhd" 16M >/dev/null || fail "create"
	out=$("$PY" "$CRASH_PY" "$TMP/d.vhd" "$PLUGIN" "$VHDIO" "$r" "$at" "$mode") ||
		fail "round $r ($mode at call $at of $calls): $out"
	"$VHD" check "$TMP/d.vhd" >"$TMP/check" 2>&1 ||
		{ cat "$TMP/check"; fail "round $r ($mode at call $at): vhd check after the crash"; }
	serve_start "$TMP/d.vhd"
	serve_stop
	echo "round $r: $mode at call $at of $calls: $out"
done
pass "$rounds crashes (kill -9 / power loss) at random points of NBD writes: valid VHD, flushed data kept, reopened"
