/* client.c - `vhd gc status|wait|pause|resume|cancel|set-rate`: talk to
 * the GC of an SR over its socket. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctlsock.h"
#include "gc.h"

static const char client_help[] =
	"usage: vhd gc status [--json] [--watch] [--socket PATH] DIR\n"
	"       vhd gc pause|resume|cancel [--socket PATH] DIR\n"
	"       vhd gc set-rate [--socket PATH] DIR RATE\n"
	"       vhd gc wait DIR --vhd FILE --max-depth N [--timeout SECS]\n"
	"                   [--stuck-after SECS] [--json] [--socket PATH]\n"
	"\n"
	"status    the GC's state, current operation (progress bar), queue, damaged\n"
	"          VHDs, recent errors, and per chain (a visible leaf to its root):\n"
	"          depth, layers and bytes to merge, the space the next merge needs\n"
	"          and whether it fits, and the ETA from the measured merge speed\n"
	"pause     stop the current operation at a consistent point (resumable)\n"
	"          and start no other until 'resume'\n"
	"resume    go on (also retries cancelled and failed operations)\n"
	"cancel    stop the current operation (resumable); it waits for 'resume'\n"
	"set-rate  change the copy rate limit now (bytes/s, K/M/G; 0 = none; 'auto'\n"
	"          gives it back to the controller of a GC run with --rate-limit auto)\n"
	"wait      block until FILE's chain is at most N deep; fail early, with the\n"
	"          reason, when the GC is not running, paused, stuck (no progress\n"
	"          for --stuck-after seconds, default 60), has nothing that would\n"
	"          shorten the chain, or a VHD of the chain is damaged; exit 4 at\n"
	"          once when the GC's ETA for that depth exceeds --timeout\n"
	"\n"
	"Examples:\n"
	"  vhd gc status --watch /srv/sr\n"
	"  vhd gc set-rate /srv/sr 50M\n"
	"  vhd gc wait /srv/sr --vhd /srv/sr/vm.vhd --max-depth 10 --timeout 600\n";

struct json_object *gc_request(const char *sock, struct json_object *cmd, bool quiet)
{
	char why[512];
	json_object *out = ctlsock_call(sock, cmd, 10000, NULL, why, sizeof why);
	if (!out && !quiet)
		warnx_("no GC answers: %s (is 'vhd gc run' running?)", why);
	return out;
}

static json_object *cmd_object(const char *cmd)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	return o;
}

static json_object *jget(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* ---- status for people ---- */

static void print_bar(double done, double total, double rate, double eta)
{
	int width = 30, fill = total > 0 ? (int)(done / total * width) : 0;
	char bar[31], a[32], b[32], r[32];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = 0;
	printf("  [%s] %5.1f%%  %s / %s  %s/s", bar, total > 0 ? done / total * 100 : 0,
	       human_size((uint64_t)done, a, sizeof a), human_size((uint64_t)total, b, sizeof b),
	       human_size((uint64_t)rate, r, sizeof r));
	if (eta >= 0)
		printf("  ETA %.0f s", eta);
	putchar('\n');
}

static void print_queue(json_object *q)
{
	size_t n = json_object_array_length(q);
	if (!n)
		return;
	printf("\n%-14s %-40s %-40s %12s %6s  %s\n", "KIND", "VHD", "INTO", "BYTES", "DEPTH",
	       "WAITS");
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(q, i);
		char b[32];
		const char *into = json_str(it, "into"), *waits = json_str(it, "waits");
		printf("%-14s %-40s %-40s %12s %6.0f  %s\n", json_str(it, "kind"), json_str(it, "vhd"),
		       into ? into : "-", human_size((uint64_t)json_num(it, "bytes"), b, sizeof b),
		       json_num(it, "chain_depth"), waits ? waits : "");
	}
}

static void print_eta(json_object *eta, char *out, size_t len)
{
	if (!eta)
		snprintf(out, len, "unknown");
	else   /* tenths under 10 s: a merge of a few MiB is not "0 s" */
		snprintf(out, len, json_object_get_double(eta) < 10 ? "%.1f s" : "%.0f s",
		         json_object_get_double(eta));
}

