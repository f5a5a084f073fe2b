#!/bin/bash
# The GC's measured merge speed is kept in the SR (.vhd-gc-speed) across
# restarts: written by a rate-limited run, read back by the next GC, whose
# chain ETAs are the bytes to merge over it (computed here from `vhd info`);
# updated after the next merges.  A damaged speed file (garbage, a field
# missing, of the wrong type or out of range, text after the object, too
# big, a NUL byte, a symlink, a directory) is ignored with a log line: the
# speed is unknown, the GC runs on.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; rm -rf "$TMP"' EXIT
SR=$TMP/sr
SPEED=$SR/.vhd-gc-speed
file_field() { json_get "$(cat "$SPEED")" "j['$1']"; }
data() { "$VHD" info --json "$SR/$1" | json_get "$(cat)" 'j["data_bytes"]'; }
mkdir -p "$SR"
small_chain "$SR" a 192 || fail "chain a"

# a first run at 256 KiB/s: two merges measured, the file written
"$VHD" gc run --once --quiet-period 0 --rate-limit 256K "$SR" 2>"$TMP/run1.log" ||
	{ cat "$TMP/run1.log"; fail "first run"; }
[ -f "$SPEED" ] || fail "no speed file after two merges"
speed=$(file_field bytes_per_second)
[ "$(file_field version),$(file_field samples),$(file_field rate_limit)" = 1,2,262144 ] ||
	fail "speed file: $(cat "$SPEED")"
[ "$(json_get "$(cat "$SPEED")" 'j["bytes_per_second"] > 0')" = True ] || fail "speed $speed"
ls -A "$SR" | grep -q 'vhd-gc-speed.tmp' && fail "temporary speed file left"
echo "checked: the first run measured $speed bytes/s over 2 merges"

# the next GC (under the same rate limit) reads it: the ETA of a new chain
# (made while it is paused) is its bytes over that speed, capped by the limit
gc_start "$SR" --quiet-period 0 --interval 0.1 --rate-limit 256K || fail "GC did not start"
grep -q "merge speed $(printf %.0f "$speed") bytes/s (2 merges, rate limit 262144), from $SPEED" "$GC_LOG" ||
	{ cat "$GC_LOG"; fail "speed not loaded"; }
"$VHD" gc pause "$SR" && wait_for 10 'j["state"] == "paused"' || fail "pause"
small_chain "$SR" c 192 || fail "chain c"
bytes=$(( $(data c1.vhd) + $(data c2.vhd) ))
wait_for 10 'any(c["vhd"] == "c2.vhd" and c["nodes_to_merge"] == 2 for c in j["chains"])' || fail "chain c not planned"
st=$(gc_status)
[ "$(json_get "$st" "j['speed']['bytes_per_second'] == $speed and j['speed']['samples'] == 2")" = True ] ||
	fail "status speed: $(json_get "$st" 'j["speed"]'), file $speed"
got=$(json_get "$st" "json.dumps([c for c in j['chains'] if c['vhd'] == 'c2.vhd'][0])")
[ "$(json_get "$got" 'j["bytes_to_merge"]')" = "$bytes" ] || fail "bytes to merge, expected $bytes: $got"
eff=$(json_get "$(cat "$SPEED")" 'min(j["bytes_per_second"], 262144)')
[ "$(json_get "$got" "abs(j['eta'] - $bytes / $eff) < 1e-6 and abs(j['schedule'][0]['eta'] - $(data c1.vhd) / $eff) < 1e-6")" = True ] ||
	fail "ETA, expected $bytes / $eff: $got"
