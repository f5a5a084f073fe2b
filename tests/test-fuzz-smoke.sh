#!/bin/bash
# `make fuzz` cannot rot: fuzz/run.sh builds both libFuzzer targets
# (fuzz-open-check, fuzz-vhdutil) and runs each for a few seconds
# (FUZZ_SMOKE_SECONDS, default 5) from the seeds; neither may crash, and
# each must have run inputs.  A crash is kept in $B/fuzz/smoke-*.
. "$(dirname "$0")/functions.sh"
requires clang
secs=${FUZZ_SMOKE_SECONDS:-5}
rm -f "$B"/fuzz/smoke-*
export B
FUZZ_SECONDS=$secs FUZZ_CORPUS=$TMP/corpus FUZZ_ARTIFACTS=$B/fuzz/smoke- \
	sh "$ROOT/fuzz/run.sh" >"$TMP/log" 2>&1; rc=$?
if [ $rc -ne 0 ]; then
	grep -E "ERROR|SUMMARY|==[0-9]+==|Test unit written|fuzz:" "$TMP/log" | head -30 >&2
	fail "make fuzz (FUZZ_SECONDS=$secs) exited $rc; saved: $(ls "$B"/fuzz/smoke-* 2>/dev/null)"
fi
for target in open-check vhdutil; do
	grep -q "^fuzz: fuzz-$target: corpus now .* exit 0$" "$TMP/log" || fail "fuzz-$target did not run"
	runs=$(sed -n '/fuzz-'$target' for/,/corpus now/s/^stat::number_of_executed_units: *//p' "$TMP/log")
	[ "${runs:-0}" -gt 50 ] || fail "fuzz-$target ran ${runs:-no} inputs in ${secs}s"
	echo "fuzz-$target: $runs inputs in ${secs}s, no crash"
done
pass "make fuzz for ${secs}s per target: both ran, neither crashed"
