#!/bin/bash
# test-live-coalesce-converge.sh - a live leaf-coalesce converges when the
# guest writes faster than the copy may go: fio (4 KiB random writes,
# crc32c verified as it goes, depth 1, unthrottled) over 4 MiB of a 16 MiB leaf, the merge
# started at 1 MiB/s and raised with set-rate to 8 MiB/s (status shows
# each limit), below the guest's measured write rate.  The status must
# show mirror mode, then done while fio still writes; fio's verification
# and a verify-only pass succeed, the chain is one shorter, `vhd check`
# passes.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
requires nbdkit fio
live_chain "$TMP/c" 16
serve_start "$TMP/c/leaf.vhd"
# verify_backlog: the reads of the verification come between writes, so
# that the guest never stops writing for long (a pause would let the copy
# catch up without mirroring)
FIO_SIZE=4M FIO_LOOPS=100 fio_guest --verify_backlog=256 >"$TMP/fio.out" 2>&1 &
fio_pid=$!
wait_guest_writing
ctl_query '{"cmd":"live-coalesce","rate":1048576}' | grep -q '"ok":true' || fail "live-coalesce refused"
[ "$(live_field 'l["rate_limit"]')" = 1048576 ] || fail "status does not show the rate limit given"
sleep 0.3
ctl_query '{"cmd":"set-rate","rate":8388608}' | grep -q '"ok":true' || fail "set-rate refused"
[ "$(live_field 'l["rate_limit"]')" = 8388608 ] || fail "status does not show the new rate limit"
ctl_query '{"cmd":"set-rate"}' | grep -q '"ok":false' || fail "set-rate without a rate accepted"
seen_mirror=no guest_faster=no phases=
for _ in $(seq 400); do
	read -r phase grate < <(live_field 'l["phase"], int(l["guest_write_rate"])')
	[ "$phase" = mirror ] && seen_mirror=yes
	case " $phases " in *" $phase "*) ;; *) phases="$phases $phase" ;; esac
	[ "$grate" -gt 8388608 ] && guest_faster=yes
	case $phase in done|failed|cancelled) break ;; esac
	sleep 0.05
done
kill -0 "$fio_pid" 2>/dev/null || fail "fio ended before the merge (phases seen:$phases)"
[ "$phase" = done ] || fail "the live merge did not finish: $phase $(live_field 'l["error"]')"
[ "$guest_faster" = yes ] || fail "the guest never wrote faster than the rate limit: the test proves nothing"
[ "$seen_mirror" = yes ] || fail "mirror mode never seen in the status (phases seen:$phases; $(live_field 'l["passes"]') passes)"
summary=$(live_field '"%d passes, copied %d bytes, pivot %.1f ms" % (l["passes"], l["bytes_done"], l["pivot_ms"])')
wait "$fio_pid" || { tail -20 "$TMP/fio.out"; fail "fio (write and verify) failed"; }
FIO_SIZE=4M FIO_LOOPS=1 fio_guest --verify_only >"$TMP/verify.out" 2>&1 ||
	{ tail -20 "$TMP/verify.out"; fail "fio verify-only pass"; }
serve_stop
[ "$("$VHD" depth "$TMP/c/leaf.vhd")" = 1 ] || fail "chain depth not 1 after the merge"
"$VHD" check "$TMP/c/leaf.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "vhd check after the merge"; }
pass "guest faster than the 1 then 8 MiB/s limit (set-rate seen in status): mirror mode, converged ($summary); fio verified, depth 1, vhd check"
