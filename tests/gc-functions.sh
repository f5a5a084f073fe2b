# gc-functions.sh - helpers for the GC tests (sourced after functions.sh).
#   make_sr DIR LEVELS SIZE_MB WRITES: an SR shaped like XenServer's after
#     LEVELS snapshots of one VM disk: hidden b00 .. b(LEVELS-1), each with an
#     empty visible snapshot sNN beside its hidden child, data in every layer,
#     the VM's disk leaf.vhd on top (visible, with data).
#   small_chain DIR P SECTORS: DIR/P0.vhd <- P1 <- P2 (16 MiB; P0, P1 hidden),
#     SECTORS random sectors written in each, spread over its blocks
#   sr_sums DIR: "name sha" of every visible VHD (content through its chain)
#   gc_start DIR ARGS...: start `vhd gc run` in the background (GC_PID, GC_LOG,
#     GC_SOCK); gc_stop; gc_status [SOCK]: the status JSON on one line
#   gc_query SOCK JSON: one request over the socket, the reply on stdout
PY=/usr/bin/python3
make_sr() {
	local d=$1 levels=$2 size=$3 writes=$4 i prev cur
	mkdir -p "$d"
	"$VHD" create "$d/b00.vhd" "${size}M" >/dev/null || return 1
	random_writes "$d/b00.vhd" "$size" "$writes" 256 || return 1
	for i in $(seq 1 "$levels"); do
		prev=$(printf 'b%02d' $((i - 1)))
		cur=$(printf 'b%02d' "$i")
		[ "$i" -eq "$levels" ] && cur=leaf
		"$VHD" snapshot "$d/$prev.vhd" "$d/$cur.vhd" >/dev/null || return 1
		"$VHD" snapshot "$d/$prev.vhd" "$d/s$(printf %02d $((i - 1))).vhd" >/dev/null || return 1
		"$VHD" set "$d/$prev.vhd" hidden on >/dev/null || return 1
		random_writes "$d/$cur.vhd" "$size" "$writes" 256 || return 1
	done
}
small_chain() {
	local d=$1 p=$2 n=$3 i blk
	"$VHD" create "$d/${p}0.vhd" 16M >/dev/null || return 1
	for i in 0 1 2; do
		if [ "$i" -gt 0 ]; then
			"$VHD" snapshot "$d/$p$((i - 1)).vhd" "$d/$p$i.vhd" >/dev/null &&
				"$VHD" set "$d/$p$((i - 1)).vhd" hidden on >/dev/null || return 1
		fi
		for blk in 0 2 4 6; do
			rand_sectors $((n / 4)) | "$VHDIO" write "$d/$p$i.vhd" $((blk * 2097152 + i * 65536)) ||
				return 1
		done
	done
}
# visible_vhds DIR: the VHDs whose footer (the file's last 512 bytes) has
# the hidden byte (85) clear
visible_vhds() {
	"$PY" - "$1" <<'PYEOF'
import glob, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.vhd"))):
    with open(f, "rb") as h:
        h.seek(-512, 2)
        if h.read(512)[85] == 0:
            print(f)
PYEOF
}
sr_sums() {
	local f
	for f in $(visible_vhds "$1"); do
		echo "$(basename "$f") $(content_sha "$f")" || return 1
	done
}
gc_query() {
	"$PY" - "$1" "$2" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode())
PYEOF
}
gc_status() { gc_query "${1:-$GC_SOCK}" '{"cmd":"status"}'; }
# jq-like: json_get JSON EXPR (python expression on `j`)
json_get() { "$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
gc_start() {
	local dir=$1; shift
	GC_LOG=$TMP/gc.$RANDOM.log
	GC_SOCK=$dir/.vhd-gc.sock
	"$VHD" gc run "$@" "$dir" 2>"$GC_LOG" &
	GC_PID=$!
	local i
	for i in $(seq 100); do
		[ -S "$GC_SOCK" ] && gc_status >/dev/null 2>&1 && return 0
		kill -0 "$GC_PID" 2>/dev/null || { cat "$GC_LOG" >&2; return 1; }
		sleep 0.1
	done
	cat "$GC_LOG" >&2
	return 1
}
gc_stop() {
	[ -n "${GC_PID:-}" ] || return 0
	kill "$GC_PID" 2>/dev/null
	wait "$GC_PID" 2>/dev/null
	GC_PID=
}
# wait_for SECS PYTHON_CONDITION_ON_STATUS_j
wait_for() {
	local secs=$1 cond=$2 i st
	for i in $(seq $((secs * 10))); do
		st=$(gc_status 2>/dev/null) && [ "$(json_get "$st" "$cond")" = True ] && return 0
		sleep 0.1
	done
	echo "last status: ${st:-none}" >&2
	return 1
}
