#!/bin/bash
# crash-loop.sh - kill a merge at random points and prove nothing is lost.
# For CRASH_ROUNDS rounds (default 60): pick a scenario (coalesce, coalesce
# --relink, commit --relink over 3 layers), a crash point among the merge's
# counted file operations, and a mode (kill -9, power loss that drops
# unsynced writes, ENOSPC, EIO).  After the crash every visible disk must
# read as before; then `vhd recover` and a re-run must finish the merge,
# after which the visible disks still read as before and the base passes
# `vhd check` when it is built.  Run by `make crash-test`; a few rounds by
# tests/test-coalesce-crash.sh.  CRASH_SEED makes a run repeatable.
. "$(dirname "$0")/functions.sh"
rounds=${CRASH_ROUNDS:-60}
seed=${CRASH_SEED:-$$}
RANDOM=$seed
echo "crash-loop: $rounds rounds, seed $seed"

# scenario NAME: sets top, base, cmd (the merge), visible (files to verify)
setup_scenario() {
	rm -rf "$TMP/w" && cp -a "$TMP/proto" "$TMP/w"
	case $1 in
	coalesce) cmd=("$VHD" coalesce -B 4 "$TMP/w/l2.vhd"); visible=(l2 l3 sib) ;;
	relink)   cmd=("$VHD" coalesce -B 4 --relink "$TMP/w/l2.vhd"); visible=(l3 sib) ;;
	commit)   cmd=("$VHD" commit -B 4 --relink --base "$TMP/w/l0.vhd" "$TMP/w/l2.vhd"); visible=(l3 sib) ;;
	esac
}
# a sparse base, so that merges allocate many new blocks in it
make_chain "$TMP/proto" 3 64 25 3 || fail "building the chain"
# a visible snapshot beside l2's child, so the relink has two children
"$VHD" snapshot "$TMP/proto/l2.vhd" "$TMP/proto/sib.vhd" >/dev/null || fail snapshot
random_writes "$TMP/proto/sib.vhd" 64 5 64
"$VHD" set "$TMP/proto/l2.vhd" hidden on >/dev/null
declare -A want
for f in l2 l3 sib; do want[$f]=$(content_sha "$TMP/proto/$f.vhd"); done

verify() {   # verify WHEN: every visible disk reads as before
	for f in "${visible[@]}"; do
		[ -e "$TMP/w/$f.vhd" ] || fail "$1: $f.vhd is gone"
		got=$(content_sha "$TMP/w/$f.vhd") || fail "$1: $f.vhd unreadable"
		[ "$got" = "${want[$f]}" ] || fail "$1: $f.vhd content changed"
	done
}

scenarios=(coalesce relink commit)
modes=(kill powerloss enospc eio)
declare -A steps
for s in "${scenarios[@]}"; do
	setup_scenario "$s"
	steps[$s]=$(crash_count "${cmd[@]}") || fail "$s: clean run failed"
	verify "$s clean run"
done
for r in $(seq "$rounds"); do
	s=${scenarios[RANDOM % 3]} mode=${modes[RANDOM % 4]}
	at=$(( RANDOM % steps[$s] + 1 ))
	what="round $r: $s, $mode at $at/${steps[$s]}"
	setup_scenario "$s"
	crash_run "$at" "$mode" "$RANDOM" "${cmd[@]}" >"$TMP/crash.out" 2>&1
	verify "$what, after the crash"
	"$VHD" recover "$TMP/w" >"$TMP/rec.out" 2>&1 || { cat "$TMP/rec.out"; fail "$what: recover failed"; }
	verify "$what, after recover"
	if [ -e "$TMP/w/l2.vhd" ]; then   # not finished yet (or not begun): run again
		"${cmd[@]}" >"$TMP/rerun.out" 2>&1 || { cat "$TMP/rerun.out"; fail "$what: re-run failed"; }
	fi
	verify "$what, after completion"
	ls -a "$TMP/w" | grep -q 'journal' && fail "$what: journal left behind"
	(cd "$TMP/w" && "$B/vhd-util" check -n l0.vhd) >"$TMP/check.out" 2>&1 ||
		{ cat "$TMP/check.out"; fail "$what: blktap's check calls the base invalid"; }
	if "$VHD" check --help >/dev/null 2>&1; then
		"$VHD" check "$TMP/w/l0.vhd" >"$TMP/check.out" 2>&1 || { cat "$TMP/check.out"; fail "$what: base fails check"; }
	fi
	echo "ok $what"
done
pass "$rounds crash rounds (seed $seed): every visible disk intact, every merge finished"
