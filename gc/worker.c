/* worker.c - the GC's worker thread: gathers the facts, runs the plan.
 *
 * Each round: scan the SR under the SR lock, check every file (vhd_check;
 * results cached while a file is unchanged), let the planner (planner.c)
 * choose the operations, measure the data each merge moves, release the
 * lock, then run the first operation that can run:
 *   delete    re-checked under the SR lock against a fresh scan, then
 *             unlinked;
 *   coalesce  vhd_coalesce with relink (the SR lock is taken for the relink
 *             and delete phases, from the progress callback);
 *   commit    vhd_commit of the run's top into its base with relink, the
 *             same locking as coalesce: every layer merged in one pass;
 *   leaf      vhd_leaf_coalesce (keeps the leaf's path and UUID); a leaf
 *             that `vhd serve` serves is merged by its server instead
 *             (the live coalesce, asked for and followed over its control
 *             socket), and after a coalesce under served leaves their
 *             servers re-open their chains ("refresh"). */
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
#include "served.h"

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
	uint64_t run_key;         /* commit of a run from this top: its layers' */
	uint64_t run_bytes;       /* signature and the bytes their union holds */
};
static struct fact fact_cache[CHECK_CACHE];

static struct fact *fact_for(const struct vhd_sr_entry *e)
{
	unsigned h = 5381;
	for (const char *p = e->name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	struct fact *f = &fact_cache[h % CHECK_CACHE];
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

static uint64_t mix(uint64_t h, const void *data, size_t len)
{
	const unsigned char *c = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

/* Bytes a commit of a run of NLAYERS layers from E (its top) down moves:
 * the sectors present in any of them, counted once (a sector rewritten in
 * every layer is written once).  Without a readable chain, the sum of the
 * layers' data (more than the merge moves: the space check errs safe). */
struct union_count {
	unsigned nlayers;
	uint64_t bytes;
};

static int add_union_run(uint64_t off, uint64_t len, unsigned layer, void *opaque)
{
	struct union_count *u = opaque;
	(void)off;
	if (layer < u->nlayers)
		u->bytes += len;
	return 0;
}

static uint64_t run_bytes(const struct vhd_sr *sr, const struct gc_item *it)
{
	const struct vhd_sr_entry *e = &sr->entries[it->entry];
	uint64_t key = 1469598103934665603ull, sum = 0;
	int a = (int)it->entry;
	for (unsigned l = 0; l < it->nlayers && a >= 0; l++, a = sr->entries[a].parent) {
		const struct vhd_sr_entry *x = &sr->entries[a];
		key = mix(key, x->name, strlen(x->name));
		key = mix(key, &x->file_size, sizeof x->file_size);
		key = mix(key, &x->mtime_ns, sizeof x->mtime_ns);
		sum += data_bytes(x);
	}
	struct fact *f = fact_for(e);
	if (f->run_key == key)
		return f->run_bytes;
	vhd_t *v = vhd_open(e->path, VHD_OPEN_RDONLY | VHD_OPEN_STRICT_DIR);
	struct union_count u = { .nlayers = it->nlayers };
	f->run_bytes = v && vhd_map(v, 1, add_union_run, &u) == 0 ? u.bytes : sum;
	f->run_key = key;
	vhd_close(v);
	return f->run_bytes;
}

/* ---- planning ---- */

struct plan {
	struct vhd_sr *sr;
	struct gc_plan ops;       /* what gc_plan_make chose, bytes measured */
	uint64_t signature;       /* of the SR's names, sizes and mtimes */
};

static void plan_free(struct plan *p)
{
	vhd_sr_free(p->sr);
	gc_plan_free(&p->ops);
	memset(p, 0, sizeof *p);
}

static bool deferred(struct gc *g, const char *name)
{
	for (unsigned i = 0; i < g->ndefer; i++)
		if (!strcmp(g->defer[i], name))
			return true;
	return false;
}

/* A differencing VHD whose parent is a raw image (nil parent UUID, blktap's
 * snapshot -m): the parent is not a VHD of the SR and is never touched. */
static bool raw_parent(const struct vhd_sr_entry *e)
{
	return e->ok && raw_parent_of(e->type, e->parent_uuid);
}

/* A visible leaf in use whose user is a `vhd serve` that answers for it. */
static bool served_leaf(const struct vhd_sr_entry *e)
{
	char control[PATH_MAX], why[1024];
	return e->ok && e->type && e->in_use && !e->hidden && !e->children &&
	       !served_find(e->path, NULL, control, sizeof control, why, sizeof why);
}

/* What the planner needs to know of each entry that the scan does not say:
 * its defect (written into DEFECTS) and whether it waits for resume; and
 * the SR's signature, to tell activity from our own operations. */
static void gather_facts(struct gc *g, struct plan *p, struct gc_facts *facts,
                         char (*defects)[256])
{
	struct vhd_sr *sr = p->sr;
	p->signature = 1469598103934665603ull;
	for (size_t i = 0; i < sr->count; i++) {
		struct vhd_sr_entry *e = &sr->entries[i];
		p->signature = mix(p->signature, e->name, strlen(e->name));
		/* a guest writing its disk is no activity in the SR: the quiet
		 * period would never end under a running VM */
		if (!e->in_use) {
			p->signature = mix(p->signature, &e->mtime_ns, sizeof e->mtime_ns);
			p->signature = mix(p->signature, &e->file_size, sizeof e->file_size);
		}
		facts[i].served = served_leaf(e);
		if (e->type == VHD_TYPE_DIFF && e->parent_missing && e->ok && !raw_parent(e))
			snprintf(defects[i], sizeof defects[i], "parent not found in the SR");
		else if (check_entry(e, defects[i], sizeof defects[i]))
			continue;
		facts[i].defect = defects[i];
	}
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < sr->count; i++)
		facts[i].deferred = deferred(g, sr->entries[i].name);
	pthread_mutex_unlock(&g->lock);
}

/* Scan, check and plan under the SR lock; -1 with WHY set on failure. */
static int make_plan(struct gc *g, struct plan *p, char *why, size_t len)
{
	memset(p, 0, sizeof *p);
	int lk = vhd_sr_lock(g->o.dir, 1);
	if (lk < 0 || !(p->sr = vhd_sr_scan(g->o.dir))) {
		snprintf(why, len, "%s", vhd_get_error());
		vhd_sr_unlock(lk);
		return -1;
	}
	size_t n = p->sr->count + 1;
	struct gc_facts *facts = calloc(n, sizeof *facts);
	char (*defects)[256] = calloc(n, sizeof *defects);
	int rc = -1;
	if (facts && defects) {
		gather_facts(g, p, facts, defects);
		rc = gc_plan_make(p->sr, facts, &p->ops);
	}
	for (unsigned i = 0; !rc && i < p->ops.n; i++) {
		struct gc_item *it = &p->ops.items[i];
		if (it->kind == GC_COMMIT)
			it->bytes = run_bytes(p->sr, it);
		else if (it->kind != GC_DELETE)
			it->bytes = data_bytes(&p->sr->entries[it->entry]);
	}
	if (rc)
		snprintf(why, len, "out of memory");
	free(defects);
	free(facts);
	vhd_sr_unlock(lk);
	return rc;
}

static uint64_t sr_avail(struct gc *g);

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
	const struct gc_plan *ops = &p->ops;
	struct gc_item *q = ops->n ? malloc(ops->n * sizeof *q) : NULL;
	if (q)
		memcpy(q, ops->items, ops->n * sizeof *q);
	struct gc_broken *b = ops->nbroken ? malloc(ops->nbroken * sizeof *b) : NULL;
	if (b)
		memcpy(b, ops->broken, ops->nbroken * sizeof *b);
	struct gc_node *forest = calloc(p->sr->count + 1, sizeof *forest);
	for (size_t i = 0; forest && i < p->sr->count; i++) {
		const struct vhd_sr_entry *e = &p->sr->entries[i];
		forest[i] = (struct gc_node){ .parent = e->parent, .type = e->type,
		                              .hidden = e->hidden, .in_use = e->in_use,
		                              .virtual_size = e->virtual_size,
		                              .file_size = e->file_size, .depth = e->depth };
		snprintf(forest[i].vhd, sizeof forest[i].vhd, "%s", e->name);
	}
	uint64_t avail = sr_avail(g);
	pthread_mutex_lock(&g->lock);
	g->space_avail = avail;
	free(g->queue);
	free(g->leaves);
	free(g->broken);
	free(g->forest);
	g->forest = forest;
	g->nforest = forest ? (unsigned)p->sr->count : 0;
	g->queue = q;
	g->nqueue = q ? ops->n : 0;
	g->leaves = leaves;
	g->nleaves = leaves ? nl : 0;
	g->broken = b;
	g->nbroken = b ? ops->nbroken : 0;
	g->scans++;
	pthread_mutex_unlock(&g->lock);
}

/* ---- running one operation ---- */

struct op_ctx {
	struct gc *g;
	int sr_lock;              /* held from the relink phase on */
	uint64_t last_done;
	uint64_t last_reads;      /* the copy's read count and time last seen */
	double last_read_seconds;
};

/* The copy threads' reads, summed over operations (pace.c's own latency);
 * a merge's counters start again from 0.  Caller holds LOCK. */
static void count_reads(struct op_ctx *c, const struct vhd_progress *pr)
{
	if (pr->copy_reads < c->last_reads) {
		c->last_reads = 0;
		c->last_read_seconds = 0;
	}
	c->g->copy_reads += pr->copy_reads - c->last_reads;
	c->g->copy_read_seconds += pr->copy_read_seconds - c->last_read_seconds;
	c->last_reads = pr->copy_reads;
	c->last_read_seconds = pr->copy_read_seconds;
}

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
	count_reads(c, pr);
	pthread_mutex_unlock(&g->lock);
	return 0;
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
	else if (gc_fsync_dir(g->o.dir))
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
	char path[PATH_MAX], base[PATH_MAX];
	if (!path_in(g, it->vhd, path, sizeof path) || !path_in(g, it->into, base, sizeof base) ||
	    c.sr_lock < 0) {
		vhd_sr_unlock(c.sr_lock);
		return -1;
	}
	o->flags = VHD_COALESCE_STRICT_DIR | (it->kind != GC_LEAF ? VHD_COALESCE_RELINK : 0);
	o->stop = &g->stop;
	o->progress = on_progress;
	o->opaque = &c;
	int rc = it->kind == GC_COALESCE ? vhd_coalesce(path, o)
	         : it->kind == GC_COMMIT ? vhd_commit(path, base, o) : vhd_leaf_coalesce(path, o);
	vhd_sr_unlock(c.sr_lock);
	return rc;
}

