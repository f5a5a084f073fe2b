#!/bin/bash
# Every good corpus image (chains read through their parents) converts to
# raw with the MANIFEST content sha256, and to a flattened dynamic VHD that
# converts back to a raw image with that sha256.
. "$(dirname "$0")/functions.sh"
need_corpus
requires /usr/bin/python3
# hashlib (OpenSSL) is several times faster than sha256sum here
fast_sha() {
	/usr/bin/python3 -c '
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 22), b""):
        h.update(b)
print(h.hexdigest())' "$1"
}
n=0
while IFS=$'\t' read -r path maker type vsize blocks sha rest; do
	[ "$path" = path ] && continue
	"$VHD" convert "$CORPUS/$path" "$TMP/out.raw" >/dev/null 2>"$TMP/err" || fail "$path -> raw: $(cat "$TMP/err")"
	[ "$(stat -c %s "$TMP/out.raw")" = "$vsize" ] || fail "$path: raw output size is not $vsize"
	[ "$(fast_sha "$TMP/out.raw")" = "$sha" ] || fail "$path: raw output sha256 differs from MANIFEST"
	"$VHD" convert "$CORPUS/$path" "$TMP/out.vhd" >/dev/null 2>"$TMP/err" || fail "$path -> vhd: $(cat "$TMP/err")"
	"$VHD" convert "$TMP/out.vhd" "$TMP/back.raw" >/dev/null || fail "$path: flattened VHD -> raw"
	[ "$(fast_sha "$TMP/back.raw")" = "$sha" ] || fail "$path: flattened VHD reads differently"
	rm -f "$TMP/out.raw" "$TMP/out.vhd" "$TMP/back.raw"
	n=$((n + 1))
done < "$CORPUS/MANIFEST.tsv"
[ $n -ge 20 ] || fail "only $n images in MANIFEST.tsv"
pass "$n corpus images convert to raw and to dynamic with their MANIFEST sha256"
