/* test-model.c - model-based random test of chain I/O.
 *
 * Builds a 3-level chain (base <- mid <- leaf) in a temporary directory and
 * keeps an in-memory model of what each level shows: for every sector, the
 * id of the last write made into that level (0 = none, so the level below
 * shows through).  Thousands of random sector-granular writes go into the
 * current leaf (the base first, then the mid, then the leaf); after every
 * batch the handles are closed and reopened and every level is compared
 * with the model: the whole disk, random ranges, vhd_is_zero, each file's
 * own extents (vhd_map) and the exactness of its bitmaps and batmap.
 *
 * Usage: test-model [--seed N] [--writes N]   (or VHDKIT_SEED=N)
 * The seed is printed first; rerun with it to replay a failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "vhdkit.h"

#define DISK_SIZE (64ull << 20)
#define DISK_SECTORS (DISK_SIZE / SECTOR)
#define BLOCK_SECTORS (VHD_DEFAULT_BLOCK_SIZE / SECTOR)
#define LEVELS 3
#define CHUNK_SECTORS 2048u   /* whole-disk comparison in 1 MiB reads */

static const char *level_name[LEVELS] = { "base.vhd", "mid.vhd", "leaf.vhd" };

struct model {
	uint32_t *id[LEVELS];     /* per level, per sector: write id, 0 = none */
	char path[LEVELS][4096];
	uint32_t next_id;
	uint64_t rng;
	unsigned long writes, sectors_written, checks;
	unsigned full_blocks[LEVELS];   /* at the last check */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: test-model: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void die_lib(const char *what)
{
	die("%s: %s", what, vhd_get_error());
}

/* ---- random numbers and data patterns ------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct model *m, uint64_t n)
{
	return splitmix(&m->rng) % n;
}

/* The content write ID puts in SECTOR: unique per (write, sector), never
 * all zeros (consecutive words differ). */
static void fill_sector(uint8_t *p, uint32_t id, uint64_t sector)
{
	uint64_t s = (uint64_t)id << 32 ^ sector;
	uint64_t w = splitmix(&s);
	for (unsigned i = 0; i < SECTOR / 8; i++, w += 0x9E3779B97F4A7C15ull)
		memcpy(p + 8 * i, &w, 8);
}

/* What LEVEL shows at SECTOR: the newest write at or below it. */
static uint32_t visible_id(const struct model *m, int level, uint64_t sector)
{
	for (int l = level; l >= 0; l--)
		if (m->id[l][sector])
			return m->id[l][sector];
	return 0;
}

static void expected(const struct model *m, int level, uint8_t *buf, uint64_t sector,
                     uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint32_t id = visible_id(m, level, sector + i);
		if (id)
			fill_sector(buf + i * SECTOR, id, sector + i);
		else
			memset(buf + i * SECTOR, 0, SECTOR);
	}
}

/* ---- writes ------------------------------------------------------- */

static void write_range(struct model *m, vhd_t *v, int level, uint64_t sector, uint64_t n)
{
	uint8_t *buf = calloc(n, SECTOR);
	if (!buf)
		die("out of memory");
	uint32_t id = ++m->next_id;
	for (uint64_t i = 0; i < n; i++)
		fill_sector(buf + i * SECTOR, id, sector + i);
	if (vhd_pwrite(v, buf, n * SECTOR, sector * SECTOR))
		die_lib("vhd_pwrite");
	for (uint64_t i = 0; i < n; i++)
		m->id[level][sector + i] = id;
	free(buf);
	m->writes++;
	m->sectors_written += n;
}

/* Mostly small writes, a third up to 300 sectors; a quarter start near a
 * block boundary so that they often cross it. */
static void random_write(struct model *m, vhd_t *v, int level)
{
	uint64_t n = rnd(m, 3) ? 1 + rnd(m, 16) : 1 + rnd(m, 300);
	uint64_t s;
	if (rnd(m, 4) == 0) {
		uint64_t boundary = (1 + rnd(m, DISK_SECTORS / BLOCK_SECTORS - 1)) * BLOCK_SECTORS;
		s = boundary - 1 - rnd(m, n);
	} else {
		s = rnd(m, DISK_SECTORS - n + 1);
	}
	write_range(m, v, level, s, n);
}

