/* ctlsock.c - the control socket loop shared by the GC and `vhd serve`
 * (see ctlsock.h).  One thread polls the listening socket and its clients;
 * each complete line is answered at once. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlsock.h"

#define MAX_CLIENTS 32
#define LINE_MAX_BYTES 4096

json_object *ctlsock_reply(bool ok, const char *error)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	return o;
}

json_object *ctlsock_request(const char *line, const char **cmd)
{
	json_object *req = json_tokener_parse(line), *v;
	if (!req || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "cmd", &v) || !json_object_is_type(v, json_type_string)) {
		json_object_put(req);
		return NULL;
	}
	*cmd = json_object_get_string(v);
	return req;
}

int ctlsock_listen(const char *path, mode_t mode, const char *group, char *why, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof a.sun_path) {
		snprintf(why, len, "%s: socket path too long (at most %zu bytes)", path,
		         sizeof a.sun_path - 1);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, len, "%s: socket: %s", path, strerror(errno));
		return -1;
	}
	unlink(a.sun_path);   /* stale: the caller's lock proves no one owns it */
	mode_t old = umask(~mode & 0777);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	if (rc || listen(fd, 16)) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr || chown(a.sun_path, (uid_t)-1, gr->gr_gid)) {
			snprintf(why, len, "%s: group %s: %s", path, group,
			         gr ? strerror(errno) : "no such group");
			close(fd);
			unlink(a.sun_path);
			return -1;
		}
	}
	return fd;
}

struct client {
	int fd;
	bool may_control;
	size_t len;
	char buf[LINE_MAX_BYTES];
};

static void accept_client(int lfd, struct client **clients)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof cred;
	int slot = -1;
	for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
		if (!clients[i])
			slot = i;
	if (slot < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    !(clients[slot] = calloc(1, sizeof **clients))) {
		close(fd);
		return;
	}
	clients[slot]->fd = fd;
	clients[slot]->may_control = cred.uid == 0 || cred.uid == geteuid();
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { fd, POLLOUT, 0 };
			if (poll(&p, 1, 1000) <= 0)
				return;
			continue;
		}
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Read what C sent and answer each complete line; false when it is gone. */
static bool serve_client(struct client *c, ctlsock_fn fn, void *opaque)
{
	ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
	if (r <= 0)
		return r < 0 && errno == EAGAIN;
	c->len += (size_t)r;
	c->buf[c->len] = 0;
	char *nl;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = 0;
		json_object *out = fn(c->buf, c->may_control, opaque);
		const char *s = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
		                                                        JSON_C_TO_STRING_NOSLASHESCAPE);
		send_all(c->fd, s, strlen(s));
		send_all(c->fd, "\n", 1);
		json_object_put(out);
		size_t used = (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len - used);
		c->len -= used;
	}
	return c->len < sizeof c->buf - 1;   /* a line too long: drop the client */
}

static void drop(struct client **c)
{
	close((*c)->fd);
	free(*c);
	*c = NULL;
}

void ctlsock_serve(int lfd, const char *path, ctlsock_fn fn, ctlsock_done_fn done,
                   void *opaque)
{
	struct client *clients[MAX_CLIENTS] = { 0 };
	while (!done(opaque)) {
		struct pollfd p[MAX_CLIENTS + 1];
		int map[MAX_CLIENTS + 1], n = 0;
		p[n] = (struct pollfd){ lfd, POLLIN, 0 };
		map[n++] = -1;
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (clients[i]) {
				p[n] = (struct pollfd){ clients[i]->fd, POLLIN, 0 };
				map[n++] = i;
			}
		if (poll(p, (nfds_t)n, 200) <= 0)
			continue;
		for (int k = 0; k < n; k++) {
			if (!p[k].revents)
				continue;
			if (map[k] < 0)
				accept_client(lfd, clients);
			else if (!serve_client(clients[map[k]], fn, opaque))
				drop(&clients[map[k]]);
		}
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i])
			drop(&clients[i]);
	close(lfd);
	unlink(path);
}

/* ---- the client ---- */

#define REPLY_MAX (4u << 20)

static int send_line(int fd, const char *text)
{
	return send(fd, text, strlen(text), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0
	           ? -1 : 0;
}

/* The reply line (NUL-terminated, malloc'd), or NULL on timeout or EOF. */
static char *read_line(int fd, int timeout_ms)
{
	char *buf = malloc(REPLY_MAX);
	size_t len = 0;
	while (buf && len < REPLY_MAX - 1) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t r = recv(fd, buf + len, REPLY_MAX - 1 - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (buf[len - 1] == '\n') {
			buf[len] = 0;
			return buf;
		}
	}
	free(buf);
	return NULL;
}

json_object *ctlsock_call(const char *path, json_object *cmd, int timeout_ms, struct ucred *peer,
                          char *why, size_t len)
{
	const char *text = json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	json_object *out = NULL;
	char *line = NULL;
	int fd = -1;
	if (strlen(path) >= sizeof a.sun_path) {
		snprintf(why, len, "%s: socket path too long", path);
		goto done;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	socklen_t cl = sizeof *peer;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof a) ||
	    (peer && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, peer, &cl))) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (send_line(fd, text)) {
		snprintf(why, len, "%s: sending: %s", path, strerror(errno));
		goto done;
	}
	if (!(line = read_line(fd, timeout_ms)))
		snprintf(why, len, "%s: no reply", path);
	else if (!(out = json_tokener_parse(line)) || !json_object_is_type(out, json_type_object)) {
		json_object_put(out);
		out = NULL;
		snprintf(why, len, "%s: the reply is not a JSON object", path);
	}
done:
	free(line);
	if (fd >= 0)
		close(fd);
	json_object_put(cmd);
	return out;
}
