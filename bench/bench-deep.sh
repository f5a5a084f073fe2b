#!/bin/bash
# bench-deep.sh - sequential read through a 30-level chain (the XenServer
# limit) against two baselines measured in the same run (issue 11): the raw
# read of the 30 files' stored bytes (goal >= 0.8x) and a raw copy of the
# same virtual content read flat (goal >= 0.6x), with the library's read
# path and over NBD.
#
# Chain (`mkread --levels 30`): l0.vhd with every block written, then 29
# snapshots, each with ~3% of the disk in scattered writes of 4-64 KiB and
# 1% of the blocks written whole.  Local chain read: `vhd-io cat l29.vhd`
# (vhd_pread, 4 MiB per call).  Stored read: `rawread --chunk 4096` of the
# 30 files' data extents.  Flat read: the same of flat.raw.  Over NBD:
# `nbdcopy` to null: from `vhd serve --read-only` on the leaf, and from
# `nbdkit file` on flat.raw.  Cold runs drop only these files' pages
# (posix_fadvise DONTNEED through `dd iflag=nocache`), not the machine's
# whole page cache.  A, B, C interleaved in every round; medians.
# BENCH_VHDIO=/other/build/tests/vhd-io: another build's reader (before/
# after).  Writes $B/bench/deep.md.  BENCH_QUICK=1: 32 MiB, one run.
. "$(dirname "$0")/functions.sh"
bench_init deep
WORK=$(realpath "$WORK")
export PATH=/usr/bin:$PATH

VHDIO=${BENCH_VHDIO:-$VHDIO}
[ -x "$TOOLS/mkread" ] && [ -x "$TOOLS/rawread" ] || die "bench tools missing (make bench builds them)"
for c in nbdkit nbdcopy nbdinfo; do command -v $c >/dev/null || die "$c missing (make deps)"; done
size=${BENCH_DEEP_MIB:-1024} levels=30
[ "$QUICK" = 1 ] && size=32
[ "$(free_mib "$WORK")" -gt $((size * 4)) ] || die "needs $((size * 4)) MiB free in $WORK"

