/* control.c - the plugin's control socket: {"cmd":"status"} answers with
 * the export, its counters (stats.c) and the live coalesce ("live",
 * live.c); the commands that change something (live-coalesce, cancel,
 * set-rate, refresh) are for the socket's owner or root only. */
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
	bool readonly;
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
	json_object_object_add(o, "live", live_status_json());
	return o;
}

/* "rate": a non-negative integer (bytes/s); absent: 0 (none) unless
 * REQUIRED. */
static int rate_field(json_object *req, bool required, uint64_t *rate)
{
	json_object *v;
	*rate = 0;
	if (!json_object_object_get_ex(req, "rate", &v))
		return required ? -1 : 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -1;
	*rate = (uint64_t)json_object_get_int64(v);
	return 0;
}

static json_object *control(const char *cmd, json_object *req)
{
	char why[1024] = "";
	uint64_t rate;
	int rc;
	if (!strcmp(cmd, "live-coalesce"))
		rc = rate_field(req, false, &rate) ? snprintf(why, sizeof why, "\"rate\": bytes/s, "
		                                              "a non-negative integer"), -1
		                                   : live_start(rate, why, sizeof why);
	else if (!strcmp(cmd, "set-rate"))
		rc = rate_field(req, true, &rate) ? snprintf(why, sizeof why, "\"rate\": bytes/s, "
		                                             "a non-negative integer"), -1
		                                  : live_set_rate(rate, why, sizeof why);
	else if (!strcmp(cmd, "cancel"))
		rc = live_cancel(why, sizeof why);
	else
		rc = live_refresh(why, sizeof why);
	return ctlsock_reply(rc == 0, rc ? why : NULL);
}

static bool is_control(const char *cmd)
{
	return !strcmp(cmd, "live-coalesce") || !strcmp(cmd, "cancel") ||
	       !strcmp(cmd, "set-rate") || !strcmp(cmd, "refresh");
}

static json_object *handle(const char *line, bool may_control, void *opaque)
{
	(void)opaque;
	const char *cmd;
	json_object *req = ctlsock_request(line, &cmd), *out;
	if (!req)
		return ctlsock_reply(false, "expected a JSON object with \"cmd\"");
	if (!strcmp(cmd, "status"))
		out = status();
	else if (!is_control(cmd))
		out = ctlsock_reply(false, "unknown command");
	else if (!may_control)
		out = ctlsock_reply(false, "permission denied: only the server's owner or root");
	else if (ctl.readonly)
		out = ctlsock_reply(false, "the export is read-only");
	else
		out = control(cmd, req);
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

int ctl_start(const char *path, struct serve_stats *s, const char *description, bool readonly)
{
	ctl.readonly = readonly;
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
