/* control.c - the GC's control socket and its metrics.
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
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

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

static json_object *item_json(const struct gc_item *it)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string(gc_kind_names[it->kind]));
	json_object_object_add(o, "vhd", json_object_new_string(it->vhd));
	json_object_object_add(o, "into", it->into[0] ? json_object_new_string(it->into) : NULL);
	json_object_object_add(o, "bytes", json_object_new_uint64(it->bytes));
	json_object_object_add(o, "chain_depth", json_object_new_int((int)it->chain_depth));
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
	} else if (!strcmp(cmd, "set-rate")) {
		if (!json_object_object_get_ex(req, "rate", &v) ||
		    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
		    json_object_get_double(v) < 0)
			return ctlsock_reply(false,
			                     "set-rate needs \"rate\": bytes per second (0: unlimited)");
		g->copts.rate_limit = (uint64_t)json_object_get_double(v);
		gc_log(g, false, "rate limit set to %llu bytes/s", (unsigned long long)g->copts.rate_limit);
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

/* ---- metrics (Prometheus text format) ---- */

static struct MHD_Daemon *httpd;

static void metric_help(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static char *metrics_text(struct gc *g)
{
	static const unsigned buckets[] = { 1, 2, 3, 5, 10, 15, 20, 25, 30 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	pthread_mutex_lock(&g->lock);
	metric_help(f, "vhd_gc_bytes_coalesced_total", "counter", "Bytes merged into parents.");
	fprintf(f, "vhd_gc_bytes_coalesced_total %llu\n", (unsigned long long)g->bytes_coalesced);
	metric_help(f, "vhd_gc_operations_total", "counter", "Operations by kind and result.");
	for (int k = 0; k < GC_KINDS; k++)
		for (int r = 0; r < GC_RESULTS; r++)
			fprintf(f, "vhd_gc_operations_total{kind=\"%s\",result=\"%s\"} %llu\n",
			        gc_kind_names[k], gc_result_names[r], (unsigned long long)g->ops[k][r]);
	metric_help(f, "vhd_gc_chain_depth", "histogram", "Chain depth of every visible leaf.");
	unsigned long long sum = 0;
	for (unsigned i = 0; i < g->nleaves; i++)
		sum += g->leaves[i].depth;
	for (size_t b = 0; b < sizeof buckets / sizeof *buckets; b++) {
		unsigned n = 0;
		for (unsigned i = 0; i < g->nleaves; i++)
			n += g->leaves[i].depth <= buckets[b];
		fprintf(f, "vhd_gc_chain_depth_bucket{le=\"%u\"} %u\n", buckets[b], n);
	}
	fprintf(f, "vhd_gc_chain_depth_bucket{le=\"+Inf\"} %u\n", g->nleaves);
	fprintf(f, "vhd_gc_chain_depth_sum %llu\nvhd_gc_chain_depth_count %u\n", sum, g->nleaves);
	uint64_t qbytes = 0;
	for (unsigned i = 0; i < g->nqueue; i++)
		qbytes += g->queue[i].bytes;
	metric_help(f, "vhd_gc_queue_bytes", "gauge", "Bytes the queued operations will move.");
	fprintf(f, "vhd_gc_queue_bytes %llu\n", (unsigned long long)qbytes);
	metric_help(f, "vhd_gc_queue_items", "gauge", "Queued operations.");
	fprintf(f, "vhd_gc_queue_items %u\n", g->nqueue);
	metric_help(f, "vhd_gc_rate_bytes_per_second", "gauge", "Copy rate of the running operation.");
	fprintf(f, "vhd_gc_rate_bytes_per_second %.0f\n", g->busy ? g->rate : 0.0);
	metric_help(f, "vhd_gc_rate_limit_bytes_per_second", "gauge", "Rate limit (0: none).");
	fprintf(f, "vhd_gc_rate_limit_bytes_per_second %llu\n", (unsigned long long)g->copts.rate_limit);
	metric_help(f, "vhd_gc_paused", "gauge", "1 while paused.");
	fprintf(f, "vhd_gc_paused %d\n", g->paused);
	metric_help(f, "vhd_gc_broken_vhds", "gauge", "VHDs that fail check (never touched).");
	fprintf(f, "vhd_gc_broken_vhds %u\n", g->nbroken);
	metric_help(f, "vhd_gc_last_progress_timestamp_seconds", "gauge",
	            "When a byte last moved or an operation ended.");
	fprintf(f, "vhd_gc_last_progress_timestamp_seconds %lld\n", (long long)g->last_progress);
	pthread_mutex_unlock(&g->lock);
	fclose(f);
	return text;
}

void gc_metrics_write_file(struct gc *g)
{
	if (!g->o.metrics_file)
		return;
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", g->o.metrics_file) >= sizeof tmp)
		return;
	char *text = metrics_text(g);
	FILE *f = text ? fopen(tmp, "w") : NULL;
	if (f) {
		fputs(text, f);
		if (fclose(f) == 0)
			rename(tmp, g->o.metrics_file);
	}
	free(text);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	struct gc *g = cls;
	bool found = !strcmp(method, "GET") && (!strcmp(url, "/metrics") || !strcmp(url, "/"));
	char *text = found ? metrics_text(g) : strdup("not found\n");
	if (!text)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
	                                                         MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	enum MHD_Result rc = MHD_queue_response(conn, found ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r);
	MHD_destroy_response(r);
	return rc;
}

/* "HOST:PORT" or "[V6]:PORT", numeric. */
static int parse_addr(const char *spec, struct sockaddr_storage *ss)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	if (!colon || (size_t)(colon - spec) >= sizeof host)
		return -1;
	snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = 0;
		h++;
	}
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	                          .ai_socktype = SOCK_STREAM }, *res;
	if (getaddrinfo(h, colon + 1, &hints, &res))
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int gc_metrics_start(struct gc *g)
{
	if (!g->o.metrics_addr)
		return 0;
	struct sockaddr_storage ss = { 0 };
	if (parse_addr(g->o.metrics_addr, &ss)) {
		warnx_("--metrics %s: expected a numeric HOST:PORT (e.g. 127.0.0.1:9163)",
		       g->o.metrics_addr);
		return -1;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	httpd = MHD_start_daemon(flags, 0, NULL, NULL, answer, g, MHD_OPTION_SOCK_ADDR, &ss,
	                         MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
	                         MHD_OPTION_END);
	if (!httpd) {
		warnx_("--metrics %s: cannot listen there", g->o.metrics_addr);
		return -1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(httpd, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = info ? info->port : 0;
	char host[100];
	snprintf(host, sizeof host, "%.*s", (int)(strrchr(g->o.metrics_addr, ':') - g->o.metrics_addr),
	         g->o.metrics_addr);
	snprintf(g->metrics_bound, sizeof g->metrics_bound, "%s:%u", host, port);
	gc_log(g, false, "metrics on http://%s/metrics", g->metrics_bound);
	return 0;
}

void gc_metrics_stop(void)
{
	if (httpd)
		MHD_stop_daemon(httpd);
	httpd = NULL;
}
