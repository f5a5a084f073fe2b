#!/bin/bash
# A coalesce stopped by SIGINT exits 5 and leaves a journal; the next run
# resumes where it stopped (its first progress line is resumed, with bytes
# already done) and finishes; the chain reads the same throughout.
. "$(dirname "$0")/functions.sh"
make_chain "$TMP/c" 1 64 40 || fail "building the chain"
want=$(content_sha "$TMP/c/l1.vhd")
"$VHD" coalesce --batch-blocks 1 --rate-limit 1M --progress=json "$TMP/c/l1.vhd" >"$TMP/p1" 2>"$TMP/e1" &
pid=$!
for _ in $(seq 50); do
	grep -q '"phase":"copy"' "$TMP/p1" 2>/dev/null && break; sleep 0.1
done
sleep 1
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 5 ] || { cat "$TMP/e1"; fail "stopped coalesce exited $rc, expected 5"; }
ls -a "$TMP/c" | grep -q '^\.vhdkit-l0\.vhd\.journal$' || fail "no journal after the stop"
[ "$(content_sha "$TMP/c/l1.vhd")" = "$want" ] || fail "content changed after the stop"
done1=$(grep -o '"bytes_done":[0-9]*' "$TMP/p1" | tail -1 | cut -d: -f2)
total=$(grep -o '"bytes_total":[0-9]*' "$TMP/p1" | tail -1 | cut -d: -f2)
[ "${done1:-0}" -gt 0 ] && [ "$done1" -lt "$total" ] || fail "stopped at $done1 of $total bytes: not a mid-way stop"
"$VHD" coalesce --progress=json "$TMP/c/l1.vhd" >"$TMP/p2" || fail "resumed coalesce failed"
first=$(grep '"phase":"copy"' "$TMP/p2" | head -1)
echo "$first" | grep -q '"resumed":true' || fail "second run did not resume: $first"
start=$(echo "$first" | grep -o '"bytes_done":[0-9]*' | cut -d: -f2)
[ "$start" -gt 0 ] || fail "second run started from zero"
grep '"phase":"done"' "$TMP/p2" | grep -q "\"bytes_done\":$total" || fail "second run did not finish all $total bytes"
[ "$(content_sha "$TMP/c/l0.vhd")" = "$want" ] || fail "parent does not read as the child after the merge"
[ "$(content_sha "$TMP/c/l1.vhd")" = "$want" ] || fail "child content changed"
ls -a "$TMP/c" | grep -q journal && fail "journal left after completion"
pass "stopped at $done1/$total bytes, resumed from $start, finished; content intact"
