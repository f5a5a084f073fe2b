/* io.c - reading and writing the virtual disk through a chain. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static uint64_t virtual_sectors(const struct vhd *v)
{
	return v->footer.curr_size / SECTOR;
}

static int check_range(const struct vhd *v, uint64_t count, uint64_t offset)
{
	if (offset % SECTOR || count % SECTOR)
		return vhd_error(EINVAL, "%s: I/O of %llu bytes at %llu is not sector aligned",
		                 v->path, (unsigned long long)count, (unsigned long long)offset);
	if (offset > v->footer.curr_size || count > v->footer.curr_size - offset)
		return vhd_error(EINVAL, "%s: I/O of %llu bytes at %llu is beyond the disk's %llu bytes",
		                 v->path, (unsigned long long)count, (unsigned long long)offset,
		                 (unsigned long long)v->footer.curr_size);
	return 0;
}

int vhd_read_sectors(struct vhd *v, void *buf, uint64_t sector, uint64_t n)
{
	if (v->is_raw)
		return raw_read_sectors(v, buf, sector, n);
	return read_at(v->fd, v->path, buf, n * SECTOR, vhd_sector_offset(v, sector));
}

/* NBD CACHE: ask the kernel to start reading every run of the range.
 * Advisory: errors are left to the reads. */
static void prefetch_runs(struct vhd *v, uint64_t sector, uint64_t left)
{
	uint64_t run;
	struct vhd *from = NULL;
	int l;
	if (vhd_find_source(v, sector, left, &run, &from, &l, UINT_MAX))
		return;
	for (;;) {
		if (l != NO_LAYER)
			posix_fadvise(from->fd, (off_t)vhd_sector_offset(from, sector), (off_t)(run * SECTOR),
			              POSIX_FADV_WILLNEED);
		sector += run;
		left -= run;
		if (!left || vhd_find_source(v, sector, left, &run, &from, &l, UINT_MAX))
			return;
	}
}

VHD_EXPORT int vhd_pread(vhd_t *v, void *buf, uint64_t count, uint64_t offset)
{
	if (check_range(v, count, offset))
		return -1;
	return vhd_read_planned(v, buf, offset / SECTOR, count / SECTOR, NULL);
}

VHD_EXPORT int vhd_is_zero(vhd_t *v, uint64_t count, uint64_t offset)
{
	if (check_range(v, count, offset))
		return -1;
	uint8_t buf[64 * 1024];
	uint64_t sector = offset / SECTOR, left = count / SECTOR;
	while (left) {
		uint64_t run;
		struct vhd *from = NULL;
		int l;
		if (vhd_find_source(v, sector, left, &run, &from, &l, UINT_MAX))
			return -1;
		if (run > sizeof buf / SECTOR)
			run = sizeof buf / SECTOR;
		if (l != NO_LAYER) {
			if (vhd_read_sectors(from, buf, sector, run))
				return -1;
			if (!is_zero(buf, run * SECTOR))
				return 0;
		}
		sector += run;
		left -= run;
	}
	return 1;
}

VHD_EXPORT int vhd_map(vhd_t *v, int chain, vhd_map_fn fn, void *opaque)
{
	uint64_t vs = virtual_sectors(v);
	uint64_t start = 0, len = 0;
	int cur = NO_LAYER;
	int rc = 0;
	for (uint64_t s = 0; s < vs;) {
		uint64_t run;
		struct vhd *from;
		int l;
		if (vhd_find_source(v, s, vs - s, &run, &from, &l, chain ? UINT_MAX : 1)) {
			rc = -1;
			break;
		}
		if (l == cur && len) {
			len += run;
		} else {
			if (cur >= 0 && len && (rc = fn(start * SECTOR, len * SECTOR, (unsigned)cur, opaque)))
				break;
			cur = l;
			start = s;
			len = run;
		}
		s += run;
	}
	if (!rc && cur >= 0 && len)
		rc = fn(start * SECTOR, len * SECTOR, (unsigned)cur, opaque);
	return rc;
}

