#!/bin/bash
# bench-live.sh - the live leaf-coalesce of a served leaf (`vhd serve` +
# `vhd live-coalesce`) against qemu-storage-daemon's active commit (the
# mirror job, block-commit of the active node exported over NBD, driven by
# QMP: bench/tools/qsd-commit.py), on the same workload: a leaf with 1 GiB
# of data over a full 4 GiB parent, the guest fio over NBD (4 KiB random
# writes over the whole disk at queue depth 16) idle, at 500 IOPS, and
# unthrottled.  For each: the time to finish, the pivot, the longest guest
# request wait across it, the guest's p50/p99 completion latency before,
# during and after the merge (fio's per-request latency log,
# bench/tools/lat-windows.py).  qemu gets a timeout and is reported as not
# converged when it does not finish.  Writes $B/bench/live.md.
# BENCH_QUICK=1: 16 MiB over 64 MiB, 0.5 s before and after.
. "$(dirname "$0")/functions.sh"
bench_init live
WORK=$(realpath "$WORK")
export PATH=/usr/bin:$PATH
PY=/usr/bin/python3
for c in fio nbdkit nbdinfo qemu-img qemu-io qemu-storage-daemon; do
	command -v $c >/dev/null || die "$c missing (make deps)"
done
parent_mib=4096 leaf_mib=1024 chunk_mib=64 settle=5 qemu_timeout=120 vhd_timeout=600
[ "$QUICK" = 1 ] && parent_mib=64 leaf_mib=16 chunk_mib=8 settle=0.5 qemu_timeout=20 vhd_timeout=60
[ "$(free_mib "$WORK")" -gt $(( (parent_mib + leaf_mib) * 5 / 2 + 512 )) ] ||
	die "needs $(( (parent_mib + leaf_mib) * 5 / 2 )) MiB free in $WORK"
G=$WORK/golden R=$WORK/run
SRV= FIO=
# the servers and fio are this script's children: end them whatever happens
cleanup() {
	for p in $FIO $SRV; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
TOOLS_SRC=$ROOT/bench/tools

# ---- the images: the same content as a VHD chain and a qcow2 chain ----
make_images() {
	rm -rf "$G" && mkdir -p "$G"
	head -c $((parent_mib << 20)) /dev/urandom >"$WORK/parent.raw"
	head -c $((chunk_mib << 20)) /dev/urandom >"$WORK/chunk.raw"
	"$VHD" convert "$WORK/parent.raw" "$G/base.vhd" >/dev/null || die "vhd convert"
	"$VHD" snapshot "$G/base.vhd" "$G/leaf.vhd" >/dev/null || die "vhd snapshot"
	"$VHD" set "$G/base.vhd" hidden on || die "vhd set hidden"
	qemu-img convert -f raw -O qcow2 "$WORK/parent.raw" "$G/base.qcow2" || die "qemu-img convert"
	rm -f "$WORK/parent.raw"
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$G/top.qcow2" || die "qemu-img create"
	# the leaf's data: LEAF_MIB from a quarter of the disk on, chunk after chunk
	local off=$((parent_mib << 18)) i qio=()
	for i in $(seq 0 $((leaf_mib / chunk_mib - 1))); do
		"$VHDIO" write "$G/leaf.vhd" $((off + (i * chunk_mib << 20))) <"$WORK/chunk.raw" ||
			die "vhd-io write"
		qio+=(-c "write -s $WORK/chunk.raw $((off + (i * chunk_mib << 20))) $((chunk_mib << 20))")
	done
	qemu-io -f qcow2 "${qio[@]}" "$G/top.qcow2" >/dev/null || die "qemu-io write"
}

# ---- the guest ----
URI=
start_guest() {   # idle|500|max
	FIO= FIO_LOG=
	[ "$1" = idle ] && return 0
	local rate=()
	[ "$1" = 500 ] && rate=(--rate_iops=500)
	rm -f "$R"/g_*.log
	fio --name=guest --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --size=$((parent_mib << 20)) \
	    --iodepth=16 --time_based --runtime=100000 --randrepeat=0 "${rate[@]}" \
	    --write_lat_log="$R/g" --log_avg_msec=0 --log_unix_epoch=1 >"$R/fio.out" 2>&1 &
	FIO=$!
}
stop_guest() {
	[ -n "$FIO" ] || return 0
	kill -INT "$FIO"
	wait "$FIO"   # exits 1 when stopped by the signal: its own report says how it went
	grep -q "err= 0" "$R/fio.out" || { tail "$R/fio.out" >&2; die "fio failed"; }
	FIO_LOG=$FIO FIO=
}
# windows START END PIVOT_LO PIVOT_HI: p50/p99 before, during, after (µs),
# the longest completion around the pivot (ms), IOPS during
windows() {
	if [ -z "$FIO_LOG" ]; then echo "0 0 0 0 0 0 0 0"; return; fi
	"$PY" "$TOOLS_SRC/lat-windows.py" "$R/g_clat.1.log" "$@"
}
wait_nbd() {
	for _ in $(seq 200); do
		nbdinfo --size "$URI" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	cat "$R/server.log" >&2; die "$1 does not listen"
}
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }

