#!/bin/bash
# test-serve-conformance.sh - bad requests get the NBD spec's errors and the
# server keeps serving: with nbdsh (libnbd, strict mode off so that it sends
# them) requests past the end, a
# misaligned write (EINVAL: the minimum block size is 512), writes, zeroes
# and trims to a read-only export (EPERM); by hand (tests/tools/nbd-raw.py)
# an unknown command, an unknown flag, a zero-length read, past the end and
# a client hanging up in the middle of a write's payload.  Throughout, a
# second client keeps reading; the status counts the errors the plugin gave.
# (Clients hanging up with many writes in flight: test-serve-hangup.sh.)
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdsh
RAW_PY="$ROOT/tests/tools/nbd-raw.py"
"$VHD" create "$TMP/d.vhd" 96M >/dev/null || fail "create"
random_writes "$TMP/d.vhd" 96 10 200 || fail "writes"

serve_start "$TMP/d.vhd"
# a second client reading all along
nbdsh -u "$URI" -c '
import time
for i in range(400):
    h.pread(65536, (i * 65536) % (96 << 20))
    time.sleep(0.01)
' >"$TMP/reader.out" 2>&1 &
READER=$!
nbdsh -u "$URI" -c '
import errno
h.set_strict_mode(0)
size = h.get_size()
def expect(what, errs, f, *a, **k):
    try:
        f(*a, **k)
    except nbd.Error as e:
        assert e.errnum in errs, "%s: errno %s, expected one of %s" % (what, e.errnum, errs)
        print("%s: %s" % (what, errno.errorcode[e.errnum]))
        h.pread(4096, 0)   # still serving on this connection
        return
    raise AssertionError(what + ": succeeded")
expect("read past the end", (errno.EINVAL, errno.ENOSPC), h.pread, 4096, size)
expect("write past the end", (errno.EINVAL, errno.ENOSPC), h.pwrite, bytes(4096), size - 2048)
expect("zero past the end", (errno.EINVAL, errno.ENOSPC), h.zero, 4096, size)
expect("trim past the end", (errno.EINVAL, errno.ENOSPC), h.trim, 4096, size)
expect("misaligned write", (errno.EINVAL,), h.pwrite, b"x" * 100, 7)
expect("misaligned zero", (errno.EINVAL,), h.zero, 100, 7)
assert len(h.pread(100, 7)) == 100          # a misaligned read is served
' >"$TMP/bad.out" 2>&1 || { cat "$TMP/bad.out"; fail "nbdsh bad requests"; }
for t in unknown-command unknown-flag zero-length past-end over-max hangup; do
	"$PY" "$RAW_PY" "$SOCK" "$t" >>"$TMP/bad.out" 2>&1 || { cat "$TMP/bad.out"; fail "raw request: $t"; }
done
wait "$READER" || { cat "$TMP/reader.out"; fail "the other client's reads failed meanwhile"; }
nbdinfo --size "$URI" >/dev/null || fail "no longer serving new clients"
# nbdkit itself refuses what is out of range or malformed; the misaligned
# write and zero reach the plugin, which counts them
errors=$(ctl_field 's["commands"]["write"]["errors"], s["commands"]["zero"]["errors"]')
[ "$errors" = "1 1" ] || fail "status counts write and zero errors '$errors', expected '1 1'"
serve_stop
"$VHD" check "$TMP/d.vhd" >/dev/null || fail "d.vhd damaged by the bad requests"

serve_start "$TMP/d.vhd" --read-only
nbdsh -u "$URI" -c '
import errno
h.set_strict_mode(0)
for what, f, a in (("write", h.pwrite, (bytes(4096), 0)), ("zero", h.zero, (4096, 0)),
                   ("trim", h.trim, (4096, 0))):
    try:
        f(*a)
        raise AssertionError(what + " on a read-only export succeeded")
    except nbd.Error as e:
        assert e.errnum == errno.EPERM, (what, e.errnum)
        print(what + " on read-only: EPERM")
h.pread(4096, 0)
' >>"$TMP/bad.out" 2>&1 || { cat "$TMP/bad.out"; fail "read-only export"; }
serve_stop
cat "$TMP/bad.out"
pass "$(wc -l <"$TMP/bad.out") bad requests answered with the spec's errors; the server kept serving (another client read throughout)"
