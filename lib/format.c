/* format.c - encode and decode VHD footers, headers and batmaps.
 *
 * Every field is decoded explicitly from big-endian bytes; nothing here
 * trusts a value: validating them is the rule tables' job (rules.c). */
#include <string.h>

#include "internal.h"

static uint32_t byte_sum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += p[i];
	return sum;
}

/* ---- footer -------------------------------------------------------- */

void footer_decode(struct vhd_footer *f, const uint8_t *b)
{
	memcpy(f->cookie, b, 8);
	f->features = get_be32(b + 8);
	f->version = get_be32(b + 12);
	f->data_offset = get_be64(b + 16);
	f->timestamp = get_be32(b + 24);
	memcpy(f->creator_app, b + 28, 4);
	f->creator_version = get_be32(b + 32);
	f->creator_os = get_be32(b + 36);
	f->orig_size = get_be64(b + 40);
	f->curr_size = get_be64(b + 48);
	f->geometry = get_be32(b + 56);
	f->type = get_be32(b + 60);
	f->checksum = get_be32(b + 64);
	memcpy(f->uuid, b + 68, 16);
	f->saved_state = b[84];
	f->hidden = b[85];
	memcpy(f->reserved, b + 86, sizeof f->reserved);
}

void footer_encode(uint8_t *b, const struct vhd_footer *f)
{
	memset(b, 0, FOOTER_SIZE);
	memcpy(b, f->cookie, 8);
	put_be32(b + 8, f->features);
	put_be32(b + 12, f->version);
	put_be64(b + 16, f->data_offset);
	put_be32(b + 24, f->timestamp);
	memcpy(b + 28, f->creator_app, 4);
	put_be32(b + 32, f->creator_version);
	put_be32(b + 36, f->creator_os);
	put_be64(b + 40, f->orig_size);
	put_be64(b + 48, f->curr_size);
	put_be32(b + 56, f->geometry);
	put_be32(b + 60, f->type);
	put_be32(b + 64, f->checksum);
	memcpy(b + 68, f->uuid, 16);
	b[84] = f->saved_state;
	b[85] = f->hidden;
	memcpy(b + 86, f->reserved, sizeof f->reserved);
}

uint32_t footer_checksum(const struct vhd_footer *f)
{
	uint8_t b[FOOTER_SIZE];
	footer_encode(b, f);
	memset(b + 64, 0, 4);
	return ~byte_sum(b, sizeof b);
}

/* blktap accepts a checksum computed with hidden=0 from early tap versions
 * that set the flag without updating the checksum. */
bool footer_early_tap(const struct vhd_footer *f)
{
	return !memcmp(f->creator_app, "tap", 3) &&
	       (f->creator_version == 0x00000001u || f->creator_version == 0x00010001u);
}

bool footer_checksum_ok(const struct vhd_footer *f)
{
	if (footer_checksum(f) == f->checksum)
		return true;
	if (f->hidden && footer_early_tap(f)) {
		struct vhd_footer t = *f;
		t.hidden = 0;
		return footer_checksum(&t) == f->checksum;
	}
	return false;
}

/* ---- dynamic header ------------------------------------------------ */

void header_decode(struct vhd_header *h, const uint8_t *b)
{
	memcpy(h->cookie, b, 8);
	h->data_offset = get_be64(b + 8);
	h->table_offset = get_be64(b + 16);
	h->version = get_be32(b + 24);
	h->max_bat_entries = get_be32(b + 28);
	h->block_size = get_be32(b + 32);
	h->checksum = get_be32(b + 36);
	memcpy(h->parent_uuid, b + 40, 16);
	h->parent_timestamp = get_be32(b + 56);
	h->reserved1 = get_be32(b + 60);
	memcpy(h->parent_name, b + 64, 512);
	for (int i = 0; i < LOC_COUNT; i++) {
		const uint8_t *l = b + 576 + 24 * i;
		h->loc[i].code = get_be32(l);
		h->loc[i].data_space = get_be32(l + 4);
		h->loc[i].data_len = get_be32(l + 8);
		h->loc[i].reserved = get_be32(l + 12);
		h->loc[i].data_offset = get_be64(l + 16);
	}
	memcpy(h->reserved2, b + 768, 256);
}

