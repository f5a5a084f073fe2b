#!/bin/bash
# Every good corpus image reads back, through its chain, with the sha256 of
# MANIFEST.tsv, and `vhd info --json` reports its virtual size and type.
. "$(dirname "$0")/functions.sh"
need_corpus
n=0
while IFS=$'\t' read -r path maker type vsize blocks sha rest; do
	[ "$path" = path ] && continue
	f=$CORPUS/$path
	got=$(content_sha "$f") || fail "$path: read failed"
	[ "$got" = "$sha" ] || fail "$path: content sha256 $got, MANIFEST says $sha"
	size=$("$VHD" info --json "$f" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual_size"])') \
		|| fail "$path: info --json failed"
	[ "$size" = "$vsize" ] || fail "$path: info says virtual size $size, MANIFEST $vsize"
	n=$((n + 1))
done < "$CORPUS/MANIFEST.tsv"
[ $n -ge 20 ] || fail "only $n images in MANIFEST.tsv"
pass "$n corpus images read back with their MANIFEST sha256"
