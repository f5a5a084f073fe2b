/* create.c - `vhd create FILE SIZE`. */
#include <getopt.h>
#include <string.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd create [--fixed] [--force] FILE SIZE\n"
	"\n"
	"Create a VHD of SIZE bytes (suffixes K, M, G, T: powers of 1024).\n"
	"Dynamic by default (2 MiB blocks, blktap batmap); --fixed makes a fixed\n"
	"disk whose data area is left sparse.  An existing FILE is never\n"
	"overwritten unless --force is given.\n"
	"\n"
	"Options:\n"
	"  -f, --fixed   create a fixed disk\n"
	"      --force   replace FILE if it exists\n"
	"  -h, --help    this text\n"
	"\n"
	"Examples:\n"
	"  vhd create disk.vhd 20G\n"
	"  vhd create --fixed boot.vhd 512M\n";

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fixed", no_argument, 0, 'f' },
		{ "force", no_argument, 0, 'F' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int flags = 0, c;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': flags |= VHD_CREATE_FIXED; break;
		case 'F': flags |= VHD_CREATE_OVERWRITE; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (argc - optind != 2)
		return usage(help, true);
	uint64_t size;
	if (parse_size(argv[optind + 1], &size) || size == 0) {
		warnx_("create: '%s' is not a size", argv[optind + 1]);
		return EXIT_USAGE;
	}
	if (vhd_create(argv[optind], size, flags))
		return fail_lib();
	return EXIT_OK;
}
