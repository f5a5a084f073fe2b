/* live.c - the plugin's live leaf-coalesce (the library's vhd_live_*):
 * the copy thread with its rate limit, the pivot under a drain of the
 * gate, cancel, refresh, the status, and the discovery file that lets
 * `vhd gc` find the server of a leaf.
 *
 * Phases: idle -> copy -> mirror -> pivot -> done, or failed / cancelled
 * (the chain intact).  The merge pointer is published in the gate
 * (gate_set_live) before the copy thread starts: every request entering
 * after that routes its writes through the merge; one drain of the gate
 * waits out those that entered before. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define STEP_BYTES (256u * 1024)   /* one copy step: what a guest write may wait */
#define SAMPLE_NS 500000000ull     /* rates over half a second */

enum phase { IDLE, COPY, MIRROR, PIVOT, DONE, FAILED, CANCELLED };
static const char *const phase_names[] = {
	"idle", "copy", "mirror", "pivot", "done", "failed", "cancelled",
};

static struct {
	vhd_t **served;          /* the plugin's handle, swapped at the pivot */
	const char *file;
	struct serve_stats *stats;
	char discovery[PATH_MAX];

	pthread_mutex_t lock;    /* the fields below */
	enum phase phase;
	vhd_live_t *live;
	pthread_t thread;
	bool thread_running;
	bool cancel;             /* atomic */
	uint64_t rate_limit;     /* atomic; bytes/s, 0 = none */
	uint64_t bytes_done, bytes_left, passes;
	double rate, guest_rate;
	char error[512];
	char leaf[PATH_MAX], parent[PATH_MAX];
	uint64_t pivot_drain;    /* the pivot's drain id, 0 before */
	uint64_t pivot_wait_ns;  /* atomic: the longest a request waited at it */
	uint64_t pivot_ns;       /* the drain's whole length */

