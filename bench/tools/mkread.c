/* mkread.c - benchmark helper: a 3-level chain for the sequential read
 * benchmark, or a deep one (--levels).
 *   mkread [--size MiB] [--mid-share PERCENT] [--writes N] [--seed N] DIR
 *   mkread --levels N [--size MiB] [--share PERCENT] [--seed N] DIR
 * Makes DIR/base.vhd (every block written, hidden), DIR/mid.vhd (PERCENT of
 * the blocks, default 30, written whole, hidden) and DIR/leaf.vhd (N random
 * writes, default 1000, of 4 KiB to 1 MiB, roughly log-uniform sizes at
 * 4 KiB offsets).  The virtual size defaults to 1024 MiB.  Prints
 * "base=B mid=B leaf=B": the bytes present (bitmap bits set) in each file.
 * With --levels N: DIR/l0.vhd (every block written) and N-1 snapshots
 * l1..l<N-1>.vhd as a real SR grows them: each holds about PERCENT
 * (default 3) of the disk in scattered writes of 4 KiB to 64 KiB at 4 KiB
 * offsets, and one block in a hundred written whole; all but the leaf
 * hidden.  Prints "stored=B": the bytes present in all the files. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vhdkit.h"

#define BLOCK (2u << 20)
#define PAGE 4096u

/* positions: reproducible (--seed); data: any bytes but zeros */
static uint64_t next(void)
{
	return (uint64_t)random() << 31 | (uint64_t)random();
}

static void fill(uint8_t *buf, size_t n)
{
	if (getrandom(buf, n, 0) != (ssize_t)n)
		memset(buf, 0xA5, n);
}

static int die(const char *what)
{
	fprintf(stderr, "mkread: %s: %s\n", what, vhd_get_error());
	return -1;
}

static int add_run(uint64_t offset, uint64_t length, unsigned layer, void *opaque)
{
	(void)offset, (void)layer;
	*(uint64_t *)opaque += length;
	return 0;
}

static int present(const char *path, uint64_t *bytes)
{
	vhd_t *v = vhd_open(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT);
	*bytes = 0;
	if (!v || vhd_map(v, 0, add_run, bytes))
		return die(path);
	vhd_close(v);
	return 0;
}

