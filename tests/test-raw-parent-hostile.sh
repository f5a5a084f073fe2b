#!/bin/bash
# A raw parent that is not a plain image: a directory, a FIFO, /dev/zero
# (a character device), a symlink loop, a VHD, or missing.  Reading the
# child (vhd-io), vhd check, vhd info and vhd coalesce fail at once with
# the reason (no hang on the FIFO: each runs under a timeout), never crash
# and write nothing.  Garbled locators (random bytes, a path leading out of
# the directory) are survived the same way; a coalesce never writes the
# file a garbled locator names outside the child's directory.
. "$(dirname "$0")/functions.sh"
requires python3 timeout
cd "$TMP" || fail "no tmp"
mkdir sr && cd sr || fail "no sr"
head -c 4194304 /dev/urandom >base.img
"$VHD" snapshot --raw-parent base.img c.vhd >/dev/null || fail "snapshot --raw-parent"
rand_sectors 8 | "$VHDIO" write c.vhd 4096 || fail write
rm base.img
cp c.vhd c.orig

# run WHAT CODE CMD...: exits CODE within 20 s, no sanitizer report
run() {
	local what=$1 want=$2; shift 2
	timeout 20 "$@" >out 2>&1; local rc=$?
	[ $rc = "$want" ] || { cat out; fail "$what: '$*' exited $rc, expected $want"; }
	! grep -q 'Sanitizer' out || { cat out; fail "$what: sanitizer report"; }
}
for kind in dir fifo chardev loop vhd missing; do
	rm -rf base.img
	case $kind in
	dir) mkdir base.img ;;
	fifo) mkfifo base.img ;;
	chardev) ln -s /dev/zero base.img ;;
	loop) ln -s base.img base.img ;;
	vhd) "$VHD" create base.img 4M >/dev/null || fail "create" ;;
	missing) ;;
	esac
	run "$kind: read" 1 "$VHDIO" cat c.vhd
	run "$kind: check" 3 "$VHD" check c.vhd
	run "$kind: info" 0 "$VHD" info c.vhd
	# the raw parent cannot be opened: exit 1 (not found) or 3 (not raw)
	timeout 20 "$VHD" coalesce c.vhd >out 2>&1; rc=$?
	[ $rc = 1 ] || [ $rc = 3 ] || { cat out; fail "$kind: coalesce exited $rc"; }
	grep -q 'base.img' out || { cat out; fail "$kind: coalesce's error names no file"; }
	cmp -s c.vhd c.orig || fail "$kind: the child changed"
	[ "$kind" != vhd ] || "$VHD" check base.img >/dev/null || fail "vhd: the VHD named as raw parent changed"
done
rm -rf base.img

# garbled locators: random bytes in every locator area
cp c.orig g.vhd
python3 - g.vhd <<'PY' || fail "garbling"
import os, struct, sys
f = open(sys.argv[1], "r+b"); f.seek(512); h = f.read(1024)
for i in range(8):
    code, space, length, _, off = struct.unpack(">IIIIQ", h[576 + 24 * i:600 + 24 * i])
    if code:
        f.seek(off); f.write(os.urandom(512))
PY
run "random locators: read" 1 "$VHDIO" cat g.vhd
run "random locators: check" 3 "$VHD" check g.vhd
# a locator leading out of the directory, to a raw file there
mkdir ../outside && head -c 4194304 /dev/urandom >../outside/victim.img
cp ../outside/victim.img victim.orig
"$VHD" snapshot --raw-parent ../outside/victim.img far.vhd >/dev/null || fail "snapshot outside"
rand_sectors 8 | "$VHDIO" write far.vhd 0 || fail write
run "outside: coalesce" 4 "$VHD" coalesce far.vhd
run "outside: commit" 4 "$VHD" commit --base ../outside/victim.img far.vhd
cmp -s ../outside/victim.img victim.orig || fail "a coalesce wrote a raw file outside the directory"
pass "directory, FIFO, char device, symlink loop, VHD and missing raw parents refused; garbled locators survived; outside raw file untouched"
