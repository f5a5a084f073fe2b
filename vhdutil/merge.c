/* merge.c - vhd-util coalesce and fill.
 *
 * coalesce merges the child into its parent with vhdkit's sector-exact,
 * journaled coalesce; unlike blktap it grows a smaller parent instead of
 * failing with -34 after writing part of the data.  Like blktap, it does not
 * require the parent to be hidden or to have no other children. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdutil.h"

/* Sectors whose bitmap bit is set in NAME (what blktap reports). */
static int written_sectors(const char *name, uint64_t *count)
{
	struct vu_ctx c;
	int err = vu_open(&c, name, 0);
	if (err || (err = vu_get_bat(&c)))
		goto out;
	uint64_t total = c.footer.curr_size / SECTOR;
	uint8_t *map = malloc((size_t)c.bm_secs * SECTOR);
	*count = 0;
	if (!map)
		err = -ENOMEM;
	for (uint32_t b = 0; !err && b < c.bat_entries; b++) {
		if (c.bat[b] == BAT_UNUSED)
			continue;
		if ((err = vu_pread(&c, map, (size_t)c.bm_secs * SECTOR, (uint64_t)c.bat[b] * SECTOR)))
			break;
		for (uint32_t s = 0; s < c.spb && (uint64_t)b * c.spb + s < total; s++)
			*count += bit_test(map, s);
	}
	free(map);
out:
	vu_close(&c);
	return err;
}

/* -p: blktap prints "\r%6.2f%%" on stdout as it goes (per block there;
 * per progress report here), then "\r100.00%\n". */
static int show_progress(const struct vhd_progress *p, void *opaque)
{
	(void)opaque;
	if (p->bytes_total) {
		printf("\r%6.2f%%", (double)((float)p->bytes_done / (float)p->bytes_total) * 100.0);
		fflush(stdout);
	}
	return 0;
}

/* The parent of NAME as blktap finds it, printing blktap's messages. */
static int coalesce_parent(const char *name)
{
	struct vu_ctx c;
	char *parent = NULL;
	int err = vu_open(&c, name, 0);
	if (err) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	if (c.footer.type != VHD_TYPE_DIFF) {
		printf("coalescing of non-differencing disks is not supported\n");
		err = -EINVAL;
	} else if ((err = vu_parent_get(&c, &parent))) {
		printf("error finding %s parent: %d\n", name, err);
	}
	vu_close(&c);
	free(parent);
	return err;
}

int vu_coalesce(int argc, char **argv)
{
	const char *name = NULL;
	bool progress = false, sparse = false;
	uint64_t sectors = 0;
	int ch, err;
	/* blktap's getopt string takes -o, -a and -x with an argument, but
	 * then rejects them with the usage */
	while ((ch = getopt(argc, argv, "n:o:a:x:sph")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'p': progress = true; break;
		case 's': sparse = true; break;
		default: goto usage;
		}
	}
	if (!name || optind != argc)
		goto usage;
	if ((err = coalesce_parent(name)) || (err = written_sectors(name, &sectors)))
		goto failed;
	if (sparse)   /* vhdkit never writes unwritten sectors: always sparse */
		printf("opening for sparse writes\n");
	struct vhd_coalesce_opts opts = { .flags = VHD_COALESCE_FORCE,
	                                  .progress = progress ? show_progress : NULL };
	if (vhd_coalesce(name, &opts)) {
		err = vu_lib_errno();
		goto failed;
	}
	if (progress)
		printf("\r100.00%%\n");
	printf("Coalesced %" PRIu64 " sectors", sectors);   /* no newline, as blktap */
	return 0;
failed:
	printf("error coalescing: %d\n", err);
	return err;
usage:
	printf("options: <-n name> [-s sparse] [-p progress] [-h help]\n");
	return -EINVAL;
}

