/* raw.c - raw parents: a differencing VHD whose header parent UUID is nil
 * (all zeros) reads the sectors it lacks from a plain image file or block
 * device, at their offsets, as blktap's libvhd does.  The raw file is
 * handled as a fixed disk without footer: its size, rounded up to a
 * sector, is its virtual size; bytes past its end read as zeros. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

bool uuid_is_nil(const uint8_t uuid[16])
{
	return is_zero(uuid, 16);
}

bool vhd_has_raw_parent(const struct vhd *v)
{
	return v->footer.type == VHD_TYPE_DIFF && uuid_is_nil(v->header.parent_uuid);
}

/* Does the sector at OFF of FD hold a valid VHD footer (ANY_TYPE: of any
 * type, else only of a dynamic or differencing disk, as backup footers)? */
static bool footer_at(int fd, uint64_t off, bool any_type)
{
	uint8_t buf[FOOTER_SIZE];
	struct vhd_footer f;
	if (pread(fd, buf, FOOTER_SIZE, (off_t)off) != (ssize_t)FOOTER_SIZE)
		return false;
	footer_decode(&f, buf);
	if (footer_invalid(&f, false, false))
		return false;
	return any_type || f.type == VHD_TYPE_DYNAMIC || f.type == VHD_TYPE_DIFF;
}

/* blktap reads whatever file the locators name as plain bytes, a VHD
 * included; vhdkit refuses a VHD there: its metadata would read as disk
 * content and a coalesce would overwrite it.  FD is the open file, so that
 * what is checked is what is then read (or written). */
static const char *raw_fd_problem(int fd, const char *path)
{
	struct stat st;
	uint64_t size = 0;
	bool blk;
	if (fstat(fd, &st) < 0)
		return strerror(errno);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return "not a regular file or block device";
	if (fd_size(fd, path, &size, &blk))
		return "cannot get its size";
	if (size >= FOOTER_SIZE &&
	    (footer_at(fd, primary_footer_offset(size), true) ||
	     footer_at(fd, 0, false)))
		return "it is a VHD (it has a valid VHD footer), not a raw image";
	return NULL;
}

/* Opens without blocking on a FIFO (which the checks then refuse). */
static int open_raw_fd(const char *path, int flags)
{
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

const char *raw_parent_problem(const char *path)
{
	int fd = open_raw_fd(path, O_RDONLY);
	if (fd < 0)
		return strerror(errno);
	const char *why = raw_fd_problem(fd, path);
	close(fd);
	return why;
}

static void synthesize_footer(struct vhd *v)
{
	struct vhd_footer *f = &v->footer;
	memset(f, 0, sizeof *f);
	f->type = VHD_TYPE_FIXED;
	f->data_offset = DD_OFFSET_NONE;
	f->orig_size = f->curr_size = round_up(v->file_size, SECTOR);
	f->geometry = vhd_chs_geometry(f->curr_size);
	v->footer_offset = f->curr_size;
}

struct vhd *vhd_open_raw(const char *path, bool writable)
{
	struct vhd *v = vhd_alloc_handle();
	if (!v)
		return NULL;
	v->is_raw = true;
	v->writable = writable;
	v->flags = writable ? VHD_OPEN_RDWR : VHD_OPEN_RDONLY;
	v->depth = 1;
	if (!(v->path = xstrdup(path)))
		goto fail;
	v->fd = open_raw_fd(path, writable ? O_RDWR : O_RDONLY);
	if (v->fd < 0) {
		vhd_error(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	const char *why = raw_fd_problem(v->fd, path);
	if (why) {
		vhd_error(EINVAL, "%s: cannot be a raw parent: %s", path, why);
		goto fail;
	}
	if ((writable && lock_exclusive(v)) || fd_size(v->fd, path, &v->file_size, &v->is_blockdev))
		goto fail;
	synthesize_footer(v);
	return v;
fail:
	vhd_free(v);
	return NULL;
}

int raw_read_sectors(struct vhd *v, void *buf, uint64_t sector, uint64_t n)
{
	uint8_t *p = buf;
	uint64_t off = sector * SECTOR, left = n * SECTOR;
	while (left) {
		ssize_t r = pread(v->fd, p, left, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return vhd_error(errno, "%s: read of %llu bytes at %llu: %s", v->path,
			                 (unsigned long long)left, (unsigned long long)off,
			                 strerror(errno));
		if (r == 0) {          /* past the end: zeros */
			memset(p, 0, left);
			return 0;
		}
		p += r;
		off += (uint64_t)r;
		left -= (uint64_t)r;
	}
	return 0;
}

VHD_EXPORT int vhd_is_raw(vhd_t *v)
{
	return v && v->is_raw;
}
