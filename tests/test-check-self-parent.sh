#!/bin/bash
# A differencing disk whose header names its own UUID as parent (found by
# the fuzzer) is invalid for check and refused by open, with a clear reason,
# instead of "valid" and a 256-deep chain.
. "$(dirname "$0")/functions.sh"
cp "$ROOT/fuzz/regressions/self-parent-loop.vhd" "$TMP/fuzz.vhd"
expect_exit 3 "$VHD" check "$TMP/fuzz.vhd"
grep -q "parent uuid is the disk's own" "$TMP/.out" || fail "check does not name the loop: $(cat "$TMP/.out")"
"$VHDIO" cat "$TMP/fuzz.vhd" > /dev/null 2> "$TMP/err" && fail "a self-parented disk opened"
grep -q "names itself as its parent" "$TMP/err" || fail "open does not say why: $(cat "$TMP/err")"
pass "self-parented disk: check exit 3 naming the loop, open refused"
