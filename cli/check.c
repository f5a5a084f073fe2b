/* check.c - `vhd check`: every problem of VHD images, one line each. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd check [--data] [--chain] [--no-time] [--json] FILE...\n"
	"\n"
	"Check each FILE without trusting any of it and report every problem\n"
	"found, one line each (\"FILE: message\"), then \"FILE is valid\" or\n"
	"\"FILE: N problem(s)\".  Messages use vhd-util check's wording.\n"
	"\n"
	"  -d, --data      also read the data: sectors holding data where the\n"
	"                  bitmap is clear, batmap bits that disagree with bitmaps\n"
	"  -c, --chain     check every ancestor too\n"
	"  -t, --no-time   do not test for timestamps in the future\n"
	"  -j, --json      print {\"path\", \"valid\", \"problems\", \"notes\"}\n"
	"  -h, --help      this text\n"
	"\n"
	"Exit status: 0 valid, 3 invalid, 1 the check could not run, 2 usage.\n"
	"\n"
	"Examples:\n"
	"  vhd check disk.vhd\n"
	"  vhd check --chain --data leaf.vhd\n"
	"  vhd check --json /srv/sr/*.vhd\n";

struct run {
	bool json;
	struct json_object *problems, *notes;
	struct progress bar;
	bool bar_started;
};

static void on_problem(const struct vhd_problem *p, void *opaque)
{
	struct run *r = opaque;
	if (r->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "path", json_object_new_string(p->path));
		json_object_object_add(o, "message", json_object_new_string(p->message));
		if (!p->note)
			json_object_object_add(o, "fatal", json_object_new_boolean(p->fatal));
		json_object_array_add(p->note ? r->notes : r->problems, o);
		return;
	}
	if (r->bar.active && r->bar_started)
		fputs("\r\033[K", stderr);   /* the bar's line gives way to the message */
	printf("%s: %s%s\n", p->path, p->note ? "note: " : "", p->message);
	fflush(stdout);
}

static int on_progress(const struct vhd_progress *p, void *opaque)
{
	struct run *r = opaque;
	if (!strcmp(p->phase, "done")) {
		if (r->bar_started)
			progress_end(&r->bar);
		r->bar_started = false;
		return 0;
	}
	if (!r->bar_started) {
		progress_start(&r->bar, "check", p->bytes_total);
		r->bar_started = true;
	}
	progress_update(&r->bar, p->bytes_done);
	return 0;
}

static struct json_object *json_result(const char *path, int n, struct run *r)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "valid", json_object_new_boolean(n == 0));
	if (n < 0)
		json_object_object_add(o, "error", json_object_new_string(vhd_get_error()));
	json_object_object_add(o, "problems", r->problems);
	json_object_object_add(o, "notes", r->notes);
	return o;
}

/* Check one file; returns its exit code. */
static int check_one(const char *path, int flags, struct run *r, struct json_object *out)
{
	r->problems = json_object_new_array();
	r->notes = json_object_new_array();
	r->bar_started = false;
	int n = vhd_check_progress(path, flags, on_problem, r, on_progress, r);
	if (r->json) {
		json_object_array_add(out, json_result(path, n, r));
	} else {
		json_object_put(r->problems);
		json_object_put(r->notes);
		if (n < 0)
			warnx_("%s", vhd_get_error());
		else if (n == 0)
			printf("%s is valid\n", path);
		else
			printf("%s: %d problem%s\n", path, n, n == 1 ? "" : "s");
	}
	return n < 0 ? EXIT_FAIL : n ? EXIT_INVALID : EXIT_OK;
}

static void print_json(struct json_object *out)
{
	if (json_object_array_length(out) == 1) {
		struct json_object *one = json_object_get(json_object_array_get_idx(out, 0));
		json_object_put(out);
		json_print(one);
	} else {
		json_print(out);
	}
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", no_argument, NULL, 'd' },
		{ "chain", no_argument, NULL, 'c' },
		{ "no-time", no_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct run r = { 0 };
	int flags = 0, opt;
	while ((opt = getopt_long(argc, argv, "dctjh", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': flags |= VHD_CHECK_DATA; break;
		case 'c': flags |= VHD_CHECK_CHAIN; break;
		case 't': flags |= VHD_CHECK_NO_TIME; break;
		case 'j': r.json = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (optind >= argc)
		return usage(help, true);
	struct json_object *out = json_object_new_array();
	bool failed = false, invalid = false;
	for (int i = optind; i < argc; i++) {
		int rc = check_one(argv[i], flags, &r, out);
		failed |= rc == EXIT_FAIL;
		invalid |= rc == EXIT_INVALID;
	}
	if (r.json)
		print_json(out);
	else
		json_object_put(out);
	return failed ? EXIT_FAIL : invalid ? EXIT_INVALID : EXIT_OK;
}
