/* main.c - `vhd gc`: dispatch, and `vhd gc run DIR` (the daemon). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "gc.h"

static const char help[] =
	"usage: vhd gc run [OPTIONS] DIR\n"
	"       vhd gc status [--json] [--watch] [--socket PATH] DIR\n"
	"       vhd gc wait DIR --vhd FILE --max-depth N [--timeout T] [--stuck-after S]\n"
	"       vhd gc pause|resume|cancel [--socket PATH] DIR\n"
	"       vhd gc set-rate [--socket PATH] DIR RATE\n"
	"\n"
	"The garbage collector of a storage repository (SR): a directory of\n"
	"<uuid>.vhd files.  It removes hidden VHDs with no visible descendant,\n"
	"coalesces every hidden VHD whose parent has it as only child, and\n"
	"leaf-coalesces a visible leaf into its parent when the parent has only that\n"
	"child and the leaf is not in use (the leaf keeps its path and UUID); the\n"
	"deepest chains first.  A VHD that fails check is never touched.\n"
	"\n"
	"Options of 'run':\n"
	"      --once               work until nothing is left to do, then exit\n"
	"      --daemon             detach (default: foreground, for systemd)\n"
	"      --wait               wait for the SR's GC lock instead of exiting\n"
	"  -r, --rate-limit RATE    copy at most RATE bytes/s (K/M/G; changeable\n"
	"                           with 'vhd gc set-rate'); 'auto': slower while\n"
	"                           the reads of others on the SR's disk take\n"
	"                           longer than when it is quiet (see the status)\n"
	"      --io-priority P      the kernel I/O priority of the copy threads:\n"
	"                           idle, or best-effort[:N], N 0 (high) to 7\n"
	"  -q, --quiet-period SECS  start only after SECS without activity in the SR\n"
	"                           (default 30)\n"
	"  -i, --interval SECS      rescan the SR this often (default 5)\n"
	"      --min-free SIZE      leave SIZE free in the SR (an operation that does\n"
	"                           not fit waits)\n"
	"      --socket PATH        control socket (default DIR/" GC_SOCKET_NAME ")\n"
	"      --socket-group GROUP group that may read the status (mode 0660)\n"
	"      --metrics HOST:PORT  serve Prometheus metrics over HTTP (e.g.\n"
	"                           127.0.0.1:9163; port 0 picks one, see status)\n"
	"      --http HOST:PORT     serve the web view (the SR's tree, progress,\n"
	"                           queue, errors; read-only) over HTTP (e.g.\n"
	"                           127.0.0.1:8080)\n"
	"      --metrics-file PATH  write them to PATH too (node_exporter textfile)\n"
	"      --syslog             log to syslog instead of stderr\n"
	"\n"
	"Examples:\n"
	"  vhd gc run --metrics 127.0.0.1:9163 /var/run/sr-mount/SR\n"
	"  vhd gc status --watch /var/run/sr-mount/SR\n"
	"  vhd gc wait /srv/sr --vhd /srv/sr/VM.vhd --max-depth 10 --timeout 600\n";

static struct gc the_gc;

static void on_signal(int sig)
{
	(void)sig;
	the_gc.shutdown = true;   /* read under the lock by the loops; a bool store */
	the_gc.stop = 1;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	*out = strtod(s, &end);
	return *end || end == s || *out < 0 ? -1 : 0;
}

enum { O_ONCE = 256, O_DAEMON, O_WAIT, O_MINFREE, O_SOCKET, O_GROUP, O_METRICS, O_MFILE,
       O_SYSLOG, O_HTTP, O_IOPRIO };

