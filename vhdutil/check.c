/* check.c - `vhd-util check`: blktap's checks, in blktap's order,
 * stopping at the first problem with blktap's message, then dumping the
 * metadata as `vhd-util read -p` does.
 *
 * Fixed here (see the man page): the BAT overlap test is O(n log n) instead
 * of O(n^2) (same message: the first block in BAT order that overlaps, and
 * the first block it overlaps); `-b` finds data in any byte of a sector
 * whose bitmap bit is clear (blktap misses sectors whose first byte is not
 * zero).  -b and -s read each allocated block right after its BAT checks,
 * as blktap does; -s keeps one bitmap per allocated block, not one bit per
 * sector of the whole disk. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vhdutil.h"

/* -s: what one image holds, collected while its BAT is checked. */
struct image_stats {
	char *name;
	uint32_t blocks, spb;
	uint8_t **maps;                 /* sector bitmap of each allocated block */
	uint64_t allocated, written;    /* sectors */
};

struct check_opts {
	bool ignore_footer;   /* -i: an invalid primary footer, use the backup */
	bool ignore_uuids;    /* -I */
	bool ignore_time;     /* -t */
	bool bitmaps;         /* -b */
	bool no_overlap;      /* -B */
	bool stats;           /* -s */
	bool primary_missing; /* set by the footer check (-i) */
	struct image_stats *images;   /* -s: one per image checked */
	size_t nimages;
};

static int print_err(int err, const char *fmt, const char *what)
{
	printf(fmt, what);
	return err;
}

static int check_backup(struct vu_ctx *c, uint8_t *primary_raw, const struct check_opts *o,
                        struct vhd_footer *out)
{
	uint8_t raw[FOOTER_SIZE];
	struct vhd_footer b;
	const char *msg;
	int err = vu_pread(c, raw, FOOTER_SIZE, 0);
	if (err) {
		printf("error reading backup footer: %d\n", err);
		return err;
	}
	footer_decode(&b, raw);
	if ((msg = footer_invalid(&b, true, !o->ignore_time)))
		return print_err(-EINVAL, "backup footer invalid: %s\n", msg);
	if (memcmp(primary_raw, raw, FOOTER_SIZE)) {
		if (!o->ignore_footer && !footer_copies_match(primary_raw, raw)) {
			printf("primary and backup footers do not match\n");
			return -EINVAL;
		}
		if (o->ignore_footer)   /* blktap: -i takes the backup */
			memcpy(primary_raw, raw, FOOTER_SIZE);
	}
	footer_decode(out, primary_raw);
	return 0;
}

static int check_footer(struct vu_ctx *c, struct check_opts *o, struct vhd_footer *out)
{
	uint8_t raw[FOOTER_SIZE] = { 0 };
	uint64_t len = c->size % SECTOR ? SECTOR - 1 : SECTOR;
	const char *msg;
	if (c->size < len) {
		printf("error calculating end of file: %d\n", -EINVAL);
		return -EINVAL;
	}
	if (vu_pread(c, raw, len, c->size - len)) {
		printf("error reading primary footer: %d\n", -EIO);
		return -EIO;
	}
	footer_decode(out, raw);
	msg = footer_invalid(out, true, !o->ignore_time);
	o->primary_missing = msg != NULL;
	if (msg && !o->ignore_footer)
		return print_err(-EINVAL, "primary footer invalid: %s\n", msg);
	if (!msg && out->type == VHD_TYPE_FIXED)
		return 0;
	return check_backup(c, raw, o, out);
}

/* Where blktap's tests want metadata to end: a footer before the end of
 * the file (its size as it is, not rounded). */
static uint64_t footer_limit(const struct vu_ctx *c)
{
	return c->size < FOOTER_SIZE ? 0 : c->size - FOOTER_SIZE;
}

