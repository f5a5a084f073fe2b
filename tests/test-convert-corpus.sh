#!/bin/bash
# Every good corpus image (chains read through their parents) converts to
# raw with the MANIFEST content sha256, and to a flattened dynamic VHD that
# converts back to a raw image with that sha256.
. "$(dirname "$0")/functions.sh"
need_corpus
requires /usr/bin/python3
# sha256 of a sparse file, its holes hashed as zeros without reading them
# (hashlib is also several times faster than sha256sum here)
sparse_sha() {
	/usr/bin/python3 -c '
import hashlib, os, sys
h, zero = hashlib.sha256(), bytes(1 << 22)
with open(sys.argv[1], "rb") as f:
    fd, size, pos = f.fileno(), os.fstat(f.fileno()).st_size, 0
    while pos < size:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            data = size
        while pos < data:
            n = min(data - pos, len(zero)); h.update(zero[:n]); pos += n
        end = min(os.lseek(fd, pos, os.SEEK_HOLE), size) if pos < size else size
        while pos < end:
            b = os.pread(fd, min(end - pos, 1 << 22), pos); h.update(b); pos += len(b)
print(h.hexdigest())' "$1"
}
n=0
while IFS=$'\t' read -r path maker type vsize blocks sha rest; do
	[ "$path" = path ] && continue
	"$VHD" convert "$CORPUS/$path" "$TMP/out.raw" >/dev/null 2>"$TMP/err" || fail "$path -> raw: $(cat "$TMP/err")"
	[ "$(stat -c %s "$TMP/out.raw")" = "$vsize" ] || fail "$path: raw output size is not $vsize"
	[ "$(sparse_sha "$TMP/out.raw")" = "$sha" ] || fail "$path: raw output sha256 differs from MANIFEST"
	"$VHD" convert "$CORPUS/$path" "$TMP/out.vhd" >/dev/null 2>"$TMP/err" || fail "$path -> vhd: $(cat "$TMP/err")"
	"$VHD" convert "$TMP/out.vhd" "$TMP/back.raw" >/dev/null || fail "$path: flattened VHD -> raw"
	[ "$(sparse_sha "$TMP/back.raw")" = "$sha" ] || fail "$path: flattened VHD reads differently"
	rm -f "$TMP/out.raw" "$TMP/out.vhd" "$TMP/back.raw"
	n=$((n + 1))
done < "$CORPUS/MANIFEST.tsv"
[ $n -ge 20 ] || fail "only $n images in MANIFEST.tsv"
pass "$n corpus images convert to raw and to dynamic with their MANIFEST sha256"
