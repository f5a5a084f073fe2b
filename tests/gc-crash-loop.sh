#!/bin/bash
# gc-crash-loop.sh - kill the GC at random points and prove it converges
# with every visible VHD unchanged.
# The SR is shaped like a XenServer one after 15 snapshots of a VM disk: a
# 15-level chain of hidden VHDs with data in each, each with an empty visible
# snapshot beside its hidden child, the VM's disk on top.  Most snapshots are
# then deleted (some files removed, one hidden: garbage), so the GC has
# coalesces, a garbage removal and a leaf-coalesce to do.
# Each round crashes `vhd gc run --once` at a random counted file operation
# (tests/preload/crashpoint.c: kill -9, or a power cut dropping unsynced
# writes) or with a real kill -9 after a random delay, then starts it again
# until it converges, and compares the checksums of every visible VHD with
# those taken before, the leaf's UUID, the final chain depth and that no
# journal is left.  CRASH_ROUNDS rounds (default 40); CRASH_SEED repeats a run.
# GC_CRASH_SHAPE=onepass: the demo's 8-level SR with every snapshot deleted,
# which the GC merges in one pass (one commit of the 7 hidden layers above
# b00, then the leaf-coalesce); some rounds then finish the interrupted
# commit with `vhd recover` before the GC runs again.
# Run by `make crash-test`; a few rounds by tests/test-gc-crash.sh and
# tests/test-gc-onepass-crash.sh.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
rounds=${CRASH_ROUNDS:-40}
seed=${CRASH_SEED:-$$}
RANDOM=$seed
echo "gc-crash-loop: $rounds rounds, seed $seed"

shape=${GC_CRASH_SHAPE:-xen}
if [ "$shape" = onepass ]; then
	make_sr "$TMP/proto" 8 16 3 || fail "building the SR"
	rm "$TMP"/proto/s*.vhd
else
	make_sr "$TMP/proto" 15 8 3 || fail "building the SR"
	# snapshots deleted by the user: most files go, s03 is hidden (garbage)
	for i in 00 01 02 04 06 07 08 09 11 12 13; do rm "$TMP/proto/s$i.vhd"; done
	"$VHD" set "$TMP/proto/s03.vhd" hidden on >/dev/null || fail "hiding s03"
fi
sr_sums "$TMP/proto" >"$TMP/want" || fail "checksums"
leaf_uuid() { "$VHD" info --json "$1" | json_get "$(cat)" 'j["uuid"]'; }
want_uuid=$(leaf_uuid "$TMP/proto/leaf.vhd")
gc_cmd=("$VHD" gc run --once --quiet-period 0 --interval 0.05 "$TMP/w")
run_gc() { "${gc_cmd[@]}"; }
# kill_gc_after MS: start the GC and kill -9 it after MS milliseconds.  The
# GC is started as a simple command, so $! is the GC itself (a function or a
# subshell in the background would give the pid of a shell around it, and
# the GC would go on running while the SR is checked).  Sets killed=1 when
# the signal ended it, killed=0 when it had finished first.
kill_gc_after() {
	local pid rc
	"${gc_cmd[@]}" >"$TMP/crash.out" 2>&1 &
	pid=$!
	sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null; rc=$?   # (quiet: no "Killed" line)
	# reaped, so gone: nothing of that GC still touches the SR
	[ -e "/proc/$pid" ] && fail "GC $pid still running after kill -9"
	case $rc in
	137) killed=1 ;;
	0) killed=0 ;;
	*) cat "$TMP/crash.out"; fail "GC exited $rc before the kill" ;;
	esac
}

verify() {   # verify WHEN
	sr_sums "$TMP/w" >"$TMP/got" || fail "$1: checksums"
	# every visible disk of before still reads the same (none is removed)
	while read -r name sum; do
		grep -qx "$name $sum" "$TMP/got" || fail "$1: $name changed or is gone"
	done <"$TMP/want"
}

rm -rf "$TMP/w" && cp -a "$TMP/proto" "$TMP/w"
steps=$(crash_count "${gc_cmd[@]}") ||
	fail "clean run failed"
