/* rawread.c - benchmark baseline: read the data of files as `dd bs=2M`
 * would, skipping holes (SEEK_DATA/SEEK_HOLE), so that the bytes read are
 * the bytes stored.
 *   rawread [--chunk KiB] FILE...
 * reads with a buffer of KiB (default 2048: dd bs=2M); prints "bytes=N",
 * the data bytes read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t chunk = 2u << 20;

static int read_range(int fd, const char *path, char *buf, off_t from, off_t to)
{
	while (from < to) {
		size_t want = to - from < (off_t)chunk ? (size_t)(to - from) : chunk;
		ssize_t n = pread(fd, buf, want, from);
		if (n <= 0)
			return fprintf(stderr, "rawread: %s: %s\n", path, n ? strerror(errno) : "short read"), -1;
		from += n;
	}
	return 0;
}

static int read_data(const char *path, char *buf, unsigned long long *total)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return fprintf(stderr, "rawread: %s: %s\n", path, strerror(errno)), -1;
	off_t end = lseek(fd, 0, SEEK_END), data = 0, hole;
	int rc = 0;
	while (!rc && data < end && (data = lseek(fd, data, SEEK_DATA)) >= 0) {
		hole = lseek(fd, data, SEEK_HOLE);
		rc = read_range(fd, path, buf, data, hole);
		*total += (unsigned long long)(hole - data);
		data = hole;
	}
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	int first = 1;
	if (argc > 3 && !strcmp(argv[1], "--chunk")) {
		chunk = (size_t)strtoul(argv[2], NULL, 10) << 10;
		first = 3;
	}
	char *buf = chunk ? malloc(chunk) : NULL;
	unsigned long long total = 0;
	if (!buf || argc <= first)
		return fprintf(stderr, "usage: rawread [--chunk KiB] FILE...\n"), 2;
	for (int i = first; i < argc; i++)
		if (read_data(argv[i], buf, &total))
			return 1;
	free(buf);
	printf("bytes=%llu\n", total);
	return 0;
}
