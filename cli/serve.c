/* serve.c - `vhd serve FILE`: the chain over NBD.  nbdkit does the
 * protocol with nbdkit-vhd-plugin.so (server/); this command chooses safe
 * options, starts nbdkit, waits until it listens, sets the socket's group,
 * then supervises it: SIGTERM/SIGINT are passed on, nbdkit finishes the
 * requests in flight, the plugin flushes and closes the chain. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd serve [--socket PATH | --tcp ADDR:PORT] [--read-only] [--threads N]\n"
	"                 [--tls-psk FILE | --tls-x509 DIR] [--insecure] [--group G]\n"
	"                 [--control PATH] [--daemon] FILE\n"
	"\n"
	"Serve FILE, a VHD of any type, over NBD with nbdkit and vhdkit's plugin:\n"
	"reads go through the chain, writes to FILE (locked as in use, as by the\n"
	"GC and coalesce), block status from the BAT and sector bitmaps.  Runs\n"
	"in the foreground until SIGTERM or SIGINT, then finishes the requests\n"
	"in flight, flushes and exits 0.\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH   Unix socket (default FILE.sock), mode 0600\n"
	"  -t, --tcp ADDR:PORT listen on TCP; a non-loopback address needs TLS or\n"
	"                      --insecure\n"
	"  -r, --read-only     serve read-only, without taking FILE's lock (any\n"
	"                      layer of a chain may be served so)\n"
	"  -j, --threads N     worker threads per connection (default 16)\n"
	"      --tls-psk FILE  require TLS with the pre-shared keys in FILE\n"
	"                      (psktool's format)\n"
	"      --tls-x509 DIR  require TLS with the X.509 certificates in DIR\n"
	"                      (ca-cert.pem, server-cert.pem, server-key.pem)\n"
	"      --insecure      allow plain TCP on a non-loopback address\n"
	"  -g, --group G       make the Unix socket mode 0660, group G\n"
	"  -c, --control PATH  JSON control socket (default SOCKET.control, or\n"
	"                      FILE.control with --tcp): {\"cmd\":\"status\"}\n"
	"  -d, --daemon        go to the background once listening (logs to syslog)\n"
	"  -h, --help          this text\n"
	"\n"
	"The plugin is taken from $VHDKIT_NBDKIT_PLUGIN, else beside this program\n"
	"(a build tree), else nbdkit's plugin directory (`make install`).\n"
	"\n"
	"Examples:\n"
	"  vhd serve --socket /run/vm1.sock leaf.vhd\n"
	"  nbdinfo --map 'nbd+unix:///?socket=/run/vm1.sock'\n"
	"  vhd serve --tcp 0.0.0.0:10809 --tls-psk keys.psk leaf.vhd\n";

struct serve_opts {
	const char *file;
	const char *socket, *tcp, *group, *control;
	const char *tls_psk, *tls_x509;
	bool read_only, insecure, daemon;
	unsigned threads;
	char socket_buf[PATH_MAX], control_buf[PATH_MAX];
	char host[256], port[16];
};

/* ---- checking the options ---- */

/* "ADDR:PORT", "[V6]:PORT" -> host and port. */
static int split_tcp(struct serve_opts *o)
{
	const char *s = o->tcp, *colon;
	size_t hl;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		s++;
		hl = (size_t)(close - s);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (!hl || hl >= sizeof o->host || *end || !colon[1] || port == 0 || port > 65535)
		return -1;
	memcpy(o->host, s, hl);
	o->host[hl] = 0;
	snprintf(o->port, sizeof o->port, "%lu", port);
	return 0;
}

/* Does HOST resolve to loopback addresses only? */
static bool loopback_only(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *a;
	if (getaddrinfo(host, NULL, &hints, &res))
		return false;
	bool only = true;
	for (a = res; a; a = a->ai_next) {
		if (a->ai_family == AF_INET) {
			const struct sockaddr_in *in = (const void *)a->ai_addr;
			only &= (ntohl(in->sin_addr.s_addr) >> 24) == 127;
		} else if (a->ai_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const void *)a->ai_addr;
			only &= IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
		} else {
			only = false;
		}
	}
	freeaddrinfo(res);
	return only;
}

