#!/bin/sh
# run.sh - `make fuzz`: build the libFuzzer targets and run them side by
# side, one per core (each target's output in $B/fuzz/TARGET.log, printed
# when it ends):
#   fuzz-open-check  the library (open, map, read, check, repair)
#   fuzz-vhdutil     vhd-util's parser and its check, query, read, scan
# Knobs:
#   FUZZ_SECONDS   how long each target runs (default 3600: an hour, both
#                  targets at once on the machine's two cores)
#   FUZZ_SERIAL    1: one target after the other instead (a one-core machine)
#   FUZZ_TARGETS   which (default "open-check vhdutil")
#   FUZZ_JOBS      parallel workers; with more than 1, libFuzzer's fork mode
#                  goes on after a crash (default 1: stop at the first)
#   FUZZ_CORPUS    where new inputs collect, one directory per target
#                  (default $B/fuzz/corpus, kept between runs)
#   FUZZ_ARTIFACTS prefix of the files a crash is saved to
#                  (default fuzz/regressions/, and .../vhdutil- for fuzz-vhdutil)
#   B              build directory (default build)
# Seeds: small images made by `fuzz-replay --make-seeds`, the corpus's
# images that fit in -max_len, and fuzz/regressions/.  A crash, leak,
# timeout or huge allocation is written as crash-*, leak-*, timeout-*,
# oom-*; minimize it with
#   $B/fuzz/fuzz-open-check -minimize_crash=1 -runs=20000 \
#       -exact_artifact_path=fuzz/regressions/NAME FILE
# and replay it with `$B/tests/fuzz-replay FILE` (or fuzz-vhdutil-replay);
# tests/test-fuzz-regressions.sh replays fuzz/regressions/ through both.
# clang comes from `make deps` (install-deps.sh).  Exit status: 0 when no target
# found anything, else the last failing target's.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
B=${B:-build}
SECONDS_=${FUZZ_SECONDS:-3600}
SERIAL=${FUZZ_SERIAL:-0}
[ "$(nproc)" -ge 2 ] || SERIAL=1
TARGETS=${FUZZ_TARGETS:-open-check vhdutil}
JOBS=${FUZZ_JOBS:-1}
CORPUS_DIR=${FUZZ_CORPUS:-$B/fuzz/corpus}
ARTIFACTS=${FUZZ_ARTIFACTS:-fuzz/regressions/}
MAX_LEN=65536
CORPUS=${VHDKIT_CORPUS:-$ROOT/../shared/corpus}

command -v clang >/dev/null 2>&1 || { echo "fuzz: clang not found (run make deps)" >&2; exit 1; }
make -s B="$B" fuzz-bin

seeds=$B/fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds" fuzz/regressions
case $ARTIFACTS in */) mkdir -p "$ARTIFACTS" ;; *) mkdir -p "$(dirname "$ARTIFACTS")" ;; esac
"$B/tests/fuzz-replay" --make-seeds "$seeds"
# the corpus's small images (a chain member as DIR__NAME)
if [ -d "$CORPUS" ]; then
	find "$CORPUS/good" "$CORPUS/bad" -type f -name '*.vhd' -size -$((MAX_LEN / 1024 + 1))k |
	while read -r f; do
		cp "$f" "$seeds/corpus-$(echo "${f#"$CORPUS"/}" | tr / _)"
	done
fi
chmod -R u+w "$seeds"

# the targets' scratch files: on /dev/shm (memory) when there is one;
# removed here, as libFuzzer's timed end skips their own clean-up
shm=/dev/shm; [ -d $shm ] && [ -w $shm ] || shm=${TMPDIR:-/tmp}
FUZZ_SCRATCH=$(mktemp -d "$shm/vhdkit-fuzz.XXXXXX")
export FUZZ_SCRATCH
trap 'rm -rf "$FUZZ_SCRATCH"' EXIT
# run_target TARGET: one libFuzzer run; its output to $B/fuzz/TARGET.log
run_target() {
	target=$1
	case $target in
	open-check) prefix=$ARTIFACTS ;;
	vhdutil) prefix=${ARTIFACTS}vhdutil- ;;
	esac
	corpus=$CORPUS_DIR/$target
	mkdir -p "$corpus"
	set -- -max_len=$MAX_LEN -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
		-max_total_time="$SECONDS_" -dict=fuzz/vhd.dict -print_final_stats=1 \
		-artifact_prefix="$prefix"
	[ "$JOBS" -gt 1 ] && set -- "$@" -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	{
		echo "fuzz: $B/fuzz/fuzz-$target for ${SECONDS_}s ($JOBS job(s)); crashes go to ${prefix}*"
		trc=0
		"$B/fuzz/fuzz-$target" "$@" "$corpus" "$seeds" fuzz/regressions </dev/null 2>&1 || trc=$?
		echo "fuzz: fuzz-$target: corpus now $(ls "$corpus" | wc -l) inputs; exit $trc"
		exit $trc
	} >"$B/fuzz/$target.log" 2>&1
}
for target in $TARGETS; do
	case $target in open-check|vhdutil) ;;
	*) echo "fuzz: unknown target $target (open-check, vhdutil)" >&2; exit 2 ;;
	esac
done
rc=0 pids=
for target in $TARGETS; do
	echo "fuzz: fuzz-$target runs ${SECONDS_}s, its output in $B/fuzz/$target.log"
	if [ "$SERIAL" = 1 ]; then
		run_target "$target" || rc=$?
	else
		run_target "$target" &
		pids="$pids $!"
	fi
done
for pid in $pids; do
	wait "$pid" || rc=$?
done
for target in $TARGETS; do
	cat "$B/fuzz/$target.log"
done
exit $rc