/* Fill every hole of one block of LEVEL with small writes, so that the
 * block becomes full by sector writes (the batmap bit must then be set),
 * or write a whole block in one go. */
static void complete_block(struct model *m, vhd_t *v, int level)
{
	uint64_t first = rnd(m, DISK_SECTORS / BLOCK_SECTORS) * BLOCK_SECTORS;
	if (rnd(m, 3) == 0) {
		write_range(m, v, level, first, BLOCK_SECTORS);
		return;
	}
	for (uint64_t s = first; s < first + BLOCK_SECTORS;) {
		if (m->id[level][s]) {
			s++;
			continue;
		}
		uint64_t e = s;
		while (e < first + BLOCK_SECTORS && !m->id[level][e] && e - s < 300)
			e++;
		write_range(m, v, level, s, e - s);
		s = e;
	}
}

/* ---- checks ------------------------------------------------------- */

static void compare(const struct model *m, vhd_t *v, int level, uint64_t sector, uint64_t n,
                    uint8_t *got, uint8_t *want)
{
	if (vhd_pread(v, got, n * SECTOR, sector * SECTOR))
		die_lib("vhd_pread");
	expected(m, level, want, sector, n);
	if (!memcmp(got, want, n * SECTOR))
		return;
	for (uint64_t i = 0; i < n; i++)
		if (memcmp(got + i * SECTOR, want + i * SECTOR, SECTOR))
			die("%s: sector %" PRIu64 " differs from the model (expected write %u%s)",
			    level_name[level], sector + i, visible_id(m, level, sector + i),
			    visible_id(m, level, sector + i) ? "" : ", i.e. zeros");
}

static void check_whole_disk(struct model *m, vhd_t *v, int level, uint8_t *got, uint8_t *want)
{
	for (uint64_t s = 0; s < DISK_SECTORS; s += CHUNK_SECTORS)
		compare(m, v, level, s, CHUNK_SECTORS, got, want);
	m->checks++;
}

static void check_random_ranges(struct model *m, vhd_t *v, int level, unsigned count,
                                 uint8_t *got, uint8_t *want)
{
	for (unsigned i = 0; i < count; i++) {
		uint64_t n = 1 + rnd(m, rnd(m, 2) ? 64 : CHUNK_SECTORS);
		uint64_t s = rnd(m, DISK_SECTORS - n + 1);
		compare(m, v, level, s, n, got, want);
		int zero = 1;
		for (uint64_t j = s; j < s + n && zero; j++)
			zero = !visible_id(m, level, j);
		int rc = vhd_is_zero(v, n * SECTOR, s * SECTOR);
		if (rc < 0)
			die_lib("vhd_is_zero");
		if (rc != zero)
			die("%s: vhd_is_zero(%" PRIu64 " sectors at %" PRIu64 ") = %d, model says %d",
			    level_name[level], n, s, rc, zero);
		m->checks++;
	}
}

/* vhd_map of one file (chain 0) must list exactly the sectors written into
 * that level, as maximal runs. */
struct map_walk {
	const struct model *m;
	int level;
	uint64_t next;   /* first sector not yet accounted for */
};

static uint64_t model_run_end(const uint32_t *ids, uint64_t s, int written)
{
	while (s < DISK_SECTORS && !ids[s] == !written)
		s++;
	return s;
}

static int map_cb(uint64_t offset, uint64_t length, unsigned layer, void *opaque)
{
	struct map_walk *w = opaque;
	const uint32_t *ids = w->m->id[w->level];
	uint64_t s = offset / SECTOR, e = (offset + length) / SECTOR;
	if (layer != 0 || offset % SECTOR || length % SECTOR || !length)
		die("%s: vhd_map run %" PRIu64 "+%" PRIu64 " layer %u is malformed",
		    level_name[w->level], offset, length, layer);
	if (model_run_end(ids, w->next, 0) != s)
		die("%s: vhd_map: run at sector %" PRIu64 ", but the model's next written "
		    "sector after %" PRIu64 " is %" PRIu64, level_name[w->level], s, w->next,
		    model_run_end(ids, w->next, 0));
	if (model_run_end(ids, s, 1) != e)
		die("%s: vhd_map: run %" PRIu64 "..%" PRIu64 ", model's written run ends at %" PRIu64,
		    level_name[w->level], s, e, model_run_end(ids, s, 1));
	w->next = e;
	return 0;
}

