#!/bin/bash
# A resize that must move blocks and the metadata, crashed (kill -9, power
# loss, ENOSPC, EIO) at every counted file operation: the image always opens,
# keeps its content, has the old or the new size (zeros beyond the old), and
# resizing again finishes.
. "$(dirname "$0")/functions.sh"
"$VHD" create "$TMP/p.vhd" 32M >/dev/null
rand_sectors 4096 | "$VHDIO" write "$TMP/p.vhd" 0
random_writes "$TMP/p.vhd" 32 15 300
old=$(content_sha "$TMP/p.vhd") old_bytes=$((32 << 20)) new=4G
cp "$TMP/p.vhd" "$TMP/w.vhd"
steps=$(crash_count "$VHD" resize "$TMP/w.vhd" $new) || fail "clean resize failed"
[ "$steps" -gt 10 ] || fail "only $steps steps counted"
modes=(kill powerloss enospc eio)
n=0
for at in $(seq 1 "$steps"); do
	mode=${modes[at % 4]}
	cp "$TMP/p.vhd" "$TMP/w.vhd"
	crash_run "$at" "$mode" "$at" "$VHD" resize "$TMP/w.vhd" $new >/dev/null 2>&1
	# blktap's check is the judge; the only defect allowed is the window
	# between the two footer writes, which the next writable open mends
	if ! (cd "$TMP" && "$B/vhd-util" check -n w.vhd) >"$TMP/chk" 2>&1; then
		head -1 "$TMP/chk" | grep -q "^primary and backup footers do not match" ||
			{ cat "$TMP/chk"; fail "$mode at $at: vhd-util check fails"; }
		"$VHDIO" write "$TMP/w.vhd" 0 < /dev/null || fail "$mode at $at: writable open failed"
		(cd "$TMP" && "$B/vhd-util" check -n w.vhd) >"$TMP/chk" 2>&1 ||
			{ cat "$TMP/chk"; fail "$mode at $at: a writable open did not mend the footers"; }
	fi
	size=$("$VHD" info --json "$TMP/w.vhd" | sed -n 's/.*"virtual_size":\([0-9]*\).*/\1/p')
	[ "$size" = $old_bytes ] || [ "$size" = $((4 << 30)) ] || fail "$mode at $at: size $size"
	[ "$("$VHDIO" cat "$TMP/w.vhd" | head -c $old_bytes | sha256sum | cut -d' ' -f1)" = "$old" ] ||
		fail "$mode at $at/$steps: content changed"
	"$VHD" resize "$TMP/w.vhd" $new >/dev/null 2>&1 || fail "$mode at $at: resize again failed"
	(cd "$TMP" && "$B/vhd-util" check -n w.vhd) >"$TMP/chk" 2>&1 || { cat "$TMP/chk"; fail "$mode at $at: invalid after completion"; }
	[ "$("$VHDIO" cat "$TMP/w.vhd" | head -c $old_bytes | sha256sum | cut -d' ' -f1)" = "$old" ] ||
		fail "$mode at $at: content changed after the second resize"
	n=$((n + 1))
done
pass "$n crash points of $steps: content kept, size old or new, resize completed"
