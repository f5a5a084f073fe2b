/* fuzz-vhdutil.c - libFuzzer target for vhd-util's own parser (vhdutil/):
 * the vu_* opens (primary footer with the backup fallback, the backup
 * only, the fast open), the BAT, batmap, end of headers and data, parent
 * locators, parent name, parent and chain depth, the hidden flag, and
 * then the commands that only read: check (plain; -i -I -t -p -b -s; -B),
 * query (every field; the unresolved parent), read (headers, BAT, bitmaps,
 * batmap, extents, translations, data) and scan.  What they print goes to
 * /dev/null.
 *
 * The input is written to "lonely" and, when it may be a differencing disk,
 * to "family" beside parent.vhd (fuzz-util.h), where locators and parent
 * reads find a real parent.
 *
 * Built twice from this file, like fuzz-open-check.c: with clang
 * -fsanitize=fuzzer (vhdutil/, common/ and lib/ objects built with the
 * fuzz flags), and with -DFUZZ_REPLAY as build/tests/fuzz-vhdutil-replay
 * (`fuzz-vhdutil-replay FILE...`, `--make-seeds DIR`).
 *
 * Oracle besides the sanitizers: an image `vhd-util check` calls valid
 * opens, and its BAT, batmap and end of data read. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "internal.h"
#include "vhdkit.h"
#include "vhdutil.h"

#define MAX_ARGS 16
#define SMALL_BLOCKS (64u * 1024)   /* -d and -m print a block: only small ones */

/* Run `vhd-util ARGS...` (NULL-terminated) on a copy of the arguments
 * (getopt permutes them); returns its exit status. */
static int vhd_util(const char *const *args)
{
	char copies[MAX_ARGS][300];
	char *argv[MAX_ARGS + 2] = { "vhd-util" };
	int argc = 1;
	for (; args[argc - 1] && argc <= MAX_ARGS; argc++) {
		snprintf(copies[argc - 1], sizeof copies[0], "%s", args[argc - 1]);
		argv[argc] = copies[argc - 1];
	}
	argv[argc] = NULL;
	return vhdutil_main(argc, argv);
}

/* The numbers the read commands take: a block and a sector in range (or
 * just past it), a count, a byte offset. */
struct picks {
	char block[24], sector[24], count[24], byte[24];
	bool small_blocks;
};

static void fail_if(bool bad, const char *path, const char *what, int err)
{
	if (bad) {
		vhd_error(-err, "%s: %s (%d), though vhd-util check calls it valid", path, what, err);
		fuzz_fatal("oracle");
	}
}

/* The vu_* calls on one open; fills P from what the header says. */
static void parse(const char *path, int flags, struct picks *p, uint64_t pick)
{
	struct vu_ctx c;
	if (vu_open(&c, path, flags))
		return;
	uint64_t end, blocks = c.header.max_bat_entries, sectors = c.footer.curr_size / SECTOR;
	int depth, hidden;
	char *s = NULL;
	vu_get_bat(&c);
	vu_get_batmap(&c);
	vu_batmap_checksum(&c);
	vu_batmap_test(&c, pick % (blocks + 1));
	vu_end_of_headers(&c, &end);
	vu_end_of_data(&c, &end);
	for (int i = 0; i < LOC_COUNT; i++) {
		vu_locator_read(&c, &c.header.loc[i], &s);
		free(s);
	}
	if (!vu_parent_name(&c.header, &s))
		free(s);
	if (!vu_parent_get(&c, &s))
		free(s);
	vu_chain_depth(&c, &depth);
	vu_hidden(&c, &hidden);
	vu_print_headers(&c, pick & 1);
	snprintf(p->block, sizeof p->block, "%" PRIu64, pick % (blocks + 1));
	snprintf(p->sector, sizeof p->sector, "%" PRIu64, (pick >> 8) % (sectors + 1));
	snprintf(p->count, sizeof p->count, "%" PRIu64, 1 + (pick >> 16) % 4);
	snprintf(p->byte, sizeof p->byte, "%" PRIu64, (pick >> 20) % (sectors * SECTOR + 1));
	p->small_blocks = vu_dynamic(&c) && c.header.block_size <= SMALL_BLOCKS;
	vu_close(&c);
}

/* `vhd-util check` said valid: what it tested must read. */
static void valid_means_readable(const char *path)
{
	struct vu_ctx c;
	uint64_t end;
	int err = vu_open(&c, path, VU_OPEN_IGNORE_DISABLED);
	fail_if(err, path, "vu_open fails", err);
	if (vu_dynamic(&c)) {
		err = vu_get_bat(&c);
		fail_if(err, path, "the BAT does not read", err);
		err = vu_has_batmap(&c) ? vu_get_batmap(&c) : 0;
		fail_if(err, path, "the batmap does not read", err);
	}
	err = vu_end_of_data(&c, &end);
	fail_if(err, path, "the end of data is not found", err);
	vu_close(&c);
}

static void commands(const char *path, const struct picks *p)
{
	const char *n = path;
	if (vhd_util((const char *[]){ "check", "-n", n, NULL }) == 0)
		valid_means_readable(path);
	vhd_util((const char *[]){ "check", "-n", n, "-i", "-I", "-t", "-p", "-b", "-s", NULL });
	vhd_util((const char *[]){ "check", "-n", n, "-B", "-t", NULL });
	vhd_util((const char *[]){ "query", "-n", n, "-v", "-s", "-p", "-f", "-m", "-d", "-a", "-S",
	                           NULL });
	vhd_util((const char *[]){ "query", "-n", n, "-p", "-u", NULL });
	vhd_util((const char *[]){ "read", "-n", n, "-p", "-B", "-a", NULL });
	vhd_util((const char *[]){ "read", "-n", n, "-t", p->sector, "-c", p->count, "-x", NULL });
	vhd_util((const char *[]){ "read", "-n", n, "-b", p->block, "-j", p->block, "-c", p->count,
	                           NULL });
	vhd_util((const char *[]){ "read", "-n", n, "-i", p->sector, "-e", p->sector, "-c", p->count,
	                           "-x", NULL });
	vhd_util((const char *[]){ "read", "-n", n, "-r", p->sector, "-R", p->byte, "-c", p->count,
	                           NULL });
	if (p->small_blocks)
		vhd_util((const char *[]){ "read", "-n", n, "-m", p->block, "-d", p->block, "-x", NULL });
	vhd_util((const char *[]){ "scan", "-f", "-c", "-m", n, NULL });
	vhd_util((const char *[]){ "scan", "-p", "-a", "-M", "-v", n, NULL });
}

static void exercise(const char *path, const uint8_t *data, size_t size, bool with_parent)
{
	static const int open_flags[] = {
		0, VU_OPEN_IGNORE_DISABLED, VU_OPEN_BACKUP_FOOTER, VU_OPEN_FAST,
	};
	(void)with_parent;   /* vhd-util has no open without its parent to skip */
	uint64_t pick = fuzz_pick(data, size);
	struct picks p = { "0", "0", "1", "0", false };
	for (size_t i = 0; i < sizeof open_flags / sizeof *open_flags; i++)
		parse(path, open_flags[i], &p, pick);
	parse(path, VU_OPEN_IGNORE_DISABLED, &p, pick);   /* the picks from the usual open */
	commands(path, &p);
	fflush(stdout);
}

const struct fuzz_target fuzz_target = { .name = "fuzz-vhdutil", .exercise = exercise };