static const char *header_problem(const struct vhd_header *h, const struct vu_ctx *c)
{
	struct rule_input in = { .header = h, .limit = footer_limit(c) };
	return rule_first_broken(&header_rules, &in, RULE_BLKTAP, 0);
}

static int check_header(struct vu_ctx *c, const struct vhd_footer *f)
{
	uint8_t raw[HEADER_SIZE];
	struct vhd_header h;
	const char *msg;
	int err = f->data_offset > c->size ? -EIO : vu_pread(c, raw, HEADER_SIZE, f->data_offset);
	if (err) {
		printf("error reading header: %d\n", err);
		return err;
	}
	header_decode(&h, raw);
	if ((msg = header_problem(&h, c)))
		return print_err(-EINVAL, "header is invalid: %s\n", msg);
	return 0;
}

static const char *differencing_problem(const struct vu_ctx *c, const struct check_opts *o)
{
	struct rule_input in = { .footer = &c->footer, .header = &c->header, .now = rule_now() };
	return rule_first_broken(&parent_rules, &in, RULE_BLKTAP, o->ignore_time ? RULE_CLOCK : 0);
}

static bool near(uint32_t a, uint32_t b, uint32_t span)
{
	return (a > b ? a - b : b - a) < span;
}

/* overlaps[i]: block i overlaps another; found by sorting, O(n log n). */
static bool *find_overlaps(const struct vu_ctx *c, uint32_t blocks, uint32_t span)
{
	size_t n;
	struct bat_extent *e = bat_by_offset(c->bat, blocks, NULL, &n);
	bool *overlaps = calloc((size_t)blocks + 1, 1);
	if (!e || !overlaps) {
		free(e);
		free(overlaps);
		return NULL;
	}
	for (size_t k = 1; k < n; k++)
		if (extents_overlap(&e[k - 1], &e[k], span))
			overlaps[e[k - 1].block] = overlaps[e[k].block] = true;
	free(e);
	return overlaps;
}

static int report_overlap(const struct vu_ctx *c, uint32_t i, uint32_t blocks, uint32_t span)
{
	for (uint32_t j = 0; j < blocks; j++) {
		if (j == i || c->bat[j] == BAT_UNUSED || !near(c->bat[i], c->bat[j], span))
			continue;
		printf("block %u (offset 0x%x) clobbers block %u (offset 0x%x)\n", i, c->bat[i], j,
		       c->bat[j]);
		break;
	}
	return -EINVAL;
}

/* -b and -s, block I (allocated): count the sectors written (-s) and
 * report every sector of the block holding data where its bitmap bit is
 * clear (-b; any byte of the sector, where blktap looks at the first). */
static int check_block_data(struct vu_ctx *c, const struct check_opts *o,
                            struct image_stats *st, uint32_t i)
{
	size_t bm = (size_t)c->bm_secs * SECTOR;
	uint64_t off = (uint64_t)c->bat[i] * SECTOR;
	uint8_t *map = malloc(bm), *data = NULL;
	int err = map ? vu_pread(c, map, bm, off) : -ENOMEM;
	if (err) {
		printf("error reading bitmap 0x%x\n", i);
		goto out;
	}
	if (o->bitmaps && (!(data = malloc(c->header.block_size)) ||
	                   vu_pread(c, data, c->header.block_size, off + bm))) {
		printf("error reading data block 0x%x\n", i);
		err = data ? -EIO : -ENOMEM;
		goto out;
	}
	for (uint32_t s = 0; s < c->spb; s++) {
		bool bit = bit_test(map, s);
		if (st)
			st->written += bit;
		if (data && !bit && !is_zero(data + (size_t)s * SECTOR, SECTOR)) {
			printf("sector 0x%x of block 0x%x has data where bitmap is clear\n", s, i);
			err = -EINVAL;
		}
	}
	if (st) {
		st->maps[i] = map;
		map = NULL;
	}
out:
	free(map);
	free(data);
	return err;
}

