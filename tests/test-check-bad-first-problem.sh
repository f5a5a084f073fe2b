#!/bin/bash
# vhd check calls every bad corpus case invalid (exit 3), and its first
# problem names the defect blktap's `vhd-util check` names first (taken from
# the recorded outputs in expected/; paths reduced to their file names).
. "$(dirname "$0")/functions.sh"
need_corpus
requires jq

# a line with every word holding a '/' (a path) cut down to its file name
norm() { sed -E 's#[^ ]*/([^/ ]+)#\1#g'; }

# first_ok CASE EXPECTED_FILE [OPTIONS]: our first problem starts with blktap's
first_ok() {
	local path=$1 expected=$2; shift 2
	local f=$CORPUS/$path want got out rc
	want=$(head -n1 "$expected" | norm)
	[ -n "$want" ] || fail "$path: empty $expected"
	out=$("$VHD" check "$@" "$f"); rc=$?
	[ $rc = 3 ] || fail "$path: exit $rc, expected 3: $out"
	got=$(head -n1 <<<"$out")
	case $got in "$f: "*) ;; *) fail "$path: first line does not name the file: $got" ;; esac
	got=$(sed "s#^$f: ##" <<<"$got" | norm)
	case $got in "$want"*) ;; *) fail "$path: first problem '$got', blktap: '$want'" ;; esac
	# the verdict counts the problem lines
	local lines count
	lines=$(grep -c -v -e ': note: ' <<<"$out")
	count=$(tail -n1 <<<"$out" | sed -nE 's/.*: ([0-9]+) problems?$/\1/p')
	[ "$count" = $((lines - 1)) ] || fail "$path: verdict says '$count', $((lines - 1)) lines: $out"
	# JSON: invalid, same first message
	local j
	j=$("$VHD" check --json "$@" "$f"); rc=$?
	[ $rc = 3 ] || fail "$path: --json exit $rc"
	[ "$(jq -r .valid <<<"$j")" = false ] || fail "$path: json valid: $j"
	[ "$(jq -r '.problems[0].message' <<<"$j" | norm)" = "$got" ] || fail "$path: json first: $j"
	[ "$(jq '.problems | length' <<<"$j")" = "$count" ] || fail "$path: json count: $j"
}

n=0
while IFS=$'\t' read -r path _; do
	[ "$path" = path ] && continue
	exp=$CORPUS/expected/$(sed 's#/#__#g' <<<"$path")
	if grep -q ' is valid$' "$exp.check.txt"; then
		# plain blktap check passes (the defect is in the data): so does ours
		out=$("$VHD" check "$CORPUS/$path") || fail "$path: blktap says valid, we: $out"
		first_ok "$path" "$exp.check-b.txt" --data
	else
		first_ok "$path" "$exp.check.txt"
	fi
	n=$((n + 1))
done <"$CORPUS/BAD.tsv"
[ $n -ge 18 ] || fail "only $n bad cases read from BAD.tsv"

# could not run: exit 1; usage: exit 2
expect_exit 1 "$VHD" check "$TMP/missing.vhd"
expect_exit 2 "$VHD" check
expect_exit 2 "$VHD" check --bogus "$CORPUS/good/tap-fixed.vhd"
pass "$n bad cases invalid, first problem as blktap's; missing file exit 1, usage exit 2"
