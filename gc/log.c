/* log.c - the GC's log (stderr or syslog, recent errors kept for the
 * status) and the names of its operation kinds and results. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "gc.h"

const char *const gc_kind_names[GC_KINDS] = { "delete", "coalesce", "leaf-coalesce", "commit" };
const char *const gc_result_names[GC_RESULTS] = { "ok", "error", "cancelled" };

void gc_log(struct gc *g, bool error, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (g->o.use_syslog) {
		syslog(error ? LOG_ERR : LOG_INFO, "%s", msg);
	} else {
		char ts[32];
		time_t t = time(NULL);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		fprintf(stderr, "%s vhd-gc: %s\n", ts, msg);
	}
	if (!error)
		return;
	pthread_mutex_lock(&g->lock);
	struct gc_error *e = &g->errors[g->errors_next];
	e->when = time(NULL);
	snprintf(e->message, sizeof e->message, "%s", msg);
	g->errors_next = (g->errors_next + 1) % GC_MAX_ERRORS;
	if (g->nerrors < GC_MAX_ERRORS)
		g->nerrors++;
	pthread_mutex_unlock(&g->lock);
}
