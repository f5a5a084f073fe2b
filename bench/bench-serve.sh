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

start_server() {   # vhd|file|qemu
	case $1 in
	vhd)  "$VHD" serve --socket "$sock" "$WORK/disk.vhd" 2>"$WORK/server.log" & ;;
	file) nbdkit -f -U "$sock" file "$WORK/disk.raw" 2>"$WORK/server.log" & ;;
	qemu) qemu-nbd -t -f vpc -k "$sock" --cache=writeback --aio=threads -e 4 "$WORK/qemu.vhd" 2>"$WORK/server.log" & ;;
	esac
	SERVER=$!
	for _ in $(seq 200); do
		nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	cat "$WORK/server.log" >&2; die "$1 server did not start"
}
stop_server() { kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null; rm -f "$sock"; }

# run_fio NAME RW BS: one fio job, its IOPS and MiB/s appended to NAME.fio
run_fio() {
	fio --name="$1" --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw="$2" --bs="$3" \
	    --iodepth=16 --size=$((mib << 20)) --runtime="$secs" --time_based --randrepeat=0 \
	    --output-format=json >"$WORK/fio.json" 2>"$WORK/fio.err" ||
		{ cat "$WORK/fio.err" >&2; die "fio $1 $2 $3"; }
	"$PY" -c '
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]   # fio prints a line before the JSON
d = j["write"] if j["write"]["io_bytes"] else j["read"]
print("%.0f %.1f" % (d["iops"], d["bw_bytes"] / 1048576))' "$WORK/fio.json" >>"$WORK/$1.fio"
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
echo "$rows"
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
} > "$OUT"
cat "$OUT"
