/* rules.c - the VHD format's rules, each written once.
 *
 * First the quantities derived from the metadata that every reader needs
 * alike (where the BAT ends, a locator's bytes, where an image's metadata
 * and data end); open, check, repair, resize and vhd-util all use these,
 * so that they agree on where things are. */
#include <string.h>

#include "internal.h"

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* ---- derived quantities --------------------------------------------- */

uint64_t bat_bytes(uint32_t entries)
{
	return round_up((uint64_t)entries * 4, SECTOR);
}

uint64_t bat_end(const struct vhd_header *h)
{
	return h->table_offset + bat_bytes(h->max_bat_entries);
}

uint32_t batmap_sectors_for(uint32_t entries)
{
	return (uint32_t)div_round_up(div_round_up(entries, 8), SECTOR);
}

uint64_t batmap_checksum_bytes(const struct vhd *v)
{
	uint64_t blocks = div_round_up(v->footer.curr_size, v->header.block_size);
	uint64_t bytes = round_up(div_round_up(blocks, 8), SECTOR);
	uint64_t have = (uint64_t)v->batmap_hdr.map_sectors * SECTOR;
	return bytes < have ? bytes : have;
}

/* blktap's rule: data_space should count sectors but is often found in
 * bytes (blktap itself writes 512); a byte count that is not whole sectors
 * makes the locator unusable (0). */
uint64_t locator_bytes(const struct vhd_locator *l)
{
	if (l->data_space < SECTOR)
		return (uint64_t)l->data_space * SECTOR;
	return l->data_space % SECTOR ? 0 : l->data_space;
}

void vhd_set_block_layout(struct vhd *v)
{
	v->bat_entries = v->header.max_bat_entries;
	v->block_sectors = v->header.block_size / SECTOR;
	v->bitmap_bytes = (uint32_t)round_up(div_round_up(v->block_sectors, 8), SECTOR);
}

uint64_t block_span(const struct vhd *v)
{
	return (uint64_t)v->bitmap_bytes + v->header.block_size;
}

/* Header, BAT, the batmap's header sector (and its map when valid), then
 * the parent locators.  A locator counts when its area starts before
 * LIMIT, or before the end found so far: a truncated file's missing tail
 * is given back by a repair, and the footer must not land inside an area
 * that starts in it (else a second repair would move it again). */
static uint64_t metadata_end_within(const struct vhd *v, uint64_t limit)
{
	const struct vhd_header *h = &v->header;
	uint64_t end = max_u64(v->footer.data_offset + HEADER_SIZE, bat_end(h));
	bool counted[LOC_COUNT] = { false };
	if (v->batmap_hdr_offset)
		end = max_u64(end, v->batmap_hdr_offset + SECTOR);
	if (v->has_batmap)
		end = max_u64(end, v->batmap_hdr.map_offset +
		                   (uint64_t)v->batmap_hdr.map_sectors * SECTOR);
	if (v->footer.type != VHD_TYPE_DIFF)
		return end;
	for (bool grew = true; grew;) {
		grew = false;
		for (int i = 0; i < LOC_COUNT; i++) {
			const struct vhd_locator *l = &h->loc[i];
			if (counted[i] || !l->code || l->data_offset >= max_u64(limit, end))
				continue;
			counted[i] = grew = true;
			end = max_u64(end, l->data_offset + locator_bytes(l));
		}
	}
	return end;
}

uint64_t vhd_metadata_end(const struct vhd *v)
{
	return metadata_end_within(v, v->footer_offset);
}

/* The footer goes right after the last byte of metadata or data.  Blocks
 * inside the metadata, or whose bitmap does not start and end before
 * LIMIT (their data is lost: a repair clears them), do not count. */
uint64_t vhd_data_end(const struct vhd *v, uint64_t limit)
{
	uint64_t meta = metadata_end_within(v, limit), end = meta;
	for (uint32_t b = 0; v->bat && b < v->bat_entries; b++) {
		uint64_t start = (uint64_t)v->bat[b] * SECTOR;
		if (v->bat[b] == BAT_UNUSED || start < meta || start + v->bitmap_bytes > limit)
			continue;
		end = max_u64(end, start + block_span(v));
	}
	return round_up(end, SECTOR);
}