/* Write whole blocks: all of them (PERCENT 100) or a random PERCENT. */
static int write_blocks(vhd_t *v, uint64_t size, unsigned percent, uint8_t *buf)
{
	uint32_t blocks = (uint32_t)(size / BLOCK);
	uint32_t *order = malloc(blocks * sizeof *order);
	if (!order)
		return -1;
	for (uint32_t i = 0; i < blocks; i++)
		order[i] = i;
	for (uint32_t i = blocks; i > 1; i--) {
		uint32_t j = (uint32_t)(next() % i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	uint32_t n = (uint32_t)((uint64_t)blocks * percent / 100);
	int rc = 0;
	for (uint32_t i = 0; i < n && !rc; i++) {
		fill(buf, BLOCK);
		rc = vhd_pwrite(v, buf, BLOCK, (uint64_t)order[i] * BLOCK);
	}
	free(order);
	return rc;
}

static int write_scattered(vhd_t *v, uint64_t size, unsigned writes, uint8_t *buf)
{
	for (unsigned i = 0; i < writes; i++) {
		/* a power of two from 4 KiB to 512 KiB, plus up to as much again */
		uint64_t octave = (uint64_t)PAGE << (next() % 8);
		uint64_t len = octave + next() % (octave / PAGE) * PAGE;
		uint64_t off = (next() % ((size - len) / PAGE + 1)) * PAGE;
		fill(buf, len);
		if (vhd_pwrite(v, buf, len, off))
			return -1;
	}
	return 0;
}

/* A deep chain's snapshot layer: small scattered writes up to SHARE
 * percent of the disk, and one block in a hundred written whole. */
static int write_snapshot_layer(vhd_t *v, uint64_t size, unsigned share, uint8_t *buf)
{
	if (write_blocks(v, size, 1, buf))
		return -1;
	for (uint64_t done = 0; done < size / 100 * share;) {
		uint64_t len = (1 + next() % 16) * PAGE;
		uint64_t off = (next() % ((size - len) / PAGE + 1)) * PAGE;
		fill(buf, len);
		if (vhd_pwrite(v, buf, len, off))
			return -1;
		done += len;
	}
	return 0;
}

/* Open PATH for writing, run the layer's writes, optionally hide it. */
static int make_layer(const char *path, uint64_t size, unsigned percent, unsigned writes,
                      int hide, uint8_t *buf)
{
	vhd_t *v = vhd_open(path, VHD_OPEN_RDWR);
	if (!v)
		return die(path);
	int rc = percent ? write_blocks(v, size, percent, buf) : write_scattered(v, size, writes, buf);
	if (!rc && hide)
		rc = vhd_set_hidden(v, 1);
	if (vhd_close(v) || rc)
		return die(path);
	return 0;
}

static int make_chain(const char *dir, uint64_t size, unsigned mid_share, unsigned writes)
{
	char base[4096], mid[4096], leaf[4096];
	snprintf(base, sizeof base, "%s/base.vhd", dir);
	snprintf(mid, sizeof mid, "%s/mid.vhd", dir);
	snprintf(leaf, sizeof leaf, "%s/leaf.vhd", dir);
	uint8_t *buf = malloc(BLOCK);
	int rc = -1;
	if (!buf)
		return -1;
	if (vhd_create(base, size, 0) < 0)
		die(base);
	else if (!make_layer(base, size, 100, 0, 1, buf) && vhd_snapshot(base, mid, 0) < 0)
		die(mid);
	else if (!make_layer(mid, size, mid_share, 0, 1, buf) && vhd_snapshot(mid, leaf, 0) < 0)
		die(leaf);
	else if (!make_layer(leaf, size, 0, writes, 0, buf))
		rc = 0;
	free(buf);
	uint64_t b, m, l;
	if (rc || present(base, &b) || present(mid, &m) || present(leaf, &l))
		return -1;
	printf("base=%llu mid=%llu leaf=%llu\n", (unsigned long long)b, (unsigned long long)m,
	       (unsigned long long)l);
	return 0;
}

static int make_deep_chain(const char *dir, uint64_t size, unsigned levels, unsigned share)
{
	uint8_t *buf = malloc(BLOCK);
	uint64_t stored = 0;
	int rc = buf ? 0 : -1;
	char path[4096], prev[4096];
	for (unsigned l = 0; l < levels && !rc; l++) {
		snprintf(path, sizeof path, "%s/l%u.vhd", dir, l);
		if (l ? vhd_snapshot(prev, path, 0) < 0 : vhd_create(path, size, 0) < 0) {
			rc = die(path);
			break;
		}
		vhd_t *v = vhd_open(path, VHD_OPEN_RDWR);
		if (!v) {
			rc = die(path);
			break;
		}
		rc = l ? write_snapshot_layer(v, size, share, buf) : write_blocks(v, size, 100, buf);
		if (!rc && l + 1 < levels)
			rc = vhd_set_hidden(v, 1);
		if (vhd_close(v) || rc)
			rc = die(path);
		uint64_t bytes;
		if (!rc && !(rc = present(path, &bytes)))
			stored += bytes;
		memcpy(prev, path, sizeof prev);
	}
	free(buf);
	if (!rc)
		printf("stored=%llu\n", (unsigned long long)stored);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"mid-share", required_argument, NULL, 'm'},
		{"writes", required_argument, NULL, 'w'},
		{"seed", required_argument, NULL, 'r'},
		{"levels", required_argument, NULL, 'l'},
		{"share", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	uint64_t size = 1ull << 30;
	unsigned mid_share = 30, writes = 1000, levels = 0, share = 3;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': size = strtoull(optarg, NULL, 0) << 20; break;
		case 'm': mid_share = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'w': writes = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'r': srandom((unsigned)strtoul(optarg, NULL, 0)); break;
		case 'l': levels = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'p': share = (unsigned)strtoul(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || size < BLOCK || size % BLOCK || !mid_share || mid_share > 100 ||
	    share > 100) {
		fprintf(stderr, "usage: mkread [--size MiB] [--mid-share PERCENT] [--writes N] "
		                "[--seed N] DIR\n       mkread --levels N [--size MiB] [--share PERCENT] "
		                "[--seed N] DIR\n");
		return 2;
	}
	if (levels)
		return make_deep_chain(argv[optind], size, levels, share) ? 1 : 0;
	return make_chain(argv[optind], size, mid_share, writes) ? 1 : 0;
}
