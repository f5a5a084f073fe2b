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

/* The library says EBADMSG (ELOOP: a chain that loops) for a damaged
 * image, EINVAL for a request that does not fit the files (the admin
 * fixes the command, not the image). */
int exit_code_of(int e)
{
	switch (e) {
	case EBADMSG:
	case ELOOP:
		return EXIT_INVALID;
	case EINVAL:
	case ENAMETOOLONG:
		return EXIT_USAGE;
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

int fail_lib(void)
{
	fprintf(stderr, "vhd: %s\n", vhd_get_error());
	return exit_code_of(vhd_get_errno());
}

int usage(const char *text, bool error)
{
	fputs(text, error ? stderr : stdout);
	return error ? EXIT_USAGE : EXIT_OK;
}
