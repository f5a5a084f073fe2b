/* control.c - the GC's control socket.
 *
 * Socket protocol: newline-delimited JSON, one request object per line, one
 * reply object per line:
 *   {"cmd":"status"}                  -> {"ok":true, ...the status...}
 *   {"cmd":"pause"} {"cmd":"resume"} {"cmd":"cancel"}
 *   {"cmd":"set-rate","rate":BYTES_PER_S}   (0 = unlimited)
 *                                     -> {"ok":true} or {"ok":false,"error":"..."}
 * Anyone who can connect may ask for the status (the socket's mode is 0660,
 * group --socket-group); the other commands are for the socket owner's uid
 * and root only, told by SO_PEERCRED. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlsock.h"
#include "gc.h"

int gc_socket_path(const char *dir, const char *explicit_path, char *out, size_t len)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n = explicit_path ? snprintf(out, len, "%s", explicit_path)
	                      : snprintf(out, len, "%s/" GC_SOCKET_NAME, dir);
	if (n < 0 || (size_t)n >= len || (size_t)n >= max) {
		warnx_("socket path too long (at most %zu bytes): use --socket", max - 1);
		return -1;
	}
	return 0;
}

/* ---- status ---- */

/* The files a coalesce or commit merges and deletes, bottom up (null for
 * a delete or a leaf-coalesce). */
static json_object *layers_json(const struct gc_item *it)
{
	if (it->kind != GC_COALESCE && it->kind != GC_COMMIT)
		return NULL;
	json_object *a = json_object_new_array();
	if (it->kind == GC_COALESCE) {
		json_object_array_add(a, json_object_new_string(it->vhd));
		return a;
	}
	for (const char *s = it->layers; *s;) {
		size_t len = strcspn(s, "/");
		json_object_array_add(a, json_object_new_string_len(s, (int)len));
		s += len + (s[len] == '/');
	}
	return a;
}

static json_object *item_json(const struct gc_item *it)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string(gc_kind_names[it->kind]));
	json_object_object_add(o, "vhd", json_object_new_string(it->vhd));
	json_object_object_add(o, "into", it->into[0] ? json_object_new_string(it->into) : NULL);
	json_object_object_add(o, "layers", layers_json(it));
	json_object_object_add(o, "bytes", json_object_new_uint64(it->bytes));
	json_object_object_add(o, "chain_depth", json_object_new_int((int)it->chain_depth));
	json_object_object_add(o, "live", json_object_new_boolean(it->live));
	json_object_object_add(o, "waits", it->note[0] ? json_object_new_string(it->note) : NULL);
	return o;
}

static json_object *operation_json(struct gc *g)
{
	if (!g->busy)
		return NULL;
	json_object *o = item_json(&g->current);
	json_object_object_del(o, "waits");
	json_object_object_add(o, "phase", json_object_new_string(g->phase));
	json_object_object_add(o, "bytes_done", json_object_new_uint64(g->done));
	json_object_object_add(o, "bytes_total", json_object_new_uint64(g->total));
	json_object_object_add(o, "rate", json_object_new_double(g->rate));
	json_object_object_add(o, "eta", g->eta >= 0 ? json_object_new_double(g->eta) : NULL);
	json_object_object_add(o, "started", json_object_new_int64(g->op_started));
	return o;
}

static json_object *totals_json(struct gc *g)
{
	json_object *t = json_object_new_object(), *ops = json_object_new_object();
	json_object_object_add(t, "bytes_coalesced", json_object_new_uint64(g->bytes_coalesced));
	for (int k = 0; k < GC_KINDS; k++) {
		json_object *r = json_object_new_object();
		for (int x = 0; x < GC_RESULTS; x++)
			json_object_object_add(r, gc_result_names[x], json_object_new_uint64(g->ops[k][x]));
		json_object_object_add(ops, gc_kind_names[k], r);
	}
	json_object_object_add(t, "operations", ops);
	return t;
}

