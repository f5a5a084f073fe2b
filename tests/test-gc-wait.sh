#!/bin/bash
# vhd gc wait: succeeds when the chain is short enough; fails early with the
# reason: GC not running, paused, waiting for space, nothing to shorten the
# chain (leaf in use), a damaged VHD in the chain, timeout.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; kill $HOLD 2>/dev/null; rm -rf "$TMP"' EXIT
HOLD=
SR=$TMP/sr
make_sr "$SR" 6 64 2 || fail "building the SR"
# data in each of b01's 32 blocks (the hidden layers go in one commit, first):
# more blocks than the merge keeps in flight, so at 1 KiB/s that merge cannot
# end before the first wait's timeout, so no speed is measured and the GC has
# no ETA (with one, a wait that cannot make its --timeout fails at once:
# "eta", tests/test-gc-wait-eta.sh)
rand_sectors 64 >"$TMP/32k"
for blk in $(seq 0 31); do
	"$VHDIO" write "$SR/b01.vhd" $((blk * 2097152 + 4096)) <"$TMP/32k" || fail "writing b01"
done
for f in "$SR"/s*.vhd; do rm "$f"; done
want=$(content_sha "$SR/leaf.vhd")
reason() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)["reason"])'; }

r=$("$VHD" gc wait "$SR" --vhd "$SR/leaf.vhd" --max-depth 2 --json 2>/dev/null | reason)
[ "$r" = not-running ] || fail "without a GC: reason '$r'"

gc_start "$SR" --quiet-period 0 --interval 0.1 --rate-limit 1K || fail "GC did not start"
r=$("$VHD" gc wait "$SR" --vhd "$SR/leaf.vhd" --max-depth 2 --timeout 1 --json 2>/dev/null | reason)
[ "$r" = timeout ] || { gc_status; cat "$GC_LOG"; fail "slow GC: reason '$r'"; }
"$VHD" gc pause "$SR" || fail pause
r=$("$VHD" gc wait "$SR" --vhd "$SR/leaf.vhd" --max-depth 2 --json 2>/dev/null | reason)
[ "$r" = paused ] || fail "paused GC: reason '$r'"
"$VHD" gc resume "$SR" || fail resume
"$VHD" gc set-rate "$SR" 0 || fail set-rate
"$VHD" gc wait "$SR" --vhd "$SR/leaf.vhd" --max-depth 2 --timeout 40 >"$TMP/ok" 2>&1 || { cat "$TMP/ok"; gc_status; cat "$GC_LOG"; fail "wait failed"; }
d=$("$VHD" depth "$SR/leaf.vhd")
[ "$d" -le 2 ] || fail "wait returned at depth $d"
[ "$(content_sha "$SR/leaf.vhd")" = "$want" ] || fail "leaf content changed"

# a leaf in use (its write lock held) is not leaf-coalesced: nothing to do
"$VHD" gc wait "$SR" --vhd "$SR/leaf.vhd" --max-depth 1 --timeout 40 >/dev/null 2>&1 || fail "depth 1 not reached"
"$VHD" create "$SR/c0.vhd" 8M >/dev/null && "$VHD" snapshot "$SR/c0.vhd" "$SR/c1.vhd" >/dev/null ||
	fail "second chain"
"$PY" -c 'import fcntl,sys,time; f=open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)' "$SR/c1.vhd" &
HOLD=$!
sleep 0.7
"$VHD" set "$SR/c0.vhd" hidden on >/dev/null || fail "hiding c0"
r=$("$VHD" gc wait "$SR" --vhd "$SR/c1.vhd" --max-depth 1 --timeout 30 --json 2>"$TMP/err" | reason)
[ "$r" = nothing-to-do ] || fail "leaf in use: reason '$r'"
grep -q "in use" "$TMP/err" || fail "leaf in use: no reason given: $(cat "$TMP/err")"
# (paused while the next chain is set up: it would leaf-coalesce c1 at once)
"$VHD" gc pause "$SR" || fail pause
kill $HOLD; wait $HOLD 2>/dev/null; HOLD=

# a damaged VHD of the chain: reported, never touched
"$VHD" snapshot "$SR/c1.vhd" "$SR/c2.vhd" >/dev/null && "$VHD" set "$SR/c1.vhd" hidden on >/dev/null || fail "third level"
printf 'garbage!' | dd of="$SR/c0.vhd" bs=1 seek=$(( $(stat -c %s "$SR/c0.vhd") - 512 )) conv=notrunc 2>/dev/null
before=$(raw_sha "$SR/c0.vhd")
"$VHD" gc resume "$SR" || fail resume
r=$("$VHD" gc wait "$SR" --vhd "$SR/c2.vhd" --max-depth 1 --timeout 30 --json 2>"$TMP/err" | reason)
[ "$r" = broken ] || fail "damaged parent: reason '$r'"
wait_for 10 'any(b["vhd"] == "c0.vhd" for b in j["broken"])' || fail "damaged VHD not reported"
sleep 1
[ "$(raw_sha "$SR/c0.vhd")" = "$before" ] || fail "damaged VHD was touched"
gc_stop

# not enough space: the operation waits and says so
make_sr "$TMP/sr2" 2 8 2 && rm "$TMP"/sr2/s*.vhd || fail "SR 2"
gc_start "$TMP/sr2" --quiet-period 0 --interval 0.1 --min-free 1000T || fail "GC 2 did not start"
wait_for 10 'j["state"] == "waiting-for-space" and "MiB" in j["note"]' || fail "no space wait"
r=$("$VHD" gc wait "$TMP/sr2" --vhd "$TMP/sr2/leaf.vhd" --max-depth 1 --stuck-after 1 --json 2>/dev/null | reason)
[ "$r" = no-space ] || fail "space wait: reason '$r'"
grep -q "waiting for space" "$GC_LOG" || fail "space wait not logged"
pass "gc wait: success, not running, paused, timeout, in use, damaged, no space"
