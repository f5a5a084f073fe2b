/* live-coalesce.c - `vhd live-coalesce LEAF`: ask the `vhd serve` that
 * serves LEAF to merge it into its parent while it serves it (server/,
 * lib/live.c), and follow the merge until it ends.  The server is found
 * and verified by common/served.c. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "served.h"
#include "vhd.h"

static const char help[] =
	"usage: vhd live-coalesce [--control PATH] [--rate RATE] [--no-wait] [--json] LEAF\n"
	"       vhd live-coalesce --cancel [--control PATH] LEAF\n"
	"       vhd live-coalesce --set-rate RATE [--control PATH] LEAF\n"
	"\n"
	"Merge LEAF into its parent while `vhd serve` serves it, without stopping\n"
	"the guest: the server copies LEAF's sectors into the parent while guest\n"
	"writes go on, mirrors each write into the parent when the copy does not\n"
	"catch up, then pivots (a pause of milliseconds): the parent takes LEAF's\n"
	"path and UUID.  The work is journaled; a server restarted after a crash\n"
	"resumes it.  The server is found from the discovery file it keeps beside\n"
	"LEAF (.vhd-serve-NAME.json) and believed only when its control socket\n"
	"answers from that process and names LEAF (same device and inode).\n"
	"Follows the merge (phase, bytes done and left, rates) until it ends.\n"
	"\n"
	"Options:\n"
	"  -c, --control PATH  the server's control socket (default: discovered)\n"
	"  -r, --rate RATE     copy at most RATE bytes/s (K/M/G; 0 = no limit);\n"
	"                      the mirror mode still guarantees the end\n"
	"  -n, --no-wait       start it and exit\n"
	"  -j, --json          progress as one JSON object per line on stdout\n"
	"      --cancel        stop the running merge (the chain stays as it was)\n"
	"      --set-rate RATE change the running merge's rate limit\n"
	"  -h, --help          this text\n"
	"\n"
	"SIGINT or SIGTERM cancel the merge (exit 5); --no-wait leaves it to run.\n"
	"Exit codes: 0 done, 1 failed (the reason is printed), 2 usage or LEAF not\n"
	"served by a running `vhd serve`, 4 refused by the server (already\n"
	"running, parent not hidden or shared, ...), 5 cancelled.\n"
	"\n"
	"Examples:\n"
	"  vhd live-coalesce /srv/sr/vm1.vhd\n"
	"  vhd live-coalesce --rate 100M --no-wait /srv/sr/vm1.vhd\n"
	"  vhd live-coalesce --cancel /srv/sr/vm1.vhd\n";

#define POLL_US 200000

struct live_cli {
	const char *leaf, *control_opt;
	long long rate, set_rate;
	bool no_wait, json, cancel;
	char control[4096];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int parse_rate(const char *arg, long long *out)
{
	uint64_t r;
	if (parse_size(arg, &r) || r > (uint64_t)INT64_MAX)
		return -1;
	*out = (long long)r;
	return 0;
}

static int parse_args(struct live_cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "cancel", no_argument, NULL, 'C' },
		{ "set-rate", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;
	c->rate = c->set_rate = -1;
	while ((opt = getopt_long(argc, argv, "c:r:njh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': c->control_opt = optarg; break;
		case 'r': if (parse_rate(optarg, &c->rate)) return -1; break;
		case 'n': c->no_wait = true; break;
		case 'j': c->json = true; break;
		case 'C': c->cancel = true; break;
		case 'R': if (parse_rate(optarg, &c->set_rate)) return -1; break;
		case 'h': return 1;
		default: return -1;
		}
	}
	if (optind != argc - 1 || (c->cancel && c->set_rate >= 0))
		return -1;
	c->leaf = argv[optind];
	return 0;
}

/* One command whose reply is only ok or an error: 0, or the exit code. */
static int simple_command(struct live_cli *c, const char *cmd, long long rate)
{
	char why[1024];
	const char *err;
	json_object *r = served_call(c->control, cmd, rate, why, sizeof why);
	int rc = EXIT_OK;
	if (!r) {
		warnx_("%s: %s", c->leaf, why);
		rc = EXIT_FAIL;
	} else if (!served_ok(r, &err)) {
		warnx_("%s: %s refused: %s", c->leaf, cmd, err);
		rc = EXIT_REFUSED;
	}
	json_object_put(r);
	return rc;
}

