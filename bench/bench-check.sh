#!/bin/bash
# bench-check.sh - `vhd check` of the largest fully allocated dynamic VHD
# (issue 2: target < 1 s), against reading the same metadata in the same run.
#
# Image (bench/tools/mkfull): 2040 GiB virtual, all 1,044,480 2 MiB blocks
# allocated in the BAT and marked full in the batmap, data a hole (the
# file is a sparse ~2 TiB file).  By default the block bitmaps are holes
# too: plain `vhd check` never reads bitmaps, so it does the same work as on
# a fully valid image while the file costs 4 MiB instead of 4 GiB of disk
# (and minutes of writing).  BENCH_CHECK_BITMAPS=1 also measures the fully
# valid image (every bitmap all ones).
# Baselines: dd of the metadata bytes check reads (backup footer, header,
# BAT, batmap; the primary footer is one more sector), and `vhd info`
# (opening the image: reads the same metadata, checks nothing).
# Writes $B/bench/check.md.  BENCH_QUICK=1: an 8 GiB image.
. "$(dirname "$0")/functions.sh"
bench_init check

[ -x "$TOOLS/mkfull" ] || die "$TOOLS/mkfull missing (make bench builds it)"
"$VHD" check --help > /dev/null 2>&1 || die "vhd check is not available"

# make_image NAME [--no-bitmaps]: $WORK/NAME.vhd; prints mkfull's line
make_image() {
	local f=$WORK/$1.vhd; shift
	if [ "${BENCH_KEEP:-0}" = 1 ] && [ -f "$f.made" ] && [ "$f.made" -nt "$TOOLS/mkfull" ]; then
		cat "$f.made"; return
	fi
	[ "$QUICK" = 1 ] && set -- --size 8G "$@"
	"$TOOLS/mkfull" "$@" "$f" > "$f.made" ||
		die "mkfull failed: the filesystem of $WORK must hold a sparse 2 TiB file" \
		    "(ext4, xfs and btrfs do; set BENCH_DIR elsewhere otherwise)"
	cat "$f.made"
}

# bench_image NAME LABEL: the measurements for $WORK/NAME.vhd, one table row
bench_image() {
	local f=$WORK/$1.vhd label=$2 meta
	meta=$(sed -n 's/.*metadata_bytes=\([0-9]*\).*/\1/p' "$f.made")
	[ -n "$meta" ] || die "mkfull printed no metadata size"
	"$VHD" check "$f" > "$WORK/result" 2>&1 || { cat "$WORK/result"; die "$f is not valid"; }
	for _ in $(seq "$RUNS"); do
		timed_cold "$1-check-cold" "$VHD" check "$f"
		timed_cold "$1-dd-cold" dd if="$f" of=/dev/null bs="$meta" count=1 status=none
		timed_cold "$1-info-cold" "$VHD" info "$f"
	done
	for _ in $(seq "$RUNS"); do      # warm: the cold runs above loaded the cache
		timed "$1-check" "$VHD" check "$f"
		timed "$1-dd" dd if="$f" of=/dev/null bs="$meta" count=1 status=none
		timed "$1-info" "$VHD" info "$f"
	done
	local c cc d dc i ic cpu rss
	c=$(median "$1-check") cc=$(median "$1-check-cold") cpu=$(median "$1-check" 4)
	d=$(median "$1-dd") dc=$(median "$1-dd-cold") i=$(median "$1-info") ic=$(median "$1-info-cold")
	rss=$(command -v /usr/bin/time > /dev/null &&
	      /usr/bin/time -f %M "$VHD" check "$f" 2>&1 > /dev/null | tail -1)
	awk -v l="$label" -v m="$meta" -v c="$c" -v cc="$cc" -v cpu="$cpu" -v d="$d" -v dc="$dc" \
	    -v i="$i" -v ic="$ic" -v rss="${rss:-?}" 'BEGIN {
		printf "| %s | %.2f | %.3f | %.3f | %.3f | %.3f | %.1fx | %.3f | %.3f | %.2fx | %s |\n",
		       l, m / 1048576, c, cpu, cc, d, c / d, i, ic, c / i, rss == "?" ? "?" : sprintf("%.1f", rss / 1024) }' \
		>> "$WORK/table"
	echo "$label: check $c s warm (cpu $cpu s), $cc s cold; dd $d s; info $i s"
}

: > "$WORK/table"
echo "generating the image (mkfull --no-bitmaps)"
made=$(make_image holes --no-bitmaps) || exit 1
bench_image holes "bitmaps left holes"
if [ "${BENCH_CHECK_BITMAPS:-0}" = 1 ]; then
	[ "$(free_mib "$WORK")" -gt 6144 ] || die "BENCH_CHECK_BITMAPS=1 needs 6 GiB free in $WORK"
	echo "generating the valid image (mkfull: 4 GiB of bitmap writes, minutes)"
	make_image valid > /dev/null || exit 1
	bench_image valid "valid (all-ones bitmaps)"
fi

blocks=$(echo "$made" | sed -n 's/.*blocks=\([0-9]*\).*/\1/p')
size=$(echo "$made" | sed -n 's/.*file_size=\([0-9]*\).*/\1/p')
{
	echo "## vhd check of a fully allocated 2 TiB dynamic VHD"
	echo
	echo "\`make bench\` or \`BENCH=check sh bench/run.sh\` (bench/bench-check.sh)$( [ "${BENCH_CHECK_BITMAPS:-0}" = 1 ] && echo " with BENCH_CHECK_BITMAPS=1"),"
	echo "$(machine); $(cache_note); median of $RUNS runs."
	echo
	echo "Image (\`build/bench/mkfull FILE\`): 2040 GiB virtual (the largest a fully allocated VHD"
	echo "with 2 MiB blocks can be: 1M blocks at blktap's 2 MiB + 4 KiB stride would need BAT"
	echo "entries beyond the 2^32 sectors they can address), $blocks blocks all allocated and marked"
	echo "full in the batmap, data a hole: a sparse file of $size bytes.  Plain \`vhd check\` reads"
	echo "the footers, header, BAT and batmap (never a bitmap); it reports the image valid."
	echo "\"bitmaps left holes\" is \`mkfull --no-bitmaps\` (4 MiB of disk), on which plain check does"
	echo "exactly the same work; BENCH_CHECK_BITMAPS=1 adds the fully valid image (4 GiB of disk)."
	echo
	echo "Command: \`vhd check FILE\`.  Baselines in the same run: dd = \`dd if=FILE of=/dev/null"
	echo "bs=METADATA count=1\` (the metadata bytes check reads), info = \`vhd info FILE\` (opening the"
	echo "image, which reads the same metadata and checks nothing).  For context (issue 2): blktap's"
	echo "\`vhd-util check\` takes ~8 s at 128 GiB allocated (its BAT-overlap test is O(n²))."
	echo
	echo "| image | metadata MiB | check s (warm) | check CPU s (user+sys) | check s (cold) | dd s (warm) | check / dd | info s (warm) | info s (cold) | check / info | check peak RSS MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	cat "$WORK/table"
	echo
	echo "Wall times include starting the process; the machine is shared (see load average), so"
	echo "CPU time is the steadier figure."
} > "$OUT"
cat "$OUT"
