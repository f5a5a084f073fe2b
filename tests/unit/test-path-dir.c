/* test-path-dir.c - path_dir(): the directory the merge, relink and lock
 * code look in, for bare names (no '/') as for full paths. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const struct {
	const char *path, *dir;
} cases[] = {
	{ "child.vhd", "." },
	{ "./child.vhd", "." },
	{ "sr/child.vhd", "sr" },
	{ "/child.vhd", "/" },
	{ "/var/sr/child.vhd", "/var/sr" },
	{ "../sr/child.vhd", "../sr" },
	{ "", "." },
};

int main(void)
{
	int failed = 0;
	size_t n = sizeof cases / sizeof cases[0];
	for (size_t i = 0; i < n; i++) {
		char buf[64];
		const char *got = path_dir(cases[i].path, buf, sizeof buf);
		if (strcmp(got, cases[i].dir)) {
			printf("FAIL: path_dir(\"%s\") = \"%s\", expected \"%s\"\n", cases[i].path, got,
			       cases[i].dir);
			failed = 1;
		}
	}
	char small[4];   /* truncated, never overrun */
	if (strcmp(path_dir("abcdef/x", small, sizeof small), "abc"))
		printf("FAIL: a short buffer is not truncated\n"), failed = 1;
	if (!failed)
		printf("ok: test-path-dir: %zu paths and a short buffer\n", n);
	return failed;
}
