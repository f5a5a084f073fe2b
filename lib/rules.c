/* rules.c - the VHD format's rules, each written once.
 *
 * First the quantities derived from the metadata that every reader needs
 * alike (where the BAT ends, a locator's bytes, where an image's metadata
 * and data end); open, check, repair, resize and vhd-util all use these,
 * so that they agree on where things are. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Does [OFF, OFF + LEN) end after LIMIT?  (No overflow.) */
static bool past(uint64_t off, uint64_t len, uint64_t limit)
{
	return off > limit || len > limit - off;
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

uint64_t whole_sectors(uint64_t size)
{
	return size & ~(uint64_t)(SECTOR - 1);
}

uint64_t primary_footer_offset(uint64_t file_size)
{
	return whole_sectors(file_size) - FOOTER_SIZE;
}

bool header_placed(uint64_t data_offset, uint64_t limit)
{
	return !(data_offset % SECTOR) && !past(data_offset, HEADER_SIZE, limit);
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

/* ---- rule tables ------------------------------------------------------ */

/* A rule's predicate sees the structure it is about and what it is
 * compared with.  Each table lists blktap's tests in the order and with
 * the words of blktap's `vhd-util check`, with vhdkit's own rules (those
 * without RULE_BLKTAP) where they belong. */

static bool is_power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

static bool known_type(uint32_t type)
{
	return type == VHD_TYPE_FIXED || type == VHD_TYPE_DYNAMIC || type == VHD_TYPE_DIFF;
}

/* footer */
#define F (in->footer)
static bool f_cookie(const struct rule_input *in) { return memcmp(F->cookie, "conectix", 8); }
static bool f_checksum(const struct rule_input *in) { return !footer_checksum_ok(F); }
static bool f_reserved_feature(const struct rule_input *in)
{
	return !(F->features & VHD_FEATURE_RESERVED);
}
static bool f_extra_features(const struct rule_input *in)
{
	return F->features & ~(0x1u | VHD_FEATURE_RESERVED);
}
static bool f_version(const struct rule_input *in) { return F->version != VHD_VERSION; }
static bool f_data_offset(const struct rule_input *in)
{
	return F->type != VHD_TYPE_DYNAMIC && F->type != VHD_TYPE_DIFF &&
	       F->data_offset != DD_OFFSET_NONE;
}
static bool f_future(const struct rule_input *in) { return F->timestamp > in->now + 1800u; }
static bool f_tap_version(const struct rule_input *in)
{
	return !memcmp(F->creator_app, "tap", 3) && F->creator_version > TAP_CREATOR_VERSION;
}
static bool f_geometry(const struct rule_input *in)
{
	return vhd_chs_geometry(F->curr_size) < F->geometry;
}
static bool f_type(const struct rule_input *in) { return !known_type(F->type); }
static bool f_saved(const struct rule_input *in) { return F->saved_state > 1; }
static bool f_hidden(const struct rule_input *in) { return F->hidden > 1; }
static bool f_reserved(const struct rule_input *in)
{
	return !is_zero(F->reserved, sizeof F->reserved);
}
#undef F

static const struct rule footer_list[] = {
	{ R_FOOTER_COOKIE, RULE_BLKTAP | RULE_READ, "invalid cookie", f_cookie },
	{ R_FOOTER_CHECKSUM, RULE_BLKTAP | RULE_READ, "invalid checksum", f_checksum },
	{ R_FOOTER_FEATURE, RULE_BLKTAP, "invalid 'reserved' feature", f_reserved_feature },
	{ R_FOOTER_FEATURES, RULE_BLKTAP, "invalid extra features", f_extra_features },
	{ R_FOOTER_VERSION, RULE_BLKTAP, "invalid file format version", f_version },
	{ R_FOOTER_DATA_OFFSET, RULE_BLKTAP | RULE_READ, "invalid data offset", f_data_offset },
	{ R_FOOTER_FUTURE, RULE_BLKTAP | RULE_CLOCK, "creation time in future", f_future },
	{ R_FOOTER_TAP_VERSION, RULE_BLKTAP, "unsupported tap creator version", f_tap_version },
	{ R_FOOTER_GEOMETRY, RULE_BLKTAP, "geometry too large", f_geometry },
	{ R_FOOTER_TYPE, RULE_BLKTAP | RULE_READ, "invalid type", f_type },
	{ R_FOOTER_SAVED, RULE_BLKTAP, "invalid 'saved' state", f_saved },
	{ R_FOOTER_HIDDEN, RULE_BLKTAP, "invalid 'hidden' state", f_hidden },
	{ R_FOOTER_RESERVED, RULE_BLKTAP, "invalid 'reserved' bits", f_reserved },
};

/* header */
#define H (in->header)
static bool h_cookie(const struct rule_input *in) { return memcmp(H->cookie, "cxsparse", 8); }
static bool h_checksum(const struct rule_input *in) { return header_checksum(H) != H->checksum; }
static bool h_version(const struct rule_input *in) { return H->version != VHD_VERSION; }
static bool h_data_offset(const struct rule_input *in) { return H->data_offset != DD_OFFSET_NONE; }
/* blktap: the BAT's entries (not its last sector's padding) end before the footer */
static bool h_table_offset(const struct rule_input *in)
{
	return !H->table_offset || H->table_offset % SECTOR ||
	       past(H->table_offset, (uint64_t)H->max_bat_entries * 4, in->limit);
}
/* vhdkit: so do the padding's bytes, which a resize may fill with entries */
static bool h_bat_padding(const struct rule_input *in)
{
	return !h_table_offset(in) && past(H->table_offset, bat_bytes(H->max_bat_entries), in->limit);
}
static bool h_block_size(const struct rule_input *in) { return !is_power_of_two(H->block_size); }
/* vhdkit: a power of two it can handle */
static bool h_block_range(const struct rule_input *in)
{
	return !h_block_size(in) && (H->block_size < MIN_BLOCK_SIZE || H->block_size > MAX_BLOCK_SIZE);
}
static bool h_reserved(const struct rule_input *in)
{
	return H->reserved1 || !is_zero(H->reserved2, sizeof H->reserved2);
}
static bool h_bat_too_large(const struct rule_input *in)
{
	return H->max_bat_entries > MAX_BAT_ENTRIES;
}
static bool h_bat_too_small(const struct rule_input *in)
{
	return H->block_size &&
	       div_round_up(in->footer->curr_size, H->block_size) > H->max_bat_entries;
}

static const struct rule header_list[] = {
	{ R_HEADER_COOKIE, RULE_BLKTAP | RULE_READ, "invalid cookie", h_cookie },
	{ R_HEADER_CHECKSUM, RULE_BLKTAP | RULE_READ, "invalid checksum", h_checksum },
	{ R_HEADER_VERSION, RULE_BLKTAP | RULE_READ, "invalid header version", h_version },
	{ R_HEADER_DATA_OFFSET, RULE_BLKTAP | RULE_READ, "invalid data offset", h_data_offset },
	{ R_HEADER_TABLE_OFFSET, RULE_BLKTAP | RULE_READ, "invalid table offset", h_table_offset },
	{ R_HEADER_BAT_PADDING, RULE_READ, "table offset too large", h_bat_padding },
	{ R_HEADER_BLOCK_SIZE, RULE_BLKTAP | RULE_READ, "invalid block size", h_block_size },
	{ R_HEADER_BLOCK_RANGE, RULE_READ, "unsupported block size", h_block_range },
	{ R_HEADER_RESERVED, RULE_BLKTAP | RULE_READ, "invalid reserved bits", h_reserved },
	{ R_HEADER_BAT_TOO_LARGE, RULE_READ, "max bat size too large", h_bat_too_large },
	{ R_HEADER_BAT_TOO_SMALL, RULE_READ, "max bat size too small", h_bat_too_small },
};
#undef H

/* the parent fields of the header (blktap: "differencing header") */
#define H (in->header)
static bool is_diff(const struct rule_input *in) { return in->footer->type == VHD_TYPE_DIFF; }
static bool d_future(const struct rule_input *in)
{
	return is_diff(in) && H->parent_timestamp > in->now + 1800u;
}
static bool d_name(const struct rule_input *in)
{
	if (!is_diff(in))
		return false;
	char *name = utf16_to_utf8(H->parent_name, sizeof H->parent_name, true);
	free(name);
	return !name;
}
static bool d_loop(const struct rule_input *in)
{
	return is_diff(in) && !memcmp(H->parent_uuid, in->footer->uuid, 16);
}
static bool d_null_name(const struct rule_input *in)
{
	return !is_diff(in) && !is_zero(H->parent_name, sizeof H->parent_name);
}
static bool d_null_locators(const struct rule_input *in)
{
	return !is_diff(in) && !is_zero(H->loc, sizeof H->loc);
}
static bool d_null_uuid(const struct rule_input *in)
{
	return !is_diff(in) && !is_zero(H->parent_uuid, sizeof H->parent_uuid);
}
static bool d_null_time(const struct rule_input *in)
{
	return !is_diff(in) && H->parent_timestamp;
}
#undef H

static const struct rule parent_list[] = {
	{ R_PARENT_FUTURE, RULE_BLKTAP | RULE_CLOCK, "parent creation time in future", d_future },
	{ R_PARENT_NAME, RULE_BLKTAP | RULE_READ, "invalid parent name", d_name },
	{ R_PARENT_LOOP, RULE_READ, "the parent uuid is the disk's own (a loop)", d_loop },
	{ R_PARENT_NULL_NAME, RULE_BLKTAP, "invalid non-null parent name", d_null_name },
	{ R_PARENT_NULL_LOCATORS, RULE_BLKTAP, "invalid non-null parent locators", d_null_locators },
	{ R_PARENT_NULL_UUID, RULE_BLKTAP, "invalid non-null parent uuid", d_null_uuid },
	{ R_PARENT_NULL_TIME, RULE_BLKTAP, "invalid non-zero parent timestamp", d_null_time },
};

/* batmap header */
#define M (in->batmap)
static bool m_cookie(const struct rule_input *in) { return memcmp(M->cookie, "tdbatmap", 8); }
static bool m_version(const struct rule_input *in) { return M->version > BATMAP_VERSION; }
static bool m_checksum(const struct rule_input *in)
{
	return in->batmap_sum_known && in->batmap_sum != M->checksum;
}
static bool m_size_zero(const struct rule_input *in) { return !M->map_sectors; }
static bool m_size_bat(const struct rule_input *in)
{
	return (uint64_t)M->map_sectors * SECTOR * 8 < in->header->max_bat_entries;
}
static bool m_offset(const struct rule_input *in)
{
	return !M->map_offset || M->map_offset % SECTOR;
}
/* vhdkit: the map lies after its header (which follows the BAT) */
static bool m_over_header(const struct rule_input *in)
{
	return !m_offset(in) && M->map_offset < bat_end(in->header) + SECTOR;
}
static bool m_size(const struct rule_input *in)
{
	return !m_offset(in) && past(M->map_offset, (uint64_t)M->map_sectors * SECTOR, in->limit);
}
#undef M

static const struct rule batmap_list[] = {
	{ R_BATMAP_COOKIE, RULE_BLKTAP | RULE_READ, "invalid cookie", m_cookie },
	{ R_BATMAP_VERSION, RULE_BLKTAP | RULE_READ, "unsupported batmap version", m_version },
	{ R_BATMAP_CHECKSUM, RULE_BLKTAP | RULE_READ, "invalid checksum", m_checksum },
	{ R_BATMAP_SIZE_ZERO, RULE_BLKTAP | RULE_READ, "invalid size zero", m_size_zero },
	{ R_BATMAP_SIZE_BAT, RULE_BLKTAP | RULE_READ, "batmap-BAT size mismatch", m_size_bat },
	{ R_BATMAP_OFFSET, RULE_BLKTAP | RULE_READ, "invalid batmap offset", m_offset },
	{ R_BATMAP_OVER_HEADER, RULE_READ, "map overlaps the BAT or the batmap header",
	  m_over_header },
	{ R_BATMAP_SIZE, RULE_BLKTAP | RULE_READ, "invalid batmap size", m_size },
};

/* one parent locator */
#define L (in->locator)
static bool l_code(const struct rule_input *in)
{
	switch (L->code) {
	case 0: case LOC_MACX: case LOC_W2KU: case LOC_W2RU:
	case LOC_WI2R: case LOC_WI2K: case LOC_MAC:
		return false;
	default:
		return true;
	}
}
static bool l_null(const struct rule_input *in)
{
	return !L->code && (L->data_space || L->data_len || L->reserved || L->data_offset);
}
static bool l_offset(const struct rule_input *in) { return L->code && !L->data_offset; }
static bool l_space(const struct rule_input *in) { return L->code && !L->data_space; }
static bool l_len(const struct rule_input *in) { return L->code && !L->data_len; }
static bool l_size(const struct rule_input *in)
{
	return L->code && past(L->data_offset, locator_bytes(L), in->limit);
}
static bool l_reserved(const struct rule_input *in) { return L->code && L->reserved; }
#undef L

static const struct rule locator_list[] = {
	{ R_LOCATOR_CODE, RULE_BLKTAP, "invalid platform code", l_code },
	{ R_LOCATOR_NULL, RULE_BLKTAP, "non-zero locator", l_null },
	{ R_LOCATOR_OFFSET, RULE_BLKTAP, "invalid data offset", l_offset },
	{ R_LOCATOR_SPACE, RULE_BLKTAP, "invalid data space", l_space },
	{ R_LOCATOR_LEN, RULE_BLKTAP, "invalid data length", l_len },
	{ R_LOCATOR_SIZE, RULE_BLKTAP, "invalid size", l_size },
	{ R_LOCATOR_RESERVED, RULE_BLKTAP, "invalid reserved bits", l_reserved },
};

/* one BAT entry ("block N (offset 0xX) clobbers ...") */
static bool b_headers(const struct rule_input *in) { return in->block_offset < in->data_start; }
static bool b_footer(const struct rule_input *in)
{
	return !b_headers(in) && in->block_offset + in->span > in->data_limit;
}

static const struct rule block_list[] = {
	{ R_BLOCK_HEADERS, RULE_BLKTAP | RULE_READ, "clobbers headers", b_headers },
	{ R_BLOCK_FOOTER, RULE_BLKTAP | RULE_READ, "clobbers footer", b_footer },
};

struct rule_input block_rule_input(const struct vhd *v)
{
	return (struct rule_input){ .data_start = div_round_up(vhd_metadata_end(v), SECTOR),
	                            .data_limit = v->footer_offset / SECTOR,
	                            .span = block_span(v) / SECTOR };
}

static int cmp_extent(const void *a, const void *b)
{
	const struct bat_extent *x = a, *y = b;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->block < y->block ? -1 : x->block > y->block;
}

void sort_extents(struct bat_extent *e, size_t n)
{
	qsort(e, n, sizeof *e, cmp_extent);
}

struct bat_extent *bat_by_offset(const uint32_t *bat, uint32_t n, const bool *skip,
                                 size_t *count)
{
	size_t k = 0;
	for (uint32_t b = 0; b < n; b++)
		k += bat[b] != BAT_UNUSED && !(skip && skip[b]);
	struct bat_extent *e = xmalloc((k ? k : 1) * sizeof *e);
	*count = 0;
	if (!e)
		return NULL;
	for (uint32_t b = 0; b < n; b++)
		if (bat[b] != BAT_UNUSED && !(skip && skip[b]))
			e[(*count)++] = (struct bat_extent){ bat[b], b };
	sort_extents(e, *count);
	return e;
}

#define TABLE(list) { list, sizeof list / sizeof list[0] }
const struct rule_table footer_rules = TABLE(footer_list);
const struct rule_table header_rules = TABLE(header_list);
const struct rule_table parent_rules = TABLE(parent_list);
const struct rule_table batmap_rules = TABLE(batmap_list);
const struct rule_table locator_rules = TABLE(locator_list);
const struct rule_table block_rules = TABLE(block_list);

const struct rule *rule_next_broken(const struct rule_table *t, const struct rule *after,
                                    const struct rule_input *in, int want, int skip)
{
	const struct rule *r = after ? after + 1 : t->rules;
	for (; r < t->rules + t->count; r++)
		if ((r->flags & want) == want && !(r->flags & skip) && r->broken(in))
			return r;
	return NULL;
}

const char *rule_first_broken(const struct rule_table *t, const struct rule_input *in, int want,
                              int skip)
{
	const struct rule *r = rule_next_broken(t, NULL, in, want, skip);
	return r ? r->message : NULL;
}

bool rule_broken(const struct rule_table *t, int id, const struct rule_input *in)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->rules[i].id == id)
			return t->rules[i].broken(in);
	return false;
}

