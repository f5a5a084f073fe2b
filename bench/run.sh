#!/bin/sh
# run.sh - run the benchmarks (bench/bench-*.sh, or BENCH=name for one) and
# rebuild BENCHMARKS.md from their Markdown fragments ($B/bench/*.md; the
# fragments of benchmarks not run this time are kept).
# BENCH_QUICK=1 (`make check` runs it: tests/test-bench-quick.sh): every
# benchmark once on small data, its fragment in $B/bench-quick checked to
# hold its table with a figure in every cell; BENCHMARKS.md is not written.
B=${B:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
mkdir -p "$B/bench"
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	BENCH_OUT=$B/bench-quick BENCH_RUNS=1
	export BENCH_QUICK BENCH_OUT BENCH_RUNS
	rm -rf "$BENCH_OUT" && mkdir -p "$BENCH_OUT"
fi

# has_figures FRAGMENT: its tables have rows, every cell but the label a number
has_figures() {
	awk 'sep && /^\|/ {
		rows++; n = split($0, cell, "|")
		for (i = 3; i < n; i++) {
			v = cell[i]; gsub(/^ +| +$|\*/, "", v)
			if (v !~ /^[0-9]+(\.[0-9]+)?x?$/) bad = bad " \"" v "\""
		}
	}
	/^\|---/ {sep = 1} /^$/ {sep = 0}
	END {
		if (!rows) print FILENAME ": no table row"
		else if (bad != "") print FILENAME ": cells that are not figures:" bad
		exit !rows || bad != ""
	}' "$1"
}

rc=0 ran=0
for f in bench/bench-*.sh; do
	name=$(basename "$f" .sh); name=${name#bench-}
	[ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
	echo "== bench $name"
	B=$B bash "$f" || { echo "bench $name failed"; rc=1; continue; }
	ran=$((ran + 1))
	[ "$QUICK" = 1 ] && { has_figures "$BENCH_OUT/$name.md" || rc=1; }
done
if [ "$QUICK" = 1 ]; then
	echo "bench quick: $ran benchmarks ran$( [ $rc = 0 ] && echo ", every table filled") (BENCHMARKS.md not written)"
	exit $rc
fi
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
