/* resize.c - `vhd resize FILE SIZE`: grow the virtual size. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd resize [--json] FILE [+]SIZE\n"
	"\n"
	"Grow FILE's virtual size to SIZE (or by SIZE with a leading '+'; K, M, G, T\n"
	"suffixes).  The new space reads as zeros; the content is unchanged.\n"
	"Crash-safe: an interruption leaves the old or the new size, never a damaged\n"
	"image.  When the block table must grow, the blocks in its way are moved to\n"
	"the end of the file first.  Shrinking is refused.\n"
	"\n"
	"Options:\n"
	"  -j, --json   print the old and new sizes as JSON\n"
	"  -h, --help   this text\n"
	"\n"
	"Examples:\n"
	"  vhd resize disk.vhd 40G\n"
	"  vhd resize disk.vhd +10G\n";

static int resize_file(const char *path, bool relative, uint64_t size, bool json);

int cmd_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else
			return usage(help, opt != 'h');
	}
	if (optind != argc - 2)
		return usage(help, true);
	const char *path = argv[optind], *arg = argv[optind + 1];
	bool relative = arg[0] == '+';
	uint64_t size;
	if (parse_size(arg + relative, &size)) {
		warnx_("bad size '%s'", arg);
		return usage(help, true);
	}
	int lk = vhd_sr_lock_file(path, 1);   /* the GC plans under it */
	if (lk < 0)
		return fail_lib();
	int rc = resize_file(path, relative, size, json);
	vhd_sr_unlock(lk);
	return rc;
}

static int resize_file(const char *path, bool relative, uint64_t size, bool json)
{
	vhd_t *v = vhd_open(path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT);
	if (!v)
		return fail_lib();
	struct vhd_info before, after;
	vhd_get_info(v, &before);
	uint64_t target = relative ? before.virtual_size + size : size;
	if (target < before.virtual_size) {
		vhd_close(v);
		warnx_("%s: shrinking (%llu to %llu bytes) is not supported", path,
		       (unsigned long long)before.virtual_size, (unsigned long long)target);
		return EXIT_REFUSED;
	}
	if (vhd_resize(v, target)) {
		int rc = fail_lib();
		vhd_close(v);
		return rc;
	}
	vhd_get_info(v, &after);
	if (vhd_close(v))
		return fail_lib();
	if (json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "path", json_object_new_string(path));
		json_object_object_add(o, "old_size", json_object_new_uint64(before.virtual_size));
		json_object_object_add(o, "new_size", json_object_new_uint64(after.virtual_size));
		json_print(o);
	} else {
		char a[32], b[32];
		printf("%s: %s -> %s\n", path, human_size(before.virtual_size, a, sizeof a),
		       human_size(after.virtual_size, b, sizeof b));
	}
	return EXIT_OK;
}
