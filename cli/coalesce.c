/* coalesce.c - `vhd coalesce [--relink] CHILD`. */
#include <getopt.h>
#include <stdlib.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd coalesce [OPTIONS] CHILD\n"
	"\n"
	"Merge CHILD's data into its parent, sector by sector: the parent's sectors\n"
	"that CHILD lacks survive, unwritten sectors are not copied, the parent\n"
	"grows if CHILD is larger.  CHILD itself is not changed.  The parent must be\n"
	"hidden and have no other child.  The work is journaled beside the parent:\n"
	"an interrupted coalesce (signal, crash, power loss) resumes where it was\n"
	"when run again, or is finished by 'vhd recover DIR'.\n"
	"\n"
	"Options:\n"
	"  -l, --relink            then re-point CHILD's children at the parent and\n"
	"                          delete CHILD (one journaled operation)\n"
	MERGE_OPTIONS_HELP
	"  -h, --help              this text\n"
	"\n"
	"Exit codes: 0 done, 1 failed, 2 usage, 3 invalid image, 4 refused (parent\n"
	"visible or shared, in use, not enough space), 5 stopped by a signal\n"
	"(run again to resume).\n"
	"\n"
	"Examples:\n"
	"  vhd coalesce --rate-limit 50M snap.vhd\n"
	"  vhd coalesce --relink --progress=json sr/9f1c....vhd\n";

int cmd_coalesce(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "relink", no_argument, NULL, 'l' },
		MERGE_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct merge_cli m = { 0 };
	int opt;
	while ((opt = getopt_long(argc, argv, "lr:B:fh", longopts, NULL)) != -1) {
		if (opt == 'l')
			m.opts.flags |= VHD_COALESCE_RELINK;
		else if (opt == 'h')
			return usage(help, false);
		else if (merge_option(&m, opt, optarg))
			return usage(help, true);
	}
	if (optind != argc - 1)
		return usage(help, true);
	merge_prepare(&m);
	return merge_result(&m, vhd_coalesce(argv[optind], &m.opts), argv[optind]);
}
