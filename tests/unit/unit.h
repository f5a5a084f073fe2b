/* unit.h - what the table-driven unit tests (tests/unit/test-*.c) share:
 * CHECK(cond, printf-format, ...) counts a check and, when COND is false,
 * prints "FAIL: file:line: message" and counts a failure; unit_done(NAME)
 * prints the totals and gives main's exit status. */
#ifndef VHDKIT_UNIT_H
#define VHDKIT_UNIT_H

#include <stdio.h>

static unsigned unit_checks, unit_failures;

#define CHECK(cond, ...) do {                                               \
		unit_checks++;                                              \
		if (!(cond)) {                                              \
			unit_failures++;                                    \
			fprintf(stderr, "FAIL: %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
		}                                                           \
	} while (0)

static inline int unit_done(const char *name)
{
	printf("%s: %u checks, %u failed\n", name, unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}

#endif