/* Per chain: what waits to be merged, the next merge's space, the ETA. */
static void print_chains(json_object *s)
{
	json_object *c = jget(s, "chains"), *sp = jget(s, "speed");
	json_object *speed = sp ? jget(sp, "bytes_per_second") : NULL;
	char b[32], n[32], e[32];
	if (speed)
		printf("\nmerge speed: %s/s (mean of %.0f merges)\n",
		       human_size((uint64_t)json_object_get_double(speed), b, sizeof b),
		       json_num(sp, "samples"));
	else
		printf("\nmerge speed: unknown until a merge ends (ETAs unknown)\n");
	size_t nc = c ? json_object_array_length(c) : 0;
	if (!nc)
		return;
	printf("%-40s %5s %8s %12s %12s %5s %10s  %s\n", "CHAIN (LEAF)", "DEPTH", "TO MERGE",
	       "BYTES", "NEXT NEEDS", "FITS", "ETA", "WAITS");
	for (size_t i = 0; i < nc; i++) {
		json_object *ch = json_object_array_get_idx(c, i), *next = jget(ch, "next");
		json_object *fits = next ? jget(next, "fits") : NULL;
		const char *waits = json_str(ch, "waits");
		print_eta(jget(ch, "eta"), e, sizeof e);
		printf("%-40s %5.0f %8.0f %12s %12s %5s %10s  %s\n", json_str(ch, "vhd"), json_num(ch, "depth"),
		       json_num(ch, "nodes_to_merge"),
		       human_size((uint64_t)json_num(ch, "bytes_to_merge"), b, sizeof b),
		       next ? human_size((uint64_t)json_num(next, "space_needed"), n, sizeof n) : "-",
		       !fits ? "-" : json_object_get_boolean(fits) ? "yes" : "no", e,
		       waits ? waits : "");
	}
}

/* The auto rate's reason, e.g. "pacing on the foreground reads of vda:
 * congested, foreground reads 8900/s, latency 0.61 ms, quiet 0.14 ms". */
static void print_pace(json_object *p)
{
	if (!p || !json_object_is_type(p, json_type_object))
		return;
	json_object *lat = jget(p, "latency_ms"), *base = jget(p, "baseline_ms");
	printf("  pacing on the %s: %s", json_str(p, "signal"), json_str(p, "decision"));
	if (json_str(p, "device"))
		printf(", foreground reads %.0f/s", json_num(p, "foreground_reads_per_s"));
	if (lat)
		printf(", latency %.2f ms", json_object_get_double(lat));
	if (base)
		printf(", quiet %.2f ms", json_object_get_double(base));
	putchar('\n');
}

static void print_status(json_object *s)
{
	char b[32], r[32];
	const char *note = json_str(s, "note");
	uint64_t limit = (uint64_t)json_num(s, "rate_limit");
	const char *mode = json_str(s, "rate_mode");
	bool automatic = mode && !strcmp(mode, "auto");
	printf("SR %s: %s%s%s (pid %.0f), rate limit %s%s%s\n", json_str(s, "sr"), json_str(s, "state"),
	       note && *note ? ": " : "", note ? note : "", json_num(s, "pid"),
	       automatic ? "auto, now " : "", limit ? human_size(limit, r, sizeof r) : "none",
	       limit ? "/s" : "");
	if (automatic)
		print_pace(jget(s, "pace"));
	json_object *op = jget(s, "operation");
	if (op && json_object_is_type(op, json_type_object)) {
		const char *into = json_str(op, "into");
		json_object *live = jget(op, "live");
		printf("now: %s %s%s%s%s, phase %s\n", json_str(op, "kind"), json_str(op, "vhd"),
		       into ? " into " : "", into ? into : "",
		       live && json_object_get_boolean(live) ? " (live, by its vhd serve)" : "",
		       json_str(op, "phase"));
		json_object *eta = jget(op, "eta");
		print_bar(json_num(op, "bytes_done"), json_num(op, "bytes_total"), json_num(op, "rate"),
		          eta ? json_object_get_double(eta) : -1);
	}
	json_object *q = jget(s, "queue");
	printf("queue: %zu operation(s), %s to move\n", q ? json_object_array_length(q) : 0,
	       human_size((uint64_t)json_num(s, "queue_bytes"), b, sizeof b));
	if (q)
		print_queue(q);
	json_object *l = jget(s, "leaves");
	size_t nl = l ? json_object_array_length(l) : 0;
	printf("\nleaves (chain depth):");
	for (size_t i = 0; i < nl; i++) {
		json_object *e = json_object_array_get_idx(l, i);
		printf("%s %s %.0f", i ? "," : "", json_str(e, "vhd"), json_num(e, "depth"));
	}
	putchar('\n');
	print_chains(s);
	json_object *br = jget(s, "broken");
	for (size_t i = 0; br && i < json_object_array_length(br); i++) {
		json_object *e = json_object_array_get_idx(br, i);
		printf("damaged (never touched): %s: %s\n", json_str(e, "vhd"), json_str(e, "defect"));
	}
	json_object *er = jget(s, "errors");
	for (size_t i = 0; er && i < json_object_array_length(er); i++) {
		json_object *e = json_object_array_get_idx(er, i);
		time_t t = (time_t)json_num(e, "time");
		char ts[32];
		strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime(&t));
		printf("error %s: %s\n", ts, json_str(e, "message"));
	}
	json_object *tot = jget(s, "totals");
	printf("coalesced so far: %s\n", human_size((uint64_t)json_num(tot, "bytes_coalesced"), b, sizeof b));
}

