/* web.c - the web view of `vhd gc run --http`: read-only (control stays on
 * the Unix socket).
 *   /              the page (gc/web/, built into the binary), no outside asset
 *   /api/status    the status JSON of `vhd gc status --json`
 *   /api/events    Server-Sent Events: "history" (the ring of samples) and
 *                  "status" at once, then "status" when anything but the
 *                  progress changes, "progress" (operation, totals) when it
 *                  moves, "sample" every HISTORY_STEP seconds
 *   /metrics       the Prometheus text, as --metrics serves it
 * One thread per connection: an event stream's thread waits in its content
 * reader for the next change (libmicrohttpd's internal polling would busy
 * loop on an empty read); at most WEB_MAX_STREAMS streams at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "http.h"

#define WEB_MAX_STREAMS 8
#define WEB_MAX_CONNS 32
#define HISTORY_STEP 5          /* seconds between samples */
#define HISTORY_LEN 720         /* an hour of them */
#define TICK_NS 250000000L      /* a stream looks for changes this often */
#define KEEPALIVE 5             /* seconds: a comment, so a gone client is noticed */

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

struct sample {
	time_t t;
	uint64_t bytes;         /* bytes merged since the GC started */
	double rate;            /* bytes/s over the step before T */
};

static struct {
	struct MHD_Daemon *httpd;
	pthread_t sampler;
	bool sampling, stopping;
	pthread_mutex_t lock;   /* of this struct; never held with the GC's LOCK */
	pthread_cond_t cond;
	unsigned streams;
	struct sample ring[HISTORY_LEN];
	unsigned long nsamples;   /* ever taken; ring[(n - 1) % LEN] is the last */
} web = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* ---- the ring of samples ---- */

static bool wait_tick(long ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ns % 1000000000L;
	ts.tv_sec += ns / 1000000000L + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&web.lock);
	if (!web.stopping)
		pthread_cond_timedwait(&web.cond, &web.lock, &ts);
	bool stop = web.stopping;
	pthread_mutex_unlock(&web.lock);
	return !stop;
}

static void *sampler(void *arg)
{
	struct gc *g = arg;
	uint64_t last = 0;
	double last_t = now_seconds();
	do {
		pthread_mutex_lock(&g->lock);
		uint64_t bytes = g->bytes_coalesced;
		pthread_mutex_unlock(&g->lock);
		double t = now_seconds();
		pthread_mutex_lock(&web.lock);
		struct sample *s = &web.ring[web.nsamples++ % HISTORY_LEN];
		s->t = time(NULL);
		s->bytes = bytes;
		s->rate = web.nsamples > 1 && t > last_t ? (double)(bytes - last) / (t - last_t) : 0;
		pthread_mutex_unlock(&web.lock);
		last = bytes;
		last_t = t;
	} while (wait_tick(HISTORY_STEP * 1000000000L));
	return NULL;
}

static json_object *sample_json(const struct sample *s)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "time", json_object_new_int64(s->t));
	json_object_object_add(o, "bytes", json_object_new_uint64(s->bytes));
	json_object_object_add(o, "rate", json_object_new_double(s->rate));
	return o;
}

/* Samples FROM (a count of samples ever taken) to the last, oldest first;
 * web.lock held. */
static json_object *history_json(unsigned long from)
{
	json_object *a = json_object_new_array();
	if (web.nsamples - from > HISTORY_LEN)
		from = web.nsamples - HISTORY_LEN;
	for (unsigned long i = from; i < web.nsamples; i++)
		json_object_array_add(a, sample_json(&web.ring[i % HISTORY_LEN]));
	return a;
}

/* ---- the event stream ---- */

struct stream {
	struct gc *g;
	char *out;                /* bytes not yet sent */
	size_t len, off;
	char *last_status, *last_progress;   /* what the client has */
	unsigned long samples;    /* samples sent */
	double last_write;
	bool started;
};