/* A socket left by a server that died is replaced; one that answers, or a
 * file that is not a socket, is refused. */
static int clear_stale_socket(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		warnx_("%s: exists and is not a socket", path);
		return -1;
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof a);
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		warnx_("%s: a server is listening there already", path);
		return -1;
	}
	if (err != ECONNREFUSED) {
		warnx_("%s: %s", path, strerror(err));
		return -1;
	}
	return unlink(path);
}

static int default_path(char *buf, size_t len, const char *base, const char *suffix)
{
	int n = snprintf(buf, len, "%s%s", base, suffix);
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		warnx_("%s%s: socket path too long (at most %zu bytes)", base, suffix,
		       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	return 0;
}

static int check_options(struct serve_opts *o)
{
	if (o->socket && o->tcp)
		return warnx_("--socket and --tcp exclude each other"), EXIT_USAGE;
	if (o->tls_psk && o->tls_x509)
		return warnx_("--tls-psk and --tls-x509 exclude each other"), EXIT_USAGE;
	if (o->group && o->tcp)
		return warnx_("--group applies to a Unix socket"), EXIT_USAGE;
	if (o->tcp && split_tcp(o))
		return warnx_("--tcp %s: expected ADDR:PORT", o->tcp), EXIT_USAGE;
	if (o->tcp && !o->tls_psk && !o->tls_x509 && !o->insecure && !loopback_only(o->host)) {
		warnx_("--tcp %s: not a loopback address: refusing to serve without TLS "
		       "(--tls-psk, --tls-x509) unless --insecure", o->tcp);
		return EXIT_REFUSED;
	}
	if (o->group && !getgrnam(o->group))
		return warnx_("--group %s: no such group", o->group), EXIT_USAGE;
	if (!o->tcp && !o->socket) {
		if (default_path(o->socket_buf, sizeof o->socket_buf, o->file, ".sock"))
			return EXIT_USAGE;
		o->socket = o->socket_buf;
	}
	if (!o->control) {
		if (default_path(o->control_buf, sizeof o->control_buf,
		                 o->socket ? o->socket : o->file, ".control"))
			return EXIT_USAGE;
		o->control = o->control_buf;
	}
	if (o->socket && clear_stale_socket(o->socket))
		return EXIT_REFUSED;
	return clear_stale_socket(o->control) ? EXIT_REFUSED : EXIT_OK;
}

/* Open FILE as the plugin will, and close it again: a damaged image or
 * one in use gets the usual message and exit code, not nbdkit's. */
static int check_image(const struct serve_opts *o)
{
	vhd_t *v = vhd_open(o->file, o->read_only ? VHD_OPEN_RDONLY : VHD_OPEN_RDWR);
	if (!v)
		return fail_lib();
	vhd_close(v);
	return EXIT_OK;
}

/* ---- nbdkit's command line ---- */

/* The plugin: $VHDKIT_NBDKIT_PLUGIN, beside /proc/self/exe (a build
 * tree), or "vhd" from nbdkit's plugin directory. */
static const char *plugin_path(char *buf, size_t len)
{
	const char *env = getenv("VHDKIT_NBDKIT_PLUGIN");
	if (env && *env)
		return env;
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n > 0) {
		buf[n] = 0;
		char *slash = strrchr(buf, '/');
		if (slash && (size_t)(slash - buf) + sizeof "/nbdkit-vhd-plugin.so" <= len) {
			strcpy(slash, "/nbdkit-vhd-plugin.so");
			if (access(buf, R_OK) == 0)
				return buf;
		}
	}
	return "vhd";
}

#define MAX_ARGS 40

struct argv_buf {
	char *v[MAX_ARGS];
	int n;
	char strs[8][PATH_MAX + 32];
	int ns;
};

