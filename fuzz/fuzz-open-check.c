/* fuzz-open-check.c - libFuzzer target for everything that parses a VHD:
 * open (strict and LAX, with and without a parent), info, locators, map,
 * reads, check (with and without data) and a dry-run repair.
 *
 * The input is written to a file in two private directories (on /dev/shm
 * when there is one): "lonely", where it is alone, so that parent lookups
 * find nothing, and "family", where it sits next to "parent.vhd", a small
 * valid dynamic disk with a fixed UUID that the differencing seeds point
 * at, so that chain reads are reached too.
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
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "vhdkit.h"

#define MAX_READ (64u * 1024)
#define MAX_INPUT (4u << 20)   /* the corpus's bad images are up to 2 MiB */
#define SMALL_BLOCK 4096u
#define PARENT_SIZE (32u * 1024)

static const uint8_t parent_uuid[16] = {
	0x7a, 0x11, 0xf0, 0x22, 0x5e, 0xed, 0x4b, 0x0c, 0x9f, 0x1d, 0xc0, 0xde, 0xfa, 0xce, 0x00, 0x01
};

static char lonely_dir[256], family_dir[256];
static char lonely_path[300], family_path[300], parent_path[300];

static void fatal(const char *what)
{
	fprintf(stderr, "fuzz-open-check: %s: %s\n", what, vhd_get_error());
	abort();
}

/* ---- small crafted images (also the seeds) ------------------------- */

/* Turn a fresh vhd_create'd image of SIZE bytes into one with 4 KiB blocks,
 * so that images with data stay a few KiB.  The BAT and batmap keep their
 * place: both still fit the sector blktap reserved for one entry. */
static int use_small_blocks(const char *path, const uint8_t *uuid)
{
	struct vhd *v = vhd_open_file(path, VHD_OPEN_RDWR | VHD_OPEN_NO_LOCK, false);
	if (!v)
		return -1;
	uint32_t entries = (uint32_t)div_round_up(v->footer.curr_size, SMALL_BLOCK);
	int rc = -1;
	if (round_up((uint64_t)entries * 4, SECTOR) != round_up((uint64_t)v->bat_entries * 4, SECTOR)) {
		vhd_error(EINVAL, "%s: too large for small blocks", path);
		goto out;
	}
	uint32_t *bat = realloc(v->bat, (size_t)entries * 4);
	if (!bat)
		goto out;
	v->bat = bat;
	v->header.block_size = SMALL_BLOCK;
	v->header.max_bat_entries = v->bat_entries = entries;
	for (uint32_t b = 0; b < entries; b++) {
		v->bat[b] = BAT_UNUSED;
		if (vhd_write_bat_entry(v, b))
			goto out;
	}
	if (uuid)
		memcpy(v->footer.uuid, uuid, 16);
	rc = vhd_write_header(v) || vhd_write_footers(v) ? -1 : 0;
out:
	vhd_free(v);
	return rc;
}

static int write_pattern(const char *path, uint64_t offset, uint64_t count, uint8_t seed)
{
	uint8_t buf[4 * SMALL_BLOCK];
	vhd_t *v = vhd_open(path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT);
	if (!v)
		return -1;
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(seed + i / SECTOR * 7 + i);
	int rc = vhd_pwrite(v, buf, count, offset);
	return vhd_close(v) || rc ? -1 : 0;
}

/* A dynamic disk of 32 KiB in 4 KiB blocks: one block full (batmap bit
 * set), partly written blocks, a write across a block boundary. */
static int make_small_dynamic(const char *path, const uint8_t *uuid)
{
	if (vhd_create(path, PARENT_SIZE, VHD_CREATE_OVERWRITE) || use_small_blocks(path, uuid) ||
	    write_pattern(path, 0, SMALL_BLOCK, 1) || write_pattern(path, 2 * SMALL_BLOCK + 512, 1024, 2) ||
	    write_pattern(path, 6 * SMALL_BLOCK - 1024, 2048, 3))
		return -1;
	return 0;
}

/* ---- one input ----------------------------------------------------- */

static int count_run(uint64_t offset, uint64_t length, unsigned layer, void *opaque)
{
	(void)offset, (void)length, (void)layer;
	return ++*(unsigned long *)opaque > 1000000;   /* bounded, in case of a loop */
}

static void count_problem(const struct vhd_problem *p, void *opaque)
{
	if (!p->path || !p->message)
		fatal("problem without path or message");
	++*(int *)opaque;
}

