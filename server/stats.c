/* stats.c - what `vhd serve --control` reports: connections, and per NBD
 * command the requests, bytes, errors and a latency histogram. */
#include <time.h>

#include "server.h"

static const char *const cmd_names[SERVE_CMDS] = {
	"read", "write", "zero", "trim", "flush", "cache", "block_status",
};

uint64_t stats_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void stats_init(struct serve_stats *s)
{
	*s = (struct serve_stats){ .started_ns = stats_now_ns() };
}

void stats_connection(struct serve_stats *s, int delta)
{
	__atomic_fetch_add(&s->connections, delta, __ATOMIC_RELAXED);
	if (delta > 0)
		__atomic_fetch_add(&s->connections_total, 1, __ATOMIC_RELAXED);
}

/* Bucket of a latency: the power of two, then the next 3 bits below it. */
static unsigned bucket_of(uint64_t ns)
{
	if (ns < LAT_SUB)
		return (unsigned)ns;
	unsigned p = 63 - (unsigned)__builtin_clzll(ns);
	unsigned b = p * LAT_SUB + (unsigned)((ns >> (p - 3)) & (LAT_SUB - 1));
	return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

/* The middle of bucket B, in nanoseconds (the inverse of bucket_of). */
static double bucket_value(unsigned b)
{
	if (b < LAT_SUB)
		return b;
	unsigned p = b / LAT_SUB, sub = b % LAT_SUB;
	double low = (double)(1ull << p) * (1.0 + sub / (double)LAT_SUB);
	return low + (double)(1ull << p) / LAT_SUB / 2;
}

void stats_request(struct serve_stats *s, enum serve_cmd cmd, uint64_t bytes, uint64_t t0,
                   bool failed)
{
	struct serve_cmd_stats *c = &s->cmd[cmd];
	__atomic_fetch_add(&c->requests, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->bytes, bytes, __ATOMIC_RELAXED);
	if (failed)
		__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->latency[bucket_of(stats_now_ns() - t0)], 1, __ATOMIC_RELAXED);
}

static json_object *latency_json(const uint64_t *hist)
{
	static const struct { const char *name; double q; } qs[] = {
		{ "p50", 0.50 }, { "p90", 0.90 }, { "p99", 0.99 }, { "max", 1.0 },
	};
	uint64_t copy[LAT_BUCKETS], total = 0;
	for (unsigned b = 0; b < LAT_BUCKETS; b++)
		total += copy[b] = __atomic_load_n(&hist[b], __ATOMIC_RELAXED);
	json_object *o = json_object_new_object();
	for (unsigned i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		uint64_t want = (uint64_t)(qs[i].q * (double)total + 0.999999), seen = 0;
		unsigned b = 0;
		while (b < LAT_BUCKETS - 1 && seen + copy[b] < want)
			seen += copy[b++];
		json_object_object_add(o, qs[i].name,
		                       total ? json_object_new_double(bucket_value(b) / 1000) : NULL);
	}
	return o;
}

json_object *stats_json(struct serve_stats *s)
{
	json_object *o = json_object_new_object(), *cmds = json_object_new_object();
	json_object_object_add(o, "uptime_s",
	                       json_object_new_double((double)(stats_now_ns() - s->started_ns) / 1e9));
	json_object_object_add(o, "connections",
	                       json_object_new_int64(__atomic_load_n(&s->connections,
	                                                             __ATOMIC_RELAXED)));
	json_object_object_add(o, "connections_total",
	                       json_object_new_uint64(__atomic_load_n(&s->connections_total,
	                                                              __ATOMIC_RELAXED)));
	uint64_t errors = 0;
	for (int k = 0; k < SERVE_CMDS; k++) {
		struct serve_cmd_stats *c = &s->cmd[k];
		json_object *e = json_object_new_object();
		uint64_t err = __atomic_load_n(&c->errors, __ATOMIC_RELAXED);
		errors += err;
		json_object_object_add(e, "requests", json_object_new_uint64(
		                                          __atomic_load_n(&c->requests, __ATOMIC_RELAXED)));
		json_object_object_add(e, "bytes", json_object_new_uint64(
		                                       __atomic_load_n(&c->bytes, __ATOMIC_RELAXED)));
		json_object_object_add(e, "errors", json_object_new_uint64(err));
		json_object_object_add(e, "latency_us", latency_json(c->latency));
		json_object_object_add(cmds, cmd_names[k], e);
	}
	json_object_object_add(o, "commands", cmds);
	json_object_object_add(o, "errors", json_object_new_uint64(errors));
	return o;
}
