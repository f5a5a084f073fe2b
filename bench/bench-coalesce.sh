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
# Writes a Markdown fragment to $B/bench/coalesce.md (BENCH_OUT overrides
# the directory); prints a summary.  BENCH_QUICK=1 (bench/run.sh): a 64 MiB
# parent with 16 MiB of data and 200 writes above it.
. "$(dirname "$0")/functions.sh"
bench_init coalesce
DIR=$WORK MKCHAIN=$B/tests/mkchain RUNSTAT=$B/tests/runstat
rm -rf "${DIR:?}"/*
SIZE=4G BASE_DATA=1G WRITES=13000 COMMIT_WRITES=2600
[ "$QUICK" = 1 ] && SIZE=64M BASE_DATA=16M WRITES=200 COMMIT_WRITES=40

# stat FIELD FILE: value of FIELD= in runstat's output
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }

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
	"$MKCHAIN" --size "$SIZE" --base-data "$BASE_DATA" --levels "$1" --writes "$2" --touch-all "$DIR/proto" > "$DIR/present" ||
		{ echo "bench: mkchain failed" >&2; exit 1; }
}
restore() {   # a fresh copy of the chain (sparse)
	rm -rf "$DIR/w" && mkdir "$DIR/w"
	for f in "$DIR"/proto/*.vhd; do cp --sparse=always "$f" "$DIR/w/"; done
}

# replay_pattern LEVELS: the same reads and writes as the merge just made
# (bench/tools/merge-iolog.py, from the merged base and the unchanged
# layers), replayed by fio on a fresh copy with the base grown to the
# merged size: the limit of this I/O pattern on this disk.
replay_pattern() {
	local layers=() l
	for l in $(seq "$1" -1 1); do layers+=("$DIR/w/l$l.vhd"); done
	python3 "$ROOT/bench/tools/merge-iolog.py" "$DIR/w/l0.vhd" "${layers[@]}" > "$DIR/iolog" ||
		{ echo "bench: merge-iolog failed" >&2; exit 1; }
	echo "$(grep -c ' read ' "$DIR/iolog") $(grep -c ' write ' "$DIR/iolog")" > "$DIR/iocount"
	local size; size=$(stat -c %s "$DIR/w/l0.vhd")
	restore
	truncate -s "$size" "$DIR/w/l0.vhd"
	measure pattern fio --name=pattern --read_iolog="$DIR/iolog" --ioengine=io_uring --iodepth=32 \
		--replay_no_stall=1 --end_fsync=1 --output=/dev/null
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
		replay_pattern "$levels"
		measure dd dd if="$DIR/raw.bin" of="$DIR/raw.dd" bs=2M iflag=direct oflag=direct conv=fsync status=none
		rm -f "$DIR/raw.dd"
		measure cp sh -c "cp '$DIR/raw.bin' '$DIR/raw.cp' && sync '$DIR/raw.cp'"
		rm -f "$DIR/raw.cp"
	done
	t=$(median "$name")   # (columns of the .runs: wall, rss, written)
	rss=$(cut -d' ' -f2 "$DIR/$name.runs" | sort -n | tail -1)
	wr=$(median "$name" 3)
	td=$(median dd) tc=$(median cp) tp=$(median pattern)
	awk -v n="$name" -v p="$present" -v t="$t" -v td="$td" -v tc="$tc" -v tp="$tp" -v wr="$wr" -v rss="$rss" 'BEGIN {
		mb = 1048576; best = td < tc ? td : tc
		printf "| %s | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.3f | %.1f |\n",
		       n, p/mb, t, p/mb/t, p/mb/td, p/mb/tc, p/mb/tp, best/t, td/t, tp/t, wr/p, rss/1024 }' >> "$DIR/table"
	read -r nr nw < "$DIR/iocount"
	echo "- $name: $nr reads and $nw writes (runs of sectors, from the iolog), where dd makes $(( (present + 2097151) / 2097152 )) reads and as many writes of 2 MiB." >> "$DIR/notes"
}

: > "$DIR/table"; : > "$DIR/notes"
[ -n "${BENCH_ONLY_COMMIT:-}" ] || run_merge_bench "coalesce (1 layer)" 1 "$WRITES" coalesce "$DIR/w/l1.vhd"
run_merge_bench "commit (5 layers)" 5 "$COMMIT_WRITES" commit --base "$DIR/w/l0.vhd" "$DIR/w/l5.vhd"

{
	echo "## Coalesce and commit throughput"
	echo
	echo "\`make bench\` (bench/bench-coalesce.sh), $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r),"
	echo "filesystem $(df -T "$DIR" | awk 'NR==2 {print $2}'), load average $(cut -d" " -f1-3 /proc/loadavg) at the end, $(cache_note); median of $RUNS runs."
	echo "Shape: 4 GiB parent with 1 GiB in full blocks; above it ~15,000 random writes of 4-64 KiB"
	echo "touching every block (for commit: spread over 5 layers).  Throughput = bytes present above"
	echo "the base / wall time, fsync included.  Baselines copy the same number of bytes in the same run:"
	echo "dd = \`dd bs=2M iflag=direct oflag=direct conv=fsync\`, cp = \`cp && sync FILE\`."
	echo
	echo "pattern = the merge's own reads and writes (one per run of sectors; bench/tools/merge-iolog.py)"
	echo "replayed by \`fio --read_iolog --ioengine=io_uring --iodepth=32 --end_fsync=1\` on a fresh copy:"
	echo "the same I/O with no computation, what this shape costs on this disk (vhdkit can beat it: it"
	echo "reads runs a short hole apart with one request, and starts writeback as each block is done)."
	echo
	echo "| operation | MiB present | seconds | MiB/s | dd MiB/s | cp MiB/s | pattern MiB/s | vs best of dd, cp | vs dd | vs pattern | bytes written / present | peak RSS MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	cat "$DIR/table"
	echo
	echo "I/O the shape needs:"
	echo
	cat "$DIR/notes"
	echo
	echo "A merge must read each run where the layer holds it and write it at its place in the base"
	echo "block; new base blocks keep their holes (bytes written stay ~1.0x the bytes present). The"
	echo "\"vs pattern\" column compares vhdkit with fio replaying exactly those I/Os and doing nothing"
	echo "else; \"vs dd\" and \"vs best\" compare with copying the same bytes as one sequential file,"
	echo "which this shape cannot match where the disk serves scattered I/O slower than sequential I/O."
} > "$OUT"
cat "$OUT"
