#!/bin/bash
# The real GC daemon on a 15-level SR: status over its socket, metrics over
# HTTP and in a file, set-rate, pause/resume, cancel (resumable), control
# refused to another uid, a second GC refused, clean stop on SIGTERM; every
# visible VHD reads as before and the chain collapses.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
requires curl setpriv
trap 'gc_stop; rm -rf "$TMP"' EXIT
chmod 755 "$TMP"
SR=$TMP/sr
make_sr "$SR" 15 256 3 || fail "building the SR"
# 32 KiB in each of b01's 128 blocks: its merge (the first) lasts long enough
# at the rate limits below to pause and cancel it in the middle
rand_sectors 64 >"$TMP/32k"
for blk in $(seq 0 127); do
	"$VHDIO" write "$SR/b01.vhd" $((blk * 2097152 + 4096)) <"$TMP/32k" || fail "writing b01"
done
for f in "$SR"/s*.vhd; do rm "$f"; done   # every snapshot deleted: one long chain
chmod 755 "$SR"
sr_sums "$SR" >"$TMP/want"
gc_start "$SR" --quiet-period 0 --interval 0.1 --rate-limit 40K --metrics 127.0.0.1:0 \
	--metrics-file "$TMP/gc.prom" --socket-group nogroup || fail "GC did not start"

# status: a running operation with progress, the queue, leaf depths
wait_for 20 'j["operation"] is not None and j["operation"]["bytes_done"] > 0' || fail "no operation in progress"
st=$(gc_status)
# the 14 hidden layers above b00 go in one pass: one commit, every layer named
[ "$(json_get "$st" 'j["operation"]["kind"]')" = commit ] || fail "first operation is not a commit: $st"
[ "$(json_get "$st" '" ".join(j["operation"]["layers"])')" = "$(cd "$SR" && echo b0[1-9].vhd b1[0-4].vhd)" ] ||
	fail "the commit does not merge b01..b14: $st"
[ "$(json_get "$st" 'j["operation"]["bytes_total"] > 0 and j["operation"]["phase"] == "copy"')" = True ] || fail "no progress figures: $st"
[ "$(json_get "$st" 'len(j["queue"]) > 0 and j["queue_bytes"] > 0')" = True ] || fail "empty queue: $st"
[ "$(json_get "$st" '[l["depth"] for l in j["leaves"] if l["vhd"] == "leaf.vhd"][0]')" = 16 ] || fail "leaf depth not 16: $st"
[ "$(json_get "$st" 'j["rate_limit"]')" = 40960 ] || fail "rate limit not reported"

# metrics over HTTP (port chosen by the GC, found in the status) and in the file
addr=$(json_get "$st" 'j["metrics"]')
case $addr in 127.0.0.1:[1-9]*) ;; *) fail "metrics address '$addr'" ;; esac
curl -sf "http://$addr/metrics" >"$TMP/m1" || fail "scraping metrics"
for m in vhd_gc_bytes_coalesced_total 'vhd_gc_operations_total{kind="commit",result="ok"}' \
	'vhd_gc_chain_depth_bucket{le="+Inf"} 1' vhd_gc_queue_bytes vhd_gc_rate_bytes_per_second; do
	grep -qF "$m" "$TMP/m1" || { cat "$TMP/m1"; fail "metric $m missing"; }
done
[ -s "$TMP/gc.prom" ] && grep -q vhd_gc_queue_bytes "$TMP/gc.prom" || fail "metrics file not written"

# the socket is 0660, group nogroup; another uid may read the status only
[ "$(stat -c %a:%G "$GC_SOCK")" = 660:nogroup ] || fail "socket mode $(stat -c %a:%G "$GC_SOCK")"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile().readline().strip())' "$GC_SOCK" "$1"; }
r=$(as_nobody '{"cmd":"status"}') || fail "nobody cannot read the status"
[ "$(json_get "$r" 'j["ok"]')" = True ] || fail "status refused to nobody: $r"
for c in pause resume cancel '{"cmd":"set-rate","rate":1}'; do
	case $c in '{'*) ;; *) c="{\"cmd\":\"$c\"}" ;; esac
	r=$(as_nobody "$c")
	[ "$(json_get "$r" 'j["ok"] is False and "permission denied" in j["error"]')" = True ] || fail "nobody could $c: $r"