static bool terminal_phase(const char *phase)
{
	return phase && (!strcmp(phase, "done") || !strcmp(phase, "failed") ||
	                 !strcmp(phase, "cancelled"));
}

/* One progress line: on a terminal at every poll, else when the phase
 * changes (LAST, 16 bytes, keeps it); --json: every poll. */
static void show(struct live_cli *c, json_object *live, char *last)
{
	const char *phase = json_str(live, "phase");
	bool changed = !phase || strcmp(last, phase);
	if (c->json) {
		printf("%s\n", json_object_to_json_string_ext(live, JSON_C_TO_STRING_PLAIN));
		fflush(stdout);
	} else if (isatty(STDERR_FILENO) || changed) {
		char done[32], left[32];
		human_size((uint64_t)json_num(live, "bytes_done"), done, sizeof done);
		human_size((uint64_t)json_num(live, "bytes_left"), left, sizeof left);
		fprintf(stderr, "%s%s: %s, %s done, %s left, %.1f MB/s (guest writes %.1f MB/s)%s",
		        isatty(STDERR_FILENO) ? "\r\033[K" : "", c->leaf, phase ? phase : "?", done, left,
		        json_num(live, "rate") / 1e6, json_num(live, "guest_write_rate") / 1e6,
		        isatty(STDERR_FILENO) ? "" : "\n");
	}
	snprintf(last, 16, "%s", phase ? phase : "");
}

/* The end of a merge: its message and exit code. */
static int finish(struct live_cli *c, json_object *live)
{
	const char *phase = json_str(live, "phase"), *err = json_str(live, "error");
	if (!c->json && isatty(STDERR_FILENO))
		fputc('\n', stderr);
	if (!strcmp(phase, "done")) {
		if (!c->json)
			printf("%s: merged into its parent live (pivot %.1f ms, longest guest request "
			       "wait %.1f ms)\n", c->leaf, json_num(live, "pivot_ms"),
			       json_num(live, "pivot_pause_ms"));
		return EXIT_OK;
	}
	if (!strcmp(phase, "cancelled")) {
		warnx_("%s: the live coalesce was cancelled; the chain is as it was", c->leaf);
		return EXIT_STOPPED;
	}
	warnx_("%s: the live coalesce failed: %s", c->leaf, err ? err : "no reason given");
	return EXIT_FAIL;
}

/* Poll the status until the merge ends; a signal cancels it. */
static int follow(struct live_cli *c)
{
	char last[16] = "";
	bool cancel_sent = false;
	for (;;) {
		if (interrupted && !cancel_sent) {
			cancel_sent = true;
			simple_command(c, "cancel", -1);
		}
		char why[1024];
		json_object *s = served_call(c->control, "status", -1, why, sizeof why);
		json_object *live = served_live(s);
		if (!live) {
			warnx_("%s: the server stopped answering (%s); a restarted server resumes "
			       "the merge from its journal", c->leaf, s ? "no live status" : why);
			json_object_put(s);
			return EXIT_FAIL;
		}
		show(c, live, last);
		int rc = terminal_phase(json_str(live, "phase")) ? finish(c, live) : -1;
		json_object_put(s);
		if (rc >= 0)
			return rc;
		usleep(POLL_US);
	}
}

int cmd_live_coalesce(int argc, char **argv)
{
	struct live_cli c = { 0 };
	int r = parse_args(&c, argc, argv);
	if (r)
		return usage(help, r < 0);
	char why[1024];
	if (served_find(c.leaf, c.control_opt, c.control, sizeof c.control, why, sizeof why)) {
		warnx_("%s: %s", c.leaf, why);
		return EXIT_USAGE;
	}
	if (c.cancel)
		return simple_command(&c, "cancel", -1);
	if (c.set_rate >= 0)
		return simple_command(&c, "set-rate", c.set_rate);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((r = simple_command(&c, "live-coalesce", c.rate)))
		return r;
	return c.no_wait ? EXIT_OK : follow(&c);
}
