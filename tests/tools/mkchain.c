/* mkchain.c - build a VHD chain shaped like a day of VM writes, fast, for
 * tests and benchmarks.
 *   mkchain [options] DIR
 *     --size SIZE        virtual size (default 4G)
 *     --base-data SIZE   data in the base, in full blocks spread evenly (1G)
 *     --levels N         differencing layers above the base (1)
 *     --writes N         random writes per layer (15000)
 *     --min SIZE --max SIZE   write sizes, 4 KiB multiples (4K, 64K)
 *     --align SIZE       granularity of the writes' offsets and lengths
 *                        (4K; 512 makes sector-granular writes as guests
 *                        with 512-byte sectors do: a length is then MIN..MAX
 *                        plus 0-7 sectors, an offset any sector)
 *     --touch-all        first write once into every block of each layer
 *     --hot              every layer writes the same places (new data each
 *                        time), as daily snapshots of a disk whose hot
 *                        regions are rewritten every day
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
static uint64_t next_of(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static uint64_t next(void)
{
	return next_of(&rng);
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

struct shape {
	uint64_t size, min, max, align;
	unsigned writes;
	int touch_all;
	int hot;
	uint64_t places;    /* --hot: the state the places are drawn from */
};

static int write_layer(const char *path, const struct shape *sh, uint8_t *buf)
{
	vhd_t *v = vhd_open(path, VHD_OPEN_RDWR);
	if (!v)
		return die(path);
	uint64_t size = sh->size, units = size / sh->align, blocks = size / BLOCK;
	unsigned total = sh->writes + (sh->touch_all ? (unsigned)blocks : 0);
	uint64_t places = sh->places;   /* the same for every layer with --hot */
	uint64_t *where = sh->hot ? &places : &rng;
	for (unsigned i = 0; i < total; i++) {
		uint64_t len = sh->min + (next_of(where) % ((sh->max - sh->min) / 4096 + 1)) * 4096;
		if (sh->align < 4096)   /* sector-granular: 0-7 sectors more */
			len += (next_of(where) % (4096 / sh->align)) * sh->align;
		if (len > BLOCK)
			len = BLOCK;
		uint64_t off;
		if (sh->touch_all && i < blocks)
			off = i * (uint64_t)BLOCK + (next_of(where) % (BLOCK / sh->align)) * sh->align;
		else
			off = (next_of(where) % units) * sh->align;
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
		{ "touch-all", 0, NULL, 't' }, { "seed", 1, NULL, 'S' }, { "align", 1, NULL, 'a' },
		{ "hot", 0, NULL, 'H' },
		{ 0 },
	};
	struct shape sh = { 4ull << 30, 4096, 65536, 4096, 15000, 0, 0, 0 };
	uint64_t base_data = 1ull << 30;
	unsigned levels = 1;
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sh.size = size_arg(optarg); break;
		case 'b': base_data = size_arg(optarg); break;
		case 'l': levels = (unsigned)atoi(optarg); break;
		case 'w': sh.writes = (unsigned)atoi(optarg); break;
		case 'm': sh.min = size_arg(optarg); break;
		case 'M': sh.max = size_arg(optarg); break;
		case 'a': sh.align = size_arg(optarg); break;
		case 't': sh.touch_all = 1; break;
		case 'H': sh.hot = 1; break;
		case 'S': rng ^= strtoull(optarg, NULL, 10) * 0x9E3779B97F4A7C15ull; break;
		default: return 2;
		}
	}
	uint64_t size = sh.size;
	if (optind != argc - 1 || sh.min % 4096 || sh.max % 4096 || sh.min > sh.max ||
	    sh.max > BLOCK || size % BLOCK || base_data > size || !sh.align || sh.align % 512 ||
	    4096 % sh.align)
		return fprintf(stderr, "usage: mkchain [options] DIR (see the source)\n"), 2;
	const char *dir = argv[optind];
	sh.places = next() | 1;
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
		if (write_layer(path, &sh, buf))
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