/* Make sure BLOCK has a place in the file.  I/O threads may race to write
 * into the same new block: the allocation is made under the block's bitmap
 * slot lock and the metadata lock, and only by the first of them. */
static int ensure_allocated(struct vhd *v, uint32_t block)
{
	if (bat_get(v, block) != BAT_UNUSED)
		return 0;
	pthread_mutex_t *slot = &v->cache[block % BITMAP_CACHE].lock;
	pthread_mutex_lock(slot);
	pthread_mutex_lock(&v->meta_lock);
	int rc = bat_get(v, block) == BAT_UNUSED ? vhd_allocate_block(v, block) : 0;
	pthread_mutex_unlock(&v->meta_lock);
	pthread_mutex_unlock(slot);
	return rc;
}

/* Store BLOCK's changed cached bitmap; if that fails, the cache slot is
 * emptied so that the next use reads what the disk holds.  Called with the
 * slot lock held. */
static int store_bitmap_or_forget(struct vhd *v, uint32_t block)
{
	if (!vhd_store_bitmap(v, block))
		return 0;
	v->cache[block % BITMAP_CACHE].block = BAT_UNUSED;
	return -1;
}

/* Set the bits of sectors [IN, IN+N) of allocated BLOCK, after their data
 * is written: data first, then the bitmap that makes it visible. */
static int mark_present(struct vhd *v, uint32_t block, uint64_t in, uint64_t n)
{
	if (batmap_full(v, block))
		return 0;
	uint8_t *map = vhd_bitmap_lock(v, block);
	if (!map)
		return -1;
	int rc = 0;
	if (bit_find(map, in, in + n, false) != in + n) {
		for (uint64_t i = in; i < in + n; i++)
			bit_set(map, i);
		rc = store_bitmap_or_forget(v, block);
	}
	vhd_bitmap_unlock(v, block);
	return rc;
}

static int write_block_part(struct vhd *v, const uint8_t *buf, uint32_t block, uint64_t in,
                            uint64_t n)
{
	if (ensure_allocated(v, block))
		return -1;
	if (write_at(v->fd, v->path, buf, n * SECTOR, block_data_offset(v, block) + in * SECTOR))
		return -1;
	return mark_present(v, block, in, n);
}

/* Calls FN for each piece of [SECTOR, SECTOR+LEFT) that lies in one block:
 * the block, the first sector in it and the number of sectors. */
typedef int (*piece_fn)(struct vhd *v, uint32_t block, uint64_t in, uint64_t n, void *arg);
static int for_each_piece(struct vhd *v, uint64_t sector, uint64_t left, piece_fn fn, void *arg)
{
	while (left) {
		uint32_t block = (uint32_t)(sector / v->block_sectors);
		uint64_t in = sector % v->block_sectors;
		uint64_t n = v->block_sectors - in < left ? v->block_sectors - in : left;
		int rc = fn(v, block, in, n, arg);
		if (rc)
			return rc;
		sector += n;
		left -= n;
	}
	return 0;
}

static int write_piece(struct vhd *v, uint32_t block, uint64_t in, uint64_t n, void *arg)
{
	const uint8_t **p = arg;
	if (write_block_part(v, *p, block, in, n))
		return -1;
	*p += n * SECTOR;
	return 0;
}

VHD_EXPORT int vhd_pwrite(vhd_t *v, const void *buf, uint64_t count, uint64_t offset)
{
	if (!v->writable)
		return vhd_error(EBADF, "%s: not opened for writing", v->path);
	if (check_range(v, count, offset))
		return -1;
	if (v->footer.type == VHD_TYPE_FIXED)
		return write_at(v->fd, v->path, buf, count, offset);
	const uint8_t *p = buf;
	return for_each_piece(v, offset / SECTOR, count / SECTOR, write_piece, &p);
}

VHD_EXPORT int vhd_flush(vhd_t *v)
{
	if (v->writable && fsync(v->fd) < 0)
		return vhd_error(errno, "%s: fsync: %s", v->path, strerror(errno));
	return 0;
}

/* ---- zeroing and trimming -------------------------------------------- */

