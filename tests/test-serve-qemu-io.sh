#!/bin/bash
# test-serve-qemu-io.sh - qemu-io as the NBD client of `vhd serve`: writes of
# patterns (write -P, one with FUA), zeroes with and without unmap (write
# -z, write -z -u), discards, an unaligned write (qemu reads, modifies and
# writes whole sectors), aio writes in flight together (3, then 16), at odd
# sector offsets and across 2 MiB block boundaries, on a dynamic disk and
# on a differencing leaf whose parent holds data almost everywhere.  The
# model is the same commands applied by qemu-io -f raw to a raw copy; after
# the server stopped, `vhd check` passes and `vhd convert --raw` equals the
# model byte for byte.  One difference is the documented semantics (man
# vhd, TRIM): on a differencing leaf a trimmed range reads as the parent
# again, so there the model of a discard is the parent's bytes copied back
# (dd), where raw would read zeros; on the dynamic disk qemu-io's own
# discard is the model; `nbdinfo --map` then equals `vhd map --chain`, and
# its holes read as zeros.
# Then `qemu-img convert -n` of a raw file with
# zero runs into both exports: the result is the source.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit qemu-io dd
M=1048576 BLK=2097152 S=512
# One qemu-io invocation's commands per line, ";" between commands; every
# one at an odd sector or across a block boundary (BLK - S ...); 16 aio
# writes in flight together into block 7, new on the dynamic disk (the
# block's allocation raced by 16 requests).  (qemu-io's aio_flush waits
# for the aio requests; the NBD flush comes when qemu-io closes the disk.)
cat >"$TMP/cmds" <<EOF
write -P 0x11 $((3 * S)) 4096
write -P 0x22 $((BLK - S)) 8192
write -f -P 0x33 $((2 * BLK - S)) $M
write -z $((BLK + 3 * S)) 3072
write -z -u $((3 * BLK - 3 * S)) $((BLK + 7 * S))
discard $((BLK + 9 * S)) 1536
discard $((2 * BLK + 5 * S)) $((9 * S))
discard $((5 * BLK - 11 * S)) $((BLK + 22 * S))
write -P 0x44 $((5 * BLK - S)) $S
aio_write -P 0x55 $((6 * BLK - S)) 65536 ; aio_write -P 0x66 $((4 * BLK - 3 * S)) 2048 ; aio_write -P 0x67 $((BLK / 2 + 5 * S)) $BLK ; aio_flush
$(for k in $(seq 0 15); do printf 'aio_write -P 0x%x %d 4096 ; ' $((0xa0 + k)) $((7 * BLK + k * 65536 + 3 * S)); done)aio_flush
write -P 0x77 1000 3000
write -z $((8 * BLK - S)) $S
discard 0 $((7 * S))
write -P 0x88 $((7 * BLK + 7 * S)) $((3 * S))
EOF
# add_cmds LINE: its commands (";" between them) appended to QARGS as -c
add_cmds() {
	local c cmds
	IFS=';' read -ra cmds <<<"$1"
	for c in "${cmds[@]}"; do
		read -r c <<<"$c"   # the blanks around it dropped
		QARGS+=(-c "$c")
	done
}
# qemu_io_line TARGET FORMAT-ARGS... < line: one invocation
qemu_io_line() {
	local target=$1 line; shift
	IFS= read -r line
	QARGS=(); add_cmds "$line"
	qemu-io "$@" "${QARGS[@]}" "$target" >"$TMP/qemu-io.out" 2>&1 || return 1
	! grep -qiE "error|fail" "$TMP/qemu-io.out"
}
# model RAW BELOW: the commands on RAW by qemu-io -f raw; BELOW given: each
# discard copies BELOW's bytes back instead (a differencing leaf's trim)
model() {
	local raw=$1 below=${2:-} line off len
	while IFS= read -r line; do
		case $line in
		discard*)
			if [ -n "$below" ]; then
				read -r _ off len <<<"$line"
				dd if="$below" of="$raw" bs=$S skip=$((off / S)) seek=$((off / S)) count=$((len / S)) \
				   conv=notrunc status=none || return 1
				continue
			fi ;;
		esac
		qemu_io_line "$raw" -f raw <<<"$line" || return 1
	done <"$TMP/cmds"
}
# check FILE [BELOW-RAW]: the commands over NBD, all in one qemu-io (one
# connection, in order, the aio ones in flight together), against the model
check() {
	local f=$1 below=${2:-} line counts nw nz nt nf
	"$VHD" convert --raw "$f" "$TMP/model.raw" --force >/dev/null || fail "$f: convert"
	cp "$TMP/model.raw" "$TMP/before.raw"
	model "$TMP/model.raw" "$below" || { cat "$TMP/qemu-io.out"; fail "$f: the raw model"; }
	cmp -s "$TMP/before.raw" "$TMP/model.raw" && fail "$f: the commands changed nothing in the model"
	QARGS=()
	while IFS= read -r line; do add_cmds "$line"; done <"$TMP/cmds"
	serve_start "$f"
	qemu-io -f raw "${QARGS[@]}" "$URI" >"$TMP/nbd.out" 2>&1 || { cat "$TMP/nbd.out"; fail "$f: qemu-io over NBD"; }
	# qemu sent them as NBD zeroes and trims, not as writes of zeros
	counts=$(ctl_field '" ".join(str(s["commands"][k]["requests"]) for k in ("write", "zero", "trim", "flush"))')
	serve_stop
	read -r nw nz nt nf <<<"$counts"
	[ "$nw" -ge 25 ] && [ "$nz" -ge 3 ] && [ "$nt" -ge 4 ] && [ "$nf" -ge 1 ] ||
		fail "$f: the server saw write/zero/trim/flush $counts, expected >= 25 3 4 1"
	grep -qiE "error|fail" "$TMP/nbd.out" && { cat "$TMP/nbd.out"; fail "$f: a qemu-io command failed"; }
	[ "$(grep -c '^wrote\|^discard' "$TMP/nbd.out")" -eq 32 ] || { cat "$TMP/nbd.out"; fail "$f: not every command ran"; }
	"$VHD" check "$f" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "$f: vhd check after qemu-io"; }
	"$VHD" convert --raw "$f" "$TMP/after.raw" --force >/dev/null || fail "$f: convert after"
	cmp "$TMP/model.raw" "$TMP/after.raw" || fail "$f: content differs from the qemu-io -f raw model"
	# block status after the zeroes and trims, as test-serve-map checks it
	serve_start "$f" --read-only
	nbd_extents "$URI" >"$TMP/nbd.map" || fail "$f: nbdinfo --map"
	serve_stop
	vhd_extents "$f" $((16 * M)) >"$TMP/vhd.map" || fail "$f: vhd map --chain"
	cmp -s "$TMP/vhd.map" "$TMP/nbd.map" ||
		{ diff "$TMP/vhd.map" "$TMP/nbd.map" | head; fail "$f: nbdinfo --map differs from vhd map --chain after the writes"; }
	holes_read_zero "$TMP/nbd.map" "$TMP/after.raw" || fail "$f: block status says zero where there is data"
	grep -q " 3$" "$TMP/nbd.map" || fail "$f: no hole left: the zero check checked nothing"
	echo "$(basename "$f"): 32 qemu-io commands over NBD (write/zero/trim/flush requests: $counts) equal the model, vhd check passes"
}

