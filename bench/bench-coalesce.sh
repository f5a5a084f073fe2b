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
#
# Sector-granular shape (issue 13): a full 1 GiB parent and 4,000 writes of
# 4-64 KiB plus 0-7 sectors at any sector (guests with 512-byte sectors),
# beside the same writes at 4 KiB granularity; baselines: dd of the same
# bytes, the fio replay of the merge's own I/O, and the replay of the I/O a
# merge through 4 KiB pages must make (merge-iolog.py --pages, O_DIRECT).
# Writes coalesce-sector.md beside coalesce.md.  BENCH_COALESCE=merge|sector
# runs one of the two parts (default both).  BENCH_QUICK=1: a 64 MiB parent.
. "$(dirname "$0")/functions.sh"
bench_init coalesce
DIR=$WORK MKCHAIN=$B/tests/mkchain RUNSTAT=$B/tests/runstat
rm -rf "${DIR:?}"/*
SIZE=4G BASE_DATA=1G WRITES=13000 COMMIT_WRITES=2600
SECTOR_SHAPE=(--size 1G --base-data 1G --writes 4000 --seed 13)
[ "$QUICK" = 1 ] && SIZE=64M BASE_DATA=16M WRITES=200 COMMIT_WRITES=40 \
	SECTOR_SHAPE=(--size 64M --base-data 64M --writes 250 --seed 13)
OUT_SECTOR=$FRAGMENTS/coalesce-sector.md
SHAPES=${BENCH_COALESCE:-all}

# stat FIELD FILE: value of FIELD= in runstat's output
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }

# measure NAME CMD...: run (after dropping caches), append wall/rss/written
measure() {
	local name=$1; shift
	drop_caches
	"$RUNSTAT" "$@" 2>"$DIR/stat" >/dev/null || { cat "$DIR/stat"; echo "bench: $name failed" >&2; exit 1; }
	echo "$(field wall "$DIR/stat") $(field maxrss_kib "$DIR/stat") $(field written_bytes "$DIR/stat")" >> "$DIR/$name.runs"
}

# build_shape PROTO LEVELS MKCHAIN-ARGS...: build the chain once into
# $DIR/PROTO (pristine copies), its bytes present above the base in
# $DIR/PROTO.present
build_shape() {
	local proto=$DIR/$1 levels=$2; shift 2
	rm -rf "$proto" && mkdir -p "$proto"
	"$MKCHAIN" --levels "$levels" "$@" "$proto" > "$proto.present" ||
		{ echo "bench: mkchain failed" >&2; exit 1; }
}
restore() {   # [PROTO]: a fresh copy of the chain (sparse)
	rm -rf "$DIR/w" && mkdir "$DIR/w"
	for f in "$DIR/${1:-proto}"/*.vhd; do cp --sparse=always "$f" "$DIR/w/"; done
}

# make_iolog LEVELS NAME [--pages]: the reads and writes the merge just
# made (bench/tools/merge-iolog.py, from the merged base and the unchanged
# layers) into $DIR/NAME.iolog, their counts into $DIR/NAME.iocount
make_iolog() {
	local layers=() l
	for l in $(seq "$1" -1 1); do layers+=("$DIR/w/l$l.vhd"); done
	python3 "$ROOT/bench/tools/merge-iolog.py" ${3:-} "$DIR/w/l0.vhd" "${layers[@]}" > "$DIR/$2.iolog" ||
		{ echo "bench: merge-iolog failed" >&2; exit 1; }
	echo "$(grep -c ' read ' "$DIR/$2.iolog") $(grep -c ' write ' "$DIR/$2.iolog")" > "$DIR/$2.iocount"
}
# replay NAME SIZE [PROTO] [FIO-ARGS...]: replay $DIR/NAME.iolog with fio on
# a fresh copy with the base grown to SIZE (the merged base's): the limit
# of this I/O pattern on this disk
replay() {
	local name=$1 size=$2 proto=${3:-proto}; shift 3
	restore "$proto"
	truncate -s "$size" "$DIR/w/l0.vhd"
	measure "$name" fio --name=pattern --read_iolog="$DIR/$name.iolog" --ioengine=io_uring --iodepth=32 \
		--replay_no_stall=1 --end_fsync=1 --output=/dev/null "$@"
}
replay_pattern() {   # LEVELS
	make_iolog "$1" pattern
	replay pattern "$(stat -c %s "$DIR/w/l0.vhd")" proto
}

run_merge_bench() {   # NAME LEVELS WRITES CMD-ARGS...
	local name=$1 levels=$2 writes=$3; shift 3
	build_shape proto "$levels" --size "$SIZE" --base-data "$BASE_DATA" --writes "$writes" --touch-all
	present=$(cat "$DIR/proto.present")
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
	read -r nr nw < "$DIR/pattern.iocount"
	echo "- $name: $nr reads and $nw writes (runs of sectors, from the iolog), where dd makes $(( (present + 2097151) / 2097152 )) reads and as many writes of 2 MiB." >> "$DIR/notes"
}

# sector_round ALIGN: one coalesce of the shape written at ALIGN, then its
# baselines: the replays of its I/O and dd of the same bytes
sector_round() {
	local a=$1 p size; p=$(cat "$DIR/s$a.present")
	restore "s$a"
	measure "merge$a" "$VHD" coalesce "$DIR/w/l1.vhd"
	make_iolog 1 "replay$a"
	make_iolog 1 "pages$a" --pages
	size=$(stat -c %s "$DIR/w/l0.vhd")
	replay "replay$a" "$size" "s$a"
	replay "pages$a" "$size" "s$a" --direct=1
	head -c "$p" "$DIR/raw.bin" > "$DIR/raw$a.bin"
	measure "dd$a" dd if="$DIR/raw$a.bin" of="$DIR/raw.dd" bs=2M iflag=direct oflag=direct conv=fsync status=none
	rm -f "$DIR/raw.dd" "$DIR/raw$a.bin"
}

sector_row() {   # ALIGN LABEL
	local a=$1 p pw nr nw pr; p=$(cat "$DIR/s$a.present")
	pw=$(awk '$2 == "write" {s += $4} END {print s}' "$DIR/pages$a.iolog")
	read -r nr nw < "$DIR/replay$a.iocount"
	read -r pr _ < "$DIR/pages$a.iocount"
	awk -v l="$2" -v p="$p" -v pw="$pw" -v t="$(median "merge$a")" -v td="$(median "dd$a")" \
	    -v tr="$(median "replay$a")" -v tp="$(median "pages$a")" -v wr="$(median "merge$a" 3)" \
	    -v nr="$nr" -v nw="$nw" -v pr="$pr" 'BEGIN {
		printf "| %s | %.0f | %d | %d | %d | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | %.2f | %.3f | %.3f |\n",
		       l, p/1048576, nr, nw, pr - nr, t, td, tr, tp, t/td, tr/t, tp/t, wr/p, pw/p }' >> "$DIR/sector-table"
}

run_sector_bench() {
	rm -f "$DIR"/*.runs
	build_shape s512 1 "${SECTOR_SHAPE[@]}" --align 512
	build_shape s4096 1 "${SECTOR_SHAPE[@]}" --align 4K
	head -c "$(sort -n "$DIR/s512.present" "$DIR/s4096.present" | tail -1)" /dev/urandom > "$DIR/raw.bin"
	for _ in $(seq "$RUNS"); do
		sector_round 512
		sector_round 4096
	done
	rm -f "$DIR/raw.bin"
	: > "$DIR/sector-table"
	sector_row 512 "512-byte sectors"
	sector_row 4096 "4 KiB pages"
	{
		echo "## Coalesce of sector-granular writes"
		echo
		echo "\`BENCH=coalesce BENCH_COALESCE=sector sh bench/run.sh\` (bench/bench-coalesce.sh), $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r),"
		echo "filesystem $(df -T "$DIR" | awk 'NR==2 {print $2}'), load average $(cut -d" " -f1-3 /proc/loadavg) at the end, $(cache_note); median of $RUNS runs"
		echo "(each run times the coalesce, then its baselines, one after the other)."
		echo "Shape: \`mkchain ${SECTOR_SHAPE[*]} --align 512|4K\`: a parent full of data; above it random"
		echo "writes of 4-64 KiB, either sector-granular (plus 0-7 sectors, at any sector: guests with 512-byte"
		echo "sectors) or whole 4 KiB pages at page offsets.  Baselines on the same bytes in the same run:"
		echo "dd = \`dd bs=2M iflag=direct oflag=direct conv=fsync\` of a file of the bytes present;"
		echo "replay = the merge's own reads and writes (merge-iolog.py) by \`fio --read_iolog --ioengine=io_uring"
		echo "--iodepth=32 --end_fsync=1\`; pages = the I/O a merge through 4 KiB pages has to make (each"
		echo "page cut by a write's edge read from the base first, writes rounded out to whole pages:"
		echo "\`merge-iolog.py --pages\`), replayed the same way with \`--direct=1\`: that I/O without a page cache."
		echo
		echo "| writes | MiB present | reads | writes | + page reads | coalesce s | dd s | replay s | pages s | coalesce / dd | vs replay | vs pages | bytes written / present | page-rounded minimum / present |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		cat "$DIR/sector-table"
		echo
		echo "Reads and writes: runs of sectors the merge moves; + page reads: the base pages their edges cut."
		echo "\"vs replay\" and \"vs pages\" are the replay's time / the coalesce's (above 1: the coalesce is faster)."
		echo "Bytes written: the kernel's write accounting of the coalesce.  Through the page cache of a"
		echo "filesystem with 4 KiB blocks a write reaches the disk as whole pages, so a sector-granular"
		echo "shape cannot write less than its page-rounded minimum (last column)."
	} > "$OUT_SECTOR"
	cat "$OUT_SECTOR"
}

: > "$DIR/table"; : > "$DIR/notes"
[ "$SHAPES" = merge ] || run_sector_bench
[ "$SHAPES" = sector ] && exit 0
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