/* Never written: a source of zeros for writes. */
static uint8_t zero_buf[256 * 1024];

static int write_zeros_at(struct vhd *v, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < sizeof zero_buf ? (size_t)len : sizeof zero_buf;
		if (write_at(v->fd, v->path, zero_buf, n, off))
			return -1;
		off += n;
		len -= n;
	}
	return 0;
}

/* Zero LEN bytes of V's file at OFF by punching a hole (the file system
 * frees the space and reads zeros), or, where it cannot, by writing zeros. */
static int punch_or_write_zeros(struct vhd *v, uint64_t off, uint64_t len)
{
	if (fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL && errno != ENODEV)
		return vhd_error(errno, "%s: punching %llu bytes at %llu: %s", v->path,
		                 (unsigned long long)len, (unsigned long long)off, strerror(errno));
	return write_zeros_at(v, off, len);
}

/* A durable handle never changes the batmap: a block it shows full keeps
 * every bit set, and is zeroed by writing zeros. */
static bool batmap_frozen(const struct vhd *v, uint32_t block)
{
	return (v->flags & VHD_OPEN_DURABLE) && batmap_full(v, block);
}

/* Make sectors [IN, IN+N) of BLOCK absent from V (reads then come from the
 * parent, or are zeros): their data is zeroed first, as every sector whose
 * bit is clear must hold zeros, then their bits are cleared.  Both under
 * the slot lock, so that a concurrent write's bit is never cleared over
 * its data.  Nothing to do in an unallocated block, nor, on a durable
 * handle, in one the batmap shows full. */
static int unmark_piece(struct vhd *v, uint32_t block, uint64_t in, uint64_t n, void *arg)
{
	(void)arg;
	if (bat_get(v, block) == BAT_UNUSED || batmap_frozen(v, block))
		return 0;
	uint8_t *map = vhd_bitmap_lock(v, block);
	if (!map)
		return -1;
	int rc = 0;
	if (bit_find(map, in, in + n, true) != in + n) {
		rc = punch_or_write_zeros(v, block_data_offset(v, block) + in * SECTOR, n * SECTOR);
		if (!rc) {
			for (uint64_t i = in; i < in + n; i++)
				bit_clear(map, i);
			rc = store_bitmap_or_forget(v, block);
		}
	}
	vhd_bitmap_unlock(v, block);
	return rc;
}

/* Does any layer below V hold data in [SECTOR, SECTOR+N)?  1, 0 or -1. */
static int below_has_data(struct vhd *v, uint64_t sector, uint64_t n)
{
	if (v->footer.type != VHD_TYPE_DIFF)
		return 0;
	if (!v->parent)
		return 1;    /* not open: assume it has */
	while (n) {
		uint64_t run;
		struct vhd *from;
		int l;
		if (vhd_find_source(v->parent, sector, n, &run, &from, &l, UINT_MAX))
			return -1;
		if (l != NO_LAYER)
			return 1;
		sector += run;
		n -= run;
	}
	return 0;
}

/* How to zero one piece: by clearing its bits (the layers below hold
 * nothing there), or by writing zeros (they do, or NO_HOLE asks that the
 * range stay allocated).  Returns 1 (write), 0 (clear), -1. */
static int zero_needs_write(struct vhd *v, uint32_t block, uint64_t in, uint64_t n, int flags)
{
	if (flags & VHD_ZERO_NO_HOLE)
		return 1;
	return below_has_data(v, (uint64_t)block * v->block_sectors + in, n);
}

static int zero_piece(struct vhd *v, uint32_t block, uint64_t in, uint64_t n, void *arg)
{
	int flags = *(int *)arg;
	int w = batmap_frozen(v, block) ? 1 : zero_needs_write(v, block, in, n, flags);
	if (w < 0)
		return -1;
	if (!w)
		return unmark_piece(v, block, in, n, NULL);
	if (flags & VHD_ZERO_FAST)
		return vhd_error(ENOTSUP, "%s: block %u: zeroing it needs data written", v->path,
		                 block);
	if (ensure_allocated(v, block) ||
	    write_zeros_at(v, block_data_offset(v, block) + in * SECTOR, n * SECTOR))
		return -1;
	return mark_present(v, block, in, n);
}

