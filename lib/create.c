/* create.c - create dynamic, fixed and differencing VHDs as blktap lays
 * them out; change the hidden flag; re-point a child at another parent. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "internal.h"

static void init_footer(struct vhd_footer *f, uint64_t size, uint32_t type)
{
	memset(f, 0, sizeof *f);
	memcpy(f->cookie, "conectix", 8);
	f->features = VHD_FEATURE_RESERVED;
	f->version = VHD_VERSION;
	f->data_offset = type == VHD_TYPE_FIXED ? DD_OFFSET_NONE : FOOTER_SIZE;
	f->timestamp = vhd_time_from_unix(time(NULL));
	memcpy(f->creator_app, "tap", 4);
	f->creator_version = TAP_CREATOR_VERSION;
	f->orig_size = f->curr_size = size;
	f->geometry = vhd_chs_geometry(size);
	f->type = type;
	uuid_generate(f->uuid);
}

/* In-memory image of a new dynamic or differencing VHD's metadata:
 * footer copy, header, BAT, batmap header and map, locator areas. */
struct layout {
	struct vhd v;              /* footer, header, batmap header */
	uint64_t bat_bytes;
	uint64_t locators_offset;
	uint8_t *buf;              /* everything from 0 to meta_end */
	uint64_t meta_end;
};

static void init_header(struct vhd_header *h, uint64_t size)
{
	memset(h, 0, sizeof *h);
	memcpy(h->cookie, "cxsparse", 8);
	h->data_offset = DD_OFFSET_NONE;
	h->table_offset = FOOTER_SIZE + HEADER_SIZE;
	h->version = VHD_VERSION;
	h->max_bat_entries = (uint32_t)div_round_up(size, VHD_DEFAULT_BLOCK_SIZE);
	h->block_size = VHD_DEFAULT_BLOCK_SIZE;
}

static int layout_init(struct layout *L, uint64_t size, uint32_t type, size_t locator_bytes)
{
	struct vhd *v = &L->v;
	memset(L, 0, sizeof *L);
	init_footer(&v->footer, size, type);
	init_header(&v->header, size);
	L->bat_bytes = bat_bytes(v->header.max_bat_entries);
	v->batmap_hdr_offset = v->header.table_offset + L->bat_bytes;
	memcpy(v->batmap_hdr.cookie, "tdbatmap", 8);
	v->batmap_hdr.map_offset = v->batmap_hdr_offset + SECTOR;
	v->batmap_hdr.map_sectors =
		batmap_sectors_for(v->header.max_bat_entries);
	v->batmap_hdr.version = BATMAP_VERSION;
	L->locators_offset = v->batmap_hdr.map_offset + (uint64_t)v->batmap_hdr.map_sectors * SECTOR;
	L->meta_end = L->locators_offset + locator_bytes;
	L->buf = xcalloc(1, L->meta_end);
	if (!L->buf)
		return -1;
	memset(L->buf + v->header.table_offset, 0xFF, (size_t)v->header.max_bat_entries * 4);
	/* the batmap is all zeros: its checksum is that of the zero map */
	uint64_t csum_bytes = round_up(div_round_up(div_round_up(size, VHD_DEFAULT_BLOCK_SIZE), 8),
	                               SECTOR);
	v->batmap_hdr.checksum = batmap_checksum(L->buf + v->batmap_hdr.map_offset, csum_bytes);
	return 0;
}

static int layout_write(struct layout *L, int fd, const char *path)
{
	struct vhd *v = &L->v;
	uint8_t foot[FOOTER_SIZE];
	v->footer.checksum = footer_checksum(&v->footer);
	footer_encode(foot, &v->footer);
	memcpy(L->buf, foot, FOOTER_SIZE);
	v->header.checksum = header_checksum(&v->header);
	header_encode(L->buf + FOOTER_SIZE, &v->header);
	batmap_header_encode(L->buf + v->batmap_hdr_offset, &v->batmap_hdr);
	if (write_at(fd, path, L->buf, L->meta_end, 0) ||
	    write_at(fd, path, foot, FOOTER_SIZE, L->meta_end))
		return -1;
	if (fsync(fd) < 0)
		return vhd_error(errno, "%s: fsync: %s", path, strerror(errno));
	return 0;
}

