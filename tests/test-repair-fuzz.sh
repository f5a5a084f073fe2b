#!/bin/bash
# vhd repair on randomly damaged images (bytes of the footers, header, BAT,
# batmap and bitmaps changed, the file cut or extended): it never crashes or
# hangs; it repairs (exit 0), refuses (4) or calls it not a VHD (3); a
# refusal writes nothing; a repaired file opens and reads, and a second
# repair finds nothing left to do.  FUZZ_SEED=N reproduces a run (up to the
# random bytes), FUZZ_RUNS=N sets the count, FUZZ_KEEP=DIR keeps every
# damaged image.
. "$(dirname "$0")/functions.sh"
requires timeout dd truncate

seed0=${FUZZ_SEED:-$RANDOM}
RANDOM=$seed0
"$VHD" create "$TMP/base.vhd" 8M >/dev/null || fail "create"
rand_sectors 4096 | "$VHDIO" write "$TMP/base.vhd" $((2 << 20)) || fail "write"
random_writes "$TMP/base.vhd" 8 5 100 || fail "random writes"
"$VHD" snapshot "$TMP/base.vhd" "$TMP/child.vhd" >/dev/null || fail "snapshot"
rand_sectors 16 | "$VHDIO" write "$TMP/child.vhd" $((6 << 20)) || fail "child write"

# put_bytes FILE OFFSET HEX...: overwrite bytes in place.
put_bytes() {
	local f=$1 o=$2; shift 2
	printf "$(printf '\\x%s' "$@")" | dd of="$f" bs=1 seek="$o" conv=notrunc status=none
}
rnd() { R=$(( (RANDOM * 32768 + RANDOM) % $1 )); }   # sets R (no subshell: reproducible)
# mutate FILE: 1-4 random changes: a byte of the metadata (first 8 KiB), of
# the end sector or anywhere; a 32-bit field of the header/BAT set to an odd
# value; the file cut or extended with random bytes.
mutate() {
	local f=$1 k n o b
	for _ in $(seq $(( RANDOM % 4 + 1 ))); do
		n=$(stat -c %s "$f") k=$((RANDOM % 6))
		printf -v b %02x $((RANDOM % 256))
		[ "$n" -lt 8192 ] && [ $k -le 3 ] && k=5
		case $k in
		0) rnd 8192; put_bytes "$f" $R "$b" ;;
		1) rnd 512; put_bytes "$f" $((n - 512 + R)) "$b" ;;
		2) rnd "$n"; put_bytes "$f" $R ff ;;
		3) rnd 896; o=$((512 + R * 4))
		   case $((RANDOM % 4)) in
		   0) put_bytes "$f" $o ff ff ff ff ;; 1) put_bytes "$f" $o 00 00 00 00 ;;
		   2) put_bytes "$f" $o 7f ff ff ff ;; 3) put_bytes "$f" $o 00 00 00 02 ;;
		   esac ;;
		4) rnd "$n"; truncate -s $R "$f" ;;
		5) rnd 5000; head -c $((R + 1)) /dev/urandom >>"$f" ;;
		esac || return 1
	done
}
runs=${FUZZ_RUNS:-30}
declare -A seen=()

for i in $(seq 1 "$runs"); do
	seed=$((seed0 * 1000 + i))
	src=base; [ $((i % 3)) = 0 ] && src=child
	cp "$TMP/$src.vhd" "$TMP/w.vhd"
	mutate "$TMP/w.vhd" || fail "seed $seed: mutation failed"
	before=$(raw_sha "$TMP/w.vhd")
	[ -n "${FUZZ_KEEP:-}" ] && cp "$TMP/w.vhd" "$FUZZ_KEEP/damaged-$seed.vhd"
	timeout 20 "$VHD" repair --force "$TMP/w.vhd" >"$TMP/out" 2>&1
	rc=$?
	seen[$rc]=1
	case $rc in
	0)
		timeout 20 "$VHD" repair "$TMP/w.vhd" >"$TMP/again" 2>&1 ||
			{ cat "$TMP/out" "$TMP/again"; fail "seed $seed: second repair failed"; }
		grep -q ': nothing to repair$' "$TMP/again" ||
			{ cat "$TMP/out" "$TMP/again"; fail "seed $seed: second repair did more"; }
		"$VHD" info "$TMP/w.vhd" >/dev/null 2>"$TMP/err" ||
			{ cat "$TMP/out" "$TMP/err"; fail "seed $seed: repaired file does not open"; }
		timeout 20 "$VHDIO" cat "$TMP/w.vhd" >/dev/null 2>"$TMP/err" ||
			{ cat "$TMP/out" "$TMP/err"; fail "seed $seed: repaired file does not read"; } ;;
	3|4)
		[ "$(raw_sha "$TMP/w.vhd")" = "$before" ] || { cat "$TMP/out"; fail "seed $seed: exit $rc but the file changed"; }
		grep -q "nothing was written" "$TMP/out" || { cat "$TMP/out"; fail "seed $seed: exit $rc without a reason"; } ;;
	*)
		cat "$TMP/out"; fail "seed $seed: repair exited $rc (crash or hang?)" ;;
	esac
done
# coverage note, not a verdict: with random damage a short run may by chance
# only repair or only refuse (a failing assertion here was flaky)
[ -n "${seen[0]:-}" ] && [ -n "${seen[4]:-}" ] || echo "note: seed $seed0: $runs runs did not both repair and refuse"
pass "$runs damaged images (seed $seed0): no crash, refusals untouched, repairs idempotent and readable"
