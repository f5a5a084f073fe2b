/* fuzz-open-check.c - libFuzzer target for everything in the library that
 * parses a VHD: open (strict and LAX, with and without a parent), info,
 * locators, map, reads, check (with and without data, with the chain) and
 * repair (dry runs, and a real one on a scratch copy).
 *
 * The input is written to "lonely" and, when it may be a differencing disk,
 * to "family" beside parent.vhd (fuzz-util.h).  An input that cannot be a
 * differencing disk behaves the same in both places and with or without a
 * parent lookup, so it runs once per kind of open: the work per input
 * halves without a code path less.
 *
 * Built twice from this file:
 *  - with clang -fsanitize=fuzzer,... (FUZZ_REPLAY undefined): the fuzzer;
 *  - with -DFUZZ_REPLAY by the normal compiler: build/tests/fuzz-replay,
 *    `fuzz-replay FILE...` runs each file through the same code (exit 0
 *    unless a check below fails; memory errors show under SANITIZE=1), and
 *    `fuzz-replay --make-seeds DIR` writes the seed corpus.
 *
 * Oracles besides the sanitizers: a dry-run repair leaves the file
 * unchanged; a file vhd_check calls valid opens and maps; a real repair
 * (on a scratch copy) has nothing left to do when run again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "internal.h"
#include "vhdkit.h"

#define MAX_READ (64u * 1024)

static uint8_t read_buf[MAX_READ], after_buf[FUZZ_MAX_INPUT + 1];

static int count_run(uint64_t offset, uint64_t length, unsigned layer, void *opaque)
{
	(void)offset, (void)length, (void)layer;
	return ++*(unsigned long *)opaque > 1000000;   /* bounded, in case of a loop */
}

static void count_problem(const struct vhd_problem *p, void *opaque)
{
	if (!p->path || !p->message)
		fuzz_fatal("problem without path or message");
	++*(int *)opaque;
}

static void read_some(vhd_t *v, const uint8_t *data, size_t size)
{
	struct vhd_info info;
	if (vhd_get_info(v, &info))
		return;
	uint64_t sectors = info.virtual_size / SECTOR;
	if (!sectors)
		return;
	uint64_t pick = fuzz_pick(data, size);
	uint64_t n = sectors < MAX_READ / SECTOR ? sectors : MAX_READ / SECTOR;
	vhd_pread(v, read_buf, n * SECTOR, 0);
	vhd_pread(v, read_buf, n * SECTOR, (sectors - n) * SECTOR);
	uint64_t at = pick % sectors, len = 1 + pick % (sectors - at < n ? sectors - at : n);
	vhd_pread(v, read_buf, len * SECTOR, at * SECTOR);
	vhd_is_zero(v, len * SECTOR, at * SECTOR);
	vhd_is_zero(v, sectors * SECTOR, 0);
}

static void inspect(const char *path, int flags, const uint8_t *data, size_t size)
{
	vhd_t *v = vhd_open(path, flags);
	if (!v)
		return;
	struct vhd_info info;
	vhd_get_info(v, &info);
	vhd_chain_depth(v);
	for (int n = 0; n < LOC_COUNT; n++) {
		struct vhd_locator_info loc;
		if (!vhd_get_locator(v, n, &loc))
			free(loc.name);
	}
	unsigned long runs = 0;
	vhd_map(v, 0, count_run, &runs);
	runs = 0;
	vhd_map(v, 1, count_run, &runs);
	read_some(v, data, size);
	vhd_close(v);
}

/* What vhd_check calls valid (CHECK_RESULT 0) opens and maps: the two
 * must agree. */
static void valid_means_usable(const char *path, int check_result)
{
	if (check_result != 0)
		return;
	vhd_t *v = vhd_open(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT);
	if (!v)
		fuzz_fatal("vhd_check says valid, vhd_open fails");
	unsigned long runs = 0;
	if (vhd_map(v, 0, count_run, &runs) < 0)
		fuzz_fatal("vhd_check says valid, vhd_map fails");
	vhd_close(v);
}

/* Every check, in two calls that between them take every branch the flags
 * choose: without data, parents allowed to be missing, no time test (the
 * valid_means_usable gate); with data, the time test, and the chain (which
 * resolves locators and checks the parent as well). */
static void check_all(const char *path)
{
	int problems = 0;
	/* without a callback too: the library must not need one */
	int plain = vhd_check(path, VHD_CHECK_NO_TIME | VHD_CHECK_PARENT_ANY, NULL, NULL);
	vhd_check(path, VHD_CHECK_DATA | VHD_CHECK_CHAIN, count_problem, &problems);
	valid_means_usable(path, plain);
}

/* Dry runs (plain and forced) must not change a byte. */
static void dry_repairs(const char *path, const uint8_t *data, size_t size)
{
	int problems = 0;
	for (int flags = VHD_REPAIR_DRY_RUN; flags <= (VHD_REPAIR_DRY_RUN | VHD_REPAIR_FORCE);
	     flags += VHD_REPAIR_FORCE)
		vhd_repair(path, flags, count_problem, &problems);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd < 0 ? -1 : pread(fd, after_buf, size + 1, 0);
	if (fd >= 0)
		close(fd);
	if (got < 0 || (size_t)got != size || memcmp(after_buf, data, size)) {
		vhd_error(EIO, "%s: changed by a dry-run repair (%zd bytes now, %zu before)", path,
		          got, size);
		fuzz_fatal("oracle");
	}
}

/* Everything, on PATH whose content is DATA.  WITH_PARENT: the opens that
 * differ only for a differencing disk too. */
static void exercise(const char *path, const uint8_t *data, size_t size, bool with_parent)
{
	inspect(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, data, size);
	inspect(path, VHD_OPEN_RDONLY | VHD_OPEN_LAX | VHD_OPEN_NO_PARENT, data, size);
	if (with_parent) {
		inspect(path, VHD_OPEN_RDONLY, data, size);
		inspect(path, VHD_OPEN_RDONLY | VHD_OPEN_LAX | VHD_OPEN_STRICT_DIR, data, size);
	}
	check_all(path);
	dry_repairs(path, data, size);
}

/* A real repair on a scratch copy: a second run has nothing left to do. */
static void repair_twice(const char *path, const uint8_t *data, size_t size)
{
	fuzz_put_file(path, data, size);
	if (vhd_repair(path, 0, NULL, NULL) <= 0)
		return;
	int again = vhd_repair(path, 0, NULL, NULL);
	if (again != 0) {
		vhd_error(EINVAL, "%s: second repair returned %d (%s)", path, again,
		          again < 0 ? vhd_get_error() : "more actions");
		fuzz_fatal("repair is not idempotent");
	}
}

const struct fuzz_target fuzz_target = {
	.name = "fuzz-open-check", .exercise = exercise, .scratch = repair_twice,
};
