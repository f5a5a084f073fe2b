#!/bin/bash
# pivot-pause.sh - the pause at the live leaf-coalesce's pivot, RUNS times:
# a leaf of PIVOT_MIB (256) MiB of which half is data over a hidden parent
# (tests/live-functions.sh live_chain), `vhd serve`, fio's nbd engine
# writing random 4 KiB blocks unthrottled at depth 16, `live-coalesce`
# asked once fio writes; prints per run the status's pivot_ms (the drain's
# length) and pivot_pause_ms (the longest a guest request waited at it).
# Usage: bench/pivot-pause.sh [RUNS]   (B=build dir, as the tests)
. "$(dirname "$0")/../tests/functions.sh"
. "$(dirname "$0")/../tests/serve-functions.sh"
. "$(dirname "$0")/../tests/live-functions.sh"
requires nbdkit fio
runs=${1:-5} mib=${PIVOT_MIB:-256}
for r in $(seq "$runs"); do
	rm -rf "$TMP/c"
	live_chain "$TMP/c" "$mib"
	serve_start "$TMP/c/leaf.vhd"
	fio --name=guest --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --size="$((mib / 2))M" \
	    --iodepth=16 --time_based --runtime=120 >"$TMP/fio.out" 2>&1 &
	fio_pid=$!
	wait_guest_writing
	ctl_query '{"cmd":"live-coalesce"}' | grep -q '"ok":true' || fail "live-coalesce refused"
	for _ in $(seq 2400); do
		p=$(live_field 'l["phase"]')
		case $p in done|failed|cancelled) break ;; esac
		sleep 0.05
	done
	[ "$p" = done ] || fail "run $r: the live merge ended $p: $(live_field 'l.get("error")')"
	echo "run $r: $(live_field '"pivot_ms %.1f pivot_pause_ms %.1f" % (l["pivot_ms"], l["pivot_pause_ms"])')"
	kill "$fio_pid" 2>/dev/null; wait "$fio_pid" 2>/dev/null
	serve_stop
done
