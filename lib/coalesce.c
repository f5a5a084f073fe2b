/* coalesce.c - merge the layers above a base into the base: vhd_coalesce,
 * vhd_commit, vhd_recover.
 *
 * Why it is safe at every moment: the base is hidden and has no other
 * child, so the only content that must never change is what the top (and
 * its descendants) read.  A sector present in a layer above the base is
 * read from that layer, never from the base; so writing it into the base,
 * in any order and even torn, cannot change what the top reads.  A sector
 * absent above the base is never written.  What needs ordering is the
 * base's structure: a new block's BAT entry must not reach the disk before
 * the file has grown to hold it (else reading its bitmap fails), and a
 * batmap bit only after the full bitmap it summarises.
 *
 * Why it is fast: base blocks are visited in order, in batches; new blocks
 * are allocated contiguously with one footer move per batch; only present
 * runs are read and written (holes stay holes); a batch costs three
 * fdatasyncs and a journal update, not a synchronous read-modify-write of
 * metadata per run as in blktap.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "merge.h"

#define DEFAULT_BATCH_BLOCKS 256u
#define BATCH_SECONDS 2.0            /* make progress durable at least this often */
#define MAX_BATCH_BLOCKS 1024u
#define FIXED_CHUNK_SECTORS 4096u    /* 2 MiB steps over a fixed base */
#define REPORT_INTERVAL 0.1
#define COPY_BUFFER_BYTES (32u << 20) /* block buffers in flight, at most */
#define COPY_MAX_SLOTS 16u
#define COPY_WORKERS 16u               /* blocks copied in parallel, at most */

struct merge {
	const struct vhd_coalesce_opts *opts;
	struct journal j;
	struct vhd *top;        /* read-only chain from the top */
	struct vhd *base;       /* the base, writable, without its parent */
	unsigned layers;        /* files above the base */
	int top_lock_fd;        /* held while a relink is pending */
	bool resumed, stop;
	uint64_t top_sectors;
	uint32_t block_sectors; /* of the base (a 2 MiB step for fixed) */
	uint32_t blocks;        /* base blocks covering the top */
	unsigned batch;
	struct reader *reader;
	int *direct_fds;        /* per layer above the base: O_DIRECT reader, or -1 */
	int base_direct_fd;     /* the base opened O_DIRECT for writing, or -1 */
	uint64_t page_bytes;    /* of the page cache */
	uint32_t submitted;     /* next block to hand to the reader */
	uint8_t *new_maps;      /* bitmaps of the batch's new blocks */
	bool *full;
	struct run *runs;
	struct run *ahead_runs; /* runs of the block being submitted */
	uint64_t footer_before; /* where the footer was before a batch's allocation */
	/* survey of what is left */
	uint64_t left_bytes;
	uint32_t left_new_blocks;
	/* progress and throttling */
	double t_report, t_window, t_limit, t_start;
	uint64_t b_window, b_limit, limit, b_start;
	double rate;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool is_fixed(const struct vhd *v)
{
	return v->footer.type == VHD_TYPE_FIXED;
}

/* ---- progress, stop requests, rate limit ---- */

static int report(struct merge *m, const char *phase, bool force)
{
	double t = now();
	if (!force && t - m->t_report < REPORT_INTERVAL)
		return 0;
	m->t_report = t;
	if (t - m->t_window >= 1.0) {   /* rate over the last second or so */
		double r = (double)(m->j.bytes_done - m->b_window) / (t - m->t_window);
		m->rate = m->rate > 0 ? 0.5 * m->rate + 0.5 * r : r;
		m->t_window = t;
		m->b_window = m->j.bytes_done;
	} else if (m->rate == 0 && t > m->t_start && m->j.bytes_done > m->b_start) {
		/* less than a second so far: the average since the start */
		m->rate = (double)(m->j.bytes_done - m->b_start) / (t - m->t_start);
	}
	if (!m->opts->progress)
		return 0;
	uint64_t left = m->j.bytes_total > m->j.bytes_done ? m->j.bytes_total - m->j.bytes_done : 0;
	struct vhd_progress p = {
		.phase = phase,
		.top = m->j.layers[0].path,
		.base = m->j.base,
		.bytes_done = m->j.bytes_done,
		.bytes_total = m->j.bytes_total,
		.rate = m->rate,
		.eta = m->rate > 0 ? (double)left / m->rate : (left ? -1 : 0),
		.resumed = m->resumed,
	};
	if (m->reader)
		reader_read_stats(m->reader, &p.copy_reads, &p.copy_read_seconds);
	if (m->opts->progress(&p, m->opts->opaque))
		m->stop = true;
	return 0;
}

static bool stop_requested(struct merge *m)
{
	if (m->opts->stop && *m->opts->stop)
		m->stop = true;
	return m->stop;
}

/* Sleep as long as the rate limit asks, in short naps so that a stop
 * request or a new limit takes effect at once. */
static void throttle(struct merge *m)
{
	for (;;) {
		uint64_t limit = m->opts->rate_limit;
		double t = now();
		if (limit != m->limit) {
			m->limit = limit;
			m->t_limit = t;
			m->b_limit = m->j.bytes_done;
		}
		if (!limit || stop_requested(m))
			return;
		double due = (double)(m->j.bytes_done - m->b_limit) / (double)limit;
		double ahead = due - (t - m->t_limit);
		if (ahead <= 0)
			return;
		double nap = ahead < 0.05 ? ahead : 0.05;
		nanosleep(&(struct timespec){ 0, (long)(nap * 1e9) }, NULL);
		report(m, "copy", false);
	}
}

/* ---- what to copy ---- */

static uint64_t source_offset(const struct vhd *from, uint64_t sector)
{
	if (from->footer.type == VHD_TYPE_FIXED)
		return sector * SECTOR;
	uint32_t block = (uint32_t)(sector / from->block_sectors);
	return block_data_offset(from, block) + (sector % from->block_sectors) * SECTOR;
}

/* The runs of base block B present in the layers above the base, into
 * RUNS (block_sectors / 2 + 1 entries). */
static int find_runs(struct merge *m, uint32_t b, struct run *runs, unsigned *count)
{
	uint64_t first = (uint64_t)b * m->block_sectors;
	uint64_t end = first + m->block_sectors;
	if (end > m->top_sectors)
		end = m->top_sectors;
	unsigned n = 0;
	for (uint64_t s = first; s < end;) {
		uint64_t run;
		struct vhd *from = NULL;
		int l;
		if (vhd_find_source(m->top, s, end - s, &run, &from, &l, m->layers))
			return -1;
		if (l != NO_LAYER)
			runs[n++] = (struct run){ (uint32_t)(s - first), (uint32_t)run, from, from->fd,
			                          m->direct_fds[l], source_offset(from, s) };
		s += run;
	}
	*count = n;
	return 0;
}

static int block_runs(struct merge *m, uint32_t b, unsigned *count)
{
	return find_runs(m, b, m->runs, count);
}



static uint64_t runs_sectors(const struct run *r, unsigned n)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < n; i++)
		s += r[i].len;
	return s;
}

