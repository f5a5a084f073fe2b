/* vhd.h - shared pieces of the `vhd` command (not installed). */
#ifndef VHD_CLI_H
#define VHD_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "vhdkit.h"

/* Exit codes, documented in README.md and man/vhd.1. */
enum {
	EXIT_OK = 0,        /* success; for check: the image is valid */
	EXIT_FAIL = 1,      /* the operation failed (I/O error, ...) */
	EXIT_USAGE = 2,     /* bad command line */
	EXIT_INVALID = 3,   /* the image is damaged or not a VHD */
	EXIT_REFUSED = 4,   /* refused: file exists, in use, too deep, unsafe repair */
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
	double start, last;
	bool active;
};
void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_end(struct progress *p);
double now_seconds(void);

#endif
