/* served.c - the `vhd serve` of a file (see served.h).  Everything the
 * discovery file says is checked against the system before it is used: it
 * may have been written by anyone who can write into the SR. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctlsock.h"
#include "served.h"

#define DISCOVERY_MAX 4096
#define CALL_TIMEOUT_MS 5000

struct discovery {
	long long pid;
	char control[PATH_MAX];
	char file[PATH_MAX];
};

static bool trusted_uid(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

static int discovery_path(const char *file, char *out, size_t len)
{
	const char *slash = strrchr(file, '/');
	int n = slash ? snprintf(out, len, "%.*s/" SERVED_PREFIX "%s.json", (int)(slash - file), file,
	                         slash + 1)
	              : snprintf(out, len, SERVED_PREFIX "%s.json", file);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The file's whole text, at most DISCOVERY_MAX bytes, from a regular file
 * (not a link, FIFO or device). */
static char *read_small(const char *path, char *why, size_t wlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	if (fd < 0) {
		snprintf(why, wlen, "not served by vhd serve (%s: %s)", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > DISCOVERY_MAX)
		snprintf(why, wlen, "%s: not a discovery file (not a regular file of at most %d bytes)",
		         path, DISCOVERY_MAX);
	else if ((buf = calloc(1, (size_t)st.st_size + 1)) &&
	         read(fd, buf, (size_t)st.st_size) != st.st_size) {
		snprintf(why, wlen, "%s: short read", path);
		free(buf);
		buf = NULL;
	}
	close(fd);
	return buf;
}

static bool copy_string(json_object *o, const char *key, char *out, size_t len)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return false;
	const char *s = json_object_get_string(v);
	return (size_t)snprintf(out, len, "%s", s) < len;
}

static int read_discovery(const char *file, struct discovery *d, char *why, size_t wlen)
{
	char path[PATH_MAX];
	if (discovery_path(file, path, sizeof path))
		return snprintf(why, wlen, "%s: path too long", file), -1;
	char *text = read_small(path, why, wlen);
	if (!text)
		return -1;
	json_object *o = json_tokener_parse(text), *v;
	free(text);
	int rc = -1;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "pid", &v) || !json_object_is_type(v, json_type_int) ||
	    (d->pid = json_object_get_int64(v)) <= 0 || d->pid > INT_MAX ||
	    !copy_string(o, "control", d->control, sizeof d->control) || d->control[0] != '/' ||
	    !copy_string(o, "file", d->file, sizeof d->file))
		snprintf(why, wlen, "%s: not a valid discovery file", path);
	else if (kill((pid_t)d->pid, 0) && errno == ESRCH)
		snprintf(why, wlen, "not served: %s is stale (pid %lld is gone)", path, d->pid);
	else
		rc = 0;
	json_object_put(o);
	return rc;
}

static bool same_file(const char *a, const struct stat *b)
{
	struct stat st;
	return a && a[0] && !stat(a, &st) && st.st_dev == b->st_dev && st.st_ino == b->st_ino;
}

static bool starts_with_name(const char *s, const char *name)
{
	size_t n = strlen(name);
	return n && !strncmp(s, name, n) && s[n] == ':' && s[n + 1] == ' ';
}

/* Does the server's STATUS name FILE (st)?  Its "file", or the name its
 * "export" description starts with ("FILE: dynamic VHD, ..."). */
static bool status_names(json_object *status, const struct stat *st, const char *const *names,
                         size_t n)
{
	char name[PATH_MAX], export[PATH_MAX + 256];
	if (copy_string(status, "file", name, sizeof name))
		return same_file(name, st);
	if (!copy_string(status, "export", export, sizeof export))
		return false;
	for (size_t i = 0; i < n; i++)
		if (names[i] && starts_with_name(export, names[i]) && same_file(names[i], st))
			return true;
	return false;
}

static int check_socket(const char *control, char *why, size_t wlen)
{
	struct stat st;
	if (lstat(control, &st))
		return snprintf(why, wlen, "not served: %s: %s", control, strerror(errno)), -1;
	if (!S_ISSOCK(st.st_mode) || !trusted_uid(st.st_uid))
		return snprintf(why, wlen, "%s: not a socket of this user or root", control), -1;
	return 0;
}

int served_find(const char *file, const char *control_opt, char *control, size_t len,
                char *why, size_t wlen)
{
	struct discovery d = { 0 };
	struct stat st;
	if (stat(file, &st))
		return snprintf(why, wlen, "%s: %s", file, strerror(errno)), -1;
	if (!control_opt && read_discovery(file, &d, why, wlen))
		return -1;
	const char *sock = control_opt ? control_opt : d.control;
	if ((size_t)snprintf(control, len, "%s", sock) >= len)
		return snprintf(why, wlen, "%s: path too long", sock), -1;
	if (check_socket(control, why, wlen))
		return -1;
	struct ucred peer;
	char err[512];
	json_object *cmd = json_object_new_object();
	json_object_object_add(cmd, "cmd", json_object_new_string("status"));
	json_object *s = ctlsock_call(control, cmd, CALL_TIMEOUT_MS, &peer, err, sizeof err);
	char *real = realpath(file, NULL);
	const char *names[] = { d.file, real, file };
	int rc = -1;
	if (!s)
		snprintf(why, wlen, "not served: no server answers on %s", err);
	else if (!trusted_uid(peer.uid) || (!control_opt && peer.pid != (pid_t)d.pid))
		snprintf(why, wlen, "%s: answered by pid %d (uid %d), not the server the discovery "
		         "file names (pid %lld)", control, (int)peer.pid, (int)peer.uid, d.pid);
	else if (!served_ok(s, NULL) || !status_names(s, &st, names, sizeof names / sizeof *names))
		snprintf(why, wlen, "%s: the server on it does not serve %s", control, file);
	else
		rc = 0;
	free(real);
	json_object_put(s);
	return rc;
}

json_object *served_call(const char *control, const char *cmd, long long rate, char *why,
                         size_t wlen)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	if (rate >= 0)
		json_object_object_add(o, "rate", json_object_new_int64(rate));
	return ctlsock_call(control, o, CALL_TIMEOUT_MS, NULL, why, wlen);
}

bool served_ok(json_object *reply, const char **error)
{
	json_object *v;
	bool ok = reply && json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v);
	if (error)
		*error = !ok && reply && json_object_object_get_ex(reply, "error", &v) &&
		                 json_object_is_type(v, json_type_string)
		             ? json_object_get_string(v) : "no reason given";
	return ok;
}

json_object *served_live(json_object *status)
{
	json_object *v;
	return status && json_object_object_get_ex(status, "live", &v) &&
	               json_object_is_type(v, json_type_object) ? v : NULL;
}
