#!/bin/bash
# Resizes crashed at every counted file operation (tests/preload/crashpoint.c)
# in both kill -9 and power-loss modes (ENOSPC or EIO at every third point;
# at most 12 points spread evenly over a long resize):
# a dynamic disk grown past its BAT (blocks and BAT moved), a differencing
# disk likewise (its locators stay valid) and a fixed disk.  After each
# crash the image passes blktap's check (a stale backup footer is the one
# defect allowed: the next writable open mends it), keeps its content, has
# the old or the new size with zeros past the old end, and resizing again
# completes.
. "$(dirname "$0")/functions.sh"
[ -f "$CRASHPOINT" ] || fail "$CRASHPOINT missing (make tests-bin)"
zeros_sha() { head -c "$1" /dev/zero | sha256sum | cut -d' ' -f1; }
vsize() { "$VHD" info --json "$1" | sed -n 's/.*"virtual_size":\([0-9]*\).*/\1/p'; }
blktap_check() {   # blktap_check IMG OUT
	(cd "$(dirname "$1")" && "$B/vhd-util" check -n "$(basename "$1")") >"$2" 2>&1
}
# verify IMG WHAT: against $old (sha of the first $old_bytes), $new_bytes
verify() {
	local img=$1 what=$2 size tail
	if ! blktap_check "$img" "$img.chk"; then
		head -1 "$img.chk" | grep -q "^primary and backup footers do not match" ||
			{ cat "$img.chk"; fail "$what: blktap's check fails"; }
		"$VHDIO" write "$img" 0 < /dev/null || fail "$what: writable open failed"
		blktap_check "$img" "$img.chk" || { cat "$img.chk"; fail "$what: a writable open did not mend the footers"; }
	fi
	if [ "$has_check" = 1 ]; then
		"$VHD" check "$img" >"$img.chk" 2>&1 || { cat "$img.chk"; fail "$what: vhd check fails"; }
	fi
	size=$(vsize "$img")
	[ "$size" = "$old_bytes" ] || [ "$size" = "$new_bytes" ] || fail "$what: size $size"
	# the old content, then (when grown) the first 2 MiB of the new area
	tail=$(( size - old_bytes < 2097152 ? size - old_bytes : 2097152 ))
	"$VHDIO" cat "$img" | head -c $(( old_bytes + tail )) > "$img.head" || true
	[ "$(head -c "$old_bytes" "$img.head" | sha256sum | cut -d' ' -f1)" = "$old" ] ||
		fail "$what: content changed"
	[ "$(tail -c +$(( old_bytes + 1 )) "$img.head" | sha256sum | cut -d' ' -f1)" = "$(zeros_sha "$tail")" ] ||
		fail "$what: the new area is not zeros"
}
# crash_point PROTO_DIR IMG_NAME NEW_SIZE AT MODE STEPS: in a copy of PROTO_DIR
crash_point() {
	local w=$TMP/w.$4.$5 what="$2: $5 at $4/$6"
	cp -r "$1" "$w"
	crash_run "$4" "$5" "$4" "$VHD" resize "$w/$2" "$3" >/dev/null 2>&1
	verify "$w/$2" "$what"
	"$VHD" resize "$w/$2" "$3" >/dev/null 2>&1 || fail "$what: resize again failed"
	[ "$(vsize "$w/$2")" = "$new_bytes" ] || fail "$what: not grown by the re-run"
	verify "$w/$2" "$what, then completed"
	rm -rf "$w"
}
wait_all() {
	local p bad=0
	for p in "$@"; do wait "$p" || bad=1; done
	[ $bad = 0 ] || fail "a crash point failed"
}
# crash_loop PROTO_DIR IMG_NAME NEW_SIZE MAX_POINTS: every crash point (or
# MAX_POINTS spread evenly), two at a time
crash_loop() {
	local proto=$1 name=$2 newsz=$3 max=$4 steps at mode i n pids=()
	old=$(content_sha "$proto/$name") old_bytes=$(vsize "$proto/$name")
	cp -r "$proto" "$TMP/w"
	steps=$(crash_count "$VHD" resize "$TMP/w/$name" "$newsz") || fail "$name: clean resize failed"
	new_bytes=$(vsize "$TMP/w/$name")
	rm -rf "$TMP/w"
	[ "$new_bytes" -gt "$old_bytes" ] || fail "$name: did not grow"
	[ "$steps" -ge 5 ] || fail "$name: only $steps steps counted"
	n=$(( steps < max ? steps : max ))
	for i in $(seq 0 $((n - 1))); do
		at=$(( n == 1 ? 1 : 1 + i * (steps - 1) / (n - 1) ))
		for mode in kill powerloss $(case $((i % 6)) in 2) echo enospc ;; 5) echo eio ;; esac); do
			crash_point "$proto" "$name" "$newsz" "$at" "$mode" "$steps" &
			pids+=($!)
			total=$((total + 1))
			[ ${#pids[@]} = 2 ] && { wait_all "${pids[@]}"; pids=(); }
		done
	done
	wait_all "${pids[@]}"
	summary="$summary $name:$steps"
}
has_check=0
"$VHD" check --help >/dev/null 2>&1 && has_check=1
total=0 summary=

# dynamic, data in its first blocks; 8 -> 640 MiB needs 320 BAT entries,
# more than the BAT's one sector holds: blocks move, then the BAT
mkdir "$TMP/dyn"
"$VHD" create "$TMP/dyn/d.vhd" 8M >/dev/null
rand_sectors 4100 | "$VHDIO" write "$TMP/dyn/d.vhd" 0
random_writes "$TMP/dyn/d.vhd" 8 10 300
crash_loop "$TMP/dyn" d.vhd 640M 12

# differencing with data in its first block, over a parent
make_chain "$TMP/diff" 1 8 4 || fail chain
rand_sectors 64 | "$VHDIO" write "$TMP/diff/l1.vhd" 1048576
crash_loop "$TMP/diff" l1.vhd 640M 5

# fixed
mkdir "$TMP/fix"
"$VHD" create --fixed "$TMP/fix/f.vhd" 8M >/dev/null
rand_sectors 16384 | "$VHDIO" write "$TMP/fix/f.vhd" 0
crash_loop "$TMP/fix" f.vhd 11M 8
pass "$total crashes (steps:$summary): valid, content kept, size old or new, zeros beyond, resize completed"
