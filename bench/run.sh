#!/bin/sh
# run.sh - run the benchmarks (bench/bench-*.sh, or BENCH=name for one) and
# rebuild BENCHMARKS.md from their Markdown fragments ($B/bench/*.md; the
# fragments of benchmarks not run this time are kept).
B=${B:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
mkdir -p "$B/bench"
rc=0
for f in bench/bench-*.sh; do
	name=$(basename "$f" .sh); name=${name#bench-}
	[ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
	echo "== bench $name"
	B=$B bash "$f" || { echo "bench $name failed"; rc=1; }
done
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (bench/run.sh); every figure comes from the command shown with it,"
	echo "on the machine described, with its baseline measured in the same run."
	echo
	for frag in "$B"/bench/*.md; do
		[ -f "$frag" ] && cat "$frag" && echo
	done
} > BENCHMARKS.md
echo "BENCHMARKS.md updated"
exit $rc
