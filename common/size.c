/* size.c - sizes as people write and read them ("10G", "1.50 GiB"). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "common.h"

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
	case 0: case 'B': break;
	default: return -1;
	}
	/* then "iB" ("4KiB") or "B" ("4KB", "512B") */
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
