/* info.c - `vhd info FILE`: footer, header, locators, batmap, allocation. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd info [--json] FILE\n"
	"\n"
	"Show a VHD's footer, dynamic header, parent locators, batmap, an\n"
	"allocation summary and the depth of its chain.  A damaged file is shown\n"
	"as far as it can be read (the backup footer is used if the primary is\n"
	"bad); run 'vhd check' for a verdict.\n"
	"\n"
	"Options:\n"
	"  -j, --json   print one JSON object (sizes in bytes)\n"
	"  -h, --help   this text\n"
	"\n"
	"Example:\n"
	"  vhd info --json disk.vhd\n";

static int add_run(uint64_t off, uint64_t len, unsigned layer, void *opaque)
{
	(void)off;
	(void)layer;
	*(uint64_t *)opaque += len;
	return 0;
}

static void time_string(uint32_t vhd_time, char *buf, size_t len)
{
	time_t t = (time_t)vhd_time_to_unix(vhd_time);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void code_string(uint32_t code, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(code >> (24 - 8 * i));
		out[i] = c >= 32 && c < 127 ? c : '?';
	}
	out[4] = 0;
}

struct facts {
	struct vhd_info i;
	uint64_t data_bytes;        /* sectors this file holds */
	int depth;                  /* -1: chain cannot be opened */
	char depth_error[256];
};

static struct json_object *locators_json(vhd_t *v)
{
	struct json_object *arr = json_object_new_array();
	for (int n = 0; n < 8; n++) {
		struct vhd_locator_info l;
		if (vhd_get_locator(v, n, &l) || !l.code)
			continue;
		char code[5];
		code_string(l.code, code);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "slot", json_object_new_int(n));
		json_object_object_add(o, "code", json_object_new_string(code));
		json_object_object_add(o, "data_space", json_object_new_int64(l.data_space));
		json_object_object_add(o, "data_length", json_object_new_int64(l.data_length));
		json_object_object_add(o, "data_offset", json_object_new_uint64(l.data_offset));
		json_object_object_add(o, "path", l.name ? json_object_new_string(l.name) : NULL);
		json_object_array_add(arr, o);
		free(l.name);
	}
	return arr;
}

static void print_json(vhd_t *v, const struct facts *f)
{
	const struct vhd_info *i = &f->i;
	char u[37], ts[64];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(i->path));
	json_object_object_add(o, "type", json_object_new_string(type_name(i->type)));
	json_object_object_add(o, "virtual_size", json_object_new_uint64(i->virtual_size));
	json_object_object_add(o, "original_size", json_object_new_uint64(i->original_size));
	json_object_object_add(o, "file_size", json_object_new_uint64(i->file_size));
	uuid_string(i->uuid, u);
	json_object_object_add(o, "uuid", json_object_new_string(u));
	json_object_object_add(o, "hidden", json_object_new_boolean(i->hidden));
	time_string(i->timestamp, ts, sizeof ts);
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	json_object_object_add(o, "creator_app", json_object_new_string(i->creator_app));
	json_object_object_add(o, "creator_version", json_object_new_int64(i->creator_version));
	json_object_object_add(o, "geometry", json_object_new_int64(i->geometry));
	json_object_object_add(o, "data_bytes", json_object_new_uint64(f->data_bytes));
	json_object_object_add(o, "chain_depth", f->depth < 0 ? NULL : json_object_new_int(f->depth));
	if (f->depth < 0)
		json_object_object_add(o, "chain_error", json_object_new_string(f->depth_error));
	if (i->type != VHD_TYPE_FIXED) {
		json_object_object_add(o, "block_size", json_object_new_int64(i->block_size));
		json_object_object_add(o, "table_offset", json_object_new_uint64(i->table_offset));
		json_object_object_add(o, "max_bat_entries", json_object_new_int64(i->max_bat_entries));
		json_object_object_add(o, "allocated_blocks", json_object_new_int64(i->allocated_blocks));
		struct json_object *b = NULL;
		if (i->has_batmap) {
			b = json_object_new_object();
			json_object_object_add(b, "map_offset", json_object_new_uint64(i->batmap_offset));
			json_object_object_add(b, "map_sectors", json_object_new_int64(i->batmap_sectors));
			json_object_object_add(b, "version", json_object_new_int64(i->batmap_version));
			json_object_object_add(b, "full_blocks", json_object_new_int64(i->full_blocks));
		}
		json_object_object_add(o, "batmap", b);
	}
	if (i->type == VHD_TYPE_DIFF) {
		uuid_string(i->parent_uuid, u);
		json_object_object_add(o, "parent_uuid", json_object_new_string(u));
		json_object_object_add(o, "parent_name", json_object_new_string(i->parent_name ? i->parent_name : ""));
		time_string(i->parent_timestamp, ts, sizeof ts);
		json_object_object_add(o, "parent_timestamp", json_object_new_string(ts));
		json_object_object_add(o, "parent_raw", json_object_new_boolean(raw_parent_of(i->type, i->parent_uuid)));
		json_object_object_add(o, "locators", locators_json(v));
	}
	json_print(o);
}

