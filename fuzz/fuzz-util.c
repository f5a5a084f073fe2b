/* fuzz-util.c - the fuzz targets' shared set-up, seeds and replay driver
 * (see fuzz-util.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "internal.h"
#include "vhdkit.h"

#define SMALL_BLOCK 4096u
#define PARENT_SIZE (32u * 1024)
#define FOOTER_TYPE_AT 60

static const uint8_t parent_uuid[16] = {
	0x7a, 0x11, 0xf0, 0x22, 0x5e, 0xed, 0x4b, 0x0c, 0x9f, 0x1d, 0xc0, 0xde, 0xfa, 0xce, 0x00, 0x01
};

static const char *prog_name = "fuzz";
static char lonely_dir[256], family_dir[256];
static char lonely_path[300], family_path[300], parent_path[300];

void fuzz_fatal(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog_name, what, vhd_get_error());
	abort();
}

void fuzz_put_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd)) {
		vhd_error(errno, "%s: %s", path, strerror(errno));
		fuzz_fatal("writing the input");
	}
}

static bool footer_of_type(const uint8_t *data, size_t size, const char *cookie, uint32_t type)
{
	const uint8_t *p = data, *end = data + size;
	while ((p = memmem(p, (size_t)(end - p), cookie, 8))) {
		if (end - p >= FOOTER_TYPE_AT + 4 && get_be32(p + FOOTER_TYPE_AT) == type)
			return true;
		p++;
	}
	return false;
}

/* Could any footer in DATA describe a differencing disk?  Every reader
 * (library, repair, vhd-util) only follows a parent from a footer with the
 * "conectix" cookie (vhd-util also "v_poison") and type 4, wherever it
 * reads one: without such bytes the input behaves the same alone and
 * beside a parent, with a parent lookup allowed or not. */
static bool may_be_differencing(const uint8_t *data, size_t size)
{
	return footer_of_type(data, size, "conectix", VHD_TYPE_DIFF) ||
	       footer_of_type(data, size, "v_poison", VHD_TYPE_DIFF);
}

uint64_t fuzz_pick(const uint8_t *data, size_t size)
{
	uint64_t pick = 0;
	for (size_t i = 0; i < size && i < 64; i++)
		pick = pick * 131 + data[i];
	return pick;
}

/* ---- small crafted images (parent.vhd and the seeds) ---------------- */

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

/* ---- the directories ------------------------------------------------ */

static void remove_dirs(void)
{
	unlink(lonely_path);
	unlink(family_path);
	unlink(parent_path);
	rmdir(lonely_dir);
	rmdir(family_dir);
}

/* In FUZZ_SCRATCH when set (fuzz/run.sh's, which it removes: libFuzzer
 * ends a timed run with _Exit, so the atexit clean-up never runs there),
 * else /dev/shm, else TMPDIR or /tmp. */
static void make_dir(char *dir, size_t cap, const char *name)
{
	struct stat st;
	const char *scratch = getenv("FUZZ_SCRATCH"), *t = getenv("TMPDIR");
	const char *base = scratch && *scratch ? scratch
	                   : !stat("/dev/shm", &st) && S_ISDIR(st.st_mode) && !access("/dev/shm", W_OK)
	                   ? "/dev/shm" : t && *t ? t : "/tmp";
	snprintf(dir, cap, "%s/vhdkit-%s-%s.XXXXXX", base, prog_name, name);
	if (!mkdtemp(dir)) {
		vhd_error(errno, "mkdtemp %s: %s", dir, strerror(errno));
		fuzz_fatal("set-up");
	}
}

/* The directories and parent.vhd, once; removed at exit.  What the
 * targets print (vhd-util's output) goes to /dev/null: libFuzzer and the
 * replay drivers report on stderr. */
static void setup(void)
{
	if (*lonely_dir)
		return;
	prog_name = fuzz_target.name;
	make_dir(lonely_dir, sizeof lonely_dir, "lonely");
	make_dir(family_dir, sizeof family_dir, "family");
	atexit(remove_dirs);
	snprintf(lonely_path, sizeof lonely_path, "%s/fuzz.vhd", lonely_dir);
	snprintf(family_path, sizeof family_path, "%s/child.vhd", family_dir);
	snprintf(parent_path, sizeof parent_path, "%s/parent.vhd", family_dir);
	if (make_small_dynamic(parent_path, parent_uuid) || chmod(parent_path, 0444))
		fuzz_fatal("making parent.vhd");
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, STDOUT_FILENO) < 0 || close(null))
		fuzz_fatal("/dev/null");
}

static void run_input(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return;
	setup();
	bool diff = may_be_differencing(data, size);
	fuzz_put_file(lonely_path, data, size);
	fuzz_target.exercise(lonely_path, data, size, diff);
	if (diff) {
		fuzz_put_file(family_path, data, size);
		fuzz_target.exercise(family_path, data, size, true);
	}
	if (fuzz_target.scratch)
		fuzz_target.scratch(lonely_path, data, size);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_input(data, size);
	return 0;
}
#else
/* ---- replay driver and seed maker ----------------------------------- */

static int seed_copy(const char *dir, const char *name, const char *from, uint64_t keep)
{
	char path[4096];
	static uint8_t buf[128 * 1024];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return vhd_error(errno, "%s: %s", from, strerror(errno));
	ssize_t n = read(in, buf, keep < sizeof buf ? keep : sizeof buf);
	close(in);
	if (n < 0)
		return vhd_error(errno, "%s: %s", from, strerror(errno));
	snprintf(path, sizeof path, "%s/%s", dir, name);
	fuzz_put_file(path, buf, (size_t)n);
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

/* FILE's bytes (caller frees), or NULL with a message printed. */
static uint8_t *read_input(const char *prog, const char *file, size_t *size)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "%s: %s: not a readable file\n", prog, file);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	*size = (size_t)st.st_size;
	uint8_t *data = malloc(*size ? *size : 1);
	ssize_t n = data ? read(fd, data, *size) : -1;
	close(fd);
	if (n != (ssize_t)*size) {
		fprintf(stderr, "%s: %s: short read\n", prog, file);
		free(data);
		return NULL;
	}
	return data;
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	prog_name = name;
	if (argc == 3 && !strcmp(argv[1], "--make-seeds")) {
		if (make_seeds(argv[2]))
			fuzz_fatal("making seeds");
		return 0;
	}
	/* --once: only what the fuzzer runs (bench/bench-fuzz.sh's baseline) */
	bool once = argc > 1 && !strcmp(argv[1], "--once");
	if (argc < 2 + once || argv[1 + once][0] == '-') {
		fprintf(stderr, "usage: %s [--once] FILE...    run each file through the fuzz target\n"
		                "       (and, without --once, in place)\n"
		                "       %s --make-seeds DIR\n", name, name);
		return 2;
	}
	int failed = 0;
	for (int i = 1 + once; i < argc; i++) {
		size_t size;
		uint8_t *data = read_input(name, argv[i], &size);
		if (data) {
			run_input(data, size);
			if (!once)
				fuzz_target.exercise(argv[i], data, size, true);   /* in place */
		}
		failed |= !data;
		free(data);
		fprintf(stderr, "replayed %s\n", argv[i]);
	}
	return failed;
}
#endif
