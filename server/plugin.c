/* plugin.c - nbdkit-vhd-plugin: a VHD chain as an NBD export.
 *
 *   nbdkit vhd file=FILE [readonly=true] [control=PATH]
 *
 * nbdkit speaks the protocol; this file gives it the disk.  One handle on
 * the chain is opened before the server listens (get_ready) and shared by
 * every connection, so that FILE's write lock is taken once and a flush on
 * any connection covers the writes completed on all (MULTI_CONN holds).
 * The library's data functions are safe to call from nbdkit's PARALLEL
 * worker threads on that one handle.
 *
 * Every request goes through serve_request(): one place that counts it
 * (server/stats.c) and passes it through the gate (server/gate.c), where
 * the live coalesce (server/live.c) holds requests back (a drain) and
 * sends writes through the merge (vhd_live_pwrite: leaf, then parent). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static struct {
	char *file;           /* as given (nbdkit makes it absolute) */
	bool readonly;        /* readonly=true: no lock, no writes */
	char *control;        /* control socket path, or NULL */
	vhd_t *vhd;
	struct vhd_info info;
	char description[256];
	struct serve_stats stats;
} ex;

static void vhd_unload(void)
{
	ctl_stop();
	live_unload();
	if (ex.vhd && vhd_close(ex.vhd))
		nbdkit_error("%s", vhd_get_error());
	ex.vhd = NULL;
	free(ex.file);
	free(ex.control);
}

static int vhd_config(const char *key, const char *value)
{
	if (!strcmp(key, "file")) {
		free(ex.file);
		return (ex.file = nbdkit_absolute_path(value)) ? 0 : -1;
	}
	if (!strcmp(key, "readonly")) {
		int r = nbdkit_parse_bool(value);
		if (r < 0)
			return -1;
		ex.readonly = r;
		return 0;
	}
	if (!strcmp(key, "control")) {
		free(ex.control);
		return (ex.control = nbdkit_absolute_path(value)) ? 0 : -1;
	}
	nbdkit_error("unknown parameter '%s' (file=, readonly=, control=)", key);
	return -1;
}

static int vhd_config_complete(void)
{
	if (!ex.file) {
		nbdkit_error("file=FILE is required");
		return -1;
	}
	return 0;
}

static const char *type_word(int type)
{
	return type == VHD_TYPE_FIXED ? "fixed" : type == VHD_TYPE_DYNAMIC ? "dynamic"
	                                                                   : "differencing";
}

/* Open the chain now, before nbdkit binds its socket: a damaged or busy
 * image stops the server at start, with the library's message. */
static int vhd_get_ready(void)
{
	/* a pivot a crash interrupted is finished before FILE is opened */
	if (!ex.readonly && live_prepare(ex.file)) {
		nbdkit_error("%s", vhd_get_error());
		return -1;
	}
	/* durable: a power cut leaves a valid image (flushed writes kept) */
	ex.vhd = vhd_open(ex.file, ex.readonly ? VHD_OPEN_RDONLY : VHD_OPEN_RDWR | VHD_OPEN_DURABLE);
	if (!ex.vhd || vhd_get_info(ex.vhd, &ex.info)) {
		nbdkit_error("%s", vhd_get_error());
		return -1;
	}
	unsigned depth = vhd_chain_depth(ex.vhd);
	snprintf(ex.description, sizeof ex.description, "%s: %s VHD, %u layer%s%s", ex.file,
	         type_word(ex.info.type), depth, depth == 1 ? "" : "s",
	         ex.readonly ? ", read-only" : "");
	stats_init(&ex.stats);
	if (!ex.readonly)
		live_init(&ex.vhd, ex.file, &ex.stats);
	return 0;
}

/* After nbdkit's fork (--daemon): the control socket's thread belongs to
 * the process that serves. */
static int vhd_after_fork(void)
{
	if (ex.control && ctl_start(ex.control, &ex.stats, ex.description, ex.readonly)) {
		nbdkit_error("%s: control socket: %s", ex.control, ctl_error());
		return -1;
	}
	return ex.readonly ? 0 : live_after_fork(ex.control);
}

struct conn {
	bool readonly;
};

static void *vhd_open_conn(int readonly)
{
	struct conn *c = malloc(sizeof *c);
	if (!c) {
		nbdkit_error("out of memory");
		return NULL;
	}
	c->readonly = readonly || ex.readonly;
	stats_connection(&ex.stats, +1);
	return c;
}

static void vhd_close_conn(void *handle)
{
	stats_connection(&ex.stats, -1);
	free(handle);
}

static int64_t vhd_get_size(void *handle)
{
	(void)handle;
	return (int64_t)ex.info.virtual_size;
}

static const char *vhd_export_description(void *handle)
{
	(void)handle;
	return ex.description;
}

static int vhd_block_size(void *handle, uint32_t *minimum, uint32_t *preferred,
                          uint32_t *maximum)
{
	(void)handle;
	*minimum = VHD_SECTOR_SIZE;
	*preferred = 4096;
	*maximum = 0xffffffff;
	return 0;
}

