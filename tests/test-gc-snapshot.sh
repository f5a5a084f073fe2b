#!/bin/bash
# Snapshots taken while the GC works: a snapshot of the leaf goes through
# (the SR lock is only held briefly), a snapshot of a VHD being coalesced
# into is refused; afterwards every visible VHD, the new one included, reads
# as it did when it was taken.  Garbage and --once: the GC exits when done.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; rm -rf "$TMP"' EXIT
SR=$TMP/sr
make_sr "$SR" 15 256 2 || fail "building the SR"
rand_sectors 64 >"$TMP/32k"
for blk in $(seq 0 63); do
	"$VHDIO" write "$SR/b01.vhd" $((blk * 2097152)) <"$TMP/32k" || fail "writing b01"
done
for f in "$SR"/s*.vhd; do rm "$f"; done
sr_sums "$SR" >"$TMP/want"
gc_start "$SR" --quiet-period 0 --interval 0.1 --rate-limit 100K || fail "GC did not start"
wait_for 20 'j["operation"] is not None and "b01.vhd" in (j["operation"]["layers"] or []) and j["operation"]["bytes_done"] > 0' ||
	fail "no commit running"
ls -A "$SR" | grep -q '^\.vhdkit-b00\.vhd\.journal$' || wait_for 10 'True'
expect_exit 4 "$VHD" snapshot "$SR/b00.vhd" "$SR/x.vhd"
grep -q "coalesce into it is under way" "$TMP/.out" || fail "unclear refusal: $(cat "$TMP/.out")"
[ -e "$SR/x.vhd" ] && fail "refused snapshot created a file"
t0=$(date +%s%N)
"$VHD" snapshot "$SR/leaf.vhd" "$SR/snap.vhd" || fail "snapshot of the leaf during GC work"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 5000 ] || fail "snapshot waited ${ms} ms for the SR lock"
"$VHD" set "$SR/leaf.vhd" hidden on || fail "hiding the old leaf"
"$VHD" snapshot "$SR/leaf.vhd" "$SR/leaf2.vhd" || fail "new leaf"
want_leaf=$(grep '^leaf.vhd ' "$TMP/want" | cut -d' ' -f2)
echo "snap.vhd $want_leaf" >>"$TMP/want"
echo "leaf2.vhd $want_leaf" >>"$TMP/want"
rand_sectors 8 | "$VHDIO" write "$SR/leaf2.vhd" 0 || fail "writing the new leaf"
echo "leaf2.vhd $(content_sha "$SR/leaf2.vhd")" >>"$TMP/want"
"$VHD" gc set-rate "$SR" 0 || fail set-rate
wait_for 60 'j["state"] == "idle" and not j["queue"] and j["operation"] is None' || fail "did not converge"
gc_stop
sr_sums "$SR" >"$TMP/got"
for name in snap.vhd; do
	grep -qx "$name $want_leaf" "$TMP/got" || fail "$name does not read as the leaf did"
done
grep -qx "leaf2.vhd $(tail -1 "$TMP/want" | cut -d' ' -f2)" "$TMP/got" || fail "new leaf changed"
[ "$("$VHD" depth "$SR/snap.vhd")" -le 2 ] || fail "chain not collapsed under the snapshot"
pass "snapshot during GC work: leaf snapshot fine, base refused, content intact"