static struct image_stats *stats_add(struct check_opts *o, const struct vu_ctx *c)
{
	struct image_stats *im = realloc(o->images, (o->nimages + 1) * sizeof *im);
	if (!im)
		return NULL;
	o->images = im;
	im += o->nimages;
	*im = (struct image_stats){ .name = strdup(c->file), .blocks = c->header.max_bat_entries,
	                            .spb = c->spb };
	im->maps = calloc((size_t)im->blocks + 1, sizeof *im->maps);
	if (!im->name || !im->maps) {
		free(im->name);
		free(im->maps);
		return NULL;
	}
	o->nimages++;
	return im;
}

/* One allocated block's place in the file: not in the metadata, ending
 * before the footer (with -i, a block may end where a lost primary footer
 * was), clear of every other block (unless -B). */
static int check_block_place(const struct vu_ctx *c, const struct check_opts *o, uint32_t i,
                             uint64_t eoh, uint64_t eof, const bool *overlaps)
{
	uint32_t span = c->spb + c->bm_secs;
	bool lost_footer = o->primary_missing && o->ignore_footer;
	struct rule_input in = { .block_offset = c->bat[i], .data_start = eoh,
	                         .data_limit = eof + lost_footer, .span = span };
	const char *why = rule_first_broken(&block_rules, &in, RULE_BLKTAP, 0);
	if (why) {
		printf("block %u (offset 0x%x) %s\n", i, c->bat[i], why);
		return -EINVAL;
	}
	if (overlaps && overlaps[i])
		return report_overlap(c, i, (uint32_t)(c->footer.curr_size / c->header.block_size),
		                      span);
	return 0;
}

static int bat_limits(struct vu_ctx *c, uint64_t *eoh, uint64_t *eof)
{
	int err;
	*eof = c->size;
	if (*eof % SECTOR) {
		if (*eof % SECTOR != SECTOR - 1) {
			printf("invalid file size: 0x%" PRIx64 "\n", *eof);
			return -EINVAL;
		}
		++*eof;
	}
	if ((err = vu_get_bat(c))) {
		printf("error reading bat: %d\n", err);
		return err;
	}
	if ((err = vu_end_of_headers(c, eoh))) {
		printf("error calculating end of metadata: %d\n", err);
		return err;
	}
	*eof = (*eof - FOOTER_SIZE) / SECTOR;
	*eoh /= SECTOR;
	return 0;
}

static int check_bat(struct vu_ctx *c, struct check_opts *o)
{
	struct image_stats *st = NULL;
	uint64_t eof, eoh;
	bool *overlaps = NULL;
	int err;
	if (o->stats && !(st = stats_add(o, c))) {
		printf("failed to allocate stats for %s\n", c->file);
		return -ENOMEM;
	}
	if ((err = bat_limits(c, &eoh, &eof)))
		return err;
	uint64_t blocks = c->footer.curr_size / c->header.block_size;
	if (blocks > c->header.max_bat_entries) {
		printf("VHD size (%" PRIu64 " blocks) exceeds BAT size (%u)\n", blocks,
		       c->header.max_bat_entries);
		return -EINVAL;
	}
	if (!o->no_overlap &&
	    !(overlaps = find_overlaps(c, (uint32_t)blocks, c->spb + c->bm_secs)))
		return -ENOMEM;
	for (uint32_t i = 0; !err && i < blocks; i++) {
		if (c->bat[i] == BAT_UNUSED)
			continue;
		err = check_block_place(c, o, i, eoh, eof, overlaps);
		if (!err && (o->bitmaps || o->stats)) {
			if (st)
				st->allocated += c->spb;
			err = check_block_data(c, o, st, i);
		}
	}
	free(overlaps);
	return err;
}

static const char *batmap_problem(struct vu_ctx *c)
{
	struct rule_input in = { .header = &c->header, .batmap = &c->batmap,
	                         .limit = footer_limit(c), .batmap_sum_known = true,
	                         .batmap_sum = vu_batmap_checksum(c) };
	return rule_first_broken(&batmap_rules, &in, RULE_BLKTAP, 0);
}

