/* gc.h - `vhd gc`: the storage-repository garbage collector (not installed).
 *
 * Threads: the worker (worker.c) plans and runs operations; the main
 * thread serves the control socket (control.c); libmicrohttpd's thread
 * serves the metrics (metrics.c).  Everything they share is in struct gc
 * under LOCK. */
#ifndef VHD_GC_H
#define VHD_GC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common.h"

#define GC_SOCKET_NAME ".vhd-gc.sock"
#define GC_MAX_ERRORS 20
#define GC_MAX_DEFER 64
/* a chain this deep is shown as a warning (XenServer refuses past 30) */
#define GC_DEPTH_WARNING 20

/* GC_COMMIT: a run of several hidden single-child layers merged into the
 * base below them in one pass (vhd_commit), then relinked and deleted. */
enum gc_kind { GC_DELETE, GC_COALESCE, GC_LEAF, GC_COMMIT, GC_KINDS };

#define GC_MAX_RUN 64           /* layers one commit merges, at most */
enum gc_result { GC_OK, GC_ERROR, GC_CANCELLED, GC_RESULTS };

struct gc_item {
	enum gc_kind kind;
	char vhd[256];          /* the file removed or merged (a name in the SR;
	                           commit: the run's top) */
	char into[256];         /* the parent it is merged into ("" for delete;
	                           commit: the base below the run) */
	unsigned nlayers;       /* files merged and deleted: 1, or the run's length */
	char layers[4096];      /* commit: their names, bottom up, '/' between
	                           (a name cannot hold a '/'); "" otherwise */
	uint64_t bytes;         /* data it will move */
	unsigned chain_depth;   /* depth of the deepest chain it shortens */
	char note[160];         /* why it waits, "" when it can run */
	unsigned entry;         /* its index in the scanned SR it was planned from */
	bool live;              /* a leaf served by `vhd serve`: its server merges it */
};

struct gc_leaf {
	char vhd[256];
	unsigned depth;
};

struct gc_broken {
	char vhd[256];
	char defect[256];
};

/* One file of the SR as the last scan saw it (the status's "forest"). */
struct gc_node {
	char vhd[256];
	int parent;             /* index in the forest, -1 for a root */
	int type;               /* enum vhd_type, 0 when unreadable */
	bool hidden, in_use;
	uint64_t virtual_size, file_size;
	unsigned depth;
};

struct gc_error {
	time_t when;
	char message[512];
};

struct gc_opts {
	const char *dir;            /* absolute */
	const char *socket_path;
	const char *socket_group;
	const char *metrics_addr;
	const char *metrics_file;
	const char *http_addr;      /* --http: the web view (web.c) */
	bool once, daemonize, wait_lock, use_syslog;
	bool rate_auto;             /* --rate-limit auto (pace.c) */
	int io_priority;            /* --io-priority: vhd_coalesce_opts's, 0: none */
	double quiet_period, interval;
	uint64_t min_free;
};

/* pace.c: the controller of --rate-limit auto (the rule is in pace.c). */
#define PACE_TICK 0.5                   /* seconds between decisions */
#define PACE_START_RATE (64.0 * 1048576) /* bytes/s at the start */
#define PACE_MIN_RATE (1.0 * 1048576)   /* never slower: it keeps measuring */
#define PACE_MAX_RATE (2048.0 * 1048576) /* past it: unlimited */
#define PACE_FG_MIN_READS 100.0         /* foreground reads/s that count */
#define PACE_RATIO 1.3                  /* congested past RATIO x baseline */
#define PACE_MARGIN_MS 0.05             /* + MARGIN (timer granularity) */
#define PACE_OWN_RATIO 2.0              /* the same, without a device */
#define PACE_FORGET 1.01                /* the baseline's growth per tick */
struct pace_sample {
	double dt;              /* seconds since the previous sample */
	bool have_device;       /* the dev_ fields are the SR's device's */
	uint64_t dev_reads;     /* reads the device completed in dt */
	double dev_read_ms;     /* their summed time (diskstats' read ticks) */
	uint64_t own_reads;     /* the GC's copy reads in dt */
	double own_read_ms;     /* their summed time */
	double own_bytes;       /* bytes the GC copied in dt */
	bool copying;           /* a merge was copying (else: baseline only) */
};
struct pace {
	double rate;            /* the chosen limit, bytes/s; 0 = unlimited */
	double baseline_ms;     /* quiet foreground (or own) read latency; <0 unknown */
	double latency_ms;      /* the last sample's; <0 when none */
	double fg_reads_per_s;  /* the foreground's reads in the last sample */
	const char *decision;   /* start, hold, quiet, busy, congested */
	uint64_t decreases;     /* congested samples so far */
};
void pace_init(struct pace *p);
void pace_step(struct pace *p, const struct pace_sample *s);
struct pace_disk {
	char name[64];
	uint64_t reads, read_ms;
};
/* The counters of device MAJ:MIN in PATH (/proc/diskstats format); -1 if absent. */
int pace_read_diskstats(const char *path, unsigned maj, unsigned min, struct pace_disk *d);
/* A partition MAJ:MIN becomes its whole disk (where requests queue), under
 * SYSFS ("/sys"); dm and loop devices stay themselves.  -1 if unknown. */
