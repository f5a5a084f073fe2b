/* server.h - the pieces of nbdkit-vhd-plugin: the request counters
 * (stats.c), the control socket (control.c), the gate every request passes
 * (gate.c) and the live leaf-coalesce (live.c).  Sees only the public
 * header. */
#ifndef VHDKIT_SERVER_H
#define VHDKIT_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "vhdkit.h"

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
 * ctl_stop (safe to call when not started); READONLY: the live commands
 * are refused.  Returns 0, or -1 with the
 * reason in ctl_error(). */
int ctl_start(const char *path, struct serve_stats *s, const char *description, bool readonly);
void ctl_stop(void);
const char *ctl_error(void);

/* The gate (gate.c).  gate_enter: wait while a drain holds the gate, then
 * count the request in; returns the live merge requests must route their
 * writes through (gate_set_live), or NULL.  gate_leave: count it out.
 * gate_drain: close the gate and wait until no request is inside (one
 * drain at a time); returns the drain's id; gate_open ends it.  FN hears
 * of every request that waited: the drain's id and how long. */
typedef void (*gate_wait_fn)(uint64_t drain_id, uint64_t ns);
void *gate_enter(void);
void gate_leave(void);
uint64_t gate_drain(void);
void gate_open(void);
void gate_set_live(void *live);
void gate_set_wait_fn(gate_wait_fn fn);

/* The live leaf-coalesce (live.c).  live_prepare(FILE) before FILE is
 * opened: finish a pivot a crash interrupted, note a merge to resume.
 * live_init after: SERVED is the plugin's handle (swapped at the pivot,
 * under a drain).  live_after_fork(CONTROL) in the serving process: the
 * discovery file, and the resumed merge.  The control commands return 0,
 * or -1 with the reason in WHY. */
int live_prepare(const char *file);
void live_init(vhd_t **served, const char *file, struct serve_stats *stats);
int live_after_fork(const char *control);
void live_unload(void);
int live_start(uint64_t rate, char *why, size_t len);
int live_cancel(char *why, size_t len);
int live_set_rate(uint64_t rate, char *why, size_t len);
int live_refresh(char *why, size_t len);
/* "live" of the status: phase, bytes_done, bytes_left, rates, pause. */
json_object *live_status_json(void);

#endif