static int check_batmap(struct vu_ctx *c)
{
	const char *msg;
	int err;
	if ((err = vu_get_bat(c))) {
		printf("error reading bat: %d\n", err);
		return err;
	}
	if ((err = vu_get_batmap(c))) {
		printf("error reading batmap: %d\n", err);
		return err;
	}
	if ((msg = batmap_problem(c)))
		return print_err(-EINVAL, "batmap is invalid: %s\n", msg);
	for (uint64_t i = 0; i < c->footer.curr_size >> 21; i++) {
		if (vu_batmap_test(c, i) && (i >= c->header.max_bat_entries || c->bat[i] == BAT_UNUSED)) {
			printf("batmap shows unallocated block %u full\n", (unsigned)i);
			return -EINVAL;
		}
	}
	return 0;
}

static const char *locator_problem(struct vu_ctx *c, const struct vhd_locator *l)
{
	struct rule_input in = { .locator = l, .limit = footer_limit(c) };
	return rule_first_broken(&locator_rules, &in, RULE_BLKTAP, 0);
}

static const char *parent_problem(struct vu_ctx *c, const char *location, bool ignore_uuids)
{
	struct vu_ctx p;
	if (uuid_is_nil(c->header.parent_uuid))
		return NULL;   /* a raw parent: blktap checks nothing of it */
	if (ignore_uuids)   /* blktap: -I does not even open the parent */
		return NULL;
	if (vu_open(&p, location, VU_OPEN_IGNORE_DISABLED))
		return "error opening parent";
	bool differ = memcmp(c->header.parent_uuid, p.footer.uuid, 16) != 0;
	vu_close(&p);
	return differ ? "invalid parent uuid" : NULL;
}

/* One locator: 0 when it resolves to the right parent, 1 when it is of a
 * kind that is not followed, or -errno after printing why. */
static int check_locator(struct vu_ctx *c, int i, const char *pname, bool ignore_uuids)
{
	const struct vhd_locator *l = &c->header.loc[i];
	char *ppath = NULL, *location = NULL;
	const char *msg;
	int err;
	if (l->code != LOC_MACX && l->code != LOC_W2RU && l->code != LOC_W2KU)
		return 1;
	if ((err = vu_locator_read(c, l, &ppath))) {
		printf("error reading parent locator %d: %d\n", i, err);
		return err;
	}
	char *copy = strdup(ppath);
	const char *file = copy ? basename(copy) : "";
	if (strcmp(pname, file)) {
		printf("parent locator %d name (%s) does not match header name (%s)\n", i, file,
		       pname);
		err = -EINVAL;
	} else if ((err = vu_find_parent(c, ppath, &location))) {
		printf("error resolving %s: %d\n", ppath, err);
	} else if ((msg = parent_problem(c, location, ignore_uuids))) {
		printf("invalid parent %s: %s\n", location, msg);
		err = -EINVAL;
	}
	free(copy);
	free(ppath);
	free(location);
	return err;
}

static int check_parent_locators(struct vu_ctx *c, bool ignore_uuids)
{
	char *pname;
	int err, found = 0, seen[8] = { 0 };
	static const uint32_t codes[] = { LOC_MACX, 0x4D616320u, LOC_W2KU, LOC_W2RU,
	                                  0x57693272u, 0x5769326Bu };
	if ((err = vu_parent_name(&c->header, &pname))) {
		printf("error decoding parent name: %d\n", err);
		return err;
	}
	for (int i = 0; i < LOC_COUNT && !err; i++) {
		const struct vhd_locator *l = &c->header.loc[i];
		const char *msg = locator_problem(c, l);
		if (msg) {
			printf("invalid parent locator %d: %s\n", i, msg);
			err = -EINVAL;
			break;
		}
		if (!l->code)
			continue;
		for (int k = 0; k < 6; k++) {
			if (codes[k] == l->code && seen[k]++) {
				printf("duplicate platform code in locator %d: 0x%x\n", i, l->code);
				err = -EINVAL;
			}
		}
		int r = err ? err : check_locator(c, i, pname, ignore_uuids);
		if (r < 0)
			err = r;
		found += r == 0;
	}
	if (!err && !found) {
		printf("could not find parent %s\n", pname);
		err = -EINVAL;
	}
	free(pname);
	return err;
}

