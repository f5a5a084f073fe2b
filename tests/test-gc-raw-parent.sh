#!/bin/bash
# The GC and a raw parent (blktap's snapshot -m): a VHD whose parent is a raw
# image is not reported broken; the GC says the raw parent is left alone,
# still shortens the VHD part of the chain (leaf-coalesce into the hidden
# VHD above the raw image), never writes the raw image, and `gc wait` does
# not fail with "broken".
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
trap 'gc_stop; rm -rf "$TMP"' EXIT
requires cmp
SR=$TMP/sr
mkdir -p "$SR"
head -c $((8 << 20)) /dev/urandom >"$SR/base.raw"
cp "$SR/base.raw" "$TMP/base.orig"
"$VHD" snapshot --raw-parent "$SR/base.raw" "$SR/mid.vhd" >/dev/null || fail "snapshot --raw-parent"
random_writes "$SR/mid.vhd" 8 4 64 || fail "writes mid"
"$VHD" snapshot "$SR/mid.vhd" "$SR/leaf.vhd" >/dev/null || fail "snapshot leaf"
"$VHD" set "$SR/mid.vhd" hidden on >/dev/null || fail "hide mid"
random_writes "$SR/leaf.vhd" 8 4 64 || fail "writes leaf"
want=$(content_sha "$SR/leaf.vhd")

gc_start "$SR" --quiet-period 0 --interval 0.1 || fail "GC did not start"
"$VHD" gc wait "$SR" --vhd "$SR/leaf.vhd" --max-depth 2 --timeout 60 >"$TMP/wait" 2>&1 ||
	{ cat "$TMP/wait"; fail "gc wait failed"; }
wait_for 20 'j["queue"] == [] and j["operation"] is None and j["state"] == "idle"' || fail "GC did not finish"
st=$(gc_status)
[ "$(json_get "$st" 'len(j["broken"])')" = 0 ] || fail "reported broken: $st"
gc_stop
grep -q "decision: the parent of leaf.vhd is a raw image, not a VHD of the SR: it is left alone" "$GC_LOG" ||
	{ cat "$GC_LOG"; fail "no raw-parent decision in the log"; }
! grep -q "parent not found" "$GC_LOG" || fail "raw parent reported as missing"
[ ! -e "$SR/mid.vhd" ] || fail "leaf was not coalesced into mid.vhd"
[ "$(content_sha "$SR/leaf.vhd")" = "$want" ] || fail "leaf content changed"
cmp -s "$SR/base.raw" "$TMP/base.orig" || fail "the raw image was written"
pass "raw parent left alone, not broken; VHD part of the chain coalesced"
