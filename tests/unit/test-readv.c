/* test-readv.c - the planned chain read (lib/readv.c): runs of one file
 * joined into one preadv across a block boundary and around another
 * layer's writes, gaps too large to join, blocks placed out of order,
 * holes, a raw parent, more runs than one plan holds, cold reads (the
 * files dropped from the page cache) and writes or trims between reads
 * that change which layer holds a sector.  Each case builds a 3-level
 * chain base <- mid <- leaf of 8 MiB (2 MiB blocks), applies its writes
 * and steps, and after every read compares the bytes with a model of the
 * layers, and the number of preadv spans where the case says it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"
#include "vhdkit.h"

#define DISK (8u << 20)
#define BLK (2u << 20)
#define K 1024u
#define LEVELS 3
#define MAX_STEPS 8

enum kind { END, WRITE, READ, TRIM, DROP, MANY };

struct step {
	enum kind kind;
	int level;            /* WRITE before the chain is opened: 0 base, 1 mid,
	                         2 leaf; after an open (a READ came first): leaf */
	uint32_t off, len;
	int spans;            /* READ: expected preadv spans, -1 not checked */
};

struct tcase {
	const char *name;
	int raw_base;         /* base is a raw file of RAW_BASE bytes */
	struct step steps[MAX_STEPS];
};

static const struct tcase cases[] = {
	{ "two blocks of one file, one span across the bitmap between them", 0, {
		{ WRITE, 0, 0, 2 * BLK, 0 },
		{ READ, 0, BLK / 2, BLK, 1 } } },
	{ "a layer change in the middle of a run: base joined around it", 0, {
		{ WRITE, 0, 0, BLK, 0 },
		{ WRITE, 2, 64 * K, 4 * K, 0 },
		{ READ, 0, 0, 128 * K, 2 } } },
	{ "a gap over the join limit: two spans of the base", 0, {
		{ WRITE, 0, 0, BLK, 0 },
		{ WRITE, 1, 64 * K, 64 * K, 0 },
		{ READ, 0, 0, 256 * K, 3 } } },
	{ "blocks placed out of order, runs across three layers", 0, {
		{ WRITE, 0, BLK, BLK, 0 },
		{ WRITE, 0, 0, BLK, 0 },
		{ WRITE, 1, BLK - 8 * K, 16 * K, 0 },
		{ WRITE, 2, BLK - 4 * K, 4 * K, 0 },
		{ READ, 0, 0, 2 * BLK, -1 },
		{ READ, 0, BLK - 64 * K, 128 * K, -1 } } },
	{ "holes read as zeros, no read", 0, {
		{ WRITE, 1, 3 * BLK, 4 * K, 0 },
		{ READ, 0, 0, 2 * BLK, 0 },
		{ READ, 0, 3 * BLK - 4 * K, 12 * K, 1 } } },
	{ "a raw parent shorter than the disk", 3 * BLK + 100 * 512, {
		{ WRITE, 1, 64 * K, 8 * K, 0 },
		{ WRITE, 2, 3 * BLK, 4 * K, 0 },
		{ READ, 0, 0, DISK, -1 } } },
	{ "more runs than one plan holds", 0, {
		{ WRITE, 0, 0, DISK, 0 },
		{ MANY, 1, 0, 0, 0 },
		{ READ, 0, 0, DISK, -1 },
		{ DROP, 0, 0, 0, 0 },
		{ READ, 0, 0, DISK, -1 } } },
	{ "cold: every file dropped from the page cache", 0, {
		{ WRITE, 0, 0, 3 * BLK, 0 },
		{ WRITE, 1, 100 * K, 20 * K, 0 },
		{ WRITE, 2, BLK + 4 * K, 40 * K, 0 },
		{ DROP, 0, 0, 0, 0 },
		{ READ, 0, 0, 3 * BLK, -1 } } },
	{ "a write and a trim between reads change the layer of a sector", 0, {
		{ WRITE, 0, 0, BLK, 0 },
		{ WRITE, 1, 32 * K, 32 * K, 0 },
		{ READ, 0, 0, 128 * K, 3 },
		{ WRITE, 2, 40 * K, 8 * K, 0 },
		{ READ, 0, 0, 128 * K, 4 },
		{ TRIM, 2, 40 * K, 8 * K, 0 },
		{ READ, 0, 0, 128 * K, 3 } } },
};

struct model {
	uint8_t *data[LEVELS];
	uint8_t *has[LEVELS];    /* per sector */
	char path[LEVELS][4096], raw[4096];
	unsigned fill;
};

static uint8_t *view(const struct model *m)
{
	uint8_t *out = calloc(1, DISK);
	for (uint32_t s = 0; out && s < DISK / SECTOR; s++)
		for (int l = LEVELS - 1; l >= 0; l--)
			if (m->has[l][s]) {
				memcpy(out + (size_t)s * SECTOR, m->data[l] + (size_t)s * SECTOR, SECTOR);
				break;
			}
	return out;
}

/* Write [OFF, OFF+LEN) of level L through H (or the raw base file). */
static int write_level(struct model *m, vhd_t *h, int l, uint32_t off, uint32_t len)
{
	uint8_t *buf = malloc(len);
	if (!buf)
		return -1;
	m->fill++;
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(m->fill * 37 + i / SECTOR + 1);
	int rc;
	if (!h) {
		int fd = open(m->raw, O_WRONLY);
		rc = fd < 0 || pwrite(fd, buf, len, off) != (ssize_t)len ? -1 : 0;
		if (fd >= 0)
			close(fd);
	} else {
		rc = vhd_pwrite(h, buf, len, off);
	}
	memcpy(m->data[l] + off, buf, len);
	memset(m->has[l] + off / SECTOR, 1, len / SECTOR);
	free(buf);
	return rc;
}

