/* source.c - which file of a chain holds a sector: the walk down the
 * layers that every chain read (io.c, readv.c) and the merge (coalesce.c)
 * start from.  It reads only metadata (BAT, batmap, sector bitmaps). */
#include <errno.h>
#include <stdbool.h>

#include "internal.h"

int vhd_find_source(struct vhd *v, uint64_t sector, uint64_t max, uint64_t *run,
                    struct vhd **from, int *layer, unsigned layers)
{
	uint64_t vs = v->footer.curr_size / SECTOR;
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
	if (bat_get(v, block) == BAT_UNUSED) {
		here = false;
		*run = end - in;
	} else if (batmap_full(v, block)) {
		here = true;
		*run = end - in;
	} else {
		uint8_t *map = vhd_bitmap_lock(v, block);
		if (!map)
			return -1;
		here = bit_test(map, in);
		*run = bit_find(map, in, end, !here) - in;
		vhd_bitmap_unlock(v, block);
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
uint64_t vhd_sector_offset(const struct vhd *v, uint64_t sector)
{
	if (v->footer.type == VHD_TYPE_FIXED)
		return sector * SECTOR;
	uint32_t block = (uint32_t)(sector / v->block_sectors);
	return block_data_offset(v, block) + (sector % v->block_sectors) * SECTOR;
}
