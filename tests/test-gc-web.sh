#!/bin/bash
# vhd gc run --http: the web view in headless Chromium on a 12-level SR
# with a throttled coalesce: the tree shows every VHD, the progress the page
# renders from its event stream moves between two looks, hostile file names
# are text (no injected element), the headers (CSP, nosniff), /api/status
# equals `vhd gc status --json` but for the clock; a screenshot is kept in
# build/test-logs/gc-web.png.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
requires curl chromium
trap 'gc_stop; rm -rf "$TMP"' EXIT
SR=$TMP/sr
# no random writes: the commit's blocks hold b01's 32 KiB each, so that its
# progress moves in steps shorter than the time between the page's looks
make_sr "$SR" 12 64 0 || fail "building the SR"
rand_sectors 64 >"$TMP/32k"
for blk in $(seq 0 31); do
	"$VHDIO" write "$SR/b01.vhd" $((blk * 2097152 + 4096)) <"$TMP/32k" || fail "writing b01"
done
for f in "$SR"/s*.vhd; do rm "$f"; done   # one long chain
# hostile names: markup, quotes, UTF-8 (disks of their own)
for n in '<script>alert(1)<\script>' '<img src=x onerror=alert(1)>' "q\"uo'te" 'né €😀'; do
	"$VHD" create "$SR/$n.vhd" 1M >/dev/null || fail "create '$n'"
done
gc_start "$SR" --quiet-period 0 --interval 0.2 --rate-limit 20K --http 127.0.0.1:0 ||
	fail "GC did not start"
wait_for 20 'j["operation"] is not None and j["operation"]["bytes_done"] > 0' || fail "no operation"
addr=$(json_get "$(gc_status)" 'j["http"]')
case $addr in 127.0.0.1:[1-9]*) ;; *) fail "http address '$addr'" ;; esac

# headers
curl -sfD "$TMP/h" -o "$TMP/index.html" "http://$addr/" || fail "GET /"
want_csp="default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:"
grep -qi "^Content-Security-Policy: $want_csp" "$TMP/h" || { cat "$TMP/h"; fail "no restrictive CSP"; }
grep -qi '^X-Content-Type-Options: nosniff' "$TMP/h" || fail "no nosniff"
for a in app.js style.css; do
	curl -sf "http://$addr/$a" | cmp -s - "$ROOT/gc/web/$a" || fail "/$a is not gc/web/$a"
done
[ "$(curl -s -o /dev/null -w %{http_code} -X POST "http://$addr/api/status")" = 405 ] || fail "POST accepted"

dom_facts() {
	"$PY" - "$1" <<'PYEOF'
import html.parser, json, sys
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.names = []; s.stack = []; s.done = None; s.tags = {}; s.cur = None
    def handle_starttag(s, tag, attrs):
        a = dict(attrs); s.tags[tag] = s.tags.get(tag, 0) + 1
        cls = (a.get("class") or "").split()
        s.stack.append("name" in cls and s.stack and s.stack[-1] == "node")
        if "node" in cls: s.stack[-1] = "node"
        if a.get("id") == "op-done": s.done = int(a.get("data-bytes", "0"))
        if s.stack[-1] is True: s.cur = ""
    def handle_endtag(s, tag):
        if s.stack and s.stack.pop() is True: s.names.append(s.cur); s.cur = None
    def handle_data(s, d):
        if s.cur is not None: s.cur += d
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read())
print(json.dumps({"names": sorted(p.names), "done": p.done, "scripts": p.tags.get("script", 0), "imgs": p.tags.get("img", 0)}))
PYEOF
}
mkdir -p "$TMP/looks"
# two looks 4 s apart at the same page, then a screenshot
timeout 120 "$PY" "$ROOT/tests/cdp.py" "http://$addr/" "$TMP/looks" 2 4 2>"$TMP/cdp.log" ||
	fail "chromium: $(tail -5 "$TMP/cdp.log")"
grep -i "content security policy" "$TMP/cdp.log" && fail "the page breaks its own CSP"
f1=$(dom_facts "$TMP/looks/dom1.html")
f2=$(dom_facts "$TMP/looks/dom2.html")
want=$(cd "$SR" && ls *.vhd | "$PY" -c 'import json,sys; print(json.dumps(sorted(l.rstrip("\n") for l in sys.stdin)))')
got=$("$PY" -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["names"]))' "$f1")
[ "$got" = "$want" ] || fail "tree shows $got, the SR has $want"
[ "$(json_get "$f1" 'j["scripts"] == 1 and j["imgs"] == 0')" = True ] || fail "an injected element: $f1"
d1=$(json_get "$f1" 'j["done"]') d2=$(json_get "$f2" 'j["done"]')
[ "$d1" -gt 0 ] && [ "$d2" -gt "$d1" ] || fail "progress did not move: $d1 then $d2"
mkdir -p "$B/test-logs"
[ -s "$TMP/looks/shot.png" ] && cp "$TMP/looks/shot.png" "$B/test-logs/gc-web.png" || fail "no screenshot"

# at most 8 event streams: the ninth is refused, and a stream that goes
# away frees its place (the browser's, gone, is noticed at its next
# keep-alive, within 5 s)
sleep 6
pids=
for i in $(seq 8); do
	curl -sN "http://$addr/api/events" >"$TMP/sse$i" 2>/dev/null &
	pids="$pids $!"
done
for i in $(seq 50); do [ "$(grep -l '^event: status' "$TMP"/sse* | wc -l)" -ge 8 ] && break; sleep 0.1; done
code=$(curl -s -m 5 -o /dev/null -w %{http_code} "http://$addr/api/events")
[ "$code" = 503 ] || fail "a ninth event stream got $code ($(grep -l "^event: status" "$TMP"/sse* | wc -l) streams open)"
grep -q '^event: history' "$TMP/sse1" || fail "no history event"
for p in $pids; do kill "$p"; wait "$p" 2>/dev/null; done
sleep 6   # the streams' threads notice at their next keep-alive
code=$(curl -sN -m 2 -o "$TMP/sse9" -w %{http_code} "http://$addr/api/events")
[ "$code" = 200 ] && grep -q '^event: status' "$TMP/sse9" || fail "streams not freed when their clients left ($code)"

# /api/status is the status of the socket: the GC paused, nothing moves
"$VHD" gc pause "$SR" || fail "pause"
wait_for 10 'j["state"] == "paused" and j["operation"] is None' || fail "did not pause"
sleep 1
a=$(curl -sf "http://$addr/api/status") || fail "GET /api/status"
b=$("$VHD" gc status --json "$SR") || fail "gc status --json"
"$PY" - "$a" "$b" <<'PYEOF' || fail "/api/status differs from gc status --json"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ta, tb = a.pop("time"), b.pop("time")
sa, sb = a.pop("scans"), b.pop("scans")   # a scan may fall between the two
assert abs(ta - tb) <= 5 and abs(sa - sb) <= 2, (ta, tb, sa, sb)
# the filesystem's free space, measured at each scan: others write to it too
fa, fb = a.pop("space_available"), b.pop("space_available")
assert isinstance(fa, int) and isinstance(fb, int) and fa > 0 and fb > 0, (fa, fb)
if a != b:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k): print(k, a.get(k), b.get(k))
    sys.exit(1)
assert len(a["forest"]) > 12
PYEOF
pass "web view: $(json_get "$f1" 'len(j["names"])') VHDs in the tree, hostile names as text, progress $d1 -> $d2 bytes, CSP, 8 streams at most, /api/status = gc status --json"