echo "checked: restarted, speed $speed from the file, c2.vhd's ETA $(json_get "$got" 'j["eta"]') s = $bytes bytes / $eff"
"$VHD" gc resume "$SR" || fail resume
wait_for 20 'j["state"] == "idle" and not j["queue"] and j["speed"]["samples"] == 4' || fail "did not converge"
st=$(gc_status)
gc_stop
[ "$(file_field samples)" = 4 ] || fail "file not updated: $(cat "$SPEED")"
[ "$(json_get "$st" "j['speed']['bytes_per_second'] == $(file_field bytes_per_second)")" = True ] ||
	fail "status and file disagree: $(json_get "$st" 'j["speed"]') $(cat "$SPEED")"

# damaged files: ignored with a log line, the speed unknown, the GC runs
good=$(cat "$SPEED")
damage() {
	rm -rf "$SPEED"
	case $1 in
	symlink) printf '%s' "$good" >"$TMP/elsewhere" && ln -s "$TMP/elsewhere" "$SPEED" ;;
	directory) mkdir "$SPEED" ;;
	big) { head -c 5000 /dev/zero | tr '\0' ' '; printf '%s' "$good"; } >"$SPEED" ;;
	nul) { printf '%s' "$good"; printf '\0'; } >"$SPEED" ;;
	*) printf '%s' "$1" >"$SPEED" ;;
	esac
}
# each read by a run that has nothing to do; its metrics file says the speed
# it knows (none for a damaged file)
run_once() {
	rm -f "$TMP/m.prom"
	"$VHD" gc run --once --quiet-period 0 --metrics-file "$TMP/m.prom" "$SR" 2>"$TMP/once.log" ||
		{ cat "$TMP/once.log"; fail "gc run --once with speed file '$1'"; }
	[ -s "$TMP/m.prom" ] || fail "no metrics with speed file '$1'"
}
n=0
for bad in 'garbage' '' '[1,2]' \
	'{"version":2,"bytes_per_second":1000,"samples":1,"rate_limit":0,"updated":1}' \
	'{"version":1,"bytes_per_second":-5,"samples":1,"rate_limit":0,"updated":1}' \
	'{"version":1,"bytes_per_second":0,"samples":1,"rate_limit":0,"updated":1}' \
	'{"version":1,"bytes_per_second":1e400,"samples":1,"rate_limit":0,"updated":1}' \
	'{"version":1,"bytes_per_second":"fast","samples":1,"rate_limit":0,"updated":1}' \
	'{"version":1,"bytes_per_second":1000,"samples":1.5,"rate_limit":0,"updated":1}' \
	'{"version":1,"bytes_per_second":1000,"rate_limit":0,"updated":1}' \
	'{"version":1,"bytes_per_second":1000,"samples":1,"rate_limit":-1,"updated":1}' \
	'{"version":1,"bytes_per_second":1000,"samples":1,"updated":1}' \
	'{"version":1,"bytes_per_second":1000,"samples":1,"rate_limit":0,"updated":1}{}' \
	'{"version":1,"bytes_per_second":1000,"samples":1,"rate_limit":0,"updated":1' \
	symlink directory big nul; do
	damage "$bad"
	run_once "$bad"
	grep -q "$SPEED: ignored, the merge speed is unknown until a merge ends: " "$TMP/once.log" ||
		{ cat "$TMP/once.log"; fail "speed file '$bad': no log line"; }
	grep -q '^vhd_gc_merge_speed_bytes_per_second ' "$TMP/m.prom" && fail "speed file '$bad' not ignored"
	n=$((n + 1))
done
# the same file without its defect is read: each one above was refused for it
damage '{"version":1,"bytes_per_second":1000,"samples":1,"rate_limit":0,"updated":1}'
run_once sound
grep -qx 'vhd_gc_merge_speed_bytes_per_second 1000' "$TMP/m.prom" || fail "sound speed file not read"
grep -q "ignored" "$TMP/once.log" && fail "sound speed file logged as damaged"
rm -rf "$SPEED"
run_once none
grep -q "ignored" "$TMP/once.log" && fail "a missing speed file logged as damaged"
pass "speed file: written atomically, kept across a restart, ETA = bytes / speed, $n damaged files ignored"
