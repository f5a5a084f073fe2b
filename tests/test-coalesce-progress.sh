#!/bin/bash
# --progress=json prints one JSON object per line with phase, bytes_done,
# bytes_total, rate and eta, ending with phase "done" and all bytes; nothing
# is printed without it when stdout/stderr are not terminals; --rate-limit
# holds the copy to the rate (a lower bound on the time, never an upper one).
. "$(dirname "$0")/functions.sh"
make_chain "$TMP/c" 1 32 30 || fail chain
cp -a "$TMP/c" "$TMP/d"
start=$(date +%s%N)
"$VHD" coalesce --progress=json --rate-limit 1M "$TMP/c/l1.vhd" >"$TMP/json" 2>"$TMP/err" || fail "coalesce failed"
secs=$(( ($(date +%s%N) - start) / 1000000 ))   # ms
/usr/bin/python3 - "$TMP/json" "$secs" <<'PY' || fail "bad progress output"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for o in lines:
    for k in ("phase", "bytes_done", "bytes_total", "rate", "eta", "resumed"):
        assert k in o, (k, o)
phases = [o["phase"] for o in lines]
assert phases[-1] == "done", phases
last = lines[-1]
assert last["bytes_done"] == last["bytes_total"] > 0, last
done = [o["bytes_done"] for o in lines]
assert done == sorted(done), "bytes_done went backwards"
total = last["bytes_total"]
secs = int(sys.argv[2]) / 1000
assert secs >= 0.8 * total / 1048576, f"{total} bytes at 1 MiB/s took only {secs}s"
print(f"{len(lines)} lines, {total} bytes in {secs:.1f}s")
PY
"$VHD" coalesce "$TMP/d/l1.vhd" >"$TMP/quiet" 2>&1 || fail "coalesce failed"
[ -s "$TMP/quiet" ] && fail "output without a terminal: $(cat "$TMP/quiet")"
pass "json progress is well formed and complete; rate limit holds; quiet off a terminal"
