# serve-functions.sh - helpers for the `vhd serve` tests (sourced after
# functions.sh).
#   serve_start FILE ARGS...: `vhd serve --socket $TMP/nbd.sock ARGS FILE` in
#     the background, back once it listens (SERVE_PID, SERVE_LOG, SOCK, URI,
#     CTL: the control socket)
#   serve_stop: SIGTERM, and the exit status must be 0 (a server still
#     running when the test ends, as after a failure, is stopped on exit)
#   ctl_query JSON: one request over the control socket, the reply on stdout
#   ctl_field EXPR: a field of the status reply (a Python expression on `s`)
# nbdsh runs `python3 -m nbd`: Debian's python3, which has the module.
PY=/usr/bin/python3
export PATH=/usr/bin:$PATH
# a test that fails while serving leaves no server behind
serve_cleanup() {
	[ -n "${SERVE_PID:-}" ] || return 0
	kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
	SERVE_PID=
}
trap 'serve_cleanup; rm -rf "$TMP"' EXIT
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
	SERVE_PID=
	[ "$rc" -eq 0 ] || { cat "$SERVE_LOG" >&2; fail "vhd serve exited $rc after SIGTERM"; }
	[ ! -e "$SOCK" ] || fail "the socket $SOCK is left behind"
}
ctl_query() {
	"$PY" "$ROOT/tests/tools/nbdtest.py" "$CTL" "$1"
}
ctl_field() {
	ctl_query '{"cmd":"status"}' | "$PY" -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
# Block status in one form on both sides, "OFFSET LENGTH TYPE" lines that
# cover the whole disk (TYPE as nbdinfo prints it: 0 data, 3 a hole that
# reads as zeros), adjacent extents of the same type merged on both sides:
# `vhd map --chain` splits data by the layer holding it, which NBD does not
# tell, and nbdkit or nbdinfo may split or join extents at request
# boundaries.  Nothing else is dropped: a gap, an overlap or another type
# (2, allocated zeros) stays a difference.  (printf %.0f: mawk prints a
# number past 2^31 as 2.14748e+09 and clamps %d there.)
merge_extents() {
	awk 'function out() { printf "%.0f %.0f %d\n", s, e - s, t }
	     { if (n && $3 == t && $1 == e) e += $2; else { if (n) out(); s = $1; e = $1 + $2; t = $3; n = 1 } }
	     END { if (n) out() }'
}
nbd_extents() { nbdinfo --map "$1" | awk '{ print $1, $2, $3 }' | merge_extents; }
vhd_extents() {   # FILE SIZE: `vhd map --chain`, and holes between its data
	"$VHD" map --chain "$1" | awk -v size="$2" '
		{ if ($1 > pos) printf "%.0f %.0f 3\n", pos, $1 - pos; print $1, $2, 0; pos = $1 + $2 }
		END { if (size > pos) printf "%.0f %.0f 3\n", pos, size - pos }' | merge_extents
}
# make_raw_child DIR: DIR/disk.img, a raw parent of 5 MiB and 3 sectors, and
# DIR/child.vhd over it with 20 random writes
make_raw_child() {
	mkdir -p "$1"
	head -c $((5 * 1024 * 1024 + 1536)) /dev/urandom >"$1/disk.img"
	"$VHD" snapshot --raw-parent "$1/disk.img" "$1/child.vhd" >/dev/null || return 1
	random_writes "$1/child.vhd" 5 20 64
}
# holes_read_zero MAP RAW: every extent of type 3 (hole, zero) in MAP (the
# form above) is zeros in RAW, the disk's content: block status checked
# against the data, not only against the library's own map
holes_read_zero() {
	"$PY" - "$1" "$2" <<'PYEOF'
import sys
raw = open(sys.argv[2], "rb")
for line in open(sys.argv[1]):
    off, length, typ = map(int, line.split())
    if typ & 2:
        raw.seek(off)
        if raw.read(length).count(0) != length:
            sys.exit("extent %d+%d is a zero extent but holds data" % (off, length))
PYEOF
}