static bool block_is_new(const struct merge *m, uint32_t b)
{
	return !is_fixed(m->base) && (b >= m->base->bat_entries || m->base->bat[b] == BAT_UNUSED);
}

/* Count the bytes to copy (all, and from the next block on) and the blocks
 * the base will have to allocate. */
/* The survey reads every bitmap of the layers above the base, one at a
 * time; asking for them all first lets the disk fetch them in parallel. */
static void advise_bitmaps(struct merge *m)
{
	struct vhd *v = m->top;
	for (unsigned l = 0; l < m->layers; l++, v = v->parent) {
		if (is_fixed(v))
			continue;
		for (uint32_t b = 0; b < v->bat_entries; b++)
			if (v->bat[b] != BAT_UNUSED && !(v->has_batmap && bit_test(v->batmap, b)))
				posix_fadvise(v->fd, (off_t)block_bitmap_offset(v, b), v->bitmap_bytes,
				              POSIX_FADV_WILLNEED);
	}
}

static int survey(struct merge *m, bool set_total)
{
	uint64_t total = 0;
	advise_bitmaps(m);
	m->left_bytes = 0;
	m->left_new_blocks = 0;
	for (uint32_t b = 0; b < m->blocks; b++) {
		unsigned n;
		if (block_runs(m, b, &n))
			return -1;
		uint64_t bytes = runs_sectors(m->runs, n) * SECTOR;
		total += bytes;
		if (b >= m->j.next_block) {
			m->left_bytes += bytes;
			m->left_new_blocks += n && block_is_new(m, b);
		}
	}
	if (set_total)
		m->j.bytes_total = total;
	return 0;
}