/* Every file of the last scan, its parent by name (null for a root). */
static json_object *forest_json(struct gc *g)
{
	json_object *f = json_object_new_array();
	for (unsigned i = 0; i < g->nforest; i++) {
		const struct gc_node *n = &g->forest[i];
		json_object *e = json_object_new_object();
		json_object_object_add(e, "vhd", json_object_new_string(n->vhd));
		json_object_object_add(e, "parent", n->parent >= 0 && (unsigned)n->parent < g->nforest
		                       ? json_object_new_string(g->forest[n->parent].vhd) : NULL);
		json_object_object_add(e, "type", n->type ? json_object_new_string(type_name(n->type))
		                                          : NULL);
		json_object_object_add(e, "hidden", json_object_new_boolean(n->hidden));
		json_object_object_add(e, "in_use", json_object_new_boolean(n->in_use));
		json_object_object_add(e, "virtual_size", json_object_new_uint64(n->virtual_size));
		json_object_object_add(e, "file_size", json_object_new_uint64(n->file_size));
		json_object_object_add(e, "depth", json_object_new_int((int)n->depth));
		json_object_array_add(f, e);
	}
	return f;
}

/* What chains.c needs of the status; caller holds LOCK. */
static void chain_input(struct gc *g, struct gc_chain_input *in)
{
	*in = (struct gc_chain_input){
		.forest = g->forest, .nforest = g->nforest, .queue = g->queue, .nqueue = g->nqueue,
		.current = g->busy ? &g->current : NULL,
		.current_left = g->busy && g->total > g->done ? g->total - g->done : 0,
		.speed = g->speed, .speed_limit = g->speed_limit, .rate_limit = g->copts.rate_limit,
		.avail = g->space_avail,
		.min_free = g->o.min_free,
	};
}

int gc_status_chains(struct gc *g, struct gc_chain **out)
{
	struct gc_chain_input in;
	chain_input(g, &in);
	return gc_chains_make(&in, out);
}

static json_object *seconds_or_null(double s)
{
	return s >= 0 ? json_object_new_double(s) : NULL;
}

static json_object *chain_json(struct gc *g, const struct gc_chain *c)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "vhd", json_object_new_string(g->forest[c->leaf].vhd));
	json_object_object_add(o, "root", json_object_new_string(g->forest[c->root].vhd));
	json_object_object_add(o, "depth", json_object_new_int((int)c->depth));
	json_object_object_add(o, "nodes_to_merge", json_object_new_int((int)c->nodes));
	json_object_object_add(o, "bytes_to_merge", json_object_new_uint64(c->bytes));
	json_object *next = NULL;
	if (c->next >= 0) {
		const struct gc_item *it = &g->queue[c->next];
		next = json_object_new_object();
		json_object_object_add(next, "kind", json_object_new_string(gc_kind_names[it->kind]));
		json_object_object_add(next, "vhd", json_object_new_string(it->vhd));
		json_object_object_add(next, "space_needed", json_object_new_uint64(c->next_need));
		json_object_object_add(next, "fits", c->next_fits < 0 ? NULL
		                                     : json_object_new_boolean(c->next_fits));
	}
	json_object_object_add(o, "next", next);
	json_object_object_add(o, "waits", c->waits ? json_object_new_string(c->waits) : NULL);
	json_object_object_add(o, "eta", seconds_or_null(c->eta));
	json_object *steps = json_object_new_array();
	for (unsigned i = 0; i < c->nsteps; i++) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "depth", json_object_new_int((int)c->steps[i].depth));
		json_object_object_add(s, "eta", seconds_or_null(c->steps[i].eta));
		json_object_array_add(steps, s);
	}
	json_object_object_add(o, "schedule", steps);
	return o;
}

/* Per chain: depth, what waits to be merged, space, ETA (chains.c). */
static json_object *chains_json(struct gc *g)
{
	struct gc_chain *c;
	int n = gc_status_chains(g, &c);
	json_object *a = json_object_new_array();
	for (int i = 0; i < n; i++)
		json_object_array_add(a, chain_json(g, &c[i]));
	gc_chains_free(c, n > 0 ? (unsigned)n : 0);
	return a;
}

static json_object *speed_json(struct gc *g)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "bytes_per_second", g->speed > 0 ? json_object_new_double(g->speed)
	                                                           : NULL);
	json_object_object_add(o, "samples", json_object_new_int64(g->speed_samples));
	json_object_object_add(o, "rate_limit", json_object_new_uint64(g->speed_limit));
	return o;
}