/* fill -b: give every unallocated block from FROM to TO (inclusive) a
 * place at the end of the file, its data area page-aligned as blktap
 * places it, with a bitmap of ones and zeros as data, without writing the
 * data.  Crash-safe: the footer is written at the new end first (which
 * grows the file), then the old one is zeroed, then the bitmaps are
 * written, then the BAT; a crash leaves the old image with unused space.
 * Blocks already allocated are kept (blktap moves them to new, empty
 * places, losing their data).  Offsets that do not fit the 32-bit BAT are
 * refused even with -B (blktap would truncate them). */
static int fill_place(struct vu_ctx *c, uint32_t from, uint32_t to, uint64_t start,
                      uint64_t *end)
{
	uint64_t max = start / SECTOR, spp = (uint64_t)sysconf(_SC_PAGESIZE) / SECTOR;
	for (uint32_t i = from; i <= to; i++) {
		if (c->bat[i] != BAT_UNUSED)
			continue;
		if ((max + c->bm_secs) % spp)
			max += spp - (max + c->bm_secs) % spp;
		if (max > UINT32_MAX - c->bm_secs - c->spb) {
			printf("sector offset for extent %u exceeds the 2 TB limit\n", i);
			return -EOVERFLOW;
		}
		c->bat[i] = (uint32_t)max;
		max += c->bm_secs + c->spb;
	}
	*end = max * SECTOR;
	return 0;
}

/* Where new blocks may start: after the data and, in a file, after the
 * footer (which the new end replaces). */
static int fill_start(struct vu_ctx *c, uint64_t *footer, uint64_t *start)
{
	uint64_t eod;
	int err = vu_end_of_data(c, &eod);
	if (err)
		return err;
	*footer = round_up(c->size, SECTOR) - FOOTER_SIZE;   /* a 511-byte footer too */
	if (c->size < FOOTER_SIZE || eod > *footer) {
		printf("%s: data past the footer at %" PRIu64 ": the image is damaged\n", c->file,
		       *footer);
		return -EINVAL;
	}
	*start = c->is_block ? eod : *footer;
	return 0;
}

/* The footer at END, synced, then the old one at FOOTER zeroed (it lies in
 * the new blocks and must not read as data).  A device keeps its footer
 * at its end. */
static int fill_move_footer(struct vu_ctx *c, uint64_t footer, uint64_t end)
{
	uint8_t foot[FOOTER_SIZE];
	if (c->is_block)
		return end + FOOTER_SIZE > c->size ? -ENOSPC : 0;
	c->footer.checksum = footer_checksum(&c->footer);
	footer_encode(foot, &c->footer);
	int err = vu_pwrite(c, foot, sizeof foot, end);
	if (!err && fsync(c->fd))
		err = -errno;
	memset(foot, 0, sizeof foot);
	return err ? err : vu_pwrite(c, foot, sizeof foot, footer);
}

/* Bitmaps of ones for the blocks that were unused in OLD, synced; then
 * the BAT, synced. */
static int fill_write(struct vu_ctx *c, const uint32_t *old, uint32_t from, uint32_t to)
{
	size_t n = c->header.max_bat_entries, bm = (size_t)c->bm_secs * SECTOR;
	size_t bat = round_up(n * 4, SECTOR);
	uint8_t *buf = malloc(bat > bm ? bat : bm);
	int err = buf ? 0 : -ENOMEM;
	if (buf)
		memset(buf, 0xff, bm);
	for (uint32_t i = from; !err && i <= to; i++)
		if (old[i] == BAT_UNUSED)
			err = vu_pwrite(c, buf, bm, (uint64_t)c->bat[i] * SECTOR);
	if (!err && fsync(c->fd))
		err = -errno;
	if (!err) {
		memset(buf, 0xff, bat);
		for (size_t i = 0; i < n; i++)
			put_be32(buf + 4 * i, c->bat[i]);
		err = vu_pwrite(c, buf, bat, c->header.table_offset);
	}
	if (!err && fsync(c->fd))
		err = -errno;
	free(buf);
	return err;
}

