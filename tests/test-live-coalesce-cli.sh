#!/bin/bash
# test-live-coalesce-cli.sh - `vhd live-coalesce LEAF` by hand, and how it
# finds the server.  A leaf nobody serves, a stale discovery file (pid
# gone), a discovery file that is a symlink, one that names the real
# server's socket for another leaf, and one whose pid is not the process
# answering the socket all exit 2 without touching anything.  Served:
# --rate 1M --no-wait starts a slow merge, --set-rate changes the server's
# limit, --cancel stops it (the chain stays two deep), a second --cancel
# is refused (4).  Then, while fio's nbd engine writes random 4 KiB
# blocks with crc32c, unthrottled, `vhd live-coalesce --json` follows the
# merge to its end (exit 0, its last line phase done) while fio still
# writes; fio verifies every block, a verify-only pass reads them again,
# the range fio never wrote equals the content before, the leaf keeps its
# path and UUID at depth 1, `vhd check` passes, and one more
# live-coalesce (no parent now) is refused by the server (4).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
requires nbdkit fio qemu-img
d=$TMP/c
live_chain "$d" 32
uuid() { "$VHD" info --json "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["uuid"])'; }
u0=$(uuid "$d/leaf.vhd")
expect() {   # CODE WORDS CMD...: CMD exits CODE and says WORDS
	local code=$1 words=$2 rc; shift 2
	"$@" >"$TMP/out" 2>&1; rc=$?
	[ "$rc" = "$code" ] || { cat "$TMP/out"; fail "$* exited $rc, not $code"; }
	grep -q -- "$words" "$TMP/out" || { cat "$TMP/out"; fail "$*: no '$words' in its message"; }
}
expect 2 "not served" "$VHD" live-coalesce "$d/leaf.vhd"
disc=$d/.vhd-serve-leaf.vhd.json
echo '{"pid":"12","control":"/nonexistent.sock","file":"'"$d/leaf.vhd"'"}' >"$disc"
expect 2 "not a valid discovery file" "$VHD" live-coalesce "$d/leaf.vhd"
gone=$(sh -c 'echo $$')   # a pid that has just ended
echo '{"pid":'"$gone"',"control":"/nonexistent.sock","file":"'"$d/leaf.vhd"'"}' >"$disc"
expect 2 "stale" "$VHD" live-coalesce "$d/leaf.vhd"
rm -f "$disc" && ln -s /dev/zero "$disc"
expect 2 "not served" "$VHD" live-coalesce "$d/leaf.vhd"
rm -f "$disc"

serve_start "$d/leaf.vhd"
[ -f "$disc" ] || fail "the server keeps no discovery file"
real=$(cat "$disc")
# another leaf whose discovery file points at this server: it serves c/leaf.vhd, not o/leaf.vhd
live_chain "$TMP/o" 8
"$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); j["file"]=sys.argv[2]; print(json.dumps(j))' \
	"$real" "$TMP/o/leaf.vhd" >"$TMP/o/.vhd-serve-leaf.vhd.json"
expect 2 "does not serve" "$VHD" live-coalesce "$TMP/o/leaf.vhd"
# the real socket, but a pid that is not the server's
"$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); j["pid"]=int(sys.argv[2]); print(json.dumps(j))' \
	"$real" "$$" >"$disc"
expect 2 "answered by pid" "$VHD" live-coalesce "$d/leaf.vhd"
echo "$real" >"$disc"
[ "$(live_field 'l["phase"]')" = idle ] || fail "a refused live-coalesce started a merge"

"$VHD" live-coalesce --rate 1M --no-wait "$d/leaf.vhd" || fail "live-coalesce --no-wait"
[ "$(live_field 'l["rate_limit"]')" = 1048576 ] || fail "the server's rate limit is not 1M"
"$VHD" live-coalesce --set-rate 2M "$d/leaf.vhd" || fail "live-coalesce --set-rate"
[ "$(live_field 'l["rate_limit"]')" = 2097152 ] || fail "--set-rate did not reach the server"
"$VHD" live-coalesce --cancel "$d/leaf.vhd" || fail "live-coalesce --cancel"
phase=$(live_wait cancelled) || fail "not cancelled: $phase"
[ "$("$VHD" depth "$d/leaf.vhd")" = 2 ] || fail "the chain changed after cancel"
expect 4 "refused" "$VHD" live-coalesce --cancel "$d/leaf.vhd"

FIO_LOOPS=10 fio_guest >"$TMP/fio.out" 2>&1 &
fio_pid=$!
wait_guest_writing
timeout 60 "$VHD" live-coalesce --json "$d/leaf.vhd" >"$TMP/live.json" 2>"$TMP/live.err" ||
	{ cat "$TMP/live.err"; fail "vhd live-coalesce under fio"; }
kill -0 "$fio_pid" 2>/dev/null || fail "fio ended before the merge: the guest did not write throughout"
last=$(tail -1 "$TMP/live.json")
[ "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["phase"])' "$last")" = "done" ] ||
	fail "the last --json line is not phase done: $last"
lines=$(wc -l <"$TMP/live.json")
summary=$("$PY" -c 'import json,sys; l=json.loads(sys.argv[1]); print("%d bytes copied, pivot %.1f ms, longest wait %.1f ms" % (l["bytes_done"], l["pivot_ms"], l["pivot_pause_ms"]))' "$last")
wait "$fio_pid" || { tail -20 "$TMP/fio.out"; fail "fio (write and verify) failed"; }
[ "$(ctl_field 's["errors"]')" = 0 ] || fail "requests failed during the merge"
FIO_LOOPS=10 fio_guest --verify_only >"$TMP/verify.out" 2>&1 || { tail -20 "$TMP/verify.out"; fail "fio verify-only pass"; }
expect 4 "refused" "$VHD" live-coalesce "$d/leaf.vhd"
qemu-img convert -f raw -O raw "$URI" "$TMP/export.raw" || fail "qemu-img convert of the export"
serve_stop
[ ! -e "$disc" ] || fail "the discovery file is left after the server stopped"
[ "$("$VHD" depth "$d/leaf.vhd")" = 1 ] || fail "chain depth not 1 after the merge"
[ "$(uuid "$d/leaf.vhd")" = "$u0" ] || fail "the leaf's path lost its UUID"
"$VHD" check "$d/leaf.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "vhd check after the merge"; }
cmp -s <(tail -c 8388608 "$TMP/export.raw") <(tail -c 8388608 "$d/model.raw") ||
	fail "the 8 MiB fio never wrote changed"
pass "not served, stale, symlinked, other-leaf and wrong-pid discovery files: exit 2; --no-wait, --set-rate, --cancel (chain kept), second cancel 4; under unthrottled fio (crc32c) --json followed $lines lines to done: $summary; verify-only pass, untouched range equal, depth 1, UUID kept, check; again: 4"
