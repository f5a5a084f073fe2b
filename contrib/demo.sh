#!/bin/sh
# demo.sh - `make demo`: a generated sample chain, shown and merged.
set -e
B=${B:-build}
VHD=$B/vhd IO=$B/tests/vhd-io
[ -x "$IO" ] || make -s tests-bin >/dev/null
D=$(mktemp -d /tmp/vhdkit-demo.XXXXXX)
trap 'rm -rf "$D"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

run "$VHD" create "$D/base.vhd" 256M
say "write 64 MiB of data into base.vhd"
head -c 67108864 /dev/urandom | "$IO" write "$D/base.vhd" 0
run "$VHD" snapshot "$D/base.vhd" "$D/snap1.vhd"
run "$VHD" set "$D/base.vhd" hidden on
say "write 1 MiB at an odd sector offset into snap1.vhd (crosses a block edge)"
head -c 1048576 /dev/urandom | "$IO" write "$D/snap1.vhd" $((2097152 - 8 * 512))
run "$VHD" snapshot "$D/snap1.vhd" "$D/leaf.vhd"
run "$VHD" set "$D/snap1.vhd" hidden on
say "write 4 MiB into leaf.vhd"
head -c 4194304 /dev/urandom | "$IO" write "$D/leaf.vhd" 100663296
run "$VHD" tree "$D"
run "$VHD" check --chain "$D/leaf.vhd"
run "$VHD" info "$D/leaf.vhd"
run "$VHD" depth "$D/leaf.vhd"
before=$("$IO" cat "$D/leaf.vhd" | sha256sum | cut -c1-16)
say "content of leaf.vhd: sha256 $before..."
run "$VHD" coalesce --relink --progress=json --rate-limit 200M "$D/snap1.vhd"
run "$VHD" depth "$D/leaf.vhd"
after=$("$IO" cat "$D/leaf.vhd" | sha256sum | cut -c1-16)
say "content of leaf.vhd: sha256 $after... ($( [ "$before" = "$after" ] && echo unchanged || echo CHANGED))"
run "$VHD" tree "$D"
run "$VHD" convert "$D/leaf.vhd" "$D/leaf.raw"
say "leaf.raw: $(du -h --apparent-size "$D/leaf.raw" | cut -f1) apparent, $(du -h "$D/leaf.raw" | cut -f1) on disk (sparse)"
[ "$before" = "$after" ]
