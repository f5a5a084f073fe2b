/* mkchain.c - build a VHD chain shaped like a day of VM writes, fast, for
 * tests and benchmarks.
 *   mkchain [options] DIR
 *     --size SIZE        virtual size (default 4G)
 *     --base-data SIZE   data in the base, in full blocks spread evenly (1G)
 *     --levels N         differencing layers above the base (1)
 *     --writes N         random writes per layer (15000)
 *     --min SIZE --max SIZE   write sizes, 4 KiB multiples (4K, 64K)
 *     --touch-all        first write once into every block of each layer
 *     --seed N
 * Makes DIR/l0.vhd (hidden) .. DIR/lN.vhd (all hidden but the leaf) and
 * prints the bytes present in the layers above the base. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdkit.h"

#define BLOCK (2u << 20)

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(uint8_t *buf, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = next();
		memcpy(buf + i, &v, 8);
	}
}

static uint64_t size_arg(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'K': v *= 1024; break;
	case 'M': v *= 1024 * 1024; break;
	case 'G': v *= 1024.0 * 1024 * 1024; break;
	case 'T': v *= 1024.0 * 1024 * 1024 * 1024; break;
	}
	return (uint64_t)v;
}

static int die(const char *what)
{
	fprintf(stderr, "mkchain: %s: %s\n", what, vhd_get_error());
	return 1;
}

static int write_layer(const char *path, uint64_t size, unsigned writes, uint64_t min,
                       uint64_t max, int touch_all, uint8_t *buf)
{
	vhd_t *v = vhd_open(path, VHD_OPEN_RDWR);
	if (!v)
		return die(path);
	uint64_t pages = size / 4096, blocks = size / BLOCK;
	unsigned total = writes + (touch_all ? (unsigned)blocks : 0);
	for (unsigned i = 0; i < total; i++) {
		uint64_t len = min + (next() % ((max - min) / 4096 + 1)) * 4096;
		uint64_t off;
		if (touch_all && i < blocks)
			off = i * (uint64_t)BLOCK + (next() % (BLOCK / 4096)) * 4096;
		else
			off = (next() % pages) * 4096;
		if (off + len > size)
			off = size - len;
		fill(buf, len);
		if (vhd_pwrite(v, buf, len, off))
			return die(path);
	}
	if (vhd_flush(v) || vhd_close(v))
		return die(path);
	return 0;
}

struct above {
	uint64_t bytes;
	unsigned levels;
};

static int count_run(uint64_t off, uint64_t len, unsigned layer, void *opaque)
{
	struct above *a = opaque;
	(void)off;
	if (layer < a->levels)
		a->bytes += len;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", 1, NULL, 's' }, { "base-data", 1, NULL, 'b' }, { "levels", 1, NULL, 'l' },
		{ "writes", 1, NULL, 'w' }, { "min", 1, NULL, 'm' }, { "max", 1, NULL, 'M' },
		{ "touch-all", 0, NULL, 't' }, { "seed", 1, NULL, 'S' }, { 0 },
	};
	uint64_t size = 4ull << 30, base_data = 1ull << 30, min = 4096, max = 65536;
	unsigned levels = 1, writes = 15000;
	int touch_all = 0, opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': size = size_arg(optarg); break;
		case 'b': base_data = size_arg(optarg); break;
		case 'l': levels = (unsigned)atoi(optarg); break;
		case 'w': writes = (unsigned)atoi(optarg); break;
		case 'm': min = size_arg(optarg); break;
		case 'M': max = size_arg(optarg); break;
		case 't': touch_all = 1; break;
		case 'S': rng ^= strtoull(optarg, NULL, 10) * 0x9E3779B97F4A7C15ull; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || min % 4096 || max % 4096 || min > max || max > BLOCK ||
	    size % BLOCK || base_data > size)
		return fprintf(stderr, "usage: mkchain [options] DIR (see the source)\n"), 2;
	const char *dir = argv[optind];
	char path[4096], parent[4096];
	uint8_t *buf = malloc(BLOCK);
	snprintf(path, sizeof path, "%s/l0.vhd", dir);
	if (!buf || vhd_create(path, size, 0))
		return die(path);
	vhd_t *v = vhd_open(path, VHD_OPEN_RDWR);
	uint64_t blocks = size / BLOCK, full = base_data / BLOCK;
	for (uint64_t i = 0; v && full && i < full; i++) {
		fill(buf, BLOCK);
		if (vhd_pwrite(v, buf, BLOCK, i * (blocks / full) * BLOCK))
			return die(path);
	}
	if (!v || vhd_set_hidden(v, levels > 0) || vhd_close(v))
		return die(path);
	for (unsigned l = 1; l <= levels; l++) {
		snprintf(parent, sizeof parent, "%s/l%u.vhd", dir, l - 1);
		snprintf(path, sizeof path, "%s/l%u.vhd", dir, l);
		if (vhd_snapshot(parent, path, 0))
			return die(path);
		if (write_layer(path, size, writes, min, max, touch_all, buf))
			return 1;
		if (l < levels) {
			vhd_t *h = vhd_open(path, VHD_OPEN_RDWR);
			if (!h || vhd_set_hidden(h, 1) || vhd_close(h))
				return die(path);
		}
	}
	/* bytes a merge of everything into l0 moves: present above the base */
	vhd_t *top = vhd_open(path, VHD_OPEN_RDONLY);
	if (!top)
		return die(path);
	struct above acc = { 0, levels };
	if (vhd_map(top, 1, count_run, &acc))
		return die(path);
	vhd_close(top);
	uint64_t above = acc.bytes;
	printf("%llu\n", (unsigned long long)above);
	free(buf);
	return 0;
}