verify "clean run"
want_depth=$("$VHD" depth "$TMP/w/leaf.vhd")
[ "$want_depth" -lt 16 ] || fail "clean run: leaf still $want_depth deep"
[ "$(leaf_uuid "$TMP/w/leaf.vhd")" = "$want_uuid" ] || fail "clean run: leaf UUID changed"
ls -A "$TMP/w" | grep -q 's03.vhd' && fail "clean run: garbage s03 left"
if [ "$shape" = onepass ]; then
	[ "$want_depth" = 1 ] || fail "clean run: leaf $want_depth deep, expected 1"
fi
# the real kill -9 lands within the time a whole run takes (without the
# counting preload, which slows it)
rm -rf "$TMP/w" && cp -a "$TMP/proto" "$TMP/w"
t0=$(date +%s%N)
run_gc >"$TMP/timed.out" 2>&1 || { cat "$TMP/timed.out"; fail "timed clean run failed"; }
run_ms=$(( ($(date +%s%N) - t0) / 1000000 + 1 ))
if [ "$shape" = onepass ]; then   # one pass: one commit of the seven layers, no coalesce
	grep -q "start commit b07.vhd into b00.vhd (layers b01.vhd/b02.vhd/b03.vhd/b04.vhd/b05.vhd/b06.vhd/b07.vhd," \
		"$TMP/timed.out" && ! grep -q "start coalesce" "$TMP/timed.out" ||
		{ cat "$TMP/timed.out"; fail "clean run: not one commit of b01..b07"; }
fi
echo "clean run: $steps counted operations, ${run_ms} ms, leaf depth 16 -> $want_depth"

modes=(kill kill powerloss realkill)
real_kills=0
for r in $(seq "$rounds"); do
	mode=${modes[RANDOM % 4]}
	rm -rf "$TMP/w" && cp -a "$TMP/proto" "$TMP/w"
	if [ "$mode" = realkill ]; then
		delay=$(( RANDOM % run_ms ))
		what="round $r: kill -9 after ${delay} ms"
		kill_gc_after "$delay"
		[ "$killed" = 1 ] && real_kills=$((real_kills + 1)) || what="$what (it had finished)"
	else
		at=$(( RANDOM * 32768 % steps + RANDOM % steps + 1 ))
		at=$(( at > steps ? at % steps + 1 : at ))
		what="round $r: $mode at $at/$steps"
		crash_run "$at" "$mode" "$RANDOM" "${gc_cmd[@]}" >"$TMP/crash.out" 2>&1
	fi
	verify "$what, after the crash"
	# a second crash during the recovery, now and then
	if [ $((RANDOM % 4)) -eq 0 ] && [ "$mode" != realkill ]; then
		at2=$(( RANDOM % 200 + 1 ))
		crash_run "$at2" kill 1 "${gc_cmd[@]}" >"$TMP/crash2.out" 2>&1
		verify "$what, then killed at $at2 while recovering"
	fi
	# the interrupted commit finished by `vhd recover` instead, now and then
	if [ "$shape" = onepass ] && [ $((RANDOM % 3)) -eq 0 ]; then
		"$VHD" recover "$TMP/w" >"$TMP/recover.out" 2>&1 ||
			{ cat "$TMP/recover.out"; fail "$what: vhd recover failed"; }
		verify "$what, after vhd recover"
		what="$what, vhd recover"
	fi
	run_gc >"$TMP/rerun.out" 2>&1 || { tail -20 "$TMP/rerun.out"; fail "$what: restart failed"; }
	verify "$what, after the restart"
	depth=$("$VHD" depth "$TMP/w/leaf.vhd")
	[ "$depth" = "$want_depth" ] || { tail "$TMP/rerun.out"; fail "$what: leaf depth $depth, expected $want_depth"; }
	[ "$(leaf_uuid "$TMP/w/leaf.vhd")" = "$want_uuid" ] || fail "$what: leaf UUID changed"
	ls -A "$TMP/w" | grep -q 'journal' && { ls -A "$TMP/w"; fail "$what: journal left behind"; }
	ls -A "$TMP/w" | grep -q 's03.vhd' && fail "$what: garbage left"
	for f in "$TMP"/w/*.vhd; do
		"$VHD" check "$f" >"$TMP/check.out" 2>&1 || { cat "$TMP/check.out"; fail "$what: $(basename "$f") fails check"; }
	done
	echo "ok $what"
done
pass "$rounds GC crash rounds ($shape SR, seed $seed; $real_kills real kill -9): converged, every visible VHD unchanged"
