/* map.c - `vhd map FILE`: the allocated extents of a VHD or of its chain. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd map [--chain] [--sectors] [--json] FILE\n"
	"\n"
	"List the extents of the virtual disk that FILE itself holds (sectors\n"
	"whose bitmap bit is set; everything for a fixed disk), one per line:\n"
	"  OFFSET LENGTH\n"
	"With --chain, list the extents held by any layer of FILE's chain and\n"
	"the layer each comes from (0 = FILE, 1 = its parent, ...):\n"
	"  OFFSET LENGTH LAYER PATH\n"
	"Adjacent sectors from the same layer form one extent.  Offsets and\n"
	"lengths are in bytes unless --sectors is given.\n"
	"\n"
	"Options:\n"
	"  -c, --chain     follow the parent chain\n"
	"  -s, --sectors   print offsets and lengths in 512-byte sectors\n"
	"  -j, --json      print a JSON array of {offset, length[, layer, path]}\n"
	"                  (always in bytes)\n"
	"  -h, --help      this text\n"
	"\n"
	"Examples:\n"
	"  vhd map disk.vhd\n"
	"  vhd map --chain --json leaf.vhd\n";

struct map_out {
	bool chain, sectors;
	char **layers;              /* path of each layer, index = layer */
	unsigned nlayers;
	struct json_object *json;   /* NULL for text output */
};

static int print_extent(uint64_t off, uint64_t len, unsigned layer, void *opaque)
{
	struct map_out *m = opaque;
	const char *path = layer < m->nlayers ? m->layers[layer] : "?";
	if (m->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "offset", json_object_new_uint64(off));
		json_object_object_add(o, "length", json_object_new_uint64(len));
		if (m->chain) {
			json_object_object_add(o, "layer", json_object_new_int((int)layer));
			json_object_object_add(o, "path", json_object_new_string(path));
		}
		json_object_array_add(m->json, o);
		return 0;
	}
	if (m->sectors) {
		off /= VHD_SECTOR_SIZE;
		len /= VHD_SECTOR_SIZE;
	}
	if (m->chain)
		printf("%" PRIu64 " %" PRIu64 " %u %s\n", off, len, layer, path);
	else
		printf("%" PRIu64 " %" PRIu64 "\n", off, len);
	return 0;
}

/* Parent paths come back as "dir/./././p.vhd": drop the "./" parts. */
static char *tidy_path(const char *path)
{
	char *t = strdup(path);
	if (!t)
		return NULL;
	char *w = t;
	for (const char *r = path; *r;) {
		if (r[0] == '.' && r[1] == '/' && (r == path || r[-1] == '/') && r[2]) {
			r += 2;
			continue;
		}
		*w++ = *r++;
	}
	*w = 0;
	return t;
}

static int collect_layers(vhd_t *v, struct map_out *m)
{
	m->nlayers = vhd_chain_depth(v);
	m->layers = calloc(m->nlayers, sizeof *m->layers);
	unsigned n = 0;
	for (vhd_t *l = v; m->layers && l && n < m->nlayers; l = vhd_get_parent(l)) {
		struct vhd_info i;
		vhd_get_info(l, &i);
		if (!(m->layers[n++] = tidy_path(i.path)))
			break;
	}
	if (!m->layers || (n && !m->layers[n - 1])) {
		warnx_("map: out of memory");
		return -1;
	}
	return 0;
}

int cmd_map(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "chain", no_argument, 0, 'c' },
		{ "sectors", no_argument, 0, 's' },
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct map_out m = { 0 };
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "csjh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': m.chain = true; break;
		case 's': m.sectors = true; break;
		case 'j': json = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (argc - optind != 1)
		return usage(help, true);
	vhd_t *v = vhd_open(argv[optind], VHD_OPEN_RDONLY | (m.chain ? 0 : VHD_OPEN_NO_PARENT));
	if (!v)
		return fail_lib();
	int rc = EXIT_FAIL;
	if (collect_layers(v, &m))
		goto out;
	if (json)
		m.json = json_object_new_array();
	if (vhd_map(v, m.chain, print_extent, &m) < 0) {
		rc = fail_lib();
		json_object_put(m.json);
		goto out;
	}
	if (json)
		json_print(m.json);
	rc = EXIT_OK;
out:
	for (unsigned i = 0; m.layers && i < m.nlayers; i++)
		free(m.layers[i]);
	free(m.layers);
	vhd_close(v);
	return rc;
}