/* ---- options shared by the subcommands ---- */

struct client_opts {
	const char *socket, *vhd;
	bool json, watch;
	long max_depth;
	double timeout, stuck_after;
	char sock[PATH_MAX];
};

static int parse_client(int argc, char **argv, struct client_opts *c, int want_args)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "vhd", required_argument, NULL, 'v' },
		{ "max-depth", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stuck-after", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;
	char *end;
	c->max_depth = -1;
	c->timeout = 0;
	c->stuck_after = 60;
	while ((o = getopt_long(argc, argv, "s:jwv:d:t:S:h", lo, NULL)) != -1) {
		switch (o) {
		case 's': c->socket = optarg; break;
		case 'j': c->json = true; break;
		case 'w': c->watch = true; break;
		case 'v': c->vhd = optarg; break;
		case 'd':
			c->max_depth = strtol(optarg, &end, 10);
			if (*end || c->max_depth < 1)
				return usage(client_help, true);
			break;
		case 't':
		case 'S':
			*(o == 't' ? &c->timeout : &c->stuck_after) = strtod(optarg, &end);
			if (*end)
				return usage(client_help, true);
			break;
		case 'h': return usage(client_help, false) - 1;
		default: return usage(client_help, true);
		}
	}
	if (argc - optind != want_args)
		return usage(client_help, true);
	char dir[PATH_MAX];
	if (!realpath(argv[optind], dir)) {
		warnx_("%s: %s", argv[optind], strerror(errno));
		return EXIT_FAIL;
	}
	return gc_socket_path(dir, c->socket, c->sock, sizeof c->sock) ? EXIT_USAGE : 0;
}

static int status(struct client_opts *c)
{
	for (;;) {
		json_object *s = gc_request(c->sock, cmd_object("status"), false);
		if (!s)
			return EXIT_FAIL;
		if (c->watch && isatty(STDOUT_FILENO))
			fputs("\033[H\033[J", stdout);
		if (c->json)
			json_print(s);
		else {
			print_status(s);
			json_object_put(s);
		}
		if (!c->watch)
			return EXIT_OK;
		fflush(stdout);
		sleep(1);
	}
}

static int control_cmd(struct client_opts *c, json_object *req)
{
	json_object *r = gc_request(c->sock, req, false);
	if (!r)
		return EXIT_FAIL;
	json_object *ok = jget(r, "ok");
	int rc = ok && json_object_get_boolean(ok) ? EXIT_OK : EXIT_REFUSED;
	if (rc)
		warnx_("%s", json_str(r, "error") ? json_str(r, "error") : "refused");
	json_object_put(r);
	return rc;
}

/* ---- wait ---- */

struct waiter {
	struct client_opts *c;
	char **chain;             /* names of the chain's files, leaf first */
	unsigned nchain;
	unsigned depth;
	char why[512];
	double first_scans;       /* the GC's scan count when we began */
	bool eta_checked;         /* against --timeout, on the first scanned status */
	double eta;               /* to reach --max-depth, -1 unknown */
};

