/* merge-copier.c - the data side of a merge, in worker threads.
 *
 * A merge moves many small runs (one per stretch of written sectors).  Done
 * one at a time, each read and write waits for the disk in turn and the
 * disk idles.  Here a few workers each copy one base block at a time (read
 * its runs, write them to the base and start their writeback), so several
 * blocks are in flight.  Writes go through the page cache, except those
 * that cut a page, into blocks already on disk (see extent_direct).  (All
 * writes O_DIRECT were tried: into the holes of a sparse file each one
 * allocates and commits on its own, several times slower than buffered
 * writes.)  Workers touch
 * no vhd structure: each run carries its file descriptor and offsets,
 * computed by the submitting thread, which also keeps all metadata.
 * Blocks are handed back in the order they were submitted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "merge.h"

#define GAP_BYTES (64u * 1024)   /* read across gaps up to this size */
#define MAX_IOV 256

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE, SLOT_FAILED };

struct slot {
	struct read_slot s;
	enum slot_state state;
	int err;
	char msg[256];
};

#define MAX_WORKERS 16

struct reader {
	pthread_t threads[MAX_WORKERS];
	unsigned workers, started;
	uint32_t bitmap_bytes;
	uint64_t page_bytes;
	pthread_mutex_t lock;
	pthread_cond_t changed;    /* a slot is done or free: the merge thread waits */
	pthread_cond_t work;       /* a slot is queued, or stopping: the workers wait */
	struct slot *slots;
	unsigned count;
	unsigned head;             /* next to hand out (reader_next) */
	unsigned tail;             /* next to fill (reader_submit) */
	unsigned pending;          /* submitted, not yet released */
	bool stopping;
	uint8_t *gap;              /* where gap bytes go (shared: never looked at) */
	int io_priority;           /* set by each worker on itself (0: inherited) */
	uint64_t reads;            /* source reads done, and their time: the */
	double read_seconds;       /* merge's own latency (for a pacing GC) */
};

static double monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ioprio_set(2) has no glibc wrapper; "who" 1 is IOPRIO_WHO_PROCESS, and
 * process 0 is the calling thread (each thread has its own priority). */
VHD_EXPORT int vhd_set_io_priority(int prio)
{
	if (syscall(SYS_ioprio_set, 1, 0, prio))
		return vhd_error(errno, "setting the I/O priority %d.%d: %s", prio >> 13, prio & 7,
		                 strerror(errno));
	return 0;
}

/* Runs [i, j] can be read with one preadv if each follows the previous in
 * the same file at the same distance as in the block, with small gaps. */
static bool joinable(const struct run *a, const struct run *b)
{
	uint64_t a_end = a->src + (uint64_t)a->len * SECTOR;
	return a->fd == b->fd && b->src >= a_end && b->src - a_end <= GAP_BYTES &&
	       b->src - a->src == (uint64_t)(b->start - a->start) * SECTOR;
}