static int create_file(const char *path, bool overwrite)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL), 0644);
	if (fd < 0)
		return vhd_error(errno, "%s: %s", path,
		                 errno == EEXIST ? "already exists (refusing to overwrite it)"
		                                 : strerror(errno));
	return fd;
}

static int check_size(const char *path, uint64_t size)
{
	/* 2040 GiB is the specification's limit; blktap accepts more only with
	 * larger blocks, which vhdkit does not create */
	if (size == 0 || size > 2040ull << 30)
		return vhd_error(EINVAL, "%s: size %llu is out of range (1 byte to 2040 GiB)", path,
		                 (unsigned long long)size);
	return 0;
}

static int create_fixed(int fd, const char *path, uint64_t size)
{
	struct vhd_footer f;
	uint8_t buf[FOOTER_SIZE];
	init_footer(&f, size, VHD_TYPE_FIXED);
	f.checksum = footer_checksum(&f);
	footer_encode(buf, &f);
	/* the data area is left a hole: it reads as zeros */
	if (ftruncate(fd, (off_t)size) < 0)
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	if (write_at(fd, path, buf, FOOTER_SIZE, size))
		return -1;
	if (fsync(fd) < 0)
		return vhd_error(errno, "%s: fsync: %s", path, strerror(errno));
	return 0;
}

VHD_EXPORT int vhd_create(const char *path, uint64_t size, int flags)
{
	size = round_up(size, SECTOR);
	if (check_size(path, size))
		return -1;
	int fd = create_file(path, flags & VHD_CREATE_OVERWRITE);
	if (fd < 0)
		return -1;
	int rc;
	if (flags & VHD_CREATE_FIXED) {
		rc = create_fixed(fd, path, size);
	} else {
		struct layout L;
		rc = layout_init(&L, size, VHD_TYPE_DYNAMIC, 0);
		if (!rc)
			rc = layout_write(&L, fd, path);
		free(L.buf);
	}
	close(fd);
	if (rc)
		unlink(path);
	return rc;
}

/* PARENT's path relative to CHILD's directory ("./p.vhd", "../x/p.vhd"). */
static char *relative_parent_path(const char *child, const char *parent)
{
	char cdir[PATH_MAX], pabs[PATH_MAX], tmp[PATH_MAX], out[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", child);
	if (!realpath(dirname(tmp), cdir) || !realpath(parent, pabs)) {
		vhd_error(errno, "%s: %s", parent, strerror(errno));
		return NULL;
	}
	size_t n = strlen(cdir);
	if (cdir[n - 1] != '/' && n + 1 < sizeof cdir)
		strcat(cdir, "/");
	size_t common = 0;   /* length of the shared leading directories */
	for (size_t i = 0; cdir[i] && cdir[i] == pabs[i]; i++)
		if (cdir[i] == '/')
			common = i + 1;
	size_t o = 0;
	for (const char *c = cdir + common; *c; c++)
		if (*c == '/')
			o += (size_t)snprintf(out + o, sizeof out - o, "../");
	if (!o)
		o = (size_t)snprintf(out, sizeof out, "./");
	if ((size_t)snprintf(out + o, sizeof out - o, "%s", pabs + common) >= sizeof out - o) {
		vhd_error(ENAMETOOLONG, "%s: path too long", parent);
		return NULL;
	}
	return xstrdup(out);
}

/* Fill the three locators (MacX, W2ku, W2ru) and the parent name. */
static int set_parent_fields(struct vhd_header *h, uint8_t *areas, uint64_t areas_offset,
                             size_t area_bytes, const char *rel, const char *parent_path,
                             const uint8_t parent_uuid[16])
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", parent_path);
	memset(h->parent_name, 0, sizeof h->parent_name);
	if (utf8_to_utf16(h->parent_name, sizeof h->parent_name, basename(tmp), true) < 0)
		return -1;
	memcpy(h->parent_uuid, parent_uuid, 16);   /* nil for a raw parent */
	struct stat st;
	h->parent_timestamp = stat(parent_path, &st) == 0 ? vhd_time_from_unix(st.st_mtime) : 0;

	char mac[PATH_MAX + 8], win[PATH_MAX];
	snprintf(mac, sizeof mac, "file://%s", rel);
	snprintf(win, sizeof win, "%s", rel);
	for (char *c = win; *c; c++)
		if (*c == '/')
			*c = '\\';
	memset(h->loc, 0, sizeof h->loc);
	memset(areas, 0, 3 * area_bytes);
	ssize_t len[3];
	len[0] = (ssize_t)strlen(mac);
	if ((size_t)len[0] > area_bytes)
		return vhd_error(ENAMETOOLONG, "parent path '%s' is too long for a locator", rel);
	memcpy(areas, mac, (size_t)len[0]);
	len[1] = utf8_to_utf16(areas + area_bytes, area_bytes, win, false);
	if (len[1] < 0)
		return -1;
	memcpy(areas + 2 * area_bytes, areas + area_bytes, (size_t)len[1]);
	len[2] = len[1];
	const uint32_t codes[3] = { LOC_MACX, LOC_W2KU, LOC_W2RU };
	for (int i = 0; i < 3; i++) {
		h->loc[i].code = codes[i];
		h->loc[i].data_space = (uint32_t)area_bytes;
		h->loc[i].data_len = (uint32_t)len[i];
		h->loc[i].data_offset = areas_offset + (uint64_t)i * area_bytes;
	}
	return 0;
}

