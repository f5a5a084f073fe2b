#!/bin/bash
# test-serve-control.sh - `vhd serve`'s control socket: {"cmd":"status"}
# counts exactly the requests one client made (3 writes of 4 KiB, 2 reads of
# 8 KiB, a zero of 64 KiB, a trim of 64 KiB, a cache, a block status, a
# flush), their bytes and errors, the open connections (1 while the client
# is connected, 0 after, 1 in total), latency percentiles in order; an
# unknown command and a line that is not JSON get {"ok":false} and the
# socket keeps answering.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdsh
"$VHD" create "$TMP/d.vhd" 8M >/dev/null || fail "create"
serve_start "$TMP/d.vhd"
[ "$(ctl_field 's["connections"], s["connections_total"], s["errors"]')" = "0 0 0" ] ||
	fail "a fresh server's status: $(ctl_query '{"cmd":"status"}')"
CTL=$CTL nbdsh --base-allocation -u "$URI" -c '
import json, os, socket
for i in range(3):
    h.pwrite(b"\1" * 4096, i * 65536)
h.pread(8192, 0); h.pread(8192, 1 << 20)
h.zero(65536, 2 << 20); h.trim(65536, 0); h.cache(4096, 0)
h.block_status(1 << 20, 0, lambda *a: 0)
h.flush()
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["CTL"])
s.sendall(b"{\"cmd\":\"status\"}\n")
st = json.loads(s.makefile().readline())
assert st["connections"] == 1, st["connections"]
print("connected: 1")
' >"$TMP/client.out" 2>&1 || { cat "$TMP/client.out"; fail "client"; }
got=$(ctl_query '{"cmd":"status"}' | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
c = s["commands"]
print(s["ok"], s["connections"], s["connections_total"], s["errors"])
for k in ("write", "read", "zero", "trim", "cache", "block_status", "flush"):
    l = c[k]["latency_us"]
    assert 0 < l["p50"] <= l["p90"] <= l["p99"] <= l["max"], (k, l)
    print(k, c[k]["requests"], c[k]["bytes"], c[k]["errors"])
')
want="True 0 1 0
write 3 12288 0
read 2 16384 0
zero 1 65536 0
trim 1 65536 0
cache 1 0 0
block_status 1 0 0
flush 1 0 0"
[ "$got" = "$want" ] || { echo "$got"; fail "status differs from the requests made"; }
ctl_query '{"cmd":"frobnicate"}' | grep -q '"ok":false' || fail "unknown command not refused"
ctl_query 'not json' | grep -q '"ok":false' || fail "a line that is not JSON not refused"
[ "$(ctl_field 's["ok"]')" = True ] || fail "the control socket stopped answering"
serve_stop
[ ! -e "$CTL" ] || fail "control socket left after the server stopped"
pass "status counts requests, bytes, errors and connections exactly; latency p50<=p90<=p99<=max; bad control lines refused"