static void arg(struct argv_buf *a, const char *s)
{
	if (a->n < MAX_ARGS - 1)
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

static void argf(struct argv_buf *a, const char *fmt, const char *s)
{
	if (a->ns >= 8)
		return;
	snprintf(a->strs[a->ns], sizeof a->strs[a->ns], fmt, s);
	arg(a, a->strs[a->ns++]);
}

static void nbdkit_args(struct argv_buf *a, const struct serve_opts *o, const char *pidfile,
                        const char *plugin, const char *threads)
{
	arg(a, "nbdkit");
	arg(a, "--foreground");
	arg(a, "--exit-with-parent");   /* the supervisor gone, nbdkit goes too */
	arg(a, o->daemon ? "--log=syslog" : "--log=stderr");
	argf(a, "--pidfile=%s", pidfile);   /* written once it listens */
	argf(a, "--threads=%s", threads);
	if (o->socket) {
		argf(a, "--unix=%s", o->socket);
	} else {
		argf(a, "--ipaddr=%s", o->host);
		argf(a, "--port=%s", o->port);
	}
	if (o->read_only)
		arg(a, "--readonly");
	if (o->tls_psk || o->tls_x509) {
		arg(a, "--tls=require");
		if (o->tls_psk)
			argf(a, "--tls-psk=%s", o->tls_psk);
		else
			argf(a, "--tls-certificates=%s", o->tls_x509);
	}
	arg(a, plugin);
	argf(a, "file=%s", o->file);
	if (o->read_only)
		arg(a, "readonly=true");
	argf(a, "control=%s", o->control);
}

/* ---- running it ---- */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void install_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&t, NULL);
}

/* Wait until nbdkit has written PIDFILE (it listens then).  Returns 0, or
 * the exit code when nbdkit ended first or a signal came. */
static int wait_listening(pid_t child, const char *pidfile, int *status)
{
	for (;;) {
		struct stat st;
		if (stat(pidfile, &st) == 0 && st.st_size > 0)
			return 0;
		if (waitpid(child, status, WNOHANG) == child)
			return EXIT_FAIL;
		if (got_signal)
			return -1;
		sleep_ms(20);
	}
}

/* The Unix socket: 0600 (nbdkit binds it by its own mode, which gives
 * others no write permission, so no way to connect, meanwhile), or 0660
 * and group G with --group. */
static int set_socket_mode(const struct serve_opts *o)
{
	if (!o->socket)
		return 0;
	struct group *gr = o->group ? getgrnam(o->group) : NULL;
	if (o->group && (!gr || chown(o->socket, (uid_t)-1, gr->gr_gid))) {
		warnx_("%s: group %s: %s", o->socket, o->group, gr ? strerror(errno) : "no such group");
		return -1;
	}
	if (chmod(o->socket, o->group ? 0660 : 0600)) {
		warnx_("%s: chmod: %s", o->socket, strerror(errno));
		return -1;
	}
	return 0;
}

static int child_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status) ? EXIT_FAIL : EXIT_OK;
	return EXIT_FAIL;
}

static void announce(const struct serve_opts *o)
{
	if (o->socket)
		fprintf(stderr, "vhd: serving %s on nbd%s+unix:///?socket=%s (control %s)\n", o->file,
		        o->tls_psk || o->tls_x509 ? "s" : "", o->socket, o->control);
	else
		fprintf(stderr, "vhd: serving %s on nbd%s://%s:%s (control %s)\n", o->file,
		        o->tls_psk || o->tls_x509 ? "s" : "", o->host, o->port, o->control);
}

static pid_t spawn_nbdkit(struct argv_buf *a)
{
	pid_t child = fork();
	if (child == 0) {
		umask(0177);   /* the Unix socket is born 0600 */
		execvp("nbdkit", a->v);
		fprintf(stderr, "vhd: nbdkit: %s (install nbdkit: make deps)\n", strerror(errno));
		_exit(127);
	}
	if (child < 0)
		warnx_("fork: %s", strerror(errno));
	return child;
}

