#!/bin/bash
# bench-serve.sh - fio over NBD (Unix socket, fio's nbd engine): `vhd serve`
# on a dynamic VHD against nbdkit's file plugin on a raw file of the same
# content, and qemu-nbd -f vpc on the same VHD, in the same run: 4 KiB
# random write and read at queue depth 16, 1 MiB sequential write and read.
# The image: every block allocated (vhd convert of random data), so the
# figures are the plugin's own cost, not block allocation.
# Writes $B/bench/serve.md.  BENCH_QUICK=1: 64 MiB, 1 s per run.
. "$(dirname "$0")/functions.sh"
bench_init serve
WORK=$(realpath "$WORK")   # qemu-nbd wants an absolute socket path
export PATH=/usr/bin:$PATH
for c in fio nbdkit qemu-nbd; do command -v $c >/dev/null || die "$c missing (make deps)"; done
mib=1024 secs=15
[ "$QUICK" = 1 ] && mib=64 secs=1
[ "$(free_mib "$WORK")" -gt $((mib * 3 + 256)) ] || die "needs $((mib * 3)) MiB free in $WORK"

rm -f "$WORK"/*.vhd "$WORK"/*.raw "$WORK"/*.sock
head -c $((mib << 20)) /dev/urandom >"$WORK/disk.raw"
"$VHD" convert "$WORK/disk.raw" "$WORK/disk.vhd" >/dev/null || die "vhd convert"
cp "$WORK/disk.vhd" "$WORK/qemu.vhd"
sock=$WORK/nbd.sock

# Every server starts with its file out of the page cache: `vhd convert`
# leaves disk.vhd there in 2 MiB folios, and a 4 KiB write into such a
# folio costs ext4 ~4x more (ext4_block_write_begin walks all its blocks;
# perf): 5.8k IOPS against 24k after DONTNEED, measured here.
start_server() {   # vhd|file|qemu
	forget "$WORK/disk.vhd" "$WORK/disk.raw" "$WORK/qemu.vhd"
	case $1 in
	vhd)  "$VHD" serve --socket "$sock" "$WORK/disk.vhd" 2>"$WORK/server.log" & ;;
	file) nbdkit -f -U "$sock" file "$WORK/disk.raw" 2>"$WORK/server.log" & ;;
	qemu) qemu-nbd -t -f vpc -k "$sock" --cache=writeback --aio=threads -e 4 "$WORK/qemu.vhd" 2>"$WORK/server.log" & ;;
	esac
	SERVER=$!
	nbd_wait "$sock" "$WORK/server.log" "$1"
}
stop_server() { kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null; rm -f "$sock"; }

# the process that does the work: nbdkit under vhd serve, else the server
server_pid() { pgrep -P "$SERVER" nbdkit || echo "$SERVER"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_fio NAME RW BS: one fio job, its IOPS and MiB/s appended to NAME.fio,
# the server's CPU seconds per GiB moved and peak RSS (MiB, VmHWM reset
# before the job through clear_refs) to NAME.cost
run_fio() {
	local pid c0
	pid=$(server_pid)
	echo 5 >"/proc/$pid/clear_refs"
	c0=$(cpu_ticks "$pid")
	fio --name="$1" --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw="$2" --bs="$3" \
	    --iodepth=16 --size=$((mib << 20)) --runtime="$secs" --time_based --randrepeat=0 \
	    --output-format=json >"$WORK/fio.json" 2>"$WORK/fio.err" ||
		{ cat "$WORK/fio.err" >&2; die "fio $1 $2 $3"; }
	"$PY" -c '
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]   # fio prints a line before the JSON
d = j["write"] if j["write"]["io_bytes"] else j["read"]
print("%.0f %.1f %d" % (d["iops"], d["bw_bytes"] / 1048576, d["io_bytes"]))' "$WORK/fio.json" >>"$WORK/$1.fio"
	awk -v c0="$c0" -v c1="$(cpu_ticks "$pid")" -v hz="$(getconf CLK_TCK)" \
	    -v b="$(tail -1 "$WORK/$1.fio" | cut -d' ' -f3)" \
	    -v rss="$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")" \
	    'BEGIN {printf "%.2f %.1f\n", (c1 - c0) / hz / (b / 1073741824), rss / 1024}' >>"$WORK/$1.cost"
}
PY=/usr/bin/python3
patterns="randwrite:4k randread:4k write:1M read:1M"
for _ in $(seq "$RUNS"); do
	for srv in vhd file qemu; do
		start_server $srv
		for p in $patterns; do run_fio "$srv-${p%%:*}" "${p%%:*}" "${p##*:}"; done
		stop_server
	done
done
# reads through a 3-level chain (bench/tools/mkread, as bench-read.sh)
# against nbdkit file on the raw image of the same content
[ -x "$TOOLS/mkread" ] || die "bench tools missing (make bench builds them)"
shape=(--size "$mib")
[ "$QUICK" = 1 ] && shape=(--size "$mib" --writes 50)
mkdir -p "$WORK/chain"
"$TOOLS/mkread" "${shape[@]}" "$WORK/chain" >/dev/null || die "mkread"
"$VHD" convert --raw "$WORK/chain/leaf.vhd" "$WORK/chain.raw" >/dev/null || die "convert chain"
for _ in $(seq "$RUNS"); do
	for srv in chainvhd chainfile; do
		case $srv in
		chainvhd)  "$VHD" serve --read-only --socket "$sock" "$WORK/chain/leaf.vhd" 2>"$WORK/server.log" & ;;
		chainfile) nbdkit -f -U "$sock" file "$WORK/chain.raw" 2>"$WORK/server.log" & ;;
		esac
		SERVER=$!
		nbd_wait "$sock" "$WORK/server.log" $srv
		run_fio "$srv-read" read 1M
		run_fio "$srv-randread" randread 4k
		stop_server
	done
done
"$VHD" check "$WORK/disk.vhd" >/dev/null || die "disk.vhd damaged by the benchmark"
med() { awk -v c="$2" '{print $c}' "$WORK/$1.fio" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
rows=
for p in $patterns; do
	rw=${p%%:*} bs=${p##*:} col=1
	case $bs in 1M) col=2 ;; esac   # sequential: MiB/s; random: IOPS
	v=$(med "vhd-$rw" $col) f=$(med "file-$rw" $col) q=$(med "qemu-$rw" $col)
	rows="$rows$(awk -v l="$rw $bs" -v v="$v" -v f="$f" -v q="$q" 'BEGIN {
		printf "| %s | %s | %s | %s | **%.2f** | %.1f |", l, v, f, q, v / f, v / q }')
"
done
chain_rows=
for p in read:1M randread:4k; do
	rw=${p%%:*} bs=${p##*:} col=1
	case $bs in 1M) col=2 ;; esac
	v=$(med "chainvhd-$rw" $col) f=$(med "chainfile-$rw" $col)
	chain_rows="$chain_rows$(awk -v l="$rw $bs" -v v="$v" -v f="$f" 'BEGIN {
		printf "| %s | %s | %s | **%.2f** |", l, v, f, v / f }')
"
done
cost_med() { awk -v c="$2" '{print $c}' "$WORK/$1.cost" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
cost_rows='' chain_cost_rows=''
for p in $patterns; do
	rw=${p%%:*} bs=${p##*:}
	cost_rows="$cost_rows| $rw $bs | $(cost_med "vhd-$rw" 1) | $(cost_med "file-$rw" 1) | $(cost_med "qemu-$rw" 1) | $(cost_med "vhd-$rw" 2) | $(cost_med "file-$rw" 2) | $(cost_med "qemu-$rw" 2) |
"
done
for p in read:1M randread:4k; do
	rw=${p%%:*} bs=${p##*:}
	chain_cost_rows="$chain_cost_rows| $rw $bs | $(cost_med "chainvhd-$rw" 1) | $(cost_med "chainfile-$rw" 1) | $(cost_med "chainvhd-$rw" 2) | $(cost_med "chainfile-$rw" 2) |
"
done
echo "$rows$chain_rows$cost_rows$chain_cost_rows"
{
	echo "## vhd serve: fio over NBD"
	echo
	echo "\`make bench\` or \`BENCH=serve sh bench/run.sh\` (bench/bench-serve.sh), $(machine);"
	echo "median of $RUNS runs of $secs s each, the three servers in turn in every run."
	echo
	echo "A ${mib} MiB dynamic VHD with every block allocated (\`vhd convert\` of random data)"
	echo "served by \`vhd serve --socket\` (nbdkit 1.32 with nbdkit-vhd-plugin.so, 16 threads);"
	echo "the baseline, the plugin's own cost: \`nbdkit file\` on the raw file of the same content;"
	echo "and \`qemu-nbd -f vpc\` (persistent, writeback cache, threads AIO) on a copy of the VHD.  Client:"
	echo "\`fio --ioengine=nbd --iodepth=16\` over the Unix socket, one job.  Random patterns in"
	echo "IOPS, sequential ones in MiB/s; ratio = vhd serve / nbdkit file (target >= 0.80), and"
	echo "vhd serve / qemu-nbd (target >= 10 on 4 KiB random writes)."
	echo
	echo "| pattern | vhd serve | nbdkit file | qemu-nbd vpc | ratio to file | ratio to qemu-nbd |"
	echo "|---|---|---|---|---|---|"
	printf "%s" "$rows"
	echo
	echo "Reads through a 3-level chain (\`build/bench/mkread ${shape[*]}\`: a full base, 30% of"
	echo "the blocks in the middle layer, random writes in the leaf), \`vhd serve --read-only\`"
	echo "on the leaf against \`nbdkit file\` on \`vhd convert --raw\` of it."
	echo
	echo "| pattern | vhd serve | nbdkit file | ratio to file |"
	echo "|---|---|---|---|"
	printf "%s" "$chain_rows"
	echo
	echo "The servers' cost per pattern: CPU seconds (user+sys of the nbdkit process, or qemu-nbd;"
	echo "/proc/PID/stat before and after the fio job) per GiB moved, and peak RSS (VmHWM, reset"
	echo "through /proc/PID/clear_refs before each job) in MiB."
	echo
	echo "| pattern | vhd serve CPU s/GiB | nbdkit file CPU s/GiB | qemu-nbd CPU s/GiB | vhd serve RSS MiB | nbdkit file RSS MiB | qemu-nbd RSS MiB |"
	echo "|---|---|---|---|---|---|---|"
	printf "%s" "$cost_rows"
	echo
	echo "The same through the 3-level chain:"
	echo
	echo "| pattern | vhd serve CPU s/GiB | nbdkit file CPU s/GiB | vhd serve RSS MiB | nbdkit file RSS MiB |"
	echo "|---|---|---|---|---|"
	printf "%s" "$chain_cost_rows"
	echo
} > "$OUT"
cat "$OUT"
