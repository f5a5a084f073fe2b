/* error.c - the per-thread last error, and debug output. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[1024];
static _Thread_local int last_errno;

VHD_EXPORT const char *vhd_get_error(void)
{
	return last_error;
}

VHD_EXPORT int vhd_get_errno(void)
{
	return last_errno;
}

int vhd_error(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	last_errno = errnum ? errnum : EIO;
	errno = last_errno;
	return -1;
}

int vhd_error_prefix(const char *prefix)
{
	char tmp[sizeof last_error];
	size_t n = strlen(prefix);
	if (n > sizeof tmp - 3)
		n = sizeof tmp - 3;
	memcpy(tmp, prefix, n);
	memcpy(tmp + n, ": ", 2);
	size_t m = strnlen(last_error, sizeof tmp - n - 3);
	memcpy(tmp + n + 2, last_error, m);
	tmp[n + 2 + m] = 0;
	memcpy(last_error, tmp, sizeof last_error);
	errno = last_errno;
	return -1;
}

int vhd_error_recode(int errnum)
{
	last_errno = errnum;
	errno = errnum;
	return -1;
}

void vhd_debug(const char *path, const char *fmt, ...)
{
	static int enabled = -1;   /* read once; benign race: same value */
	if (enabled < 0) {
		const char *e = getenv("VHDKIT_DEBUG");
		enabled = e && *e && strcmp(e, "0");
	}
	if (!enabled)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vhdkit: %s: ", path ? path : "-");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
