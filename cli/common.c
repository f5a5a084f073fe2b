/* common.c - helpers shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhd.h"

void warnx_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vhd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int fail_lib(void)
{
	int e = vhd_get_errno();
	fprintf(stderr, "vhd: %s\n", vhd_get_error());
	switch (e) {
	case EINVAL:
	case ELOOP:
		return EXIT_INVALID;
	case EEXIST:
	case E2BIG:
	case EBUSY:
	case ENOTSUP:
	case EPERM:
		return EXIT_REFUSED;
	default:
		return EXIT_FAIL;
	}
}

int usage(const char *text, bool error)
{
	fputs(text, error ? stderr : stdout);
	return error ? EXIT_USAGE : EXIT_OK;
}

int parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -1;
	double mult = 1;
	switch (*end) {
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
	case 0: break;
	default: return -1;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end)
		return -1;
	v *= mult;
	if (v > 18e18)
		return -1;
	*bytes = (uint64_t)v;
	return 0;
}

const char *human_size(uint64_t b, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, len, "%.2f %s", v, units[u]);
	return buf;
}

void uuid_string(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
	         u[13], u[14], u[15]);
}

const char *type_name(int type)
{
	switch (type) {
	case VHD_TYPE_FIXED: return "fixed";
	case VHD_TYPE_DYNAMIC: return "dynamic";
	case VHD_TYPE_DIFF: return "differencing";
	default: return "unknown";
	}
}

void json_print(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
	                                             JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}

double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void progress_start(struct progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->label = label;
	p->total = total;
	p->start = p->last = now_seconds();
	p->active = isatty(STDERR_FILENO) && total > 0;
}

void progress_update(struct progress *p, uint64_t done)
{
	p->done = done;
	if (!p->active)
		return;
	double t = now_seconds();
	if (t - p->last < 0.2 && done < p->total)
		return;
	p->last = t;
	double frac = p->total ? (double)done / (double)p->total : 1;
	if (!p->started) {   /* a resumed job starts part done: rate from here */
		p->started = true;
		p->first = done;
	}
	double rate = t > p->start && done >= p->first ? (double)(done - p->first) / (t - p->start) : 0;
	double eta = rate > 0 ? (double)(p->total - done) / rate : 0;
	int width = 30, fill = (int)(frac * width);
	char bar[31], a[32], b[32], r[32];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = 0;
	fprintf(stderr, "\r%s [%s] %5.1f%% %s/%s %s/s ETA %.0fs ", p->label, bar, frac * 100,
	        human_size(done, a, sizeof a), human_size(p->total, b, sizeof b),
	        human_size((uint64_t)rate, r, sizeof r), eta);
}

void progress_end(struct progress *p)
{
	if (!p->active)
		return;
	p->last = 0;
	progress_update(p, p->total);
	fputc('\n', stderr);
}