/* A piece that FAST zeroing could not do without writing data: ENOTSUP. */
static int fast_zero_check(struct vhd *v, uint32_t block, uint64_t in, uint64_t n, void *arg)
{
	int w = batmap_frozen(v, block) ? 1 : zero_needs_write(v, block, in, n, *(int *)arg);
	if (w > 0)
		return vhd_error(ENOTSUP, "%s: block %u: zeroing it needs data written", v->path,
		                 block);
	return w;
}

static int zero_fixed(struct vhd *v, uint64_t count, uint64_t offset, int flags)
{
	int mode = flags & VHD_ZERO_NO_HOLE ? FALLOC_FL_ZERO_RANGE
	                                    : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (fallocate(v->fd, mode, (off_t)offset, (off_t)count) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL && errno != ENODEV)
		return vhd_error(errno, "%s: zeroing %llu bytes at %llu: %s", v->path,
		                 (unsigned long long)count, (unsigned long long)offset,
		                 strerror(errno));
	if (flags & VHD_ZERO_FAST)
		return vhd_error(ENOTSUP, "%s: the file system cannot zero a range quickly", v->path);
	return write_zeros_at(v, offset, count);
}

VHD_EXPORT int vhd_zero(vhd_t *v, uint64_t count, uint64_t offset, int flags)
{
	if (!v->writable)
		return vhd_error(EBADF, "%s: not opened for writing", v->path);
	if (check_range(v, count, offset))
		return -1;
	if (v->footer.type == VHD_TYPE_FIXED)
		return zero_fixed(v, count, offset, flags);
	uint64_t sector = offset / SECTOR, left = count / SECTOR;
	if ((flags & VHD_ZERO_FAST) && for_each_piece(v, sector, left, fast_zero_check, &flags))
		return -1;
	return for_each_piece(v, sector, left, zero_piece, &flags);
}

VHD_EXPORT int vhd_trim(vhd_t *v, uint64_t count, uint64_t offset)
{
	if (!v->writable)
		return vhd_error(EBADF, "%s: not opened for writing", v->path);
	if (check_range(v, count, offset))
		return -1;
	if (v->footer.type != VHD_TYPE_FIXED)
		return for_each_piece(v, offset / SECTOR, count / SECTOR, unmark_piece, NULL);
	if (fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
	              (off_t)count) == 0 ||
	    errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL || errno == ENODEV)
		return 0;   /* a hint: nothing freed where the file system cannot */
	return vhd_error(errno, "%s: punching %llu bytes at %llu: %s", v->path,
	                 (unsigned long long)count, (unsigned long long)offset, strerror(errno));
}

/* ---- block status and read-ahead ------------------------------------- */

VHD_EXPORT int vhd_block_status(vhd_t *v, uint64_t count, uint64_t offset, vhd_extent_fn fn,
                                void *opaque)
{
	if (check_range(v, count, offset))
		return -1;
	uint64_t sector = offset / SECTOR, left = count / SECTOR, start = sector, len = 0;
	int cur = NO_LAYER;
	while (left) {
		uint64_t run;
		struct vhd *from;
		int l;
		if (vhd_find_source(v, sector, left, &run, &from, &l, UINT_MAX))
			return -1;
		if (len && l != cur) {
			int rc = fn(start * SECTOR, len * SECTOR, cur, opaque);
			if (rc)
				return rc;
			len = 0;
		}
		if (!len) {
			start = sector;
			cur = l;
		}
		len += run;
		sector += run;
		left -= run;
	}
	return len ? fn(start * SECTOR, len * SECTOR, cur, opaque) : 0;
}

VHD_EXPORT int vhd_prefetch(vhd_t *v, uint64_t count, uint64_t offset)
{
	if (check_range(v, count, offset))
		return -1;
	prefetch_runs(v, offset / SECTOR, count / SECTOR);
	return 0;
}