done
[ "$(json_get "$(gc_status)" 'j["paused"]')" = False ] || fail "nobody paused the GC"

# a second GC on the SR is refused, with a clear message
expect_exit 4 "$VHD" gc run --once "$SR"
grep -q "another GC already runs" "$TMP/.out" || fail "second GC: unclear message: $(cat "$TMP/.out")"

# set-rate while running
"$VHD" gc set-rate "$SR" 30K || fail "set-rate"
[ "$(json_get "$(gc_status)" 'j["rate_limit"]')" = 30720 ] || fail "set-rate not applied"

# pause: the operation stops at a consistent point, resumable
wait_for 20 'j["operation"] is not None and j["operation"]["vhd"] == "b14.vhd"' || fail "no operation to pause"
"$VHD" gc pause "$SR" || fail "pause"
wait_for 10 'j["state"] == "paused" and j["operation"] is None' || fail "did not pause"
ls -A "$SR" | grep -q "^\.vhdkit-.*\.journal$" || { ls -A "$SR"; grep -v decision "$GC_LOG" | tail; fail "paused operation left no journal"; }
"$VHD" gc status "$SR" >"$TMP/human" || fail "gc status"
grep -q "paused" "$TMP/human" && grep -q "leaves (chain depth)" "$TMP/human" || { cat "$TMP/human"; fail "human status"; }
"$VHD" gc status --json "$SR" | "$PY" -c 'import json,sys; assert json.load(sys.stdin)["paused"]' ||
	fail "gc status --json"
"$VHD" gc resume "$SR" || fail "resume"
wait_for 10 'j["operation"] is not None and not j["paused"]' || fail "did not resume"

# cancel: the operation stops, resumable, and waits for resume
wait_for 20 'j["operation"] is not None and j["operation"]["vhd"] == "b14.vhd"' || fail "no operation to cancel"
victim=$(json_get "$(gc_status)" 'j["operation"]["vhd"]')
"$VHD" gc cancel "$SR" || fail "cancel"
wait_for 10 "j['totals']['operations']['commit']['cancelled'] + j['totals']['operations']['leaf-coalesce']['cancelled'] >= 1" ||
	fail "cancel not counted"
wait_for 10 "any(q['vhd'] == '$victim' and q['waits'] for q in j['queue'])" || { grep -v decision "$GC_LOG"; fail "cancelled item not held"; }
"$VHD" gc set-rate "$SR" 0 && "$VHD" gc resume "$SR" || fail "resume after cancel"

# it converges: one file, the leaf, at depth 1
wait_for 50 'j["state"] == "idle" and not j["queue"] and j["operation"] is None' || { grep -v decision "$GC_LOG" | tail -25; fail "did not converge"; }
[ "$("$VHD" depth "$SR/leaf.vhd")" = 1 ] || fail "leaf not collapsed"
sr_sums "$SR" >"$TMP/got"
diff "$TMP/want" "$TMP/got" || fail "visible content changed"
curl -sf "http://$addr/metrics" >"$TMP/m2" || fail "scraping metrics"
st=$(gc_status)
b=$(json_get "$st" 'j["totals"]["bytes_coalesced"]')
grep -qx "vhd_gc_bytes_coalesced_total $b" "$TMP/m2" || fail "metrics disagree with status ($b)"
[ "$b" -gt 0 ] || fail "no bytes counted"
grep -qx 'vhd_gc_operations_total{kind="leaf-coalesce",result="ok"} 1' "$TMP/m2" || fail "leaf-coalesce not counted"
grep -qx "vhd_gc_chain_depth_bucket{le=\"1\"} 1" "$TMP/m2" && grep -qx "vhd_gc_chain_depth_sum 1" "$TMP/m2" || fail "depth histogram not updated"
grep -q "start commit b14.vhd into b00.vhd (layers b01.vhd/" "$GC_LOG" && grep -q "MB/s" "$GC_LOG" && grep -q "decision:" "$GC_LOG" || fail "log lines missing"

# SIGTERM: clean exit, socket removed
kill "$GC_PID"; wait "$GC_PID"; rc=$?; GC_PID=
[ $rc -eq 0 ] || fail "GC exited $rc on SIGTERM"
[ -e "$GC_SOCK" ] && fail "socket left behind"
pass "daemon: status, metrics, set-rate, pause/resume/cancel, permissions, single GC, converged"
