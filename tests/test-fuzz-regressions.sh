#!/bin/bash
# Every input saved by the fuzzers (fuzz/regressions/), the corpus's bad
# images and the fuzz seeds go through both fuzz targets' code via their
# replay drivers: fuzz-replay (the library: open strict and LAX, with and
# without parent, info, locators, map, reads, check, dry-run and real
# repair) and fuzz-vhdutil-replay (vhd-util's parser and its check, query,
# read, scan).  None may crash or hang, a dry-run repair must leave each
# file unchanged and a second repair find nothing (the drivers abort
# otherwise).  Under SANITIZE=1 (B=build-san) memory errors and leaks fail
# it too.
. "$(dirname "$0")/functions.sh"
need_corpus
mkdir -p "$TMP/seeds"
"$B/tests/fuzz-replay" --make-seeds "$TMP/seeds" || fail "fuzz-replay --make-seeds failed"
inputs=("$ROOT"/fuzz/regressions/* "$TMP"/seeds/*)
while IFS= read -r f; do inputs+=("$f"); done < <(find "$CORPUS/bad" -type f | sort)

for replay in fuzz-replay fuzz-vhdutil-replay; do
	REPLAY=$B/tests/$replay
	[ -x "$REPLAY" ] || fail "$REPLAY not built (make tests-bin)"
	n=0
	for f in "${inputs[@]}"; do
		[ -f "$f" ] || continue
		case $(basename "$f") in README*) continue ;; esac
		out=$(timeout 120 "$REPLAY" "$f" 2>&1); rc=$?
		[ $rc -eq 0 ] || { echo "$out" | tail -30 >&2; fail "$f: $replay exited $rc"; }
		grep -qxF "replayed $f" <<<"$out" || { echo "$out" >&2; fail "$f: not replayed by $replay"; }
		n=$((n + 1))
	done
	[ $n -ge 25 ] || fail "only $n inputs replayed by $replay"
	echo "$replay: $n inputs replayed"
done
pass "$n inputs (fuzz/regressions, fuzz seeds, corpus bad/) replayed through both fuzz targets without a crash"
