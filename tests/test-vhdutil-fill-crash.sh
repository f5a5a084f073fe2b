#!/bin/bash
# vhd-util fill -b, killed (SIGKILL, power loss) at every file operation:
# the image always opens and checks valid (vhd check and vhd-util check)
# with its content unchanged; completed, every block is allocated.  The
# footer must reach the new end before anything else changes.
. "$(dirname "$0")/functions.sh"
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"
[ -f "$CRASHPOINT" ] || fail "$CRASHPOINT missing (make tests-bin)"

"$VU" create -n o.vhd -s 8 >/dev/null || fail create
rand_sectors 9 | "$VHDIO" write o.vhd $(( 2097152 + 4096 )) || fail write   # block 1 only
want=$(content_sha o.vhd)
n=$(cp o.vhd w.vhd && crash_count "$VU" fill -b -n w.vhd) || fail "fill -b failed"
[ "$n" -ge 4 ] || fail "fill -b made only $n writes"
"$VHD" check w.vhd >/dev/null && [ "$(content_sha w.vhd)" = "$want" ] || fail "completed fill -b"
[ "$("$VU" query -n w.vhd -a)" = 4 ] || fail "fill -b left blocks unallocated"
for at in $(seq 1 "$n"); do
	for mode in kill powerloss; do
		cp o.vhd w.vhd
		crash_run "$at" "$mode" "$at" "$VU" fill -b -n w.vhd >/dev/null 2>&1
		"$VHD" check w.vhd >out 2>&1 || { cat out; fail "$mode at $at: vhd check fails"; }
		"$VU" check -n w.vhd >out 2>&1 || { cat out; fail "$mode at $at: vhd-util check fails"; }
		[ "$(content_sha w.vhd)" = "$want" ] || fail "$mode at $at: content changed"
	done
done
pass "fill -b crashed at each of $n operations (kill, power loss): valid, content kept"
