/* mkfull.c - benchmark helper: a dynamic VHD with every block allocated and
 * its data a hole, laid out as blktap would after writing the whole disk.
 *   mkfull [--size SIZE] [--no-bitmaps] FILE
 *     --size SIZE     virtual size, K/M/G/T suffixes (default 2040G, the
 *                     largest the format can hold fully allocated)
 *     --no-bitmaps    leave the block bitmaps holes (the batmap still says
 *                     full: only for metadata-only checks, not valid)
 * Every block gets an all-ones bitmap and batmap bit; the data area stays
 * a hole, so the file is sparse: ~4 KiB of disk per block (the bitmap's
 * filesystem block).  Prints "blocks=N file_size=N metadata_bytes=N". */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static uint64_t size_arg(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	switch (*end) {
	case 'T': v <<= 10; /* fall through */
	case 'G': v <<= 10; /* fall through */
	case 'M': v <<= 10; /* fall through */
	case 'K': v <<= 10; break;
	}
	return v;
}

static int die(const char *path)
{
	fprintf(stderr, "mkfull: %s\n", *vhd_get_error() ? vhd_get_error() : path);
	return 1;
}

/* Place every block after the metadata as vhd_allocate_block does (data
 * areas 4 KiB aligned), writing the bitmaps; returns the new end of data. */
static int place_blocks(struct vhd *v, bool bitmaps, uint64_t *end)
{
	uint8_t *ones = xmalloc(v->bitmap_bytes);
	if (!ones)
		return -1;
	memset(ones, 0xFF, v->bitmap_bytes);
	uint64_t eof = v->footer_offset;
	int rc = 0;
	for (uint32_t b = 0; b < v->bat_entries && !rc; b++) {
		uint64_t start = round_up(eof + v->bitmap_bytes, DATA_ALIGN) - v->bitmap_bytes;
		if (start / SECTOR > UINT32_MAX - 1) {
			rc = vhd_error(EFBIG, "%s: block %u: beyond the 2 TiB a BAT entry can address",
			               v->path, b);
			break;
		}
		v->bat[b] = (uint32_t)(start / SECTOR);
		bit_set(v->batmap, b);
		if (bitmaps)
			rc = write_at(v->fd, v->path, ones, v->bitmap_bytes, start);
		eof = start + v->bitmap_bytes + v->header.block_size;
	}
	free(ones);
	*end = eof;
	return rc;
}

static int write_bat(struct vhd *v)
{
	size_t bytes = round_up((uint64_t)v->bat_entries * 4, SECTOR);
	uint8_t *buf = xcalloc(1, bytes);
	if (!buf)
		return -1;
	for (uint32_t b = 0; b < v->bat_entries; b++)
		put_be32(buf + 4ull * b, v->bat[b]);
	int rc = write_at(v->fd, v->path, buf, bytes, v->header.table_offset);
	free(buf);
	return rc;
}

static int make_full(const char *path, uint64_t size, bool bitmaps)
{
	if (vhd_create(path, size, VHD_CREATE_OVERWRITE))
		return die(path);
	struct vhd *v = vhd_open_file(path, VHD_OPEN_RDWR, false);
	if (!v)
		return die(path);
	uint64_t old_footer = v->footer_offset, end;
	uint8_t zero[FOOTER_SIZE] = {0};
	if (!v->has_batmap) {
		vhd_error(EINVAL, "%s: created without a batmap", path);
		goto fail;
	}
	if (place_blocks(v, bitmaps, &end) || write_bat(v) || vhd_write_batmap(v))
		goto fail;
	v->footer_offset = end;
	if (vhd_write_footers(v) || write_at(v->fd, path, zero, FOOTER_SIZE, old_footer))
		goto fail;
	if (fsync(v->fd) < 0) {
		vhd_error(errno, "%s: fsync: %s", path, strerror(errno));
		goto fail;
	}
	printf("blocks=%u file_size=%llu metadata_bytes=%llu\n", v->bat_entries,
	       (unsigned long long)(end + FOOTER_SIZE), (unsigned long long)old_footer);
	vhd_free(v);
	return 0;
fail:
	vhd_free(v);
	return die(path);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"no-bitmaps", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	uint64_t size = 2040ull << 30;
	bool bitmaps = true;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			size = size_arg(optarg);
		else if (c == 'n')
			bitmaps = false;
		else
			return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: mkfull [--size SIZE] [--no-bitmaps] FILE\n");
		return 2;
	}
	return make_full(argv[optind], size, bitmaps);
}