static void check_map(struct model *m, vhd_t *v, int level)
{
	struct map_walk w = { m, level, 0 };
	if (vhd_map(v, 0, map_cb, &w))
		die_lib("vhd_map");
	if (model_run_end(m->id[level], w.next, 0) != DISK_SECTORS)
		die("%s: vhd_map ends at sector %" PRIu64 ", but the model has data at %" PRIu64,
		    level_name[level], w.next, model_run_end(m->id[level], w.next, 0));
}

/* On disk: a block is allocated iff the model wrote into it, its bitmap
 * bits are the model's, and its batmap bit is set iff the bitmap is all
 * ones. */
static void check_bitmaps(struct model *m, int level)
{
	struct vhd *v = vhd_open_file(m->path[level], VHD_OPEN_RDONLY, false);
	if (!v)
		die_lib("vhd_open_file");
	if (!v->has_batmap)
		die("%s: no batmap", level_name[level]);
	const uint32_t *ids = m->id[level];
	m->full_blocks[level] = 0;
	for (uint32_t b = 0; b < DISK_SECTORS / BLOCK_SECTORS; b++) {
		uint64_t first = (uint64_t)b * BLOCK_SECTORS;
		uint64_t written = 0;
		for (uint64_t i = 0; i < BLOCK_SECTORS; i++)
			written += ids[first + i] != 0;
		bool batmap = bit_test(v->batmap, b);
		if (v->bat[b] == BAT_UNUSED) {
			if (written)
				die("%s: block %u has %" PRIu64 " written sectors but is not allocated",
				    level_name[level], b, written);
			if (batmap)
				die("%s: block %u is not allocated but its batmap bit is set",
				    level_name[level], b);
			continue;
		}
		uint8_t *map = vhd_block_bitmap(v, b);
		if (!map)
			die_lib("vhd_block_bitmap");
		for (uint64_t i = 0; i < BLOCK_SECTORS; i++)
			if (bit_test(map, i) != (ids[first + i] != 0))
				die("%s: block %u: bitmap bit %" PRIu64 " is %d, model says %d",
				    level_name[level], b, i, bit_test(map, i), ids[first + i] != 0);
		if (batmap != (written == BLOCK_SECTORS))
			die("%s: block %u: batmap bit %d, but %" PRIu64 " of %u sectors are present",
			    level_name[level], b, batmap, written, BLOCK_SECTORS);
		m->full_blocks[level] += batmap;
	}
	vhd_free(v);
}

static vhd_t *open_level(const struct model *m, int level, int flags)
{
	vhd_t *v = vhd_open(m->path[level], flags);
	if (!v)
		die_lib("vhd_open");
	if (vhd_chain_depth(v) != (unsigned)level + 1)
		die("%s: chain depth %u, expected %d", level_name[level], vhd_chain_depth(v),
		    level + 1);
	return v;
}

/* Every level from the top down, from freshly opened (on-disk) handles:
 * each lower level must still show its own content. */
static void check_levels(struct model *m, int top, uint8_t *got, uint8_t *want)
{
	for (int level = top; level >= 0; level--) {
		vhd_t *v = open_level(m, level, VHD_OPEN_RDONLY);
		check_whole_disk(m, v, level, got, want);
		check_random_ranges(m, v, level, 20, got, want);
		check_map(m, v, level);
		if (vhd_close(v))
			die_lib("vhd_close");
		check_bitmaps(m, level);
	}
}

