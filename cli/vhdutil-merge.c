/* vhdutil-merge.c - vhd-util coalesce and fill.
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
	for (uint32_t b = 0; !err && b < c.header.max_bat_entries; b++) {
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

static int show_progress(const struct vhd_progress *p, void *opaque)
{
	(void)opaque;
	if (p->bytes_total)
		fprintf(stderr, "\r%6.2f%%", 100.0 * (double)p->bytes_done / (double)p->bytes_total);
	return 0;
}

int vu_coalesce(int argc, char **argv)
{
	const char *name = NULL;
	bool progress = false;
	struct vu_ctx c;
	char *parent = NULL;
	uint64_t sectors = 0;
	int ch, err;
	while ((ch = getopt(argc, argv, "n:o:a:x:sph")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'p': progress = true; break;
		case 's': case 'o': case 'a': case 'x': break;
		default: goto usage;
		}
	}
	if (!name || optind != argc)
		goto usage;
	if ((err = vu_open(&c, name, 0))) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	err = c.footer.type == VHD_TYPE_DIFF ? vu_parent_get(&c, &parent) : -EINVAL;
	vu_close(&c);
	free(parent);
	if (err) {
		printf("error finding %s parent: %d\n", name, err);
		goto failed;
	}
	if ((err = written_sectors(name, &sectors)))
		goto failed;
	struct vhd_coalesce_opts opts = { .flags = VHD_COALESCE_FORCE,
	                                  .progress = progress ? show_progress : NULL };
	if (vhd_coalesce(name, &opts)) {
		err = vu_lib_errno();
		goto failed;
	}
	if (progress)
		fprintf(stderr, "\n");
	printf("Coalesced %" PRIu64 " sectors", sectors);   /* no newline, as blktap */
	return 0;
failed:
	printf("error coalescing: %d\n", err);
	return err;
usage:
	printf("options: <-n name> [-a ancestor] [-o output] [-s sparse] "
	       "[-p progress] [-h help]\n");
	return -EINVAL;
}

/* fill: allocate every block of the image, keeping its content (sectors
 * inherited from a parent are copied in, as blktap's read-then-write). */
int vu_fill(int argc, char **argv)
{
	const char *name = NULL;
	int ch, err = 0;
	while ((ch = getopt(argc, argv, "n:bftBh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'b': case 'f': case 't': case 'B': break;
		default: goto usage;
		}
	}
	if (!name || optind != argc)
		goto usage;
	vhd_t *v = vhd_open(name, VHD_OPEN_RDWR);
	if (!v) {
		err = vu_lib_errno();
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	struct vhd_info info;
	vhd_get_info(v, &info);
	uint64_t step = info.block_size ? info.block_size : 1u << 20;
	uint8_t *buf = malloc(step);
	if (!buf)
		err = -ENOMEM;
	for (uint64_t off = 0; !err && info.type != VHD_TYPE_FIXED && off < info.virtual_size;
	     off += step) {
		uint64_t n = info.virtual_size - off < step ? info.virtual_size - off : step;
		if (vhd_pread(v, buf, n, off) || vhd_pwrite(v, buf, n, off))
			err = vu_lib_errno();
	}
	free(buf);
	if (err)
		printf("error writing %s: %d\n", name, err);
	if (vhd_close(v) && !err)
		err = vu_lib_errno();
	return err;
usage:
	printf("options: <-n name> [-h help]\n");
	return -EINVAL;
}