/* Create CHILD, differencing, of SIZE bytes, on the parent at PARENT_PATH
 * whose UUID is PARENT_UUID (nil: a raw parent). */
static int write_diff_child(const char *child, uint64_t size, const char *parent_path,
                            const uint8_t parent_uuid[16])
{
	int rc = -1, fd = create_file(child, false);
	char *rel = NULL;
	struct layout L = { 0 };
	if (fd < 0)
		return -1;
	if ((rel = relative_parent_path(child, parent_path)) &&
	    !layout_init(&L, size, VHD_TYPE_DIFF, 3 * LOC_AREA) &&
	    !set_parent_fields(&L.v.header, L.buf + L.locators_offset, L.locators_offset, LOC_AREA,
	                       rel, parent_path, parent_uuid) &&
	    !layout_write(&L, fd, child))
		rc = 0;
	close(fd);
	if (rc)
		unlink(child);
	free(L.buf);
	free(rel);
	return rc;
}

VHD_EXPORT int vhd_snapshot(const char *parent_path, const char *child, unsigned max_depth)
{
	int rc = -1;
	struct vhd *parent = vhd_open(parent_path, VHD_OPEN_RDONLY);
	if (!parent)
		return -1;
	if (max_depth && vhd_chain_depth(parent) + 1 > max_depth)
		vhd_error(E2BIG, "%s: a snapshot would make the chain %u deep (limit %u)", child,
		          vhd_chain_depth(parent) + 1, max_depth);
	else
		rc = write_diff_child(child, parent->footer.curr_size, parent_path, parent->footer.uuid);
	vhd_close(parent);
	return rc;
}

VHD_EXPORT int vhd_set_hidden(vhd_t *v, int hidden)
{
	if (!v->writable)
		return vhd_error(EBADF, "%s: not opened for writing", v->path);
	v->footer.hidden = hidden ? 1 : 0;
	if (vhd_write_footers(v) || vhd_flush(v))
		return -1;
	return 0;
}

/* The areas of the existing locators must hold the new path: vhdkit never
 * moves metadata for a reparent. */
static int locator_areas(const struct vhd *v, uint64_t *offset, size_t *bytes)
{
	const struct vhd_locator *l = v->header.loc;
	for (int i = 0; i < 3; i++) {
		uint64_t space = locator_bytes(&l[i]);
		if (!l[i].code || !space || space != locator_bytes(&l[0]) ||
		    l[i].data_offset != l[0].data_offset + (uint64_t)i * space)
			return vhd_error(ENOTSUP, "%s: locators are not laid out as blktap does; "
			                          "cannot rewrite them in place", v->path);
	}
	*offset = l[0].data_offset;
	*bytes = (size_t)locator_bytes(&l[0]);
	if (*offset + 3 * *bytes > v->footer_offset)
		return vhd_error(EBADMSG, "%s: locator areas lie outside the file", v->path);
	return 0;
}

VHD_EXPORT int vhd_reparent(const char *child_path, const char *parent_path)
{
	return vhd_reparent_file(child_path, parent_path, 0);
}

/* Point CHILD at PARENT_PATH (UUID PARENT_UUID, nil for a raw parent):
 * locators rewritten in their areas, then the header, then flushed. */
