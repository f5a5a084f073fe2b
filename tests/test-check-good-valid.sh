#!/bin/bash
# vhd check calls every good corpus image valid (exit 0), alone and with its
# chain, in text and JSON; qemu's force_size geometry is only a note.
. "$(dirname "$0")/functions.sh"
need_corpus
requires jq
n=0
while IFS=$'\t' read -r path _; do
	[ "$path" = path ] && continue
	f=$CORPUS/$path
	out=$("$VHD" check --chain --data "$f") || fail "$path: exit $?: $out"
	[ "$(tail -n1 <<<"$out")" = "$f is valid" ] || fail "$path: verdict: $out"
	grep -v -e ': note: ' -e ' is valid$' <<<"$out" && fail "$path: problem lines for a valid image"
	json=$("$VHD" check --json "$f") || fail "$path: --json exit $?"
	[ "$(jq -r '.valid' <<<"$json")" = true ] || fail "$path: json valid: $json"
	[ "$(jq '.problems | length' <<<"$json")" = 0 ] || fail "$path: json problems: $json"
	n=$((n + 1))
done <"$CORPUS/MANIFEST.tsv"
[ $n -ge 20 ] || fail "only $n good images read from MANIFEST.tsv"
# the force_size geometry blktap rejects is reported as a note
out=$("$VHD" check "$CORPUS/good/qemu-dyn-forcesize.vhd")
grep -q "note: geometry 65535/16/255" <<<"$out" || fail "no force_size note: $out"
# several files at once: one verdict each
out=$("$VHD" check "$CORPUS/good/tap-fixed.vhd" "$CORPUS/good/tap-dyn-empty-1g.vhd") || fail "two files: $out"
[ "$(grep -c ' is valid$' <<<"$out")" = 2 ] || fail "two files: $out"
pass "$n good images valid (with --chain --data, and --json), force_size geometry only noted"