static int check_space(struct merge *m)
{
	if (m->base->is_blockdev || (m->opts->flags & VHD_COALESCE_NO_SPACE_CHECK))
		return 0;
	uint64_t per_block = m->base->bitmap_bytes + DATA_ALIGN;
	uint64_t need = m->left_bytes + (uint64_t)m->left_new_blocks * per_block;
	struct statvfs sv;
	if (fstatvfs(m->base->fd, &sv))
		return vhd_error(errno, "%s: statvfs: %s", m->base->path, strerror(errno));
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (need > avail)
		return vhd_error(ENOSPC, "%s: the merge needs %llu MiB more and the filesystem "
		                         "has %llu MiB free",
		                 m->base->path, (unsigned long long)div_round_up(need, 1 << 20),
		                 (unsigned long long)(avail >> 20));
	return 0;
}

/* ---- copying one batch of base blocks ---- */

static int sync_base(struct merge *m)
{
	if (fdatasync(m->base->fd))
		return vhd_error(errno, "%s: fdatasync: %s", m->base->path, strerror(errno));
	return 0;
}

static uint64_t data_offset_of(const struct merge *m, uint32_t b, uint32_t sector_in)
{
	if (is_fixed(m->base))
		return ((uint64_t)b * m->block_sectors + sector_in) * SECTOR;
	return block_data_offset(m->base, b) + (uint64_t)sector_in * SECTOR;
}

/* Mark the runs present in the base block's bitmap (only ever setting
 * bits) and note whether the block is now full. */
static int update_bitmap(struct merge *m, const struct read_slot *sl, unsigned idx, bool fresh)
{
	uint32_t b = sl->block;
	uint8_t *map = fresh ? m->new_maps + (size_t)idx * m->base->bitmap_bytes : sl->map;
	bool changed = fresh;
	for (unsigned i = 0; i < sl->nruns; i++) {
		const struct run *r = &sl->runs[i];
		if (bit_find(map, r->start, r->start + r->len, false) == r->start + r->len)
			continue;
		changed = true;
		for (uint32_t s = r->start; s < r->start + r->len; s++)
			bit_set(map, s);
	}
	m->full[idx] = bit_find(map, 0, m->block_sectors, false) == m->block_sectors;
	if (!changed)
		return 0;
	return write_at(m->base->fd, m->base->path, map, m->base->bitmap_bytes,
	                block_bitmap_offset(m->base, b));
}

/* May block B, whose data starts at DST, be written with O_DIRECT (see
 * merge-copier.c)?  Only where it is already on disk (not a new block: a
 * direct write into a hole allocates and zeroes on its own) and its data
 * fills whole pages, so that no page of it holds a bitmap, a footer or
 * another block, which the merge writes through the cache. */
static bool may_write_direct(const struct merge *m, uint32_t b, uint64_t dst)
{
	uint64_t bytes = (uint64_t)m->block_sectors * SECTOR, page = m->page_bytes;
	if (m->base_direct_fd < 0 || block_is_new(m, b) || dst % page || bytes % page)
		return false;
	/* a fixed base's last chunk may end in the footer's page */
	return !is_fixed(m->base) || dst + bytes <= m->base->footer_offset - m->base->footer_offset % page;
}

/* Hand the workers the blocks ahead, up to their capacity and the end of
 * the batch (whose new blocks have their places). */
static int fill_workers(struct merge *m, uint32_t limit)
{
	while (m->submitted < limit && reader_pending(m->reader) < reader_capacity(m->reader)) {
		uint32_t b = m->submitted;
		unsigned n;
		if (find_runs(m, b, m->ahead_runs, &n))
			return -1;
		uint64_t dst = n ? data_offset_of(m, b, 0) : 0;
		/* an existing block's bitmap is read by the worker too */
		uint64_t map = n && !block_is_new(m, b) && !is_fixed(m->base)
		                   ? block_bitmap_offset(m->base, b) : 0;
		int direct = n && may_write_direct(m, b, dst) ? m->base_direct_fd : -1;
		if (reader_submit(m->reader, b, m->ahead_runs, n, m->base->fd, direct, dst, map))
			return -1;
		m->submitted++;
	}
	return 0;
}

/* Wait for block B's data to be in the base, then mark it in the bitmap. */
static int copy_block(struct merge *m, uint32_t b, uint32_t limit, unsigned idx, bool fresh)
{
	m->full[idx] = false;
	if (fill_workers(m, limit))
		return -1;
	struct read_slot *sl = reader_next(m->reader);
	if (!sl)
		return -1;
	int rc = 0;
	if (sl->block != b)
		rc = vhd_error(EIO, "merge: block %u came back for %u", sl->block, b);
	else if (sl->nruns && !is_fixed(m->base))
		rc = update_bitmap(m, sl, idx, fresh);
	if (!rc)
		m->j.bytes_done += runs_sectors(sl->runs, sl->nruns) * SECTOR;
	reader_release(m->reader);
	return rc;
}

