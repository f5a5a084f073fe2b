#!/bin/bash
# bench-pace.sh - does `vhd gc run --rate-limit auto` yield the disk to the
# VMs (issue 13, "Yield to the VMs")?
#
# A VM-like workload: fio, 4 KiB random reads and writes (50/50), queue
# depth 8, libaio, O_DIRECT where the filesystem allows, on a 1 GiB file of
# the filesystem the SR is on.  Its IOPS and p99 latencies alone, beside a
# GC merge without a limit, and beside a GC with --rate-limit auto; the GC
# was started after fio (the VMs run first: the controller learns the quiet
# latency of their reads) and is still merging when fio ends (checked).
# Then the GC's throughput without the workload: unthrottled against auto.
# The merge: a leaf-coalesce of ~2.4 GiB of data (256 KiB-1 MiB writes in
# every block of a 4 GiB disk).  Goals: with auto, the workload keeps
# >= 90% of its IOPS alone; the GC keeps >= 80% of its unthrottled speed
# when the workload is idle.  BENCH_QUICK=1: a 256 MiB disk, fio for 3 s.
# Writes $B/bench/pace.md.
. "$(dirname "$0")/functions.sh"
bench_init pace
DIR=$WORK PY=/usr/bin/python3
command -v fio >/dev/null || die "fio not found (make deps)"
SHAPE=(--size 4G --base-data 64M --writes 3000 --min 256K --max 1M --touch-all)
VM_SIZE=1G FIO_SECS=15 RAMP=2
[ "$QUICK" = 1 ] && SHAPE=(--size 256M --base-data 16M --writes 150 --min 64K --max 512K --touch-all) \
	VM_SIZE=64M FIO_SECS=2 RAMP=1
rm -rf "${DIR:?}"/*
mkdir -p "$DIR/proto"
"$B/tests/mkchain" "${SHAPE[@]}" "$DIR/proto" >"$DIR/present" || die "mkchain failed"
present=$(cat "$DIR/present")
# O_DIRECT where the filesystem takes it (not tmpfs)
DIRECT=1
dd if=/dev/zero of="$DIR/probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null || DIRECT=0
rm -f "$DIR/probe"
fio --name=fill --filename="$DIR/vm.img" --size="$VM_SIZE" --rw=write --bs=1M --direct="$DIRECT" \
	--output=/dev/null >/dev/null || die "fio fill failed"

restore() {
	rm -rf "$DIR/sr" && mkdir "$DIR/sr"
	cp --sparse=always "$DIR"/proto/*.vhd "$DIR/sr/" && sync
}
status() {   # one field (python expression on j) of the running GC's status
	"$PY" - "$DIR/sr/.vhd-gc.sock" "$1" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(b'{"cmd":"status"}\n'); j = json.loads(s.makefile().readline())
print(eval(sys.argv[2]))
EOF
}
# workload NAME: fio for FIO_SECS (after RAMP s not counted) into NAME.json
workload() {
	fio --name=vm --filename="$DIR/vm.img" --size="$VM_SIZE" --rw=randrw --bs=4k --iodepth=8 \
		--ioengine=libaio --direct="$DIRECT" --time_based --runtime="$FIO_SECS" --ramp_time="$RAMP" \
		--output-format=json --output="$DIR/$1.json" >/dev/null || die "fio $1 failed"
}
# "IOPS p99-read-ms p99-write-ms" of a fio result
fio_figures() {
	"$PY" - "$DIR/$1.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
p99 = lambda d: d["clat_ns"]["percentile"]["99.000000"] / 1e6
print("%.0f %.3f %.3f" % (j["read"]["iops"] + j["write"]["iops"], p99(j["read"]), p99(j["write"])))
EOF
}
gc_start() {   # ARGS...: a GC on the SR (restored first)
	"$VHD" gc run --quiet-period 1 --interval 0.2 "$@" "$DIR/sr" 2>"$DIR/gc.log" &
	GC_PID=$!
	for _ in $(seq 100); do [ -S "$DIR/sr/.vhd-gc.sock" ] && break; sleep 0.1; done
}
gc_stop() { kill "$GC_PID" 2>/dev/null; wait "$GC_PID" 2>/dev/null; }
trap 'gc_stop; [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT

# beside NAME GC-ARGS...: fio with a GC merging beside it; appends
# "IOPS p99r p99w GC-MiB/s-during-fio decreases" to NAME
beside() {
	local name=$1; shift
	restore
	workload "$name" &
	local fio_pid=$!
	sleep 0.5
	gc_start "$@"
	sleep "$RAMP"
	local b0; b0=$(status 'j["totals"]["bytes_coalesced"]') || die "no GC status"
	local t0; t0=$(date +%s.%N)
	wait "$fio_pid" || die "fio $name failed"
	local b1 t1 busy dec
	b1=$(status 'j["totals"]["bytes_coalesced"]') t1=$(date +%s.%N)
	busy=$(status 'j["operation"] is not None')
	dec=$(status '(j["pace"] or {}).get("decreases", 0)')
	gc_stop
	[ "$busy" = True ] || echo "- $name: the merge ended before fio did; the workload had the disk to itself for the rest" >> "$DIR/notes"
	echo "$(fio_figures "$name") $(awk -v b="$((b1 - b0))" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.1f", b / 1048576 / (t1 - t0)}') $dec" >> "$DIR/$name.runs"
}
# alone NAME GC-ARGS...: the GC's merge with no workload; MiB/s to NAME
alone() {
	local name=$1; shift
	restore
	gc_start --once "$@"
	wait "$GC_PID"
	local rate
	rate=$(sed -n 's/.*end leaf-coalesce .*: ok, \([0-9]*\) bytes in \([0-9.]*\) s.*/\1 \2/p' "$DIR/gc.log" |
		awk '{printf "%.1f", $1 / 1048576 / $2}')
	[ -n "$rate" ] || { cat "$DIR/gc.log"; die "$name: no merge in the GC's log"; }
	echo "$rate" >> "$DIR/$name.runs"
}