/* ---- a leaf served by `vhd serve`: its server merges it ---- */

#define LIVE_POLL_US 200000
#define LIVE_IDLE_MAX 25          /* polls (5 s) that may show no merge */

/* Send CMD to the server; 0, or -1 with the reason in MSG. */
static int live_command(const char *control, const char *cmd, long long rate, char *msg,
                        size_t len)
{
	char why[512];
	const char *err;
	json_object *r = served_call(control, cmd, rate, why, sizeof why);
	int rc = served_ok(r, &err) ? 0 : -1;
	if (rc)
		snprintf(msg, len, "%s: %.400s", cmd, r ? err : why);
	json_object_put(r);
	return rc;
}

/* The server's live status as the GC's own progress. */
static void live_progress(struct op_ctx *c, json_object *live, const char *path)
{
	uint64_t done = (uint64_t)json_num(live, "bytes_done"), left = (uint64_t)json_num(live, "bytes_left");
	double rate = json_num(live, "rate");
	const char *phase = json_str(live, "phase");
	struct vhd_progress pr = { .phase = phase ? phase : "?", .top = path, .base = path,
	                           .bytes_done = done, .bytes_total = done + left, .rate = rate,
	                           .eta = rate > 0 ? (double)left / rate : -1 };
	on_progress(&pr, c);
}

