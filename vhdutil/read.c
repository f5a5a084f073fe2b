/* read.c - `vhd-util read`: print headers, BAT, bitmaps, data. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "vhdutil.h"

static const char *conv(bool hex, uint64_t v)
{
	static char buf[4][32];
	static int next;
	char *b = buf[next++ & 3];
	snprintf(b, sizeof buf[0], hex ? "%#" PRIx64 : "%" PRIu64, v);
	return b;
}

static void time_string(uint32_t vhd_time, char out[26])
{
	time_t t = (time_t)vhd_time_to_unix(vhd_time);
	struct tm tm;
	if (!localtime_r(&t, &tm) || !strftime(out, 26, "%a %b %e %H:%M:%S %Y", &tm))
		strcpy(out, "?");
}

static const char *type_string(uint32_t type)
{
	static const char *names[] = { "None", "Reserved (deprecated)", "Fixed hard disk",
		"Dynamic hard disk", "Differencing hard disk", "Reserved (deprecated)",
		"Reserved (deprecated)" };
	return type < sizeof names / sizeof *names ? names[type] : "Unknown type!\n";
}

static void print_checksum(uint32_t stored, uint32_t computed)
{
	printf("Checksum            : 0x%x|0x%x (%s)\n", stored, computed,
	       stored == computed ? "Good!" : "Bad!");
}

void vu_print_footer(const struct vhd_footer *f, bool hex)
{
	char when[26], creator[5], uuid[37];
	uint64_t c = f->geometry >> 16, h = (f->geometry >> 8) & 0xff, s = f->geometry & 0xff;

	printf("VHD Footer Summary:\n-------------------\n");
	printf("Cookie              : %.8s\n", f->cookie);
	printf("Features            : (0x%08x) %s%s\n", f->features, f->features & 1 ? "<TEMP>" : "",
	       f->features & 2 ? "<RESV>" : "");
	printf("File format version : Major: %d, Minor: %d\n", (int)(f->version >> 16),
	       (int)(f->version & 0xffff));
	printf("Data offset         : %s\n", conv(hex, f->data_offset));
	time_string(f->timestamp, when);
	printf("Timestamp           : %s\n", when);
	memcpy(creator, f->creator_app, 4);
	creator[4] = 0;
	printf("Creator Application : '%s'\n", creator);
	printf("Creator version     : Major: %d, Minor: %d\n", (int)(f->creator_version >> 16),
	       (int)(f->creator_version & 0xffff));
	printf("Creator OS          : %s\n", f->creator_os == 0x5769326Bu ? "Windows"
	       : f->creator_os == 0x4D616320u ? "Macintosh" : "Unknown!");
	printf("Original disk size  : %s MB ", conv(hex, f->orig_size >> 20));
	printf("(%s Bytes)\n", conv(hex, f->orig_size));
	printf("Current disk size   : %s MB ", conv(hex, f->curr_size >> 20));
	printf("(%s Bytes)\n", conv(hex, f->curr_size));
	printf("Geometry            : Cyl: %s, Hds: %s, Sctrs: %s\n", conv(hex, c), conv(hex, h),
	       conv(hex, s));
	printf("                    : = %s MB ", conv(hex, (c * h * s) >> 11));
	printf("(%s Bytes)\n", conv(hex, c * h * s << 9));
	printf("Disk type           : %s\n", type_string(f->type));
	print_checksum(f->checksum, footer_checksum(f));
	uuid_string(f->uuid, uuid);
	printf("UUID                : %s\n", uuid);
	printf("Saved state         : %s\n", f->saved_state ? "Yes" : "No");
	/* blktap's footer field is a char: a byte of 225 prints -31 */
	printf("Hidden              : %d\n\n", (signed char)f->hidden);
}

