#!/bin/bash
# test-serve-info.sh - what nbdinfo sees of `vhd serve` on a 3-level chain, a
# dynamic and a fixed disk: size, block sizes (512/4096), the description,
# the flags (multi-conn, fua, trim, zero, fast zero, cache, read-only), and
# `nbdinfo --map` (block status) equal to `vhd map --chain` (data and holes,
# serve-functions.sh's vhd_extents; the corpus: test-serve-map.sh).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdinfo
make_chain "$TMP/c" 2 24 12 || fail "make_chain"
"$VHD" create "$TMP/fixed.vhd" 8M --fixed >/dev/null || fail "create fixed"

check_export() {   # FILE SIZE TYPE-WORD LAYERS [serve options]
	local f=$1 size=$2 word=$3 layers=$4; shift 4
	serve_start "$f" "$@"
	nbdinfo "$URI" >"$TMP/info" || fail "$f: nbdinfo failed"
	grep -q "export-size: $size " "$TMP/info" || { cat "$TMP/info"; fail "$f: size is not $size"; }
	grep -q "block_size_minimum: 512$" "$TMP/info" || fail "$f: minimum block size not 512"
	grep -q "block_size_preferred: 4096$" "$TMP/info" || fail "$f: preferred block size not 4096"
	grep -q "description: .*$(basename "$f"): $word VHD, $layers" "$TMP/info" ||
		{ cat "$TMP/info"; fail "$f: description"; }
	local flags="can_multi_conn can_cache can_df"
	case " $* " in *" --read-only "*) ;; *) flags="$flags can_fua can_flush can_trim can_zero can_fast_zero" ;; esac
	for flag in $flags; do
		grep -q "$flag: true" "$TMP/info" || fail "$f: $flag is not true"
	done
	grep -q "base:allocation" "$TMP/info" || fail "$f: no base:allocation context"
	nbd_extents "$URI" >"$TMP/nbd.map" || fail "$f: nbdinfo --map"
	vhd_extents "$f" "$size" >"$TMP/vhd.map" || fail "$f: vhd map --chain"
	cmp -s "$TMP/nbd.map" "$TMP/vhd.map" ||
		{ diff "$TMP/vhd.map" "$TMP/nbd.map" | head; fail "$f: block status differs from vhd map --chain"; }
	MAPLINES=$(grep -c " 0$" "$TMP/vhd.map")
	cp "$TMP/info" "$TMP/info.last"
	serve_stop
}

check_export "$TMP/c/l2.vhd" 25165824 differencing "3 layers"
CHAIN_EXTENTS=$MAPLINES
[ "$CHAIN_EXTENTS" -gt 3 ] || fail "the chain's map has only $CHAIN_EXTENTS data extents: not a real test"
grep -q "is_read_only: false" "$TMP/info.last" || fail "l2.vhd served read-only"
check_export "$TMP/c/l0.vhd" 25165824 dynamic "1 layer" --read-only
grep -q "is_read_only: true" "$TMP/info.last" || fail "--read-only export is writable"
check_export "$TMP/fixed.vhd" 8388608 fixed "1 layer"
pass "size, block sizes, description, flags and block status (= vhd map --chain) of a 3-level chain ($CHAIN_EXTENTS data extents), a read-only dynamic disk and a fixed disk"
