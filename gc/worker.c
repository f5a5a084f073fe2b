/* worker.c - the GC's planner and executor.
 *
 * Each round: scan the SR under the SR lock, check every file (vhd_check;
 * results cached while a file is unchanged), plan, release the lock, then
 * run the first operation that can run:
 *   delete    a hidden leaf with no visible descendant (garbage); re-checked
 *             under the SR lock, then unlinked;
 *   coalesce  a hidden VHD whose hidden parent has it as only child:
 *             vhd_coalesce with relink (the SR lock is taken for the relink
 *             and delete phases, from the progress callback);
 *   leaf      a visible leaf whose hidden parent has it as only child, not
 *             in use: vhd_leaf_coalesce (keeps the leaf's path and UUID).
 * Garbage goes first, then the deepest chains, each from its shallowest
 * mergeable layer (every byte moves once).  A damaged file, its ancestors
 * and descendants are never touched; an unreadable file (its parent unknown)
 * stops every operation that removes a file. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <unistd.h>

#include "gc.h"

#define CHECK_CACHE 4096

/* ---- per-file facts cached while the file is unchanged ---- */

struct fact {
	char name[256];
	uint64_t size;
	int64_t mtime_ns;
	bool checked, bad;
	char defect[256];
	bool have_bytes;
	uint64_t bytes;
};
static struct fact facts[CHECK_CACHE];