static int vhd_can_write(void *handle)
{
	return !((struct conn *)handle)->readonly;
}

static int yes(void *handle)
{
	(void)handle;
	return 1;
}

static int vhd_can_fua(void *handle)
{
	(void)handle;
	return NBDKIT_FUA_NATIVE;
}

static int vhd_can_cache(void *handle)
{
	(void)handle;
	return NBDKIT_CACHE_NATIVE;
}

/* ---- requests: all through serve_request ---- */

struct request {
	enum serve_cmd cmd;
	void *buf;            /* read: filled; write: the data */
	uint32_t count;
	uint64_t offset;
	uint32_t flags;       /* NBDKIT_FLAG_* */
	struct nbdkit_extents *extents;
};

static bool aligned(uint32_t count, uint64_t offset)
{
	return count % VHD_SECTOR_SIZE == 0 && offset % VHD_SECTOR_SIZE == 0;
}

/* The library's last error, logged; returns its errno (the NBD error). */
static int lib_error(void)
{
	nbdkit_error("%s", vhd_get_error());
	return vhd_get_errno() ? vhd_get_errno() : EIO;
}

/* Whole sectors covering [OFFSET, OFFSET+COUNT) (nbdkit has checked that
 * the range is inside the disk, whose size is a multiple of a sector). */
static void sector_span(uint32_t count, uint64_t offset, uint64_t *start, uint64_t *len)
{
	*start = offset / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	uint64_t end = (offset + count + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	*len = end - *start;
}

/* A read not on sector boundaries (a client ignoring the advertised
 * minimum block size) goes through a bounce buffer of whole sectors. */
static int read_unaligned(void *buf, uint32_t count, uint64_t offset)
{
	uint64_t start, len;
	sector_span(count, offset, &start, &len);
	uint8_t *bounce = malloc(len);
	if (!bounce)
		return ENOMEM;
	int err = vhd_pread(ex.vhd, bounce, len, start) ? lib_error() : 0;
	if (!err)
		memcpy(buf, bounce + (offset - start), count);
	free(bounce);
	return err;
}

static int add_extent(uint64_t offset, uint64_t length, int layer, void *opaque)
{
	uint32_t type = layer < 0 ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0;
	return nbdkit_add_extent(opaque, offset, length, type) ? 1 : 0;
}

/* Block status of the whole sectors covering the request; with REQ_ONE
 * only the first extent counts, so a short look is enough. */
static int extents(struct request *r)
{
	uint64_t start, len;
	sector_span(r->count, r->offset, &start, &len);
	if (r->flags & NBDKIT_FLAG_REQ_ONE && len > VHD_DEFAULT_BLOCK_SIZE)
		len = VHD_DEFAULT_BLOCK_SIZE;
	int rc = vhd_block_status(ex.vhd, len, start, add_extent, r->extents);
	return rc < 0 ? lib_error() : rc > 0 ? EIO : 0;   /* > 0: nbdkit said why */
}

/* A flush: of the leaf, and while a live merge runs, of its parent. */
static int flush(vhd_live_t *live)
{
	return (live ? vhd_live_flush(live) : vhd_flush(ex.vhd)) ? lib_error() : 0;
}

static int flush_if_fua(const struct request *r, vhd_live_t *live)
{
	return r->flags & NBDKIT_FLAG_FUA ? flush(live) : 0;
}

static int write_req(const struct request *r, vhd_live_t *live)
{
	if (!aligned(r->count, r->offset))
		return EINVAL;
	if (live ? vhd_live_pwrite(live, r->buf, r->count, r->offset)
	         : vhd_pwrite(ex.vhd, r->buf, r->count, r->offset))
		return lib_error();
	return flush_if_fua(r, live);
}

static int zero_req(const struct request *r, vhd_live_t *live)
{
	if (!aligned(r->count, r->offset))
		return EINVAL;
	int flags = (r->flags & NBDKIT_FLAG_MAY_TRIM ? 0 : VHD_ZERO_NO_HOLE) |
	            (r->flags & NBDKIT_FLAG_FAST_ZERO ? VHD_ZERO_FAST : 0);
	if (live ? vhd_live_zero(live, r->count, r->offset, flags)
	         : vhd_zero(ex.vhd, r->count, r->offset, flags))
		/* FAST_ZERO refused: an expected answer, not worth a log line */
		return vhd_get_errno() == ENOTSUP ? ENOTSUP : lib_error();
	return flush_if_fua(r, live);
}

/* Trim is advisory: an unaligned request shrinks to the sectors it covers
 * whole; during a live merge it does nothing (vhd_live_trim). */
static int trim(struct request *r, vhd_live_t *live)
{
	uint64_t start = (r->offset + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	uint64_t end = (r->offset + r->count) / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	if (end <= start)
		return 0;
	int rc = live ? vhd_live_trim(live, end - start, start) : vhd_trim(ex.vhd, end - start, start);
	return rc ? lib_error() : flush_if_fua(r, live);
}

/* Writes, zeroes and trims on sector boundaries only: the library works
 * in sectors, and a read-modify-write of a partial sector would race with
 * the other requests in flight.  The advertised minimum is 512. */
static int dispatch(struct request *r, vhd_live_t *live)
{
	uint64_t start, len;
	switch (r->cmd) {
	case SERVE_READ:
		if (!aligned(r->count, r->offset))
			return read_unaligned(r->buf, r->count, r->offset);
		return vhd_pread(ex.vhd, r->buf, r->count, r->offset) ? lib_error() : 0;
	case SERVE_WRITE:
		return write_req(r, live);
	case SERVE_ZERO:
		return zero_req(r, live);
	case SERVE_TRIM:
		return trim(r, live);
	case SERVE_FLUSH:
		return flush(live);
	case SERVE_CACHE:
		sector_span(r->count, r->offset, &start, &len);
		return vhd_prefetch(ex.vhd, len, start) ? lib_error() : 0;
	case SERVE_EXTENTS:
		return extents(r);
	default:
		return EINVAL;
	}
}

/* The one door of every request: through the gate (it may wait there
 * while a drain holds it), timed (the wait included), counted, its error
 * (an errno: the NBD error the client gets) handed to nbdkit. */
static int serve_request(struct request *r)
{
	uint64_t t0 = stats_now_ns();
	vhd_live_t *live = gate_enter();
	int err = dispatch(r, live);
	gate_leave();
	if (err)
		nbdkit_set_error(err);
	bool moves = r->cmd == SERVE_READ || r->cmd == SERVE_WRITE || r->cmd == SERVE_ZERO ||
	             r->cmd == SERVE_TRIM;
	stats_request(&ex.stats, r->cmd, moves ? r->count : 0, t0, err != 0);
	return err ? -1 : 0;
}

static int vhd_pread_cb(void *handle, void *buf, uint32_t count, uint64_t offset,
                        uint32_t flags)
{
	(void)handle;
	struct request r = { SERVE_READ, buf, count, offset, flags, NULL };
	return serve_request(&r);
}

static int vhd_pwrite_cb(void *handle, const void *buf, uint32_t count, uint64_t offset,
                         uint32_t flags)
{
	(void)handle;
	struct request r = { SERVE_WRITE, (void *)buf, count, offset, flags, NULL };
	return serve_request(&r);
}

static int vhd_zero_cb(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)handle;
	struct request r = { SERVE_ZERO, NULL, count, offset, flags, NULL };
	return serve_request(&r);
}

static int vhd_trim_cb(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)handle;
	struct request r = { SERVE_TRIM, NULL, count, offset, flags, NULL };
	return serve_request(&r);
}

