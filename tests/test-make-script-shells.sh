#!/bin/bash
# Every script runs under the shell its #! line names: the Makefile's
# `sh FILE` and `bash FILE` recipes, the tests tests/run.sh runs with bash,
# the benchmarks bench/run.sh runs with bash.  Every #!/bin/sh script parses
# with dash (Debian's sh) and uses no bash-only construct (shellcheck's
# SC3xxx checks), so `make crash-test` cannot again die in dash on a
# bash array.
. "$(dirname "$0")/functions.sh"
requires dash shellcheck
cd "$ROOT" || fail "cd $ROOT"
shebang() { sed -n '1s/^#! *//p' "$1"; }
checked=0

# the Makefile's recipes: "sh FILE" / "bash FILE"
while read -r shell file; do
	[ -f "$file" ] || fail "Makefile runs $file, which does not exist"
	[ "$(shebang "$file")" = "/bin/$shell" ] ||
		fail "Makefile runs $file with $shell; its #! line says '$(shebang "$file")'"
	checked=$((checked + 1))
done < <(grep -oE '\<(sh|bash) [a-z./-]+\.sh\>' Makefile)
[ "$checked" -ge 6 ] || fail "found only $checked scripts in the Makefile's recipes"

# run with bash by tests/run.sh and bench/run.sh
grep -q 'timeout 600 bash "$t"' tests/run.sh || fail "tests/run.sh no longer runs tests with bash: update this test"
grep -q 'bash "$f"' bench/run.sh || fail "bench/run.sh no longer runs benchmarks with bash: update this test"
for f in tests/test-*.sh bench/bench-*.sh; do
	[ "$(shebang "$f")" = /bin/bash ] || fail "$f is run with bash; its #! line says '$(shebang "$f")'"
	checked=$((checked + 1))
done

# POSIX scripts: dash parses them, and no bashisms
posix=0
for f in *.sh .ci/run tests/*.sh bench/*.sh fuzz/*.sh contrib/*.sh; do
	[ "$(shebang "$f")" = /bin/sh ] || continue
	dash -n "$f" 2>"$TMP/err" || fail "$f: dash cannot parse it: $(cat "$TMP/err")"
	shellcheck -s sh -f gcc "$f" | grep -E 'SC3[0-9]{3}' && fail "$f: bash-only constructs in a #!/bin/sh script"
	posix=$((posix + 1))
done
[ "$posix" -ge 6 ] || fail "found only $posix #!/bin/sh scripts"
pass "$checked scripts run with the shell of their #! line; $posix #!/bin/sh scripts parse in dash without bashisms"
