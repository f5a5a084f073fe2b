#!/bin/sh
# run.sh - run every test: unit binaries (build/tests/test-*) and shell
# tests (tests/test-*.sh).  Prints one line per test and ends with
# "N passed, N failed".  TESTS="pattern" runs a subset.
B=${B:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
LOG=$B/test-logs
mkdir -p "$LOG"
passed=0 failed=0 failures=
pattern=${TESTS:-*}
for t in $B/tests/test-* tests/test-*.sh; do
	[ -e "$t" ] || continue
	case $t in *.sh) ;; *.d|*.o) continue ;; *) [ -x "$t" ] || continue ;; esac
	name=$(basename "$t" .sh)
	case $name in $pattern) ;; *) continue ;; esac
	start=$(date +%s)
	case $t in
	*.sh) B=$B timeout 600 bash "$t" >"$LOG/$name.log" 2>&1 ;;
	*)    B=$B timeout 600 "$t" >"$LOG/$name.log" 2>&1 ;;
	esac
	rc=$?
	secs=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1)); echo "PASS $name (${secs}s)"
	else
		failed=$((failed + 1)); failures="$failures $name"
		echo "FAIL $name (exit $rc, ${secs}s)"; sed 's/^/    /' "$LOG/$name.log" | tail -20
	fi
done
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