static int vhd_flush_cb(void *handle, uint32_t flags)
{
	(void)handle;
	struct request r = { SERVE_FLUSH, NULL, 0, 0, flags, NULL };
	return serve_request(&r);
}

static int vhd_cache_cb(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)handle;
	struct request r = { SERVE_CACHE, NULL, count, offset, flags, NULL };
	return serve_request(&r);
}

static int vhd_extents_cb(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
                          struct nbdkit_extents *e)
{
	(void)handle;
	struct request r = { SERVE_EXTENTS, NULL, count, offset, flags, e };
	return serve_request(&r);
}

static struct nbdkit_plugin plugin = {
	.name = "vhd",
	.longname = "vhdkit VHD chain plugin",
	.version = VHDKIT_VERSION,
	.description = "Serves a VHD (fixed, dynamic or differencing, through its chain).",
	.magic_config_key = "file",
	.config_help = "file=FILE        The VHD to serve (required).\n"
	               "readonly=true    Open read-only: no write lock, no writes.\n"
	               "control=PATH     A JSON control socket ({\"cmd\":\"status\"}).",
	.unload = vhd_unload,
	.config = vhd_config,
	.config_complete = vhd_config_complete,
	.get_ready = vhd_get_ready,
	.after_fork = vhd_after_fork,
	.open = vhd_open_conn,
	.close = vhd_close_conn,
	.get_size = vhd_get_size,
	.export_description = vhd_export_description,
	.block_size = vhd_block_size,
	.can_write = vhd_can_write,
	.can_flush = yes,
	.can_trim = yes,
	.can_zero = yes,
	.can_fast_zero = yes,
	.can_fua = vhd_can_fua,
	.can_multi_conn = yes,
	.can_extents = yes,
	.can_cache = vhd_can_cache,
	.pread = vhd_pread_cb,
	.pwrite = vhd_pwrite_cb,
	.zero = vhd_zero_cb,
	.trim = vhd_trim_cb,
	.flush = vhd_flush_cb,
	.cache = vhd_cache_cb,
	.extents = vhd_extents_cb,
	.errno_is_preserved = 0,
};

/* Requests run in parallel, on every connection at once. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
NBDKIT_REGISTER_PLUGIN(plugin)
