#!/bin/bash
# bench-fuzz.sh - how fast `make fuzz` goes and how far it gets: each
# libFuzzer target run by fuzz/run.sh (`FUZZ_TARGETS=T FUZZ_SECONDS=S`) for
# BENCH_FUZZ_SECONDS (default 120; BENCH_QUICK: 5) from the seeds into a
# fresh corpus; inputs run per second of wall time and per CPU-second
# (user+sys: the machine is shared, the steadier figure), and libFuzzer's
# cov (edges) and ft (features) at the end.  Baseline in the same run: the
# final corpus through the replay driver (`fuzz-replay --once`: the same
# code built by the normal compiler, no sanitizer, no coverage
# instrumentation): what the library's work per input costs, so that
# fuzz / replay is what instrumentation and sanitizers cost.
# Writes $B/bench/fuzz.md.
. "$(dirname "$0")/functions.sh"
bench_init fuzz
command -v clang >/dev/null || die "clang missing (make deps)"
secs=${BENCH_FUZZ_SECONDS:-120}
[ "$QUICK" = 1 ] && secs=5
make -s -C "$ROOT" B="$B" fuzz-bin || die "make fuzz-bin failed"

rows=
for target in open-check vhdutil; do
	replay=$B/tests/fuzz-replay
	[ $target = vhdutil ] && replay=$B/tests/fuzz-vhdutil-replay
	rm -rf "$WORK/corpus" "$WORK/art-"*
	log=$WORK/$target.log
	{ time FUZZ_TARGETS=$target FUZZ_SECONDS=$secs FUZZ_CORPUS=$WORK/corpus \
		FUZZ_ARTIFACTS=$WORK/art- B=$B sh "$ROOT/fuzz/run.sh" >"$log" 2>&1; } 2>"$WORK/$target.time" ||
		{ tail -20 "$log" >&2; die "fuzz-$target failed (see $log)"; }
	read -r wall user sys < "$WORK/$target.time"
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$done_line")
	ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$done_line")
	[ -n "$runs" ] && [ -n "$cov" ] && [ -n "$ft" ] || die "fuzz-$target: no final stats in $log"
	inputs=("$WORK/corpus/$target"/*)
	{ time "$replay" --once "${inputs[@]}" >/dev/null 2>&1; } 2>"$WORK/$target-replay.time" ||
		die "$replay --once failed on the corpus"
	read -r _ ruser rsys < "$WORK/$target-replay.time"
	rows+=$(awk -v t="fuzz-$target" -v s="$secs" -v n="$runs" -v w="$wall" -v u="$user" \
		-v y="$sys" -v c="$cov" -v f="$ft" -v k="${#inputs[@]}" -v ru="$ruser" -v ry="$rsys" \
		'BEGIN { cpu = u + y; rc = ru + ry; if (rc < 0.01) rc = 0.01
		         printf "| %s | %d | %d | %.0f | %.0f | %d | %d | %d | %.0f | %.2f |\n",
		         t, s, n, n / w, n / cpu, c, f, k, k / rc, (n / cpu) / (k / rc) }')$'\n'
done

{
	echo "## Fuzzing"
	echo
	echo "\`make bench\` or \`BENCH=fuzz sh bench/run.sh\` (bench/bench-fuzz.sh), $(machine)."
	echo
	echo "Each target as \`make fuzz\` runs it: \`FUZZ_TARGETS=T FUZZ_SECONDS=$secs sh fuzz/run.sh\`"
	echo "(libFuzzer, clang -O2, ASan+UBSan, from the seeds into a fresh corpus; an input of"
	echo "fuzz-open-check is opened strict and LAX, with and without its parent, mapped, read, checked"
	echo "twice, dry-run repaired twice and repaired twice; one of fuzz-vhdutil goes through the vu_*"
	echo "opens and 13 vhd-util commands).  Baseline in the same run: the final corpus through"
	echo "\`fuzz-replay --once\` (same code, normal compiler, no sanitizers or instrumentation)."
	echo "Times include making the seeds (fuzz-bin is built before)."
	echo
	echo "| target | seconds | inputs run | inputs/s | inputs per CPU-second | cov | ft | corpus inputs | replay inputs per CPU-second | fuzz / replay |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	printf '%s' "$rows"
	echo
	echo "An hour of \`make fuzz\` runs both targets side by side, one per core, for 3600 s: about"
	echo "inputs per CPU-second x 3600 inputs of each on an idle 2-core machine (\`FUZZ_JOBS=N\`: N workers each).  fuzz / replay is the fuzzer's speed as a fraction of"
	echo "the uninstrumented code's on the same inputs: the rest of each input's time is the"
	echo "library's own work (opening, checking, repairing), which no harness can cut without"
	echo "checking less."
	echo
	# measured once, by hand, when the harness was reworked (issue 10)
	cat <<'HISTORY'
fuzz-open-check before and after its rework (issue 10, 2026-12-03, 2 cores, load average 7-11):
the old harness ran every input alone and beside a parent with four opens, three checks and a
check gate in each place; the new one runs an input that cannot be a differencing disk (no
footer with type 4 anywhere in it) once per kind of open, since alone or beside a parent, with
or without a parent lookup, it takes the same paths, and makes two checks (without data,
parents optional, no time test; with data, the time test and the chain) that take every branch
the three took, and is built -O2 instead of -O1.  Same 382 inputs (the corpus of 120 s of the
old harness), each run 3 times (`fuzz-open-check -runs=3 FILE...`), 5 alternating runs, median:
239 inputs per CPU-second before, 262 after.  Source coverage of lib/ on those inputs (clang
-fprofile-instr-generate -fcoverage-mapping, `-runs=0`, `llvm-cov report`): 46.95% of lines and
40.17% of branches before and after alike.  Where the rest goes (perf): 55% of the fuzzer's time
is vhd_check, and 40% of that is parent_mismatch (lib/check.c) opening the parent whole (BAT,
batmap) for each locator to compare one UUID; 10-15% are page faults and memset of block-sized
buffers allocated at each open.  Inputs stay in files on /dev/shm (tmpfs): the library opens
images by path and looks for parents beside them, where a memfd's /proc/self/fd/N name would
send the parent lookups to /proc/self/fd.
fuzz-vhdutil's reach, measured the same way on its corpus after 180 s of `make fuzz` (319
inputs): 86% of the lines and 80% of the branches of vhdutil/ctx.c, check.c, query.c, read.c
and scan.c, the files its commands run (vhd-util's writing commands are not fuzzed).  In those
180 s it found nothing new; its first replay of fuzz/regressions hung in `check -p`, which
followed a loop of locators for ever (now -ELOOP after 256 files), and a crafted input for the
BAT and batmap reads it exercises showed a batmap header making it allocate 512 MiB for a file
of 3.5 KiB (now refused before the allocation).
HISTORY
} > "$OUT"
cat "$OUT"