/* Has the merge ended?  1 not yet, 0 done, -1 not done (why in MSG;
 * *ERR EINTR when cancelled).  IDLE counts the polls that showed none. */
static int live_ended(json_object *live, unsigned *idle, char *msg, size_t len, int *err)
{
	const char *phase = json_str(live, "phase"), *why = json_str(live, "error");
	if (!strcmp(phase, "done"))
		return 0;
	if (!strcmp(phase, "failed"))
		snprintf(msg, len, "the server's live coalesce failed: %s", why ? why : "no reason given");
	else if (!strcmp(phase, "cancelled"))
		snprintf(msg, len, "live coalesce cancelled"), *err = EINTR;
	else if (!strcmp(phase, "idle") && ++*idle > LIVE_IDLE_MAX)
		snprintf(msg, len, "the server is not merging it (phase idle)");
	else
		return 1;
	return -1;
}

/* Follow the server's merge until it ends, passing on the GC's rate limit
 * and its stop (pause, cancel, shutdown: the server cancels, the chain
 * stays as it was).  0 done; -1 with MSG, *ERR EINTR when cancelled. */
static int follow_live(struct gc *g, const char *control, const char *path, uint64_t limit,
                       char *msg, size_t len, int *err)
{
	struct op_ctx c = { .g = g, .sr_lock = -1, .last_done = UINT64_MAX };
	bool cancel_sent = false;
	char why[512];
	for (unsigned idle = 0;; usleep(LIVE_POLL_US)) {
		if (g->stop && !cancel_sent && !live_command(control, "cancel", -1, why, sizeof why))
			cancel_sent = true;
		if (g->copts.rate_limit != limit &&
		    !live_command(control, "set-rate", (long long)g->copts.rate_limit, why, sizeof why))
			limit = g->copts.rate_limit;
		json_object *s = served_call(control, "status", -1, why, sizeof why);
		json_object *live = served_live(s);
		int rc = -1;
		if (!live || !json_str(live, "phase")) {
			snprintf(msg, len, "the server stopped answering (%.400s)", s ? "no live status" : why);
		} else {
			live_progress(&c, live, path);
			rc = live_ended(live, &idle, msg, len, err);
		}
		json_object_put(s);
		if (rc <= 0)
			return rc;
	}
}

