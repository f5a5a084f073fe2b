#!/bin/bash
# The GC and a parent loop (two VHDs whose headers name each other as
# parent): the scan marks both damaged; `vhd gc run --once` reports them,
# leaves them byte for byte as they were, still leaf-coalesces a healthy
# chain beside them, and ends (the planner's walks up a chain are bounded:
# an unbounded walk went round the loop for ever).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
requires timeout
SR=$TMP/sr
mkdir -p "$SR"
"$VHD" create "$SR/l0.vhd" 8M >/dev/null || fail "create l0"
"$VHD" snapshot "$SR/l0.vhd" "$SR/l1.vhd" >/dev/null || fail "snapshot l1"
"$VHD" snapshot "$SR/l1.vhd" "$SR/l2.vhd" >/dev/null || fail "snapshot l2"
# l1's header names l2 as its parent: l1 -> l2 -> l1
"$PY" - "$SR/l1.vhd" "$SR/l2.vhd" <<'PYEOF' || fail "cannot write the loop"
import struct, sys
def uuid(path):
    with open(path, "rb") as f:
        return f.read(512)[68:84]
with open(sys.argv[1], "r+b") as f:
    off = struct.unpack(">Q", f.read(512)[16:24])[0]
    f.seek(off)
    h = bytearray(f.read(1024))
    h[40:56] = uuid(sys.argv[2])
    h[36:40] = b"\0\0\0\0"
    h[36:40] = struct.pack(">I", ~sum(h) & 0xffffffff)
    f.seek(off)
    f.write(h)
PYEOF
"$VHD" create "$SR/base.vhd" 8M >/dev/null || fail "create base"
random_writes "$SR/base.vhd" 8 4 64 || fail "writes base"
"$VHD" snapshot "$SR/base.vhd" "$SR/leaf.vhd" >/dev/null || fail "snapshot leaf"
"$VHD" set "$SR/base.vhd" hidden on >/dev/null || fail "hide base"
random_writes "$SR/leaf.vhd" 8 4 64 || fail "writes leaf"
want=$(content_sha "$SR/leaf.vhd")
loop_sums=$(sha256sum "$SR/l1.vhd" "$SR/l2.vhd")

timeout -k 5 60 "$VHD" gc run --once --quiet-period 0 --interval 0.1 "$SR" >"$TMP/gc.log" 2>&1
rc=$?
[ $rc -ne 124 ] && [ $rc -ne 137 ] || { tail -20 "$TMP/gc.log"; fail "the GC did not end within 60 s"; }
for f in l1 l2; do
	grep -q "decision: $f.vhd is damaged, never touched: its chain of parents loops" "$TMP/gc.log" ||
		{ cat "$TMP/gc.log"; fail "$f.vhd not reported as a member of a loop"; }
done
[ "$(sha256sum "$SR/l1.vhd" "$SR/l2.vhd")" = "$loop_sums" ] || fail "a member of the loop was written"
[ ! -e "$SR/base.vhd" ] || { cat "$TMP/gc.log"; fail "leaf.vhd was not coalesced into base.vhd (exit $rc)"; }
[ "$(content_sha "$SR/leaf.vhd")" = "$want" ] || fail "leaf.vhd's content changed"
pass "GC ended (exit $rc) with the loop l1 <-> l2 reported and untouched, leaf.vhd coalesced"
