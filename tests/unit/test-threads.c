/* test-threads.c - the data functions from many threads on one handle, as
 * nbdkit's PARALLEL workers call them.
 *
 * A differencing leaf over a parent full of data, 8 threads on one RDWR
 * handle.  Thread T owns the 4 KiB pieces whose index % 8 == T, so every
 * block is shared by all threads (they race on its allocation, its bitmap
 * and the batmap) while no two requests overlap.  Each thread makes random
 * writes, zeroes (with and without NO_HOLE) and trims of its own pieces and
 * keeps a model of them: a write's data, zeros, or after a trim the
 * parent's data; some reads race with the others' writes.  Then, per case
 * of the table (a differencing leaf over a parent full of data, a fixed
 * disk): the whole disk read back equals the
 * models, vhd_block_status agrees with the reads, and after close the image
 * passes vhd_check.  Usage: test-threads [--seed N]
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdkit.h"

#define SIZE (16u << 20)
#define PIECE 4096u
#define PIECES (SIZE / PIECE)
#define THREADS 8
#define OPS 600

static uint8_t parent_data[SIZE], model[SIZE];
static vhd_t *leaf;
static unsigned seed;

static void die(const char *what)
{
	fprintf(stderr, "FAIL: test-threads: %s: %s\n", what, vhd_get_error());
	exit(1);
}

static unsigned next(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Thread T's random requests, each on one of its pieces. */
static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg, s = seed * 31 + t;
	uint8_t buf[PIECE];
	for (int i = 0; i < OPS; i++) {
		uint64_t piece = (uint64_t)(next(&s) % (PIECES / THREADS)) * THREADS + t;
		uint64_t off = piece * PIECE;
		unsigned kind = next(&s) % 8;
		if (kind < 5) {
			for (unsigned k = 0; k < PIECE; k++)
				buf[k] = (uint8_t)next(&s);
			if (vhd_pwrite(leaf, buf, PIECE, off))
				die("pwrite");
			memcpy(model + off, buf, PIECE);
		} else if (kind < 7) {
			if (vhd_zero(leaf, PIECE, off, kind == 6 ? VHD_ZERO_NO_HOLE : 0))
				die("zero");
			memset(model + off, 0, PIECE);
		} else {
			if (vhd_trim(leaf, PIECE, off))
				die("trim");
			memcpy(model + off, parent_data + off, PIECE);
		}
		if (next(&s) % 50 == 0 && vhd_flush(leaf))
			die("flush");
		if (next(&s) % 3 == 0) {   /* reads race with the others' writes */
			if (vhd_pread(leaf, buf, PIECE, off))
				die("pread");
			if (memcmp(buf, model + off, PIECE)) {
				fprintf(stderr, "FAIL: test-threads: thread %u: piece %llu reads wrong\n", t,
				        (unsigned long long)piece);
				exit(1);
			}
		}
	}
	return NULL;
}

struct status_check { uint64_t next; int bad; };

static int status_fn(uint64_t offset, uint64_t length, int layer, void *opaque)
{
	struct status_check *c = opaque;
	if (offset != c->next)
		c->bad = 1;
	c->next = offset + length;
	if (layer < 0)   /* a hole must read as zeros */
		for (uint64_t i = offset; i < offset + length; i++)
			if (model[i])
				c->bad = 1;
	return 0;
}

struct tcase {
	const char *name;
	bool fixed;          /* a fixed disk (no parent) instead of a leaf */
};

static void run(const char *dir, const struct tcase *tc)
{
	char parent[4096], path[4096];
	snprintf(parent, sizeof parent, "%s/parent.vhd", dir);
	snprintf(path, sizeof path, "%s/%s.vhd", dir, tc->name);
	unsigned s = seed;
	if (tc->fixed) {
		memset(parent_data, 0, SIZE);   /* a trim of a fixed disk: zeros (tmpfs, ext4) */
		if (vhd_create(path, SIZE, VHD_CREATE_FIXED))
			die("create fixed");
	} else {
		for (unsigned i = 0; i < SIZE; i++)
			parent_data[i] = (uint8_t)next(&s);
		if (vhd_create(parent, SIZE, 0))
			die("create parent");
		vhd_t *p = vhd_open(parent, VHD_OPEN_RDWR);
		if (!p || vhd_pwrite(p, parent_data, SIZE, 0) || vhd_close(p))
			die("fill parent");
		if (vhd_snapshot(parent, path, 0))
			die("snapshot");
	}
	memcpy(model, parent_data, SIZE);
	if (!(leaf = vhd_open(path, VHD_OPEN_RDWR)))
		die("open");
	pthread_t th[THREADS];
	for (uintptr_t t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	static uint8_t back[SIZE];
	if (vhd_pread(leaf, back, SIZE, 0))
		die("pread all");
	for (unsigned i = 0; i < SIZE; i += PIECE)
		if (memcmp(back + i, model + i, PIECE)) {
			fprintf(stderr, "FAIL: test-threads: %s: piece %u differs from the model\n",
			        tc->name, i / PIECE);
			exit(1);
		}
	struct status_check c = { 0, 0 };
	if (vhd_block_status(leaf, SIZE, 0, status_fn, &c) || c.bad || c.next != SIZE) {
		fprintf(stderr, "FAIL: test-threads: %s: block status disagrees with the data\n",
		        tc->name);
		exit(1);
	}
	if (vhd_close(leaf))
		die("close");
	int problems = vhd_check(path, VHD_CHECK_DATA | VHD_CHECK_CHAIN, NULL, NULL);
	if (problems != 0) {
		fprintf(stderr, "FAIL: test-threads: %s: vhd_check found %d problems\n", tc->name,
		        problems);
		exit(1);
	}
	printf("%s: %d threads x %d requests, content = model, block status exact, check clean\n",
	       tc->name, THREADS, OPS);
}

int main(int argc, char **argv)
{
	seed = argc > 2 && !strcmp(argv[1], "--seed") ? (unsigned)atoi(argv[2]) : (unsigned)getpid();
	printf("seed %u\n", seed);
	char dir[] = "/tmp/vhdkit-threads.XXXXXX";
	if (!mkdtemp(dir))
		return perror("mkdtemp"), 1;
	static const struct tcase cases[] = {
		{ "leaf", false },
		{ "fixed", true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run(dir, &cases[i]);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {}
	return 0;
}