: > "$DIR/notes"
# the cases interleaved, RUNS rounds: the machine's load drifts
for _ in $(seq "$RUNS"); do
	workload alone
	fio_figures alone >> "$DIR/alone.runs"
	beside unlimited
	beside auto --rate-limit auto
	alone gc-unlimited
	alone gc-auto --rate-limit auto
done
# figures NAME: the median of each column of NAME.runs
figures() {
	local n c out=
	n=$(head -1 "$DIR/$1.runs" | wc -w)
	for c in $(seq "$n"); do   # (not median: its column 4 is user+sys)
		out="$out $(awk -v c="$c" '{print $c}' "$DIR/$1.runs" | sort -g |
			awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
	done
	echo $out
}
read -r iops0 r0 w0 <<<"$(figures alone)"

{
	echo "## Yielding the disk to the VMs: --rate-limit auto"
	echo
	echo "\`make bench BENCH=pace\` (bench/bench-pace.sh), $(machine)."
	echo "The machine is shared with other jobs (their I/O is part of the \"foreground\"), so every"
	echo "figure is from this run, with its own baselines: the median of $RUNS rounds, each running every"
	echo "case in turn (each column's median taken on its own)."
	echo "Workload: \`fio --rw=randrw --bs=4k --iodepth=8 --ioengine=libaio --direct=$DIRECT\` on a"
	echo "$VM_SIZE file for ${FIO_SECS} s (the first ${RAMP} s not counted), the GC started after it on an SR on"
	echo "the same filesystem; the GC's merge: a leaf-coalesce of $((present / 1048576)) MiB."
	echo
	echo "| workload | IOPS | p99 read ms | p99 write ms | IOPS vs alone | GC MiB/s meanwhile | auto slow-downs |"
	echo "|---|---|---|---|---|---|---|"
	echo "| alone | $iops0 | $r0 | $w0 | 1.00 | 0 | 0 |"
	for c in unlimited auto; do
		read -r iops r w gc dec <<<"$(figures "$c")"
		label="beside \`vhd gc run\`"; [ "$c" = auto ] && label="beside \`vhd gc run --rate-limit auto\`"
		awk -v l="$label" -v i="$iops" -v i0="$iops0" -v r="$r" -v w="$w" -v g="$gc" -v d="$dec" \
			'BEGIN {printf "| %s | %d | %s | %s | %.2f | %s | %d |\n", l, i, r, w, i / i0, g, d}'
	done
	echo
	u=$(figures gc-unlimited) a=$(figures gc-auto)
	echo "| GC merge, workload idle | MiB/s | vs unthrottled |"
	echo "|---|---|---|"
	echo "| \`vhd gc run --once\` | $u | 1.00 |"
	awk -v u="$u" -v a="$a" 'BEGIN {printf "| `vhd gc run --once --rate-limit auto` | %s | %.2f |\n", a, a / u}'
	echo
	cat "$DIR/notes"
	echo "Goals (issue 13): IOPS vs alone >= 0.90 beside auto; auto >= 0.80 of unthrottled when idle."
} > "$OUT"
cat "$OUT"
