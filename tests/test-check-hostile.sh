#!/bin/bash
# Hostile metadata ends quickly with a clear message and exit 3, without
# huge allocations: a BAT of 2^32-1 entries at an offset past the end of
# file, a batmap of 2^32-1 sectors, and a BAT whose 32768 entries all point
# to the same place (the overlap list is capped).
. "$(dirname "$0")/functions.sh"
requires python3
edit() {   # edit FILE PYTHON: run PYTHON with h = the header (bytearray), then fix its checksum
	python3 - "$1" "$2" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(512); h = bytearray(f.read(1024))
exec(sys.argv[2])
struct.pack_into('>I', h, 36, 0)
struct.pack_into('>I', h, 36, ~sum(h) & 0xffffffff)
f.seek(512); f.write(h)
PY
}
# quick FILE: vhd check within 5 s (even sanitized), exit 3; output in $out
quick() {
	local t0 t1 rc
	t0=$(date +%s%N)
	out=$(timeout 20 "$VHD" check "$1"); rc=$?
	t1=$(date +%s%N)
	[ $rc = 3 ] || fail "$1: exit $rc: $out"
	[ $(( (t1 - t0) / 1000000 )) -lt 5000 ] || fail "$1: took $(( (t1 - t0) / 1000000 )) ms"
}

a=$TMP/a.vhd
"$VHD" create "$a" 8M >/dev/null || fail create
edit "$a" "struct.pack_into('>I', h, 28, 0xffffffff); struct.pack_into('>Q', h, 16, 0x7ffffffffffff000)"
quick "$a"
grep -q "^$a: header is invalid: invalid table offset" <<<"$out" || fail "table offset: $out"

b=$TMP/b.vhd
"$VHD" create "$b" 8M >/dev/null || fail create
python3 - "$b" <<'PY' || fail "batmap edit"
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(2048 + 16); f.write(struct.pack('>I', 0xffffffff))
PY
quick "$b"
grep -q "^$b: error calculating end of metadata: -22" <<<"$out" || fail "batmap eom: $out"
grep -q "^$b: batmap is invalid: invalid batmap size" <<<"$out" || fail "batmap size: $out"

c=$TMP/c.vhd
"$VHD" create "$c" 64G >/dev/null || fail create
rand_sectors 1 | "$VHDIO" write "$c" 0 || fail write
python3 - "$c" <<'PY' || fail "BAT edit"
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(512 + 16); t, = struct.unpack('>Q', f.read(8))
f.seek(t); v = f.read(4); f.seek(t); f.write(v * 32768)
PY
quick "$c"
[ "$(grep -c 'clobbers block' <<<"$out")" = 20 ] || fail "overlap list not capped at 20: $(head -c 2000 <<<"$out")"
grep -q "^$c: 32747 more overlapping block pairs (not listed)$" <<<"$out" || fail "summary: $(tail -n3 <<<"$out")"
pass "BAT past EOF, huge batmap, 32768 identical BAT entries: quick, exit 3, clear messages"
