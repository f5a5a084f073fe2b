# functions.sh - shared by bench/bench-*.sh (bash):
#   . "$(dirname "$0")/functions.sh"; bench_init NAME
# sets ROOT, B (absolute), VHD, VHDIO, TOOLS ($B/bench), RUNS, WORK (a
# fresh work directory, removed on exit unless BENCH_KEEP=1), OUT (the
# Markdown fragment NAME.md in BENCH_OUT, default $B/bench), QUICK (1 with
# BENCH_QUICK=1: small data, one run, for `make check`; see bench/run.sh).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}; case $B in /*) ;; *) B=$ROOT/$B ;; esac
VHD=$B/vhd VHDIO=$B/tests/vhd-io TOOLS=$B/bench
RUNS=${BENCH_RUNS:-3}
QUICK=${BENCH_QUICK:-0}
FRAGMENTS=${BENCH_OUT:-$B/bench}
TIMEFORMAT='%R %U %S'

bench_init() {
	WORK=${BENCH_DIR:-$FRAGMENTS/$1-work}
	OUT=$FRAGMENTS/$1.md
	mkdir -p "$WORK"
	[ "${BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
	rm -f "$WORK"/*.runs
}

die() { echo "bench: $*" >&2; exit 1; }

# (never in quick mode: it would slow every process of the machine, for
# figures nobody reads)
can_drop_caches() { [ "$QUICK" != 1 ] && [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; }
drop_caches() { can_drop_caches && sync && echo 3 > /proc/sys/vm/drop_caches; }

# timed NAME CMD...: run CMD (stdout discarded) and append "wall user sys"
# seconds to $WORK/NAME.runs.
timed() {
	local name=$1; shift
	{ time "$@" > /dev/null 2> "$WORK/stderr"; } 2>> "$WORK/$name.runs" ||
		{ cat "$WORK/stderr" >&2; die "$name: $* failed"; }
}
timed_cold() { drop_caches; timed "$@"; }

# median NAME [COLUMN]: median of column (1 wall, 2 user, 3 sys, 4 user+sys)
median() {
	awk -v c="${2:-1}" '{print c == 4 ? $2 + $3 : $c}' "$WORK/$1.runs" |
		sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}

machine() {
	echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(uname -m)), kernel $(uname -r)," \
	     "filesystem $(df -T "$WORK" | awk 'NR == 2 {print $2}') for $(realpath --relative-to="$ROOT" "$WORK"),"\
	     "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
}
cache_note() {
	if can_drop_caches; then echo "page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each cold run"
	elif [ "$QUICK" = 1 ]; then echo "BENCH_QUICK: small data, page cache not dropped, cold figures are warm"
	else echo "cold runs impossible (not root: cannot drop the page cache), cold figures are warm"; fi
}

# free_mib DIR: MiB available on DIR's filesystem
free_mib() { df -Pm "$1" | awk 'NR == 2 {print $4}'; }

# nbd_wait SOCKET LOG WHAT: wait until an NBD server answers on SOCKET;
# if it does not, show its LOG and give up
nbd_wait() {
	for _ in $(seq 200); do
		nbdinfo --size "nbd+unix:///?socket=$1" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	cat "$2" >&2; die "$3 server did not start"
}

# forget FILE...: drop these files' pages from the page cache (written back
# first), so that runs start from the same state: not the machine's whole
# cache (other jobs run here), only these files
forget() { sync; for f; do dd if="$f" iflag=nocache count=0 status=none; done; }
