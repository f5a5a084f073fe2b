/* snapshot.c - `vhd snapshot PARENT CHILD`. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd snapshot [--max-depth N] [--raw-parent] PARENT CHILD\n"
	"\n"
	"Create CHILD, a new differencing VHD whose parent is PARENT.  CHILD's\n"
	"parent locators (MacX, W2ku, W2ru) hold PARENT's path relative to\n"
	"CHILD's directory, as blktap writes them.  Refuses when the chain would\n"
	"be deeper than N (default 30, XenServer's limit) or CHILD exists.\n"
	"With --raw-parent, PARENT is a raw image (a plain file or block device\n"
	"holding the disk's bytes at their offsets), as blktap's `vhd-util\n"
	"snapshot -m`: CHILD has PARENT's size and a nil parent UUID; a VHD is\n"
	"refused as raw parent.\n"
	"\n"
	"Options:\n"
	"  -d, --max-depth N   deepest chain allowed, counting CHILD (0: no limit)\n"
	"  -r, --raw-parent    PARENT is a raw image, not a VHD\n"
	"  -h, --help          this text\n"
	"\n"
	"Example:\n"
	"  vhd snapshot base.vhd snap1.vhd\n"
	"  vhd snapshot --raw-parent disk.img snap1.vhd\n";

/* A merge into PARENT is under way (its journal exists): a new child would
 * see PARENT's content change. */
static bool merge_pending(const char *parent)
{
	char journal[PATH_MAX];
	const char *slash = strrchr(parent, '/');
	int dl = slash ? (int)(slash - parent) : 1;
	snprintf(journal, sizeof journal, "%.*s/.vhdkit-%s.journal", dl, slash ? parent : ".",
	         slash ? slash + 1 : parent);
	if (access(journal, F_OK))
		return false;
	warnx_("%s: a coalesce into it is under way (%s): snapshot its leaf instead", parent,
	       journal);
	return true;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "max-depth", required_argument, 0, 'd' },
		{ "raw-parent", no_argument, 0, 'r' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	unsigned max_depth = VHD_XEN_MAX_DEPTH;
	bool raw = false;
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "d:rh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			max_depth = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !*optarg)
				return usage(help, true);
			break;
		case 'r': raw = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (argc - optind != 2)
		return usage(help, true);
	/* under the SR lock: the GC plans and re-points under it too */
	int lk = vhd_sr_lock_file(argv[optind + 1], 1);
	if (lk < 0)
		return fail_lib();
	int rc = EXIT_OK;
	if (merge_pending(argv[optind]))
		rc = EXIT_REFUSED;
	else if (raw ? vhd_snapshot_raw(argv[optind], argv[optind + 1], 0)
	             : vhd_snapshot(argv[optind], argv[optind + 1], max_depth))
		rc = fail_lib();
	vhd_sr_unlock(lk);
	return rc;
}
