#!/bin/sh
# run.sh - `make fuzz`: build the libFuzzer target and run it.
#   FUZZ_SECONDS  how long (default 300)
#   FUZZ_JOBS     parallel workers; with more than 1, libFuzzer's fork mode
#                 goes on after a crash (default 1: stop at the first)
#   B             build directory (default build)
# Seeds: small images made by `fuzz-replay --make-seeds`, the corpus's
# images that fit in -max_len, and fuzz/regressions/.  New inputs collect
# in $B/fuzz/corpus (kept between runs).  A crash, leak, timeout or huge
# allocation is written to fuzz/regressions/ (crash-*, leak-*, timeout-*,
# oom-*); minimize it with
#   $B/fuzz/fuzz-open-check -minimize_crash=1 -runs=20000 \
#       -exact_artifact_path=fuzz/regressions/NAME FILE
# and replay it with `$B/tests/fuzz-replay FILE` or
# tests/test-fuzz-regressions.sh.  clang comes from `make deps` (install-deps.sh).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
B=${B:-build}
SECONDS_=${FUZZ_SECONDS:-300}
JOBS=${FUZZ_JOBS:-1}
MAX_LEN=65536
CORPUS=${VHDKIT_CORPUS:-$ROOT/../shared/corpus}

command -v clang >/dev/null 2>&1 || { echo "fuzz: clang not found (run make deps)" >&2; exit 1; }
make -s B="$B" fuzz-bin

seeds=$B/fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds" "$B/fuzz/corpus" fuzz/regressions
"$B/tests/fuzz-replay" --make-seeds "$seeds"
# the corpus's small images (a chain member as DIR__NAME)
if [ -d "$CORPUS" ]; then
	find "$CORPUS/good" "$CORPUS/bad" -type f -name '*.vhd' -size -$((MAX_LEN / 1024 + 1))k |
	while read -r f; do
		cp "$f" "$seeds/corpus-$(echo "${f#"$CORPUS"/}" | tr / _)"
	done
fi
chmod -R u+w "$seeds"

set -- -max_len=$MAX_LEN -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
	-max_total_time="$SECONDS_" -dict=fuzz/vhd.dict -print_final_stats=1 \
	-artifact_prefix=fuzz/regressions/
[ "$JOBS" -gt 1 ] && set -- "$@" -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
echo "fuzz: $B/fuzz/fuzz-open-check for ${SECONDS_}s ($JOBS job(s)); crashes go to fuzz/regressions/"
rc=0
"$B/fuzz/fuzz-open-check" "$@" "$B/fuzz/corpus" "$seeds" fuzz/regressions </dev/null || rc=$?
echo "fuzz: corpus now $(ls "$B/fuzz/corpus" | wc -l) inputs; exit $rc"
exit $rc
