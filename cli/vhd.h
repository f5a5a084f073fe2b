/* vhd.h - shared pieces of the `vhd` command (not installed). */
#ifndef VHD_CLI_H
#define VHD_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "vhdkit.h"

/* blktap's mark of a raw parent: a differencing disk whose parent UUID is
 * nil (the tools show it from the info and SR-scan structures). */
static inline bool raw_parent_of(int type, const uint8_t parent_uuid[16])
{
	static const uint8_t nil[16];
	return type == VHD_TYPE_DIFF && !memcmp(parent_uuid, nil, sizeof nil);
}

/* Exit codes, documented in README.md and man/vhd.1. */
enum {
	EXIT_OK = 0,        /* success; for check: the image is valid */
	EXIT_FAIL = 1,      /* the operation failed (I/O error, ...) */
	EXIT_USAGE = 2,     /* bad command line */
	EXIT_INVALID = 3,   /* the image is damaged or not a VHD */
	EXIT_REFUSED = 4,   /* refused: file exists, in use, too deep, unsafe repair,
	                       not enough space */
	EXIT_STOPPED = 5,   /* stopped on request (signal); resumable */
};

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_create(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_tree(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_reparent(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_depth(int argc, char **argv);
int cmd_coalesce(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_gc(int argc, char **argv);



/* Print "vhd: <library error>" and return the exit code its errno maps to. */
int fail_lib(void);
/* Print "vhd: <message>" to stderr. */
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print usage text (to stdout for --help, stderr on error); returns EXIT_OK
 * or EXIT_USAGE accordingly. */
int usage(const char *text, bool error);

/* "10G", "512M", "4096", "1.5T": bytes; K/M/G/T are powers of 1024.
 * Returns 0, or -1 for malformed input. */
int parse_size(const char *s, uint64_t *bytes);
/* "1.50 GiB" */
const char *human_size(uint64_t bytes, char *buf, size_t len);
void uuid_string(const uint8_t uuid[16], char out[37]);
const char *type_name(int type);

/* JSON output: print OBJ pretty to stdout and release it. */
void json_print(struct json_object *obj);

/* A progress bar on stderr when it is a terminal; silent otherwise. */
struct progress {
	const char *label;
	uint64_t total, done;
	uint64_t first;       /* done at the first update (a resumed job) */
	bool started;
	double start, last;
	bool active;
};
void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_end(struct progress *p);
double now_seconds(void);

/* merge.c: what coalesce, commit and recover share. */
struct merge_cli {
	struct vhd_coalesce_opts opts;
	enum { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_JSON, PROGRESS_NONE } progress_mode;
	struct progress bar;
	const char *last_phase;
	double last_json;
};
/* Parse one of the shared options (getopt_long codes below); returns 0 if
 * handled, -1 on a bad value, 1 if OPT is not a shared option. */
int merge_option(struct merge_cli *m, int opt, const char *arg);
#define MERGE_OPTIONS                                                  \
	{ "rate-limit", required_argument, NULL, 'r' },                    \
	{ "progress", required_argument, NULL, 'P' },                      \
	{ "batch-blocks", required_argument, NULL, 'B' },                  \
	{ "no-space-check", no_argument, NULL, 'S' },                      \
	{ "force", no_argument, NULL, 'f' }
#define MERGE_OPTIONS_HELP                                                         \
	"  -r, --rate-limit RATE   copy at most RATE bytes/s (K/M/G suffixes)\n"      \
	"      --progress MODE     bar (a terminal's default), json (one object per\n" \
	"                          line on stdout), none\n"                            \
	"  -B, --batch-blocks N    blocks per durable step (default 256)\n"            \
	"      --no-space-check    do not refuse when free space looks too small\n"   \
	"  -f, --force             merge into a base that is not hidden or has\n"\
	"                          other children (their content changes)\n"
/* Install SIGINT/SIGTERM handlers that ask the merge to stop, set the
 * progress callback, and map the result to an exit code. */
void merge_prepare(struct merge_cli *m);
int merge_result(struct merge_cli *m, int rc, const char *what);

#endif
