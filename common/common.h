/* common.h - what the programs (vhd, vhd gc, vhd-util) share: exit codes,
 * messages, size parsing, JSON printing and the progress bar.  Not installed;
 * sees only the public header. */
#ifndef VHDKIT_COMMON_H
#define VHDKIT_COMMON_H

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
	EXIT_USAGE = 2,     /* bad command line, or arguments that do not fit the
	                       files (coalescing a disk without a parent) */
	EXIT_INVALID = 3,   /* the image is damaged or not a VHD */
	EXIT_REFUSED = 4,   /* refused: file exists, in use, too deep, unsafe repair,
	                       not enough space */
	EXIT_STOPPED = 5,   /* stopped on request (signal); resumable */
};

/* The exit code for the library's errno E. */
int exit_code_of(int e);
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
/* "idle", "best-effort" (level 4) or "best-effort:N" (N 0..7) into the
 * value of vhd_coalesce_opts.io_priority; -1 for anything else. */
int parse_io_priority(const char *s, int *prio);
#define IO_PRIORITY_USAGE "idle, best-effort or best-effort:N with N 0 (high) to 7"
/* PRIO as parse_io_priority spells it ("inherited" for 0). */
const char *io_priority_name(int prio, char *buf, size_t len);
/* "1.50 GiB" */
const char *human_size(uint64_t bytes, char *buf, size_t len);
void uuid_string(const uint8_t uuid[16], char out[37]);
const char *type_name(int type);
/* S ends with SUFFIX, ignoring case (".VHD" is a VHD name too). */
bool has_suffix(const char *s, const char *suffix);

/* O's member KEY as a string (NULL when absent or not a string), as a
 * number (0 when absent). */
const char *json_str(struct json_object *o, const char *key);
double json_num(struct json_object *o, const char *key);

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

#endif