	bool resume;             /* a crash interrupted a merge: resume it */
	uint64_t resume_rate;
} L = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_gate_wait(uint64_t drain_id, uint64_t ns)
{
	if (drain_id != __atomic_load_n(&L.pivot_drain, __ATOMIC_ACQUIRE))
		return;
	uint64_t seen = __atomic_load_n(&L.pivot_wait_ns, __ATOMIC_RELAXED);
	while (ns > seen && !__atomic_compare_exchange_n(&L.pivot_wait_ns, &seen, ns, true,
	                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

static void set_phase(enum phase p, const char *error)
{
	pthread_mutex_lock(&L.lock);
	L.phase = p;
	if (error)
		snprintf(L.error, sizeof L.error, "%s", error);
	pthread_mutex_unlock(&L.lock);
}

/* ---- the copy thread ---- */

static void sleep_ns(uint64_t ns)
{
	struct timespec t = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	nanosleep(&t, NULL);
}

/* Sleep so that the bytes copied keep to the rate limit, in slices, so
 * that a cancel or a new limit is seen soon.  *NEXT: when the copy may
 * go on. */
static void throttle(uint64_t copied, uint64_t *next)
{
	uint64_t now = stats_now_ns();
	uint64_t limit = __atomic_load_n(&L.rate_limit, __ATOMIC_RELAXED);
	if (!limit) {
		*next = now;
		return;
	}
	*next = (*next > now ? *next : now) + copied * 1000000000ull / limit;
	while ((now = stats_now_ns()) < *next && !__atomic_load_n(&L.cancel, __ATOMIC_RELAXED)) {
		uint64_t left = *next - now;
		sleep_ns(left < 20000000 ? left : 20000000);
		if (__atomic_load_n(&L.rate_limit, __ATOMIC_RELAXED) != limit)
			break;   /* set-rate: the next step uses the new limit */
	}
}

struct sampler {
	uint64_t t, done, guest;
};

static void sample(struct sampler *s, bool force)
{
	struct vhd_live_status st;
	uint64_t now = stats_now_ns();
	if (!force && now - s->t < SAMPLE_NS)
		return;
	vhd_live_get_status(L.live, &st);
	double dt = (double)(now - s->t) / 1e9;
	pthread_mutex_lock(&L.lock);
	if (dt > 0 && s->t) {
		L.rate = (double)(st.bytes_done - s->done) / dt;
		L.guest_rate = (double)(st.guest_bytes - s->guest) / dt;
	}
	L.bytes_done = st.bytes_done;
	L.bytes_left = st.bytes_left;
	L.passes = st.passes;
	if (L.phase == COPY && st.mirror)
		L.phase = MIRROR;
	pthread_mutex_unlock(&L.lock);
	*s = (struct sampler){ now, st.bytes_done, st.guest_bytes };
}

/* Nothing dirty: drain, pivot, open.  Returns true when the merge is over
 * (done or failed), false to go on copying (a write came in between). */
static bool pivot(void)
{
	enum phase before = L.phase;
	set_phase(PIVOT, NULL);
	/* most of the syncing before the drain: the one under it is short */
	if (vhd_live_flush(L.live))
		nbdkit_debug("live coalesce: flush before the pivot: %s", vhd_get_error());
	if (vhd_live_pivot_prepare(L.live)) {
		set_phase(FAILED, vhd_get_error());
		return true;
	}
	uint64_t t0 = stats_now_ns();
	uint64_t id = gate_drain();
	__atomic_store_n(&L.pivot_drain, id, __ATOMIC_RELEASE);
	__atomic_store_n(&L.pivot_wait_ns, 0, __ATOMIC_RELAXED);
	vhd_t *old = *L.served, *now = vhd_live_pivot(L.live);
	if (!now) {
		int e = vhd_get_errno();
		char why[512];
		snprintf(why, sizeof why, "%s", vhd_get_error());
		gate_open();
		set_phase(e == EAGAIN ? before : FAILED, e == EAGAIN ? NULL : why);
		return e != EAGAIN;
	}
	*L.served = now;
	gate_set_live(NULL);
	gate_open();
	L.pivot_ns = stats_now_ns() - t0;
	if (vhd_live_pivot_end(L.live))
		nbdkit_debug("live coalesce: after the pivot (left for the recovery): %s", vhd_get_error());
	if (vhd_close(old))
		nbdkit_debug("live coalesce: closing the merged leaf: %s", vhd_get_error());
	set_phase(DONE, NULL);
	return true;
}

/* After the thread: the merge's pointer out of the gate (one drain waits
 * out the requests still using it), then ended. */
static void retire(void)
{
	gate_set_live(NULL);
	gate_drain();
	gate_open();
	if (vhd_live_end(L.live))
		nbdkit_error("live coalesce: %s", vhd_get_error());
	pthread_mutex_lock(&L.lock);
	L.live = NULL;
	pthread_mutex_unlock(&L.lock);
}

static void *copy_main(void *arg)
{
	(void)arg;
	struct sampler s = { 0 };
	uint64_t next = 0;
	sample(&s, true);
	for (;;) {
		if (__atomic_load_n(&L.cancel, __ATOMIC_RELAXED)) {
			set_phase(CANCELLED, "cancelled");
			break;
		}
		uint64_t copied = 0;
		int r = vhd_live_step(L.live, STEP_BYTES, &copied);
		if (r < 0) {
			nbdkit_error("live coalesce: %s", vhd_get_error());
			set_phase(FAILED, vhd_get_error());
			break;
		}
		sample(&s, r == 0);
		if (r == 0 && pivot())
			break;
		throttle(copied, &next);
	}
	sample(&s, true);
	if (L.phase == DONE)
		nbdkit_debug("live coalesce: done; pivot %.3f ms, longest request wait %.3f ms",
		             (double)L.pivot_ns / 1e6, (double)L.pivot_wait_ns / 1e6);
	retire();
	return NULL;
}

/* ---- start, cancel, refresh ---- */

static bool running(void)
{
	return L.phase == COPY || L.phase == MIRROR || L.phase == PIVOT;
}

/* Reap a thread that has ended (its phase is final). */
static void join_finished(void)
{
	if (L.thread_running && !running()) {
		pthread_join(L.thread, NULL);
		L.thread_running = false;
	}
}

int live_start(uint64_t rate, char *why, size_t len)
{
	pthread_mutex_lock(&L.lock);
	bool busy = running();
	pthread_mutex_unlock(&L.lock);
	if (busy)
		return snprintf(why, len, "a live coalesce is running already"), -1;
	join_finished();
	if (!L.served || !*L.served)
		return snprintf(why, len, "no writable export"), -1;
	vhd_live_t *live = vhd_live_start(*L.served, rate);
	if (!live)
		return snprintf(why, len, "%s", vhd_get_error()), -1;
	struct vhd_live_status st;
	vhd_live_get_status(live, &st);
	pthread_mutex_lock(&L.lock);
	L.live = live;
	L.phase = COPY;
	L.error[0] = 0;
	L.bytes_done = L.bytes_left = L.passes = 0;
	L.rate = L.guest_rate = 0;
	L.pivot_drain = L.pivot_wait_ns = L.pivot_ns = 0;
	snprintf(L.leaf, sizeof L.leaf, "%s", st.leaf);
	char parent[PATH_MAX];
	snprintf(L.parent, sizeof L.parent, "%s", realpath(st.parent, parent) ? parent : st.parent);
	__atomic_store_n(&L.rate_limit, rate, __ATOMIC_RELAXED);
	__atomic_store_n(&L.cancel, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&L.lock);
	gate_set_live(live);
	gate_drain();   /* the requests that entered before: done */
	gate_open();
	int e = pthread_create(&L.thread, NULL, copy_main, NULL);
	if (e) {
		snprintf(why, len, "thread: %s", strerror(e));
		set_phase(FAILED, why);
		retire();
		return -1;
	}
	L.thread_running = true;
	return 0;
}

int live_cancel(char *why, size_t len)
{
	pthread_mutex_lock(&L.lock);
	bool busy = running();
	pthread_mutex_unlock(&L.lock);
	if (!busy)
		return snprintf(why, len, "no live coalesce is running"), -1;
	__atomic_store_n(&L.cancel, true, __ATOMIC_RELAXED);
	pthread_join(L.thread, NULL);
	L.thread_running = false;
	return 0;
}

int live_set_rate(uint64_t rate, char *why, size_t len)
{
	(void)why;
	(void)len;
	__atomic_store_n(&L.rate_limit, rate, __ATOMIC_RELAXED);
	return 0;
}

int live_refresh(char *why, size_t len)
{
	pthread_mutex_lock(&L.lock);
	bool busy = running();
	pthread_mutex_unlock(&L.lock);
	if (busy)
		return snprintf(why, len, "a live coalesce is running: refresh after it"), -1;
	if (!L.served || !*L.served)
		return snprintf(why, len, "nothing served"), -1;
	gate_drain();
	int rc = vhd_reopen_parents(*L.served);
	if (rc)
		snprintf(why, len, "%s", vhd_get_error());
	gate_open();
	return rc;
}

json_object *live_status_json(void)
{
	json_object *o = json_object_new_object();
	pthread_mutex_lock(&L.lock);
	if (L.live && (L.phase == COPY || L.phase == MIRROR)) {   /* the figures of now */
		struct vhd_live_status st;
		vhd_live_get_status(L.live, &st);
		L.bytes_done = st.bytes_done;
		L.bytes_left = st.bytes_left;
		L.passes = st.passes;
		if (st.mirror)
			L.phase = MIRROR;
	}
	json_object_object_add(o, "phase", json_object_new_string(phase_names[L.phase]));
	json_object_object_add(o, "bytes_done", json_object_new_uint64(L.bytes_done));
	json_object_object_add(o, "bytes_left", json_object_new_uint64(L.bytes_left));
	json_object_object_add(o, "passes", json_object_new_uint64(L.passes));
	json_object_object_add(o, "rate", json_object_new_double(L.rate));
	json_object_object_add(o, "guest_write_rate", json_object_new_double(L.guest_rate));
	json_object_object_add(o, "rate_limit", json_object_new_uint64(
	                                          __atomic_load_n(&L.rate_limit, __ATOMIC_RELAXED)));
	json_object_object_add(o, "pivot_pause_ms", json_object_new_double(
	        (double)__atomic_load_n(&L.pivot_wait_ns, __ATOMIC_RELAXED) / 1e6));
	json_object_object_add(o, "pivot_ms", json_object_new_double((double)L.pivot_ns / 1e6));
	json_object_object_add(o, "error", L.error[0] ? json_object_new_string(L.error) : NULL);
	json_object_object_add(o, "leaf", L.leaf[0] ? json_object_new_string(L.leaf) : NULL);
	json_object_object_add(o, "parent", L.parent[0] ? json_object_new_string(L.parent) : NULL);
	pthread_mutex_unlock(&L.lock);
	return o;
}

/* ---- set-up, discovery, unload ---- */

int live_prepare(const char *file)
{
	int r = vhd_live_recover(file, &L.resume_rate);
	if (r < 0)
		return -1;
	L.resume = r > 0;
	return 0;
}

void live_init(vhd_t **served, const char *file, struct serve_stats *stats)
{
	L.served = served;
	L.file = file;
	L.stats = stats;
	gate_set_wait_fn(on_gate_wait);
}

/* "<dir of FILE>/.vhd-serve-<name>.json": the server's pid and control
 * socket, written atomically (a temporary file renamed). */
static int advertise(const char *control)
{
	const char *slash = strrchr(L.file, '/');
	int n = snprintf(L.discovery, sizeof L.discovery, "%.*s/.vhd-serve-%s.json",
	                 (int)(slash - L.file), L.file, slash + 1);
	char tmp[PATH_MAX + 8];
	if (n < 0 || (size_t)n >= sizeof L.discovery ||
	    (size_t)snprintf(tmp, sizeof tmp, "%s.tmp", L.discovery) >= sizeof tmp) {
		L.discovery[0] = 0;
		return -1;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "control", control ? json_object_new_string(control) : NULL);
	json_object_object_add(o, "file", json_object_new_string(L.file));
	FILE *f = fopen(tmp, "w");
	int rc = f ? 0 : -1;
	if (f) {
		rc = fprintf(f, "%s\n", json_object_to_json_string(o)) < 0;
		rc |= fclose(f) != 0;
	}
	json_object_put(o);
	if (rc || rename(tmp, L.discovery)) {
		unlink(tmp);
		L.discovery[0] = 0;
		return -1;
	}
	return 0;
}

int live_after_fork(const char *control)
{
	/* FILE is given absolute by nbdkit (nbdkit_absolute_path) */
	if (strchr(L.file, '/') && advertise(control))
		nbdkit_error("%s: discovery file: %s", L.file, strerror(errno));
	if (!L.resume)
		return 0;
	char why[512];
	if (live_start(L.resume_rate, why, sizeof why)) {
		/* the chain is valid without it: serve, and say why */
		nbdkit_error("%s: resuming the live coalesce: %s", L.file, why);
		set_phase(FAILED, why);
	}
	return 0;
}

void live_unload(void)
{
	char why[64];
	pthread_mutex_lock(&L.lock);
	bool busy = running();
	pthread_mutex_unlock(&L.lock);
	if (busy)
		live_cancel(why, sizeof why);
	join_finished();
	if (L.discovery[0])
		unlink(L.discovery);
}
