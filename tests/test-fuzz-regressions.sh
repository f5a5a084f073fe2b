#!/bin/bash
# Every input saved by the fuzzer (fuzz/regressions/), the corpus's bad
# images and the fuzz seeds go through the fuzz target's code (open strict
# and LAX, with and without parent, info, locators, map, reads, check,
# dry-run repair) via the replay driver: none may crash, and a dry-run
# repair must leave each file unchanged (the driver aborts otherwise).
# Under SANITIZE=1 (B=build-san) memory errors and leaks fail it too.
. "$(dirname "$0")/functions.sh"
need_corpus
REPLAY=$B/tests/fuzz-replay
[ -x "$REPLAY" ] || fail "$REPLAY not built (make tests-bin)"

mkdir -p "$TMP/seeds"
"$REPLAY" --make-seeds "$TMP/seeds" || fail "fuzz-replay --make-seeds failed"
inputs=("$ROOT"/fuzz/regressions/* "$TMP"/seeds/*)
while IFS= read -r f; do inputs+=("$f"); done < <(find "$CORPUS/bad" -type f | sort)

n=0
for f in "${inputs[@]}"; do
	[ -f "$f" ] || continue
	case $(basename "$f") in README*) continue ;; esac
	out=$("$REPLAY" "$f" 2>&1); rc=$?
	[ $rc -eq 0 ] || { echo "$out" | tail -30 >&2; fail "$f: fuzz-replay exited $rc"; }
	grep -qxF "replayed $f" <<<"$out" || { echo "$out" >&2; fail "$f: not replayed"; }
	n=$((n + 1))
done
[ $n -ge 25 ] || fail "only $n inputs replayed"
pass "$n inputs (fuzz/regressions, fuzz seeds, corpus bad/) replayed without a crash"
