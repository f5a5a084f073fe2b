/* server.h - the pieces of nbdkit-vhd-plugin: the request counters
 * (stats.c) and the control socket (control.c).  Sees only the public
 * header. */
#ifndef VHDKIT_SERVER_H
#define VHDKIT_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

enum serve_cmd {
	SERVE_READ, SERVE_WRITE, SERVE_ZERO, SERVE_TRIM, SERVE_FLUSH, SERVE_CACHE, SERVE_EXTENTS,
	SERVE_CMDS
};

/* Latency histogram: log-linear, 8 buckets per power of two of
 * nanoseconds, up to 2^40 ns (18 minutes; longer counts in the last). */
#define LAT_SUB 8
#define LAT_BUCKETS (40 * LAT_SUB)

struct serve_cmd_stats {
	uint64_t requests, bytes, errors;
	uint64_t latency[LAT_BUCKETS];
};

/* Updated with atomic adds by every worker thread, read by the control
 * socket's thread: no lock. */
struct serve_stats {
	uint64_t started_ns;
	int64_t connections;          /* open now */
	uint64_t connections_total;
	struct serve_cmd_stats cmd[SERVE_CMDS];
};

void stats_init(struct serve_stats *s);
uint64_t stats_now_ns(void);      /* CLOCK_MONOTONIC */
void stats_connection(struct serve_stats *s, int delta);
/* One request of CMD moving BYTES, begun at T0 (stats_now_ns). */
void stats_request(struct serve_stats *s, enum serve_cmd cmd, uint64_t bytes, uint64_t t0,
                   bool failed);
/* {"connections":..., "commands":{"read":{"requests","bytes","errors",
 * "latency_us":{"p50","p90","p99","max"}}, ...}} */
json_object *stats_json(struct serve_stats *s);

/* The control socket at PATH (mode 0600), served by its own thread until
 * ctl_stop (safe to call when not started).  Returns 0, or -1 with the
 * reason in ctl_error(). */
int ctl_start(const char *path, struct serve_stats *s, const char *description);
void ctl_stop(void);
const char *ctl_error(void);

#endif
