/* messages.c - messages, usage and exit codes of the programs. */
#include <errno.h>
#include <stdarg.h>

#include "common.h"

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
