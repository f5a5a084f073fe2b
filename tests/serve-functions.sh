# serve-functions.sh - helpers for the `vhd serve` tests (sourced after
# functions.sh).
#   serve_start FILE ARGS...: `vhd serve --socket $TMP/nbd.sock ARGS FILE` in
#     the background, back once it listens (SERVE_PID, SERVE_LOG, SOCK, URI,
#     CTL: the control socket)
#   serve_stop: SIGTERM, and the exit status must be 0
#   ctl_query JSON: one request over the control socket, the reply on stdout
#   ctl_field EXPR: a field of the status reply (a Python expression on `s`)
# nbdsh runs `python3 -m nbd`: Debian's python3, which has the module.
PY=/usr/bin/python3
export PATH=/usr/bin:$PATH
serve_start() {
	local file=$1 i; shift
	SOCK=$TMP/nbd.sock CTL=$TMP/nbd.sock.control URI="nbd+unix:///?socket=$TMP/nbd.sock"
	SERVE_LOG=$TMP/serve.log
	# a fresh log made here, before the server starts: the wait below must
	# never read the line a previous server wrote (its SIGTERM would then
	# reach a server that has not set up its handlers yet)
	: >"$SERVE_LOG"
	"$VHD" serve --socket "$SOCK" "$@" "$file" >>"$SERVE_LOG" 2>&1 &
	SERVE_PID=$!
	for i in $(seq 200); do
		grep -q "^vhd: serving" "$SERVE_LOG" && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || { cat "$SERVE_LOG" >&2; fail "vhd serve $file exited early"; }
		sleep 0.05
	done
	cat "$SERVE_LOG" >&2
	fail "vhd serve $file: not listening after 10 s"
}
serve_stop() {
	local rc
	kill -TERM "$SERVE_PID"
	wait "$SERVE_PID"; rc=$?
	[ "$rc" -eq 0 ] || { cat "$SERVE_LOG" >&2; fail "vhd serve exited $rc after SIGTERM"; }
	[ ! -e "$SOCK" ] || fail "the socket $SOCK is left behind"
}
ctl_query() {
	"$PY" - "$CTL" "$1" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(buf.decode().strip())
PYEOF
}
ctl_field() {
	ctl_query '{"cmd":"status"}' | "$PY" -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