void vu_print_header(const struct vhd_header *h, bool hex)
{
	char when[26], uuid[37], *name;

	printf("VHD Header Summary:\n-------------------\n");
	printf("Cookie              : %.8s\n", h->cookie);
	printf("Data offset (unusd) : %s\n", conv(hex, h->data_offset));
	printf("Table offset        : %s\n", conv(hex, h->table_offset));
	printf("Header version      : 0x%08x\n", h->version);
	printf("Max BAT size        : %s\n", conv(hex, h->max_bat_entries));
	printf("Block size          : %s ", conv(hex, h->block_size));
	printf("(%s MB)\n", conv(hex, h->block_size >> 20));
	int err = vu_parent_name(h, &name);
	printf("Parent name         : %s\n", err ? "failed to read name" : name);
	free(name);
	uuid_string(h->parent_uuid, uuid);
	printf("Parent UUID         : %s\n", uuid);
	time_string(h->parent_timestamp, when);
	printf("Parent timestamp    : %s\n", when);
	print_checksum(h->checksum, header_checksum(h));
	printf("\n");
}

static const char *code_name(uint32_t code)
{
	switch (code) {
	case 0: return "PLAT_CODE_NONE";
	case 0x57693272u: return "PLAT_CODE_WI2R";
	case 0x5769326Bu: return "PLAT_CODE_WI2K";
	case LOC_W2RU: return "PLAT_CODE_W2RU";
	case LOC_W2KU: return "PLAT_CODE_W2KU";
	case 0x4D616320u: return "PLAT_CODE_MAC";
	case LOC_MACX: return "PLAT_CODE_MACX";
	default: return "UNKOWN";   /* sic */
	}
}

static void print_locators(struct vu_ctx *c, bool hex)
{
	printf("VHD Parent Locators:\n--------------------\n");
	for (int i = 0; i < LOC_COUNT; i++) {
		const struct vhd_locator *l = &c->header.loc[i];
		char *name;
		if (!l->code)
			continue;
		printf("locator:            : %d\n", i);
		printf("       code         : %s\n", code_name(l->code));
		printf("       data_space   : %s\n", conv(hex, l->data_space));
		printf("       data_length  : %s\n", conv(hex, l->data_len));
		printf("       data_offset  : %s\n", conv(hex, l->data_offset));
		if (vu_locator_read(c, l, &name))
			printf("failed to read parent name\n");
		else
			printf("       decoded name : %s\n", name);
		free(name);
		printf("\n");
	}
}

/* blktap prints the batmap's key hash (set by `vhd-util key`) when its
 * cookie byte is 1: "Batmap keyhash nonce: " and "Batmap keyhash hash : "
 * followed by the bytes in lower-case hex. */
static void print_keyhash(const struct vhd_batmap_header *b)
{
	if (b->keyhash[0] != 1)
		return;
	printf("Batmap keyhash nonce: ");
	for (int i = 1; i < 33; i++)
		printf("%02x", b->keyhash[i]);
	printf("\nBatmap keyhash hash : ");
	for (int i = 33; i < 65; i++)
		printf("%02x", b->keyhash[i]);
	printf("\n");
}

int vu_print_headers(struct vu_ctx *c, bool hex)
{
	vu_print_footer(&c->footer, hex);
	if (!vu_dynamic(c))
		return 0;
	vu_print_header(&c->header, hex);
	if (c->footer.type == VHD_TYPE_DIFF)
		print_locators(c, hex);
	if (vu_has_batmap(c)) {
		int err = vu_get_batmap(c);
		if (err) {
			printf("failed to get batmap header\n");
			return err;
		}
		printf("VHD Batmap Summary:\n-------------------\n");
		printf("Batmap offset       : %s\n", conv(hex, c->batmap.map_offset));
		printf("Batmap size (secs)  : %s\n", conv(hex, c->batmap.map_sectors));
		printf("Batmap version      : 0x%08x\n", c->batmap.version);
		print_keyhash(&c->batmap);
		print_checksum(c->batmap.checksum, vu_batmap_checksum(c));
		printf("\n");
	}
	return 0;
}

