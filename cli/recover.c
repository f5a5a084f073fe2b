/* recover.c - `vhd recover DIR`: finish interrupted merges. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd recover [OPTIONS] DIR\n"
	"\n"
	"Finish every coalesce or commit that was interrupted in DIR: each left a\n"
	"journal (.vhdkit-BASE.journal) beside its base.  A merge still copying is\n"
	"resumed; one that was re-pointing children or deleting merged files is\n"
	"completed.  Then every interrupted leaf swap (.vhdleaf-LEAF.journal, of a\n"
	"leaf-coalesce, offline or live) is finished.  Prints how many operations\n"
	"it finished.\n"
	"\n"
	"Options:\n"
	MERGE_OPTIONS_HELP
	"  -h, --help              this text\n"
	"\n"
	"Example:\n"
	"  vhd recover /var/run/sr-mount/SR-UUID\n";

int cmd_recover(int argc, char **argv)
{
	static const struct option longopts[] = {
		MERGE_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct merge_cli m = { 0 };
	int opt;
	while ((opt = getopt_long(argc, argv, "r:B:fh", longopts, NULL)) != -1) {
		if (opt == 'h')
			return usage(help, false);
		if (merge_option(&m, opt, optarg))
			return usage(help, true);
	}
	if (optind != argc - 1)
		return usage(help, true);
	merge_prepare(&m);
	int n = vhd_recover(argv[optind], &m.opts);
	if (n >= 0) {
		int swaps = vhd_leaf_recover(argv[optind]);
		n = swaps < 0 ? -1 : n + swaps;
	}
	if (n >= 0 && m.progress_mode != PROGRESS_JSON)
		printf("%d operation%s finished\n", n, n == 1 ? "" : "s");
	return merge_result(&m, n, argv[optind]);
}
