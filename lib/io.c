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

int vhd_find_source(struct vhd *v, uint64_t sector, uint64_t max, uint64_t *run,
                    struct vhd **from, int *layer, unsigned layers)
{
	uint64_t vs = virtual_sectors(v);
	*layer = NO_LAYER;
	if (sector >= vs) {          /* beyond a smaller parent: zeros */
		*run = max;
		return 0;
	}
	if (max > vs - sector)
		max = vs - sector;
	if (v->footer.type == VHD_TYPE_FIXED) {
		*run = max;
		*from = v;
		*layer = 0;
		return 0;
	}
	uint32_t block = (uint32_t)(sector / v->block_sectors);
	uint64_t in = sector % v->block_sectors;
	uint64_t end = in + (max < v->block_sectors - in ? max : v->block_sectors - in);
	bool here;
	if (v->bat[block] == BAT_UNUSED) {
		here = false;
		*run = end - in;
	} else if (v->has_batmap && bit_test(v->batmap, block)) {
		here = true;
		*run = end - in;
	} else {
		uint8_t *map = vhd_block_bitmap(v, block);
		if (!map)
			return -1;
		here = bit_test(map, in);
		*run = bit_find(map, in, end, !here) - in;
	}
	if (here) {
		*from = v;
		*layer = 0;
		return 0;
	}
	if (layers <= 1)
		return 0;
	if (!v->parent) {
		if (v->footer.type == VHD_TYPE_DIFF)
			return vhd_error(ENOENT, "%s: parent not open: cannot read sector %llu", v->path,
			                 (unsigned long long)sector);
		return 0;
	}
	uint64_t prun;
	int below;
	if (vhd_find_source(v->parent, sector, *run, &prun, from, &below, layers - 1))
		return -1;
	*run = prun;
	*layer = below == NO_LAYER ? NO_LAYER : below + 1;
	return 0;
}

/* File offset of virtual SECTOR in V's own data (V must hold it). */
static uint64_t sector_offset(const struct vhd *v, uint64_t sector)
{
	if (v->footer.type == VHD_TYPE_FIXED)
		return sector * SECTOR;
	uint32_t block = (uint32_t)(sector / v->block_sectors);
	return block_data_offset(v, block) + (sector % v->block_sectors) * SECTOR;
}

int vhd_read_sectors(struct vhd *v, void *buf, uint64_t sector, uint64_t n)
{
	if (v->is_raw)
		return raw_read_sectors(v, buf, sector, n);
	return read_at(v->fd, v->path, buf, n * SECTOR, sector_offset(v, sector));
}

/* A request made of several runs (layers of a chain, blocks placed out of
 * order) would otherwise wait for each run's read in turn: ask the kernel
 * to start reading them all first, so that cold reads overlap.  Advisory:
 * errors are left to the reads. */
static void prefetch_runs(struct vhd *v, uint64_t sector, uint64_t left)
{
	uint64_t run;
	struct vhd *from = NULL;
	int l;
	if (vhd_find_source(v, sector, left, &run, &from, &l, UINT_MAX) || run >= left)
		return;
	for (;;) {
		if (l != NO_LAYER)
			posix_fadvise(from->fd, (off_t)sector_offset(from, sector), (off_t)(run * SECTOR),
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
	uint8_t *p = buf;
	uint64_t sector = offset / SECTOR, left = count / SECTOR;
	prefetch_runs(v, sector, left);
	while (left) {
		uint64_t run;
		struct vhd *from = NULL;
		int l;
		if (vhd_find_source(v, sector, left, &run, &from, &l, UINT_MAX))
			return -1;
		if (l == NO_LAYER)
			memset(p, 0, run * SECTOR);
		else if (vhd_read_sectors(from, p, sector, run))
			return -1;
		p += run * SECTOR;
		sector += run;
		left -= run;
	}
	return 0;
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

static int write_block_part(struct vhd *v, const uint8_t *buf, uint32_t block, uint64_t in,
                            uint64_t n)
{
	if (v->bat[block] == BAT_UNUSED && vhd_allocate_block(v, block))
		return -1;
	if (write_at(v->fd, v->path, buf, n * SECTOR, block_data_offset(v, block) + in * SECTOR))
		return -1;
	if (v->has_batmap && bit_test(v->batmap, block))
		return 0;
	uint8_t *map = vhd_block_bitmap(v, block);
	if (!map)
		return -1;
	if (bit_find(map, in, in + n, false) == in + n)
		return 0;   /* every sector already marked present */
	for (uint64_t i = in; i < in + n; i++)
		bit_set(map, i);
	/* data first, then the bitmap that makes it visible */
	return vhd_store_bitmap(v, block);
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
	uint64_t sector = offset / SECTOR, left = count / SECTOR;
	while (left) {
		uint32_t block = (uint32_t)(sector / v->block_sectors);
		uint64_t in = sector % v->block_sectors;
		uint64_t n = v->block_sectors - in < left ? v->block_sectors - in : left;
		if (write_block_part(v, p, block, in, n))
			return -1;
		p += n * SECTOR;
		sector += n;
		left -= n;
	}
	return 0;
}

VHD_EXPORT int vhd_flush(vhd_t *v)
{
	if (v->writable && fsync(v->fd) < 0)
		return vhd_error(errno, "%s: fsync: %s", v->path, strerror(errno));
	return 0;
}