static void free_chain(struct waiter *w)
{
	for (unsigned i = 0; i < w->nchain; i++)
		free(w->chain[i]);
	free(w->chain);
	w->chain = NULL;
	w->nchain = 0;
}

static const char *name_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* The chain's depth and member names, read under the SR lock (a relink
 * rewrites headers in place): 0, or 1 while the lock is busy (the GC can
 * hold it for long at a merge's start under a rate limit: the last figures
 * stay, and the timeout and the GC's state are still watched), or -1. */
static int measure(struct waiter *w)
{
	int lk = vhd_sr_lock_file(w->c->vhd, 0);
	if (lk < 0 && vhd_get_errno() == EBUSY)
		return 1;
	free_chain(w);
	vhd_t *v = vhd_open(w->c->vhd, VHD_OPEN_RDONLY);
	if (!v) {
		snprintf(w->why, sizeof w->why, "%s", vhd_get_error());
		vhd_sr_unlock(lk);
		return -1;
	}
	w->depth = vhd_chain_depth(v);
	w->chain = calloc(w->depth + 1, sizeof *w->chain);
	for (vhd_t *p = v; p && w->chain; p = vhd_get_parent(p)) {
		struct vhd_info info;
		if (!vhd_get_info(p, &info))
			w->chain[w->nchain++] = strdup(name_of(info.path));
	}
	vhd_close(v);
	vhd_sr_unlock(lk);
	return 0;
}

static bool in_chain(struct waiter *w, const char *name)
{
	for (unsigned i = 0; name && i < w->nchain; i++)
		if (!strcmp(w->chain[i], name))
			return true;
	return false;
}

/* Does the GC plan (or run) anything that shortens this chain? */
static bool chain_has_work(struct waiter *w, json_object *s, const char **waits)
{
	*waits = NULL;
	json_object *op = jget(s, "operation");
	if (op && json_object_is_type(op, json_type_object) &&
	    (in_chain(w, json_str(op, "vhd")) || in_chain(w, json_str(op, "into"))))
		return true;
	json_object *q = jget(s, "queue");
	bool any = false;
	for (size_t i = 0; q && i < json_object_array_length(q); i++) {
		json_object *it = json_object_array_get_idx(q, i);
		if (!in_chain(w, json_str(it, "vhd")) && !in_chain(w, json_str(it, "into")))
			continue;
		if (!json_str(it, "waits"))
			any = true;
		else if (!*waits)
			*waits = json_str(it, "waits");
	}
	return any;
}

/* Why waiting is pointless, or NULL to go on waiting. */
static const char *verdict(struct waiter *w, json_object *s, double *last_change,
                           double *last_scan_change, double *seen_scans, double *seen_progress)
{
	double t = now_seconds();
	json_object *br = jget(s, "broken");
	for (size_t i = 0; br && i < json_object_array_length(br); i++) {
		json_object *e = json_object_array_get_idx(br, i);
		if (in_chain(w, json_str(e, "vhd"))) {
			snprintf(w->why, sizeof w->why, "%s is damaged: %s", json_str(e, "vhd"), json_str(e, "defect"));
			return "broken";
		}
	}
	if (json_object_get_boolean(jget(s, "paused"))) {
		snprintf(w->why, sizeof w->why, "the GC is paused ('vhd gc resume' continues)");
		return "paused";
	}
	json_object *op = jget(s, "operation");
	double progress = json_num(jget(s, "totals"), "bytes_coalesced") + json_num(s, "last_progress") +
	                  (op && json_object_is_type(op, json_type_object) ? json_num(op, "bytes_done") : 0);
	if (progress != *seen_progress) {
		*seen_progress = progress;
		*last_change = t;
	}
	if (json_num(s, "scans") != *seen_scans) {
		*seen_scans = json_num(s, "scans");
		*last_scan_change = t;
	}
	const char *waits;
	bool work = chain_has_work(w, s, &waits);
	const char *state = json_str(s, "state");
	if (!work && w->nchain && state && strcmp(state, "working") && *seen_scans >= 0 &&
	    t - *last_scan_change < 30 && w->c->stuck_after >= 0) {
		/* two scans since we began, and nothing for this chain */
		if (w->first_scans < 0)
			w->first_scans = *seen_scans;
		if (*seen_scans >= w->first_scans + 2) {
			snprintf(w->why, sizeof w->why, "the GC has nothing that would shorten this chain%s%s",
			         waits ? ": " : "", waits ? waits : "");
			return "nothing-to-do";
		}
	}
	if (state && !strcmp(state, "waiting-for-space") && t - *last_change > w->c->stuck_after) {
		snprintf(w->why, sizeof w->why, "the GC waits for space: %s", json_str(s, "note"));
		return "no-space";
	}
	if (t - *last_change > w->c->stuck_after) {
		snprintf(w->why, sizeof w->why, "stuck: no bytes moved for %.0f s (state %s)",
		         t - *last_change, state ? state : "?");
		return "stuck";
	}
	return NULL;
}

/* The ETA of the status's chain of FILE (as gc/chains.c computed its
 * schedule) to be at most MAX_DEPTH deep; -1 unknown or no such chain. */
static double chain_eta(json_object *s, const char *file, unsigned max_depth, unsigned *depth)
{
	json_object *chains = jget(s, "chains"), *ch = NULL;
	for (size_t i = 0; chains && i < json_object_array_length(chains); i++) {
		json_object *c = json_object_array_get_idx(chains, i);
		const char *vhd = json_str(c, "vhd");
		if (vhd && !strcmp(vhd, name_of(file)))
			ch = c;
	}
	json_object *sched = ch ? jget(ch, "schedule") : NULL;
	if (!sched || !json_object_is_type(sched, json_type_array))
		return -1;
	struct gc_chain c = { .depth = (unsigned)json_num(ch, "depth"),
	                      .nsteps = (unsigned)json_object_array_length(sched) };
	if (!(c.steps = calloc(c.nsteps + 1, sizeof *c.steps)))
		return -1;
	for (unsigned i = 0; i < c.nsteps; i++) {
		json_object *st = json_object_array_get_idx(sched, i), *eta = jget(st, "eta");
		c.steps[i] = (struct gc_chain_step){ .depth = (unsigned)json_num(st, "depth"),
		                                     .eta = eta ? json_object_get_double(eta) : -1 };
	}
	double eta = gc_chain_eta_to_depth(&c, max_depth);
	free(c.steps);
	*depth = c.depth;
	return eta;
}

/* Fails at once ("eta") when the GC's ETA for the chain already exceeds
 * --timeout; checked once, on the first status after a scan (with the
 * chain's depth as the GC saw it: the file is not opened, so a GC holding
 * the SR lock does not delay the answer). */
static const char *eta_verdict(struct waiter *w, json_object *s)
{
	unsigned depth = 0;
	if (w->eta_checked || json_num(s, "scans") < 1)
		return NULL;
	w->eta_checked = true;
	w->eta = chain_eta(s, w->c->vhd, (unsigned)w->c->max_depth, &depth);
	if (w->c->timeout <= 0 || w->eta < 0 || w->eta <= w->c->timeout)
		return NULL;
	w->depth = depth;
	json_object *speed = jget(jget(s, "speed"), "bytes_per_second");
	char r[32];
	snprintf(w->why, sizeof w->why, "the GC's ETA for depth <= %ld is %.0f s, more than "
	         "--timeout %.0f s (merge speed %s/s)", w->c->max_depth, w->eta, w->c->timeout,
	         human_size(speed ? (uint64_t)json_object_get_double(speed) : 0, r, sizeof r));
	return "eta";
}

static void wait_progress(struct waiter *w, json_object *s, bool tty)
{
	if (!tty)
		return;
	json_object *op = jget(s, "operation");
	char line[256] = "";
	if (op && json_object_is_type(op, json_type_object)) {
		double total = json_num(op, "bytes_total"), done = json_num(op, "bytes_done");
		snprintf(line, sizeof line, "; %s %s %.0f%%", json_str(op, "kind"), json_str(op, "vhd"),
		         total > 0 ? done / total * 100 : 0);
	}
	fprintf(stderr, "\rdepth %u, waiting for %ld (GC %s%s)\033[K", w->depth, w->c->max_depth,
	        json_str(s, "state") ? json_str(s, "state") : "?", line);
}

static int wait_result(struct waiter *w, const char *reason)
{
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	if (w->c->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(!reason));
		json_object_object_add(o, "depth", json_object_new_int((int)w->depth));
		json_object_object_add(o, "max_depth", json_object_new_int((int)w->c->max_depth));
		json_object_object_add(o, "reason", reason ? json_object_new_string(reason) : NULL);
		json_object_object_add(o, "eta", w->eta >= 0 ? json_object_new_double(w->eta) : NULL);
		json_object_object_add(o, "message", reason ? json_object_new_string(w->why) : NULL);
		json_print(o);
	} else if (!reason) {
		printf("%s: chain depth %u <= %ld\n", w->c->vhd, w->depth, w->c->max_depth);
	}
	if (reason)
		warnx_("%s: %s (%s)", w->c->vhd, w->why, reason);
	free_chain(w);
	if (reason && !strcmp(reason, "eta"))
		return EXIT_REFUSED;   /* nothing was waited for: the request cannot be met */
	return reason ? EXIT_FAIL : EXIT_OK;
}

