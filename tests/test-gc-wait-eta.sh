#!/bin/bash
# vhd gc wait with a known merge speed (measured by a previous, rate-limited
# run, kept in the SR): fails at once, exit 4, saying the ETA and the
# timeout, when the GC's ETA for the depth asked exceeds --timeout; waits as
# before, and succeeds, when it fits, or when it is unknown (the rate limit
# lifted since the speed was measured).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; rm -rf "$TMP"' EXIT
SR=$TMP/sr
mkdir -p "$SR"
small_chain "$SR" a 256 || fail "chain a"
"$VHD" gc run --once --quiet-period 0 --rate-limit 128K "$SR" 2>"$TMP/run1.log" ||
	{ cat "$TMP/run1.log"; fail "first run"; }
speed=$(json_get "$(cat "$SR/.vhd-gc-speed")" 'j["bytes_per_second"]') || fail "no speed file"
echo "checked: the first run (128 KiB/s) measured $speed bytes/s"

# 1 MiB to merge in c's chain: over 6 s at that speed
small_chain "$SR" c 1024 || fail "chain c"
want=$(content_sha "$SR/c2.vhd")
gc_start "$SR" --quiet-period 0 --interval 0.1 --rate-limit 128K || fail "GC did not start"
t0=$(date +%s%N)
expect_exit 4 "$VHD" gc wait "$SR" --vhd "$SR/c2.vhd" --max-depth 1 --timeout 3 --json
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 1500 ] || fail "the early failure took $ms ms"
out=$(grep -v '^vhd:' "$TMP/.out")
[ "$(json_get "$out" 'j["ok"] is False and j["reason"] == "eta" and j["eta"] > 3')" = True ] ||
	fail "wait's JSON: $out"
eta=$(json_get "$out" 'round(j["eta"])')
grep -q "c2.vhd: the GC's ETA for depth <= 1 is $eta s, more than --timeout 3 s (merge speed .*/s) (eta)" "$TMP/.out" ||
	fail "message: $(cat "$TMP/.out")"
[ "$("$VHD" depth "$SR/c2.vhd")" = 3 ] || fail "c2.vhd already merged: the failure was not early"
echo "checked: ETA $eta s > --timeout 3: exit 4 after $ms ms"

# the ETA of depth 2 (one merge) fits: it waits, and the merge gets there
"$VHD" gc wait "$SR" --vhd "$SR/c2.vhd" --max-depth 2 --timeout 60 --json >"$TMP/ok" 2>&1 ||
	{ cat "$TMP/ok"; fail "wait failed with an ETA that fits"; }
[ "$(json_get "$(cat "$TMP/ok")" 'j["ok"] and j["depth"] == 2 and 0 <= j["eta"] <= 60')" = True ] ||
	fail "wait's JSON: $(cat "$TMP/ok")"
echo "checked: ETA $(json_get "$(cat "$TMP/ok")" 'round(j["eta"], 1)') s to depth 2 <= --timeout 60: waited, depth 2"
# the rate limit lifted: the speed measured under it is only a lower bound,
# the ETA unknown: it waits as before, and gets there
"$VHD" gc set-rate "$SR" 0 || fail "set-rate"
"$VHD" gc wait "$SR" --vhd "$SR/c2.vhd" --max-depth 1 --timeout 60 --json >"$TMP/ok" 2>&1 ||
	{ cat "$TMP/ok"; fail "wait failed without an ETA"; }
[ "$(json_get "$(cat "$TMP/ok")" 'j["ok"] and j["depth"] == 1 and j["eta"] is None')" = True ] ||
	fail "wait's JSON: $(cat "$TMP/ok")"
[ "$("$VHD" depth "$SR/c2.vhd")" = 1 ] || fail "c2.vhd not merged"
[ "$(content_sha "$SR/c2.vhd")" = "$want" ] || fail "c2.vhd's content changed"
pass "wait: exit 4 at once when the ETA ($eta s) exceeds --timeout, success when it fits or is unknown"