rm -f "$WORK"/*.vhd "$WORK"/flat.raw "$WORK"/*.sock
echo "generating a $levels-level chain of $size MiB (mkread --levels $levels --size $size)"
"$TOOLS/mkread" --levels $levels --size "$size" --seed 11 "$WORK" >/dev/null || die "mkread failed"
leaf=$WORK/l$((levels - 1)).vhd
files=$(for l in $(seq 0 $((levels - 1))); do echo "$WORK/l$l.vhd"; done)
"$VHD" convert --raw "$leaf" "$WORK/flat.raw" >/dev/null || die "convert to raw failed"
"$VHDIO" cat "$leaf" | cmp - "$WORK/flat.raw" || die "chain read differs from vhd convert"
virtual=$(stat -c %s "$WORK/flat.raw")
RAW="$TOOLS/rawread --chunk 4096"
# shellcheck disable=SC2086
stored=$($RAW $files | sed -n 's/bytes=//p')
sync

sock=$WORK/nbd.sock
nbd_start() {   # vhd|file
	case $1 in
	vhd)  "$VHD" serve --read-only --socket "$sock" "$leaf" 2>"$WORK/server.log" & ;;
	file) nbdkit -f -U "$sock" file "$WORK/flat.raw" 2>"$WORK/server.log" & ;;
	esac
	SERVER=$!
	nbd_wait "$sock" "$WORK/server.log" "$1"
}
nbd_stop() { kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null; rm -f "$sock"; }
NBDCOPY="nbdcopy nbd+unix:///?socket=$sock null:"

# run CACHE NAME FILE... -- CMD...: time CMD into NAME-CACHE.runs; cold:
# the FILEs are dropped from the page cache first
run() {
	local cache=$1 name=$2 fs=()
	shift 2
	while [ "$1" != -- ]; do fs+=("$1"); shift; done
	shift
	[ "$cache" = cold ] && forget "${fs[@]}"
	timed "$name-$cache" "$@"
}
round() {   # cold|warm: every reader once
	# shellcheck disable=SC2086
	run "$1" chain $files -- "$VHDIO" cat "$leaf"
	# shellcheck disable=SC2086
	run "$1" stored $files -- $RAW $files
	# shellcheck disable=SC2086
	run "$1" flat "$WORK/flat.raw" -- $RAW "$WORK/flat.raw"
	nbd_start vhd
	# shellcheck disable=SC2086
	run "$1" nbdchain $files -- $NBDCOPY
	nbd_stop
	nbd_start file
	# shellcheck disable=SC2086
	run "$1" nbdflat "$WORK/flat.raw" -- $NBDCOPY
	nbd_stop
}
for _ in $(seq "$RUNS"); do round cold; done
"$VHDIO" cat "$leaf" >/dev/null
# shellcheck disable=SC2086
cat $files "$WORK/flat.raw" >/dev/null
for _ in $(seq "$RUNS"); do round warm; done
/usr/bin/time -f %M -o "$WORK/chain.rss" "$VHDIO" cat "$leaf" >/dev/null
# the nbdkit process of vhd serve: CPU and peak RSS over one warm copy
nbd_start vhd
npid=$(pgrep -P "$SERVER" nbdkit || echo "$SERVER")
cpu0=$(awk '{print $14 + $15}' "/proc/$npid/stat")
$NBDCOPY
cpu1=$(awk '{print $14 + $15}' "/proc/$npid/stat")
nbd_rss=$(awk '/^VmHWM/ {print $2}' "/proc/$npid/status")
nbd_stop
nbd_cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v v="$virtual" -v hz="$(getconf CLK_TCK)" \
	'BEGIN {printf "%.2f", (b - a) / hz / (v / 1073741824)}')

row() {   # PATH CACHE CHAIN STORED FLAT
	awk -v p="$1" -v l="$2" -v v="$virtual" -v s="$stored" -v c="$(median "$3")" \
	    -v ccpu="$(median "$3" 4)" -v t="$(median "$4")" -v f="$(median "$5")" 'BEGIN {
		mb = 1048576; cr = v / mb / c; sr = s / mb / t; fr = v / mb / f
		printf "| %s %s | %.0f | %.2f | %.0f | %.0f | **%.2f** | **%.2f** |\n",
		       p, l, cr, ccpu / (v / 1073741824), sr, fr, cr / sr, cr / fr }'
}
rows=$(row local cold chain-cold stored-cold flat-cold; row local warm chain-warm stored-warm flat-warm
       row NBD cold nbdchain-cold stored-cold nbdflat-cold; row NBD warm nbdchain-warm stored-warm nbdflat-warm)
echo "$rows"
{
	echo "## Sequential read through a 30-level chain"
	echo
	echo "\`make bench\` or \`BENCH=deep sh bench/run.sh\` (bench/bench-deep.sh), $(machine);"
	echo "median of $RUNS runs, every reader once in each round.  Cold: the files read were"
	echo "dropped from the page cache first (\`dd iflag=nocache count=0\`: posix_fadvise DONTNEED"
	echo "of those files only)."
	echo
	echo "Chain (\`build/bench/mkread --levels 30 --size $size --seed 11\`): l0.vhd with every"
	echo "block written, l1..l29.vhd snapshots each holding ~3% of the disk in scattered writes of"
	echo "4-64 KiB plus 1% of the blocks written whole; $stored bytes stored in the 30 files."
	echo "Local: \`build/tests/vhd-io cat l29.vhd\` (vhd_pread, 4 MiB per call), $virtual bytes."
	echo "NBD: \`nbdcopy nbd+unix:///?socket=S null:\` from \`vhd serve --read-only l29.vhd\`; its"
	echo "flat baseline is \`nbdcopy\` from \`nbdkit file flat.raw\`.  Stored: \`build/bench/rawread"
	echo "--chunk 4096 l0.vhd ... l29.vhd\` (the files' data extents in 4 MiB preads).  Flat (local):"
	echo "the same of flat.raw (\`vhd convert --raw\` of the leaf).  MiB/s = bytes delivered / wall"
	echo "time; goals: chain/stored >= 0.8, chain/flat >= 0.6.  CPU s per GiB: the reader's user+sys"
	echo "(local: vhd-io; NBD: nbdcopy, the client)."
	echo
	echo "| path, cache | chain MiB/s | chain CPU s per GiB | stored MiB/s | flat MiB/s | chain/stored | chain/flat |"
	echo "|---|---|---|---|---|---|---|"
	echo "$rows"
	echo
	echo "Peak RSS: vhd-io cat $(cat "$WORK/chain.rss") KiB; vhd serve's nbdkit $nbd_rss KiB (VmHWM)"
	echo "and $nbd_cpu CPU s (user+sys, /proc/PID/stat) per GiB moved in one warm nbdcopy."
	echo
} > "$OUT"
echo "wrote $OUT"
