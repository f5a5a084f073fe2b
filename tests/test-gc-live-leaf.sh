#!/bin/bash
# test-gc-live-leaf.sh - `vhd gc run --once` on an SR whose leaf `vhd serve`
# serves, while fio's nbd engine writes random 4 KiB blocks with crc32c,
# unthrottled: the leaf is in use (its lock) but not skipped; the GC finds
# its server (discovery file, control socket answering for the leaf), asks
# it to merge the leaf live at the GC's --rate-limit (16M) and follows it as its
# own operation: `vhd gc status` shows the leaf-coalesce, live, with its
# phase and bytes while it runs; the GC exits 0 with the log saying who
# merged it and the metrics counting one leaf-coalesce ok.  fio writes and
# verifies round after round from before the GC starts until after it ends
# (every round's verification passes), a verify-only pass reads them again,
# the range fio never wrote equals the content before, the leaf keeps its
# path and UUID at depth 1, and `vhd check` passes.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; serve_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
requires nbdkit fio qemu-img
sr=$TMP/sr
live_chain "$sr" 32
uuid() { "$VHD" info --json "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["uuid"])'; }
u0=$(uuid "$sr/leaf.vhd")
serve_start "$sr/leaf.vhd"
# the guest writes and verifies, round after round, until the GC has ended
# (however long the merge takes on a loaded machine), then ends its round
guest_rounds() {
	local n=0
	while [ ! -e "$TMP/gc.done" ]; do
		FIO_LOOPS=4 fio_guest >"$TMP/fio.out" 2>&1 || { echo "$n" >"$TMP/fio.failed"; return 1; }
		n=$((n + 1))
	done
	echo "$n" >"$TMP/fio.rounds"
}
guest_rounds &
fio_pid=$!
wait_guest_writing
GC_LOG=$TMP/gc.log GC_SOCK=$sr/.vhd-gc.sock
"$VHD" gc run --once --quiet-period 0 --rate-limit 16M --metrics-file "$TMP/metrics" "$sr" 2>"$GC_LOG" &
GC_PID=$!
seen=
for _ in $(seq 200); do
	st=$(gc_status 2>/dev/null) || { sleep 0.05; continue; }
	if [ "$(json_get "$st" 'str((j["operation"] or {}).get("live")) + " " + str((j["operation"] or {}).get("kind"))')" = "True leaf-coalesce" ] &&
	   [ "$(json_get "$st" 'j["operation"]["bytes_done"] > 0')" = True ]; then
		seen=$(json_get "$st" '"phase %s, %d of %d bytes" % (j["operation"]["phase"], j["operation"]["bytes_done"], j["operation"]["bytes_total"])')
		"$VHD" gc status "$sr" >"$TMP/status.txt" || fail "vhd gc status"
		break
	fi
	sleep 0.05
done
[ -n "$seen" ] || { cat "$GC_LOG"; fail "the GC never showed the live leaf-coalesce with bytes moving"; }
grep -q "^now: leaf-coalesce leaf.vhd into base.vhd (live, by its vhd serve), phase " "$TMP/status.txt" ||
	{ cat "$TMP/status.txt"; fail "vhd gc status does not show the live operation"; }
wait "$GC_PID"; rc=$?; GC_PID=
kill -0 "$fio_pid" 2>/dev/null || fail "the guest stopped before the GC ended"
touch "$TMP/gc.done"
[ $rc = 0 ] || { cat "$GC_LOG"; fail "vhd gc run --once exited $rc"; }
grep -q "leaf.vhd: its server (control .*) merges it live" "$GC_LOG" || { cat "$GC_LOG"; fail "the log does not say the server merged it"; }
grep -q "end leaf-coalesce leaf.vhd: ok" "$GC_LOG" || { cat "$GC_LOG"; fail "the leaf-coalesce did not end ok"; }
grep -qx 'vhd_gc_operations_total{kind="leaf-coalesce",result="ok"} 1' "$TMP/metrics" ||
	fail "the metrics do not count the live leaf-coalesce"
wait "$fio_pid" || { tail -20 "$TMP/fio.out"; fail "fio (write and verify) failed in round $(cat "$TMP/fio.failed")"; }
[ "$(ctl_field 's["errors"]')" = 0 ] || fail "requests failed during the merge"
FIO_LOOPS=4 fio_guest --verify_only >"$TMP/verify.out" 2>&1 || { tail -20 "$TMP/verify.out"; fail "fio verify-only pass"; }
qemu-img convert -f raw -O raw "$URI" "$TMP/export.raw" || fail "qemu-img convert of the export"
serve_stop
[ "$("$VHD" depth "$sr/leaf.vhd")" = 1 ] || fail "chain depth not 1 after the GC"
[ ! -e "$sr/base.vhd" ] || fail "the parent's old name is still there"
[ "$(uuid "$sr/leaf.vhd")" = "$u0" ] || fail "the leaf's path lost its UUID"
"$VHD" check "$sr/leaf.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "vhd check after the GC"; }
cmp -s <(tail -c 8388608 "$TMP/export.raw") <(tail -c 8388608 "$sr/model.raw") ||
	fail "the 8 MiB fio never wrote changed"
pass "gc run --once merged the served leaf live under unthrottled fio (crc32c, $(cat "$TMP/fio.rounds") rounds of write and verify): status showed it ($seen), log and metrics count it; fio verify and verify-only pass, untouched range equal, depth 1, UUID kept, check"
