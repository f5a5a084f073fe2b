/* control.c - the plugin's control socket: {"cmd":"status"} answers with
 * the export and its counters (stats.c).  The live coalesce adds its
 * commands here. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctlsock.h"
#include "server.h"

static struct {
	pthread_t thread;
	bool running;
	bool stop;            /* atomic */
	int lfd;
	char *path;
	struct serve_stats *stats;
	const char *description;
	char why[512];
} ctl;

const char *ctl_error(void)
{
	return ctl.why;
}

static json_object *status(void)
{
	json_object *o = stats_json(ctl.stats);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "export", json_object_new_string(ctl.description));
	return o;
}

static json_object *handle(const char *line, bool may_control, void *opaque)
{
	(void)may_control;
	(void)opaque;
	const char *cmd;
	json_object *req = ctlsock_request(line, &cmd), *out;
	if (!req)
		return ctlsock_reply(false, "expected a JSON object with \"cmd\"");
	out = !strcmp(cmd, "status") ? status() : ctlsock_reply(false, "unknown command");
	json_object_put(req);
	return out;
}

static bool stopping(void *opaque)
{
	(void)opaque;
	return __atomic_load_n(&ctl.stop, __ATOMIC_ACQUIRE);
}

static void *run(void *arg)
{
	(void)arg;
	ctlsock_serve(ctl.lfd, ctl.path, handle, stopping, NULL);
	return NULL;
}

int ctl_start(const char *path, struct serve_stats *s, const char *description)
{
	ctl.stats = s;
	ctl.description = description;
	if (!(ctl.path = strdup(path))) {
		strcpy(ctl.why, "out of memory");
		return -1;
	}
	ctl.lfd = ctlsock_listen(path, 0600, NULL, ctl.why, sizeof ctl.why);
	if (ctl.lfd < 0)
		return -1;
	int e = pthread_create(&ctl.thread, NULL, run, NULL);
	if (e) {
		snprintf(ctl.why, sizeof ctl.why, "thread: %s", strerror(e));
		close(ctl.lfd);
		unlink(path);
		return -1;
	}
	ctl.running = true;
	return 0;
}

void ctl_stop(void)
{
	if (ctl.running) {
		__atomic_store_n(&ctl.stop, true, __ATOMIC_RELEASE);
		pthread_join(ctl.thread, NULL);
		ctl.running = false;
	}
	free(ctl.path);
	ctl.path = NULL;
}