static int read_span(struct reader *r, struct read_slot *s, unsigned i, unsigned j)
{
	struct iovec iov[MAX_IOV];
	int n = 0;
	size_t total = 0;
	for (unsigned k = i; k <= j; k++) {
		const struct run *run = &s->runs[k];
		if (k > i) {
			const struct run *prev = &s->runs[k - 1];
			size_t gap = run->src - (prev->src + (uint64_t)prev->len * SECTOR);
			if (gap) {
				iov[n++] = (struct iovec){ r->gap, gap };
				total += gap;
			}
		}
		iov[n++] = (struct iovec){ s->buf + (size_t)run->start * SECTOR,
		                           (size_t)run->len * SECTOR };
		total += (size_t)run->len * SECTOR;
	}
	uint64_t off = s->runs[i].src;
	int fd = s->runs[i].direct_fd >= 0 ? s->runs[i].direct_fd : s->runs[i].fd;
	while (total) {
		ssize_t got = preadv(fd, iov, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EINVAL && fd != s->runs[i].fd) {
			fd = s->runs[i].fd;   /* a direct read refused: read through the cache */
			continue;
		}
		if (got <= 0) {
			if (got == 0)
				errno = EIO;   /* the file ends inside the run */
			return -1;
		}
		off += (uint64_t)got;
		total -= (size_t)got;
		while (got > 0) {   /* drop what was read from the vector */
			if ((size_t)got >= iov[0].iov_len) {
				got -= (ssize_t)iov[0].iov_len;
				memmove(iov, iov + 1, (size_t)--n * sizeof *iov);
			} else {
				iov[0].iov_base = (uint8_t *)iov[0].iov_base + got;
				iov[0].iov_len -= (size_t)got;
				got = 0;
			}
		}
	}
	return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* The last run of the write that starts at run I: adjacent runs are
 * written as one. */
static unsigned extent_last(const struct read_slot *s, unsigned i)
{
	while (i + 1 < s->nruns && s->runs[i + 1].start == s->runs[i].start + s->runs[i].len)
		i++;
	return i;
}

/* Is the extent [FROM, TO) (bytes in the base) written with O_DIRECT?  Where
 * one of its edges cuts a page and the base allows it: through the page
 * cache that page would be read from the base and written back whole, the
 * parent's sectors around the run included (a sector-granular guest's
 * writes cost ~9% more bytes written that way); a direct write sends the
 * run's sectors alone.  The submitting thread allows it only in blocks
 * the base already has (a new block is a hole, where each direct write
 * would allocate and zero on its own) whose pages hold nothing but the
 * block's data, and a worker writes a page of its block one way only, so
 * no buffered write of the merge shares a page with a direct one. */
static bool extent_direct(const struct reader *r, const struct read_slot *s, uint64_t from,
                          uint64_t to)
{
	return s->dst_direct_fd >= 0 && (from % r->page_bytes || to % r->page_bytes);
}

static void extent_bytes(const struct read_slot *s, unsigned i, unsigned j, uint64_t *from,
                         uint64_t *to)
{
	*from = s->dst + (uint64_t)s->runs[i].start * SECTOR;
	*to = s->dst + (uint64_t)(s->runs[j].start + s->runs[j].len) * SECTOR;
}

/* Why the edges of the writes are read first: a write that covers only
 * part of a page the page cache lacks makes the kernel read that page
 * synchronously, holding the file's inode lock, so every worker's write
 * to the base waits behind that one disk read (512-byte-sector guests: a
 * profile showed 3,500 such writes spending 2 ms each, 9x the time of
 * page-aligned ones, and the merge taking 3x dd's time).  Asking for all
 * of a block's edge pages at once lets the disk fetch them in parallel,
 * while the source runs are read; reading them before the writes waits
 * without the lock.  Nothing is written that was not written before.
 * Extents written directly need no page. */
static void for_each_edge(struct reader *r, struct read_slot *s, bool load)
{
	uint64_t page = r->page_bytes, last = UINT64_MAX;
	for (unsigned i = 0; i < s->nruns; i = extent_last(s, i) + 1) {
		uint64_t edge[2];
		extent_bytes(s, i, extent_last(s, i), &edge[0], &edge[1]);
		if (extent_direct(r, s, edge[0], edge[1]))
			continue;
		for (unsigned k = 0; k < 2; k++) {
			uint64_t at = edge[k] - edge[k] % page;
			if (edge[k] % page == 0 || at == last)
				continue;
			last = at;
			if (!load)
				posix_fadvise(s->dst_fd, (off_t)at, (off_t)page, POSIX_FADV_WILLNEED);
			else if (pread(s->dst_fd, s->edge, page, (off_t)at) < 0)
				return;   /* only a hint: the write reports real errors */
		}
	}
}

/* Write [FROM, TO) of the base from BUF, directly or through the cache.  A
 * direct write the kernel refuses (EINVAL: alignment) goes through the
 * cache. */
static int write_extent(const struct reader *r, struct read_slot *s, const uint8_t *buf,
                        uint64_t from, uint64_t to)
{
	size_t len = (size_t)(to - from);
	if (!extent_direct(r, s, from, to))
		return write_all(s->dst_fd, buf, len, from);
	if (write_all(s->dst_direct_fd, buf, len, from) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	s->dst_direct_fd = -1;   /* the rest of the block too: no page both ways */
	return write_all(s->dst_fd, buf, len, from);
}

/* Write the runs, adjacent ones as one write, and start their writeback
 * so that the batch's fdatasync finds little left to do. */
static int write_slot(const struct reader *r, struct read_slot *s)
{
	for (unsigned i = 0; i < s->nruns;) {
		unsigned j = extent_last(s, i);
		uint64_t from, to;
		extent_bytes(s, i, j, &from, &to);
		if (write_extent(r, s, s->buf + (size_t)s->runs[i].start * SECTOR, from, to))
			return -1;
		i = j + 1;
	}
	if (s->nruns) {
		uint64_t from, to;
		extent_bytes(s, 0, s->nruns - 1, &from, &to);
		sync_file_range(s->dst_fd, (off_t)from, (off_t)(to - from), SYNC_FILE_RANGE_WRITE);
	}
	return 0;
}

static enum slot_state copy_slot(struct reader *r, struct slot *sl, uint64_t *reads,
                                 double *read_seconds)
{
	struct read_slot *s = &sl->s;
	for_each_edge(r, s, false);
	if (s->map_offset) {
		ssize_t got = pread(s->dst_fd, s->map, r->bitmap_bytes, (off_t)s->map_offset);
		if (got != (ssize_t)r->bitmap_bytes) {
			sl->err = got < 0 ? errno : EIO;
			snprintf(sl->msg, sizeof sl->msg, "reading the base bitmap of block %u: %s",
			         s->block, strerror(sl->err));
			return SLOT_FAILED;
		}
	}
	for (unsigned i = 0; i < s->nruns;) {
		unsigned j = i;
		while (j + 1 < s->nruns && j - i + 2 < MAX_IOV / 2 && joinable(&s->runs[j], &s->runs[j + 1]))
			j++;
		double t0 = monotonic();
		int failed = read_span(r, s, i, j);
		*read_seconds += monotonic() - t0;
		++*reads;
		if (failed) {
			sl->err = errno;
			snprintf(sl->msg, sizeof sl->msg, "%s: reading %u sectors at byte %llu: %s",
			         s->runs[i].from->path, s->runs[i].len,
			         (unsigned long long)s->runs[i].src, strerror(sl->err));
			return SLOT_FAILED;
		}
		i = j + 1;
	}
	for_each_edge(r, s, true);
	if (write_slot(r, s)) {
		sl->err = errno;
		snprintf(sl->msg, sizeof sl->msg, "writing block %u into the base: %s", s->block,
		         strerror(sl->err));
		return SLOT_FAILED;
	}
	return SLOT_DONE;
}

static struct slot *next_queued(struct reader *r)
{
	for (unsigned k = 0; k < r->count; k++) {
		struct slot *sl = &r->slots[(r->head + k) % r->count];
		if (sl->state == SLOT_QUEUED)
			return sl;
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct reader *r = arg;
	int prio_err = r->io_priority && syscall(SYS_ioprio_set, 1, 0, r->io_priority) ? errno : 0;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct slot *sl;
		while (!r->stopping && !(sl = next_queued(r)))
			pthread_cond_wait(&r->work, &r->lock);
		if (r->stopping)
			break;
		sl->state = SLOT_BUSY;
		pthread_mutex_unlock(&r->lock);
		uint64_t reads = 0;
		double secs = 0;
		enum slot_state done = SLOT_FAILED;
		if (prio_err) {   /* the thread would copy at a priority not asked for */
			sl->err = prio_err;
			snprintf(sl->msg, sizeof sl->msg, "setting the I/O priority of a copy thread: %s",
			         strerror(prio_err));
		} else {
			done = copy_slot(r, sl, &reads, &secs);
		}
		pthread_mutex_lock(&r->lock);
		r->reads += reads;
		r->read_seconds += secs;
		sl->state = done;
		pthread_cond_signal(&r->changed);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct reader *reader_start(unsigned slots, unsigned workers, uint32_t block_sectors,
                            uint32_t bitmap_bytes, int io_priority)
{
	struct reader *r = xcalloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->io_priority = io_priority;
	r->gap = xaligned_alloc(4096, GAP_BYTES);
	r->count = slots;
	r->bitmap_bytes = bitmap_bytes;
	long page = sysconf(_SC_PAGESIZE);
	r->page_bytes = page > 0 ? (uint64_t)page : 4096;
	r->workers = workers < MAX_WORKERS ? workers : MAX_WORKERS;
	r->slots = xcalloc(slots, sizeof *r->slots);
	bool ok = r->gap && r->slots;
	for (unsigned i = 0; ok && i < slots; i++) {
		r->slots[i].s.buf = xaligned_alloc(4096, (size_t)block_sectors * SECTOR);
		r->slots[i].s.runs = xcalloc(block_sectors / 2 + 1, sizeof(struct run));
		r->slots[i].s.map = xmalloc(bitmap_bytes ? bitmap_bytes : 1);
		r->slots[i].s.edge = xmalloc(r->page_bytes);
		ok = r->slots[i].s.buf && r->slots[i].s.runs && r->slots[i].s.map && r->slots[i].s.edge;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->changed, NULL);
	pthread_cond_init(&r->work, NULL);
	for (; ok && r->started < r->workers; r->started++) {
		int e = pthread_create(&r->threads[r->started], NULL, worker_main, r);
		if (e) {
			vhd_error(e, "cannot start a merge worker thread: %s", strerror(e));
			ok = false;
			break;
		}
	}
	if (!ok) {
		reader_stop(r);
		return NULL;
	}
	return r;
}

int reader_submit(struct reader *r, uint32_t block, const struct run *runs, unsigned n,
                  int dst_fd, int dst_direct_fd, uint64_t dst, uint64_t map_offset)
{
	pthread_mutex_lock(&r->lock);
	while (r->slots[r->tail].state != SLOT_FREE)
		pthread_cond_wait(&r->changed, &r->lock);
	struct slot *sl = &r->slots[r->tail];
	sl->s.block = block;
	sl->s.nruns = n;
	memcpy(sl->s.runs, runs, n * sizeof *runs);
	sl->s.dst_fd = dst_fd;
	sl->s.dst_direct_fd = dst_direct_fd;
	sl->s.dst = dst;
	sl->s.map_offset = map_offset;
	sl->state = SLOT_QUEUED;
	r->tail = (r->tail + 1) % r->count;
	r->pending++;
	pthread_cond_signal(&r->work);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

struct read_slot *reader_next(struct reader *r)
{
	pthread_mutex_lock(&r->lock);
	struct slot *sl = &r->slots[r->head];
	while (sl->state == SLOT_QUEUED || sl->state == SLOT_BUSY)
		pthread_cond_wait(&r->changed, &r->lock);
	pthread_mutex_unlock(&r->lock);
	if (sl->state == SLOT_FREE) {
		vhd_error(EINVAL, "merge reader: nothing submitted");
		return NULL;
	}
	if (sl->state == SLOT_FAILED) {
		vhd_error(sl->err, "%s", sl->msg);
		return NULL;
	}
	return &sl->s;
}

void reader_release(struct reader *r)
{
	pthread_mutex_lock(&r->lock);
	r->slots[r->head].state = SLOT_FREE;
	r->head = (r->head + 1) % r->count;
	r->pending--;
	pthread_cond_signal(&r->changed);
	pthread_mutex_unlock(&r->lock);
}

unsigned reader_pending(const struct reader *r)
{
	return r->pending;
}

void reader_read_stats(struct reader *r, uint64_t *reads, double *seconds)
{
	pthread_mutex_lock(&r->lock);
	*reads = r->reads;
	*seconds = r->read_seconds;
	pthread_mutex_unlock(&r->lock);
}

unsigned reader_capacity(const struct reader *r)
{
	return r->count;
}

void reader_stop(struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < r->started; i++)
		pthread_join(r->threads[i], NULL);
	for (unsigned i = 0; r->slots && i < r->count; i++) {
		free(r->slots[i].s.buf);
		free(r->slots[i].s.runs);
		free(r->slots[i].s.map);
		free(r->slots[i].s.edge);
	}
	free(r->slots);
	free(r->gap);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->changed);
	pthread_cond_destroy(&r->work);
	free(r);
}
