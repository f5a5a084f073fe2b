#!/bin/bash
# vhd resize grows dynamic disks within the BAT's last sector and beyond it
# (blocks moved out of the way of the bigger metadata), fixed disks, and
# differencing disks past their parent's size; content is kept, the new
# space reads as zeros, qemu-img reads the result identically, shrinking is
# refused.
. "$(dirname "$0")/functions.sh"
requires qemu-img
zeros_sha() { head -c "$1" /dev/zero | sha256sum | cut -d' ' -f1; }
# check_grown FILE OLD_SHA OLD_BYTES NEW_BYTES
check_grown() {
	"$VHDIO" cat "$1" > "$TMP/all" || fail "$1: unreadable after resize"
	[ "$(stat -c %s "$TMP/all")" = "$4" ] || fail "$1: size $(stat -c %s "$TMP/all"), expected $4"
	[ "$(head -c "$3" "$TMP/all" | sha256sum | cut -d' ' -f1)" = "$2" ] || fail "$1: old content changed"
	[ "$(tail -c +$(( $3 + 1 )) "$TMP/all" | sha256sum | cut -d' ' -f1)" = "$(zeros_sha $(( $4 - $3 )))" ] ||
		fail "$1: new area is not zeros"
}

# in place: 100 MiB = 50 blocks, the BAT's sector holds 128 entries
"$VHD" create "$TMP/a.vhd" 100M >/dev/null
random_writes "$TMP/a.vhd" 100 20 300
old=$(content_sha "$TMP/a.vhd")
expect_exit 0 "$VHD" resize "$TMP/a.vhd" 200M
check_grown "$TMP/a.vhd" "$old" $((100 << 20)) $((200 << 20))

# beyond: 64 MiB with data in its first blocks -> 768 MiB (384 entries: the
# BAT needs a second sector)
"$VHD" create "$TMP/b.vhd" 64M >/dev/null
rand_sectors 8192 | "$VHDIO" write "$TMP/b.vhd" 0
random_writes "$TMP/b.vhd" 64 20 300
old=$(content_sha "$TMP/b.vhd")
expect_exit 0 "$VHD" resize --json "$TMP/b.vhd" +704M
grep -q '"new_size":805306368' "$TMP/.out" || fail "json does not report the new size"
check_grown "$TMP/b.vhd" "$old" $((64 << 20)) $((768 << 20))
rand_sectors 16 | "$VHDIO" write "$TMP/b.vhd" $(( (768 << 20) - 8192 )) || fail "cannot write at the new end"
"$VHDIO" cat "$TMP/b.vhd" > "$TMP/b.raw"
qemu-img compare -q -f vpc "$TMP/b.vhd" -F raw "$TMP/b.raw" || fail "qemu-img reads the grown disk differently"
if "$VHD" check --help >/dev/null 2>&1; then
	"$VHD" check "$TMP/b.vhd" >/dev/null || fail "grown disk fails check"
fi

# fixed
"$VHD" create --fixed "$TMP/f.vhd" 8M >/dev/null
rand_sectors 100 | "$VHDIO" write "$TMP/f.vhd" 4096
old=$(content_sha "$TMP/f.vhd")
expect_exit 0 "$VHD" resize "$TMP/f.vhd" 12M
check_grown "$TMP/f.vhd" "$old" $((8 << 20)) $((12 << 20))
qemu-img compare -q -f vpc "$TMP/f.vhd" -F raw "$TMP/all" || fail "qemu-img reads the grown fixed disk differently"

# differencing past its parent: parent data visible, zeros beyond
make_chain "$TMP/c" 1 32 10 || fail chain
old=$(content_sha "$TMP/c/l1.vhd")
expect_exit 0 "$VHD" resize "$TMP/c/l1.vhd" 300M
check_grown "$TMP/c/l1.vhd" "$old" $((32 << 20)) $((300 << 20))
[ "$("$VHD" depth "$TMP/c/l1.vhd")" = 2 ] || fail "grown child lost its parent"

old=$(raw_sha "$TMP/a.vhd")
expect_exit 4 "$VHD" resize "$TMP/a.vhd" 10M
[ "$(raw_sha "$TMP/a.vhd")" = "$old" ] || fail "refused shrink changed the file"
pass "grew in place, past the BAT (blocks moved), fixed and differencing; shrink refused"
