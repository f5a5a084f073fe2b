#!/bin/bash
# test-live-serve-restart.sh - kill -9 of the nbdkit process of `vhd serve`
# (its pid, from the discovery file) during a live leaf-coalesce: the
# supervisor starts nbdkit again, the discovery file names the new process
# (the stale one removed, a fresh one written), the new server resumes the
# acknowledged merge by itself and completes it; the chain is one shorter
# and the content what it was.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
. "$(dirname "$0")/live-functions.sh"
requires nbdkit
live_chain "$TMP/c" 16
disc=$TMP/c/.vhd-serve-leaf.vhd.json
disc_pid() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$disc" 2>/dev/null; }
serve_start "$TMP/c/leaf.vhd"
old=$(disc_pid)
[ -n "$old" ] && [ "$old" != "$SERVE_PID" ] || fail "the discovery file does not name the nbdkit process"
ctl_query '{"cmd":"live-coalesce","rate":4194304}' | grep -q '"ok":true' || fail "live-coalesce refused"
sleep 0.5
[ "$(live_field 'l["phase"]')" = copy ] || fail "not copying 0.5 s into the merge: $(live_field 'l')"
kill -9 "$old"
new=
for _ in $(seq 200); do
	new=$(ctl_field 's["pid"]' 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ] && break
	new=
	sleep 0.05
done
[ -n "$new" ] || fail "no new nbdkit answers after kill -9 of $old"
[ "$(disc_pid)" = "$new" ] || fail "the discovery file names $(disc_pid), not the new server $new"
phase=$(live_field 'l["phase"]')
case $phase in copy|mirror|pivot|done) ;; *) fail "the restarted server did not resume the merge: $phase" ;; esac
[ "$(live_wait done failed)" = done ] || fail "the resumed merge: $(live_field 'l["error"]')"
serve_stop
[ ! -e "$disc" ] || fail "discovery file left after the server stopped"
[ "$("$VHD" depth "$TMP/c/leaf.vhd")" = 1 ] || fail "depth not 1 after the merge"
"$VHD" check "$TMP/c/leaf.vhd" >"$TMP/check" 2>&1 || { cat "$TMP/check"; fail "vhd check"; }
"$VHDIO" cat "$TMP/c/leaf.vhd" | cmp -s - "$TMP/c/model.raw" || fail "content changed"
pass "kill -9 of nbdkit ($old) mid-merge: restarted ($new), discovery file renewed, merge resumed ($phase) and completed; depth 1, content kept"