static int run_live(struct gc *g, const struct gc_item *it, char *msg, size_t len, int *err)
{
	char path[PATH_MAX], control[PATH_MAX], why[512];
	if (!path_in(g, it->vhd, path, sizeof path))
		return snprintf(msg, len, "%s: path too long", it->vhd), -1;
	if (served_find(path, NULL, control, sizeof control, why, sizeof why))
		return snprintf(msg, len, "%.200s: %.300s", it->vhd, why), -1;
	uint64_t limit = g->copts.rate_limit;
	if (live_command(control, "live-coalesce", (long long)limit, why, sizeof why))
		return snprintf(msg, len, "%.200s: its server refused: %.280s", it->vhd, why), -1;
	gc_log(g, false, "%s: its server (control %s) merges it live", it->vhd, control);
	if (follow_live(g, control, path, limit, why, sizeof why, err))
		return snprintf(msg, len, "%.200s: %.300s", it->vhd, why), -1;
	return 0;
}

/* Does entry I have entry A in its chain? */
static bool below(const struct vhd_sr *sr, size_t i, int a)
{
	int p = sr->entries[i].parent;
	for (size_t steps = 0; p >= 0 && steps <= sr->count; steps++, p = sr->entries[p].parent)
		if (p == a)
			return true;
	return false;
}

/* After a coalesce or commit deleted layers from under served leaves: their servers
 * still hold it open (its space is not freed) until they re-open their
 * chains. */
static void refresh_servers(struct gc *g, const struct gc_item *it)
{
	int lk = vhd_sr_lock(g->o.dir, 1);
	struct vhd_sr *sr = lk >= 0 ? vhd_sr_scan(g->o.dir) : NULL;
	int into = -1;
	for (size_t i = 0; sr && i < sr->count; i++)
		if (!strcmp(sr->entries[i].name, it->into))
			into = (int)i;
	for (size_t i = 0; sr && into >= 0 && i < sr->count; i++) {
		const struct vhd_sr_entry *e = &sr->entries[i];
		char control[PATH_MAX], why[1024];
		if (!below(sr, i, into) || !served_leaf(e) ||
		    served_find(e->path, NULL, control, sizeof control, why, sizeof why))
			continue;
		if (live_command(control, "refresh", -1, why, sizeof why))
			gc_log(g, true, "refresh the server of %s after merging %s: %s", e->name, it->vhd,
			       why);
		else
			gc_log(g, false, "refresh the server of %s: %s is released", e->name, it->vhd);
	}
	vhd_sr_free(sr);
	vhd_sr_unlock(lk);
}

