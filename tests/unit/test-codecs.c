/* test-codecs.c - the on-disk codecs, table by table: footer, header and
 * batmap header decoded from real bytes and encoded back byte for byte,
 * their checksums, the CHS geometry of the VHD specification, and the
 * UTF-16 names of parent fields and locators.
 *
 * Known values come from outside vhdkit: the bytes are those of the golden
 * corpus's images (made by blktap 4.0.8 and qemu-img 7.2, named per table),
 * copied as runs of non-zero bytes with
 *   python3 -c 'import sys; b = open(sys.argv[1], "rb").read()[OFF:OFF + N]; print(b.hex())' FILE
 * and their checksums are the ones stored in those files (recomputed there
 * as ~sum(bytes, with the checksum field zeroed) & 0xffffffff). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

/* A structure's bytes as runs of non-zero bytes: OFFSET, hex. */
struct run {
	unsigned offset;
	const char *hex;
};

/* HEX into OUT; returns the bytes written */
static size_t unhex(uint8_t *out, const char *hex)
{
	size_t n = 0;
	for (; hex[2 * n]; n++) {
		unsigned byte;
		sscanf(hex + 2 * n, "%2x", &byte);
		out[n] = (uint8_t)byte;
	}
	return n;
}

static void fill(uint8_t *buf, size_t len, const struct run *runs)
{
	memset(buf, 0, len);
	for (; runs->hex; runs++)
		unhex(buf + runs->offset, runs->hex);
}

static uint32_t chs(uint32_t c, uint32_t h, uint32_t s)
{
	return c << 16 | h << 8 | s;
}

/* ---- footer ---------------------------------------------------------- */

/* good/grow/leaf.vhd, its last 512 bytes (vhd-util snapshot, then resize
 * -s 64): a differencing disk of 64 MiB, CHS 963/8/17. */
static const struct run grow_leaf_footer[] = {
	{ 0, "636f6e6563746978" }, { 11, "020001" }, { 22, "02003295315f746170" },
	{ 33, "010003" }, { 44, "02" }, { 52, "04" }, { 56, "03c30811" },
	{ 63, "04fffff24d1de01d329d8b44be98be5b7138a73020" }, { 0, NULL },
};

static void test_footer(void)
{
	uint8_t disk[FOOTER_SIZE], again[FOOTER_SIZE];
	struct vhd_footer f;
	fill(disk, sizeof disk, grow_leaf_footer);
	footer_decode(&f, disk);
	CHECK(!memcmp(f.cookie, "conectix", 8), "footer cookie");
	CHECK(f.features == VHD_FEATURE_RESERVED, "features %#x", f.features);
	CHECK(f.version == VHD_VERSION, "version %#x", f.version);
	CHECK(f.data_offset == 512, "data offset %llu", (unsigned long long)f.data_offset);
	CHECK(!memcmp(f.creator_app, "tap", 4), "creator app");
	CHECK(f.creator_version == TAP_CREATOR_VERSION, "creator version %#x", f.creator_version);
	CHECK(f.orig_size == 32ull << 20, "original size %llu", (unsigned long long)f.orig_size);
	CHECK(f.curr_size == 64ull << 20, "current size %llu", (unsigned long long)f.curr_size);
	CHECK(f.geometry == chs(963, 8, 17), "geometry %#x", f.geometry);
	CHECK(f.type == VHD_TYPE_DIFF, "type %u", f.type);
	CHECK(f.checksum == 0xfffff24du, "stored checksum %#x", f.checksum);
	CHECK(f.uuid[0] == 0x1d && f.uuid[15] == 0x20, "uuid");
	CHECK(f.hidden == 0 && f.saved_state == 0, "hidden %u saved %u", f.hidden, f.saved_state);

	CHECK(footer_checksum(&f) == 0xfffff24du, "footer checksum %#x, blktap wrote 0xfffff24d",
	      footer_checksum(&f));
	CHECK(footer_checksum_ok(&f), "footer checksum not accepted");
	CHECK(!footer_invalid(&f, true, false), "valid footer: %s", footer_invalid(&f, true, false));
	footer_encode(again, &f);
	CHECK(!memcmp(again, disk, sizeof disk), "footer does not encode back to its bytes");

	/* one more in a byte of the sum: one less in its complement */
	f.hidden = 1;
	CHECK(footer_checksum(&f) == 0xfffff24du - 1, "hidden=1: checksum %#x", footer_checksum(&f));
	CHECK(!footer_checksum_ok(&f), "tap 1.3 with hidden set after the checksum: accepted");
	/* early tap versions set the flag without updating the checksum */
	f.creator_version = 0x00010001u;
	struct vhd_footer shown = f;
	shown.hidden = 0;
	f.checksum = footer_checksum(&shown);
	CHECK(footer_checksum_ok(&f), "tap 1.1 with hidden set after the checksum: refused");
	f.checksum += 7;   /* (not 1: hidden=1 is one off already) */
	CHECK(!footer_checksum_ok(&f), "tap 1.1, wrong checksum: accepted");
	CHECK(footer_invalid(&f, false, false) && !strcmp(footer_invalid(&f, false, false), "invalid checksum"),
	      "wrong checksum not named");
	f.cookie[0] = 'C';
	CHECK(footer_invalid(&f, false, false) && !strcmp(footer_invalid(&f, false, false), "invalid cookie"),
	      "wrong cookie not named");
}

