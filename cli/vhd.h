/* vhd.h - the `vhd` subcommands (cli/), and the entry points of the other
 * programs that cli/main.c dispatches to (not installed). */
#ifndef VHD_CLI_H
#define VHD_CLI_H

#include "common.h"

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
int cmd_serve(int argc, char **argv);
int cmd_live_coalesce(int argc, char **argv);

/* The other programs (gc/, vhdutil/): cli/main.c is the only file that
 * knows them all. */
int cmd_gc(int argc, char **argv);            /* gc/main.c: vhd gc ... */
int vhdutil_main(int argc, char **argv);      /* vhdutil/main.c: argv[0] vhd-util */

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
	{ "io-priority", required_argument, NULL, 'I' },                   \
	{ "force", no_argument, NULL, 'f' }
#define MERGE_OPTIONS_HELP                                                         \
	"  -r, --rate-limit RATE   copy at most RATE bytes/s (K/M/G suffixes)\n"      \
	"      --progress MODE     bar (a terminal's default), json (one object per\n" \
	"                          line on stdout), none\n"                            \
	"  -B, --batch-blocks N    blocks per durable step (default 256)\n"            \
	"      --io-priority P     the kernel I/O priority of the copy: idle, or\n"   \
	"                          best-effort[:N], N 0 (high) to 7 (default: inherited)\n" \
	"      --no-space-check    do not refuse when free space looks too small\n"   \
	"  -f, --force             merge into a base that is not hidden or has\n"\
	"                          other children (their content changes)\n"
/* Install SIGINT/SIGTERM handlers that ask the merge to stop, set the
 * progress callback, and map the result to an exit code. */
void merge_prepare(struct merge_cli *m);
int merge_result(struct merge_cli *m, int rc, const char *what);

#endif
