/* test-rules.c - the rule tables (lib/rules.c): a valid footer, header,
 * batmap header and locator break no rule; each damage breaks the rule it
 * should, first, in blktap's words, and only reading's rules stop a read;
 * the derived quantities (locator bytes, BAT end, data end). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define BLOCK (2u << 20)
#define LIMIT 8192u   /* where the test image's primary footer is */

static struct vhd_footer good_footer(void)
{
	struct vhd_footer f = { .features = VHD_FEATURE_RESERVED, .version = VHD_VERSION,
	                        .data_offset = FOOTER_SIZE, .creator_version = 0x00010003u,
	                        .orig_size = 8u << 20, .curr_size = 8u << 20,
	                        .type = VHD_TYPE_DYNAMIC };
	memcpy(f.cookie, "conectix", 8);
	memcpy(f.creator_app, "tap ", 4);
	f.geometry = vhd_chs_geometry(f.curr_size);
	return f;
}

static struct vhd_header good_header(void)
{
	struct vhd_header h = { .data_offset = DD_OFFSET_NONE, .table_offset = 1536,
	                        .version = VHD_VERSION, .max_bat_entries = 4,
	                        .block_size = BLOCK };
	memcpy(h.cookie, "cxsparse", 8);
	return h;
}

/* ---- footer: one field damaged, the checksum recomputed (but for "sum") */
static const struct {
	const char *field;
	const char *strict, *reading;   /* the first broken rule: of all, of reading's */
} footer_cases[] = {
	{ "none", NULL, NULL },
	{ "cookie", "invalid cookie", "invalid cookie" },
	{ "sum", "invalid checksum", "invalid checksum" },
	{ "features", "invalid 'reserved' feature", NULL },
	{ "extra", "invalid extra features", NULL },
	{ "version", "invalid file format version", NULL },
	{ "fixed-offset", "invalid data offset", "invalid data offset" },
	{ "future", "creation time in future", NULL },
	{ "tap", "unsupported tap creator version", NULL },
	{ "geometry", "geometry too large", NULL },
	{ "type", "invalid data offset", "invalid data offset" },   /* blktap's order */
	{ "saved", "invalid 'saved' state", NULL },
	{ "hidden", "invalid 'hidden' state", NULL },
	{ "reserved", "invalid 'reserved' bits", NULL },
};

static void damage_footer(struct vhd_footer *f, const char *field)
{
	if (!strcmp(field, "cookie")) f->cookie[0] = 'X';
	if (!strcmp(field, "features")) f->features = 0;
	if (!strcmp(field, "extra")) f->features |= 0x10;
	if (!strcmp(field, "version")) f->version = 0x00020000u;
	if (!strcmp(field, "fixed-offset")) f->type = VHD_TYPE_FIXED;
	if (!strcmp(field, "future")) f->timestamp = rule_now() + 86400;
	if (!strcmp(field, "tap")) f->creator_version = 0x00020000u;
	if (!strcmp(field, "geometry")) f->geometry = 0xFFFF10FFu - 1;
	if (!strcmp(field, "type")) f->type = 7;
	if (!strcmp(field, "saved")) f->saved_state = 2;
	if (!strcmp(field, "hidden")) f->hidden = 2;
	if (!strcmp(field, "reserved")) f->reserved[100] = 1;
	f->checksum = footer_checksum(f);
	if (!strcmp(field, "sum")) f->checksum ^= 1;
}

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static void test_footer(void)
{
	for (size_t i = 0; i < sizeof footer_cases / sizeof footer_cases[0]; i++) {
		struct vhd_footer f = good_footer();
		damage_footer(&f, footer_cases[i].field);
		const char *strict = footer_invalid(&f, true, true);
		const char *reading = footer_invalid(&f, false, false);
		CHECK(same(strict, footer_cases[i].strict), "footer %s: strict '%s', expected '%s'",
		      footer_cases[i].field, strict, footer_cases[i].strict);
		CHECK(same(reading, footer_cases[i].reading), "footer %s: reading '%s', expected '%s'",
		      footer_cases[i].field, reading, footer_cases[i].reading);
	}
	struct vhd_footer f = good_footer();
	damage_footer(&f, "future");
	CHECK(!footer_invalid(&f, true, false), "a footer from the future passes without the clock");
}

/* ---- header ----------------------------------------------------------- */
static const struct {
	const char *field;
	const char *blktap, *reading;   /* first broken: blktap's rules, reading's rules */
} header_cases[] = {
	{ "none", NULL, NULL },
	{ "cookie", "invalid cookie", "invalid cookie" },
	{ "sum", "invalid checksum", "invalid checksum" },
	{ "version", "invalid header version", "invalid header version" },
	{ "offset", "invalid data offset", "invalid data offset" },
	{ "table-unaligned", "invalid table offset", "invalid table offset" },
	{ "table-past", "invalid table offset", "invalid table offset" },
	{ "bat-padding", NULL, "table offset too large" },   /* vhdkit's own rule */
	{ "block-size", "invalid block size", "invalid block size" },
	{ "block-huge", NULL, "unsupported block size" },
	{ "reserved", "invalid reserved bits", "invalid reserved bits" },
	{ "bat-small", NULL, "max bat size too small" },
};