/* ---- header ---------------------------------------------------------- */

/* good/grow/leaf.vhd, bytes 512..1535: parent "parent.vhd", BAT at 1536
 * with 32 entries of 2 MiB, locators MacX, W2ku, W2ru at 3072, 3584, 4096. */
static const struct run grow_leaf_header[] = {
	{ 0, "6378737061727365ffffffffffffffff" }, { 22, "06" }, { 25, "01" },
	{ 31, "200020" },
	{ 36, "ffffe323255d1aa0a85942eab001570eef747dcf3295315f" },
	{ 65, "70006100720065006e0074002e007600680064" },
	{ 576, "4d616358" }, { 582, "02" }, { 587, "13" }, { 598, "0c0057326b75" },
	{ 606, "02" }, { 611, "18" }, { 622, "0e0057327275" }, { 630, "02" },
	{ 635, "18" }, { 646, "10" }, { 0, NULL },
};

static void test_header(void)
{
	uint8_t disk[HEADER_SIZE], again[HEADER_SIZE];
	struct vhd_header h;
	fill(disk, sizeof disk, grow_leaf_header);
	header_decode(&h, disk);
	CHECK(!memcmp(h.cookie, "cxsparse", 8), "header cookie");
	CHECK(h.data_offset == DD_OFFSET_NONE, "data offset %#llx", (unsigned long long)h.data_offset);
	CHECK(h.table_offset == 1536, "table offset %llu", (unsigned long long)h.table_offset);
	CHECK(h.version == VHD_VERSION, "header version %#x", h.version);
	CHECK(h.max_bat_entries == 32, "max BAT entries %u", h.max_bat_entries);
	CHECK(h.block_size == 2u << 20, "block size %u", h.block_size);
	CHECK(h.checksum == 0xffffe323u, "stored checksum %#x", h.checksum);
	CHECK(h.parent_uuid[0] == 0x25 && h.parent_uuid[15] == 0xcf, "parent uuid");
	CHECK(h.parent_timestamp == 0x3295315fu, "parent time %#x", h.parent_timestamp);
	static const struct { uint32_t code, space, len; uint64_t offset; } loc[] = {
		{ LOC_MACX, 512, 19, 3072 }, { LOC_W2KU, 512, 24, 3584 }, { LOC_W2RU, 512, 24, 4096 },
		{ 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 },
	};
	for (int i = 0; i < LOC_COUNT; i++)
		CHECK(h.loc[i].code == loc[i].code && h.loc[i].data_space == loc[i].space &&
		      h.loc[i].data_len == loc[i].len && h.loc[i].data_offset == loc[i].offset,
		      "locator %d: %#x %u %u %llu", i, h.loc[i].code, h.loc[i].data_space,
		      h.loc[i].data_len, (unsigned long long)h.loc[i].data_offset);
	char *name = utf16_to_utf8(h.parent_name, sizeof h.parent_name, true);
	CHECK(name && !strcmp(name, "parent.vhd"), "parent name '%s'", name ? name : "(null)");
	free(name);

	CHECK(header_checksum(&h) == 0xffffe323u, "header checksum %#x, blktap wrote 0xffffe323",
	      header_checksum(&h));
	header_encode(again, &h);
	CHECK(!memcmp(again, disk, sizeof disk), "header does not encode back to its bytes");
	h.block_size = 1u << 20;   /* 0x20 -> 0x10 in one byte: the sum drops by 16 */
	CHECK(header_checksum(&h) == 0xffffe323u + 16, "1 MiB blocks: checksum %#x", header_checksum(&h));
}

/* ---- batmap ---------------------------------------------------------- */

/* good/tap-dyn-data-256m.vhd: the batmap header (after the 128-entry BAT,
 * byte 2048) and its one-sector map, blocks 25 and 109 full. */
static const struct run data256_batmap_header[] = {
	{ 0, "74646261746d6170" }, { 14, "0a" }, { 19, "0100010002ffffffbb" }, { 0, NULL },
};
static const struct run data256_batmap[] = { { 3, "40" }, { 13, "04" }, { 0, NULL } };