void vu_dump_headers(const char *name, bool hex)
{
	struct vu_ctx c;
	bool blk;
	printf("\n%s appears invalid; dumping headers\n\n", name);
	memset(&c, 0, sizeof c);
	c.fd = open(name, O_RDONLY | O_CLOEXEC);
	if (c.fd < 0)
		return;
	if (fd_size(c.fd, name, &c.size, &blk) == 0) {
		vu_read_footer(&c, &c.footer, true);
		vu_read_header(&c, &c.header);
		vu_print_footer(&c.footer, hex);
		vu_print_header(&c.header, hex);
	}
	close(c.fd);
}

static int block_range(struct vu_ctx *c, uint64_t block, bool hex)
{
	if (block > c->header.max_bat_entries) {
		fflush(stdout);
		fprintf(stderr, "block %s past end of file\n", conv(hex, block));
		return -ERANGE;
	}
	return 0;
}

/* Block BLK of a sector inside the footer's size has a BAT entry (a
 * damaged image may claim more blocks than its BAT holds). */
static int in_bat(const struct vu_ctx *c, uint64_t blk, bool hex)
{
	if (blk < c->header.max_bat_entries)
		return 0;
	fflush(stdout);
	fprintf(stderr, "block %s past end of file\n", conv(hex, blk));
	return -ERANGE;
}

/* COUNT sectors from SECTOR lie inside the disk (no wrap-around). */
static bool sectors_fit(const struct vu_ctx *c, uint64_t sector, uint64_t count)
{
	return sector <= UINT64_MAX / SECTOR && count <= UINT64_MAX / SECTOR - sector &&
	       (sector + count) * SECTOR <= c->footer.curr_size;
}

static int print_translation(struct vu_ctx *c, uint64_t sector, uint64_t count, bool hex)
{
	if (!sectors_fit(c, sector, count)) {
		fflush(stdout);
		fprintf(stderr, "sector %s past end of file\n", conv(hex, sector + count));
		return -ERANGE;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t cur = sector + i, blk = cur / c->spb, lsec = cur % c->spb;
		if (in_bat(c, blk, hex))
			return -ERANGE;
		uint32_t off = vu_bat_at(c, blk);
		printf("logical sector %s: ", conv(hex, cur));
		printf("block number: %s, ", conv(hex, blk));
		printf("sector offset: %s, ", conv(hex, lsec));
		printf("file offset: %s\n", off == BAT_UNUSED ? "not allocated"
		       : conv(hex, ((uint64_t)off + c->bm_secs + lsec) * SECTOR));
	}
	return 0;
}

static int print_bat(struct vu_ctx *c, uint64_t block, uint64_t count, bool hex)
{
	if (block_range(c, block + count, hex))
		return -ERANGE;
	for (uint64_t i = 0; i < count && block + i < c->header.max_bat_entries; i++) {
		uint32_t off = vu_bat_at(c, block + i);
		printf("block: %s: ", conv(hex, block + i));
		printf("offset: %s\n", off == BAT_UNUSED ? "not allocated"
		       : conv(hex, (uint64_t)off * SECTOR));
	}
	return 0;
}

static int read_bitmap(struct vu_ctx *c, uint64_t block, uint8_t **map)
{
	size_t bytes = (size_t)c->bm_secs * SECTOR;
	*map = malloc(bytes);
	if (!*map)
		return -ENOMEM;
	int err = vu_pread(c, *map, bytes, (uint64_t)vu_bat_at(c, block) * SECTOR);
	if (err) {
		free(*map);
		*map = NULL;
	}
	return err;
}

/* What = 'm': the bitmaps; 'd': the data of COUNT blocks from BLOCK. */
static int print_blocks(struct vu_ctx *c, uint64_t block, uint64_t count, bool hex, int what)
{
	if (block_range(c, block + count, hex))
		return -ERANGE;
	for (uint64_t i = 0; i < count && block + i < c->header.max_bat_entries; i++) {
		uint64_t cur = block + i;
		if (vu_bat_at(c, cur) == BAT_UNUSED) {
			printf("block %s not allocated\n", conv(hex, cur));
			continue;
		}
		size_t bytes = what == 'm' ? (size_t)c->bm_secs * SECTOR : c->header.block_size;
		uint64_t off = ((uint64_t)vu_bat_at(c, cur) + (what == 'm' ? 0 : c->bm_secs)) * SECTOR;
		uint8_t *buf = malloc(bytes);
		int err = buf ? vu_pread(c, buf, bytes, off) : -ENOMEM;
		fflush(stdout);
		if (!err && write(STDOUT_FILENO, buf, bytes) != (ssize_t)bytes)
			err = -errno;
		free(buf);
		if (err)
			return err;
	}
	return 0;
}

