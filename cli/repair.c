/* repair.c - `vhd repair [--dry-run] [--force] [--json] FILE`. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd repair [--dry-run] [--force] [--json] FILE\n"
	"\n"
	"Repair what can be repaired safely: restore a damaged primary or backup\n"
	"footer from the other copy, cut trailing garbage after the footer, fix a\n"
	"batmap (bad checksum, or blocks marked full that are not), fix the checksum\n"
	"of a header whose fields all check out, and correct a header parent name\n"
	"that disagrees with locators leading to the right parent.  Each action is\n"
	"printed as it is done.  What cannot be repaired without risking the data\n"
	"(BAT entries into the metadata or overlapping, a bad header cookie, a\n"
	"parent with another UUID) is refused and nothing is written.\n"
	"\n"
	"  -n, --dry-run   say what would be done; write nothing\n"
	"  -f, --force     also repair where data is already lost (a truncated\n"
	"                  file, a BAT entry past the end): that data reads as zeros\n"
	"      --json      print {\"path\", \"actions\", \"refused\", \"dry_run\"}\n"
	"\n"
	"Exit status: 0 repaired or nothing to repair, 1 I/O failure, 2 usage,\n"
	"3 not a VHD, 4 refused (unsafe; nothing written).\n"
	"\n"
	"Examples:\n"
	"  vhd repair --dry-run disk.vhd\n"
	"  vhd repair disk.vhd\n"
	"  vhd repair --force truncated.vhd\n";

struct repair_out {
	bool json;
	struct json_object *actions;
};

static void on_action(const struct vhd_problem *p, void *opaque)
{
	struct repair_out *o = opaque;
	if (o->json)
		json_object_array_add(o->actions, json_object_new_string(p->message));
	else
		printf("%s: %s\n", p->path, p->message);
}

/* The library's message without its leading "PATH: ". */
static const char *reason(const char *path)
{
	const char *m = vhd_get_error();
	size_t n = strlen(path);
	if (!strncmp(m, path, n) && !strncmp(m + n, ": ", 2))
		return m + n + 2;
	return m;
}

static void print_json(const char *path, struct repair_out *o, int rc, bool dry_run)
{
	struct json_object *obj = json_object_new_object();
	json_object_object_add(obj, "path", json_object_new_string(path));
	json_object_object_add(obj, "actions", o->actions);
	bool refused = rc < 0 && exit_code_of(vhd_get_errno()) != EXIT_FAIL;
	json_object_object_add(obj, "refused", refused ? json_object_new_string(reason(path)) : NULL);
	json_object_object_add(obj, "dry_run", json_object_new_boolean(dry_run));
	if (rc < 0 && !refused)
		json_object_object_add(obj, "error", json_object_new_string(reason(path)));
	json_print(obj);
}

int cmd_repair(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, 0, 'n' },
		{ "force", no_argument, 0, 'f' },
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct repair_out o = { 0 };
	int flags = 0, c;
	while ((c = getopt_long(argc, argv, "nfjh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': flags |= VHD_REPAIR_DRY_RUN; break;
		case 'f': flags |= VHD_REPAIR_FORCE; break;
		case 'j': o.json = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (argc - optind != 1)
		return usage(help, true);
	const char *path = argv[optind];
	bool dry_run = flags & VHD_REPAIR_DRY_RUN;
	if (o.json)
		o.actions = json_object_new_array();
	int rc = vhd_repair(path, flags, on_action, &o);
	if (o.json) {
		print_json(path, &o, rc, dry_run);
	} else if (rc == 0) {
		printf("%s: nothing to repair\n", path);
	} else if (rc > 0 && dry_run) {
		printf("%s: dry run: nothing written\n", path);
	}
	if (rc < 0) {
		int code = exit_code_of(vhd_get_errno());
		warnx_("%s%s", vhd_get_error(), code == EXIT_FAIL ? "" : "; nothing was written");
		return code;
	}
	return EXIT_OK;
}