"$VHD" create "$TMP/dyn.vhd" 16M >/dev/null || fail "create"
check "$TMP/dyn.vhd"

# a parent with random data over all but its last 2 MiB, a leaf with writes
"$VHD" create "$TMP/parent.vhd" 16M >/dev/null || fail "create parent"
rand_sectors $((14 * 2048)) | "$VHDIO" write "$TMP/parent.vhd" 0 || fail "parent data"
"$VHD" snapshot "$TMP/parent.vhd" "$TMP/leaf.vhd" >/dev/null || fail "snapshot"
"$VHD" set "$TMP/parent.vhd" hidden on >/dev/null || fail "hide parent"
random_writes "$TMP/leaf.vhd" 16 12 64 || fail "leaf writes"
"$VHD" convert --raw "$TMP/parent.vhd" "$TMP/parent.raw" >/dev/null || fail "convert parent"
check "$TMP/leaf.vhd" "$TMP/parent.raw"
"$VHD" check --chain "$TMP/leaf.vhd" >/dev/null || fail "vhd check --chain"

# qemu-img convert -n -W -m 16 into the export (16 coroutines writing out
# of order; zeroes where the source reads as zeros, trusting the target's
# block status): over the parent's data the result must be the source
head -c $((5 * M)) /dev/urandom >"$TMP/src.raw"
truncate -s $((9 * M)) "$TMP/src.raw"
head -c $((3 * M + 1536)) /dev/urandom >>"$TMP/src.raw"
truncate -s $((16 * M)) "$TMP/src.raw"
for f in "$TMP/leaf.vhd" "$TMP/dyn.vhd"; do
	serve_start "$f"
	qemu-img convert -n -W -m 16 -f raw -O raw "$TMP/src.raw" "$URI" || fail "$f: qemu-img convert -n into the export"
	serve_stop
	"$VHD" check "$f" >/dev/null || fail "$f: vhd check after qemu-img convert -n"
	"$VHD" convert --raw "$f" "$TMP/after.raw" --force >/dev/null || fail "$f: convert"
	cmp "$TMP/src.raw" "$TMP/after.raw" || fail "$f: qemu-img convert -n over NBD differs from the source"
done
pass "qemu-io writes (-P, FUA, aio), zeroes (-z, -z -u), discards and an unaligned write over NBD on a dynamic disk and a differencing leaf equal the qemu-io -f raw model; qemu-img convert -n into both equals its source"