/* blktap tests the bit of the block number instead of the sector's; this
 * reports the sector's bit. */
static int test_bitmap(struct vu_ctx *c, uint64_t sector, uint64_t count, bool hex)
{
	uint8_t *map = NULL;
	uint64_t map_block = UINT64_MAX;
	if (!sectors_fit(c, sector, count)) {
		printf("sector %s past end of file\n", conv(hex, sector));
		return -ERANGE;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t cur = sector + i, blk = cur / c->spb, sec = cur % c->spb;
		int bit = 0;
		if (in_bat(c, blk, hex)) {
			free(map);
			return -ERANGE;
		}
		if (blk != map_block) {
			free(map);
			map = NULL;
			map_block = blk;
			int err = vu_bat_at(c, blk) == BAT_UNUSED ? 0 : read_bitmap(c, blk, &map);
			if (err)
				return err;
		}
		if (map)
			bit = bit_test(map, sec);
		printf("block %s: ", conv(hex, blk));
		printf("sec: %s: %d\n", conv(hex, sec), bit);
	}
	free(map);
	return 0;
}

static int print_batmap(struct vu_ctx *c)
{
	int err = vu_get_batmap(c);
	if (err) {
		printf("failed to read batmap: %d\n", err);
		return err;
	}
	size_t bytes = (size_t)c->batmap.map_sectors * SECTOR;
	fflush(stdout);
	return write(STDOUT_FILENO, c->batmap_map, bytes) == (ssize_t)bytes ? 0 : -EIO;
}

static int test_batmap(struct vu_ctx *c, uint64_t block, uint64_t count, bool hex)
{
	if (block_range(c, block + count, hex))
		return -ERANGE;
	if (vu_get_batmap(c)) {
		fprintf(stderr, "failed to get batmap\n");
		return -EINVAL;
	}
	for (uint64_t i = 0; i < count; i++)
		fprintf(stderr, "batmap for block %s: %d\n", conv(hex, block + i),
		        vu_batmap_test(c, block + i));
	return 0;
}

/* -R: COUNT bytes at byte offset OFF, through the chain (blktap reads
 * them with vhd_io_read_bytes; any alignment). */
static int read_bytes(struct vu_ctx *c, uint64_t off, uint64_t count)
{
	if (count > UINT64_MAX - off || off + count > c->footer.curr_size)
		return -ERANGE;
	vhd_t *v = vhd_open(c->file, VHD_OPEN_RDONLY);
	if (!v)
		return vu_lib_errno();
	uint64_t chunk = 2u << 20;
	uint8_t *buf = malloc(chunk + 2 * SECTOR);
	int err = buf ? 0 : -ENOMEM;
	fflush(stdout);
	while (!err && count) {
		uint64_t n = count < chunk ? count : chunk, skip = off % SECTOR;
		uint64_t first = off - skip, len = round_up(skip + n, SECTOR);
		if (first + len > c->footer.curr_size)   /* an unaligned size: its tail reads as 0 */
			len -= SECTOR;
		memset(buf, 0, chunk + 2 * SECTOR);
		if (len && vhd_pread(v, buf, len, first))
			err = vu_lib_errno();
		if (!err && write(STDOUT_FILENO, buf + skip, n) != (ssize_t)n)
			err = -EIO;
		off += n;
		count -= n;
	}
	free(buf);
	vhd_close(v);
	return err;
}

