#!/bin/bash
# A batmap header claiming 2^20 sectors (a 512 MiB batmap) in a file of a
# few KiB (found by fuzz-vhdutil): vhd-util fails as its read of the
# batmap would (-5), without allocating the 512 MiB first.  Run under a
# 512 MiB address space limit, where that allocation would fail with -12.
. "$(dirname "$0")/functions.sh"
requires python3
VU=$B/vhd-util
F=$TMP/big-batmap.vhd
cp "$ROOT/fuzz/regressions/vhdutil-batmap-larger-than-file.vhd" "$F"
python3 - "$F" <<'PY' || fail "the regression image has no 2^20-sector batmap"
import struct, sys
b = open(sys.argv[1], "rb").read()
at = b.find(b"tdbatmap")
sectors = struct.unpack(">I", b[at + 16:at + 20])[0]
assert at > 0 and sectors == 1 << 20 and len(b) < 64 * 1024, (at, sectors, len(b))
PY
# in_512m CMD...: CMD where an allocation of 512 MiB fails.  Under
# SANITIZE=1 an address space limit cannot be used (ASan maps terabytes of
# shadow memory at start): ASan's own limit on one allocation instead.
in_512m() {
	if nm "$VU" 2>/dev/null | grep -q __asan_init; then
		ASAN_OPTIONS=$ASAN_OPTIONS:allocator_may_return_null=1:max_allocation_size_mb=256 "$@"
	else
		(ulimit -v 524288; "$@")
	fi
}
out=$(in_512m "$VU" read -n "$F" -a); rc=$?
[ $rc -eq 5 ] && [ "$out" = "failed to read batmap: -5" ] || fail "read -a exited $rc: $out"
out=$(in_512m "$VU" query -n "$F" -s); rc=$?
[ $rc -eq 5 ] && [ "$out" = "failed to get physical size: -5" ] || fail "query -s exited $rc: $out"
pass "a 512 MiB batmap in a $(stat -c %s "$F")-byte file: read -a and query -s fail with -5 in 512 MiB"
