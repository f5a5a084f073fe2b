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
[ "$before" = "$after" ] || exit 1

say "the garbage collector: an SR with 8 levels of hidden snapshots, each with an empty visible sibling"
SR=$D/sr
mkdir "$SR"
"$VHD" create "$SR/l0.vhd" 256M >/dev/null
head -c 33554432 /dev/urandom | "$IO" write "$SR/l0.vhd" 0
for i in 1 2 3 4 5 6 7 8; do
	"$VHD" snapshot "$SR/l$((i - 1)).vhd" "$SR/l$i.vhd" >/dev/null
	"$VHD" snapshot "$SR/l$((i - 1)).vhd" "$SR/s$i.vhd" >/dev/null
	"$VHD" set "$SR/l$((i - 1)).vhd" hidden on >/dev/null
	head -c 8388608 /dev/urandom | "$IO" write "$SR/l$i.vhd" $((i * 16777216))
done
sum=$("$IO" cat "$SR/l8.vhd" | sha256sum | cut -c1-16)
run "$VHD" depth "$SR/l8.vhd"
run "$VHD" tree "$SR"
say "the old snapshots are deleted: every hidden node now has one child"
rm -f "$SR"/s*.vhd
say "$VHD gc run --once --quiet-period 0 --rate-limit 40M $SR &   (while 'vhd gc status' watches)"
"$VHD" gc run --once --quiet-period 0 --rate-limit 40M "$SR" 2>"$D/gc.log" &
gc=$!
sleep 1
while kill -0 $gc 2>/dev/null; do
	"$VHD" gc status "$SR" 2>/dev/null | head -4 || true
	sleep 1
done
wait $gc || { cat "$D/gc.log"; exit 1; }
run cat "$D/gc.log"
run "$VHD" tree "$SR"
run "$VHD" depth "$SR/l8.vhd"
say "content of l8.vhd: $sum... before, $("$IO" cat "$SR/l8.vhd" | sha256sum | cut -c1-16)... after"
[ "$sum" = "$("$IO" cat "$SR/l8.vhd" | sha256sum | cut -c1-16)" ]