static int fill_bat(struct vu_ctx *c, uint32_t from, uint32_t to)
{
	size_t n = c->header.max_bat_entries;
	if (c->bat_entries < n)   /* a table past the end of the file: never rewritten */
		return -EINVAL;
	uint32_t *old = malloc(n * 4 + 1);
	uint64_t footer, start, end = 0;
	int err = old ? fill_start(c, &footer, &start) : -ENOMEM;
	if (!err) {
		memcpy(old, c->bat, n * 4);
		err = fill_place(c, from, to, start, &end);
	}
	if (!err && end > start && !(err = fill_move_footer(c, footer, end)))
		err = fill_write(c, old, from, to);
	free(old);
	return err;
}

/* fill without -b: every block read through the chain and written back,
 * which allocates it keeping the disk's content. */
static int fill_data(const char *name)
{
	vhd_t *v = vhd_open(name, VHD_OPEN_RDWR);
	if (!v)
		return vu_lib_errno();
	struct vhd_info info;
	vhd_get_info(v, &info);
	uint64_t step = info.block_size ? info.block_size : 1u << 20;
	uint8_t *buf = malloc(step);
	int err = buf ? 0 : -ENOMEM;
	for (uint64_t off = 0; !err && off < info.virtual_size; off += step) {
		uint64_t n = info.virtual_size - off < step ? info.virtual_size - off : step;
		if (vhd_pread(v, buf, n, off) || vhd_pwrite(v, buf, n, off))
			err = vu_lib_errno();
	}
	free(buf);
	if (vhd_close(v) && !err)
		err = vu_lib_errno();
	return err;
}

struct fill_opts {
	bool init_bat, no_limit;
	uint64_t from, to;
};

static int fill_run(const char *name, const struct fill_opts *o)
{
	struct vu_ctx c;
	int err = vu_open(&c, name, VU_OPEN_RDWR);
	if (err) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	if ((err = vu_get_bat(&c)) || !o->init_bat) {   /* a fixed disk: -EINVAL, silently */
		vu_close(&c);
		return err ? err : fill_data(name);
	}
	uint64_t blocks = div_round_up(c.footer.curr_size, c.header.block_size);
	if (blocks > c.header.max_bat_entries)
		blocks = c.header.max_bat_entries;
	uint64_t from = o->from == UINT64_MAX ? 0 : o->from / c.spb;
	uint64_t to = o->to == UINT64_MAX ? blocks - 1 : o->to / c.spb;
	if (!blocks || to >= blocks || from > to)
		err = -ERANGE;   /* blktap would write past its BAT */
	else
		err = fill_bat(&c, (uint32_t)from, (uint32_t)to);
	vu_close(&c);
	return err;
}

int vu_fill(int argc, char **argv)
{
	const char *name = NULL;
	struct fill_opts o = { .from = UINT64_MAX, .to = UINT64_MAX };
	int ch;
	while ((ch = getopt(argc, argv, "n:f:t:bBh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'f': o.from = strtoull(optarg, NULL, 10); break;
		case 't': o.to = strtoull(optarg, NULL, 10); break;
		case 'b': o.init_bat = true; break;
		case 'B': o.no_limit = true; break;
		default: goto usage;
		}
	}
	if (!name || optind != argc)
		goto usage;
	if ((o.from != UINT64_MAX || o.to != UINT64_MAX) && !o.init_bat) {
		printf("-f/-t can only be used with -b\n");
		goto usage;
	}
	if (o.from != UINT64_MAX && o.to != UINT64_MAX && o.to < o.from) {
		printf("invalid sector range %llu-%llu\n", (unsigned long long)o.from,
		       (unsigned long long)o.to);
		goto usage;
	}
	if (o.no_limit && !o.init_bat) {
		printf("-B can only be used with -b\n");
		goto usage;
	}
	return fill_run(name, &o);
usage:
	printf("options: <-n name> [-h help] [-b initialise the BAT and bitmaps, "
	       "don't write to the data blocks (much faster)] [-f start "
	       "intialisation from this sector, only usable with -b] [-t "
	       "intialise up to this sector (inclusive), only usable with -b] "
	       "[-B ignore the 2 TB limit, only usable with -b]\n");
	return -EINVAL;
}