# ---- vhd serve + vhd live-coalesce ----
run_vhd() {   # PROFILE -> a line of figures appended to vhd.rows
	rm -rf "$R" && mkdir -p "$R" && cp --sparse=always "$G"/*.vhd "$R"/
	URI="nbd+unix:///?socket=$R/nbd.sock"
	"$VHD" serve --socket "$R/nbd.sock" "$R/leaf.vhd" >"$R/server.log" 2>&1 &
	SRV=$!
	wait_nbd "vhd serve"
	start_guest "$1"
	sleep "$settle"
	local t1 t2 rc
	t1=$(now)
	timeout "$vhd_timeout" "$VHD" live-coalesce --json "$R/leaf.vhd" >"$R/live.json" 2>"$R/live.err"
	rc=$?
	t2=$(now)
	sleep "$settle"
	stop_guest
	[ $rc = 0 ] || { cat "$R/live.err" >&2; die "vhd live-coalesce ($1) exited $rc"; }
	local w last
	w=$(windows "$t1" "$t2" "$(calc "$t2 - 1")" "$(calc "$t2 + 0.5")")
	last=$(tail -1 "$R/live.json")
	kill -TERM "$SRV"; wait "$SRV"; SRV=
	[ "$("$VHD" depth "$R/leaf.vhd")" = 1 ] || die "vhd: the leaf is not merged ($1)"
	"$VHD" check "$R/leaf.vhd" >/dev/null || die "vhd check after the live merge ($1)"
	"$PY" -c '
import json, sys
l = json.loads(sys.argv[1]); w = sys.argv[4].split()
print(sys.argv[2], "%.1f" % (float(sys.argv[3])), "%.1f" % l["pivot_ms"], "%.1f" % l["pivot_pause_ms"], " ".join(w))
' "$last" "$1" "$(calc "$t2 - $t1")" "$w" >>"$WORK/vhd.rows"
}

# ---- qemu-storage-daemon, active commit ----
run_qemu() {
	rm -rf "$R" && mkdir -p "$R" && cp "$G"/*.qcow2 "$R"/
	qemu-storage-daemon \
	    --blockdev driver=file,filename="$R/base.qcow2",node-name=base-file,cache.direct=off \
	    --blockdev driver=qcow2,file=base-file,node-name=base \
	    --blockdev driver=file,filename="$R/top.qcow2",node-name=top-file,cache.direct=off \
	    --blockdev driver=qcow2,file=top-file,backing=base,node-name=top \
	    --nbd-server addr.type=unix,addr.path="$R/nbd.sock" \
	    --export type=nbd,id=exp,node-name=top,name=top,writable=on \
	    --chardev socket,path="$R/qmp.sock",server=on,wait=off,id=qmp --monitor chardev=qmp \
	    >"$R/server.log" 2>&1 &
	SRV=$!
	URI="nbd+unix:///top?socket=$R/nbd.sock"
	wait_nbd qemu-storage-daemon
	start_guest "$1"
	sleep "$settle"
	"$PY" "$TOOLS_SRC/qsd-commit.py" "$R/qmp.sock" "$qemu_timeout" >"$R/q.json" ||
		die "qsd-commit.py ($1)"
	sleep "$settle"
	stop_guest
	kill -TERM "$SRV"; wait "$SRV"; SRV=
	local q w
	q=$(cat "$R/q.json")
	w=$("$PY" -c '
import json, sys
q = json.loads(sys.argv[1])
end = q.get("completed", q["start"] + float(sys.argv[2]))
lo = q.get("complete_sent", end) - 0.2
print(q["start"], end, lo, end + 0.5)' "$q" "$qemu_timeout")
	w=$(windows $w)
	"$PY" -c '
import json, sys
q = json.loads(sys.argv[1]); w = sys.argv[4].split()
if q["converged"]:
    f = [q["completed"] - q["start"], q["ready"] - q["start"], (q["completed"] - q["complete_sent"]) * 1000]
    note = ""
else:
    f = [float(sys.argv[3]), float(sys.argv[3]), 0]
    done = 100.0 * q.get("offset", 0) / q["len"] if q.get("len") else 0
    note = "did not converge in %s s (%.0f%% of the work then known copied); " % (sys.argv[3], done)
print(sys.argv[2], "%.1f %.1f %.1f" % tuple(f), " ".join(w), note)
' "$q" "$1" "$qemu_timeout" "$w" >>"$WORK/qemu.rows"
}

make_images
rm -f "$WORK/vhd.rows" "$WORK/qemu.rows"
for p in idle 500 max; do
	run_vhd $p
	run_qemu $p
done
label() { case $1 in idle) echo "idle" ;; 500) echo "500 IOPS" ;; max) echo "unthrottled" ;; esac; }
vhd_rows= qemu_rows=
while read -r p fin piv pause p50b p99b p50d p99d p50a p99a wmax iops; do
	vhd_rows="$vhd_rows| $(label "$p") | $fin | $piv | $pause | $wmax | $iops | $p50b | $p99b | $p50d | $p99d | $p50a | $p99a |
"
done <"$WORK/vhd.rows"
while read -r p fin ready comp p50b p99b p50d p99d p50a p99a wmax iops note; do
	qemu_rows="$qemu_rows| $(label "$p")${note:+: ${note%; }} | $fin | $ready | $comp | $wmax | $iops | $p50b | $p99b | $p50d | $p99d | $p50a | $p99a |
"
done <"$WORK/qemu.rows"
head="| p50 before | p99 before | p50 during | p99 during | p50 after | p99 after |"
{
	echo "## Live leaf-coalesce against qemu's active commit"
	echo
	echo "\`make bench\` or \`BENCH=live sh bench/run.sh\` (bench/bench-live.sh), $(machine); one run of each."
	echo
	echo "A leaf with ${leaf_mib} MiB of data (from a quarter of the disk on) over a full ${parent_mib} MiB"
	echo "parent; the same content as a VHD chain (\`vhd serve\`, merged by \`vhd live-coalesce\`) and as"
	echo "a qcow2 chain in qemu-storage-daemon 7.2 (the top node exported over NBD, merged by"
	echo "\`block-commit\` of the active node into the base: the mirror job, then \`block-job-complete\`"
	echo "once ready; bench/tools/qsd-commit.py, a ${qemu_timeout} s timeout).  The guest: fio's nbd engine,"
	echo "4 KiB random writes over the whole disk at queue depth 16, none (idle), \`--rate_iops=500\`,"
	echo "or unthrottled, from ${settle} s before the merge to ${settle} s after it.  Latencies are fio's"
	echo "per-request completion latencies (µs), split at the merge's start and end; idle has no"
	echo "request (0).  Times in s, pauses in ms."
	echo
	echo "vhd serve: *pivot* is the server's pivot (drain, flush, swap, reopen: \`pivot_ms\`);"
	echo "*server wait* the longest any guest request waited at it, measured by the server"
	echo "(\`pivot_pause_ms\`); *fio max* the longest fio completion latency of the requests that"
	echo "completed from 1 s before the end of \`vhd live-coalesce\` to 0.5 s after."
	echo
	echo "| guest | finish s | pivot ms | server wait ms | fio max ms | guest IOPS during $head"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	printf "%s" "$vhd_rows"
	echo
	echo "qemu-storage-daemon: *finish* from \`block-commit\` to \`BLOCK_JOB_COMPLETED\`, *ready* to"
	echo "\`BLOCK_JOB_READY\`, *complete* from \`block-job-complete\` to the end (the pivot); *fio max*"
	echo "the longest fio completion latency of the requests that completed from 0.2 s before"
	echo "\`block-job-complete\` to 0.5 s after the end.  A run that did not converge shows the"
	echo "timeout as its time and says so."
	echo
	echo "| guest | finish s | ready s | complete ms | fio max ms | guest IOPS during $head"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	printf "%s" "$qemu_rows"
	echo
} >"$OUT"
cat "$OUT"
