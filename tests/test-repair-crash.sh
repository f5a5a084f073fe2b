#!/bin/bash
# A repair of many steps (header checksum, batmap checksum, primary footer
# lost under trailing garbage; and a truncated file with --force) crashed
# (kill -9, power loss, ENOSPC, EIO) at every counted file operation: a
# second repair always succeeds and gives the same file as an uninterrupted
# repair, with the undamaged content.
. "$(dirname "$0")/functions.sh"
requires python3

"$VHD" create "$TMP/base.vhd" 8M >/dev/null || fail "create"
rand_sectors 4096 | "$VHDIO" write "$TMP/base.vhd" $((4 << 20)) || fail "write"
random_writes "$TMP/base.vhd" 8 6 200 || fail "random writes"
good_content=$(content_sha "$TMP/base.vhd")

cp "$TMP/base.vhd" "$TMP/many.vhd"
python3 - "$TMP/many.vhd" <<'EOF' || fail "damage"
import sys
p = sys.argv[1]; d = bytearray(open(p, 'rb').read())
be = lambda o, n: int.from_bytes(d[o:o+n], 'big')
hdr = be(16, 8); table, entries = be(hdr + 16, 8), be(hdr + 28, 4)
d[hdr + 36:hdr + 40] = b'\x0b\xad\xc0\xde'
bm = table + (entries * 4 + 511) // 512 * 512
d[bm + 24:bm + 28] = b'\0\0\0\7'
end = len(d) - 512
d[end:end + 512] = b'\x5a' * 512
d += b'garbage!' * 700
open(p, 'wb').write(d)
EOF
cp "$TMP/base.vhd" "$TMP/cut.vhd"
truncate -s $(( $(stat -c %s "$TMP/cut.vhd") - 5000 )) "$TMP/cut.vhd"

n=0
modes=(kill powerloss enospc eio)
for case in many cut; do
	opt=; [ $case = cut ] && opt=--force
	cp "$TMP/$case.vhd" "$TMP/ref.vhd"
	steps=$(crash_count "$VHD" repair $opt "$TMP/ref.vhd") || fail "$case: clean repair failed"
	[ "$steps" -ge 3 ] || fail "$case: only $steps steps counted"
	ref=$(raw_sha "$TMP/ref.vhd")
	[ $case = cut ] || [ "$(content_sha "$TMP/ref.vhd")" = "$good_content" ] || fail "$case: content after a clean repair"
	for at in $(seq 1 "$steps"); do
		mode=${modes[at % 4]}
		cp "$TMP/$case.vhd" "$TMP/w.vhd"
		crash_run "$at" "$mode" "$at" "$VHD" repair $opt "$TMP/w.vhd" >/dev/null 2>&1
		"$VHD" repair $opt "$TMP/w.vhd" >"$TMP/out" 2>&1 ||
			{ cat "$TMP/out"; fail "$case: $mode at $at/$steps: second repair failed"; }
		[ "$(raw_sha "$TMP/w.vhd")" = "$ref" ] ||
			fail "$case: $mode at $at/$steps: result differs from an uninterrupted repair"
		n=$((n + 1))
	done
done
pass "$n crash points in 2 repairs: a second repair always completes to the same file"