static int check_dynamic(struct vu_ctx *c, const char *name, struct check_opts *o)
{
	const char *msg = differencing_problem(c, o);
	int err;
	if (msg)
		return print_err(-EINVAL, "differencing header is invalid: %s\n", msg);
	if ((err = check_bat(c, o)))
		return err;
	if (vu_has_batmap(c) && (err = check_batmap(c)))
		return err;
	if (c->footer.type == VHD_TYPE_DIFF && (err = check_parent_locators(c, o->ignore_uuids)))
		return err;
	if (!o->stats)   /* blktap: -s prints statistics instead */
		printf("%s is valid\n", name);
	return 0;
}

static int check_vhd(const char *name, struct check_opts *o)
{
	struct stat st;
	struct vu_ctx raw = { .fd = -1 }, c = { .fd = -1 };
	struct vhd_footer footer;
	bool blk;
	int err;

	if (stat(name, &st) < 0) {
		printf("cannot stat %s: %d\n", name, errno);
		return -errno;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		printf("%s is not a regular file or block device\n", name);
		return -EINVAL;
	}
	raw.fd = open(name, O_RDONLY | O_CLOEXEC);
	if (raw.fd < 0) {
		err = -errno;
		printf("error opening %s\n", name);
		return err;
	}
	err = fd_size(raw.fd, name, &raw.size, &blk) ? -EIO : check_footer(&raw, o, &footer);
	if (err || (footer.type != VHD_TYPE_DYNAMIC && footer.type != VHD_TYPE_DIFF))
		goto out;
	if ((err = check_header(&raw, &footer)))
		goto out;
	if ((err = vu_open(&c, name, VU_OPEN_IGNORE_DISABLED)))
		goto out;
	err = check_dynamic(&c, name, o);
	vu_close(&c);
out:
	close(raw.fd);
	if (err) {
		printf("%s appears invalid; dumping metadata\n", name);
		vu_read_print(name);
	}
	return err;
}

/* blktap follows parents for ever: a loop of locators would hang it (and
 * grow -s's statistics without end), so a chain stops at
 * VHD_MAX_CHAIN_DEPTH files with -ELOOP, as query -d. */
static int check_parents(const char *name, struct check_opts *o)
{
	char *cur = strdup(name), *parent;
	struct vu_ctx c;
	int err = cur ? 0 : -ENOMEM, depth = 1;
	while (!err) {
		if (depth++ >= VHD_MAX_CHAIN_DEPTH) {
			err = -ELOOP;
			break;
		}
		if ((err = vu_open(&c, cur, VU_OPEN_IGNORE_DISABLED)))
			break;
		if (c.footer.type != VHD_TYPE_DIFF || uuid_is_nil(c.header.parent_uuid)) {
			vu_close(&c);   /* a raw parent ends the chain */
			break;
		}
		err = vu_parent_get(&c, &parent);
		vu_close(&c);
		if (err) {
			printf("error getting parent: %d\n", err);
			break;
		}
		free(cur);
		cur = parent;
		err = check_vhd(cur, o);
	}
	if (err)
		printf("error checking parents: %d\n", err);
	free(cur);
	return err;
}

/* -s, blktap's figures: for the last image checked (the oldest ancestor
 * with -p) the sectors allocated and written; then for each image towards
 * the first, also the written sectors its parent lacks and those no older
 * image has.  Percentages are computed in single precision, as blktap. */