static uint64_t next_block_start(const struct vhd *v, uint64_t end)
{
	return round_up(end + v->bitmap_bytes, DATA_ALIGN) - v->bitmap_bytes;
}

static uint64_t block_end(const struct vhd *v, uint32_t b)
{
	return block_bitmap_offset(v, b) + v->bitmap_bytes + v->header.block_size;
}

/* Give the batch's new blocks places at the end of the base, and move the
 * footer past them first: the file must already hold them when their BAT
 * entries reach the disk. */
static int allocate_batch(struct merge *m, uint32_t b0, uint32_t b1, bool *fresh)
{
	struct vhd *v = m->base;
	uint64_t end = v->footer_offset;
	bool any = false;
	for (uint32_t b = b0; b < b1; b++) {
		unsigned n;
		fresh[b - b0] = false;
		if (!block_is_new(m, b))
			continue;
		if (block_runs(m, b, &n))
			return -1;
		if (!n)
			continue;
		uint64_t start = next_block_start(v, end);
		if (start / SECTOR > UINT32_MAX - 1)
			return vhd_error(EFBIG, "%s: block %u: file would exceed what the BAT can "
			                        "address", v->path, b);
		v->bat[b] = (uint32_t)(start / SECTOR);
		memset(m->new_maps + (size_t)(b - b0) * v->bitmap_bytes, 0, v->bitmap_bytes);
		fresh[b - b0] = any = true;
		end = block_end(v, b);
	}
	if (!any)
		return 0;
	m->footer_before = v->footer_offset;
	if (v->is_blockdev && end + FOOTER_SIZE > v->file_size)
		return vhd_error(ENOSPC, "%s: device too small for the merged data", v->path);
	v->footer_offset = end;
	return vhd_write_footers(v) || sync_base(m);
}

/* A stop request ended the batch early: move the footer back behind the
 * last block used, so no space is left unreferenced. */
static int trim_allocation(struct merge *m, uint32_t b0, uint32_t stop_at, uint32_t b1,
                           bool *fresh)
{
	struct vhd *v = m->base;
	uint64_t end = m->footer_before;
	bool dropped = false;
	for (uint32_t b = b0; b < b1; b++) {
		if (!fresh[b - b0])
			continue;
		if (b < stop_at) {
			end = block_end(v, b);
		} else {
			v->bat[b] = BAT_UNUSED;
			fresh[b - b0] = false;
			dropped = true;
		}
	}
	if (!dropped)
		return 0;
	v->footer_offset = end;
	if (vhd_write_footers(v) || sync_base(m))
		return -1;
	if (ftruncate(v->fd, (off_t)(end + FOOTER_SIZE)))
		return vhd_error(errno, "%s: ftruncate: %s", v->path, strerror(errno));
	return 0;
}

/* Make the batch's blocks visible in the base: BAT entries of the new
 * blocks (one write for the range), then batmap bits of full blocks; the
 * caller flushes. */
static int publish_batch(struct merge *m, uint32_t b0, uint32_t b1, const bool *fresh)
{
	struct vhd *v = m->base;
	uint32_t lo = UINT32_MAX, hi = 0;
	bool batmap_changed = false;
	for (uint32_t b = b0; b < b1; b++) {
		if (fresh[b - b0]) {
			lo = b < lo ? b : lo;
			hi = b + 1;
		}
		if (v->has_batmap && m->full[b - b0] && !bit_test(v->batmap, b)) {
			bit_set(v->batmap, b);
			batmap_changed = true;
		}
	}
	if (lo < hi) {
		uint8_t *raw = xmalloc((size_t)(hi - lo) * 4);
		if (!raw)
			return -1;
		for (uint32_t b = lo; b < hi; b++)
			put_be32(raw + 4 * (b - lo), v->bat[b]);
		int rc = write_at(v->fd, v->path, raw, (size_t)(hi - lo) * 4,
		                  v->header.table_offset + 4ull * lo);
		free(raw);
		if (rc)
			return -1;
	}
	if (batmap_changed && vhd_write_batmap(v))
		return -1;
	return 0;
}

