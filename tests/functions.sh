# functions.sh - sourced by every shell test (tests/test-*.sh).
# Provides: VHD, VHDIO, CORPUS, TMP (removed on exit), fail, pass, requires,
# expect_exit, content_sha (virtual content of a chain), raw_sha.
set -u
# Bash only (tests use local variables in these functions).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
VHD=$B/vhd
VHDIO=$B/tests/vhd-io
# find_corpus: VHDKIT_CORPUS, else ../shared/corpus beside this checkout or
# beside the checkout it was cloned from (a clone of a clone in /tmp, as
# .ci/run makes, still finds the shared corpus of the original)
find_corpus() {
	[ -n "${VHDKIT_CORPUS:-}" ] && { echo "$VHDKIT_CORPUS"; return; }
	local dir=$ROOT origin i
	for i in 1 2 3 4; do
		[ -d "$dir/../shared/corpus" ] && { echo "$dir/../shared/corpus"; return; }
		origin=$(git -C "$dir" config --get remote.origin.url 2>/dev/null) || break
		case $origin in /*) [ -d "$origin" ] && dir=$origin || break ;; *) break ;; esac
	done
	echo "$ROOT/../shared/corpus"
}
CORPUS=$(find_corpus)
[ -d "$CORPUS" ] && CORPUS=$(cd "$CORPUS" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vhdkit-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export TZ=UTC LC_ALL=C

fail() { echo "FAIL: $(basename "$0"): $*" >&2; exit 1; }
pass() { echo "ok: $(basename "$0"): $*"; exit 0; }
# A test that needs a tool fails (never skips) when it is missing:
# `make deps` (install-deps.sh) installs them.
requires() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || fail "required command '$c' not found (run make deps)"
	done
}
need_corpus() {
	[ -f "$CORPUS/MANIFEST.tsv" ] || fail "corpus not found at $CORPUS (set VHDKIT_CORPUS)"
}
# expect_exit CODE CMD...: run CMD, fail unless it exits with CODE.
expect_exit() {
	local want_rc=$1 got; shift
	"$@" >"$TMP/.out" 2>&1; got=$?
	[ "$got" -eq "$want_rc" ] || { cat "$TMP/.out" >&2; fail "'$*' exited $got, expected $want_rc"; }
	return 0
}
# sha256 of the virtual content of a VHD read through its chain.
content_sha() {
	"$VHDIO" cat "$1" | sha256sum | cut -d' ' -f1
}
raw_sha() { sha256sum <"$1" | cut -d' ' -f1; }
# random bytes: rand_bytes COUNT_SECTORS > file
rand_sectors() { head -c $(( $1 * 512 )) /dev/urandom; }
# LD_PRELOAD fault injector (tests/preload/crashpoint.c):
#   crash_run AT MODE SEED CMD...   run CMD crashing at counted call AT
#   crash_count CMD...              run CMD normally, print the call count
CRASHPOINT=$B/tests/crashpoint.so
export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0
crash_run() {
	local c_at=$1 c_mode=$2 c_seed=$3; shift 3
	LD_PRELOAD=$CRASHPOINT CRASH_AT=$c_at CRASH_MODE=$c_mode CRASH_SEED=$c_seed "$@"
}
crash_count() {
	LD_PRELOAD=$CRASHPOINT CRASH_COUNT_FILE=$TMP/.count "$@" >/dev/null 2>&1 || return 1
	cat "$TMP/.count"
}
# random_writes FILE SIZE_MB COUNT MAX_SECTORS: COUNT writes of random data,
# 1..MAX_SECTORS sectors each, at random sector offsets (crossing blocks).
random_writes() {
	local f=$1 total=$(( $2 * 2048 )) count=$3 max=$4 len off
	for _ in $(seq "$count"); do
		len=$(( (RANDOM * 32768 + RANDOM) % max + 1 ))
		off=$(( (RANDOM * 32768 + RANDOM) % (total - len) ))
		rand_sectors "$len" | "$VHDIO" write "$f" $((off * 512)) || return 1
	done
}
# make_chain DIR LEVELS SIZE_MB WRITES [BASE_WRITES]: DIR/l0.vhd (dynamic)
# .. DIR/lN.vhd, random writes in every level (BASE_WRITES in l0, default
# WRITES), every level but the leaf hidden.
make_chain() {
	local d=$1 levels=$2 size=$3 writes=$4 base_writes=${5:-$4} i
	mkdir -p "$d"
	"$VHD" create "$d/l0.vhd" "${size}M" >/dev/null || return 1
	random_writes "$d/l0.vhd" "$size" "$base_writes" 600 || return 1
	for i in $(seq "$levels"); do
		"$VHD" snapshot "$d/l$((i - 1)).vhd" "$d/l$i.vhd" >/dev/null || return 1
		"$VHD" set "$d/l$((i - 1)).vhd" hidden on >/dev/null || return 1
		random_writes "$d/l$i.vhd" "$size" "$writes" 300 || return 1
	done
}