int pace_whole_disk(const char *sysfs, unsigned *maj, unsigned *min);
/* The device holding DIR, as diskstats names it; -1 with WHY when none. */
int pace_find_device(const char *dir, unsigned *maj, unsigned *min, char *why, size_t len);
void *gc_pace_thread(void *gc);

struct gc {
	struct gc_opts o;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	/* control */
	bool paused, shutdown, cancelled;
	volatile int stop;                 /* the running operation's stop flag */
	struct vhd_coalesce_opts copts;    /* rate_limit changes while it runs */
	/* --rate-limit auto (pace.c) */
	struct pace pace;
	pthread_cond_t pace_wake;
	bool pacing;                       /* the controller's thread runs */
	char pace_signal[320];             /* what the controller measures */
	char pace_device[64];              /* its diskstats name, "" for none */
	uint64_t copy_reads;               /* the copy threads' reads, all operations */
	double copy_read_seconds;
	char defer[GC_MAX_DEFER][256];     /* cancelled items: skipped until resume */
	unsigned ndefer;
	/* state */
	const char *state;                 /* starting, idle, quiet, working, paused,
	                                      waiting-for-space, stopping */
	char state_note[256];
	bool busy;
	struct gc_item current;
	char phase[16];
	uint64_t done, total;
	double rate, eta;
	time_t op_started;
	struct gc_item *queue;
	unsigned nqueue;
	struct gc_leaf *leaves;
	unsigned nleaves;
	struct gc_broken *broken;
	unsigned nbroken;
	struct gc_node *forest;
	unsigned nforest;
	struct gc_error errors[GC_MAX_ERRORS];
	unsigned nerrors, errors_next;
	unsigned scans;
	time_t last_progress;              /* a byte moved or an operation ended */
	/* totals */
	uint64_t bytes_coalesced;
	double speed;                      /* measured merge speed, bytes/s (0: unknown) */
	unsigned speed_samples;            /* merges it was measured on (speed.c) */
	uint64_t speed_limit;              /* the rate limit they ran under (0: none) */
	uint64_t space_avail;              /* the SR's free bytes at the last scan
	                                      (UINT64_MAX: unknown) */
	uint64_t ops[GC_KINDS][GC_RESULTS];
	int exit_code;
	char metrics_bound[128];
	char http_bound[128];
};

extern const char *const gc_kind_names[GC_KINDS];
extern const char *const gc_result_names[GC_RESULTS];

/* planner.c: the operations an SR calls for, from what is known of it:
 * SR (vhd_sr_scan's forest) and FACTS (one per entry, the worker's findings).
 * Opens no file.  Fills PLAN (free with gc_plan_free); -1 when out of
 * memory.  The items' bytes are left 0: the worker measures them. */
struct gc_facts {
	const char *defect;    /* why the file is damaged (unreadable, fails check,
	                          parent not in the SR), NULL when sound */
	bool deferred;         /* its operation was cancelled or failed: it
	                          waits for 'vhd gc resume' */
	bool served;           /* `vhd serve` serves it writable, verified over its
	                          control socket (common/served.c) */
};
struct gc_plan {
	struct gc_item *items;      /* in the order to run them */
	unsigned n;
	struct gc_broken *broken;   /* the damaged files, in the SR's order */
	unsigned nbroken;
	bool unreadable;            /* a file whose parent cannot be known */
};
struct vhd_sr;
int gc_plan_make(const struct vhd_sr *sr, const struct gc_facts *facts, struct gc_plan *plan);
void gc_plan_free(struct gc_plan *plan);

/* chains.c: per chain (a visible leaf's path to its root: what an operator
 * calls a disk's chain), what the plan will merge of it and when.  Opens no
 * file, reads no clock (tests/unit/test-gc-chains.c).  The ETA walks the
 * queue in the worker's order: an operation that waits runs later (its
 * chain's later depths are unknown), and the first one that does not fit in
 * the free space stops the worker (every later time is unknown). */