static int copy_batch(struct merge *m, uint32_t b0, uint32_t b1, bool *fresh)
{
	if (!is_fixed(m->base) && allocate_batch(m, b0, b1, fresh))
		return -1;
	uint32_t b, limit = b1;
	uint64_t done_before = m->j.bytes_done;
	double t0 = now();
	for (b = b0; b < limit; b++) {
		if (copy_block(m, b, limit, b - b0, fresh[b - b0]))
			return -1;
		report(m, "copy", false);
		throttle(m);
		/* on a stop request, or when the batch has run long enough, finish
		 * the blocks in flight and end it */
		if (stop_requested(m) || now() - t0 > BATCH_SECONDS)
			limit = m->submitted;
	}
	if (!is_fixed(m->base) && trim_allocation(m, b0, b, b1, fresh))
		return -1;
	if (m->j.bytes_done == done_before) {   /* nothing to make durable */
		m->j.next_block = b;
		return 0;
	}
	/* One flush makes data, bitmaps and BAT entries durable together: what
	 * the top reads never depends on their order (see the top of the file). */
	if ((!is_fixed(m->base) && publish_batch(m, b0, b, fresh)) || sync_base(m))
		return -1;
	m->j.next_block = b;
	vhd_debug(m->base->path, "batch of blocks %u-%u: %.3f s", b0, b - 1, now() - t0);
	if (b == m->blocks && !m->j.relink)
		return 0;   /* done: the journal goes next, no need to record this */
	return journal_save(&m->j);
}

static int copy_all(struct merge *m)
{
	bool *fresh = xcalloc(m->batch, sizeof *fresh);
	if (!fresh)
		return -1;
	int rc = 0;
	m->submitted = m->j.next_block;
	report(m, "copy", true);
	while (m->j.next_block < m->blocks && !stop_requested(m)) {
		uint32_t b0 = m->j.next_block;
		uint32_t b1 = m->blocks - b0 > m->batch ? b0 + m->batch : m->blocks;
		if ((rc = copy_batch(m, b0, b1, fresh)))
			break;
	}
	free(fresh);
	if (!rc && m->j.next_block < m->blocks)
		rc = vhd_error(EINTR, "%s: stopped at block %u of %u; run it again to resume",
		               m->j.layers[0].path, m->j.next_block, m->blocks);
	return rc;
}

/* ---- setting up: find the base, check it may be written, journal ---- */

