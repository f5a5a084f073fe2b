#!/bin/bash
# test-serve-hangup.sh - clients that send 32 writes of 64 KiB and hang up
# without reading a reply, while another client writes and reads back.
# nbdkit 1.32 may then abort (connections.c: raw_send_socket: Assertion
# `sock >= 0' failed: a worker thread sends a reply on a connection another
# worker has closed); `vhd serve` flushes and restarts it.  Checked: the
# service comes back after every hang-up, the steady client keeps being
# served (it reconnects when cut off and sends again the write it had in
# flight), every write it saw acknowledged is there when it reads back at
# the end and after the server stopped (exit 0, `vhd check` passes), and
# every sector the hung-up writes aimed at holds either its old content or
# the whole of theirs.  With `--threads 1` (nbdkit serves each connection's
# requests one at a time, no worker threads) nbdkit never aborts: no
# restart, the steady client is never cut off.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit
RAW_PY="$ROOT/tests/tools/nbd-raw.py"
HALF=$((16 << 20))   # the steady client writes below, the hung-up ones above

# steady URI DONE-FILE MODEL-OUT: random 4-64 KiB writes in [0, HALF), each
# read back, until DONE-FILE exists; prints "iterations reconnects"
steady() {
	"$PY" - "$@" "$HALF" <<'PYEOF'
import nbd, os, random, sys, time
uri, done, model_out, half = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def connect():
    end = time.time() + 15
    while True:
        try:
            h = nbd.NBD(); h.connect_uri(uri); return h
        except nbd.Error:
            if time.time() > end:
                raise
            time.sleep(0.05)
h, n, reconnects = connect(), 0, 0
def io(f):   # f(h), again on a new connection if this one is cut off
    global h, reconnects
    while True:
        try:
            return f(h)
        except nbd.Error:
            reconnects += 1
            h = connect()
def read_all(h):
    return b"".join(h.pread(1 << 20, o) for o in range(0, half, 1 << 20))
model = bytearray(io(read_all))
rnd = random.Random(11)
while n < 200 or not os.path.exists(done):
    length = rnd.randrange(8, 129) * 512
    off = rnd.randrange(0, (half - length) // 512) * 512
    data = rnd.randbytes(length)
    # a write cut off is sent again: then its outcome is known
    back = io(lambda h: (h.pwrite(data, off), h.pread(length, off))[1])
    model[off:off + length] = data
    assert back == data, "write %d at %d: read back differs" % (n, off)
    n += 1
got = io(lambda h: (h.flush(), read_all(h))[1])
assert got == model, "the steady client's writes are not all there at the end"
open(model_out, "wb").write(model)
print(n, reconnects)
PYEOF
}

# run_storm HANGUPS [serve options]: up to HANGUPS hung-up clients, fewer
# once nbdkit restarted 3 times (vhd serve gives up after 10 in a minute);
# sets STEADY ("iterations reconnects"), HANGUPS and RESTARTS; checks the
# content afterwards
run_storm() {
	local f=$TMP/d.vhd max=$1 i up; shift
	rm -f "$f" "$TMP/done"
	"$VHD" create "$f" 32M >/dev/null || fail "create"
	random_writes "$f" 32 20 400 || fail "writes"
	"$VHD" convert --raw "$f" "$TMP/before.raw" --force >/dev/null || fail "convert"
	serve_start "$f" "$@"
	steady "$URI" "$TMP/done" "$TMP/steady.model" >"$TMP/steady.out" 2>&1 &
	local steady_pid=$!
	HANGUPS=0
	for i in $(seq "$max"); do
		[ "$(grep -c "restarting nbdkit" "$SERVE_LOG")" -ge 3 ] && break
		up=
		for _ in $(seq 150); do
			"$PY" "$RAW_PY" "$SOCK" hangup-many $((HALF + i * 1048576)) 0xee >/dev/null 2>&1 && { up=1; break; }
			sleep 0.1
		done
		[ -n "$up" ] || { cat "$SERVE_LOG"; fail "no server for hang-up client $i"; }
		HANGUPS=$((HANGUPS + 1))
		sleep 0.2
	done
	touch "$TMP/done"
	wait "$steady_pid" || { cat "$TMP/steady.out" "$SERVE_LOG"; fail "the steady client failed"; }
	STEADY=$(cat "$TMP/steady.out")
	up=   # a restart may still be under way
	for _ in $(seq 100); do nbdinfo --size "$URI" >/dev/null 2>&1 && { up=1; break; }; sleep 0.1; done
	[ -n "$up" ] || { cat "$SERVE_LOG"; fail "not serving new clients after the hang-ups"; }
	serve_stop
	RESTARTS=$(grep -c "restarting nbdkit" "$SERVE_LOG")
	[ "$(grep -c "nbdkit died of signal" "$SERVE_LOG")" -eq "$(grep -c 'Assertion .sock >= 0. failed' "$SERVE_LOG")" ] ||
		{ cat "$SERVE_LOG"; fail "nbdkit died of something else than the known assertion"; }
	"$VHD" check "$f" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "vhd check after the hang-ups"; }
	"$VHD" convert --raw "$f" "$TMP/after.raw" --force >/dev/null || fail "convert after"
	cmp -s <(head -c "$HALF" "$TMP/after.raw") "$TMP/steady.model" ||
		fail "the steady client's writes differ after the server stopped"
	# above HALF: each sector as before, or the hung-up writes' 0xee
	"$PY" - "$TMP/before.raw" "$TMP/after.raw" "$HALF" <<'PYEOF' || fail "the hung-up writes left a torn sector"
import sys
before, after, half = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3])
new = bad = 0
for o in range(half, len(after), 512):
    a = after[o:o + 512]
    if a == b"\xee" * 512:
        new += 1
    elif a != before[o:o + 512]:
        bad += 1
print("sectors written by the hung-up clients:", new, "torn:", bad)
sys.exit(1 if bad else 0)
PYEOF
}

run_storm 9
echo "default threads: $HANGUPS hang-ups, nbdkit restarted $RESTARTS times; steady client: $STEADY (writes, reconnects)"
default="$RESTARTS restarts"
run_storm 8 --threads 1
echo "--threads 1: $HANGUPS hang-ups, nbdkit restarted $RESTARTS times; steady client: $STEADY"
[ "$RESTARTS" -eq 0 ] || fail "--threads 1: nbdkit still aborted $RESTARTS times"
[ "${STEADY#* }" = 0 ] || fail "--threads 1: the steady client was cut off (${STEADY#* } reconnects)"
pass "clients hanging up with 32 writes in flight: served again each time ($default with default threads, none with --threads 1), the steady client's writes all there, no torn sector, vhd check passes"