static int wait_depth(struct client_opts *c)
{
	if (!c->vhd || c->max_depth < 1) {
		warnx_("wait needs --vhd FILE and --max-depth N");
		return usage(client_help, true);
	}
	struct waiter w = { .c = c, .first_scans = -1, .eta = -1 };
	double start = now_seconds(), last_change = start, last_scan = start, scans = -1, prog = -1;
	bool tty = isatty(STDERR_FILENO);
	json_object *first = gc_request(c->sock, cmd_object("status"), true);
	const char *early = first ? eta_verdict(&w, first) : NULL;
	json_object_put(first);
	if (early)
		return wait_result(&w, early);
	for (;;) {
		int m = measure(&w);
		if (m < 0)
			return wait_result(&w, "broken");
		if (!m && w.depth <= (unsigned)c->max_depth)
			return wait_result(&w, NULL);
		json_object *s = gc_request(c->sock, cmd_object("status"), true);
		if (!s) {
			snprintf(w.why, sizeof w.why, "the GC is not running (no answer on %.400s)", c->sock);
			return wait_result(&w, "not-running");
		}
		const char *why = eta_verdict(&w, s);
		if (!why)
			why = verdict(&w, s, &last_change, &last_scan, &scans, &prog);
		wait_progress(&w, s, tty);
		json_object_put(s);
		if (why)
			return wait_result(&w, why);
		if (c->timeout > 0 && now_seconds() - start > c->timeout) {
			if (w.nchain)
				snprintf(w.why, sizeof w.why, "timed out after %.0f s at depth %u", c->timeout,
				         w.depth);
			else
				snprintf(w.why, sizeof w.why, "timed out after %.0f s, the chain's depth "
				         "unread (the SR lock stayed busy)", c->timeout);
			return wait_result(&w, "timeout");
		}
		usleep(200000);
	}
}

int gc_client_main(const char *sub, int argc, char **argv)
{
	struct client_opts c = { 0 };
	bool set_rate = !strcmp(sub, "set-rate");
	bool known = set_rate || !strcmp(sub, "status") || !strcmp(sub, "wait") ||
	             !strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "cancel");
	if (!known) {
		warnx_("gc: unknown subcommand '%s'", sub);
		return usage(client_help, true);
	}
	int rc = parse_client(argc, argv, &c, set_rate ? 2 : 1);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (!strcmp(sub, "status"))
		return status(&c);
	if (!strcmp(sub, "wait"))
		return wait_depth(&c);
	json_object *req = cmd_object(sub);
	if (set_rate && !strcmp(argv[optind + 1], "auto")) {
		json_object_object_add(req, "rate", json_object_new_string("auto"));
	} else if (set_rate) {
		uint64_t rate;
		if (parse_size(argv[optind + 1], &rate)) {
			json_object_put(req);
			warnx_("bad rate '%s'", argv[optind + 1]);
			return usage(client_help, true);
		}
		json_object_object_add(req, "rate", json_object_new_uint64(rate));
	}
	return control_cmd(&c, req);
}