static void damage_header(struct vhd_header *h, const char *field)
{
	if (!strcmp(field, "cookie")) h->cookie[0] = 'X';
	if (!strcmp(field, "version")) h->version = 2;
	if (!strcmp(field, "offset")) h->data_offset = 0;
	if (!strcmp(field, "table-unaligned")) h->table_offset = 1537;
	if (!strcmp(field, "table-past")) h->table_offset = LIMIT - 8;
	if (!strcmp(field, "bat-padding")) h->table_offset = LIMIT - 512;   /* see below */
	if (!strcmp(field, "block-size")) h->block_size = 3 << 20;
	if (!strcmp(field, "block-huge")) h->block_size = 1u << 30;
	if (!strcmp(field, "reserved")) h->reserved2[3] = 1;
	if (!strcmp(field, "bat-small")) h->max_bat_entries = 3;
	h->checksum = header_checksum(h);
	if (!strcmp(field, "sum")) h->checksum ^= 1;
}

static void test_header(void)
{
	struct vhd_footer f = good_footer();
	for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
		struct vhd_header h = good_header();
		damage_header(&h, header_cases[i].field);
		/* bat-padding: a footer offset (LIMIT - 256, as for a file of an odd
		 * size) after the 16 bytes of entries, before their sector's end */
		uint64_t limit = !strcmp(header_cases[i].field, "bat-padding") ? LIMIT - 256 : LIMIT;
		struct rule_input in = { .footer = &f, .header = &h, .limit = limit };
		const char *blktap = rule_first_broken(&header_rules, &in, RULE_BLKTAP, 0);
		const char *reading = header_invalid(&h, &f, limit);
		CHECK(same(blktap, header_cases[i].blktap), "header %s: blktap '%s', expected '%s'",
		      header_cases[i].field, blktap, header_cases[i].blktap);
		CHECK(same(reading, header_cases[i].reading), "header %s: reading '%s', expected '%s'",
		      header_cases[i].field, reading, header_cases[i].reading);
	}
}

/* ---- parent fields, batmap header, locator ----------------------------- */
static void test_parent_fields(void)
{
	struct vhd_footer f = good_footer();
	struct vhd_header h = good_header();
	struct rule_input in = { .footer = &f, .header = &h, .now = rule_now() };
	CHECK(!rule_first_broken(&parent_rules, &in, 0, 0), "a dynamic disk's null parent fields");
	h.parent_uuid[0] = 1;
	CHECK(same(rule_first_broken(&parent_rules, &in, 0, 0), "invalid non-null parent uuid"),
	      "a dynamic disk with a parent uuid");
	f.type = VHD_TYPE_DIFF;
	memcpy(h.parent_uuid, f.uuid, 16);
	CHECK(same(rule_first_broken(&parent_rules, &in, RULE_READ, 0),
	           "the parent uuid is the disk's own (a loop)"), "a child naming itself");
	CHECK(!rule_first_broken(&parent_rules, &in, RULE_BLKTAP, 0), "blktap misses the loop");
	h.parent_name[0] = 0xD8;   /* a lone high surrogate */
	h.parent_name[1] = 0x00;
	CHECK(same(rule_first_broken(&parent_rules, &in, 0, 0), "invalid parent name"),
	      "an undecodable parent name");
}

static void test_batmap(void)
{
	struct vhd_header h = good_header();
	struct vhd_batmap_header m = { .map_offset = 2560, .map_sectors = 1,
	                               .version = BATMAP_VERSION, .checksum = 7 };
	memcpy(m.cookie, "tdbatmap", 8);
	struct rule_input in = { .header = &h, .batmap = &m, .limit = LIMIT };
	CHECK(!rule_first_broken(&batmap_rules, &in, 0, 0), "a valid batmap header");
	in.batmap_sum_known = true;
	in.batmap_sum = 8;
	CHECK(same(rule_first_broken(&batmap_rules, &in, 0, 0), "invalid checksum"), "batmap sum");
	in.batmap_sum = 7;
	m.map_offset = 2048;   /* on its own header, right after the BAT */
	CHECK(same(rule_first_broken(&batmap_rules, &in, 0, 0),
	           "map overlaps the BAT or the batmap header"), "a map over its header");
	CHECK(!rule_first_broken(&batmap_rules, &in, RULE_BLKTAP, 0), "blktap lets it be");
	m.map_offset = LIMIT;
	CHECK(same(rule_first_broken(&batmap_rules, &in, 0, 0), "invalid batmap size"),
	      "a map past the footer");
	m.map_offset = 2561;
	CHECK(same(rule_first_broken(&batmap_rules, &in, 0, 0), "invalid batmap offset"),
	      "an unaligned map");
}

