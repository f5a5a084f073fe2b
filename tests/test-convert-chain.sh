#!/bin/bash
# vhd convert of a 4-layer chain with unaligned writes crossing blocks and
# a leaf that zeroes parent data: the raw output equals `vhd-io cat` of the
# chain; the flattened dynamic VHD reads the same, has no parent and
# allocates only non-zero blocks; a fixed output reads the same.
. "$(dirname "$0")/functions.sh"
requires /usr/bin/python3
D=$TMP/c
make_chain "$D" 3 20 15 || fail "make_chain"
# zero, in the leaf, a whole block that has data below, and a few
# unaligned sectors
blk=$("$VHD" map --chain --sectors "$D/l2.vhd" | awk '{ print int($1 / 4096); exit }')
[ -n "$blk" ] || fail "no data in the chain"
head -c 2097152 /dev/zero | "$VHDIO" write "$D/l3.vhd" $((blk * 2097152)) || fail "zero write"
head -c 1536 /dev/zero | "$VHDIO" write "$D/l3.vhd" $((7 * 512 + 2097152 * 3)) || fail "zero write"
want=$(content_sha "$D/l3.vhd")
"$VHDIO" cat "$D/l3.vhd" > "$TMP/ref.raw"

"$VHD" convert "$D/l3.vhd" "$TMP/out.raw" >/dev/null || fail "chain -> raw"
[ "$(raw_sha "$TMP/out.raw")" = "$want" ] || fail "raw output differs from vhd-io cat"
"$VHD" convert "$D/l3.vhd" "$TMP/flat.vhd" >/dev/null || fail "chain -> dynamic"
[ "$(content_sha "$TMP/flat.vhd")" = "$want" ] || fail "flattened content differs"
"$VHD" info --json "$TMP/flat.vhd" > "$TMP/info.json" || fail "info"
nblocks=$(/usr/bin/python3 - "$TMP/ref.raw" "$TMP/info.json" "$blk" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read(); i = json.load(open(sys.argv[2])); blk = int(sys.argv[3])
B = 2 << 20
nonzero = [k for k in range(len(data) // B) if data[k * B:(k + 1) * B].strip(b"\0")]
assert i["type"] == "dynamic" and i["chain_depth"] == 1 and "parent_uuid" not in i, i
assert i["allocated_blocks"] == len(nonzero), (i["allocated_blocks"], nonzero)
assert blk not in nonzero
print(len(nonzero))
PY
) || fail "flattened image: wrong type, parent or allocation"
[ "$("$VHD" depth "$TMP/flat.vhd" 2>/dev/null | tr -dc 0-9)" = 1 ] || fail "flattened depth is not 1"
"$VHD" convert --fixed "$D/l3.vhd" "$TMP/fixed.vhd" >/dev/null || fail "chain -> fixed"
[ "$(content_sha "$TMP/fixed.vhd")" = "$want" ] || fail "fixed content differs"
# a middle layer converts to its own view of the chain
"$VHD" convert "$D/l1.vhd" "$TMP/l1.raw" >/dev/null || fail "l1 -> raw"
[ "$(raw_sha "$TMP/l1.raw")" = "$(content_sha "$D/l1.vhd")" ] || fail "l1 raw differs"
pass "chain -> raw, flattened dynamic ($nblocks blocks) and fixed read as the chain"
