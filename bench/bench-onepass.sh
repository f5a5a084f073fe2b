#!/bin/bash
# bench-onepass.sh - a 15-level chain merged in one pass against pair by pair
# (issue 13).  The chain (tests/tools/mkchain --hot): a base with data, 15
# hidden layers above it that rewrite the same hot places with new data, as
# daily backup snapshots of a disk do, the top layer with two visible
# children (the VM's disk and a snapshot), so the GC's only work is the run
# of 15 layers.  Three ways, on copies of the same SR:
#   one pass   `vhd gc run --once` (the GC plans one commit of l1..l15 into
#              l0 with relink: vhd_commit);
#   pairwise   what the GC did before: `vhd coalesce --relink` of l1, then
#              l2, .. l15, each into l0 (blktap's GC drives `vhd-util
#              coalesce` the same way);
#   reference  blktap's `vhd-util coalesce` pair by pair: not measured when
#              no blktap is installed (not packaged in Debian 12).
# Figures: wall time (median of RUNS), bytes written (write_bytes of
# /proc/PID/io: the process and the children it reaped), against the bytes
# of the merged result (the data present above the base, mkchain's count);
# every visible VHD's content checked unchanged after each way.  Each run
# starts from a fresh copy whose pages are dropped from the page cache.
# Writes $B/bench/onepass.md.  BENCH_QUICK=1: a 256 MiB disk.
. "$(dirname "$0")/functions.sh"
bench_init onepass

MKCHAIN=$B/tests/mkchain
[ -x "$MKCHAIN" ] || die "$MKCHAIN missing (make tests-bin builds it)"
# hot regions: writes of 1-2 MiB at the same places in every layer (a day's
# rewrite of the same database and log files), about 10% of the disk
if [ "$QUICK" = 1 ]; then
	shape=(--size 128M --base-data 32M --writes 6 --min 1M --max 2M)
else
	shape=(--size 2G --base-data 512M --writes 100 --min 1M --max 2M)
fi
SR=$WORK/proto
rm -rf "$SR" && mkdir -p "$SR"
merged=$("$MKCHAIN" "${shape[@]}" --levels 15 --hot --seed 13 "$SR") || die "mkchain failed"
"$VHD" set "$SR/l15.vhd" hidden on > /dev/null &&
	"$VHD" snapshot "$SR/l15.vhd" "$SR/vm.vhd" > /dev/null &&
	"$VHD" snapshot "$SR/l15.vhd" "$SR/snap.vhd" > /dev/null || die "building the SR"
sums() { for f in vm snap; do echo "$f $("$VHDIO" cat "$1/$f.vhd" | sha256sum | cut -c1-64)"; done; }
sums "$SR" > "$WORK/want"
layer_bytes=$(du -cb --apparent-size "$SR"/l[1-9]*.vhd | tail -1 | cut -f1)

# io_run NAME CMD...: run CMD in a shell of its own, append "seconds
# write_bytes" to $WORK/NAME.io (the shell's counters include the children
# it reaped)
io_run() {
	local name=$1; shift
	local t0 t1 wb
	t0=$(date +%s%N)
	wb=$(bash -c '"$@" > /dev/null 2> "'"$WORK"'/stderr" || exit 1
	              sed -n "s/^write_bytes: //p" /proc/$$/io' io_run "$@") ||
		{ cat "$WORK/stderr" >&2; die "$name: $* failed"; }
	t1=$(date +%s%N)
	echo "$(( (t1 - t0) / 1000000 )) $wb" >> "$WORK/$name.io"
}
pairwise() {   # pairwise DIR
	local i
	for i in $(seq 1 15); do "$VHD" coalesce --relink "$1/l$i.vhd" || return 1; done
}
export -f pairwise; export VHD
onepass() { "$VHD" gc run --once --quiet-period 0 --interval 0.05 "$1"; }
export -f onepass

# fresh: a copy of the SR, its pages out of the page cache (only its own:
# the copy would else be written back during the run, and a base already
# cached in large folios counts a whole folio for a 4 KiB write)
fresh() {
	rm -rf "$WORK/w" && cp -a --sparse=always "$SR" "$WORK/w" && sync &&
		python3 -c 'import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$WORK"/w/*.vhd
}
check_result() {   # check_result WAY: one file left below the leaves, contents unchanged
	sums "$WORK/w" > "$WORK/got"
	diff "$WORK/want" "$WORK/got" > /dev/null || die "$1: a visible disk changed"
	[ "$(ls "$WORK/w" | grep -c '\.vhd$')" = 3 ] || die "$1: files left: $(ls "$WORK/w")"
	[ "$("$VHD" depth "$WORK/w/vm.vhd")" = 2 ] || die "$1: the chain is not 2 deep"
}
for _ in $(seq "$RUNS"); do
	fresh; io_run onepass onepass "$WORK/w"; check_result "one pass"
	grep -q "start commit l15.vhd into l0.vhd (layers l1.vhd/" "$WORK/stderr" ||
		die "the GC did not merge the run in one commit: $(grep start "$WORK/stderr")"
	fresh; io_run pairwise pairwise "$WORK/w"; check_result "pairwise"
done
med() { awk -v c="$2" '{print $c}' "$WORK/$1.io" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
blktap=$(apt-cache search --names-only blktap 2> /dev/null)

{
	echo "## One pass per chain: 15 hot-rewriting layers (bench/bench-onepass.sh)"
	echo
	echo "A base and 15 hidden layers rewriting the same places (\`mkchain ${shape[*]} --levels 15 --hot\`):"
	echo "$(awk -v b="$layer_bytes" 'BEGIN {printf "%.0f", b / 1048576}') MiB of layer files, $(awk -v m="$merged" 'BEGIN {printf "%.1f", m / 1048576}') MiB"
	echo "of merged result (data present above the base). \`BENCH=onepass make bench\`; time is the"
	echo "median of $RUNS runs, bytes written are write_bytes of /proc/PID/io; every visible disk's"
	echo "checksum is compared after each run; each run starts on a fresh copy of the SR, its files dropped from the page cache."
	echo
	echo "| way | seconds | MiB written | written / merged result | pairwise time / this |"
	echo "|---|---|---|---|---|"
	for w in onepass pairwise; do
		label=$([ $w = onepass ] && echo "one pass: \`vhd gc run --once\` (one commit of l1..l15)" ||
		        echo "pairwise: \`vhd coalesce --relink\` l1 .. l15 (the GC before)")
		awk -v l="$label" -v ms="$(med $w 1)" -v wb="$(med $w 2)" -v m="$merged" -v pms="$(med pairwise 1)" 'BEGIN {
			printf "| %s | %.2f | %.1f | %.2fx | %.1fx |\n", l, ms / 1000, wb / 1048576, wb / m, pms / ms }'
	done
	echo
	if [ -z "$blktap" ]; then   # (a Debian that packages it: add its row here)
		echo "Reference: blktap's \`vhd-util coalesce\` pair by pair (how XenServer's GC drives it) is not"
		echo "measured: blktap is not packaged in Debian 12 (\`apt-cache search --names-only blktap\` finds nothing) and this"
		echo "machine reaches only Debian's and npm's registries; Xen Orchestra's vhd-lib (npm \`vhd-lib\` 4.15.0)"
		echo "does not install from the npm registry reachable here (\`@vates/diff\` and \`xo-remote-parser\`"
		echo "0.10 are missing)."
	fi
	echo
	echo "Machine: $(machine)."
} > "$OUT"
cat "$OUT"
