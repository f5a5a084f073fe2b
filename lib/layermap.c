/* layermap.c - which layer of a chain holds each sector of a leaf block.
 *
 * Reading through a deep chain, every run of a request used to walk the
 * bitmaps of all the layers down to the one holding it: through 30 levels,
 * most of the time went there.  The leaf keeps, for the blocks read last,
 * the layer of each of their sectors, built once per block by that walk
 * (vhd_walk_source), so a run is then found in the map alone.
 *
 * Exact on writes: only the leaf is written through a handle, and every
 * change to its bitmap (io.c: mark_present, unmark_piece) drops the block's
 * map after the bitmap lock is released.  A map is built under its slot
 * lock, which a writer takes to drop it, so a map built from a bitmap
 * before a write is dropped by that write before the write returns; a read
 * concurrent with the write may see the layer before or after it, as
 * without the maps.  Lock order: a map slot, then bitmap slots (never the
 * other way).  Memory: LAYER_MAP_CACHE maps of block_sectors bytes per
 * handle that reads through a parent (64 x 4 KiB with 2 MiB blocks),
 * allocated on first use. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint64_t leaf_sectors(const struct vhd *v)
{
	return v->footer.curr_size / SECTOR;
}

void vhd_layer_maps_init(struct vhd *v)
{
	for (int i = 0; i < LAYER_MAP_CACHE; i++) {
		v->lmap[i].block = BAT_UNUSED;
		pthread_mutex_init(&v->lmap[i].lock, NULL);
	}
}

void vhd_layer_maps_free(struct vhd *v)
{
	for (int i = 0; i < LAYER_MAP_CACHE; i++) {
		free(v->lmap[i].layer);
		pthread_mutex_destroy(&v->lmap[i].lock);
	}
}

void vhd_layer_map_forget(struct vhd *v, uint32_t block)
{
	struct layer_map_slot *s = &v->lmap[block % LAYER_MAP_CACHE];
	pthread_mutex_lock(&s->lock);
	if (s->block == block)
		s->block = BAT_UNUSED;
	pthread_mutex_unlock(&s->lock);
}

void vhd_layer_map_forget_all(struct vhd *v)
{
	for (uint32_t i = 0; i < LAYER_MAP_CACHE; i++) {
		pthread_mutex_lock(&v->lmap[i].lock);
		v->lmap[i].block = BAT_UNUSED;
		pthread_mutex_unlock(&v->lmap[i].lock);
	}
}

/* Layers below V (V is 0), or UINT_MAX past what a map entry can name. */
static unsigned chain_layers(const struct vhd *v)
{
	unsigned n = 0;
	for (; v; v = v->parent)
		if (++n >= LAYER_MAP_NONE)
			return UINT_MAX;
	return n;
}

static struct vhd *layer_handle(struct vhd *v, unsigned layer)
{
	while (layer--)
		v = v->parent;
	return v;
}

/* Fill slot S with the layers of BLOCK's first N sectors. */
static int build_map(struct vhd *v, struct layer_map_slot *s, uint32_t block, uint64_t n)
{
	s->block = BAT_UNUSED;
	if (!s->layer && !(s->layer = xmalloc(v->block_sectors)))
		return -1;
	uint64_t first = (uint64_t)block * v->block_sectors;
	for (uint64_t i = 0; i < n;) {
		uint64_t run;
		struct vhd *from;
		int l;
		if (vhd_walk_source(v, first + i, n - i, &run, &from, &l, UINT_MAX))
			return -1;
		memset(s->layer + i, l == NO_LAYER ? LAYER_MAP_NONE : l, run);
		i += run;
	}
	s->block = block;
	return 0;
}

int vhd_mapped_source(struct vhd *v, uint64_t sector, uint64_t max, uint64_t *run,
                      struct vhd **from, int *layer)
{
	uint64_t vs = leaf_sectors(v);
	if (!v->parent || v->is_raw || v->footer.type == VHD_TYPE_FIXED || sector >= vs ||
	    chain_layers(v) == UINT_MAX)
		return 1;
	uint32_t block = (uint32_t)(sector / v->block_sectors);
	uint64_t in = sector % v->block_sectors;
	uint64_t in_block = vs - (uint64_t)block * v->block_sectors;   /* a short last block */
	if (in_block > v->block_sectors)
		in_block = v->block_sectors;
	uint64_t end = in + (max < in_block - in ? max : in_block - in);
	struct layer_map_slot *s = &v->lmap[block % LAYER_MAP_CACHE];
	pthread_mutex_lock(&s->lock);
	if (s->block != block && build_map(v, s, block, in_block)) {
		/* a layer's bitmap cannot be read: let the walk report it
		 * for the sectors asked, as it would without the maps */
		pthread_mutex_unlock(&s->lock);
		return 1;
	}
	uint8_t l = s->layer[in];
	uint64_t i = in + 1;
	while (i < end && s->layer[i] == l)
		i++;
	pthread_mutex_unlock(&s->lock);
	*run = i - in;
	if (l == LAYER_MAP_NONE) {
		*layer = NO_LAYER;
	} else {
		*layer = l;
		*from = layer_handle(v, l);
	}
	return 0;
}
