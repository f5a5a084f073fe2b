/* http.h - what the two HTTP servers of `vhd gc run` share: --metrics
 * (metrics.c) and --http (web.c). */
#ifndef VHD_GC_HTTP_H
#define VHD_GC_HTTP_H

#include <stddef.h>

#include <microhttpd.h>

#include "gc.h"

/* Listen on ADDR ("HOST:PORT", "[V6]:PORT", numeric; port 0 picks one) with
 * libmicrohttpd, FLAGS added to its internal polling thread, at most
 * MAX_CONNS connections, ANSWER called with G.  The bound "HOST:PORT" goes
 * into BOUND.  Returns the daemon, or NULL with a message naming OPTION. */
struct MHD_Daemon *gc_http_listen(struct gc *g, const char *option, const char *addr,
                                  unsigned flags, unsigned max_conns,
                                  MHD_AccessHandlerCallback answer, char *bound, size_t len);
/* The Prometheus text (takes LOCK); malloc'd, NULL when out of memory. */
char *gc_metrics_text(struct gc *g);

/* The page's files, built into the binary (gc/web/embed.sh writes the
 * table, ended by a NULL path). */
struct gc_web_asset {
	const char *path;          /* "/index.html" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};
extern const struct gc_web_asset gc_web_assets[];

#endif