void header_encode(uint8_t *b, const struct vhd_header *h)
{
	memset(b, 0, HEADER_SIZE);
	memcpy(b, h->cookie, 8);
	put_be64(b + 8, h->data_offset);
	put_be64(b + 16, h->table_offset);
	put_be32(b + 24, h->version);
	put_be32(b + 28, h->max_bat_entries);
	put_be32(b + 32, h->block_size);
	put_be32(b + 36, h->checksum);
	memcpy(b + 40, h->parent_uuid, 16);
	put_be32(b + 56, h->parent_timestamp);
	put_be32(b + 60, h->reserved1);
	memcpy(b + 64, h->parent_name, 512);
	for (int i = 0; i < LOC_COUNT; i++) {
		uint8_t *l = b + 576 + 24 * i;
		put_be32(l, h->loc[i].code);
		put_be32(l + 4, h->loc[i].data_space);
		put_be32(l + 8, h->loc[i].data_len);
		put_be32(l + 12, h->loc[i].reserved);
		put_be64(l + 16, h->loc[i].data_offset);
	}
	memcpy(b + 768, h->reserved2, 256);
}

uint32_t header_checksum(const struct vhd_header *h)
{
	uint8_t b[HEADER_SIZE];
	header_encode(b, h);
	memset(b + 36, 0, 4);
	return ~byte_sum(b, sizeof b);
}

/* ---- batmap -------------------------------------------------------- */

void batmap_header_decode(struct vhd_batmap_header *m, const uint8_t *b)
{
	memcpy(m->cookie, b, 8);
	m->map_offset = get_be64(b + 8);
	m->map_sectors = get_be32(b + 16);
	m->version = get_be32(b + 20);
	m->checksum = get_be32(b + 24);
	m->marker = b[28];
	memcpy(m->keyhash, b + 29, sizeof m->keyhash);
}

void batmap_header_encode(uint8_t *b, const struct vhd_batmap_header *m)
{
	memset(b, 0, SECTOR);
	memcpy(b, m->cookie, 8);
	put_be64(b + 8, m->map_offset);
	put_be32(b + 16, m->map_sectors);
	put_be32(b + 20, m->version);
	put_be32(b + 24, m->checksum);
	b[28] = m->marker;
	memcpy(b + 29, m->keyhash, sizeof m->keyhash);
}

uint32_t batmap_checksum(const uint8_t *map, size_t bytes)
{
	return ~byte_sum(map, bytes);
}

/* ---- bit search ---------------------------------------------------- */

uint64_t bit_find(const uint8_t *map, uint64_t from, uint64_t to, bool value)
{
	uint64_t i = from;
	/* bit by bit to a byte boundary, then whole words and bytes */
	while (i < to && (i & 7)) {
		if (bit_test(map, i) == value)
			return i;
		i++;
	}
	const uint64_t skip_word = value ? 0 : UINT64_MAX;
	for (uint64_t w; i + 64 <= to; i += 64) {
		memcpy(&w, map + (i >> 3), sizeof w);
		if (w != skip_word)
			break;
	}
	const uint8_t skip = value ? 0x00 : 0xFF;
	while (i + 8 <= to && map[i >> 3] == skip)
		i += 8;
	if (i + 8 <= to) {   /* this byte holds one: the first from its top bit */
		unsigned b = value ? map[i >> 3] : (uint8_t)~map[i >> 3];
		return i + (uint64_t)(__builtin_clz(b) - 24);
	}
	while (i < to) {
		if (bit_test(map, i) == value)
			return i;
		i++;
	}
	return to;
}

/* ---- geometry and time -------------------------------------------- */

VHD_EXPORT uint32_t vhd_chs_geometry(uint64_t size)
{
	uint64_t total = size / SECTOR;
	uint32_t cyl_heads, heads, spt;

	if (total > 65535ull * 16 * 255)
		total = 65535ull * 16 * 255;
	if (total >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cyl_heads = (uint32_t)(total / spt);
	} else {
		spt = 17;
		cyl_heads = (uint32_t)(total / spt);
		heads = (cyl_heads + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cyl_heads >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			cyl_heads = (uint32_t)(total / spt);
		}
		if (cyl_heads >= heads * 1024) {
			spt = 63;
			heads = 16;
			cyl_heads = (uint32_t)(total / spt);
		}
	}
	uint32_t cyls = cyl_heads / heads;
	return cyls << 16 | heads << 8 | spt;
}

#define VHD_EPOCH 946684800   /* 2000-01-01 00:00:00 UTC */

VHD_EXPORT uint32_t vhd_time_from_unix(int64_t t)
{
	if (t < VHD_EPOCH)
		return 0;
	if (t - VHD_EPOCH > UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)(t - VHD_EPOCH);
}

VHD_EXPORT int64_t vhd_time_to_unix(uint32_t t)
{
	return (int64_t)t + VHD_EPOCH;
}
