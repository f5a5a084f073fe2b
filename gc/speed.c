/* speed.c - the GC's measured merge speed, kept in the SR across restarts.
 *
 * After every merge that moved data, the speed (bytes moved over the
 * operation's wall time, so relink and sync count too) updates an
 * exponentially weighted mean of the merges that ran under the same rate
 * limit (a new limit starts it again: a speed measured under a limit says
 * nothing of the speed without it), saved to DIR/.vhd-gc-speed, a JSON object
 *   {"version":1,"bytes_per_second":N,"samples":N,"rate_limit":N,"updated":UNIX_TIME}
 * written to a temporary file, synced, renamed over the old one, the
 * directory synced.  The file is read at start as hostile input: a regular
 * file of at most 4 KiB, every field present, of its type and in range; a
 * file that is not is ignored with a log line (the speed is then unknown
 * until a merge ends). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gc.h"

#define SPEED_FILE ".vhd-gc-speed"
#define SPEED_MAX_BYTES 4096
#define SPEED_MAX 1e12         /* 1 TB/s: more is not a measurement */
#define SPEED_WEIGHT 0.3       /* of the newest sample in the mean */

static int speed_path(const char *dir, const char *suffix, char *out, size_t len)
{
	return (size_t)snprintf(out, len, "%s/" SPEED_FILE "%s", dir, suffix) < len ? 0 : -1;
}

int gc_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd >= 0 ? fsync(fd) : -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The file's text (NUL-terminated, caller frees), or NULL with WHY set;
 * *MISSING when there is no file. */
static char *read_small(const char *path, bool *missing, char *why, size_t len)
{
	*missing = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	char *text = NULL;
	if (fd < 0) {
		*missing = errno == ENOENT;
		snprintf(why, len, "%s", strerror(errno));
	} else if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(why, len, "not a regular file");
	} else if (st.st_size > SPEED_MAX_BYTES) {
		snprintf(why, len, "%lld bytes, more than %d", (long long)st.st_size, SPEED_MAX_BYTES);
	} else if (!(text = calloc(1, SPEED_MAX_BYTES + 1))) {
		snprintf(why, len, "out of memory");
	} else {
		ssize_t n = read(fd, text, SPEED_MAX_BYTES);
		if (n < 0 || memchr(text, 0, (size_t)n)) {
			snprintf(why, len, "%s", n < 0 ? strerror(errno) : "a NUL byte in the text");
			free(text);
			text = NULL;
		}
	}
	if (fd >= 0)
		close(fd);
	return text;
}

/* FIELD of O as a number in [LO, HI]; -1 with WHY set if it is not one. */
static int number_field(json_object *o, const char *field, bool integer, double lo, double hi,
                        double *out, char *why, size_t len)
{
	json_object *v;
	if (!json_object_object_get_ex(o, field, &v) ||
	    !(json_object_is_type(v, json_type_int) ||
	      (!integer && json_object_is_type(v, json_type_double)))) {
		snprintf(why, len, "\"%s\": missing or not %s", field, integer ? "an integer" : "a number");
		return -1;
	}
	*out = json_object_get_double(v);
	if (!isfinite(*out) || *out < lo || *out > hi) {
		snprintf(why, len, "\"%s\": %g out of range [%g, %g]", field, *out, lo, hi);
		return -1;
	}
	return 0;
}

/* Parse TEXT (whole, one object) into the speed and its sample count. */
static int parse_speed(const char *text, double *speed, double *samples, double *limit,
                       char *why, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, text, (int)strlen(text)) : NULL;
	size_t used = tok ? json_tokener_get_parse_end(tok) : 0;
	double version, updated;
	int rc = -1;
	if (!o || !json_object_is_type(o, json_type_object))
		snprintf(why, len, "not a JSON object");
	else if (text[used + strspn(text + used, " \t\r\n")])
		snprintf(why, len, "text after the object");
	else if (!number_field(o, "version", true, 1, 1, &version, why, len) &&
	         !number_field(o, "bytes_per_second", false, 1, SPEED_MAX, speed, why, len) &&
	         !number_field(o, "samples", true, 1, 1e9, samples, why, len) &&
	         !number_field(o, "rate_limit", true, 0, 1e15, limit, why, len) &&
	         !number_field(o, "updated", true, 0, 1e11, &updated, why, len))
		rc = 0;
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

void gc_speed_load(struct gc *g)
{
	char path[PATH_MAX], why[256];
	bool missing;
	double speed, samples, limit;
	if (speed_path(g->o.dir, "", path, sizeof path))
		return;
	char *text = read_small(path, &missing, why, sizeof why);
	if (text && !parse_speed(text, &speed, &samples, &limit, why, sizeof why)) {
		pthread_mutex_lock(&g->lock);
		g->speed = speed;
		g->speed_samples = (unsigned)samples;
		g->speed_limit = (uint64_t)limit;
		pthread_mutex_unlock(&g->lock);
		gc_log(g, false, "merge speed %.0f bytes/s (%u merges, rate limit %llu), from %s", speed,
		       g->speed_samples, (unsigned long long)g->speed_limit, path);
	} else if (!missing) {
		gc_log(g, false, "%s: ignored, the merge speed is unknown until a merge ends: %s",
		       path, why);
	}
	free(text);
}

static int save_speed(const char *dir, double speed, unsigned samples, uint64_t limit, char *why,
                      size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX], text[256];
	if (speed_path(dir, "", path, sizeof path) || speed_path(dir, ".tmp", tmp, sizeof tmp)) {
		snprintf(why, len, "path too long");
		return -1;
	}
	int n = snprintf(text, sizeof text,
	                 "{\"version\":1,\"bytes_per_second\":%.17g,\"samples\":%u,"
	                 "\"rate_limit\":%llu,\"updated\":%lld}\n",
	                 speed, samples, (unsigned long long)limit, (long long)time(NULL));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	bool ok = fd >= 0 && write(fd, text, (size_t)n) == n && !fsync(fd);
	snprintf(why, len, "%s: %s", tmp, strerror(errno));
	if (fd >= 0 && close(fd))
		ok = false;
	if (ok && rename(tmp, path)) {
		snprintf(why, len, "%s: rename: %s", path, strerror(errno));
		ok = false;
	}
	if (!ok) {
		unlink(tmp);
		return -1;
	}
	gc_fsync_dir(dir);
	return 0;
}

double gc_speed_mean(double mean, unsigned samples, double sample)
{
	return samples ? SPEED_WEIGHT * sample + (1 - SPEED_WEIGHT) * mean : sample;
}

void gc_speed_note(struct gc *g, uint64_t bytes, double secs, uint64_t limit)
{
	if (!bytes || secs <= 0)
		return;
	double sample = (double)bytes / secs;
	if (!isfinite(sample) || sample > SPEED_MAX)
		return;
	pthread_mutex_lock(&g->lock);
	if (limit != g->speed_limit)
		g->speed_samples = 0;   /* another limit: start again */
	g->speed = gc_speed_mean(g->speed, g->speed_samples, sample);
	g->speed_limit = limit;
	if (g->speed_samples < 1000000000u)
		g->speed_samples++;
	double speed = g->speed;
	unsigned samples = g->speed_samples;
	pthread_mutex_unlock(&g->lock);
	char why[PATH_MAX + 64];
	if (save_speed(g->o.dir, speed, samples, limit, why, sizeof why))
		gc_log(g, true, "saving the merge speed: %s", why);
}
