#!/bin/bash
# bench-coalesce.sh - coalesce and commit throughput against the raw copy
# limit measured in the same run on the same bytes.
#
# Shape (issue 3): a 4 GiB parent with 1 GiB of data in full blocks and a
# child with ~15,000 random writes of 4-64 KiB (every block touched, ~480
# MiB present).  Throughput = bytes present in the child / wall time (fsync
# included), page cache dropped before each run when we are root.  Baselines:
# dd (O_DIRECT, 2 MiB blocks, conv=fsync) and cp (+ sync) of a file of the
# same size.  Also: bytes written (kernel I/O accounting) / bytes present,
# peak resident memory, and `vhd commit` over a 5-level chain.
# Writes a Markdown fragment to $B/bench/coalesce.md; prints a summary.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}; case $B in /*) ;; *) B=$ROOT/$B ;; esac
VHD=$B/vhd MKCHAIN=$B/tests/mkchain RUNSTAT=$B/tests/runstat
RUNS=${BENCH_RUNS:-3}
DIR=${BENCH_DIR:-$ROOT/build/bench/coalesce-work}
OUT=$B/bench/coalesce.md
mkdir -p "$B/bench"
rm -rf "$DIR" && mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

drop_caches() { sync; [ "$(id -u)" = 0 ] && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; }
cache_note() { [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ] && echo "page cache dropped before each run" || echo "page cache NOT dropped (not root): warm figures"; }
# stat FIELD FILE: value of FIELD= in runstat's output
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# measure NAME CMD...: run (after dropping caches), append wall/rss/written
measure() {
	local name=$1; shift
	drop_caches
	"$RUNSTAT" "$@" 2>"$DIR/stat" >/dev/null || { cat "$DIR/stat"; echo "bench: $name failed" >&2; exit 1; }
	echo "$(field wall "$DIR/stat") $(field maxrss_kib "$DIR/stat") $(field written_bytes "$DIR/stat")" >> "$DIR/$name.runs"
}

# one_shape LEVELS WRITES: build the chain once, keep pristine copies
build_shape() {
	rm -rf "$DIR/proto" && mkdir -p "$DIR/proto"
	"$MKCHAIN" --size 4G --base-data 1G --levels "$1" --writes "$2" --touch-all "$DIR/proto" > "$DIR/present" ||
		{ echo "bench: mkchain failed" >&2; exit 1; }
}
restore() {   # a fresh copy of the chain (sparse)
	rm -rf "$DIR/w" && mkdir "$DIR/w"
	for f in "$DIR"/proto/*.vhd; do cp --sparse=always "$f" "$DIR/w/"; done
}

run_merge_bench() {   # NAME LEVELS WRITES CMD-ARGS...
	local name=$1 levels=$2 writes=$3; shift 3
	build_shape "$levels" "$writes"
	present=$(cat "$DIR/present")
	head -c "$present" /dev/urandom > "$DIR/raw.bin"
	rm -f "$DIR"/*.runs
	for _ in $(seq "$RUNS"); do
		restore
		measure "$name" "$VHD" "$@"
		measure dd dd if="$DIR/raw.bin" of="$DIR/raw.dd" bs=2M iflag=direct oflag=direct conv=fsync status=none
		rm -f "$DIR/raw.dd"
		measure cp sh -c "cp '$DIR/raw.bin' '$DIR/raw.cp' && sync '$DIR/raw.cp'"
		rm -f "$DIR/raw.cp"
	done
	t=$(cut -d' ' -f1 "$DIR/$name.runs" | median)
	rss=$(cut -d' ' -f2 "$DIR/$name.runs" | sort -n | tail -1)
	wr=$(cut -d' ' -f3 "$DIR/$name.runs" | median)
	td=$(cut -d' ' -f1 "$DIR/dd.runs" | median)
	tc=$(cut -d' ' -f1 "$DIR/cp.runs" | median)
	awk -v n="$name" -v p="$present" -v t="$t" -v td="$td" -v tc="$tc" -v wr="$wr" -v rss="$rss" 'BEGIN {
		mb = 1048576; best = td < tc ? td : tc
		printf "| %s | %.0f | %.2f | %.0f | %.0f | %.0f | %.2f | %.2f | %.3f | %.1f |\n",
		       n, p/mb, t, p/mb/t, p/mb/td, p/mb/tc, best/t, td/t, wr/p, rss/1024 }' >> "$DIR/table"
}

: > "$DIR/table"
[ -n "${BENCH_ONLY_COMMIT:-}" ] || run_merge_bench "coalesce (1 layer)" 1 13000 coalesce "$DIR/w/l1.vhd"
run_merge_bench "commit (5 layers)" 5 2600 commit --base "$DIR/w/l0.vhd" "$DIR/w/l5.vhd"

{
	echo "## Coalesce and commit throughput"
	echo
	echo "\`make bench\` (bench/bench-coalesce.sh), $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r),"
	echo "filesystem $(df -T "$DIR" | awk 'NR==2 {print $2}'), $(cache_note); median of $RUNS runs."
	echo "Shape: 4 GiB parent with 1 GiB in full blocks; above it ~15,000 random writes of 4-64 KiB"
	echo "touching every block (for commit: spread over 5 layers).  Throughput = bytes present above"
	echo "the base / wall time, fsync included.  Baselines copy the same number of bytes in the same run:"
	echo "dd = \`dd bs=2M iflag=direct oflag=direct conv=fsync\`, cp = \`cp && sync FILE\`."
	echo
	echo "| operation | MiB present | seconds | MiB/s | dd MiB/s | cp MiB/s | vs best baseline | vs dd | bytes written / present | peak RSS MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	cat "$DIR/table"
} > "$OUT"
cat "$OUT"