/* ---- the run ------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: test-model [--seed N] [--writes N]\n"
	                "  VHDKIT_SEED=N also sets the seed (printed first, to replay a failure)\n");
	exit(2);
}

static void make_temp_dir(char *dir, size_t size)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, size, "%s/vhdkit-model.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir))
		die("mkdtemp %s: %s", dir, strerror(errno));
}

/* Removed at exit, also after a failure (VHDKIT_KEEP=1 keeps it). */
static char temp_dir[2048];
static const struct model *temp_model;

static void remove_temp_dir(void)
{
	if (!temp_model)
		return;
	if (getenv("VHDKIT_KEEP")) {
		fprintf(stderr, "test-model: kept %s\n", temp_dir);
		return;
	}
	for (int l = 0; l < LEVELS; l++)
		unlink(temp_model->path[l]);
	rmdir(temp_dir);
}

/* WRITES random writes into LEVEL (the leaf) in batches; after each batch
 * the leaf is reopened and every level checked. */
static void write_level(struct model *m, int level, unsigned long writes, uint8_t *got,
                        uint8_t *want)
{
	unsigned long done = 0;
	vhd_t *v = open_level(m, level, VHD_OPEN_RDWR);
	while (done < writes) {
		unsigned long batch = 50 + rnd(m, 350);
		for (unsigned long i = 0; i < batch && done < writes; i++, done++) {
			if (rnd(m, 200) == 0)
				complete_block(m, v, level);
			else
				random_write(m, v, level);
		}
		/* the live handle (caches) first, then what is on disk */
		check_random_ranges(m, v, level, 10, got, want);
		if (vhd_close(v))
			die_lib("vhd_close");
		check_levels(m, level, got, want);
		v = open_level(m, level, VHD_OPEN_RDWR);
	}
	if (vhd_close(v))
		die_lib("vhd_close");
}

int main(int argc, char **argv)
{
	struct model m = { 0 };
	uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
	unsigned long writes = 6000;
	const char *env = getenv("VHDKIT_SEED");
	if (env && *env)
		seed = strtoull(env, NULL, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--writes") && i + 1 < argc)
			writes = strtoul(argv[++i], NULL, 0);
		else
			usage();
	}
	printf("test-model: seed %" PRIu64 " (replay: VHDKIT_SEED=%" PRIu64 ")\n", seed, seed);
	fflush(stdout);
	m.rng = seed;

	make_temp_dir(temp_dir, sizeof temp_dir);
	temp_model = &m;
	atexit(remove_temp_dir);
	uint8_t *got = malloc(CHUNK_SECTORS * SECTOR), *want = malloc(CHUNK_SECTORS * SECTOR);
	if (!got || !want)
		die("out of memory");
	for (int l = 0; l < LEVELS; l++) {
		snprintf(m.path[l], sizeof m.path[l], "%s/%s", temp_dir, level_name[l]);
		if (!(m.id[l] = calloc(DISK_SECTORS, sizeof *m.id[l])))
			die("out of memory");
	}

	/* a quarter of the writes each into the base and the mid, half into the leaf */
	unsigned long share[LEVELS] = { writes / 4, writes / 4, writes - writes / 2 };
	if (vhd_create(m.path[0], DISK_SIZE, 0))
		die_lib("vhd_create");
	for (int l = 0; l < LEVELS; l++) {
		if (l && vhd_snapshot(m.path[l - 1], m.path[l], VHD_XEN_MAX_DEPTH))
			die_lib("vhd_snapshot");
		check_levels(&m, l, got, want);   /* a new level shows its parent */
		write_level(&m, l, share[l], got, want);
	}

	printf("ok: test-model: %lu writes (%lu sectors) into a %d-level chain of %llu MiB, "
	       "%lu comparisons with the model, bitmaps and batmap exact "
	       "(full blocks: base %u, mid %u, leaf %u)\n",
	       m.writes, m.sectors_written, LEVELS, DISK_SIZE >> 20, m.checks,
	       m.full_blocks[0], m.full_blocks[1], m.full_blocks[2]);
	for (int l = 0; l < LEVELS; l++)
		free(m.id[l]);
	free(got);
	free(want);
	return 0;
}
