#!/bin/bash
# --rate-limit auto: with a VM-like fio workload on the SR's disk (4 KiB
# random reads and writes, queue depth 8, O_DIRECT) started before the GC,
# the GC reports its chosen rate (status JSON and text, the metrics over
# HTTP, the device it watches) and holds back (congested: halved; or busy:
# growing by 1/8, under twice its start rate); when fio stops it speeds up
# again.  set-rate N turns
# auto off, set-rate auto back on.  On tmpfs (no block device) it paces on
# its own reads and says so.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
requires fio curl
trap 'gc_stop; [ -n "${FIO_PID:-}" ] && kill "$FIO_PID" 2>/dev/null; rm -rf "$TMP" "${SHM:-}"' EXIT
SR=$TMP/sr
mkdir -p "$SR"
"$B/tests/mkchain" --size 512M --base-data 16M --writes 300 --min 256K --max 1M --touch-all "$SR" >/dev/null ||
	fail "mkchain"
fio --name=fill --filename="$TMP/vm.img" --size=128M --rw=write --bs=1M --direct=1 --output=/dev/null ||
	fail "fio fill"
fio --name=vm --filename="$TMP/vm.img" --size=128M --rw=randrw --bs=4k --iodepth=8 --ioengine=libaio \
	--direct=1 --time_based --runtime=30 >"$TMP/fio.out" 2>&1 &
FIO_PID=$!
sleep 1
kill -0 "$FIO_PID" 2>/dev/null || { cat "$TMP/fio.out"; fail "fio did not start"; }
gc_start "$SR" --rate-limit auto --quiet-period 1 --interval 0.2 --metrics 127.0.0.1:0 ||
	fail "GC did not start"
st=$(gc_status)
[ "$(json_get "$st" 'j["rate_mode"] == "auto" and j["pace"]["signal"].startswith("foreground reads of ")')" = True ] ||
	fail "status does not show the auto mode and its device: $st"
dev=$(json_get "$st" 'j["pace"]["device"]')

# the controller sees the workload: it slows down where fio suffers from
# the merge, or (a disk with room to spare) grows by 1/8 a tick instead of
# doubling to unlimited as on a quiet disk: under twice its start rate
start=$((64 * 1048576))
wait_for 15 "j['operation'] is not None and j['pace']['foreground_reads_per_s'] >= 100 and j['pace']['decision'] in ('busy', 'congested') and 0 < j['rate_limit'] < 2 * $start" ||
	fail "the GC did not hold back beside fio"
st=$(gc_status)
low=$(json_get "$st" 'j["rate_limit"]')
"$VHD" gc status "$SR" >"$TMP/human" || fail "gc status"
grep -q "rate limit auto, now" "$TMP/human" && grep -q "pacing on the foreground reads of $dev" "$TMP/human" ||
	{ cat "$TMP/human"; fail "the text status does not show the chosen rate"; }
curl -sf "http://$(json_get "$st" 'j["metrics"]')/metrics" >"$TMP/gc.prom" || fail "scraping metrics"
grep -q 'vhd_gc_rate_limit_bytes_per_second{mode="auto"}' "$TMP/gc.prom" &&
	grep -q '^vhd_gc_pace_decreases_total [0-9]' "$TMP/gc.prom" ||
	{ cat "$TMP/gc.prom"; fail "metrics lack the auto rate"; }

# set-rate: a fixed rate turns auto off, 'auto' turns it back on
"$VHD" gc set-rate "$SR" 3M || fail "set-rate 3M"
[ "$(json_get "$(gc_status)" 'j["rate_mode"] == "fixed" and j["rate_limit"] == 3145728')" = True ] ||
	fail "set-rate 3M did not fix the rate"
"$VHD" gc set-rate "$SR" auto || fail "set-rate auto"
[ "$(json_get "$(gc_status)" 'j["rate_mode"]')" = auto ] || fail "set-rate auto did not turn auto on"

# the workload ends: the GC speeds up again (or finishes)
kill "$FIO_PID"; wait "$FIO_PID" 2>/dev/null; FIO_PID=
wait_for 15 "j['totals']['operations']['leaf-coalesce']['ok'] == 1 or j['rate_limit'] == 0 or j['rate_limit'] >= 4 * $low" ||
	fail "the GC did not speed up once fio stopped (lowest limit $low)"
"$VHD" gc set-rate "$SR" 0 || fail "set-rate 0"
wait_for 20 "j['totals']['operations']['leaf-coalesce']['ok'] == 1" || fail "the merge did not end"
gc_stop
"$VHD" check "$SR/l1.vhd" >/dev/null || fail "the merged leaf fails check"

# tmpfs: no block device; the GC paces on its own reads
SHM=$(mktemp -d /dev/shm/vhdkit-test.XXXXXX)
"$B/tests/mkchain" --size 32M --base-data 4M --writes 50 "$SHM" >/dev/null || fail "mkchain on tmpfs"
"$VHD" gc run --once --quiet-period 0 --rate-limit auto "$SHM" 2>"$TMP/shm.log" || { cat "$TMP/shm.log"; fail "GC on tmpfs"; }
grep -q "the signal is the own reads (.* is on no block device" "$TMP/shm.log" ||
	{ cat "$TMP/shm.log"; fail "tmpfs: the fallback is not said"; }
pass "beside fio on $dev: held at $low bytes/s (start $start, $(json_get "$st" 'j["pace"]["decreases"]') slow-downs), shown in status, text and metrics; set-rate fixed/auto; faster once fio stopped; tmpfs paces on own reads"