static struct fact *fact_for(const struct vhd_sr_entry *e)
{
	unsigned h = 5381;
	for (const char *p = e->name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	struct fact *f = &facts[h % CHECK_CACHE];
	if (strcmp(f->name, e->name) || f->size != e->file_size || f->mtime_ns != e->mtime_ns) {
		memset(f, 0, sizeof *f);
		snprintf(f->name, sizeof f->name, "%s", e->name);
		f->size = e->file_size;
		f->mtime_ns = e->mtime_ns;
	}
	return f;
}

static void note_problem(const struct vhd_problem *p, void *opaque)
{
	struct fact *f = opaque;
	if (!f->defect[0])
		snprintf(f->defect, sizeof f->defect, "%s", p->message);
}

static bool check_entry(const struct vhd_sr_entry *e, char *defect, size_t len)
{
	if (!e->ok) {
		snprintf(defect, len, "%s", e->defect ? e->defect : "unreadable");
		return false;
	}
	struct fact *f = fact_for(e);
	if (!f->checked) {
		int n = vhd_check(e->path, VHD_CHECK_NO_TIME | VHD_CHECK_PARENT_ANY, note_problem, f);
		f->checked = true;
		f->bad = n != 0;
		if (n < 0)
			snprintf(f->defect, sizeof f->defect, "%s", vhd_get_error());
	}
	if (f->bad)
		snprintf(defect, len, "%s", f->defect[0] ? f->defect : "fails check");
	return !f->bad;
}

static int add_run(uint64_t off, uint64_t len, unsigned layer, void *opaque)
{
	(void)off;
	(void)layer;
	*(uint64_t *)opaque += len;
	return 0;
}

/* Bytes of data the file holds (what merging it moves). */
static uint64_t data_bytes(const struct vhd_sr_entry *e)
{
	struct fact *f = fact_for(e);
	if (!f->have_bytes) {
		vhd_t *v = vhd_open(e->path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT);
		f->bytes = e->allocated_bytes;
		if (v) {
			uint64_t sum = 0;
			if (vhd_map(v, 0, add_run, &sum) == 0)
				f->bytes = sum;
			vhd_close(v);
		}
		f->have_bytes = true;
	}
	return f->bytes;
}

/* ---- planning ---- */

struct plan {
	struct vhd_sr *sr;
	bool *blocked;
	bool unreadable;          /* a file whose parent cannot be known */
	struct gc_item *items;
	unsigned n, cap;
	struct gc_broken *broken;
	unsigned nbroken;
	uint64_t signature;
};

static void plan_free(struct plan *p)
{
	vhd_sr_free(p->sr);
	free(p->blocked);
	free(p->items);
	free(p->broken);
	memset(p, 0, sizeof *p);
}

static bool deferred(struct gc *g, const char *name)
{
	for (unsigned i = 0; i < g->ndefer; i++)
		if (!strcmp(g->defer[i], name))
			return true;
	return false;
}

static void add_item(struct plan *p, enum gc_kind kind, const struct vhd_sr_entry *e,
                     const struct vhd_sr_entry *into, uint64_t bytes, const char *note)
{
	if (p->n == p->cap) {
		unsigned c = p->cap ? 2 * p->cap : 16;
		struct gc_item *n = realloc(p->items, c * sizeof *n);
		if (!n)
			return;
		p->items = n;
		p->cap = c;
	}
	struct gc_item *it = &p->items[p->n++];
	memset(it, 0, sizeof *it);
	it->kind = kind;
	snprintf(it->vhd, sizeof it->vhd, "%s", e->name);
	if (into)
		snprintf(it->into, sizeof it->into, "%s", into->name);
	it->bytes = bytes;
	it->chain_depth = e->subtree_depth;
	snprintf(it->note, sizeof it->note, "%s", note ? note : "");
}

/* Damaged files, and every file related to one, are off limits. */
static void mark_blocked(struct plan *p, const bool *bad)
{
	struct vhd_sr *sr = p->sr;
	for (size_t i = 0; i < sr->count; i++) {
		if (!bad[i])
			continue;
		for (int a = (int)i; a >= 0; a = sr->entries[a].parent)
			p->blocked[a] = true;
		for (size_t k = 0; k < sr->count; k++)
			for (int a = (int)k; a >= 0; a = sr->entries[a].parent)
				if (a == (int)i)
					p->blocked[k] = true;
	}
}

static uint64_t mix(uint64_t h, const void *data, size_t len)
{
	const unsigned char *c = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

/* A differencing VHD whose parent is a raw image (nil parent UUID, blktap's
 * snapshot -m): the parent is not a VHD of the SR and is never touched. */
static bool raw_parent(const struct vhd_sr_entry *e)
{
	return e->ok && raw_parent_of(e->type, e->parent_uuid);
}

static void check_all(struct plan *p)
{
	struct vhd_sr *sr = p->sr;
	bool *bad = calloc(sr->count + 1, sizeof *bad);
	p->broken = calloc(sr->count + 1, sizeof *p->broken);
	p->blocked = calloc(sr->count + 1, sizeof *p->blocked);
	if (!bad || !p->broken || !p->blocked) {
		free(bad);
		return;
	}
	p->signature = 1469598103934665603ull;
	for (size_t i = 0; i < sr->count; i++) {
		struct vhd_sr_entry *e = &sr->entries[i];
		p->signature = mix(p->signature, e->name, strlen(e->name));
		p->signature = mix(p->signature, &e->mtime_ns, sizeof e->mtime_ns);
		p->signature = mix(p->signature, &e->file_size, sizeof e->file_size);
		char defect[256];
		if (e->type == VHD_TYPE_DIFF && e->parent_missing && e->ok && !raw_parent(e))
			snprintf(defect, sizeof defect, "parent not found in the SR");
		else if (check_entry(e, defect, sizeof defect))
			continue;
		bad[i] = true;
		p->unreadable |= !e->type;
		struct gc_broken *b = &p->broken[p->nbroken++];
		snprintf(b->vhd, sizeof b->vhd, "%s", e->name);
		snprintf(b->defect, sizeof b->defect, "%s", defect);
	}
	mark_blocked(p, bad);
	free(bad);
}

static void plan_entry(struct gc *g, struct plan *p, size_t i)
{
	struct vhd_sr *sr = p->sr;
	const struct vhd_sr_entry *e = &sr->entries[i];
	const struct vhd_sr_entry *par = e->parent >= 0 ? &sr->entries[e->parent] : NULL;
	const char *note = NULL;
	if (p->blocked[i] || !e->type)
		return;
	if (deferred(g, e->name))
		note = "cancelled: waits for 'vhd gc resume'";
	if (e->hidden && !e->visible_below) {
		if (e->children)
			return;   /* its hidden children go first */
		if (p->unreadable)
			note = "an unreadable file in the SR may depend on it";
		else if (e->in_use)
			note = "in use";
		add_item(p, GC_DELETE, e, NULL, 0, note);
		return;
	}
	if (!par || par->children != 1 || p->blocked[e->parent])
		return;
	if (!par->hidden)
		return;   /* merging would change a visible disk */
	if (p->unreadable)
		note = "an unreadable file in the SR may depend on it";
	if (e->hidden && e->children)
		add_item(p, GC_COALESCE, e, par, data_bytes(e), note);
	else if (!e->hidden && !e->children)
		add_item(p, GC_LEAF, e, par, data_bytes(e), note ? note : e->in_use ? "in use" : NULL);
}

static int item_order(const void *a, const void *b)
{
	const struct gc_item *x = a, *y = b;
	if ((x->kind == GC_DELETE) != (y->kind == GC_DELETE))
		return x->kind == GC_DELETE ? -1 : 1;
	if (x->chain_depth != y->chain_depth)
		return x->chain_depth > y->chain_depth ? -1 : 1;
	return 0;
}

/* Stable: ties keep the shallowest-first order the plan was built in. */
static void sort_items(struct plan *p)
{
	for (unsigned i = 1; i < p->n; i++)
		for (unsigned k = i; k > 0 && item_order(&p->items[k - 1], &p->items[k]) > 0; k--) {
			struct gc_item t = p->items[k];
			p->items[k] = p->items[k - 1];
			p->items[k - 1] = t;
		}
}

static int by_depth(const void *a, const void *b, void *sr_)
{
	const struct vhd_sr *sr = sr_;
	unsigned da = sr->entries[*(const size_t *)a].depth, db = sr->entries[*(const size_t *)b].depth;
	return da < db ? -1 : da > db;
}

static int make_plan(struct gc *g, struct plan *p)
{
	memset(p, 0, sizeof *p);
	int lk = vhd_sr_lock(g->o.dir, 1);
	if (lk < 0)
		return -1;
	p->sr = vhd_sr_scan(g->o.dir);
	if (p->sr) {
		check_all(p);
		size_t *order = calloc(p->sr->count + 1, sizeof *order);
		for (size_t i = 0; order && i < p->sr->count; i++)
			order[i] = i;
		if (order && p->sr->count)
			qsort_r(order, p->sr->count, sizeof *order, by_depth, p->sr);
		pthread_mutex_lock(&g->lock);
		for (size_t i = 0; order && p->blocked && i < p->sr->count; i++)
			plan_entry(g, p, order[i]);
		pthread_mutex_unlock(&g->lock);
		free(order);
		sort_items(p);
	}
	vhd_sr_unlock(lk);
	return p->sr && p->blocked ? 0 : -1;
}

/* Publish the plan's view (queue, leaves, broken files) to the status. */
static void publish(struct gc *g, struct plan *p)
{
	struct gc_leaf *leaves = calloc(p->sr->count + 1, sizeof *leaves);
	unsigned nl = 0;
	for (size_t i = 0; leaves && i < p->sr->count; i++) {
		const struct vhd_sr_entry *e = &p->sr->entries[i];
		if (e->type && !e->children && !e->hidden) {
			snprintf(leaves[nl].vhd, sizeof leaves[nl].vhd, "%s", e->name);
			leaves[nl++].depth = e->depth;
		}
	}
	struct gc_item *q = p->n ? malloc(p->n * sizeof *q) : NULL;
	if (q)
		memcpy(q, p->items, p->n * sizeof *q);
	struct gc_broken *b = p->nbroken ? malloc(p->nbroken * sizeof *b) : NULL;
	if (b)
		memcpy(b, p->broken, p->nbroken * sizeof *b);
	pthread_mutex_lock(&g->lock);
	free(g->queue);
	free(g->leaves);
	free(g->broken);
	g->queue = q;
	g->nqueue = q ? p->n : 0;
	g->leaves = leaves;
	g->nleaves = leaves ? nl : 0;
	g->broken = b;
	g->nbroken = b ? p->nbroken : 0;
	g->scans++;
	pthread_mutex_unlock(&g->lock);
}

/* ---- running one operation ---- */

struct op_ctx {
	struct gc *g;
	int sr_lock;              /* held from the relink phase on */
	uint64_t last_done;
};

static void set_state(struct gc *g, const char *state, const char *note)
{
	pthread_mutex_lock(&g->lock);
	g->state = state;
	snprintf(g->state_note, sizeof g->state_note, "%s", note ? note : "");
	pthread_mutex_unlock(&g->lock);
}

static bool merge_visible(const struct vhd_progress *pr)
{
	char j[PATH_MAX];
	const char *slash = strrchr(pr->base, '/');
	if (pr->bytes_done >= pr->bytes_total || !slash)
		return true;
	snprintf(j, sizeof j, "%.*s/.vhdkit-%s.journal", (int)(slash - pr->base), pr->base, slash + 1);
	return access(j, F_OK) == 0;
}

static int on_progress(const struct vhd_progress *pr, void *opaque)
{
	struct op_ctx *c = opaque;
	struct gc *g = c->g;
	bool metadata = !strcmp(pr->phase, "relink") || !strcmp(pr->phase, "delete");
	if (metadata && c->sr_lock < 0)
		c->sr_lock = vhd_sr_lock(g->o.dir, 1);
	/* held from the merge's checks until its journal is on disk, when a
	 * snapshot of the base sees the merge and refuses; free for a leaf's swap */
	if (c->sr_lock >= 0 && (!strcmp(pr->phase, "done") ||
	                        (!strcmp(pr->phase, "copy") && merge_visible(pr)))) {
		vhd_sr_unlock(c->sr_lock);
		c->sr_lock = -1;
	}
	pthread_mutex_lock(&g->lock);
	snprintf(g->phase, sizeof g->phase, "%s", pr->phase);
	if (pr->bytes_done > c->last_done) {
		g->bytes_coalesced += pr->bytes_done - c->last_done;
		g->last_progress = time(NULL);
	}
	if (pr->bytes_done > c->last_done || c->last_done == UINT64_MAX)
		c->last_done = pr->bytes_done;
	g->done = pr->bytes_done;
	g->total = pr->bytes_total;
	g->rate = pr->rate;
	g->eta = pr->eta;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd >= 0 ? fsync(fd) : -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

static bool path_in(struct gc *g, const char *name, char *out, size_t len)
{
	return (size_t)snprintf(out, len, "%s/%s", g->o.dir, name) < len;
}

/* Garbage: re-checked under the SR lock against a fresh scan. */
static int delete_garbage(struct gc *g, const struct gc_item *it, char *err, size_t len)
{
	int lk = vhd_sr_lock(g->o.dir, 1);
	if (lk < 0)
		return snprintf(err, len, "%s", vhd_get_error()), -1;
	struct vhd_sr *sr = vhd_sr_scan(g->o.dir);
	const struct vhd_sr_entry *e = NULL;
	bool unreadable = false;
	for (size_t i = 0; sr && i < sr->count; i++) {
		unreadable |= !sr->entries[i].type;
		if (!strcmp(sr->entries[i].name, it->vhd))
			e = &sr->entries[i];
	}
	char path[PATH_MAX];
	int fd = -1;
	err[0] = 0;
	if (!sr)
		snprintf(err, len, "%s", vhd_get_error());
	else if (!e || !e->ok || !e->hidden || e->children || e->visible_below || unreadable)
		snprintf(err, len, "%s: no longer garbage", it->vhd);
	else if (!path_in(g, it->vhd, path, sizeof path) ||
	         (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		snprintf(err, len, "%s: %s", it->vhd, strerror(errno));
	else if (flock(fd, LOCK_EX | LOCK_NB))
		snprintf(err, len, "%s: in use", it->vhd);
	else if (unlink(path))
		snprintf(err, len, "%s: %s", it->vhd, strerror(errno));
	else if (fsync_dir(g->o.dir))
		snprintf(err, len, "%s: fsync: %s", g->o.dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	vhd_sr_free(sr);
	vhd_sr_unlock(lk);
	return err[0] ? -1 : 0;
}

static int run_merge(struct gc *g, const struct gc_item *it)
{
	struct op_ctx c = { .g = g, .sr_lock = vhd_sr_lock(g->o.dir, 1), .last_done = UINT64_MAX };
	struct vhd_coalesce_opts *o = &g->copts;
	char path[PATH_MAX];
	if (!path_in(g, it->vhd, path, sizeof path) || c.sr_lock < 0) {
		vhd_sr_unlock(c.sr_lock);
		return -1;
	}
	o->flags = VHD_COALESCE_STRICT_DIR | (it->kind == GC_COALESCE ? VHD_COALESCE_RELINK : 0);
	o->stop = &g->stop;
	o->progress = on_progress;
	o->opaque = &c;
	int rc = it->kind == GC_COALESCE ? vhd_coalesce(path, o) : vhd_leaf_coalesce(path, o);
	vhd_sr_unlock(c.sr_lock);
	return rc;
}

static bool space_ok(struct gc *g, const struct gc_item *it, char *why, size_t len)
{
	if (it->kind == GC_DELETE)
		return true;
	struct statvfs sv;
	if (statvfs(g->o.dir, &sv))
		return true;   /* the merge's own check reports it */
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t need = it->bytes + it->bytes / 64 + (4u << 20) + g->o.min_free;
	if (need <= avail)
		return true;
	snprintf(why, len, "%.100s needs %llu MiB free (with --min-free), the SR has %llu MiB",
	         it->vhd, (unsigned long long)(need >> 20), (unsigned long long)(avail >> 20));
	return false;
}

static void run_item(struct gc *g, const struct gc_item *it)
{
	pthread_mutex_lock(&g->lock);
	g->busy = true;
	g->current = *it;
	g->state = "working";
	g->state_note[0] = 0;
	snprintf(g->phase, sizeof g->phase, "prepare");
	g->done = 0;
	g->total = it->bytes;
	g->rate = 0;
	g->eta = -1;
	g->op_started = time(NULL);
	g->stop = 0;
	g->cancelled = false;
	pthread_mutex_unlock(&g->lock);
	gc_log(g, false, "start %s %s%s%s (%llu bytes)", gc_kind_names[it->kind], it->vhd,
	       it->into[0] ? " into " : "", it->into, (unsigned long long)it->bytes);
	double t0 = now_seconds();
	char msg[512] = "";
	int rc = it->kind == GC_DELETE ? delete_garbage(g, it, msg, sizeof msg) : run_merge(g, it);
	double secs = now_seconds() - t0;
	int err = it->kind == GC_DELETE ? 0 : vhd_get_errno();
	if (rc && !msg[0])
		snprintf(msg, sizeof msg, "%s", vhd_get_error());
	pthread_mutex_lock(&g->lock);
	enum gc_result r = !rc ? GC_OK : err == EINTR ? GC_CANCELLED : GC_ERROR;
	bool cancelled = g->cancelled;
	if (r == GC_CANCELLED && cancelled && g->ndefer < GC_MAX_DEFER)
		snprintf(g->defer[g->ndefer++], sizeof g->defer[0], "%s", it->vhd);
	uint64_t moved = g->done;
	g->ops[it->kind][r]++;
	g->busy = false;
	g->last_progress = time(NULL);
	pthread_mutex_unlock(&g->lock);
	double mbs = secs > 0 ? (double)moved / secs / 1e6 : 0;
	if (r == GC_OK)
		gc_log(g, false, "end %s %s: ok, %llu bytes in %.2f s, %.1f MB/s", gc_kind_names[it->kind],
		       it->vhd, (unsigned long long)moved, secs, mbs);
	else if (r == GC_CANCELLED)
		gc_log(g, false, "end %s %s: stopped (%s), resumable, %llu bytes in %.2f s",
		       gc_kind_names[it->kind], it->vhd, cancelled ? "cancelled" : "paused or stopping",
		       (unsigned long long)moved, secs);
	else
		gc_log(g, true, "end %s %s: failed after %.2f s: %s", gc_kind_names[it->kind], it->vhd,
		       secs, msg);
	if (r == GC_ERROR) {
		pthread_mutex_lock(&g->lock);
		if (g->ndefer < GC_MAX_DEFER)   /* not retried until resume or a restart */
			snprintf(g->defer[g->ndefer++], sizeof g->defer[0], "%s", it->vhd);
		pthread_mutex_unlock(&g->lock);
	}
	gc_metrics_write_file(g);
}

/* ---- the loop ---- */

static void nap(struct gc *g, double secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&g->lock);
	if (!g->shutdown)
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
	pthread_mutex_unlock(&g->lock);
}

static bool shutting_down(struct gc *g)
{
	pthread_mutex_lock(&g->lock);
	bool s = g->shutdown;
	pthread_mutex_unlock(&g->lock);
	return s;
}

static void recover(struct gc *g)
{
	struct op_ctx c = { .g = g, .sr_lock = -1, .last_done = UINT64_MAX };
	struct vhd_coalesce_opts *o = &g->copts;
	o->flags = VHD_COALESCE_STRICT_DIR;
	o->stop = &g->stop;
	o->progress = on_progress;
	o->opaque = &c;
	set_state(g, "recovering", "completing interrupted operations");
	int n = vhd_leaf_recover(g->o.dir);
	if (n < 0)
		gc_log(g, true, "leaf swap recovery: %s", vhd_get_error());
	else if (n)
		gc_log(g, false, "completed %d interrupted leaf swap(s)", n);
	n = vhd_recover(g->o.dir, o);
	vhd_sr_unlock(c.sr_lock);
	if (n < 0)
		gc_log(g, true, "recovery: %s", vhd_get_error());
	else if (n)
		gc_log(g, false, "completed %d interrupted merge(s)", n);
}

/* The first item that can run, or NULL (with the state set). */
static const struct gc_item *pick(struct gc *g, struct plan *p, bool *space_wait)
{
	*space_wait = false;
	for (unsigned i = 0; i < p->n; i++) {
		const struct gc_item *it = &p->items[i];
		if (it->note[0])
			continue;
		char why[256];
		if (!space_ok(g, it, why, sizeof why)) {
			*space_wait = true;
			set_state(g, "waiting-for-space", why);
			return NULL;
		}
		return it;
	}
	return NULL;
}

static void log_decisions(struct gc *g, struct plan *p, uint64_t *last_sig)
{
	if (p->signature == *last_sig)
		return;
	*last_sig = p->signature;
	for (unsigned i = 0; i < p->nbroken; i++)
		gc_log(g, true, "decision: %s is damaged, never touched: %s", p->broken[i].vhd,
		       p->broken[i].defect);
	for (size_t i = 0; i < p->sr->count; i++)
		if (raw_parent(&p->sr->entries[i]))
			gc_log(g, false, "decision: the parent of %s is a raw image, not a VHD of "
			       "the SR: it is left alone", p->sr->entries[i].name);
	for (unsigned i = 0; i < p->n; i++) {
		const struct gc_item *it = &p->items[i];
		gc_log(g, false, "decision: %s %s%s%s (%llu bytes, chain depth %u)%s%s",
		       gc_kind_names[it->kind], it->vhd, it->into[0] ? " into " : "", it->into,
		       (unsigned long long)it->bytes, it->chain_depth, it->note[0] ? ": waits: " : "",
		       it->note);
	}
	if (!p->n)
		gc_log(g, false, "decision: nothing to do");
}

void *gc_worker(void *arg)
{
	struct gc *g = arg;
	recover(g);
	uint64_t last_sig = 0, own_sig = 0, logged_sig = 0;
	bool after_op = true, failed = false;
	double last_activity = -1e9;
	char last_wait[256] = "";
	while (!shutting_down(g)) {
		pthread_mutex_lock(&g->lock);
		bool paused = g->paused;
		pthread_mutex_unlock(&g->lock);
		struct plan p;
		if (make_plan(g, &p)) {
			gc_log(g, true, "scanning %s: %s", g->o.dir, vhd_get_error());
			plan_free(&p);
			if (g->o.once) {
				failed = true;
				break;
			}
			nap(g, g->o.interval);
			continue;
		}
		publish(g, &p);
		if (after_op)
			own_sig = p.signature;
		else if (p.signature != own_sig && p.signature != last_sig)
			last_activity = now_seconds();
		last_sig = p.signature;
		after_op = false;
		log_decisions(g, &p, &logged_sig);
		gc_metrics_write_file(g);
		bool space_wait;
		const struct gc_item *it = pick(g, &p, &space_wait);
		double quiet_left = last_activity + g->o.quiet_period - now_seconds();
		if (paused) {
			set_state(g, "paused", "");
		} else if (it && quiet_left > 0) {
			char note[64];
			snprintf(note, sizeof note, "activity in the SR: starts in %.0f s", quiet_left);
			set_state(g, "quiet", note);
		} else if (it) {
			struct gc_item copy = *it;
			plan_free(&p);
			run_item(g, &copy);
			after_op = true;
			last_wait[0] = 0;
			continue;
		} else if (space_wait) {
			pthread_mutex_lock(&g->lock);
			bool again = !strcmp(last_wait, g->state_note);
			snprintf(last_wait, sizeof last_wait, "%s", g->state_note);
			pthread_mutex_unlock(&g->lock);
			if (!again)
				gc_log(g, false, "waiting for space: %s", last_wait);
		} else {
			set_state(g, "idle", p.n ? "every queued operation waits" : "");
		}
		plan_free(&p);
		if (g->o.once && !paused && !(it && quiet_left > 0)) {
			failed |= space_wait;   /* --once does not wait for space */
			break;
		}
		nap(g, g->o.interval);
	}
	pthread_mutex_lock(&g->lock);
	unsigned errors = 0;
	for (int k = 0; k < GC_KINDS; k++)
		errors += (unsigned)g->ops[k][GC_ERROR];
	g->exit_code = failed || errors ? EXIT_FAIL : EXIT_OK;
	g->shutdown = true;
	g->state = "stopping";
	pthread_mutex_unlock(&g->lock);
	return NULL;
}
