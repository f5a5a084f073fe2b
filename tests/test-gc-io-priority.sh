#!/bin/bash
# --io-priority: refused with exit 2 when malformed (gc run, coalesce,
# commit); during a GC merge the worker and the copy threads run in the
# idle class while the daemon's main thread keeps its own priority (each
# thread has its own), and `vhd coalesce --io-priority best-effort:6` runs
# every thread at best-effort level 6.  Read with ionice -p TID.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
requires ionice
trap 'gc_stop; [ -n "${CPID:-}" ] && kill "$CPID" 2>/dev/null; rm -rf "$TMP"' EXIT
SR=$TMP/sr
mkdir -p "$SR"
"$B/tests/mkchain" --size 64M --base-data 8M --writes 400 --min 16K --max 64K --touch-all "$SR" >/dev/null ||
	fail "mkchain"

for bad in "" realtime idle:3 best-effort:8 best-effort:-1 best-effort: best-effortx best-effort:2x; do
	expect_exit 2 "$VHD" gc run --once --io-priority "$bad" "$SR"
	grep -q "bad I/O priority" "$TMP/.out" || fail "gc run --io-priority '$bad': unclear: $(cat "$TMP/.out")"
	expect_exit 2 "$VHD" coalesce --io-priority "$bad" "$SR/l1.vhd"
	expect_exit 2 "$VHD" commit --io-priority "$bad" "$SR/l1.vhd" "$SR/l0.vhd"
done
"$VHD" check "$SR/l1.vhd" >/dev/null || fail "a refused command changed the chain"

# thread_prios PID: "TID ionice-output" for every thread of PID
thread_prios() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "${t##*/} $(ionice -p "${t##*/}" 2>/dev/null)"
	done
}

# the GC: leaf-coalesce l1 into l0, slowed so that the threads can be seen
cp "$SR/l1.vhd" "$TMP/l1.orig"
gc_start "$SR" --quiet-period 0 --interval 0.1 --rate-limit 2M --io-priority idle ||
	fail "GC did not start"
wait_for 20 'j["operation"] is not None and j["operation"]["bytes_done"] > 0' || fail "no merge running"
thread_prios "$GC_PID" >"$TMP/gc-prios"
idle=$(grep -c ' idle$' "$TMP/gc-prios")
[ "$idle" -ge 3 ] || { cat "$TMP/gc-prios"; fail "$idle idle threads in the GC, want the worker and its copy threads"; }
main=$(grep "^$GC_PID " "$TMP/gc-prios")
case $main in *idle*) fail "the GC's main thread was made idle too: $main" ;; esac
"$VHD" gc set-rate "$SR" 0 || fail "set-rate"
wait_for 20 'j["totals"]["operations"]["leaf-coalesce"]["ok"] == 1' || fail "the merge did not end"
gc_stop

# vhd coalesce: every thread at best-effort 6
mkdir -p "$TMP/c"
"$B/tests/mkchain" --size 64M --base-data 8M --writes 400 --min 16K --max 64K --touch-all "$TMP/c" >/dev/null ||
	fail "mkchain"
"$VHD" coalesce --rate-limit 2M --io-priority best-effort:6 "$TMP/c/l1.vhd" &
CPID=$!
n=0
for _ in $(seq 100); do
	thread_prios "$CPID" >"$TMP/c-prios"
	n=$(wc -l <"$TMP/c-prios")
	[ "$n" -gt 2 ] && break
	sleep 0.1
done
[ "$n" -gt 2 ] || fail "no copy threads seen in vhd coalesce"
others=$(grep -vc 'best-effort: prio 6$' "$TMP/c-prios")
[ "$others" = 0 ] || { cat "$TMP/c-prios"; fail "threads of vhd coalesce not at best-effort 6"; }
kill "$CPID"; wait "$CPID"; rc=$?; CPID=
[ "$rc" = 5 ] || fail "stopped coalesce exited $rc, expected 5"
"$VHD" coalesce --io-priority idle "$TMP/c/l1.vhd" || fail "resumed coalesce at idle"
pass "bad priorities refused (exit 2, 8 values x 3 commands); GC: $idle idle threads (worker and copy threads), main thread '${main#* }'; coalesce: $n threads at best-effort 6, resumed at idle"
