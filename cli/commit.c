/* commit.c - `vhd commit TOP --base BASE`. */
#include <getopt.h>
#include <stdlib.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd commit [OPTIONS] --base BASE TOP\n"
	"\n"
	"Merge every layer from TOP down to BASE into BASE in one pass, each sector\n"
	"taken from the nearest layer (like 'qemu-img commit -b').  TOP is not\n"
	"changed and reads the same afterwards.  BASE and every layer between must\n"
	"be hidden and have no other child.  Journaled and resumable like\n"
	"'vhd coalesce'.\n"
	"\n"
	"Options:\n"
	"  -b, --base BASE         the ancestor to merge into (required)\n"
	"  -l, --relink            then re-point TOP's children at BASE and delete\n"
	"                          TOP and the layers between\n"
	MERGE_OPTIONS_HELP
	"  -h, --help              this text\n"
	"\n"
	"Exit codes: as for 'vhd coalesce'.\n"
	"\n"
	"Example:\n"
	"  vhd commit --base base.vhd --relink snap4.vhd\n";

int cmd_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "base", required_argument, NULL, 'b' },
		{ "relink", no_argument, NULL, 'l' },
		MERGE_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct merge_cli m = { 0 };
	const char *base = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "b:lr:B:fh", longopts, NULL)) != -1) {
		if (opt == 'b')
			base = optarg;
		else if (opt == 'l')
			m.opts.flags |= VHD_COALESCE_RELINK;
		else if (opt == 'h')
			return usage(help, false);
		else if (merge_option(&m, opt, optarg))
			return usage(help, true);
	}
	if (optind != argc - 1 || !base)
		return usage(help, true);
	merge_prepare(&m);
	return merge_result(&m, vhd_commit(argv[optind], base, &m.opts), argv[optind]);
}
