/* io-priority.c - "--io-priority idle|best-effort[:N]" as the programs
 * take it. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

int parse_io_priority(const char *s, int *prio)
{
	if (!strcmp(s, "idle")) {
		*prio = VHD_IO_PRIORITY_IDLE;
		return 0;
	}
	const char *be = "best-effort";
	size_t n = strlen(be);
	if (strncmp(s, be, n) || (s[n] && s[n] != ':'))
		return -1;
	long level = 4;   /* the kernel's default level for best-effort */
	if (s[n] == ':') {
		char *end;
		const char *digits = s + n + 1;
		level = strtol(digits, &end, 10);
		if (end == digits || *end || level < 0 || level > 7)
			return -1;
	}
	*prio = VHD_IO_PRIORITY_BEST_EFFORT((int)level);
	return 0;
}

const char *io_priority_name(int prio, char *buf, size_t len)
{
	if (!prio)
		snprintf(buf, len, "inherited");
	else if (prio == VHD_IO_PRIORITY_IDLE)
		snprintf(buf, len, "idle");
	else
		snprintf(buf, len, "best-effort:%d", prio & 7);
	return buf;
}