/* Wait for CHILD, passing SIGTERM/SIGINT on; sets *STOPPING once asked. */
static int wait_child(pid_t child, bool *stopping)
{
	int status = 0;
	for (;;) {
		if (got_signal) {
			kill(child, SIGTERM);   /* nbdkit: finish in-flight requests, close */
			got_signal = 0;
			*stopping = true;
		}
		pid_t w = waitpid(child, &status, 0);
		if (w == child)
			return status;
		if (w < 0 && errno != EINTR) {
			warnx_("waitpid: %s", strerror(errno));
			return status;
		}
	}
}

/* nbdkit 1.32 can abort (an assertion in its reply path) when a client
 * hangs up with replies in flight: the plugin then did not flush.  Do it
 * here (the lock went with the process), so that every completed write is
 * durable whatever nbdkit did. */
static int flush_after_abort(const struct serve_opts *o, int status)
{
	warnx_("nbdkit died of signal %d (%s); flushing %s", WTERMSIG(status),
	       strsignal(WTERMSIG(status)), o->file);
	vhd_t *v = vhd_open(o->file, VHD_OPEN_RDWR);
	if (!v || vhd_flush(v) || vhd_close(v))
		return fail_lib();
	return 0;
}

/* The plugin's discovery file, .vhd-serve-NAME.json beside FILE, is left
 * behind when nbdkit dies without unloading the plugin: removed when it
 * names DEAD, so that `vhd gc` never asks a dead server (the restarted
 * plugin writes its own). */
static void remove_stale_discovery(const struct serve_opts *o, pid_t dead)
{
	char path[PATH_MAX];
	const char *slash = strrchr(o->file, '/');
	int n = slash ? snprintf(path, sizeof path, "%.*s/.vhd-serve-%s.json", (int)(slash - o->file),
	                         o->file, slash + 1)
	              : snprintf(path, sizeof path, ".vhd-serve-%s.json", o->file);
	if (n < 0 || (size_t)n >= sizeof path)
		return;
	json_object *d = json_object_from_file(path), *pid;
	if (d && json_object_object_get_ex(d, "pid", &pid) && json_object_get_int64(pid) == dead)
		unlink(path);
	json_object_put(d);
}

#define MAX_RESTARTS 10   /* within RESTART_WINDOW seconds */
#define RESTART_WINDOW 60

/* Start nbdkit, report readiness on READY_FD (if >= 0: one byte, 0 = ok),
 * pass signals on, and return the exit code.  If nbdkit dies of a signal
 * while no stop was asked for, the image is flushed and nbdkit started
 * again (at most MAX_RESTARTS times a minute): one client cannot end the
 * service of the others for good. */