struct gc_chain_input {
	const struct gc_node *forest;   /* the last scan */
	unsigned nforest;
	const struct gc_item *queue;    /* the plan, in the order the worker runs it */
	unsigned nqueue;
	const struct gc_item *current;  /* the running operation, or NULL */
	uint64_t current_left;          /* the bytes it has still to move */
	double speed;                   /* measured merge speed, bytes/s; 0 unknown */
	uint64_t speed_limit;           /* the rate limit it was measured under, 0 none */
	uint64_t rate_limit;            /* now, 0: none; the speed is capped by it, and
	                                   unknown when above SPEED_LIMIT (the merges
	                                   may now go faster than measured) */
	uint64_t avail;                 /* free bytes of the SR; UINT64_MAX unknown */
	uint64_t min_free;              /* --min-free */
};
struct gc_chain_step {
	unsigned depth;      /* the chain's depth after this merge */
	double eta;          /* seconds from now until it is done; -1 unknown */
};
struct gc_chain {
	unsigned leaf, root;          /* indexes in the forest */
	unsigned depth;
	unsigned nodes;               /* layers the planned merges remove */
	uint64_t bytes;               /* data those merges move */
	int next;                     /* queue index of its next merge not running, -1 */
	uint64_t next_need;           /* free space that merge needs */
	int next_fits;                /* 1, 0; -1 unknown or no next merge */
	const char *waits;            /* why its first waiting merge waits, or NULL */
	double eta;                   /* until every planned merge is done; -1 unknown */
	struct gc_chain_step *steps;  /* one per planned merge, in order */
	unsigned nsteps;
};
/* The chains of IN (one per visible leaf, in the forest's order) into
 * *OUT (free with gc_chains_free); their count, or -1 when out of memory. */
int gc_chains_make(const struct gc_chain_input *in, struct gc_chain **out);
void gc_chains_free(struct gc_chain *c, unsigned n);
/* The ETA for chain C to be at most MAX_DEPTH deep: 0 when it is already,
 * -1 when unknown (no speed, a merge waits, or too few merges planned). */
double gc_chain_eta_to_depth(const struct gc_chain *c, unsigned max_depth);
/* Free space an operation moving BYTES needs (the merge's own estimate,
 * with room for metadata, plus --min-free); 0 for a delete. */
uint64_t gc_space_need(const struct gc_item *it, uint64_t min_free);
/* The layers ITEM removes from every chain through it (0 for a delete). */
unsigned gc_item_layers(const struct gc_item *it);

/* speed.c: the measured merge speed, kept in DIR/.vhd-gc-speed.  Load it
 * at start (a damaged file is logged and ignored); note a finished merge
 * that moved BYTES in SECS under the rate limit LIMIT (updates the mean, or
 * starts it again when the limit changed; saves the file; takes LOCK). */
void gc_speed_load(struct gc *g);
void gc_speed_note(struct gc *g, uint64_t bytes, double secs, uint64_t limit);
/* The mean after SAMPLE, of one of SAMPLES so far (the first sets it). */
double gc_speed_mean(double mean, unsigned samples, double sample);
int gc_fsync_dir(const char *dir);

/* worker.c: gathers the facts (scan, check, sizes) and runs the plan. */
void *gc_worker(void *gc);

/* log.c: log one line (stderr or syslog); also kept as a recent error if
 * ERROR (takes LOCK then: call it with LOCK held only when ERROR is false). */
void gc_log(struct gc *g, bool error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* control.c */
int gc_server_run(struct gc *g);         /* the socket loop, until shutdown */
struct json_object *gc_status_json(struct gc *g);   /* caller holds LOCK */
/* The chains of the status (gc_chains_make's result); caller holds LOCK. */
int gc_status_chains(struct gc *g, struct gc_chain **out);
/* Socket path for DIR (or EXPLICIT) into OUT; -1 if too long. */
int gc_socket_path(const char *dir, const char *explicit_path, char *out, size_t len);

/* metrics.c: the HTTP server of --metrics (0, or -1 with a message
 * printed); the --metrics-file copy, rewritten after each scan and
 * operation (takes LOCK). */
int gc_metrics_start(struct gc *g);
void gc_metrics_stop(void);
void gc_metrics_write_file(struct gc *g);

/* web.c: the web view of --http (0, or -1 with a message printed): the
 * page, /api/status, /api/events (Server-Sent Events), and a ring of an
 * hour of samples of the bytes merged. */
int gc_web_start(struct gc *g);
void gc_web_stop(void);

/* client.c */
int gc_client_main(const char *sub, int argc, char **argv);
/* One request: send CMD (a JSON object, consumed), return the reply or NULL
 * (with a message printed unless QUIET). */
struct json_object *gc_request(const char *sock, struct json_object *cmd, bool quiet);

#endif
