/* util.c - whole-buffer I/O, sizes, allocation and UTF-16 conversion. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int read_at(int fd, const char *path, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vhd_error(errno, "%s: read of %zu bytes at %llu: %s", path, len,
			                 (unsigned long long)off, strerror(errno));
		}
		if (n == 0)
			return vhd_error(EIO, "%s: unexpected end of file at offset %llu", path,
			                 (unsigned long long)off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int write_at(int fd, const char *path, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vhd_error(errno, "%s: write of %zu bytes at %llu: %s", path, len,
			                 (unsigned long long)off, strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int fd_size(int fd, const char *path, uint64_t *size, bool *is_blockdev)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		uint64_t bytes;
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
			return vhd_error(errno, "%s: cannot get device size: %s", path,
			                 strerror(errno));
		*size = bytes;
		*is_blockdev = true;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return vhd_error(EINVAL, "%s: not a regular file or block device", path);
	*size = (uint64_t)st.st_size;
	*is_blockdev = false;
	return 0;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		vhd_error(ENOMEM, "out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		vhd_error(ENOMEM, "out of memory (%zu x %zu bytes)", n, m);
	return p;
}

/* N rounded up to a multiple of ALIGN, as aligned_alloc requires. */
void *xaligned_alloc(size_t align, size_t n)
{
	size_t size = n ? (n + align - 1) / align * align : align;
	void *p = size >= n ? aligned_alloc(align, size) : NULL;
	if (!p)
		vhd_error(ENOMEM, "out of memory (%zu bytes aligned to %zu)", n, align);
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		vhd_error(ENOMEM, "out of memory");
	return p;
}

const char *path_dir(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(buf, len, ".");
	else if (slash == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
	return buf;
}

bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

bool is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	/* check the first 16 bytes, then compare the buffer with itself shifted */
	size_t head = len < 16 ? len : 16;
	for (size_t i = 0; i < head; i++)
		if (p[i])
			return false;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

static uint16_t get16(const uint8_t *p, bool be)
{
	return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

char *utf16_to_utf8(const uint8_t *in, size_t bytes, bool be)
{
	size_t units = bytes / 2;
	char *out = xmalloc(units * 3 + 1);   /* BMP char: 3 bytes; pair: 4 for 2 units */
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < units; i++) {
		uint32_t c = get16(in + 2 * i, be);
		if (c == 0)
			break;
		if (c >= 0xD800 && c < 0xDC00) {
			if (i + 1 >= units)
				goto bad;
			uint32_t lo = get16(in + 2 * (i + 1), be);
			if (lo < 0xDC00 || lo >= 0xE000)
				goto bad;
			c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
			i++;
		} else if (c >= 0xDC00 && c < 0xE000) {
			goto bad;
		}
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xC0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xE0 | c >> 12);
			out[o++] = (char)(0x80 | (c >> 6 & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | c >> 18);
			out[o++] = (char)(0x80 | (c >> 12 & 0x3F));
			out[o++] = (char)(0x80 | (c >> 6 & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[o] = 0;
	return out;
bad:
	free(out);
	vhd_error(EBADMSG, "malformed UTF-16 string");
	return NULL;
}

static int put16(uint8_t *out, size_t cap, size_t *o, uint32_t u, bool be)
{
	if (*o + 2 > cap)
		return -1;
	out[*o + (be ? 0 : 1)] = (uint8_t)(u >> 8);
	out[*o + (be ? 1 : 0)] = (uint8_t)u;
	*o += 2;
	return 0;
}

ssize_t utf8_to_utf16(uint8_t *out, size_t cap, const char *in, bool be)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t o = 0;
	while (*s) {
		uint32_t c;
		int extra;
		if (*s < 0x80) { c = *s; extra = 0; }
		else if ((*s & 0xE0) == 0xC0) { c = *s & 0x1F; extra = 1; }
		else if ((*s & 0xF0) == 0xE0) { c = *s & 0x0F; extra = 2; }
		else if ((*s & 0xF8) == 0xF0) { c = *s & 0x07; extra = 3; }
		else goto bad;
		s++;
		for (int k = 0; k < extra; k++, s++) {
			if ((*s & 0xC0) != 0x80)
				goto bad;
			c = c << 6 | (*s & 0x3F);
		}
		/* the shortest form of a code point UTF-16 can hold: an overlong
		 * form, a surrogate or a value past U+10FFFF would give a name
		 * no reader decodes back */
		static const uint32_t shortest[] = { 0, 0x80, 0x800, 0x10000 };
		if (c < shortest[extra] || (c >= 0xD800 && c < 0xE000) || c > 0x10FFFF)
			goto bad;
		if (c >= 0x10000) {
			c -= 0x10000;
			if (put16(out, cap, &o, 0xD800 + (c >> 10), be) ||
			    put16(out, cap, &o, 0xDC00 + (c & 0x3FF), be))
				goto toolong;
		} else if (put16(out, cap, &o, c, be)) {
			goto toolong;
		}
	}
	return (ssize_t)o;
bad:
	return vhd_error(EINVAL, "'%s' is not valid UTF-8", in);
toolong:
	return vhd_error(ENAMETOOLONG, "'%s' is too long for a VHD name field", in);
}