/* The SR's free bytes, UINT64_MAX when unknown. */
static uint64_t sr_avail(struct gc *g)
{
	struct statvfs sv;
	if (statvfs(g->o.dir, &sv))
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static bool space_ok(struct gc *g, const struct gc_item *it, char *why, size_t len)
{
	if (it->kind == GC_DELETE)
		return true;
	uint64_t avail = sr_avail(g);
	if (avail == UINT64_MAX)
		return true;   /* the merge's own check reports it */
	uint64_t need = gc_space_need(it, g->o.min_free);
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
	gc_log(g, false, "start %s %s%s%s%s (%s%s%s%llu bytes)", gc_kind_names[it->kind], it->vhd,
	       it->into[0] ? " into " : "", it->into, it->live ? " (live, by its vhd serve)" : "",
	       it->layers[0] ? "layers " : "", it->layers, it->layers[0] ? ", " : "",
	       (unsigned long long)it->bytes);
	double t0 = now_seconds();
	pthread_mutex_lock(&g->lock);
	uint64_t coalesced_before = g->bytes_coalesced, limit_before = g->copts.rate_limit;
	pthread_mutex_unlock(&g->lock);
	char msg[512] = "";
	int err = 0, rc = it->live ? run_live(g, it, msg, sizeof msg, &err)
	                  : it->kind == GC_DELETE ? delete_garbage(g, it, msg, sizeof msg)
	                                          : run_merge(g, it);
	double secs = now_seconds() - t0;
	if (!it->live && it->kind != GC_DELETE)
		err = vhd_get_errno();
	if (rc && !msg[0])
		snprintf(msg, sizeof msg, "%s", vhd_get_error());
	pthread_mutex_lock(&g->lock);
	enum gc_result r = !rc ? GC_OK : err == EINTR ? GC_CANCELLED : GC_ERROR;
	bool cancelled = g->cancelled;
	if (r == GC_CANCELLED && cancelled && g->ndefer < GC_MAX_DEFER)
		snprintf(g->defer[g->ndefer++], sizeof g->defer[0], "%s", it->vhd);
	uint64_t moved = g->done, moved_now = g->bytes_coalesced - coalesced_before;
	uint64_t limit = g->copts.rate_limit;
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
	if (r == GC_OK && (it->kind == GC_COALESCE || it->kind == GC_COMMIT))
		refresh_servers(g, it);
	/* a speed under one rate limit, not a mix (set-rate while it ran) */
	if (r == GC_OK && it->kind != GC_DELETE && limit == limit_before)
		gc_speed_note(g, moved_now, secs, limit);   /* what this run moved: not a resumed part */
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
	for (unsigned i = 0; i < p->ops.n; i++) {
		const struct gc_item *it = &p->ops.items[i];
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
	for (unsigned i = 0; i < p->ops.nbroken; i++)
		gc_log(g, true, "decision: %s is damaged, never touched: %s", p->ops.broken[i].vhd,
		       p->ops.broken[i].defect);
	for (size_t i = 0; i < p->sr->count; i++)
		if (raw_parent(&p->sr->entries[i]))
			gc_log(g, false, "decision: the parent of %s is a raw image, not a VHD of "
			       "the SR: it is left alone", p->sr->entries[i].name);
	for (unsigned i = 0; i < p->ops.n; i++) {
		const struct gc_item *it = &p->ops.items[i];
		gc_log(g, false, "decision: %s %s%s%s%s (%s%s%s%llu bytes, chain depth %u)%s%s",
		       gc_kind_names[it->kind], it->vhd, it->into[0] ? " into " : "", it->into,
		       it->live ? " live, by its vhd serve" : "",
		       it->layers[0] ? "layers " : "", it->layers, it->layers[0] ? ", " : "",
		       (unsigned long long)it->bytes, it->chain_depth, it->note[0] ? ": waits: " : "",
		       it->note);
	}
	if (!p->ops.n)
		gc_log(g, false, "decision: nothing to do");
}

void *gc_worker(void *arg)
{
	struct gc *g = arg;
	/* this thread's own I/O (metadata, syncs) too; the copy threads set it
	 * on themselves from copts */
	if (g->o.io_priority && vhd_set_io_priority(g->o.io_priority)) {
		gc_log(g, true, "%s", vhd_get_error());
		pthread_mutex_lock(&g->lock);
		g->exit_code = EXIT_FAIL;
		g->shutdown = true;
		pthread_mutex_unlock(&g->lock);
		return NULL;
	}
	gc_speed_load(g);
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
		char why[512];
		if (make_plan(g, &p, why, sizeof why)) {
			gc_log(g, true, "scanning %s: %s", g->o.dir, why);
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
			set_state(g, "idle", p.ops.n ? "every queued operation waits" : "");
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