uint32_t rule_now(void)
{
	return vhd_time_from_unix(time(NULL));
}

bool footer_copies_match(const uint8_t *primary, const uint8_t *backup)
{
	struct vhd_footer b;
	uint8_t unhidden[FOOTER_SIZE];
	if (!memcmp(primary, backup, FOOTER_SIZE))
		return true;
	footer_decode(&b, backup);
	if (!b.hidden || !footer_early_tap(&b))
		return false;
	b.hidden = 0;
	footer_encode(unhidden, &b);
	return !memcmp(primary, unhidden, FOOTER_SIZE);
}

int rule_error(const char *path, const char *what, const char *message)
{
	return vhd_error(VHD_EDAMAGED, "%s: %s: %s", path, what, message);
}

const char *footer_invalid(const struct vhd_footer *f, bool strict, bool check_time)
{
	struct rule_input in = { .footer = f, .now = check_time ? rule_now() : 0 };
	return rule_first_broken(&footer_rules, &in, strict ? 0 : RULE_READ,
	                         check_time ? 0 : RULE_CLOCK);
}

const char *header_invalid(const struct vhd_header *h, const struct vhd_footer *f,
                           uint64_t footer_offset)
{
	struct rule_input in = { .footer = f, .header = h, .limit = footer_offset };
	return rule_first_broken(&header_rules, &in, RULE_READ, 0);
}
