#!/bin/bash
# Sector-granular writes (any sector offset, lengths of 4-16 KiB plus 0-7
# sectors, as guests with 512-byte sectors write) merged into a parent full
# of data and into a sparse one: the base then reads as the child did, its
# own extents are exactly what the chain held (holes stay holes: no sector
# outside them is marked) and `vhd check --data` finds it clean.  Each page
# a write's edge cuts holds parent bytes the merge must keep.  Run on the
# test directory's filesystem and, where it is another filesystem, on
# /dev/shm (where direct reads of the layers may be refused and the merge
# reads through the page cache).
. "$(dirname "$0")/functions.sh"
MKCHAIN=$B/tests/mkchain

# union of `vhd map --chain` extents, adjacent ones joined: OFFSET LENGTH
chain_extents() {
	"$VHD" map --chain "$1" | sort -n | awk '
		NR > 1 && $1 == end { end += $2; next }
		NR > 1 { print start, end - start }
		{ start = $1; end = $1 + $2 }
		END { if (NR) print start, end - start }'
}

# merge_one DIR BASE_DATA SEED: build, coalesce, compare
merge_one() {
	local dir=$1 base_data=$2 seed=$3 want extents
	mkdir -p "$dir"
	"$MKCHAIN" --size 64M --base-data "$base_data" --writes 600 --min 4K --max 16K --align 512 \
		--seed "$seed" "$dir" > /dev/null || fail "$dir: mkchain failed"
	want=$(content_sha "$dir/l1.vhd")
	extents=$(chain_extents "$dir/l1.vhd")
	expect_exit 0 "$VHD" coalesce "$dir/l1.vhd"
	[ "$(content_sha "$dir/l0.vhd")" = "$want" ] || fail "$dir: base does not read as the child did"
	[ "$(content_sha "$dir/l1.vhd")" = "$want" ] || fail "$dir: child changed"
	[ "$("$VHD" map "$dir/l0.vhd")" = "$extents" ] ||
		fail "$dir: base extents differ from the chain's ($base_data of parent data)"
	expect_exit 0 "$VHD" check --data "$dir/l0.vhd"
}

dirs=("$TMP")
shm_dir=
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" != "$(stat -f -c %T "$TMP")" ]; then
	shm_dir=$(mktemp -d /dev/shm/vhdkit-test.XXXXXX) || fail "mktemp in /dev/shm"
	trap 'rm -rf "$TMP" "$shm_dir"' EXIT
	dirs+=("$shm_dir")
fi
n=0
for d in "${dirs[@]}"; do
	merge_one "$d/full" 64M $((n + 1))
	merge_one "$d/sparse" 16M $((n + 2))
	n=$((n + 2))
done
pass "$n sector-granular merges (full and sparse parent) on $(for d in "${dirs[@]}"; do stat -f -c %T "$d"; done | tr '\n' ' ')read as the child, kept holes, check clean"
