#!/bin/bash
# bench-deep.sh - sequential read through a 30-level chain (the XenServer
# limit) against two baselines measured in the same run (issue 11): the raw
# read of the 30 files' stored bytes (goal >= 0.8x) and a raw copy of the
# same virtual content read flat (goal >= 0.6x).
#
# Chain: base.vhd of SIZE MiB with every block written, then 29 snapshots,
# each with WRITES random writes of 4 KiB to 1 MiB at 4 KiB offsets.  Chain
# read: `vhd-io cat l29.vhd` (vhd_pread, 4 MiB per call).  Stored read:
# `rawread --chunk 4096` of the 30 files' data extents.  Flat read: the
# same of flat.raw (`vhd-io cat l29.vhd > flat.raw`).  Peak RSS and CPU
# per GiB delivered from GNU time.  Writes $B/bench/deep.md.
# BENCH_QUICK=1: 32 MiB, one run.
. "$(dirname "$0")/functions.sh"
bench_init deep

VHDIO=${BENCH_VHDIO:-$VHDIO}   # BENCH_VHDIO: another build's reader, for before/after
[ -x "$TOOLS/rawread" ] || die "bench tools missing (make bench builds them)"
size=${BENCH_DEEP_MIB:-1024} writes=${BENCH_DEEP_WRITES:-40} levels=30 maxlen=${BENCH_DEEP_MAXKIB:-1024}
[ "$QUICK" = 1 ] && size=32 writes=10
[ "$(free_mib "$WORK")" -gt $((size * 3)) ] || die "needs $((size * 3)) MiB free in $WORK"

rm -f "$WORK"/*.vhd "$WORK"/flat.raw
echo "generating a $levels-level chain of $size MiB ($writes writes per snapshot)"
"$VHD" create "$WORK/l0.vhd" "${size}M" >/dev/null || die "create failed"
head -c "$((size << 20))" /dev/urandom | "$VHDIO" write "$WORK/l0.vhd" 0 || die "base write failed"
RANDOM=11   # reproducible positions
for l in $(seq 1 $((levels - 1))); do
	"$VHD" snapshot "$WORK/l$((l - 1)).vhd" "$WORK/l$l.vhd" >/dev/null || die "snapshot $l failed"
	for _ in $(seq "$writes"); do
		len=$(( (1 + RANDOM % (maxlen / 4)) * 4096 ))
		off=$(( (RANDOM * 32768 + RANDOM) % ((size << 20) - len) / 4096 * 4096 ))
		head -c "$len" /dev/urandom | "$VHDIO" write "$WORK/l$l.vhd" "$off" || die "write failed"
	done
done
leaf=$WORK/l$((levels - 1)).vhd
files=$(for l in $(seq 0 $((levels - 1))); do echo "$WORK/l$l.vhd"; done)
"$VHDIO" cat "$leaf" > "$WORK/flat.raw" || die "chain read failed"
virtual=$(stat -c %s "$WORK/flat.raw")
RAW="$TOOLS/rawread --chunk 4096"
# shellcheck disable=SC2086
stored=$($RAW $files | sed -n 's/bytes=//p')

# rss NAME CMD...: peak RSS (KiB) of CMD into $WORK/NAME.rss
rss() { local n=$1; shift; /usr/bin/time -f %M -o "$WORK/$n.rss" "$@" > /dev/null; }
for _ in $(seq "$RUNS"); do
	timed_cold chain-cold "$VHDIO" cat "$leaf"
	# shellcheck disable=SC2086
	timed_cold stored-cold $RAW $files
	timed_cold flat-cold $RAW "$WORK/flat.raw"
done
timed warmup "$VHDIO" cat "$leaf"
for _ in $(seq "$RUNS"); do
	timed chain-warm "$VHDIO" cat "$leaf"
	# shellcheck disable=SC2086
	timed stored-warm $RAW $files
	timed flat-warm $RAW "$WORK/flat.raw"
done
rss chain "$VHDIO" cat "$leaf"
# shellcheck disable=SC2086
rss stored $RAW $files

row() {   # LABEL CHAIN STORED FLAT
	awk -v l="$1" -v v="$virtual" -v s="$stored" -v c="$(median "$2")" -v ccpu="$(median "$2" 4)" \
	    -v t="$(median "$3")" -v f="$(median "$4")" 'BEGIN {
		mb = 1048576; cr = v / mb / c; sr = s / mb / t; fr = v / mb / f
		printf "| %s | %.0f | %.2f | %.0f | %.0f | **%.2f** | **%.2f** |\n",
		       l, cr, ccpu / (v / 1073741824), sr, fr, cr / sr, cr / fr }'
}
rows=$(row cold chain-cold stored-cold flat-cold; row warm chain-warm stored-warm flat-warm)
echo "$rows"
{
	echo "## Sequential read through a 30-level chain"
	echo
	echo "\`BENCH=deep sh bench/run.sh\` (bench/bench-deep.sh), $(machine); $(cache_note);"
	echo "median of $RUNS runs, the three reads interleaved."
	echo
	echo "Chain: l0.vhd of $size MiB with every block written, l1..l29.vhd snapshots with $writes"
	echo "random writes of 4 KiB to 1 MiB each.  Chain read: \`build/tests/vhd-io cat l29.vhd\`"
	echo "($virtual bytes).  Stored read: \`build/bench/rawread --chunk 4096 l0.vhd ... l29.vhd\`"
	echo "($stored bytes).  Flat read: the same of a raw copy of the disk.  MiB/s = bytes"
	echo "delivered / wall time; goals: chain/stored >= 0.8, chain/flat >= 0.6.  Peak RSS: chain"
	echo "$(cat "$WORK/chain.rss") KiB, stored read $(cat "$WORK/stored.rss") KiB."
	echo
	echo "| cache | chain MiB/s | chain CPU s per GiB | stored MiB/s | flat MiB/s | chain/stored | chain/flat |"
	echo "|---|---|---|---|---|---|---|"
	echo "$rows"
} > "$OUT"
echo "wrote $OUT"
