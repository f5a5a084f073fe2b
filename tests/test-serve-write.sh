#!/bin/bash
# test-serve-write.sh - writes, zeroes (NO_HOLE, FAST_ZERO), trims and FUA
# through `vhd serve`, 16 requests in flight on 2 connections
# (tests/tools/nbd-model.py), on the leaf of a 3-level chain, a dynamic and
# a fixed disk, against a model: read back over NBD, then after the server
# stopped, `vhd check` passes and the content's sha256 equals the model's.
# Zeroes on the differencing leaf must hide the parent's data; a trim there
# shows it again (the man page's TRIM semantics).  Then nbdcopy -C 4 writes
# a whole image into a fresh dynamic disk.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdcopy
MODEL_PY="$ROOT/tests/tools/nbd-model.py"

check_writes() {   # FILE BELOW-RAW SEED [notrim]
	local f=$1 below=$2 seed=$3 out
	"$VHD" convert --raw "$f" "$TMP/model.raw" --force >/dev/null || fail "$f: convert"
	serve_start "$f"
	out=$("$PY" "$MODEL_PY" "$URI" "$TMP/model.raw" "$below" "$seed" 12 ${4:-}) ||
		fail "$f: $out"
	serve_stop
	"$VHD" check "$f" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "$f: vhd check after the writes"; }
	[ "$(content_sha "$f")" = "$(raw_sha "$TMP/model.raw")" ] || fail "$f: content differs from the model"
	case $out in *"write=0 "*|*"zero=0 "*) fail "$f: too few requests of a kind: $out" ;; esac
	echo "$(basename "$f"): $out"
}

make_chain "$TMP/c" 2 16 10 || fail "make_chain"
"$VHD" convert --raw "$TMP/c/l1.vhd" "$TMP/below.raw" >/dev/null || fail "convert l1"
check_writes "$TMP/c/l2.vhd" "$TMP/below.raw" 1
# the leaf hides its parent where zeroed: some parent data must be covered
cmp -s "$TMP/below.raw" "$TMP/model.raw" && fail "the model equals the parent: nothing tested"

"$VHD" create "$TMP/dyn.vhd" 16M >/dev/null || fail "create"
truncate -s 16M "$TMP/zeros.raw"
check_writes "$TMP/dyn.vhd" "$TMP/zeros.raw" 2
"$VHD" create "$TMP/fixed.vhd" 16M --fixed >/dev/null || fail "create fixed"
check_writes "$TMP/fixed.vhd" "$TMP/zeros.raw" 3 notrim

head -c $((12 * 1024 * 1024)) /dev/urandom >"$TMP/src.raw"
truncate -s 16M "$TMP/src.raw"   # the last 4 MiB: zeros, a hole
"$VHD" create "$TMP/copy.vhd" 16M >/dev/null || fail "create copy"
serve_start "$TMP/copy.vhd"
nbdcopy -C 4 "$TMP/src.raw" "$URI" || fail "nbdcopy into the export"
serve_stop
"$VHD" check "$TMP/copy.vhd" >/dev/null || fail "copy.vhd: vhd check"
[ "$(content_sha "$TMP/copy.vhd")" = "$(raw_sha "$TMP/src.raw")" ] || fail "nbdcopy -C 4: content differs"
# SIGTERM while four connections write: in-flight requests finish, the
# plugin flushes and closes, exit 0, and the image is valid
"$VHD" create "$TMP/term.vhd" 48M >/dev/null || fail "create term"
serve_start "$TMP/term.vhd"
nbdsh -u "$URI" -c '
import random, time
end = time.time() + 20
done = 0
try:
    while time.time() < end:
        cs = [h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(random.randbytes(65536))),
                           random.randrange(0, 768) * 65536) for _ in range(16)]
        for c in cs:
            while not h.aio_command_completed(c):
                h.poll(-1)
        done += 16
except nbd.Error:
    print("writes completed before the server went:", done)
' >"$TMP/term.out" 2>&1 &
writer=$!
sleep 1
serve_stop
grep -q "nbdkit died" "$SERVE_LOG" && echo "(nbdkit 1.32 aborted at SIGTERM with replies in flight; vhd serve flushed)"
wait $writer
grep -q "completed before the server went: [1-9]" "$TMP/term.out" ||
	{ cat "$TMP/term.out"; fail "the writer was not cut off by SIGTERM mid-load"; }
"$VHD" check "$TMP/term.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "term.vhd: vhd check after SIGTERM under load"; }
pass "SIGTERM under load: exit 0, valid image; random writes/zeroes/trims (FUA, NO_HOLE, FAST_ZERO) on a chain leaf, a dynamic and a fixed disk equal the model and pass vhd check; nbdcopy -C 4 in"