static double pct(uint64_t num, uint64_t den)
{
	return den ? (double)((float)num / (float)den) * 100.0 : 0.0;
}

static bool stats_bit(const struct image_stats *im, uint64_t sector)
{
	uint64_t blk = sector / im->spb;
	return blk < im->blocks && im->maps[blk] && bit_test(im->maps[blk], sector % im->spb);
}

static const char *base_name(const char *path)
{
	const char *p = strrchr(path, '/');
	return p ? p + 1 : path;
}

static void print_stats(const struct check_opts *o)
{
	if (!o->nimages)
		return;
	const struct image_stats *head = &o->images[o->nimages - 1];
	uint64_t secs = (uint64_t)head->spb * head->blocks;
	printf("%s: secs allocated: 0x%" PRIx64 " secs written: 0x%" PRIx64 " (%.2f%%)\n",
	       base_name(head->name), head->allocated, head->written,
	       pct(head->written, head->allocated));
	for (size_t k = o->nimages - 1; k-- > 0;) {
		const struct image_stats *cur = &o->images[k], *prev = cur + 1;
		uint64_t up = 0, uc = 0;
		for (uint64_t i = 0; i < secs; i++) {
			uint64_t blk = i / cur->spb;
			if (blk >= cur->blocks || !cur->maps[blk]) {   /* skip the unallocated block */
				i = (blk + 1) * cur->spb - 1;
				continue;
			}
			if (!stats_bit(cur, i))
				continue;
			up += !stats_bit(prev, i);
			bool older = false;
			for (size_t a = k + 1; a < o->nimages && !older; a++)
				older = stats_bit(&o->images[a], i);
			uc += !older;
		}
		printf("%s: secs allocated: 0x%" PRIx64 " secs written: 0x%" PRIx64
		       " (%.2f%%) secs not in parent: 0x%" PRIx64 " (%.2f%%)"
		       " secs not in ancestors: 0x%" PRIx64 " (%.2f%%)\n",
		       base_name(cur->name), cur->allocated, cur->written,
		       pct(cur->written, cur->allocated), up, pct(up, cur->written), uc,
		       pct(uc, cur->written));
	}
}

static void free_stats(struct check_opts *o)
{
	for (size_t k = 0; k < o->nimages; k++) {
		for (uint32_t b = 0; b < o->images[k].blocks; b++)
			free(o->images[k].maps[b]);
		free(o->images[k].maps);
		free(o->images[k].name);
	}
	free(o->images);
}

static int check_usage(int err)
{
	printf("options: -n <file> [-i ignore missing primary footers] "
	       "[-I ignore parent uuids] [-t ignore timestamps] "
	       "[-B do not check BAT for overlapping (precludes -s, -b)] "
	       "[-p check parents] [-b check bitmaps] [-s stats] [-h help]\n");
	return err;
}

int vu_check(int argc, char **argv)
{
	struct check_opts o = { 0 };
	const char *name = NULL;
	bool parents = false;
	int ch;
	while ((ch = getopt(argc, argv, "n:iItpbBsh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'i': o.ignore_footer = true; break;
		case 'I': o.ignore_uuids = true; break;
		case 't': o.ignore_time = true; break;
		case 'p': parents = true; break;
		case 'b': o.bitmaps = true; break;
		case 'B': o.no_overlap = true; break;
		case 's': o.stats = true; break;
		case 'h': return check_usage(0);
		default: return check_usage(-EINVAL);
		}
	}
	if (!name || optind != argc || ((o.stats || o.bitmaps) && o.no_overlap))
		return check_usage(-EINVAL);
	int err = check_vhd(name, &o);
	if (!err) {
		if (parents)
			err = check_parents(name, &o);
		print_stats(&o);   /* blktap prints them even when a parent fails */
	}
	free_stats(&o);
	return err;
}