/* The controller of --rate-limit auto: what it measures and decided. */
static json_object *pace_json(struct gc *g)
{
	const struct pace *p = &g->pace;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "signal", json_object_new_string(g->pace_signal));
	json_object_object_add(o, "device", g->pace_device[0]
	                                        ? json_object_new_string(g->pace_device) : NULL);
	json_object_object_add(o, "decision", json_object_new_string(p->decision));
	json_object_object_add(o, "rate", json_object_new_uint64((uint64_t)p->rate));
	json_object_object_add(o, "latency_ms", p->latency_ms >= 0
	                                            ? json_object_new_double(p->latency_ms) : NULL);
	json_object_object_add(o, "baseline_ms", p->baseline_ms >= 0
	                                             ? json_object_new_double(p->baseline_ms) : NULL);
	json_object_object_add(o, "foreground_reads_per_s", json_object_new_double(p->fg_reads_per_s));
	json_object_object_add(o, "decreases", json_object_new_uint64(p->decreases));
	return o;
}

json_object *gc_status_json(struct gc *g)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "sr", json_object_new_string(g->o.dir));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "state", json_object_new_string(g->state));
	json_object_object_add(o, "note", json_object_new_string(g->state_note));
	json_object_object_add(o, "paused", json_object_new_boolean(g->paused));
	json_object_object_add(o, "rate_limit", json_object_new_uint64(g->copts.rate_limit));
	json_object_object_add(o, "rate_mode", json_object_new_string(g->o.rate_auto ? "auto" : "fixed"));
	json_object_object_add(o, "pace", g->pacing ? pace_json(g) : NULL);
	char prio[32];
	json_object_object_add(o, "io_priority", json_object_new_string(
		io_priority_name(g->o.io_priority, prio, sizeof prio)));
	json_object_object_add(o, "operation", operation_json(g));
	json_object *q = json_object_new_array();
	uint64_t qbytes = 0;
	for (unsigned i = 0; i < g->nqueue; i++) {
		json_object_array_add(q, item_json(&g->queue[i]));
		qbytes += g->queue[i].bytes;
	}
	json_object_object_add(o, "queue", q);
	json_object_object_add(o, "queue_bytes", json_object_new_uint64(qbytes));
	json_object *l = json_object_new_array();
	for (unsigned i = 0; i < g->nleaves; i++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "vhd", json_object_new_string(g->leaves[i].vhd));
		json_object_object_add(e, "depth", json_object_new_int((int)g->leaves[i].depth));
		json_object_array_add(l, e);
	}
	json_object_object_add(o, "leaves", l);
	json_object *b = json_object_new_array();
	for (unsigned i = 0; i < g->nbroken; i++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "vhd", json_object_new_string(g->broken[i].vhd));
		json_object_object_add(e, "defect", json_object_new_string(g->broken[i].defect));
		json_object_array_add(b, e);
	}
	json_object_object_add(o, "broken", b);
	json_object_object_add(o, "forest", forest_json(g));
	json_object_object_add(o, "chains", chains_json(g));
	json_object_object_add(o, "speed", speed_json(g));
	json_object_object_add(o, "space_available", g->space_avail == UINT64_MAX ? NULL
	                                             : json_object_new_uint64(g->space_avail));
	json_object_object_add(o, "depth_warning", json_object_new_int(GC_DEPTH_WARNING));
	json_object_object_add(o, "depth_limit", json_object_new_int(VHD_XEN_MAX_DEPTH));
	json_object *errs = json_object_new_array();
	for (unsigned i = 0; i < g->nerrors; i++) {
		unsigned k = (g->errors_next + GC_MAX_ERRORS - g->nerrors + i) % GC_MAX_ERRORS;
		json_object *e = json_object_new_object();
		json_object_object_add(e, "time", json_object_new_int64(g->errors[k].when));
		json_object_object_add(e, "message", json_object_new_string(g->errors[k].message));
		json_object_array_add(errs, e);
	}
	json_object_object_add(o, "errors", errs);
	json_object_object_add(o, "totals", totals_json(g));
	json_object_object_add(o, "scans", json_object_new_int64(g->scans));
	json_object_object_add(o, "last_progress", json_object_new_int64(g->last_progress));
	json_object_object_add(o, "time", json_object_new_int64(time(NULL)));
	json_object_object_add(o, "metrics", g->metrics_bound[0]
	                                         ? json_object_new_string(g->metrics_bound) : NULL);
	json_object_object_add(o, "http", g->http_bound[0]
	                                      ? json_object_new_string(g->http_bound) : NULL);
	return o;
}