static int rewrite_parent_fields(struct vhd *child, const char *parent_path,
                                 const uint8_t parent_uuid[16])
{
	uint64_t off = 0;
	size_t bytes = 0;
	char *rel = NULL;
	uint8_t *areas = NULL;
	int rc = -1;
	if (!locator_areas(child, &off, &bytes) &&
	    (rel = relative_parent_path(child->path, parent_path)) &&
	    (areas = xmalloc(3 * bytes))) {
		struct vhd_header h = child->header;
		if (!set_parent_fields(&h, areas, off, bytes, rel, parent_path, parent_uuid)) {
			child->header = h;
			rc = write_at(child->fd, child->path, areas, 3 * bytes, off) ||
			     vhd_write_header(child) || vhd_flush(child) ? -1 : 0;
		}
	}
	free(areas);
	free(rel);
	return rc;
}

int vhd_reparent_file(const char *child_path, const char *parent_path, int open_flags)
{
	int rc = -1;
	struct vhd *parent = NULL;
	struct vhd *child = vhd_open(child_path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT | open_flags);
	if (!child)
		return -1;
	if (child->footer.type != VHD_TYPE_DIFF) {
		vhd_error(EINVAL, "%s: not a differencing disk", child_path);
		goto out;
	}
	if (!(parent = vhd_open(parent_path, VHD_OPEN_RDONLY)))
		goto out;
	for (struct vhd *a = parent; a; a = a->parent)
		if (!memcmp(a->footer.uuid, child->footer.uuid, 16)) {
			vhd_error(EINVAL, "%s: %s is its descendant: that would make a loop", child_path,
			           parent_path);
			goto out;
		}
	if (parent->footer.curr_size > child->footer.curr_size) {
		vhd_error(EINVAL, "%s: parent %s (%llu bytes) is larger than the child", child_path,
		          parent_path, (unsigned long long)parent->footer.curr_size);
		goto out;
	}
	rc = rewrite_parent_fields(child, parent_path, parent->footer.uuid);
out:
	vhd_close(parent);
	if (vhd_close(child))
		rc = -1;
	return rc;
}

/* ---- raw parents ---- */

/* Size of the raw image at PATH (which vhd_open_raw checks may be one). */
static int raw_size(const char *path, uint64_t *size)
{
	struct vhd *r = vhd_open_raw(path, false);
	if (!r)
		return -1;
	*size = r->footer.curr_size;
	vhd_free(r);
	return 0;
}

/* blktap's `vhd-util snapshot -m`: the header's parent UUID stays nil, the
 * parent timestamp is the raw file's mtime, the name and locators are those
 * of any parent; the size is the raw file's (rounded up to a sector, where
 * blktap would write an unaligned size) unless SIZE is given. */
VHD_EXPORT int vhd_snapshot_raw(const char *raw, const char *child, uint64_t size)
{
	static const uint8_t nil[16];
	uint64_t rsize;
	if (!raw || !child)
		return vhd_error(EINVAL, "snapshot needs a raw parent and a child");
	if (raw_size(raw, &rsize))
		return -1;
	size = size ? round_up(size, SECTOR) : rsize;
	if (check_size(child, size))
		return -1;
	return write_diff_child(child, size, raw, nil);
}

static bool same_inode(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* blktap's `vhd-util modify -p RAW -m`: nil parent UUID, RAW's mtime, name
 * and locators rewritten in place.  Like blktap, RAW may be larger than
 * the child (the child sees its first bytes). */
VHD_EXPORT int vhd_reparent_raw(const char *child_path, const char *raw)
{
	return vhd_reparent_raw_file(child_path, raw, 0);
}

int vhd_reparent_raw_file(const char *child_path, const char *raw, int open_flags)
{
	static const uint8_t nil[16];
	int rc = -1;
	uint64_t rsize;
	if (!child_path || !raw)
		return vhd_error(EINVAL, "reparent needs a child and a raw parent");
	struct vhd *child = vhd_open(child_path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT | open_flags);
	if (!child)
		return -1;
	if (child->footer.type != VHD_TYPE_DIFF)
		vhd_error(EINVAL, "%s: not a differencing disk", child_path);
	else if (same_inode(child->fd, raw))
		vhd_error(EINVAL, "%s: cannot be its own raw parent", child_path);
	else if (!raw_size(raw, &rsize))
		rc = rewrite_parent_fields(child, raw, nil);
	if (vhd_close(child))
		rc = -1;
	return rc;
}