/* -r: COUNT sectors at SECTOR, read through the chain. */
static int read_data(struct vu_ctx *c, uint64_t sector, uint64_t count)
{
	if (!sectors_fit(c, sector, count))
		return -ERANGE;
	return read_bytes(c, sector * SECTOR, count * SECTOR);
}

/* -B: one bit per block of the virtual size (MSB first), set when the
 * block is allocated; raw bytes on stdout. */
static int print_bat_bitmap(struct vu_ctx *c)
{
	uint64_t blocks = c->footer.curr_size / c->header.block_size;
	if (blocks > c->header.max_bat_entries) {   /* damaged: no bitmap of the footer's size */
		fflush(stdout);
		fprintf(stderr, "VHD size (%" PRIu64 " blocks) exceeds BAT size (%u)\n", blocks,
		        c->header.max_bat_entries);
		return -EINVAL;
	}
	size_t bytes = (size_t)div_round_up(blocks, 8);
	uint8_t *map = calloc(1, bytes + 1);
	if (!map)
		return -ENOMEM;
	for (uint64_t i = 0; i < blocks && i < c->header.max_bat_entries; i++)
		if (vu_bat_at(c, i) != BAT_UNUSED)
			bit_set(map, i);
	fflush(stdout);
	int err = write(STDOUT_FILENO, map, bytes) < 0 ? -errno : 0;
	free(map);
	return err;
}

/* The bitmap bit of SECTOR in this file (0 where its block is not
 * allocated); MAP caches the bitmap of block *MAP_BLOCK. */
static int sector_bit(struct vu_ctx *c, uint64_t sector, uint8_t **map, uint64_t *map_block,
                      int *bit)
{
	uint64_t blk = sector / c->spb;
	*bit = 0;
	if (blk >= c->header.max_bat_entries)
		return -ERANGE;
	if (blk != *map_block) {
		free(*map);
		*map = NULL;
		*map_block = blk;
		int err = vu_bat_at(c, blk) == BAT_UNUSED ? 0 : read_bitmap(c, blk, map);
		if (err)
			return err;
	}
	if (*map)
		*bit = bit_test(*map, sector % c->spb);
	return 0;
}

static void print_extent(uint64_t start, uint64_t len, bool hex)
{
	printf("%s ", conv(hex, start));
	printf("%s\n", conv(hex, len));
}

/* -e: the runs of sectors whose bitmap bit is set among COUNT sectors
 * from SECTOR, one "START LENGTH" line each. */
static int print_extents(struct vu_ctx *c, uint64_t sector, uint64_t count, bool hex)
{
	uint8_t *map = NULL;
	uint64_t map_block = UINT64_MAX, start = 0, run = 0;
	int err = 0, bit;
	if (!sectors_fit(c, sector, count)) {
		printf("sector %s past end of file\n", conv(hex, sector));
		return -ERANGE;
	}
	for (uint64_t i = 0; i < count; i++) {
		if ((err = sector_bit(c, sector + i, &map, &map_block, &bit)))
			break;
		if (bit && !run++)
			start = sector + i;
		if (!bit && run) {
			print_extent(start, run, hex);
			run = 0;
		}
	}
	if (!err && run)
		print_extent(start, run, hex);
	free(map);
	return err;
}

static int read_usage(void)
{
	printf("options:\n-h          help\n-n          name\n-p          print VHD headers\n"
	       "-t sec      translate logical sector to VHD location\n"
	       "-b blk      print bat entry\n-B          print entire bat as a bitmap\n"
	       "-m blk      print bitmap\n-i sec      test bitmap for logical sector\n"
	       "-e sec      output extent list of allocated logical sectors\n"
	       "-a          print batmap\n-j blk      test batmap for block\n"
	       "-d blk      print data\n-c num      num units\n-r sec      read num sectors at sec\n"
	       "-R byte     read num bytes at byte\n-x          print in hex\n");
	return EINVAL;   /* blktap: a positive EINVAL */
}

#define NONE UINT64_MAX
struct read_opts {
	bool hex, headers, batmap, bat_bitmap;
	uint64_t count, lsec, bat, bitmap, tbitmap, ebitmap, tbatmap, data, rd, bytes;
};

