#!/bin/sh
# run.sh - run the benchmarks (bench/bench-*.sh, or BENCH=name for one) and
# rebuild BENCHMARKS.md from their Markdown fragments ($B/bench/*.md, one
# "## " section each, NAME.md and NAME-*.md from bench-NAME.sh): the
# sections they have are replaced, the others kept as they were
# (bench/tools/splice-fragments.py).
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
	if [ "$QUICK" = 1 ]; then
		for frag in "$BENCH_OUT/$name.md" "$BENCH_OUT/$name"-*.md; do
			[ -f "$frag" ] || [ "$frag" = "$BENCH_OUT/$name.md" ] || continue
			has_figures "$frag" || rc=1
		done
	fi
done
if [ "$QUICK" = 1 ]; then
	echo "bench quick: $ran benchmarks ran$( [ $rc = 0 ] && echo ", every table filled") (BENCHMARKS.md not written)"
	exit $rc
fi
if [ ! -f BENCHMARKS.md ]; then
	{
		echo "# Benchmarks"
		echo
		echo "Written by \`make bench\` (bench/run.sh); every figure comes from the command shown with it,"
		echo "on the machine described, with its baseline measured in the same run."
		echo
	} > BENCHMARKS.md
fi
set -- "$B"/bench/*.md
[ -f "$1" ] || set --
python3 bench/tools/splice-fragments.py BENCHMARKS.md "$@" > "$B/bench/BENCHMARKS.new" &&
	mv "$B/bench/BENCHMARKS.new" BENCHMARKS.md || rc=1
echo "BENCHMARKS.md updated"
exit $rc
