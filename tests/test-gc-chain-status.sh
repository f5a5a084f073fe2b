#!/bin/bash
# vhd gc status per chain (a visible leaf to its root): depth, layers and
# bytes to merge (against `vhd depth` and the data_bytes `vhd info` gives
# for each layer the plan merges), the space the next merge needs and
# whether it fits, the ETA (unknown before any merge has ended), in the
# JSON, in the plain status and in the metrics (label chain="LEAF"); after
# the merges, the chain's new depth, nothing left, and the measured speed.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; rm -rf "$TMP"' EXIT
SR=$TMP/sr
# b00 <- b01 <- b02 <- b03 <- leaf, with the snapshots s00 (of b00) and s01
# (of b01): b02 and b01 keep two children, so the plan merges b03 into b02
# and leaf into b03: two of leaf's five layers
make_sr "$SR" 4 16 3 || fail "building the SR"
rm "$SR/s02.vhd" "$SR/s03.vhd"
data() { "$VHD" info --json "$SR/$1" | json_get "$(cat)" 'j["data_bytes"]'; }
b03=$(data b03.vhd) leaf=$(data leaf.vhd)
[ "$b03" -gt 0 ] && [ "$leaf" -gt 0 ] || fail "no data in the layers ($b03, $leaf)"
bytes=$((b03 + leaf))
depth=$("$VHD" depth "$SR/leaf.vhd")
[ "$depth" = 5 ] || fail "leaf.vhd is $depth deep, not 5"
min_free=$((1000 << 40))
need=$((b03 + b03 / 64 + (4 << 20) + min_free))

# --min-free 1000T: nothing fits, nothing runs, the figures stay still
gc_start "$SR" --quiet-period 0 --interval 0.1 --min-free 1000T --metrics-file "$TMP/gc.prom" ||
	fail "GC did not start"
wait_for 10 'j["state"] == "waiting-for-space"' || fail "no wait for space"
st=$(gc_status)
chain() { json_get "$st" "[c for c in j['chains'] if c['vhd'] == '$1'][0]$2"; }
[ "$(chain leaf.vhd '["root"]')" = b00.vhd ] || fail "root: $(chain leaf.vhd '')"
[ "$(chain leaf.vhd '["depth"]')" = "$depth" ] || fail "depth: $(chain leaf.vhd '')"
[ "$(chain leaf.vhd '["nodes_to_merge"]')" = 2 ] || fail "nodes: $(chain leaf.vhd '')"
[ "$(chain leaf.vhd '["bytes_to_merge"]')" = "$bytes" ] || fail "bytes, expected $bytes: $(chain leaf.vhd '')"
[ "$(chain leaf.vhd '["next"]["vhd"]')" = b03.vhd ] || fail "next merge: $(chain leaf.vhd '')"
[ "$(chain leaf.vhd '["next"]["space_needed"]')" = "$need" ] || fail "space needed, expected $need: $(chain leaf.vhd '')"
[ "$(chain leaf.vhd '["next"]["fits"]')" = False ] || fail "fits: $(chain leaf.vhd '')"
[ "$(chain leaf.vhd '["eta"]')" = None ] || fail "an ETA without a speed: $(chain leaf.vhd '')"
[ "$(json_get "$st" "[[s['depth'] for s in c['schedule']] for c in j['chains'] if c['vhd'] == 'leaf.vhd'][0]")" = "[4, 3]" ] ||
	fail "schedule: $(chain leaf.vhd '')"
[ "$(json_get "$st" 'j["speed"]["bytes_per_second"]')" = None ] || fail "a speed before any merge"
for s in s00.vhd:2 s01.vhd:3; do
	[ "$(chain "${s%:*}" '["depth"]'),$(chain "${s%:*}" '["nodes_to_merge"]'),$(chain "${s%:*}" '["eta"]')" = "${s#*:},0,0.0" ] ||
		fail "chain ${s%:*}: $(chain "${s%:*}" '')"
done
[ "$(json_get "$st" 'len(j["chains"])')" = 3 ] || fail "chains: $(json_get "$st" 'j["chains"]')"
echo "checked: leaf.vhd depth $depth, 2 layers, $bytes bytes to merge, next needs $need: does not fit, ETA unknown"

# the same figures in the metrics, labelled with the chain, and the plain status
gc_metrics_line() { grep -qxF "$1" "$TMP/gc.prom" || { grep chain "$TMP/gc.prom"; fail "metric '$1' missing"; }; }
gc_metrics_line "vhd_gc_chain_layers{chain=\"leaf.vhd\"} $depth"
gc_metrics_line 'vhd_gc_chain_nodes_to_merge{chain="leaf.vhd"} 2'
gc_metrics_line "vhd_gc_chain_bytes_to_merge{chain=\"leaf.vhd\"} $bytes"
gc_metrics_line "vhd_gc_chain_space_needed_bytes{chain=\"leaf.vhd\"} $need"
gc_metrics_line 'vhd_gc_chain_space_fits{chain="leaf.vhd"} 0'
gc_metrics_line 'vhd_gc_chain_layers{chain="s01.vhd"} 3'
grep -q 'vhd_gc_chain_eta_seconds{chain="leaf.vhd"}' "$TMP/gc.prom" && fail "an ETA metric without a speed"
grep -q '^vhd_gc_merge_speed_bytes_per_second ' "$TMP/gc.prom" && fail "a speed metric before any merge"
"$VHD" gc status "$SR" >"$TMP/human" || fail "gc status"
grep -Eq "^leaf.vhd +$depth +2 .* no +unknown" "$TMP/human" || { cat "$TMP/human"; fail "plain status: no chain line"; }
grep -q "merge speed: unknown" "$TMP/human" || { cat "$TMP/human"; fail "plain status: speed"; }
gc_stop

# room again: the two merges run; then leaf.vhd is 3 deep, nothing is left,
# and the speed they were measured at is known (and kept in the SR)
"$VHD" gc run --once --quiet-period 0 "$SR" 2>"$TMP/once.log" || { cat "$TMP/once.log"; fail "gc run --once"; }
[ "$("$VHD" depth "$SR/leaf.vhd")" = 3 ] || fail "leaf.vhd not merged to depth 3"
gc_start "$SR" --quiet-period 0 --interval 0.1 --metrics-file "$TMP/gc.prom" || fail "GC did not restart"
wait_for 10 'j["scans"] >= 1 and j["state"] == "idle"' || fail "not idle"
st=$(gc_status)
[ "$(chain leaf.vhd '["depth"]'),$(chain leaf.vhd '["nodes_to_merge"]'),$(chain leaf.vhd '["bytes_to_merge"]'),$(chain leaf.vhd '["eta"]'),$(chain leaf.vhd '["next"]')" = "3,0,0,0.0,None" ] ||
	fail "after the merges: $(chain leaf.vhd '')"
speed=$(json_get "$st" 'j["speed"]["bytes_per_second"]')
[ "$(json_get "$st" 'j["speed"]["bytes_per_second"] > 0 and j["speed"]["samples"] == 2')" = True ] ||
	fail "speed after two merges: $(json_get "$st" 'j["speed"]')"
gc_metrics_file_speed=$(sed -n 's/^vhd_gc_merge_speed_bytes_per_second //p' "$TMP/gc.prom")
[ "$gc_metrics_file_speed" = "$(printf %.0f "$speed")" ] || fail "speed metric '$gc_metrics_file_speed', status $speed"
gc_metrics_line 'vhd_gc_chain_eta_seconds{chain="leaf.vhd"} 0.000'
pass "per-chain status, plain status and metrics: depth, layers and bytes to merge, space, ETA, speed"
