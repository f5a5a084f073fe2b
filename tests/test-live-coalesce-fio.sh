#!/bin/bash
# test-live-coalesce-fio.sh - a live leaf-coalesce under an unthrottled
# guest: fio's nbd engine writes random 4 KiB blocks (crc32c in each) at
# depth 1 over the first 24 MiB of a 32 MiB leaf through `vhd serve`, and
# the merge of the leaf into its hidden parent is asked for once fio is
# writing and must end (phase done) while fio still writes.  Then fio
# verifies every block it wrote, a verify-only pass reads them all again,
# the last 8 MiB (never written by the guest) equal the content before,
# qemu-img compare finds the export equal to the file as `vhd serve` left
# it after a restart, the chain is one shorter under the leaf's path and
# UUID, the parent's old name is gone, and `vhd check` passes.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
requires nbdkit fio qemu-img
live_chain "$TMP/c" 32
uuid=$(uuid_of "$TMP/c/leaf.vhd")
serve_start "$TMP/c/leaf.vhd"
FIO_LOOPS=12 fio_guest >"$TMP/fio.out" 2>&1 &
fio_pid=$!
wait_guest_writing
ctl_query '{"cmd":"live-coalesce"}' | grep -q '"ok":true' || fail "live-coalesce refused"
phase=$(live_wait done failed) || fail "the live merge did not end: $phase"
[ "$phase" = done ] || fail "the live merge failed: $(live_field 'l["error"]')"
kill -0 "$fio_pid" 2>/dev/null || fail "fio ended before the merge: the guest did not write throughout"
summary=$(live_field '"copied %d bytes, pivot %.1f ms, longest request wait %.1f ms" % (l["bytes_done"], l["pivot_ms"], l["pivot_pause_ms"])')
wait "$fio_pid" || { tail -20 "$TMP/fio.out"; fail "fio (write and verify) failed"; }
grep -q "err= 0" "$TMP/fio.out" || { tail -20 "$TMP/fio.out"; fail "fio reported errors"; }
[ "$(ctl_field 's["errors"]')" = 0 ] || fail "requests failed during the merge"
FIO_LOOPS=1 fio_guest --verify_only >"$TMP/verify.out" 2>&1 || { tail -20 "$TMP/verify.out"; fail "fio verify-only pass"; }
qemu-img convert -f raw -O raw "$URI" "$TMP/export.raw" || fail "qemu-img convert of the export"
serve_stop
[ "$("$VHD" depth "$TMP/c/leaf.vhd")" = 1 ] || fail "chain depth not 1 after the merge"
[ ! -e "$TMP/c/base.vhd" ] || fail "the parent's old name is still there"
[ "$(uuid_of "$TMP/c/leaf.vhd")" = "$uuid" ] ||
	fail "the leaf's path does not have the leaf's UUID after the merge"
"$VHD" check "$TMP/c/leaf.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "vhd check after the merge"; }
cmp -s <(tail -c 8388608 "$TMP/export.raw") <(tail -c 8388608 "$TMP/c/model.raw") ||
	fail "the 8 MiB the guest never wrote changed"
serve_start "$TMP/c/leaf.vhd"
qemu-img compare -f raw -F raw "$TMP/export.raw" "$URI" >"$TMP/cmp" 2>&1 ||
	{ cat "$TMP/cmp"; fail "qemu-img compare: the export before the restart differs from after"; }
serve_stop
pass "fio 4 KiB random writes (crc32c, depth 1, unthrottled) through the whole live merge: $summary; verify-only pass, untouched range, qemu-img compare after restart equal; depth 1, UUID kept, vhd check"