static void read_some(vhd_t *v, const uint8_t *data, size_t size)
{
	static uint8_t buf[MAX_READ];
	struct vhd_info info;
	if (vhd_get_info(v, &info))
		return;
	uint64_t sectors = info.virtual_size / SECTOR;
	if (!sectors)
		return;
	uint64_t pick = 0;
	for (size_t i = 0; i < size && i < 64; i++)
		pick = pick * 131 + data[i];
	uint64_t n = sectors < MAX_READ / SECTOR ? sectors : MAX_READ / SECTOR;
	vhd_pread(v, buf, n * SECTOR, 0);
	vhd_pread(v, buf, n * SECTOR, (sectors - n) * SECTOR);
	uint64_t at = pick % sectors, len = 1 + pick % (sectors - at < n ? sectors - at : n);
	vhd_pread(v, buf, len * SECTOR, at * SECTOR);
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

static void check_and_repair(const char *path, const uint8_t *data, size_t size)
{
	static const int check_flags[] = {
		VHD_CHECK_NO_TIME,
		VHD_CHECK_DATA | VHD_CHECK_PARENT_ANY,
		VHD_CHECK_DATA | VHD_CHECK_CHAIN | VHD_CHECK_NO_TIME,
	};
	int problems = 0;
	for (size_t i = 0; i < sizeof check_flags / sizeof *check_flags; i++)
		vhd_check(path, check_flags[i], count_problem, &problems);
	for (int flags = VHD_REPAIR_DRY_RUN; flags <= (VHD_REPAIR_DRY_RUN | VHD_REPAIR_FORCE);
	     flags += VHD_REPAIR_FORCE)
		vhd_repair(path, flags, count_problem, &problems);

	/* a dry run must not have changed a byte */
	uint8_t *after = malloc(size + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd < 0 || !after ? -1 : pread(fd, after, size + 1, 0);
	if (fd >= 0)
		close(fd);
	bool same = got >= 0 && (size_t)got == size && !memcmp(after, data, size);
	free(after);
	if (!same) {
		vhd_error(EIO, "%s: changed by a dry-run repair (%zd bytes now, %zu before)", path,
		          got, size);
		fatal("oracle");
	}
}

static void put_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd)) {
		vhd_error(errno, "%s: %s", path, strerror(errno));
		fatal("writing the input");
	}
}

/* Everything, on PATH whose content is DATA. */
static void exercise(const char *path, const uint8_t *data, size_t size)
{
	inspect(path, VHD_OPEN_RDONLY, data, size);
	inspect(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, data, size);
	inspect(path, VHD_OPEN_RDONLY | VHD_OPEN_LAX | VHD_OPEN_NO_PARENT, data, size);
	inspect(path, VHD_OPEN_RDONLY | VHD_OPEN_LAX | VHD_OPEN_STRICT_DIR, data, size);
	check_and_repair(path, data, size);
}

/* What vhd_check calls valid opens and reads: the two must agree. */
static void valid_means_usable(const char *path)
{
	int flags = VHD_CHECK_NO_TIME | VHD_CHECK_PARENT_ANY;
	if (vhd_check(path, flags, NULL, NULL) != 0)
		return;
	vhd_t *v = vhd_open(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT);
	if (!v)
		fatal("vhd_check says valid, vhd_open fails");
	unsigned long runs = 0;
	if (vhd_map(v, 0, count_run, &runs) < 0)
		fatal("vhd_check says valid, vhd_map fails");
	vhd_close(v);
}

/* A real repair on a scratch copy: a second run has nothing left to do. */
static void repair_twice(const char *path, const uint8_t *data, size_t size)
{
	put_file(path, data, size);
	if (vhd_repair(path, 0, NULL, NULL) <= 0)
		return;
	int again = vhd_repair(path, 0, NULL, NULL);
	if (again != 0) {
		vhd_error(EINVAL, "%s: second repair returned %d (%s)", path, again,
		          again < 0 ? vhd_get_error() : "more actions");
		fatal("repair is not idempotent");
	}
}

static void run_one(const char *path, const uint8_t *data, size_t size)
{
	put_file(path, data, size);
	exercise(path, data, size);
	valid_means_usable(path);
}

/* ---- set-up -------------------------------------------------------- */

static void remove_dirs(void)
{
	unlink(lonely_path);
	unlink(family_path);
	unlink(parent_path);
	rmdir(lonely_dir);
	rmdir(family_dir);
}