static int parse_run(int argc, char **argv, struct gc_opts *o, uint64_t *rate)
{
	static const struct option lo[] = {
		{ "once", no_argument, NULL, O_ONCE },
		{ "daemon", no_argument, NULL, O_DAEMON },
		{ "wait", no_argument, NULL, O_WAIT },
		{ "rate-limit", required_argument, NULL, 'r' },
		{ "quiet-period", required_argument, NULL, 'q' },
		{ "interval", required_argument, NULL, 'i' },
		{ "min-free", required_argument, NULL, O_MINFREE },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "socket-group", required_argument, NULL, O_GROUP },
		{ "metrics", required_argument, NULL, O_METRICS },
		{ "metrics-file", required_argument, NULL, O_MFILE },
		{ "syslog", no_argument, NULL, O_SYSLOG },
		{ "http", required_argument, NULL, O_HTTP },
		{ "io-priority", required_argument, NULL, O_IOPRIO },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	o->quiet_period = 30;
	o->interval = 5;
	while ((c = getopt_long(argc, argv, "r:q:i:h", lo, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case O_ONCE: o->once = true; break;
		case O_DAEMON: o->daemonize = true; break;
		case O_WAIT: o->wait_lock = true; break;
		case 'r':
			o->rate_auto = !strcmp(optarg, "auto");
			bad = !o->rate_auto && parse_size(optarg, rate);
			break;
		case 'q': bad = parse_seconds(optarg, &o->quiet_period); break;
		case 'i': bad = parse_seconds(optarg, &o->interval); break;
		case O_MINFREE: bad = parse_size(optarg, &o->min_free); break;
		case O_SOCKET: o->socket_path = optarg; break;
		case O_GROUP: o->socket_group = optarg; break;
		case O_METRICS: o->metrics_addr = optarg; break;
		case O_MFILE: o->metrics_file = optarg; break;
		case O_SYSLOG: o->use_syslog = true; break;
		case O_HTTP: o->http_addr = optarg; break;
		case O_IOPRIO:
			if (parse_io_priority(optarg, &o->io_priority)) {
				warnx_("bad I/O priority '%s' (%s)", optarg, IO_PRIORITY_USAGE);
				return usage(help, true);
			}
			break;
		case 'h': return usage(help, false) - 1;
		default: return usage(help, true);
		}
		if (bad) {
			warnx_("bad value '%s'", optarg);
			return usage(help, true);
		}
	}
	if (optind != argc - 1)
		return usage(help, true);
	if (o->interval < 0.05)
		o->interval = 0.05;
	return 0;
}

static int run(int argc, char **argv)
{
	struct gc *g = &the_gc;
	uint64_t rate = 0;
	int rc = parse_run(argc, argv, &g->o, &rate);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	static char dir[PATH_MAX], sock[PATH_MAX];
	if (!realpath(argv[optind], dir)) {
		warnx_("%s: %s", argv[optind], strerror(errno));
		return EXIT_FAIL;
	}
	g->o.dir = dir;
	if (gc_socket_path(dir, g->o.socket_path, sock, sizeof sock))
		return EXIT_USAGE;
	g->o.socket_path = sock;
	int gc_lock = vhd_gc_lock(dir, 0);
	if (gc_lock < 0 && vhd_get_errno() == EBUSY && g->o.wait_lock) {
		fprintf(stderr, "vhd: another GC runs on %s: waiting for it to end\n", dir);
		gc_lock = vhd_gc_lock(dir, 1);
	}
	if (gc_lock < 0) {
		if (vhd_get_errno() == EBUSY) {
			warnx_("another GC already runs on %s (its status: vhd gc status %s); "
			       "--wait waits for it", dir, dir);
			return EXIT_REFUSED;
		}
		return fail_lib();
	}
	if (g->o.use_syslog)
		openlog("vhd-gc", LOG_PID, LOG_DAEMON);
	if (g->o.daemonize && daemon(0, 0)) {
		warnx_("daemon: %s", strerror(errno));
		return EXIT_FAIL;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->wake, NULL);
	g->state = "starting";
	g->copts.rate_limit = rate;
	g->copts.io_priority = g->o.io_priority;
	g->space_avail = UINT64_MAX;
	g->last_progress = time(NULL);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (gc_metrics_start(g) || gc_web_start(g))
		return EXIT_USAGE;
	gc_log(g, false, "GC of %s started (pid %d, socket %s)", dir, (int)getpid(), sock);
	pthread_t worker, pacer;
	pthread_cond_init(&g->pace_wake, NULL);
	pace_init(&g->pace);
	if (g->o.rate_auto)
		g->copts.rate_limit = (uint64_t)g->pace.rate;
	g->pacing = g->o.rate_auto;
	if (g->pacing && pthread_create(&pacer, NULL, gc_pace_thread, g)) {
		warnx_("cannot start the pacing thread");
		return EXIT_FAIL;
	}
	if (pthread_create(&worker, NULL, gc_worker, g)) {
		warnx_("cannot start the worker thread");
		return EXIT_FAIL;
	}
	rc = gc_server_run(g);
	pthread_mutex_lock(&g->lock);
	g->shutdown = true;
	g->stop = 1;
	pthread_cond_broadcast(&g->wake);
	pthread_cond_broadcast(&g->pace_wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(worker, NULL);
	if (g->pacing)
		pthread_join(pacer, NULL);
	gc_metrics_write_file(g);
	gc_web_stop();
	gc_metrics_stop();
	gc_log(g, false, "GC of %s stopped", dir);
	vhd_sr_unlock(gc_lock);
	return rc ? EXIT_FAIL : g->exit_code;
}

int cmd_gc(int argc, char **argv)
{
	if (argc < 2)
		return usage(help, true);
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help"))
		return usage(help, false);
	if (!strcmp(sub, "run"))
		return run(argc - 1, argv + 1);
	return gc_client_main(sub, argc - 1, argv + 1);
}