static void print_text(vhd_t *v, const struct facts *f)
{
	const struct vhd_info *i = &f->i;
	char u[37], ts[64], a[32], b[32];
	printf("File:             %s\n", i->path);
	printf("Type:             %s\n", type_name(i->type));
	printf("Virtual size:     %s (%llu bytes)\n", human_size(i->virtual_size, a, sizeof a),
	       (unsigned long long)i->virtual_size);
	if (i->original_size != i->virtual_size)
		printf("Original size:    %s (%llu bytes)\n", human_size(i->original_size, a, sizeof a),
		       (unsigned long long)i->original_size);
	printf("File size:        %s (%llu bytes)\n", human_size(i->file_size, a, sizeof a),
	       (unsigned long long)i->file_size);
	printf("Data in file:     %s\n", human_size(f->data_bytes, a, sizeof a));
	uuid_string(i->uuid, u);
	printf("UUID:             %s\n", u);
	printf("Hidden:           %s\n", i->hidden ? "yes" : "no");
	time_string(i->timestamp, ts, sizeof ts);
	printf("Created:          %s\n", ts);
	printf("Creator:          '%s' %u.%u\n", i->creator_app, i->creator_version >> 16,
	       i->creator_version & 0xffff);
	printf("Geometry (CHS):   %u/%u/%u\n", i->geometry >> 16, (i->geometry >> 8) & 0xff,
	       i->geometry & 0xff);
	if (i->type != VHD_TYPE_FIXED) {
		printf("Block size:       %s\n", human_size(i->block_size, a, sizeof a));
		printf("BAT:              %u entries at offset %llu, %u allocated (%s)\n",
		       i->max_bat_entries, (unsigned long long)i->table_offset, i->allocated_blocks,
		       human_size((uint64_t)i->allocated_blocks * i->block_size, b, sizeof b));
		if (i->has_batmap)
			printf("Batmap:           %u sector(s) at offset %llu, version %u.%u, %u full block(s)\n",
			       i->batmap_sectors, (unsigned long long)i->batmap_offset,
			       i->batmap_version >> 16, i->batmap_version & 0xffff, i->full_blocks);
		else
			printf("Batmap:           none\n");
	}
	if (i->type == VHD_TYPE_DIFF) {
		uuid_string(i->parent_uuid, u);
		time_string(i->parent_timestamp, ts, sizeof ts);
		printf("Parent name:      %s\n", i->parent_name ? i->parent_name : "");
		printf("Parent UUID:      %s%s\n", u,
		       raw_parent_of(i->type, i->parent_uuid) ? " (nil: the parent is a raw image)" : "");
		printf("Parent timestamp: %s\n", ts);
		for (int n = 0; n < 8; n++) {
			struct vhd_locator_info l;
			if (vhd_get_locator(v, n, &l) || !l.code)
				continue;
			char code[5];
			code_string(l.code, code);
			printf("Locator %d:        %s %u bytes at %llu: %s\n", n, code, l.data_length,
			       (unsigned long long)l.data_offset, l.name ? l.name : "(undecodable)");
			free(l.name);
		}
	}
	if (f->depth >= 0)
		printf("Chain depth:      %d\n", f->depth);
	else
		printf("Chain depth:      unknown (%s)\n", f->depth_error);
}

int cmd_info(int argc, char **argv)
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
	const char *path = argv[optind];
	vhd_t *v = vhd_open(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT | VHD_OPEN_LAX);
	if (!v)
		return fail_lib();
	struct facts f;
	memset(&f, 0, sizeof f);
	vhd_get_info(v, &f.i);
	if (vhd_map(v, 0, add_run, &f.data_bytes) < 0)
		f.data_bytes = 0;
	vhd_t *chain = vhd_open(path, VHD_OPEN_RDONLY);
	if (chain) {
		f.depth = (int)vhd_chain_depth(chain);
		vhd_close(chain);
	} else {
		f.depth = -1;
		snprintf(f.depth_error, sizeof f.depth_error, "%s", vhd_get_error());
	}
	if (json)
		print_json(v, &f);
	else
		print_text(v, &f);
	vhd_close(v);
	return EXIT_OK;
}