static void test_locator(void)
{
	struct vhd_locator l = { .code = LOC_W2KU, .data_space = 512, .data_len = 20,
	                         .data_offset = 4096 };
	struct rule_input in = { .locator = &l, .limit = LIMIT };
	CHECK(!rule_first_broken(&locator_rules, &in, 0, 0), "a valid locator");
	l.data_offset = LIMIT - 256;
	CHECK(same(rule_first_broken(&locator_rules, &in, 0, 0), "invalid size"), "locator past");
	l.code = 0x12345678u;
	CHECK(same(rule_first_broken(&locator_rules, &in, 0, 0), "invalid platform code"),
	      "locator code");
	l.code = 0;
	CHECK(same(rule_first_broken(&locator_rules, &in, 0, 0), "non-zero locator"),
	      "an empty locator with fields");
}

/* ---- BAT entries: placement, and overlaps by sorting -------------------- */
static void test_blocks(void)
{
	struct rule_input in = { .data_start = 8, .data_limit = 100, .span = 10 };
	static const struct { uint32_t off; const char *why; } cases[] = {
		{ 7, "clobbers headers" }, { 8, NULL }, { 90, NULL }, { 91, "clobbers footer" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		in.block_offset = cases[i].off;
		const char *why = rule_first_broken(&block_rules, &in, 0, 0);
		CHECK(same(why, cases[i].why), "block at sector %u: '%s', expected '%s'",
		      cases[i].off, why, cases[i].why);
	}
	uint32_t bat[6] = { 50, BAT_UNUSED, 20, 59, 30, 20 };
	bool skip[6] = { false, false, false, false, true, false };
	size_t n;
	struct bat_extent *e = bat_by_offset(bat, 6, skip, &n);
	CHECK(e && n == 4, "4 allocated blocks not skipped, got %zu", n);
	static const struct bat_extent want[] = { { 20, 2 }, { 20, 5 }, { 50, 0 }, { 59, 3 } };
	for (size_t k = 0; e && k < n && k < 4; k++)
		CHECK(e[k].off == want[k].off && e[k].block == want[k].block,
		      "extent %zu: block %u at %u", k, e[k].block, e[k].off);
	CHECK(e && extents_overlap(&e[0], &e[1], 10) && !extents_overlap(&e[1], &e[2], 10) &&
	      extents_overlap(&e[2], &e[3], 10), "neighbours overlap where they share sectors");
	free(e);
}

/* ---- derived quantities ------------------------------------------------ */
static void test_derived(void)
{
	static const struct { uint32_t space; uint64_t bytes; } spaces[] = {
		{ 1, 512 }, { 511, 511 * 512 }, { 512, 512 }, { 1024, 1024 }, { 600, 0 }, { 0, 0 },
	};
	for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++) {
		struct vhd_locator l = { .data_space = spaces[i].space };
		CHECK(locator_bytes(&l) == spaces[i].bytes, "locator_bytes(%u) = %llu, expected %llu",
		      spaces[i].space, (unsigned long long)locator_bytes(&l),
		      (unsigned long long)spaces[i].bytes);
	}
	struct vhd_header h = good_header();
	CHECK(bat_end(&h) == 2048, "a 4-entry BAT at 1536 ends at 2048");
	CHECK(bat_bytes(129) == 1024 && bat_bytes(0) == 0, "BAT bytes are whole sectors");

	/* a truncated child whose locators start at the end of what is left:
	 * the footer goes past every area that starts before it (the fuzzer's
	 * repair-not-idempotent.vhd) */
	struct vhd v = { .footer = good_footer(), .header = good_header() };
	v.footer.type = VHD_TYPE_DIFF;
	vhd_set_block_layout(&v);
	v.header.loc[0] = (struct vhd_locator){ LOC_MACX, 512, 19, 0, 3159 };
	v.header.loc[1] = (struct vhd_locator){ 0x6b3f3275u, 512, 24, 0, 3584 };
	v.header.loc[2] = (struct vhd_locator){ LOC_W2RU, 512, 24, 0, 4096 };
	uint64_t end = vhd_data_end(&v, 3584);
	CHECK(end == 4096, "data end %llu, expected 4096", (unsigned long long)end);
	CHECK(vhd_data_end(&v, end) == end, "the data end is a fixpoint");
	uint32_t bat[4] = { 16, BAT_UNUSED, 2, 1u << 20 };   /* data, unused, in the metadata, lost */
	v.bat = bat;
	end = vhd_data_end(&v, 1u << 20);
	CHECK(end == 16 * SECTOR + block_span(&v), "data end %llu: after block 0 only",
	      (unsigned long long)end);
}

int main(void)
{
	test_footer();
	test_header();
	test_parent_fields();
	test_batmap();
	test_locator();
	test_blocks();
	test_derived();
	return unit_done("test-rules");
}
