/* readv.c - a chain read in few system calls.
 *
 * Through a deep chain a request falls into many runs (each layer's writes
 * cut the layers below into pieces), and a read per run costs more in
 * system calls than in copying.  Here a request's runs are planned first:
 * sorted by file and offset, the runs of one file that follow each other
 * there (the pieces of a base block around a snapshot's writes, the next
 * block's data after its bitmap) become one preadv, the gaps between them
 * read into a sink never looked at.  Warm, each span is read with
 * RWF_NOWAIT, from the page cache only; the first span that cannot be
 * (cold) asks the kernel to read ahead all the spans left
 * (posix_fadvise WILLNEED, so the layers' reads overlap), then reads them
 * waiting.  Warm reads so make no fadvise calls at all. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"

#define PLAN_RUNS 256               /* runs planned at once */
#define SPAN_IOV 64                 /* iovecs per preadv (runs and gaps) */
#define GAP_BYTES (8u * 1024)       /* read across gaps up to this size:
                                       copying more costs more than a call */

struct piece {
	struct vhd *from;
	uint64_t off;                /* in FROM's file */
	uint8_t *dst;
	size_t len;
	uint64_t sector;             /* for raw parents, read on their own */
};

/* Where gap bytes go: shared by all threads, never read. */
static uint8_t gap_sink[GAP_BYTES];

static int by_file_then_offset(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;
	uintptr_t fx = (uintptr_t)x->from, fy = (uintptr_t)y->from;
	if (fx != fy)
		return fx < fy ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Can piece B be read in the same preadv as A, which ends the span so far? */
static bool joins(const struct piece *a, const struct piece *b)
{
	uint64_t end = a->off + a->len;
	return a->from == b->from && !a->from->is_raw && b->off >= end &&
	       b->off - end <= GAP_BYTES;
}

/* The pieces [I, *J) of sorted P that make one span, and its iovecs. */
static int span_iov(const struct piece *p, unsigned n, unsigned i, unsigned *j,
                    struct iovec *iov, size_t *total)
{
	int k = 0;
	*total = 0;
	unsigned e = i;
	do {
		if (e > i && p[e].off > p[e - 1].off + p[e - 1].len) {
			size_t gap = (size_t)(p[e].off - (p[e - 1].off + p[e - 1].len));
			iov[k++] = (struct iovec){ gap_sink, gap };
			*total += gap;
		}
		iov[k++] = (struct iovec){ p[e].dst, p[e].len };
		*total += p[e].len;
		e++;
	} while (e < n && k + 2 <= SPAN_IOV && joins(&p[e - 1], &p[e]));
	*j = e;
	return k;
}

/* Drop GOT bytes from the front of IOV[*N]. */
static struct iovec *iov_advance(struct iovec *iov, int *n, size_t got)
{
	while (got && got >= iov->iov_len) {
		got -= iov->iov_len;
		iov++;
		(*n)--;
	}
	if (got) {
		iov->iov_base = (uint8_t *)iov->iov_base + got;
		iov->iov_len -= got;
	}
	return iov;
}

/* Read the rest of a span, waiting.  0 or -1 with the error set. */
static int read_span_wait(struct vhd *f, struct iovec *iov, int n, uint64_t off, size_t left)
{
	while (left) {
		ssize_t got = preadv(f->fd, iov, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return vhd_error(errno, "%s: read of %zu bytes at %llu: %s", f->path, left,
			                 (unsigned long long)off, strerror(errno));
		if (got == 0)
			return vhd_error(EIO, "%s: unexpected end of file at offset %llu", f->path,
			                 (unsigned long long)off);
		iov = iov_advance(iov, &n, (size_t)got);
		off += (uint64_t)got;
		left -= (size_t)got;
	}
	return 0;
}

/* Ask the kernel to start reading the spans of sorted P from I on. */
static void advise_spans(const struct piece *p, unsigned n, unsigned i)
{
	while (i < n) {
		unsigned j = i + 1;
		while (j < n && joins(&p[j - 1], &p[j]))
			j++;
		if (!p[i].from->is_raw)
			posix_fadvise(p[i].from->fd, (off_t)p[i].off,
			              (off_t)(p[j - 1].off + p[j - 1].len - p[i].off),
			              POSIX_FADV_WILLNEED);
		i = j;
	}
}

/* Read the N planned pieces of P (sorted here); SPANS counts preadv spans
 * if not NULL. */
static int read_pieces(struct piece *p, unsigned n, unsigned *spans)
{
	bool cold = false;    /* a span had to wait: the rest were advised */
	qsort(p, n, sizeof *p, by_file_then_offset);
	for (unsigned i = 0, j; i < n; i = j) {
		if (p[i].from->is_raw) {
			j = i + 1;
			if (raw_read_sectors(p[i].from, p[i].dst, p[i].sector, p[i].len / SECTOR))
				return -1;
			continue;
		}
		struct iovec vec[SPAN_IOV], *iov = vec;
		size_t total;
		int k = span_iov(p, n, i, &j, vec, &total);
		uint64_t off = p[i].off;
		if (spans)
			(*spans)++;
		if (!cold) {
			ssize_t got = preadv2(p[i].from->fd, iov, k, (off_t)off, RWF_NOWAIT);
			if (got == (ssize_t)total)
				continue;
			cold = true;    /* not all in the page cache (or no RWF_NOWAIT) */
			if (j < n)
				advise_spans(p, n, i);
			if (got > 0) {
				iov = iov_advance(iov, &k, (size_t)got);
				off += (uint64_t)got;
				total -= (size_t)got;
			}
		}
		if (read_span_wait(p[i].from, iov, k, off, total))
			return -1;
	}
	return 0;
}

int vhd_read_planned(struct vhd *v, uint8_t *buf, uint64_t sector, uint64_t left,
                     unsigned *spans)
{
	struct piece p[PLAN_RUNS];
	while (left) {
		unsigned n = 0;
		while (left && n < PLAN_RUNS) {
			uint64_t run;
			struct vhd *from = NULL;
			int l;
			if (vhd_find_source(v, sector, left, &run, &from, &l, UINT_MAX))
				return -1;
			if (l == NO_LAYER)
				memset(buf, 0, run * SECTOR);
			else
				p[n++] = (struct piece){ from, vhd_sector_offset(from, sector), buf,
				                         run * SECTOR, sector };
			buf += run * SECTOR;
			sector += run;
			left -= run;
		}
		if (read_pieces(p, n, spans))
			return -1;
	}
	return 0;
}