static void test_batmap(void)
{
	uint8_t disk[SECTOR], again[SECTOR], map[SECTOR];
	struct vhd_batmap_header b;
	fill(disk, sizeof disk, data256_batmap_header);
	fill(map, sizeof map, data256_batmap);
	batmap_header_decode(&b, disk);
	CHECK(!memcmp(b.cookie, "tdbatmap", 8), "batmap cookie");
	CHECK(b.map_offset == 2560, "map offset %llu", (unsigned long long)b.map_offset);
	CHECK(b.map_sectors == 1, "map sectors %u", b.map_sectors);
	CHECK(b.version == BATMAP_VERSION, "batmap version %#x", b.version);
	CHECK(b.checksum == 0xffffffbbu, "stored checksum %#x", b.checksum);
	CHECK(batmap_checksum(map, sizeof map) == 0xffffffbbu, "map checksum %#x",
	      batmap_checksum(map, sizeof map));
	CHECK(bit_test(map, 25) && bit_test(map, 109) && !bit_test(map, 24) && !bit_test(map, 26),
	      "batmap bits (MSB first)");
	memset(map, 0, sizeof map);
	CHECK(batmap_checksum(map, sizeof map) == 0xffffffffu, "empty map checksum");
	batmap_header_encode(again, &b);
	CHECK(!memcmp(again, disk, sizeof disk), "batmap header does not encode back to its bytes");
}

/* ---- CHS ------------------------------------------------------------- */

/* Sizes with the geometry blktap or qemu wrote for them (corpus), and the
 * branches of the specification's algorithm (Appendix: CHS calculation),
 * computed by a separate Python transcription of it:
 *   def chs(size):
 *       t = min(size // 512, 65535 * 16 * 255)
 *       if t >= 65535 * 16 * 63: spt, heads = 255, 16; cth = t // spt
 *       else:
 *           spt = 17; cth = t // spt; heads = max((cth + 1023) // 1024, 4)
 *           if cth >= heads * 1024 or heads > 16: spt, heads = 31, 16; cth = t // spt
 *           if cth >= heads * 1024: spt, heads = 63, 16; cth = t // spt
 *       return cth // heads, heads, spt */
static void test_chs(void)
{
	static const struct { uint64_t size; uint32_t c, h, s; const char *source; } rows[] = {
		{ 0, 0, 4, 17, "empty: 4 heads at least" },
		{ 1079296, 31, 4, 17, "good/qemu-fixed.vhd (qemu-img)" },
		{ 2ull << 20, 60, 4, 17, "good/tap-fixed.vhd" },
		{ 20ull << 20, 602, 4, 17, "3 heads would do; 4 at least" },
		{ 32ull << 20, 963, 4, 17, "good/grow/parent.vhd" },
		{ 64ull << 20, 963, 8, 17, "good/grow/leaf.vhd (resized by vhd-util)" },
		{ 104865792, 1004, 12, 17, "good/qemu-dyn-data.vhd (qemu-img)" },
		{ 128ull << 20, 963, 16, 17, "good/sr1/*.vhd" },
		{ 400000ull * 512, 806, 16, 31, "17 sectors need > 16 heads, 31 do not" },
		{ 256ull << 20, 520, 16, 63, "good/tap-dyn-data-256m.vhd" },
		{ 1ull << 30, 2080, 16, 63, "good/tap-dyn-empty-1g.vhd" },
		{ 66059279ull * 512, 65534, 16, 63, "one sector below 65535*16*63" },
		{ 66059280ull * 512, 16191, 16, 255, "65535*16*63 sectors: 255 per track" },
		{ 100ull << 30, 51400, 16, 255, "100 GiB" },
		{ 2ull << 40, 65535, 16, 255, "2 TiB: the largest geometry" },
		{ 2040ull << 30, 65535, 16, 255, "past 65535*16*255 sectors: clipped" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		uint32_t g = vhd_chs_geometry(rows[i].size);
		CHECK(g == chs(rows[i].c, rows[i].h, rows[i].s), "%llu bytes (%s): %u/%u/%u, expected %u/%u/%u",
		      (unsigned long long)rows[i].size, rows[i].source, g >> 16, g >> 8 & 0xff, g & 0xff,
		      rows[i].c, rows[i].h, rows[i].s);
	}
	printf("chs: %zu sizes\n", sizeof rows / sizeof rows[0]);
}

/* ---- UTF-16 names ------------------------------------------------------ */

struct utf16_row {
	const char *utf8;
	const char *utf16be;   /* hex; NULL: refused */
	const char *what;
};

static const struct utf16_row names[] = {
	{ "parent.vhd", "0070006100720065006e0074002e007600680064", "ASCII (the parent name above)" },
	{ ".\\parent.vhd", "002e005c0070006100720065006e0074002e007600680064", "a W2ku locator's" },
	{ "caf\xc3\xa9", "00630061006600e9", "U+00E9, two UTF-8 bytes" },
	{ "\xe6\x97\xa5\xe6\x9c\xac", "65e5672c", "U+65E5 U+672C, three bytes each" },
	{ "\xf0\x9f\x98\x80", "d83dde00", "U+1F600: a surrogate pair" },
	{ "\xf4\x8f\xbf\xbf", "dbffdfff", "U+10FFFF, the last code point" },
	{ "", "", "empty" },
};

/* Input UTF-8 that is not UTF-8, or not a code point UTF-16 can hold. */
static const struct { const char *utf8, *what; } bad_utf8[] = {
	{ "a\xc3", "truncated sequence" },
	{ "\x80", "lone continuation byte" },
	{ "\xff", "invalid byte" },
	{ "\xc0\xaf", "overlong '/'" },
	{ "\xe0\x80\xaf", "overlong '/' in three bytes" },
	{ "\xed\xa0\x80", "an encoded surrogate (U+D800)" },
	{ "\xf4\x90\x80\x80", "U+110000, beyond Unicode" },
};

/* UTF-16BE a decoder must refuse. */
static const struct { const char *utf16be, *what; } bad_utf16[] = {
	{ "0061d83d", "high surrogate at the end" },
	{ "d83d0041", "high surrogate then a letter" },
	{ "de000041", "lone low surrogate" },
	{ "d83dd83d", "two high surrogates" },
};

static void swap16(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		uint8_t t = p[i];
		p[i] = p[i + 1];
		p[i + 1] = t;
	}
}