static void add_event(FILE *f, const char *name, json_object *data)
{
	fprintf(f, "event: %s\ndata: %s\n\n", name,
	        json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
}

/* Did TEXT change since *LAST?  Keeps TEXT as the new *LAST. */
static bool changed(char **last, const char *text)
{
	if (*last && !strcmp(*last, text))
		return false;
	free(*last);
	*last = strdup(text);
	return true;
}

/* The status split in two: what moves while a byte is copied (PROGRESS)
 * and the rest, so the tree is sent only when it changes. */
static void status_events(struct stream *s, FILE *f)
{
	static const char *const moving[] = { "operation", "totals", "last_progress", "scans",
	                                      "chains", "space_available", "time" };
	struct gc *g = s->g;
	pthread_mutex_lock(&g->lock);
	json_object *st = gc_status_json(g);
	pthread_mutex_unlock(&g->lock);
	json_object *rest = NULL, *prog = json_object_new_object();
	json_object_deep_copy(st, &rest, NULL);
	for (size_t i = 0; i < sizeof moving / sizeof *moving; i++) {
		json_object *v;
		if (json_object_object_get_ex(st, moving[i], &v))
			json_object_object_add(prog, moving[i], json_object_get(v));
		json_object_object_del(rest, moving[i]);
	}
	json_object *t;
	json_object_object_get_ex(prog, "time", &t);
	json_object_get(t);
	json_object_object_del(prog, "time");   /* compared without the clock */
	bool new_status = changed(&s->last_status, json_object_to_json_string(rest));
	bool new_progress = changed(&s->last_progress, json_object_to_json_string(prog));
	json_object_object_add(prog, "time", t);
	if (new_status)
		add_event(f, "status", st);
	else if (new_progress)
		add_event(f, "progress", prog);
	json_object_put(rest);
	json_object_put(prog);
	json_object_put(st);
}

static void fill(struct stream *s)
{
	free(s->out);
	s->out = NULL;
	s->len = s->off = 0;
	FILE *f = open_memstream(&s->out, &s->len);
	if (!f)
		return;
	if (!s->started)
		fputs("retry: 2000\n\n", f);
	pthread_mutex_lock(&web.lock);
	if (!s->started || s->samples < web.nsamples) {
		json_object *h = history_json(s->samples);
		if (s->started)
			for (size_t i = 0; i < json_object_array_length(h); i++)
				add_event(f, "sample", json_object_array_get_idx(h, i));
		else
			add_event(f, "history", h);
		json_object_put(h);
		s->samples = web.nsamples;
	}
	pthread_mutex_unlock(&web.lock);
	status_events(s, f);
	s->started = true;
	if (ftell(f) == 0 && now_seconds() - s->last_write >= KEEPALIVE)
		fputs(": keep-alive\n\n", f);
	fclose(f);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *s = cls;
	bool first = !s->started;
	while (s->off == s->len) {
		if (!first && !wait_tick(TICK_NS))
			return MHD_CONTENT_READER_END_OF_STREAM;
		first = false;
		fill(s);
		if (!s->out)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	size_t n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(buf, s->out + s->off, n);
	s->off += n;
	s->last_write = now_seconds();
	return (ssize_t)n;
}

/* The client went away or the GC stops: libmicrohttpd is done with it. */
static void stream_free(void *cls)
{
	struct stream *s = cls;
	free(s->out);
	free(s->last_status);
	free(s->last_progress);
	free(s);
	pthread_mutex_lock(&web.lock);
	web.streams--;
	pthread_mutex_unlock(&web.lock);
}

/* ---- requests ---- */

static void add_headers(struct MHD_Response *r, const char *type)
{
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy", csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cache-Control", "no-store");
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned code, const char *type,
                                 char *text)
{
	if (!text)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
	                                                         MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	add_headers(r, type);
	enum MHD_Result rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result send_events(struct gc *g, struct MHD_Connection *conn)
{
	pthread_mutex_lock(&web.lock);
	bool full = web.streams >= WEB_MAX_STREAMS;
	if (!full)
		web.streams++;
	pthread_mutex_unlock(&web.lock);
	if (full)
		return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
		                 strdup("too many event streams\n"));
	struct stream *s = calloc(1, sizeof *s);
	struct MHD_Response *r = s ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
	                                                               stream_read, s, stream_free)
	                           : NULL;
	if (!r) {
		free(s);
		pthread_mutex_lock(&web.lock);
		web.streams--;
		pthread_mutex_unlock(&web.lock);
		return MHD_NO;
	}
	s->g = g;
	s->last_write = now_seconds();
	add_headers(r, "text/event-stream");
	enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static char *status_text(struct gc *g)
{
	pthread_mutex_lock(&g->lock);
	json_object *st = gc_status_json(g);
	pthread_mutex_unlock(&g->lock);
	char *text = strdup(json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN));
	json_object_put(st);
	return text;
}

static enum MHD_Result send_asset(struct MHD_Connection *conn, const char *url)
{
	if (!strcmp(url, "/"))
		url = "/index.html";
	for (const struct gc_web_asset *a = gc_web_assets; a->path; a++) {
		if (strcmp(a->path, url))
			continue;
		struct MHD_Response *r = MHD_create_response_from_buffer(
			a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		add_headers(r, a->content_type);
		enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return rc;
	}
	return send_text(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
	                 strdup("not found\n"));
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
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
		                 strdup("read-only: control is on the GC's Unix socket\n"));
	if (!strcmp(url, "/api/status"))
		return send_text(conn, MHD_HTTP_OK, "application/json", status_text(g));
	if (!strcmp(url, "/api/events"))
		return send_events(g, conn);
	if (!strcmp(url, "/metrics"))
		return send_text(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", gc_metrics_text(g));
	return send_asset(conn, url);
}

int gc_web_start(struct gc *g)
{
	if (!g->o.http_addr)
		return 0;
	web.httpd = gc_http_listen(g, "--http", g->o.http_addr, MHD_USE_THREAD_PER_CONNECTION,
	                           WEB_MAX_CONNS, answer, g->http_bound, sizeof g->http_bound);
	if (!web.httpd)
		return -1;
	web.sampling = !pthread_create(&web.sampler, NULL, sampler, g);
	gc_log(g, false, "web view on http://%s/", g->http_bound);
	return 0;
}

void gc_web_stop(void)
{
	pthread_mutex_lock(&web.lock);
	web.stopping = true;
	pthread_cond_broadcast(&web.cond);
	pthread_mutex_unlock(&web.lock);
	if (web.httpd)
		MHD_stop_daemon(web.httpd);
	if (web.sampling)
		pthread_join(web.sampler, NULL);
	web.httpd = NULL;
	web.sampling = false;
}
