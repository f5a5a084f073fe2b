/* metrics.c - the GC's Prometheus metrics: served over HTTP by
 * libmicrohttpd's thread (--metrics) and written to a file (--metrics-file)
 * for node_exporter's textfile collector. */
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"

static struct MHD_Daemon *httpd;

static void metric_help(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* NAME as a label value: backslash, quote and newline escaped. */
static void label_value(FILE *f, const char *name)
{
	for (const char *p = name; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
}

static void chain_metric(FILE *f, const char *metric, const char *chain, double value,
                         int decimals)
{
	fprintf(f, "%s{chain=\"", metric);
	label_value(f, chain);
	fprintf(f, "\"} %.*f\n", decimals, value);
}

/* Per chain (gc_status_chains): depth, layers and bytes to merge, the next
 * merge's space and whether it fits, the ETA when known.  Caller holds LOCK. */
static void chain_metrics(FILE *f, struct gc *g)
{
	static const struct { const char *name, *help; } m[] = {
		{ "vhd_gc_chain_layers", "Depth of the chain of each visible leaf." },
		{ "vhd_gc_chain_nodes_to_merge", "Layers of the chain the planned merges remove." },
		{ "vhd_gc_chain_bytes_to_merge", "Data the planned merges of the chain move." },
		{ "vhd_gc_chain_space_needed_bytes", "Free space the chain's next merge needs." },
		{ "vhd_gc_chain_space_fits", "1 if the chain's next merge fits in the free space." },
		{ "vhd_gc_chain_eta_seconds", "Seconds until the chain's planned merges are done "
		                              "(absent while unknown)." },
	};
	struct gc_chain *c;
	int n = gc_status_chains(g, &c);
	for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
		metric_help(f, m[k].name, "gauge", m[k].help);
		for (int i = 0; i < n; i++) {
			const char *leaf = g->forest[c[i].leaf].vhd;
			double v[] = { c[i].depth, c[i].nodes, (double)c[i].bytes,
			               c[i].next >= 0 ? (double)c[i].next_need : -1, c[i].next_fits,
			               c[i].eta };
			if (v[k] >= 0)
				chain_metric(f, m[k].name, leaf, v[k], k == 5 ? 3 : 0);
		}
	}
	gc_chains_free(c, n > 0 ? (unsigned)n : 0);
	metric_help(f, "vhd_gc_merge_speed_bytes_per_second", "gauge",
	            "Measured merge speed (mean of finished merges; absent while unknown).");
	if (g->speed > 0)
		fprintf(f, "vhd_gc_merge_speed_bytes_per_second %.0f\n", g->speed);
}

char *gc_metrics_text(struct gc *g)
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
	metric_help(f, "vhd_gc_rate_limit_bytes_per_second", "gauge",
	            "Rate limit (0: none); mode auto: chosen by --rate-limit auto.");
	fprintf(f, "vhd_gc_rate_limit_bytes_per_second{mode=\"%s\"} %llu\n",
	        g->o.rate_auto ? "auto" : "fixed", (unsigned long long)g->copts.rate_limit);
	if (g->pacing) {
		metric_help(f, "vhd_gc_pace_latency_seconds", "gauge",
		            "Read latency --rate-limit auto measured last (foreground, or own).");
		fprintf(f, "vhd_gc_pace_latency_seconds %.6f\n",
		        g->pace.latency_ms >= 0 ? g->pace.latency_ms / 1000 : 0.0);
		metric_help(f, "vhd_gc_pace_baseline_seconds", "gauge", "Its quiet baseline.");
		fprintf(f, "vhd_gc_pace_baseline_seconds %.6f\n",
		        g->pace.baseline_ms >= 0 ? g->pace.baseline_ms / 1000 : 0.0);
		metric_help(f, "vhd_gc_pace_decreases_total", "counter",
		            "Times --rate-limit auto slowed down (foreground congested).");
		fprintf(f, "vhd_gc_pace_decreases_total %llu\n", (unsigned long long)g->pace.decreases);
	}
	metric_help(f, "vhd_gc_paused", "gauge", "1 while paused.");
	fprintf(f, "vhd_gc_paused %d\n", g->paused);
	metric_help(f, "vhd_gc_broken_vhds", "gauge", "VHDs that fail check (never touched).");
	fprintf(f, "vhd_gc_broken_vhds %u\n", g->nbroken);
	chain_metrics(f, g);
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
	char *text = gc_metrics_text(g);
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
	char *text = found ? gc_metrics_text(g) : strdup("not found\n");
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

struct MHD_Daemon *gc_http_listen(struct gc *g, const char *option, const char *addr,
                                  unsigned flags, unsigned max_conns,
                                  MHD_AccessHandlerCallback answer, char *bound, size_t len)
{
	struct sockaddr_storage ss = { 0 };
	if (parse_addr(addr, &ss)) {
		warnx_("%s %s: expected a numeric HOST:PORT (e.g. 127.0.0.1:9163)", option, addr);
		return NULL;
	}
	flags |= MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, answer, g,
	                                        MHD_OPTION_SOCK_ADDR, &ss,
	                                        MHD_OPTION_CONNECTION_LIMIT, max_conns,
	                                        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!d) {
		warnx_("%s %s: cannot listen there", option, addr);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(bound, len, "%.*s:%u", (int)(strrchr(addr, ':') - addr), addr,
	         info ? info->port : 0);
	return d;
}

int gc_metrics_start(struct gc *g)
{
	if (!g->o.metrics_addr)
		return 0;
	httpd = gc_http_listen(g, "--metrics", g->o.metrics_addr, 0, 16, answer, g->metrics_bound,
	                       sizeof g->metrics_bound);
	if (!httpd)
		return -1;
	gc_log(g, false, "metrics on http://%s/metrics", g->metrics_bound);
	return 0;
}

void gc_metrics_stop(void)
{
	if (httpd)
		MHD_stop_daemon(httpd);
	httpd = NULL;
}