static void test_utf16_row(const struct utf16_row *r)
{
	uint8_t want[512], got[512], le[512];
	size_t n = unhex(want, r->utf16be);
	ssize_t len = utf8_to_utf16(got, sizeof got, r->utf8, true);
	CHECK(len == (ssize_t)n && !memcmp(got, want, n), "%s: encoded to %zd bytes", r->what, len);
	len = utf8_to_utf16(le, sizeof le, r->utf8, false);
	swap16(want, n);
	CHECK(len == (ssize_t)n && !memcmp(le, want, n), "%s: little-endian encoding", r->what);
	swap16(want, n);
	memset(want + n, 0, sizeof want - n);   /* a field padded with zeros, as on disk */
	char *back = utf16_to_utf8(want, sizeof want, true);
	CHECK(back && !strcmp(back, r->utf8), "%s: decoded to '%s'", r->what, back ? back : "(refused)");
	free(back);
	swap16(want, sizeof want);
	back = utf16_to_utf8(want, sizeof want, false);
	CHECK(back && !strcmp(back, r->utf8), "%s: little-endian decoding", r->what);
	free(back);
}

static void test_utf16(void)
{
	uint8_t buf[512];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		test_utf16_row(&names[i]);
	for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
		ssize_t len = utf8_to_utf16(buf, sizeof buf, bad_utf8[i].utf8, true);
		CHECK(len == -1 && vhd_get_errno() == EINVAL, "UTF-8 with %s: encoded (%zd)",
		      bad_utf8[i].what, len);
	}
	for (size_t i = 0; i < sizeof bad_utf16 / sizeof bad_utf16[0]; i++) {
		size_t n = unhex(buf, bad_utf16[i].utf16be);
		char *s = utf16_to_utf8(buf, n, true);
		CHECK(!s && vhd_get_errno() == EBADMSG, "UTF-16 with %s: decoded", bad_utf16[i].what);
		free(s);
	}
	/* the parent name field holds 256 units: 256 letters fit, 257 do not,
	 * nor does a pair that would straddle the end */
	char name[300];
	memset(name, 'a', 257);
	name[257] = 0;
	CHECK(utf8_to_utf16(buf, 512, name, true) == -1 && vhd_get_errno() == ENAMETOOLONG,
	      "257 letters fit 512 bytes");
	name[256] = 0;
	CHECK(utf8_to_utf16(buf, 512, name, true) == 512, "256 letters do not fit 512 bytes");
	memcpy(name + 255, "\xf0\x9f\x98\x80", 5);
	CHECK(utf8_to_utf16(buf, 512, name, true) == -1, "a pair straddling the field's end fits");
	/* an odd byte count: the last byte is not a unit */
	char *s = utf16_to_utf8((const uint8_t *)"\0a\0b\0", 5, true);
	CHECK(s && !strcmp(s, "ab"), "odd length: '%s'", s ? s : "(refused)");
	free(s);
	printf("utf16: %zu names, %zu bad UTF-8, %zu bad UTF-16, the field's length\n",
	       sizeof names / sizeof names[0], sizeof bad_utf8 / sizeof bad_utf8[0],
	       sizeof bad_utf16 / sizeof bad_utf16[0]);
}

int main(void)
{
	test_footer();
	test_header();
	test_batmap();
	test_chs();
	test_utf16();
	return unit_done("test-codecs");
}