static void make_dir(char *dir, size_t cap, const char *name)
{
	struct stat st;
	const char *t = getenv("TMPDIR");
	const char *base = !stat("/dev/shm", &st) && S_ISDIR(st.st_mode) && !access("/dev/shm", W_OK)
	                   ? "/dev/shm" : t && *t ? t : "/tmp";
	snprintf(dir, cap, "%s/vhdkit-fuzz-%s.XXXXXX", base, name);
	if (!mkdtemp(dir)) {
		vhd_error(errno, "mkdtemp %s: %s", dir, strerror(errno));
		fatal("set-up");
	}
}

static void setup(void)
{
	if (*lonely_dir)
		return;
	make_dir(lonely_dir, sizeof lonely_dir, "lonely");
	make_dir(family_dir, sizeof family_dir, "family");
	atexit(remove_dirs);
	snprintf(lonely_path, sizeof lonely_path, "%s/fuzz.vhd", lonely_dir);
	snprintf(family_path, sizeof family_path, "%s/child.vhd", family_dir);
	snprintf(parent_path, sizeof parent_path, "%s/parent.vhd", family_dir);
	if (make_small_dynamic(parent_path, parent_uuid) || chmod(parent_path, 0444))
		fatal("making parent.vhd");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	setup();
	run_one(lonely_path, data, size);
	run_one(family_path, data, size);
	repair_twice(lonely_path, data, size);
	return 0;
}

#ifdef FUZZ_REPLAY
/* ---- replay driver and seed maker ----------------------------------- */

static int seed_copy(const char *dir, const char *name, const char *from, uint64_t keep)
{
	char path[4096];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return vhd_error(errno, "%s: %s", from, strerror(errno));
	static uint8_t buf[MAX_READ * 2];
	ssize_t n = read(in, buf, keep < sizeof buf ? keep : sizeof buf);
	close(in);
	if (n < 0)
		return vhd_error(errno, "%s: %s", from, strerror(errno));
	snprintf(path, sizeof path, "%s/%s", dir, name);
	put_file(path, buf, (size_t)n);
	return 0;
}

/* Seeds: small dynamic disks (4 KiB and 2 MiB blocks), a differencing
 * child of parent.vhd, a fixed disk, and truncated variants. */
static int make_seeds(const char *dir)
{
	char path[4096], child[4096];
	snprintf(path, sizeof path, "%s/parent.vhd", dir);
	snprintf(child, sizeof child, "%s/child.vhd", dir);
	unlink(path);
	unlink(child);
	if (make_small_dynamic(path, parent_uuid) || vhd_snapshot(path, child, VHD_XEN_MAX_DEPTH) ||
	    use_small_blocks(child, NULL) || write_pattern(child, SMALL_BLOCK + 1024, 3 * SMALL_BLOCK, 4))
		return -1;
	snprintf(path, sizeof path, "%s/empty-4m.vhd", dir);
	if (vhd_create(path, 4u << 20, VHD_CREATE_OVERWRITE))
		return -1;
	snprintf(path, sizeof path, "%s/fixed-16k.vhd", dir);
	if (vhd_create(path, 16u << 10, VHD_CREATE_OVERWRITE | VHD_CREATE_FIXED) ||
	    write_pattern(path, 4096, 2048, 5))
		return -1;
	snprintf(path, sizeof path, "%s/child.vhd", dir);
	if (seed_copy(dir, "child-truncated.vhd", path, 6 * 1024) ||
	    seed_copy(dir, "child-headers.vhd", path, 3 * 1024))
		return -1;
	snprintf(path, sizeof path, "%s/parent.vhd", dir);
	return seed_copy(dir, "parent-no-footer.vhd", path, 8 * 1024);
}

static int replay(const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "fuzz-replay: %s: not a readable file\n", file);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *data = malloc(size ? size : 1);
	ssize_t n = data ? read(fd, data, size) : -1;
	close(fd);
	if (n != (ssize_t)size) {
		fprintf(stderr, "fuzz-replay: %s: short read\n", file);
		free(data);
		return -1;
	}
	LLVMFuzzerTestOneInput(data, size);
	exercise(file, data, size);   /* in place: a chain finds its own parent */
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--make-seeds")) {
		if (make_seeds(argv[2]))
			fatal("making seeds");
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: fuzz-replay FILE...    run each file through the fuzz target\n"
		                "       fuzz-replay --make-seeds DIR\n");
		return 2;
	}
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		failed |= replay(argv[i]) != 0;
		printf("replayed %s\n", argv[i]);
	}
	return failed;
}
#endif
