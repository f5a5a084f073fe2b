/* vhdutil-read.c - `vhd-util read`: print headers, BAT, bitmaps, data. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhd.h"
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
	printf("Hidden              : %d\n\n", f->hidden);
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

static int print_translation(struct vu_ctx *c, uint64_t sector, uint64_t count, bool hex)
{
	if ((sector + count) * SECTOR > c->footer.curr_size) {
		fflush(stdout);
		fprintf(stderr, "sector %s past end of file\n", conv(hex, sector + count));
		return -ERANGE;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t cur = sector + i, blk = cur / c->spb, lsec = cur % c->spb;
		uint32_t off = c->bat[blk];
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
		uint32_t off = c->bat[block + i];
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
	int err = vu_pread(c, *map, bytes, (uint64_t)c->bat[block] * SECTOR);
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
		if (c->bat[cur] == BAT_UNUSED) {
			printf("block %s not allocated\n", conv(hex, cur));
			continue;
		}
		size_t bytes = what == 'm' ? (size_t)c->bm_secs * SECTOR : c->header.block_size;
		uint64_t off = ((uint64_t)c->bat[cur] + (what == 'm' ? 0 : c->bm_secs)) * SECTOR;
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
	if ((sector + count) * SECTOR > c->footer.curr_size) {
		printf("sector %s past end of file\n", conv(hex, sector));
		return -ERANGE;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t cur = sector + i, blk = cur / c->spb, sec = cur % c->spb;
		int bit = 0;
		if (blk != map_block) {
			free(map);
			map = NULL;
			map_block = blk;
			int err = c->bat[blk] == BAT_UNUSED ? 0 : read_bitmap(c, blk, &map);
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

/* COUNT sectors at SECTOR: through the chain (RAW false), or this file's
 * own sectors with zeros where its bitmap is clear (RAW true). */
static int read_data(struct vu_ctx *c, uint64_t sector, uint64_t count, bool raw)
{
	if ((sector + count) * SECTOR > c->footer.curr_size)
		return -ERANGE;
	vhd_t *v = vhd_open(c->file, VHD_OPEN_RDONLY | (raw ? VHD_OPEN_NO_PARENT : 0));
	if (!v)
		return vu_lib_errno();
	uint64_t chunk = 2048;
	uint8_t *buf = malloc(chunk * SECTOR);
	int err = buf ? 0 : -ENOMEM;
	fflush(stdout);
	while (!err && count) {
		uint64_t n = count < chunk ? count : chunk, run;
		struct vhd *from;
		if (!raw)
			err = vhd_pread(v, buf, n * SECTOR, sector * SECTOR) ? vu_lib_errno() : 0;
		for (uint64_t done = 0; raw && !err && done < n; done += run) {
			int r = vhd_find_source(v, sector + done, n - done, &run, &from, 1);
			if (r == -2)
				err = vu_lib_errno();
			else if (r < 0)
				memset(buf + done * SECTOR, 0, run * SECTOR);
			else if (vhd_read_sectors(from, buf + done * SECTOR, sector + done, run))
				err = vu_lib_errno();
		}
		if (!err && write(STDOUT_FILENO, buf, n * SECTOR) != (ssize_t)(n * SECTOR))
			err = -EIO;
		sector += n;
		count -= n;
	}
	free(buf);
	vhd_close(v);
	return err;
}

static int read_usage(void)
{
	printf("options:\n-h          help\n-n          name\n-p          print VHD headers\n"
	       "-t sec      translate logical sector to VHD location\n"
	       "-b blk      print bat entry\n-m blk      print bitmap\n"
	       "-i sec      test bitmap for logical sector\n-a          print batmap\n"
	       "-j blk      test batmap for block\n-d blk      print data\n"
	       "-c num      num units\n-r sec      read num sectors at sec\n"
	       "-R sec      read num sectors at sec of this file only (raw)\n"
	       "-e          print every BAT entry\n-x          print in hex\n");
	return EINVAL;
}

int vu_read(int argc, char **argv)
{
	const char *name = NULL;
	bool hex = false, headers = false, batmap = false, all = false;
	uint64_t none = UINT64_MAX, count = 1, lsec = none, bat = none, bitmap = none,
	         tbitmap = none, tbatmap = none, data = none, rd = none, raw = none;
	int ch;
	struct vu_ctx c;

	while ((ch = getopt(argc, argv, "n:pt:b:m:i:aej:d:c:r:R:xh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'p': headers = true; break;
		case 't': lsec = strtoull(optarg, NULL, 10); break;
		case 'b': bat = strtoull(optarg, NULL, 10); break;
		case 'm': bitmap = strtoull(optarg, NULL, 10); break;
		case 'i': tbitmap = strtoull(optarg, NULL, 10); break;
		case 'a': batmap = true; break;
		case 'e': all = true; break;
		case 'j': tbatmap = strtoull(optarg, NULL, 10); break;
		case 'd': data = strtoull(optarg, NULL, 10); break;
		case 'c': count = strtoull(optarg, NULL, 10); break;
		case 'r': rd = strtoull(optarg, NULL, 10); break;
		case 'R': raw = strtoull(optarg, NULL, 10); break;
		case 'x': hex = true; break;
		default: return read_usage();
		}
	}
	if (!name || optind != argc)
		return read_usage();
	int err = vu_open(&c, name, VU_OPEN_IGNORE_DISABLED);
	if (err) {
		printf("Failed to open %s: %d\n", name, err);
		vu_dump_headers(name, hex);
		return err;
	}
	if ((err = vu_get_bat(&c))) {
		printf("Failed to get bat for %s: %d\n", name, err);
		goto out;
	}
	if (headers)
		vu_print_headers(&c, hex);
	if (lsec != none && (err = print_translation(&c, lsec, count, hex)))
		goto out;
	if (all && (err = print_bat(&c, 0, c.header.max_bat_entries, hex)))
		goto out;
	if (bat != none && (err = print_bat(&c, bat, count, hex)))
		goto out;
	if (bitmap != none && (err = print_blocks(&c, bitmap, count, hex, 'm')))
		goto out;
	if (tbitmap != none && (err = test_bitmap(&c, tbitmap, count, hex)))
		goto out;
	if (batmap && (err = print_batmap(&c)))
		goto out;
	if (tbatmap != none && (err = test_batmap(&c, tbatmap, count, hex)))
		goto out;
	if (data != none && (err = print_blocks(&c, data, count, hex, 'd')))
		goto out;
	if (rd != none && (err = read_data(&c, rd, count, false)))
		goto out;
	if (raw != none && (err = read_data(&c, raw, count, true)))
		goto out;
	err = 0;
out:
	vu_close(&c);
	return err;
}

int vu_read_print(const char *name)
{
	char *argv[] = { "read", "-p", "-n", (char *)name, NULL };
	optind = 0;
	return vu_read(4, argv);
}
