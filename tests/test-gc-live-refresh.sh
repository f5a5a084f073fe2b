#!/bin/bash
# test-gc-live-refresh.sh - `vhd gc run --once` merges hidden ancestors
# under a leaf `vhd serve` serves, while fio's nbd engine writes random
# 4 KiB blocks with crc32c through the export: base <- mid (both hidden) <-
# {leaf.vhd (served), snap.vhd (visible)}.  The GC coalesces mid into base
# (re-points leaf and snap, deletes mid); the server held mid open, and the
# GC sends it "refresh": afterwards no descriptor of the server names mid
# (deleted or not), the log says so, no request failed, fio verifies every
# block, the range fio never wrote equals the content before, snap's
# content is unchanged, the leaf was not merged (its parent base has two
# children), and `vhd check --chain` passes on both leaves.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; serve_cleanup; rm -rf "$TMP"' EXIT
requires nbdkit fio qemu-img
sr=$TMP/sr
mkdir -p "$sr"
"$VHD" create "$sr/base.vhd" 32M >/dev/null || fail create
rand_sectors 65536 | "$VHDIO" write "$sr/base.vhd" 0 || fail "write base"
"$VHD" snapshot "$sr/base.vhd" "$sr/mid.vhd" >/dev/null || fail "snapshot mid"
"$VHD" set "$sr/base.vhd" hidden on || fail "hide base"
rand_sectors 16384 | "$VHDIO" write "$sr/mid.vhd" 12582912 || fail "write mid"
"$VHD" snapshot "$sr/mid.vhd" "$sr/leaf.vhd" >/dev/null || fail "snapshot leaf"
"$VHD" snapshot "$sr/mid.vhd" "$sr/snap.vhd" >/dev/null || fail "snapshot snap"
"$VHD" set "$sr/mid.vhd" hidden on || fail "hide mid"
rand_sectors 8192 | "$VHDIO" write "$sr/leaf.vhd" 25165824 || fail "write leaf"
"$VHDIO" cat "$sr/leaf.vhd" >"$TMP/model.raw" || fail model
snap0=$(content_sha "$sr/snap.vhd")
serve_start "$sr/leaf.vhd"
pid=$(ctl_field 's["pid"]')
holds_mid() { ls -l "/proc/$pid/fd" 2>/dev/null | grep -c "/mid.vhd"; }
[ "$(holds_mid)" -ge 1 ] || fail "the server does not hold mid.vhd open before the GC"
FIO_SIZE=8M FIO_LOOPS=40 fio_guest >"$TMP/fio.out" 2>&1 &
fio_pid=$!
wait_guest_writing
GC_LOG=$TMP/gc.log
"$VHD" gc run --once --quiet-period 0 "$sr" 2>"$GC_LOG" || { cat "$GC_LOG"; fail "vhd gc run --once"; }
grep -q "end coalesce mid.vhd: ok" "$GC_LOG" || { cat "$GC_LOG"; fail "mid was not coalesced"; }
grep -q "refresh the server of leaf.vhd: mid.vhd is released" "$GC_LOG" ||
	{ cat "$GC_LOG"; fail "the GC did not refresh the server"; }
! grep -q "leaf-coalesce" "$GC_LOG" || { cat "$GC_LOG"; fail "the leaf was planned for a merge though its parent has two children"; }
[ ! -e "$sr/mid.vhd" ] || fail "mid.vhd was not deleted"
[ "$(holds_mid)" = 0 ] || { ls -l "/proc/$pid/fd"; fail "the server still holds mid.vhd after the GC"; }
kill -0 "$fio_pid" 2>/dev/null || fail "fio ended before the GC: the guest did not write throughout"
wait "$fio_pid" || { tail -20 "$TMP/fio.out"; fail "fio (write and verify) across the GC failed"; }
[ "$(ctl_field 's["errors"]')" = 0 ] || fail "requests failed across the GC's merge and the refresh"
qemu-img convert -f raw -O raw "$URI" "$TMP/export.raw" || fail "qemu-img convert of the export"
serve_stop
cmp -s <(tail -c 25165824 "$TMP/export.raw") <(tail -c 25165824 "$TMP/model.raw") ||
	fail "the 24 MiB fio never wrote changed"
[ "$(content_sha "$sr/snap.vhd")" = "$snap0" ] || fail "snap.vhd's content changed"
[ "$("$VHD" depth "$sr/leaf.vhd")" = 2 ] || fail "leaf.vhd is not two deep over base"
for f in leaf snap; do
	"$VHD" check --chain "$sr/$f.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "vhd check --chain $f.vhd"; }
done
pass "gc coalesced mid under the served leaf with fio (crc32c) writing, refreshed the server: mid no longer held open, no request failed, fio verified, untouched range and snap equal, depth 2, check --chain on both leaves"