static int supervise(const struct serve_opts *o, int ready_fd)
{
	char dir[] = "/tmp/vhd-serve-XXXXXX", pidfile[sizeof dir + 8], plugin_buf[PATH_MAX];
	char threads[16];
	if (!mkdtemp(dir))
		return warnx_("mkdtemp: %s", strerror(errno)), EXIT_FAIL;
	snprintf(pidfile, sizeof pidfile, "%s/pid", dir);
	snprintf(threads, sizeof threads, "%u", o->threads);
	struct argv_buf a = { .n = 0 };
	nbdkit_args(&a, o, pidfile, plugin_path(plugin_buf, sizeof plugin_buf), threads);
	install_handlers();
	time_t window = time(NULL);
	int restarts = 0, rc, status = 0;
	bool stopping = false;
	for (;;) {
		pid_t child = spawn_nbdkit(&a);
		if (child < 0) {
			rc = EXIT_FAIL;
			break;
		}
		rc = wait_listening(child, pidfile, &status);
		if (rc == 0 && set_socket_mode(o))
			rc = EXIT_FAIL;
		if (rc == 0 && ready_fd < 0 && !restarts)
			announce(o);
		if (ready_fd >= 0) {   /* --daemon: the starting process may exit now */
			if (rc == 0)
				announce(o);
			char byte = (char)(rc == 0 ? 0 : 1);
			if (write(ready_fd, &byte, 1) < 0) {}
			close(ready_fd);
			ready_fd = -1;
			int null = open("/dev/null", O_WRONLY);
			if (null >= 0 && dup2(null, STDERR_FILENO) >= 0 && null != STDERR_FILENO)
				close(null);
		}
		if (rc != 0) {   /* nbdkit ended before listening, or a signal came */
			if (waitpid(child, &status, WNOHANG) == 0) {
				kill(child, SIGTERM);
				while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
			}
			rc = rc < 0 ? EXIT_OK : rc;
			break;
		}
		status = wait_child(child, &stopping);
		remove_stale_discovery(o, child);
		if (!WIFSIGNALED(status)) {
			rc = child_exit_code(status);
			break;
		}
		if ((rc = flush_after_abort(o, status)) || stopping)
			break;
		if (time(NULL) - window > RESTART_WINDOW)
			window = time(NULL), restarts = 0;
		if (++restarts > MAX_RESTARTS) {
			warnx_("nbdkit died %d times within %d s: giving up", MAX_RESTARTS, RESTART_WINDOW);
			rc = EXIT_FAIL;
			break;
		}
		warnx_("restarting nbdkit (%d within %d s)", restarts, RESTART_WINDOW);
		unlink(pidfile);
		if (o->socket)
			unlink(o->socket);   /* its server is dead */
	}
	unlink(pidfile);
	rmdir(dir);
	if (o->socket)
		unlink(o->socket);
	unlink(o->control);   /* left behind when nbdkit did not unload the plugin */
	return rc;
}

/* --daemon: the supervisor moves to a new session; this process waits for
 * its word (listening or failed) and exits accordingly. */
static int daemonize(const struct serve_opts *o)
{
	int p[2];
	if (pipe(p))
		return warnx_("pipe: %s", strerror(errno)), EXIT_FAIL;
	pid_t pid = fork();
	if (pid < 0)
		return warnx_("fork: %s", strerror(errno)), EXIT_FAIL;
	if (pid > 0) {
		close(p[1]);
		char byte = 1;
		ssize_t n = read(p[0], &byte, 1);
		return n == 1 && byte == 0 ? EXIT_OK : EXIT_FAIL;
	}
	close(p[0]);
	setsid();   /* paths stay relative to the directory it was started in */
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	int rc = supervise(o, p[1]);
	_exit(rc);
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, 0, 's' },
		{ "tcp", required_argument, 0, 't' },
		{ "read-only", no_argument, 0, 'r' },
		{ "threads", required_argument, 0, 'j' },
		{ "tls-psk", required_argument, 0, 'P' },
		{ "tls-x509", required_argument, 0, 'X' },
		{ "insecure", no_argument, 0, 'I' },
		{ "group", required_argument, 0, 'g' },
		{ "control", required_argument, 0, 'c' },
		{ "daemon", no_argument, 0, 'd' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct serve_opts o = { .threads = 16 };
	char *end;
	int c;
	while ((c = getopt_long(argc, argv, "s:t:rj:g:c:dh", opts, NULL)) != -1) {
		switch (c) {
		case 's': o.socket = optarg; break;
		case 't': o.tcp = optarg; break;
		case 'r': o.read_only = true; break;
		case 'j':
			o.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !*optarg || o.threads < 1 || o.threads > 1024)
				return warnx_("--threads %s: expected 1..1024", optarg), EXIT_USAGE;
			break;
		case 'P': o.tls_psk = optarg; break;
		case 'X': o.tls_x509 = optarg; break;
		case 'I': o.insecure = true; break;
		case 'g': o.group = optarg; break;
		case 'c': o.control = optarg; break;
		case 'd': o.daemon = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (optind != argc - 1)
		return usage(help, true);
	o.file = argv[optind];
	int rc = check_options(&o);
	if (rc || (rc = check_image(&o)))
		return rc;
	return o.daemon ? daemonize(&o) : supervise(&o, -1);
}