static int parse_read(int argc, char **argv, struct read_opts *o, const char **name)
{
	int ch;
	*o = (struct read_opts){ .count = 1, .lsec = NONE, .bat = NONE, .bitmap = NONE,
	                         .tbitmap = NONE, .ebitmap = NONE, .tbatmap = NONE,
	                         .data = NONE, .rd = NONE, .bytes = NONE };
	while ((ch = getopt(argc, argv, "n:pt:b:Bm:i:e:aj:d:c:r:R:xCh")) != -1) {
		switch (ch) {
		case 'n': *name = optarg; break;
		case 'p': o->headers = true; break;
		case 'C': break;   /* blktap: read the chain through the page cache */
		case 'B': o->bat_bitmap = true; break;
		case 't': o->lsec = strtoull(optarg, NULL, 10); break;
		case 'b': o->bat = strtoull(optarg, NULL, 10); break;
		case 'm': o->bitmap = strtoull(optarg, NULL, 10); break;
		case 'i': o->tbitmap = strtoull(optarg, NULL, 10); break;
		case 'e': o->ebitmap = strtoull(optarg, NULL, 10); break;
		case 'a': o->batmap = true; break;
		case 'j': o->tbatmap = strtoull(optarg, NULL, 10); break;
		case 'd': o->data = strtoull(optarg, NULL, 10); break;
		case 'c': o->count = strtoull(optarg, NULL, 10); break;
		case 'r': o->rd = strtoull(optarg, NULL, 10); break;
		case 'R': o->bytes = strtoull(optarg, NULL, 10); break;
		case 'x': o->hex = true; break;
		default: return -1;
		}
	}
	return *name && optind == argc ? 0 : -1;
}

/* In blktap's order; the first failure ends the command. */
static int run_read(struct vu_ctx *c, const struct read_opts *o)
{
	int err = 0;
	if (o->headers)
		vu_print_headers(c, o->hex);
	if (o->lsec != NONE && (err = print_translation(c, o->lsec, o->count, o->hex)))
		return err;
	if (o->bat != NONE && (err = print_bat(c, o->bat, o->count, o->hex)))
		return err;
	if (o->bat_bitmap && (err = print_bat_bitmap(c)))
		return err;
	if (o->bitmap != NONE && (err = print_blocks(c, o->bitmap, o->count, o->hex, 'm')))
		return err;
	if (o->tbitmap != NONE && (err = test_bitmap(c, o->tbitmap, o->count, o->hex)))
		return err;
	if (o->ebitmap != NONE && (err = print_extents(c, o->ebitmap, o->count, o->hex)))
		return err;
	if (o->batmap && (err = print_batmap(c)))
		return err;
	if (o->tbatmap != NONE && (err = test_batmap(c, o->tbatmap, o->count, o->hex)))
		return err;
	if (o->data != NONE && (err = print_blocks(c, o->data, o->count, o->hex, 'd')))
		return err;
	if (o->rd != NONE && (err = read_data(c, o->rd, o->count)))
		return err;
	if (o->bytes != NONE && (err = read_bytes(c, o->bytes, o->count)))
		return err;
	return 0;
}

int vu_read(int argc, char **argv)
{
	const char *name = NULL;
	struct read_opts o;
	struct vu_ctx c;
	if (parse_read(argc, argv, &o, &name))
		return read_usage();
	int err = vu_open(&c, name, VU_OPEN_IGNORE_DISABLED);
	if (err) {
		printf("Failed to open %s: %d\n", name, err);
		vu_dump_headers(name, o.hex);
		return err;
	}
	if ((err = vu_get_bat(&c)))
		printf("Failed to get bat for %s: %d\n", name, err);
	else
		err = run_read(&c, &o);
	vu_close(&c);
	return err;
}

int vu_read_print(const char *name)
{
	char *argv[] = { "read", "-p", "-n", (char *)name, NULL };
	optind = 0;
	return vu_read(4, argv);
}