/* ---- commands ---- */

static json_object *control(struct gc *g, const char *cmd, json_object *req)
{
	json_object *v;
	if (!strcmp(cmd, "pause")) {
		g->paused = true;
		g->stop = 1;
		gc_log(g, false, "paused by request");
	} else if (!strcmp(cmd, "resume")) {
		g->paused = false;
		g->ndefer = 0;
		gc_log(g, false, "resumed by request");
	} else if (!strcmp(cmd, "cancel")) {
		if (!g->busy)
			return ctlsock_reply(false, "no operation is running");
		g->cancelled = true;
		g->stop = 1;
		gc_log(g, false, "cancel requested for %s", g->current.vhd);
	} else if (!strcmp(cmd, "set-rate") && json_object_object_get_ex(req, "rate", &v) &&
	           json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), "auto")) {
		if (!g->pacing)
			return ctlsock_reply(false, "this GC was not started with --rate-limit auto");
		g->o.rate_auto = true;
		g->copts.rate_limit = (uint64_t)g->pace.rate;
		gc_log(g, false, "rate limit back to auto");
	} else if (!strcmp(cmd, "set-rate")) {
		if (!json_object_object_get_ex(req, "rate", &v) ||
		    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
		    json_object_get_double(v) < 0)
			return ctlsock_reply(false,
			                     "set-rate needs \"rate\": bytes per second (0: unlimited)");
		g->copts.rate_limit = (uint64_t)json_object_get_double(v);
		gc_log(g, false, "rate limit set to %llu bytes/s%s", (unsigned long long)g->copts.rate_limit,
		       g->o.rate_auto ? " (auto off: 'set-rate DIR auto' turns it on)" : "");
		g->o.rate_auto = false;
	} else {
		return ctlsock_reply(false, "unknown command");
	}
	pthread_cond_broadcast(&g->wake);
	return ctlsock_reply(true, NULL);
}

static json_object *handle(struct gc *g, const char *line, bool may_control)
{
	const char *cmd;
	json_object *req = ctlsock_request(line, &cmd);
	if (!req)
		return ctlsock_reply(false, "expected a JSON object with \"cmd\"");
	bool known = !strcmp(cmd, "pause") || !strcmp(cmd, "resume") || !strcmp(cmd, "cancel") ||
	             !strcmp(cmd, "set-rate");
	json_object *out;
	pthread_mutex_lock(&g->lock);   /* control() logs without it: gc_log(g, false) */
	if (!strcmp(cmd, "status"))
		out = gc_status_json(g);
	else if (!known)
		out = ctlsock_reply(false, "unknown command");
	else if (!may_control)
		out = ctlsock_reply(false,
		                    "permission denied: only the GC's user and root may control it");
	else
		out = control(g, cmd, req);
	pthread_mutex_unlock(&g->lock);
	json_object_put(req);
	return out;
}

/* ---- the socket loop ---- */

static json_object *handle_line(const char *line, bool may_control, void *opaque)
{
	return handle(opaque, line, may_control);
}

static bool shut_down(void *opaque)
{
	struct gc *g = opaque;
	pthread_mutex_lock(&g->lock);
	bool down = g->shutdown;
	pthread_mutex_unlock(&g->lock);
	return down;
}

int gc_server_run(struct gc *g)
{
	char why[512];
	int lfd = ctlsock_listen(g->o.socket_path, 0660, g->o.socket_group, why, sizeof why);
	if (lfd < 0) {
		warnx_("%s", why);
		return -1;
	}
	ctlsock_serve(lfd, g->o.socket_path, handle_line, shut_down, g);
	return 0;
}
