#!/usr/bin/python3
"""lat-windows.py CLAT_LOG START END PIVOT_LO PIVOT_HI: a guest's
completion latencies (fio --write_lat_log --log_avg_msec=0 --log_unix_epoch=1:
one line per request, "time_ms, clat_ns, ...", the time in ms since 1970)
cut by wall times: before START, between START and END (the merge), after
END.  Prints "p50 p99" (microseconds) for each window, then the longest
completion latency of the requests that completed between PIVOT_LO and
PIVOT_HI (milliseconds), then the guest's IOPS during the merge.  A window
without a request prints 0 0."""
import sys


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def main():
    log, start, end, plo, phi = sys.argv[1], *map(float, sys.argv[2:6])
    before, during, after, pivot = [], [], [], [0.0]
    with open(log) as f:
        for line in f:
            cols = line.split(",")
            t = int(cols[0]) / 1000.0
            us = int(cols[1]) / 1000.0
            (before if t < start else during if t < end else after).append(us)
            if plo <= t <= phi:
                pivot.append(us / 1000.0)
    out = []
    for w in (before, during, after):
        out += ["%.0f" % pct(w, 50), "%.0f" % pct(w, 99)]
    out.append("%.1f" % max(pivot))
    out.append("%.0f" % (len(during) / (end - start) if end > start else 0))
    print(" ".join(out))


main()
