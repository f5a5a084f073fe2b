#!/bin/bash
# `make bench` in its quick mode (BENCH_QUICK=1: every benchmark once on
# small data): the target runs, every benchmark of bench/ runs and fills its
# table with figures (bench/run.sh checks each cell), and neither
# BENCHMARKS.md nor the fragments it is made from change.
. "$(dirname "$0")/functions.sh"
cd "$ROOT" || fail "cd $ROOT"
published() { cat BENCHMARKS.md "$B"/bench/*.md 2>/dev/null | sha256sum; }
before=$(published)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL BENCH_QUICK=1 make -s B="$B" bench >"$TMP/out" 2>&1 ||
	{ tail -30 "$TMP/out"; fail "make bench (BENCH_QUICK=1) failed"; }
n=0
for f in bench/bench-*.sh; do
	name=$(basename "$f" .sh); name=${name#bench-}
	grep -qx "== bench $name" "$TMP/out" || fail "benchmark $name did not run"
	rows=$(grep -c '^| [^-]' "$B/bench-quick/$name.md") || fail "benchmark $name: no table in $B/bench-quick/$name.md"
	echo "bench $name: $rows table lines"
	n=$((n + 1))
done
grep -qx "bench quick: $n benchmarks ran, every table filled (BENCHMARKS.md not written)" "$TMP/out" ||
	{ tail "$TMP/out"; fail "bench/run.sh did not find every table filled"; }
[ "$(published)" = "$before" ] || fail "BENCHMARKS.md or its fragments changed"
pass "make bench (quick): $n benchmarks ran on small data, every table filled, BENCHMARKS.md untouched"
