#!/bin/bash
# test-live-refresh.sh - `vhd serve` follows a merge below its leaf: with
# leaf.vhd served on mid.vhd on base.vhd (both hidden), an offline
# `vhd coalesce --relink mid.vhd` merges mid into base, re-points the leaf
# and deletes mid, which the server still holds open (/proc/PID/fd shows
# it deleted).  {"cmd":"refresh"}, sent while fio writes and verifies
# through the export, re-opens the parents: mid's descriptor is gone, the
# chain the server reads is two deep, no request failed, fio's crc32c
# verification passes, and the untouched range equals the content before.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
requires nbdkit fio qemu-img
d=$TMP/c
mkdir -p "$d"
"$VHD" create "$d/base.vhd" 16M >/dev/null || fail create
rand_sectors 16384 | "$VHDIO" write "$d/base.vhd" 0 || fail "write base"
"$VHD" snapshot "$d/base.vhd" "$d/mid.vhd" >/dev/null || fail snapshot
rand_sectors 8192 | "$VHDIO" write "$d/mid.vhd" 4194304 || fail "write mid"
"$VHD" snapshot "$d/mid.vhd" "$d/leaf.vhd" >/dev/null || fail snapshot
rand_sectors 4096 | "$VHDIO" write "$d/leaf.vhd" 10485760 || fail "write leaf"
"$VHD" set "$d/base.vhd" hidden on && "$VHD" set "$d/mid.vhd" hidden on || fail hide
"$VHDIO" cat "$d/leaf.vhd" >"$d/model.raw" || fail model
serve_start "$d/leaf.vhd"
pid=$(ctl_field 's["pid"]')
fds() { ls -l "/proc/$pid/fd" 2>/dev/null | grep -c "mid.vhd"; }
[ "$(fds)" -ge 1 ] || fail "the server does not hold mid.vhd open"
"$VHD" coalesce --relink "$d/mid.vhd" >"$TMP/co" 2>&1 || { cat "$TMP/co"; fail "offline coalesce of mid"; }
[ ! -e "$d/mid.vhd" ] || fail "mid.vhd not deleted by the relink"
ls -l "/proc/$pid/fd" | grep -q "mid.vhd (deleted)" || fail "the server does not hold the deleted mid.vhd"
FIO_SIZE=4M FIO_LOOPS=20 fio_guest >"$TMP/fio.out" 2>&1 &
fio_pid=$!
sleep 0.5
ctl_query '{"cmd":"refresh"}' | grep -q '"ok":true' || fail "refresh refused"
kill -0 "$fio_pid" 2>/dev/null || fail "fio ended before the refresh"
[ "$(fds)" = 0 ] || fail "mid.vhd is still open after refresh"
wait "$fio_pid" || { tail -20 "$TMP/fio.out"; fail "fio across the refresh"; }
[ "$(ctl_field 's["errors"]')" = 0 ] || fail "requests failed across the refresh"
qemu-img convert -f raw -O raw "$URI" "$TMP/export.raw" || fail "read the export"
cmp -s <(tail -c 12582912 "$TMP/export.raw") <(tail -c 12582912 "$d/model.raw") ||
	fail "content beyond the guest's writes changed"
serve_stop
[ "$("$VHD" depth "$d/leaf.vhd")" = 2 ] || fail "chain depth not 2"
pass "refresh after an offline merge of hidden ancestors, under fio: the deleted mid.vhd released, no request failed, content kept"
