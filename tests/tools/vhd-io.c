/* vhd-io.c - test helper: stream a VHD chain's virtual content, or write
 * data into a leaf, through libvhdkit.
 *   vhd-io cat FILE               virtual content to stdout
 *   vhd-io write FILE OFFSET      stdin (a multiple of 512 bytes) at OFFSET */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdkit.h"

#define CHUNK (4u << 20)

static int do_cat(const char *path)
{
	vhd_t *v = vhd_open(path, VHD_OPEN_RDONLY);
	if (!v)
		return fprintf(stderr, "vhd-io: %s\n", vhd_get_error()), 1;
	struct vhd_info i;
	vhd_get_info(v, &i);
	char *buf = malloc(CHUNK);
	for (uint64_t off = 0; off < i.virtual_size; off += CHUNK) {
		uint64_t n = i.virtual_size - off < CHUNK ? i.virtual_size - off : CHUNK;
		if (vhd_pread(v, buf, n, off))
			return fprintf(stderr, "vhd-io: %s\n", vhd_get_error()), 1;
		if (fwrite(buf, 1, n, stdout) != n)
			return perror("vhd-io: stdout"), 1;
	}
	free(buf);
	vhd_close(v);
	return 0;
}

static int do_write(const char *path, uint64_t off)
{
	vhd_t *v = vhd_open(path, VHD_OPEN_RDWR);
	if (!v)
		return fprintf(stderr, "vhd-io: %s\n", vhd_get_error()), 1;
	char *buf = malloc(CHUNK);
	size_t n;
	int rc = buf ? 0 : 1;
	while (!rc && (n = fread(buf, 1, CHUNK, stdin)) > 0) {
		if (vhd_pwrite(v, buf, n, off)) {
			fprintf(stderr, "vhd-io: %s\n", vhd_get_error());
			rc = 1;
		}
		off += n;
	}
	free(buf);
	if (vhd_close(v) && !rc) {
		fprintf(stderr, "vhd-io: %s\n", vhd_get_error());
		rc = 1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "cat"))
		return do_cat(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "write"))
		return do_write(argv[2], strtoull(argv[3], NULL, 0));
	fprintf(stderr, "usage: vhd-io cat FILE | vhd-io write FILE OFFSET < data\n");
	return 2;
}