static bool same_file(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* The chain member of M->top that is BASE_PATH (NULL: the top's parent);
 * sets m->layers. */
static struct vhd *find_base(struct merge *m, const char *base_path)
{
	unsigned n = 1;
	for (struct vhd *a = m->top->parent; a; a = a->parent, n++) {
		if (!base_path || same_file(a->fd, base_path)) {
			m->layers = n;
			return a;
		}
	}
	vhd_error(EINVAL, "%s: %s is not one of its ancestors", m->top->path,
	          base_path ? base_path : "(parent)");
	return NULL;
}

/* Every layer below the top changes content while the merge runs (what
 * it reads from below now comes from the merged base), so each must be
 * hidden and have no other child in its directory (FORCE skips both
 * tests: the caller accepts that those disks change). */
static int check_writable_layers(struct merge *m)
{
	const struct vhd *child = m->top;
	for (unsigned i = 0; i < m->layers; i++, child = child->parent) {
		const struct vhd *v = child->parent;
		/* a raw parent is named by the child's locators alone, which can
		 * name any file: write only to one beside the child */
		if (v->is_raw && !(m->opts->flags & VHD_COALESCE_RAW_ANYWHERE) &&
		    !same_directory(v->path, child->path))
			return vhd_error(EPERM, "%s: raw parent outside %s's directory: a locator can "
			                        "name any file (--force to merge into it anyway)",
			                 v->path, child->path);
		if (m->opts->flags & VHD_COALESCE_FORCE)
			continue;
		/* a raw image has no hidden flag: its write lock is what is held */
		if (!v->is_raw && !v->footer.hidden)
			return vhd_error(EPERM, "%s: not hidden: merging would change the content "
			                        "of a disk that may be in use (--force to do it anyway)",
			                 v->path);
		char dir[PATH_MAX];
		path_dir(v->path, dir, sizeof dir);
		char **others = v->is_raw ? raw_children_in_dir(dir, v->path, child->path)
		                          : children_in_dir(dir, v->footer.uuid, child->path);
		if (!others)
			return -1;
		if (others[0])
			vhd_error(EBUSY, "%s: has another child, %s, whose content the merge would "
			                 "change", v->path, others[0]);
		bool busy = others[0] != NULL;
		free_paths(others);
		if (busy)
			return -1;
	}
	return 0;
}

static int lock_top(struct merge *m)
{
	m->top_lock_fd = open(m->j.layers[0].path, O_RDONLY | O_CLOEXEC);
	if (m->top_lock_fd < 0)
		return errno == ENOENT ? 0 : vhd_error(errno, "%s: %s", m->j.layers[0].path,
		                                       strerror(errno));
	if (flock(m->top_lock_fd, LOCK_EX | LOCK_NB))
		return vhd_error(EBUSY, "%s: in use: it cannot be deleted after the merge",
		                 m->j.layers[0].path);
	return 0;
}

static int stamp_layers(struct merge *m)
{
	const struct vhd *v = m->top;
	for (unsigned i = 0; i < m->layers; i++, v = v->parent)
		if (stamp_file(&m->j.layers[i], v->path, v->footer.uuid))
			return -1;
	m->j.nlayers = m->layers;
	return 0;
}

/* A journal exists for this base: resume it if it is this merge's. */
static int adopt_journal(struct merge *m, struct journal *old)
{
	struct layer_stamp now_top = { 0 };
	if (stamp_file(&now_top, m->top->path, m->top->footer.uuid))
		return -1;
	bool same_top = !strcmp(now_top.path, old->layers[0].path) &&
	                !memcmp(now_top.uuid, old->layers[0].uuid, 16);
	free(now_top.path);
	if (!same_top || old->nlayers != m->layers || strcmp(old->op, m->j.op))
		return vhd_error(EBUSY, "%s: another merge into it is pending (%s); finish it "
		                        "with 'vhd recover'", m->j.base, old->path);
	bool unchanged = true;
	for (unsigned i = 0; i < m->layers; i++)
		unchanged = unchanged && stamp_equal(&m->j.layers[i], &old->layers[i]);
	m->resumed = true;
	m->j.relink = m->j.relink || old->relink;
	m->j.phase = old->phase;
	m->j.started = old->started;
	if (unchanged || old->phase != PHASE_COPY) {
		m->j.next_block = old->next_block;
		m->j.bytes_done = old->bytes_done;
	} else {
		vhd_debug(m->j.base, "a layer changed since the merge began: copying again");
	}
	return 0;
}

static int open_journal(struct merge *m)
{
	struct journal old;
	if (!(m->j.path = journal_path_for(m->j.base)))
		return -1;
	int r = journal_load(m->j.path, &old);
	if (r)
		return r > 0 ? 0 : -1;   /* none: a fresh start */
	r = memcmp(old.base_uuid, m->j.base_uuid, 16)
	        ? vhd_error(EBUSY, "%s: journal %s names another base", m->j.base, old.path)
	        : adopt_journal(m, &old);
	journal_free(&old);
	return r;
}

static int open_base(struct merge *m, const struct vhd *base_ro)
{
	char abs[PATH_MAX];
	if (!realpath(base_ro->path, abs))
		return vhd_error(errno, "%s: %s", base_ro->path, strerror(errno));
	if (!(m->j.base = xstrdup(abs)))
		return -1;
	memcpy(m->j.base_uuid, base_ro->footer.uuid, 16);   /* nil for a raw base */
	m->base = base_ro->is_raw ? vhd_open_raw(abs, true)
	                          : vhd_open(abs, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT);
	if (!m->base)
		return -1;
	if (memcmp(m->base->footer.uuid, base_ro->footer.uuid, 16))
		return vhd_error(EBUSY, "%s: changed while being opened", abs);
	return 0;
}

/* Chains whose layers shrink towards the top are refused: what the top
 * reads past a smaller layer's end would differ from the merged base. */
static int check_sizes(struct merge *m)
{
	const struct vhd *v = m->top;
	for (unsigned i = 0; i < m->layers; i++, v = v->parent)
		if (v->parent && !v->parent->is_raw && v->parent->footer.curr_size > v->footer.curr_size)
			return vhd_error(EPERM, "%s: smaller than its parent %s", v->path,
			                v->parent->path);
	return 0;
}

/* A raw base grows like blktap's, whose writes past its end extend it, but
 * at once to the top's whole size: the new bytes are zeros, which is what
 * the layers above read past its old end, so nothing they read changes. */
static int grow_raw(struct merge *m)
{
	struct vhd *v = m->base;
	uint64_t size = m->top->footer.curr_size;
	if (v->is_blockdev)
		return vhd_error(ENOSPC, "%s: device of %llu bytes is smaller than %s (%llu bytes)",
		                 v->path, (unsigned long long)v->file_size, m->top->path,
		                 (unsigned long long)size);
	if (ftruncate(v->fd, (off_t)size) || fsync(v->fd))
		return vhd_error(errno, "%s: growing to %llu bytes: %s", v->path,
		                 (unsigned long long)size, strerror(errno));
	v->file_size = v->footer.curr_size = v->footer.orig_size = v->footer_offset = size;
	return 0;
}

static int grow_base(struct merge *m)
{
	if (m->top->footer.curr_size <= m->base->footer.curr_size)
		return 0;
	report(m, "resize", true);
	if (m->base->is_raw)
		return grow_raw(m);
	if (vhd_resize(m->base, m->top->footer.curr_size))
		return vhd_error_prefix("growing the base to the top's size");
	return 0;
}

/* Why the layers are read with O_DIRECT where the filesystem allows
 * sector-aligned direct reads: through the page cache every byte moved is
 * also copied once more and its pages allocated and reclaimed, CPU time a
 * merge on a busy host does not have to spend; the layers are only read,
 * and a direct read sees what buffered writers left in the cache (the
 * kernel writes it back first).  -1 where direct reads are not possible. */
static int open_direct(const struct vhd *v, int mode)
{
	struct stat a, b;
	struct statx sx;
	int fd = open(v->path, mode | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -1;
	bool ok = fstat(fd, &a) == 0 && fstat(v->fd, &b) == 0 && a.st_dev == b.st_dev &&
	          a.st_ino == b.st_ino &&
	          statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	          (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align &&
	          sx.stx_dio_offset_align <= SECTOR && sx.stx_dio_mem_align <= SECTOR;
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

static int open_direct_readers(struct merge *m)
{
	if (!(m->direct_fds = xcalloc(m->layers, sizeof *m->direct_fds)))
		return -1;
	const struct vhd *v = m->top;
	for (unsigned l = 0; l < m->layers; l++, v = v->parent)
		m->direct_fds[l] = open_direct(v, O_RDONLY);
	m->base_direct_fd = open_direct(m->base, O_WRONLY);
	long page = sysconf(_SC_PAGESIZE);
	m->page_bytes = page > 0 ? (uint64_t)page : 4096;
	return 0;
}

static int alloc_buffers(struct merge *m)
{
	struct vhd *v = m->base;
	m->block_sectors = is_fixed(v) ? FIXED_CHUNK_SECTORS : v->block_sectors;
	m->top_sectors = m->top->footer.curr_size / SECTOR;
	uint64_t blocks = div_round_up(m->top_sectors, m->block_sectors);
	if (blocks > UINT32_MAX)
		return vhd_error(EFBIG, "%s: too many blocks", m->top->path);
	m->blocks = (uint32_t)blocks;
	unsigned batch = m->opts->batch_blocks ? m->opts->batch_blocks : DEFAULT_BATCH_BLOCKS;
	m->batch = batch > MAX_BATCH_BLOCKS ? MAX_BATCH_BLOCKS : batch;
	m->runs = xcalloc(m->block_sectors / 2 + 1, sizeof *m->runs);
	m->ahead_runs = xcalloc(m->block_sectors / 2 + 1, sizeof *m->runs);
	m->full = xcalloc(m->batch, sizeof *m->full);
	m->new_maps = xmalloc((size_t)m->batch * (is_fixed(v) ? SECTOR : v->bitmap_bytes));
	if (!m->runs || !m->ahead_runs || !m->full || !m->new_maps || open_direct_readers(m))
		return -1;
	/* memory stays bounded whatever the block size */
	unsigned slots = COPY_BUFFER_BYTES / ((uint32_t)m->block_sectors * SECTOR);
	slots = slots < 2 ? 2 : slots > COPY_MAX_SLOTS ? COPY_MAX_SLOTS : slots;
	m->reader = reader_start(slots, slots < COPY_WORKERS ? slots : COPY_WORKERS,
	                         m->block_sectors, is_fixed(v) ? 0 : v->bitmap_bytes,
	                         m->opts->io_priority);
	return m->reader ? 0 : -1;
}

static void merge_free(struct merge *m)
{
	if (m->top_lock_fd >= 0)
		close(m->top_lock_fd);
	vhd_close(m->base);
	vhd_close(m->top);
	reader_stop(m->reader);
	for (unsigned l = 0; m->direct_fds && l < m->layers; l++)
		if (m->direct_fds[l] >= 0)
			close(m->direct_fds[l]);
	free(m->direct_fds);
	if (m->base_direct_fd >= 0)
		close(m->base_direct_fd);
	free(m->runs);
	free(m->ahead_runs);
	free(m->full);
	free(m->new_maps);
	journal_free(&m->j);
}

static int setup(struct merge *m, const char *top, const char *base, const char *op)
{
	const struct vhd *base_ro;
	int strict = (m->opts->flags & VHD_COALESCE_STRICT_DIR) ? VHD_OPEN_STRICT_DIR : 0;
	if (!(m->top = vhd_open(top, VHD_OPEN_RDONLY | strict)))
		return -1;
	if (m->top->footer.type != VHD_TYPE_DIFF)
		return vhd_error(EINVAL, "%s: not a differencing disk: nothing to merge", top);
	if (!(base_ro = find_base(m, base)) || open_base(m, base_ro))
		return -1;
	if (!(m->j.op = xstrdup(op)) || stamp_layers(m) || open_journal(m))
		return -1;
	if (!m->resumed && (check_writable_layers(m) || check_sizes(m)))
		return -1;
	if (m->j.relink && lock_top(m))
		return -1;
	if (m->j.phase != PHASE_COPY)
		return 0;
	if (!m->resumed)
		m->j.started = (int64_t)time(NULL);
	report(m, "prepare", true);
	/* the journal is first written after the first batch: a crash before
	 * that leaves nothing a fresh start would not redo */
	double t0 = now();
	if (alloc_buffers(m) || survey(m, !m->resumed) || check_space(m) || grow_base(m))
		return -1;
	vhd_debug(m->base->path, "survey: %llu bytes to copy, %u new blocks, %.3f s",
	          (unsigned long long)m->left_bytes, m->left_new_blocks, now() - t0);
	if (!is_fixed(m->base) && m->blocks > m->base->bat_entries)
		return vhd_error(ENOTSUP, "%s: its BAT (%u blocks) cannot hold the top's %u blocks",
		                  m->base->path, m->base->bat_entries, m->blocks);
	return 0;
}

/* Run the phases that are left, saving the journal between them. */
static int finish(struct merge *m)
{
	if (m->j.phase == PHASE_COPY) {
		if (copy_all(m))
			return -1;
		report(m, "copy", true);
		if (!m->j.relink) {
					report(m, "done", true);
			return journal_remove(&m->j);
		}
		m->j.phase = PHASE_RELINK;
		if (journal_save(&m->j))
			return -1;
	}
	if (m->j.phase == PHASE_RELINK) {
		report(m, "relink", true);
		if (merge_relink(&m->j, m->opts))
			return -1;
		m->j.phase = PHASE_DELETE;
		if (journal_save(&m->j))
			return -1;
	}
	report(m, "delete", true);
	if (merge_delete(&m->j, m->opts) || journal_remove(&m->j))
		return -1;
	report(m, "done", true);
	return 0;
}

int merge_run(const char *top, const char *base, const char *op, bool relink,
              const struct vhd_coalesce_opts *opts)
{
	static const struct vhd_coalesce_opts none;
	struct merge m = { .opts = opts ? opts : &none, .top_lock_fd = -1, .base_direct_fd = -1 };
	m.j.relink = relink;
	m.t_window = m.t_limit = now();
	int rc = setup(&m, top, base, op);
	m.b_window = m.b_limit = m.b_start = m.j.bytes_done;
	m.t_start = now();
	if (!rc)
		rc = finish(&m);
	merge_free(&m);
	return rc;
}

/* Finish a merge whose copy is done (relink or delete pending), from its
 * journal alone: the top may already be gone. */
int merge_resume_late(struct journal *j, const struct vhd_coalesce_opts *opts)
{
	static const struct vhd_coalesce_opts none;
	struct merge m = { .opts = opts ? opts : &none, .top_lock_fd = -1, .base_direct_fd = -1, .resumed = true };
	m.j = *j;
	memset(j, 0, sizeof *j);
	m.t_window = m.t_limit = now();
	int rc = -1;
	m.base = uuid_is_nil(m.j.base_uuid) ? vhd_open_raw(m.j.base, true)
	                                    : vhd_open(m.j.base, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT);
	if (m.base && memcmp(m.base->footer.uuid, m.j.base_uuid, 16))
		vhd_error(EBADMSG, "%s: not the base the journal %s names", m.j.base, m.j.path);
	else if (m.base && !lock_top(&m))
		rc = finish(&m);
	merge_free(&m);
	return rc;
}

VHD_EXPORT int vhd_coalesce(const char *child, const struct vhd_coalesce_opts *opts)
{
	if (!child)
		return vhd_error(EINVAL, "no file given");
	bool relink = opts && (opts->flags & VHD_COALESCE_RELINK);
	return merge_run(child, NULL, "coalesce", relink, opts);
}

VHD_EXPORT int vhd_commit(const char *top, const char *base,
                          const struct vhd_coalesce_opts *opts)
{
	if (!top || !base)
		return vhd_error(EINVAL, "commit needs a top and a base");
	bool relink = opts && (opts->flags & VHD_COALESCE_RELINK);
	return merge_run(top, base, "commit", relink, opts);
}