static int write_before_open(struct model *m, const struct tcase *c, int l, uint32_t off,
                             uint32_t len)
{
	if (l == 0 && c->raw_base)
		return write_level(m, NULL, 0, off, len);
	vhd_t *h = vhd_open(m->path[l], VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT);
	if (!h)
		return -1;
	int rc = write_level(m, h, l, off, len);
	return vhd_close(h) || rc ? -1 : 0;
}

static void drop_caches(const struct model *m)
{
	for (int l = 0; l < LEVELS; l++) {
		const char *p = l == 0 && m->raw[0] ? m->raw : m->path[l];
		int fd = open(p, O_RDONLY);
		if (fd >= 0) {
			fdatasync(fd);
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
}

static void check_read(const struct model *m, vhd_t *h, const struct tcase *c,
                       const struct step *s)
{
	uint8_t *want = view(m), *got = malloc(s->len);
	unsigned spans = 0;
	int rc = got ? vhd_read_planned(h, got, s->off / SECTOR, s->len / SECTOR, &spans) : -1;
	CHECK(rc == 0, "%s: read of %u at %u: %s", c->name, s->len, s->off, vhd_get_error());
	if (!rc && want) {
		size_t bad = 0;
		while (bad < s->len && got[bad] == want[s->off + bad])
			bad++;
		CHECK(bad == s->len, "%s: read of %u at %u differs from the model at byte %zu",
		      c->name, s->len, s->off, s->off + bad);
		CHECK(s->spans < 0 || spans == (unsigned)s->spans,
		      "%s: read of %u at %u made %u spans, not %d", c->name, s->len, s->off, spans,
		      s->spans);
	}
	/* vhd_pread, the public call, gives the same bytes */
	CHECK(got && !vhd_pread(h, got, s->len, s->off) && want &&
	      !memcmp(got, want + s->off, s->len), "%s: vhd_pread of %u at %u", c->name, s->len,
	      s->off);
	free(got);
	free(want);
}

/* 400 writes of 4 KiB every 16 KiB in the mid layer: ~800 runs. */
static int write_many(struct model *m, int l)
{
	vhd_t *h = vhd_open(m->path[l], VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT);
	int rc = h ? 0 : -1;
	for (uint32_t i = 0; i < 400 && !rc; i++)
		rc = write_level(m, h, l, i * 16 * K + (i % 3) * 4 * K, 4 * K);
	return (h && vhd_close(h)) || rc ? -1 : 0;
}

static int make_chain(struct model *m, const char *dir, const struct tcase *c)
{
	for (int l = 0; l < LEVELS; l++)
		snprintf(m->path[l], sizeof m->path[l], "%s/l%d.vhd", dir, l);
	m->raw[0] = 0;
	if (c->raw_base) {
		snprintf(m->raw, sizeof m->raw, "%s/base.raw", dir);
		int fd = open(m->raw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		if (fd < 0 || ftruncate(fd, c->raw_base) || close(fd))
			return -1;
		if (vhd_snapshot_raw(m->raw, m->path[1], DISK) < 0)
			return -1;
	} else if (vhd_create(m->path[0], DISK, 0) < 0 ||
	           vhd_snapshot(m->path[0], m->path[1], 0) < 0) {
		return -1;
	}
	return vhd_snapshot(m->path[1], m->path[2], 0) < 0 ? -1 : 0;
}

static void run_case(const struct tcase *c, const char *dir)
{
	struct model m = { .fill = 0 };
	vhd_t *h = NULL;
	for (int l = 0; l < LEVELS; l++) {
		m.data[l] = calloc(1, DISK);
		m.has[l] = calloc(1, DISK / SECTOR);
	}
	int ok = make_chain(&m, dir, c) == 0;
	CHECK(ok, "%s: making the chain: %s", c->name, vhd_get_error());
	for (const struct step *s = c->steps; ok && s->kind != END; s++) {
		int rc = 0;
		if (s->kind == READ && !h && !(h = vhd_open(m.path[2], VHD_OPEN_RDWR)))
			rc = -1;
		else if (s->kind == READ)
			check_read(&m, h, c, s);
		else if (s->kind == WRITE)
			rc = h ? write_level(&m, h, 2, s->off, s->len)
			       : write_before_open(&m, c, s->level, s->off, s->len);
		else if (s->kind == MANY)
			rc = write_many(&m, s->level);
		else if (s->kind == DROP)
			drop_caches(&m);
		else if (s->kind == TRIM && !(rc = vhd_trim(h, s->len, s->off)))
			memset(m.has[2] + s->off / SECTOR, 0, s->len / SECTOR);
		CHECK(rc == 0, "%s: step %d: %s", c->name, (int)(s - c->steps), vhd_get_error());
		ok = rc == 0;
	}
	if (h)
		vhd_close(h);
	for (int l = 0; l < LEVELS; l++) {
		unlink(m.path[l]);
		free(m.data[l]);
		free(m.has[l]);
	}
	if (m.raw[0])
		unlink(m.raw);
	printf("  %s\n", c->name);
}

int main(void)
{
	char dir[] = "/tmp/test-readv-XXXXXX";
	if (!mkdtemp(dir))
		return perror("mkdtemp"), 1;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], dir);
	rmdir(dir);
	return unit_done("test-readv");
}
