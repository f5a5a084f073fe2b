#!/bin/bash
# bench-read.sh - sequential read of a 3-level chain against reading the
# same files raw, in the same run (issue 2: chain >= 80% of raw).
#
# Chain (bench/tools/mkread): base 1 GiB with every block written, mid with
# 30% of the blocks written whole, leaf with 1000 random writes of 4 KiB to
# 1 MiB.  Chain read: `vhd-io cat leaf.vhd > /dev/null` (vhd_pread of 4 MiB
# at a time) delivers the 1 GiB virtual disk.  Raw read:
# `rawread --chunk 4096 base.vhd mid.vhd leaf.vhd` reads every data extent
# of the three files, as `dd bs=4M` would but skipping holes, i.e. all the
# bytes stored, with the same 4 MiB buffer as vhd-io (warm, the copy from
# the page cache dominates and its speed depends on the buffer size).  Throughput = bytes delivered / wall time; cold runs
# (page cache dropped before each) and warm runs, interleaved.
# Writes $B/bench/read.md.  BENCH_QUICK=1: a 64 MiB chain.
. "$(dirname "$0")/functions.sh"
bench_init read

[ -x "$TOOLS/mkread" ] && [ -x "$TOOLS/rawread" ] || die "bench tools missing (make bench builds them)"
shape=() need_mib=3072
[ "$QUICK" = 1 ] && shape=(--size 64 --writes 50) need_mib=256
[ "$(free_mib "$WORK")" -gt "$need_mib" ] || die "needs $need_mib MiB free in $WORK"

rm -f "$WORK"/*.vhd
echo "generating the chain (mkread ${shape[*]})"
present=$("$TOOLS/mkread" "${shape[@]}" "$WORK") || die "mkread failed"
chain="$WORK/base.vhd $WORK/mid.vhd $WORK/leaf.vhd"
RAW="$TOOLS/rawread --chunk 4096"   # vhd-io cat reads 4 MiB at a time
# shellcheck disable=SC2086
raw_bytes=$($RAW $chain | sed -n 's/bytes=//p')
virtual=$(echo "$present" | sed -n 's/.*base=\([0-9]*\).*/\1/p')   # base is full
[ "$("$VHDIO" cat "$WORK/leaf.vhd" | wc -c)" = "$virtual" ] || die "chain read short"

for _ in $(seq "$RUNS"); do
	timed_cold chain-cold "$VHDIO" cat "$WORK/leaf.vhd"
	# shellcheck disable=SC2086
	timed_cold raw-cold $RAW $chain
done
timed warmup "$VHDIO" cat "$WORK/leaf.vhd"
for _ in $(seq "$RUNS"); do
	timed chain-warm "$VHDIO" cat "$WORK/leaf.vhd"
	# shellcheck disable=SC2086
	timed raw-warm $RAW $chain
done

row() {   # LABEL CHAIN-RUNS RAW-RUNS
	awk -v l="$1" -v v="$virtual" -v r="$raw_bytes" -v c="$(median "$2")" -v cpu="$(median "$2" 4)" \
	    -v t="$(median "$3")" -v tcpu="$(median "$3" 4)" 'BEGIN {
		mb = 1048576; cr = v / mb / c; rr = r / mb / t
		printf "| %s | %.3f | %.3f | %.0f | %.3f | %.3f | %.0f | **%.2f** | %.2f |\n",
		       l, c, cpu, cr, t, tcpu, rr, cr / rr, (v / cpu) / (r / tcpu) }'
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
	echo "$virtual bytes delivered.  Raw read, the baseline: \`build/bench/rawread --chunk 4096"
	echo "base.vhd mid.vhd leaf.vhd\`, the files' data extents in 4 MiB preads (\`dd bs=4M\` without"
	echo "the holes; the same buffer size as vhd-io), $raw_bytes bytes.  MiB/s = bytes delivered /"
	echo "wall time; ratio = chain MiB/s / raw MiB/s (target >= 0.80); the last column compares"
	echo "bytes per CPU second (user+sys), steadier than wall time on a loaded machine."
	echo
	echo "| cache | chain s | chain CPU s | chain MiB/s | raw s | raw CPU s | raw MiB/s | ratio | ratio of MiB per CPU s |"
	echo "|---|---|---|---|---|---|---|---|---|"
	echo "$rows"
	echo
	echo "Cold, the chain read waits for the disk; vhd_pread asks the kernel to read ahead every run"
	echo "of a request before reading them (posix_fadvise WILLNEED, lib/io.c), so the runs of the"
	echo "three files are fetched concurrently: without it the cold ratio was 0.70-0.75 here."
	echo "Warm, both sides are bound by copying from the page cache (~75% of the CPU in"
	echo "_copy_to_iter, perf); the chain makes ~2,600 preads (one per run: layer changes, bitmap"
	echo "runs) and ~2,200 posix_fadvise calls where the raw read makes ~1,500 preads (strace -c)."
	echo "Warm figures vary most with the machine's load."
} > "$OUT"
cat "$OUT"
