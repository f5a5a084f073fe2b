#!/bin/bash
# test-live-coalesce-cancel.sh - the live-coalesce commands' refusals and
# cancel, and the discovery file: while `vhd serve` holds FILE it keeps
# .vhd-serve-<name>.json beside it (its nbdkit's pid, the control socket,
# FILE), removed when it stops, still naming FILE after a pivot.
# Refused: a second live-coalesce while one runs, cancel when none runs, a
# bad rate, a read-only export, a leaf whose parent is not hidden, a disk
# without parent.  A cancel (merge at 1 MiB/s) ends in phase cancelled,
# the chain intact (depth 2, parent kept, content as before, no journal),
# and a new live-coalesce then completes.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
requires nbdkit
refused() {   # refused JSON WORDS: the reply is ok:false and its error has WORDS
	local out
	out=$(ctl_query "$1")
	echo "$out" | grep -q '"ok":false' && echo "$out" | grep -q "$2" || fail "$1: not refused with '$2': $out"
}
live_chain "$TMP/c" 16
disc=$TMP/c/.vhd-serve-leaf.vhd.json
serve_start "$TMP/c/leaf.vhd"
[ -f "$disc" ] || fail "no discovery file $disc while serving"
read -r dpid dctl dfile < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["pid"], d["control"], d["file"])' "$disc")
[ "$dfile" = "$TMP/c/leaf.vhd" ] && [ "$dctl" = "$CTL" ] || fail "discovery file names $dfile, $dctl"
[ "$(ctl_field 's["pid"]')" = "$dpid" ] || fail "discovery pid $dpid is not the server's"
[ "$(live_field 'l["phase"]')" = idle ] || fail "a fresh server's live phase is not idle"
refused '{"cmd":"cancel"}' "no live coalesce"
refused '{"cmd":"live-coalesce","rate":-5}' "rate"
ctl_query '{"cmd":"live-coalesce","rate":1048576}' | grep -q '"ok":true' || fail "live-coalesce refused"
refused '{"cmd":"live-coalesce"}' "running already"
refused '{"cmd":"refresh"}' "running"
sleep 0.3
ctl_query '{"cmd":"cancel"}' | grep -q '"ok":true' || fail "cancel refused"
[ "$(live_field 'l["phase"], l["error"]')" = "cancelled cancelled" ] || fail "status after cancel: $(live_field 'l')"
[ ! -e "$TMP/c/.vhdlive-leaf.vhd.journal" ] || fail "the live journal is left after cancel"
[ "$("$VHD" depth "$TMP/c/leaf.vhd")" = 2 ] && [ -f "$TMP/c/base.vhd" ] || fail "chain changed by cancel"
qemu-img compare -f raw -F raw "$TMP/c/model.raw" "$URI" >"$TMP/cmp" 2>&1 || { cat "$TMP/cmp"; fail "content changed by cancel"; }
ctl_query '{"cmd":"live-coalesce"}' | grep -q '"ok":true' || fail "live-coalesce after cancel refused"
[ "$(live_wait done failed)" = done ] || fail "the merge after cancel: $(live_field 'l["error"]')"
[ "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"])' "$disc")" = "$TMP/c/leaf.vhd" ] ||
	fail "the discovery file does not name the leaf after the pivot"
refused '{"cmd":"live-coalesce"}' "not a differencing disk"
serve_stop
[ ! -e "$disc" ] || fail "discovery file left after the server stopped"
[ "$("$VHD" depth "$TMP/c/leaf.vhd")" = 1 ] || fail "depth not 1 after the merge"
"$VHDIO" cat "$TMP/c/leaf.vhd" | cmp -s - "$TMP/c/model.raw" || fail "content changed by the merge"

mkdir -p "$TMP/v" && "$VHD" create "$TMP/v/base.vhd" 8M >/dev/null || fail create
"$VHD" snapshot "$TMP/v/base.vhd" "$TMP/v/leaf.vhd" >/dev/null || fail snapshot
serve_start "$TMP/v/leaf.vhd"
refused '{"cmd":"live-coalesce"}' "not hidden"
serve_stop
serve_start "$TMP/c/leaf.vhd" --read-only
refused '{"cmd":"live-coalesce"}' "read-only"
[ ! -e "$disc" ] || fail "a read-only server wrote a discovery file"
serve_stop
pass "discovery file (pid, control, file; kept across the pivot, removed at stop); refusals (running, none, rate, read-only, not hidden, no parent); cancel leaves the chain and content intact, a new merge completes"
