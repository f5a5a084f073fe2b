#!/bin/bash
# bench-read.sh - sequential read of a 3-level chain against reading the
# same files raw, in the same run (issue 2: chain >= 80% of raw).
#
# Chain (bench/tools/mkread): base 1 GiB with every block written, mid with
# 30% of the blocks written whole, leaf with 1000 random writes of 4 KiB to
# 1 MiB.  Chain read: `vhd-io cat leaf.vhd > /dev/null` (vhd_pread of 4 MiB
# at a time) delivers the 1 GiB virtual disk.  Raw read:
# `rawread base.vhd mid.vhd leaf.vhd` reads every data extent of the three
# files with 2 MiB preads, as `dd bs=2M` would but skipping holes, i.e. all
# the bytes stored.  Throughput = bytes delivered / wall time; cold runs
# (page cache dropped before each) and warm runs, interleaved.
# Writes $B/bench/read.md.
. "$(dirname "$0")/functions.sh"
bench_init read

[ -x "$TOOLS/mkread" ] && [ -x "$TOOLS/rawread" ] || die "bench tools missing (make bench builds them)"
[ "$(free_mib "$WORK")" -gt 3072 ] || die "needs 3 GiB free in $WORK"

rm -f "$WORK"/*.vhd
echo "generating the chain (mkread)"
present=$("$TOOLS/mkread" "$WORK") || die "mkread failed"
chain="$WORK/base.vhd $WORK/mid.vhd $WORK/leaf.vhd"
# shellcheck disable=SC2086
raw_bytes=$("$TOOLS/rawread" $chain | sed -n 's/bytes=//p')
virtual=$(echo "$present" | sed -n 's/.*base=\([0-9]*\).*/\1/p')   # base is full
[ "$("$VHDIO" cat "$WORK/leaf.vhd" | wc -c)" = "$virtual" ] || die "chain read short"

for _ in $(seq "$RUNS"); do
	timed_cold chain-cold "$VHDIO" cat "$WORK/leaf.vhd"
	# shellcheck disable=SC2086
	timed_cold raw-cold "$TOOLS/rawread" $chain
done
timed warmup "$VHDIO" cat "$WORK/leaf.vhd"
for _ in $(seq "$RUNS"); do
	timed chain-warm "$VHDIO" cat "$WORK/leaf.vhd"
	# shellcheck disable=SC2086
	timed raw-warm "$TOOLS/rawread" $chain
done

row() {   # LABEL CHAIN-RUNS RAW-RUNS
	awk -v l="$1" -v v="$virtual" -v r="$raw_bytes" -v c="$(median "$2")" -v cpu="$(median "$2" 4)" \
	    -v t="$(median "$3")" 'BEGIN {
		mb = 1048576; cr = v / mb / c; rr = r / mb / t
		printf "| %s | %.3f | %.3f | %.0f | %.3f | %.0f | **%.2f** |\n", l, c, cpu, cr, t, rr, cr / rr }'
}
rows=$(row cold chain-cold raw-cold; row warm chain-warm raw-warm)
echo "$rows"
{
	echo "## Sequential read of a 3-level chain"
	echo
	echo "\`make bench\` or \`BENCH=read sh bench/run.sh\` (bench/bench-read.sh),"
	echo "$(machine); $(cache_note); median of $RUNS runs, chain and raw runs interleaved."
	echo
	echo "Chain (\`build/bench/mkread DIR\`; bytes present per file: $present): base.vhd 1 GiB with"
	echo "every block written, mid.vhd with 30% of the blocks written whole, leaf.vhd with 1000"
	echo "random writes of 4 KiB to 1 MiB at 4 KiB offsets."
	echo
	echo "Chain read: \`build/tests/vhd-io cat leaf.vhd > /dev/null\` (vhd_pread, 4 MiB per call),"
	echo "$virtual bytes delivered.  Raw read, the baseline: \`build/bench/rawread base.vhd mid.vhd"
	echo "leaf.vhd\`, the files' data extents in 2 MiB preads (\`dd bs=2M\` without the holes),"
	echo "$raw_bytes bytes.  MiB/s = bytes delivered / wall time; ratio = chain MiB/s / raw MiB/s"
	echo "(target >= 0.80)."
	echo
	echo "| cache | chain s | chain CPU s | chain MiB/s | raw s | raw MiB/s | ratio |"
	echo "|---|---|---|---|---|---|---|"
	echo "$rows"
} > "$OUT"
cat "$OUT"
