/* depth.c - `vhd depth FILE`: the number of files in FILE's chain. */
#include <getopt.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd depth [--json] FILE\n"
	"\n"
	"Print the depth of FILE's chain: 1 for a disk without parent, 2 for a\n"
	"child of it, ...  Fails if a parent cannot be opened.\n"
	"\n"
	"Example:\n"
	"  vhd depth leaf.vhd\n";

int cmd_depth(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (argc - optind != 1)
		return usage(help, true);
	vhd_t *v = vhd_open(argv[optind], VHD_OPEN_RDONLY);
	if (!v)
		return fail_lib();
	unsigned d = vhd_chain_depth(v);
	vhd_close(v);
	if (json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "path", json_object_new_string(argv[optind]));
		json_object_object_add(o, "depth", json_object_new_int((int)d));
		json_print(o);
	} else {
		printf("%u\n", d);
	}
	return EXIT_OK;
}
