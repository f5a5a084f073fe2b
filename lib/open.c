/* open.c - open a VHD and its parent chain, validating everything read. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

static int load_footer(struct vhd *v, bool lax)
{
	uint8_t buf[FOOTER_SIZE];
	const char *why;

	if (v->file_size < FOOTER_SIZE)
		return vhd_error(EBADMSG, "%s: file of %llu bytes is too small for a VHD", v->path,
		                  (unsigned long long)v->file_size);
	v->footer_offset = primary_footer_offset(v->file_size);
	if (read_at(v->fd, v->path, buf, FOOTER_SIZE, v->footer_offset))
		return -1;
	footer_decode(&v->footer, buf);
	why = footer_invalid(&v->footer, false, false);
	if (!why)
		return 0;
	if (!lax)
		return rule_error(v->path, "primary footer invalid", why);
	/* repair/info: fall back on the backup copy at offset 0 */
	if (read_at(v->fd, v->path, buf, FOOTER_SIZE, 0))
		return -1;
	footer_decode(&v->footer, buf);
	const char *why2 = footer_invalid(&v->footer, false, false);
	if (why2 || v->footer.type == VHD_TYPE_FIXED)
		return vhd_error(EBADMSG, "%s: primary footer invalid: %s; no valid backup footer",
		                  v->path, why);
	vhd_debug(v->path, "primary footer invalid (%s); using the backup", why);
	return 0;
}

static int load_header(struct vhd *v)
{
	uint8_t buf[HEADER_SIZE];
	const char *why;
	uint64_t off = v->footer.data_offset;

	if (!header_placed(off, v->footer_offset))
		return vhd_error(VHD_EDAMAGED, "%s: footer data offset %llu is outside the file", v->path,
		                  (unsigned long long)off);
	if (read_at(v->fd, v->path, buf, HEADER_SIZE, off))
		return -1;
	header_decode(&v->header, buf);
	why = header_invalid(&v->header, &v->footer, v->footer_offset);
	if (why)
		return rule_error(v->path, "header is invalid", why);
	vhd_set_block_layout(v);
	return 0;
}

static int load_bat(struct vhd *v)
{
	size_t bytes = (size_t)v->bat_entries * 4;
	uint8_t *raw = xmalloc(bytes);
	if (!raw)
		return -1;
	v->bat = xmalloc(bytes);
	if (!v->bat || read_at(v->fd, v->path, raw, bytes, v->header.table_offset)) {
		free(raw);
		return -1;
	}
	for (uint32_t i = 0; i < v->bat_entries; i++)
		v->bat[i] = get_be32(raw + 4 * (size_t)i);
	free(raw);
	return 0;
}

/* Reads the batmap if there is one.  Returns 0 (batmap loaded, or none),
 * 1 (present but invalid: the reason is in the error), or -1 on I/O error. */
static int load_batmap(struct vhd *v)
{
	uint8_t buf[SECTOR];
	struct vhd_batmap_header *m = &v->batmap_hdr;
	uint64_t off = bat_end(&v->header);
	struct rule_input in = { .footer = &v->footer, .header = &v->header, .batmap = m,
	                         .limit = v->footer_offset };

	if (!creator_has_batmap(&v->footer) || off + SECTOR > v->footer_offset)
		return 0;
	if (read_at(v->fd, v->path, buf, SECTOR, off))
		return -1;
	batmap_header_decode(m, buf);
	if (rule_broken(&batmap_rules, R_BATMAP_COOKIE, &in))
		return 0;
	v->batmap_hdr_offset = off;
	const char *why = rule_first_broken(&batmap_rules, &in, RULE_READ, 0);
	if (why)
		return rule_error(v->path, "batmap is invalid", why), 1;
	uint64_t bytes = (uint64_t)m->map_sectors * SECTOR;
	v->batmap = xcalloc(1, bytes);
	if (!v->batmap || read_at(v->fd, v->path, v->batmap, bytes, m->map_offset))
		return -1;
	in.batmap_sum_known = true;
	in.batmap_sum = batmap_checksum(v->batmap, batmap_checksum_bytes(v));
	if (rule_broken(&batmap_rules, R_BATMAP_CHECKSUM, &in)) {
		free(v->batmap);
		v->batmap = NULL;
		return vhd_error(VHD_EDAMAGED, "%s: batmap is invalid: invalid checksum (0x%08x "
		                 "stored, 0x%08x computed)", v->path, m->checksum, in.batmap_sum), 1;
	}
	v->has_batmap = true;
	return 0;
}

static int check_bat_entries(struct vhd *v)
{
	struct rule_input in = block_rule_input(v);
	for (uint32_t b = 0; b < v->bat_entries; b++) {
		if (v->bat[b] == BAT_UNUSED)
			continue;
		in.block_offset = v->bat[b];
		const char *why = rule_first_broken(&block_rules, &in, RULE_READ, 0);
		/* blktap's words, and what they mean for a reader of the file */
		const char *past = rule_broken(&block_rules, R_BLOCK_FOOTER, &in)
		                       ? ": BAT entry points past end of file" : "";
		if (why)
			return vhd_error(VHD_EDAMAGED, "%s: block %u (offset 0x%x) %s%s", v->path, b,
			                 v->bat[b], why, past);
	}
	return 0;
}

/* Blocks sorted by offset must each end before the next starts: O(n log n). */
static int check_bat_overlaps(struct vhd *v)
{
	size_t n;
	struct bat_extent *e = bat_by_offset(v->bat, v->bat_entries, NULL, &n);
	uint64_t span = block_span(v) / SECTOR;
	int rc = e ? 0 : -1;
	for (size_t i = 1; !rc && i < n; i++)
		if (extents_overlap(&e[i - 1], &e[i], span))
			rc = vhd_error(VHD_EDAMAGED, "%s: block %u (offset 0x%x) clobbers block %u "
			               "(offset 0x%x)", v->path, e[i - 1].block, e[i - 1].off,
			               e[i].block, e[i].off);
	free(e);
	return rc;
}

/* Footers are updated primary first, then the backup at offset 0: a crash
 * between the two leaves the primary (the newer) authoritative.  A writable
 * open brings the backup up to date, as `vhd repair` would. */
static int heal_backup_footer(struct vhd *v)
{
	uint8_t primary[FOOTER_SIZE], backup[FOOTER_SIZE];
	if (v->footer.type == VHD_TYPE_FIXED)
		return 0;
	if (read_at(v->fd, v->path, primary, FOOTER_SIZE, v->footer_offset) ||
	    read_at(v->fd, v->path, backup, FOOTER_SIZE, 0))
		return -1;
	if (!memcmp(primary, backup, FOOTER_SIZE))
		return 0;
	vhd_debug(v->path, "backup footer differs from the primary: rewriting it");
	if (write_at(v->fd, v->path, primary, FOOTER_SIZE, 0) || fdatasync(v->fd))
		return vhd_error(errno, "%s: rewriting the backup footer: %s", v->path, strerror(errno));
	return 0;
}

struct vhd *vhd_open_file(const char *path, int flags, bool lax)
{
	struct vhd *v = vhd_alloc_handle();
	if (!v)
		return NULL;
	v->flags = flags;
	v->writable = flags & VHD_OPEN_RDWR;
	if (!(v->path = xstrdup(path)))
		goto fail;
	v->fd = open(path, (v->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (v->fd < 0) {
		vhd_error(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (v->writable && !(flags & VHD_OPEN_NO_LOCK) && lock_exclusive(v))
		goto fail;
	if (fd_size(v->fd, path, &v->file_size, &v->is_blockdev) || load_footer(v, lax))
		goto fail;
	if (v->footer.type == VHD_TYPE_FIXED) {
		if (v->footer.curr_size > v->footer_offset) {
			vhd_error(EBADMSG, "%s: fixed disk of %llu bytes in a file of %llu bytes", path,
			           (unsigned long long)v->footer.curr_size,
			           (unsigned long long)v->file_size);
			goto fail;
		}
		return v;
	}
	if (load_header(v) || load_bat(v))
		goto fail;
	int r = load_batmap(v);
	if (r < 0 || (r > 0 && v->writable && !lax))
		goto fail;
	if (r > 0)
		vhd_debug(path, "ignoring the batmap: %s", vhd_get_error());
	if (!lax && check_bat_entries(v))
		goto fail;
	if (!lax && v->writable && (check_bat_overlaps(v) || heal_backup_footer(v)))
		goto fail;
	if (v->footer.type == VHD_TYPE_DIFF) {
		v->parent_name = utf16_to_utf8(v->header.parent_name, sizeof v->header.parent_name, true);
		if (!v->parent_name) {
			vhd_error_prefix(path);
			goto fail;
		}
	}
	return v;
fail:
	vhd_free(v);
	return NULL;
}

static bool file_exists(const char *p)
{
	return access(p, F_OK) == 0;
}

bool same_directory(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];
	if (!realpath(a, ra) || !realpath(b, rb))
		return false;
	return strcmp(dirname(ra), dirname(rb)) == 0;
}

/* Does PATH hold a VHD whose footer UUID is UUID? */
static bool has_uuid(const char *path, const uint8_t *uuid)
{
	struct vhd *p = vhd_open_file(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, true);
	bool same = p && !memcmp(p->footer.uuid, uuid, 16);
	vhd_free(p);
	return same;
}

/* The parent's path: the first candidate (each locator, then the header's
 * parent name beside the child, as libvhdi and vhd-lib do) that holds the
 * UUID the header names.  Trying them all keeps a child readable while a
 * reparent is half done (new locators written, header not yet).  A raw
 * parent (nil UUID) has no UUID to match: the first existing file. */
char *vhd_find_parent(const struct vhd *v)
{
	bool raw = vhd_has_raw_parent(v);
	char *first = NULL;
	for (int i = 0; i <= LOC_COUNT; i++) {
		char *rel;
		if (i < LOC_COUNT)
			rel = vhd_locator_path(v, i);
		else if (v->parent_name && *v->parent_name && !strchr(v->parent_name, '/'))
			rel = xstrdup(v->parent_name);
		else
			rel = NULL;
		if (!rel)
			continue;
		char *p = path_relative_to(v->path, rel);
		free(rel);
		if (p && file_exists(p)) {
			if (raw || has_uuid(p, v->header.parent_uuid)) {
				free(first);
				return p;
			}
			if (!first) {
				first = p;
				continue;
			}
		}
		free(p);
	}
	if (first)   /* found a file, but not the right one: open_chain says why */
		return first;
	vhd_error(ENOENT, "%s: %sparent '%s' not found", v->path, raw ? "raw " : "",
	          v->parent_name ? v->parent_name : "");
	return NULL;
}

/* A nil parent UUID: the parent is a raw image, found like a VHD parent
 * and opened read-only (a coalesce opens it for writing itself). */
static int open_raw_parent(struct vhd *v, int flags)
{
	if (!(v->parent_path = vhd_find_parent(v)))
		return -1;
	if ((flags & VHD_OPEN_STRICT_DIR) && !same_directory(v->path, v->parent_path))
		return vhd_error(EPERM, "%s: parent %s is outside the child's directory", v->path,
		                 v->parent_path);
	if (!(v->parent = vhd_open_raw(v->parent_path, false))) {
		/* a file that cannot be a raw parent, named by the child's
		 * locators: the chain is damaged, not the caller's request */
		if (vhd_get_errno() == EINVAL)
			vhd_error_recode(EBADMSG);
		return vhd_error_prefix(v->path);
	}
	v->depth = 2;
	return 0;
}

static struct vhd *open_chain(const char *path, int flags, unsigned level)
{
	if (level >= VHD_MAX_CHAIN_DEPTH) {
		vhd_error(ELOOP, "%s: chain deeper than %u files (a loop?)", path,
		          VHD_MAX_CHAIN_DEPTH);
		return NULL;
	}
	bool lax = (flags & VHD_OPEN_LAX) && level == 0;
	struct vhd *v = vhd_open_file(path, level ? flags & ~VHD_OPEN_RDWR : flags, lax);
	if (!v)
		return NULL;
	v->depth = 1;
	if (v->footer.type != VHD_TYPE_DIFF || (flags & VHD_OPEN_NO_PARENT))
		return v;
	if (vhd_has_raw_parent(v)) {
		if (open_raw_parent(v, flags))
			goto fail;
		return v;
	}
	if (!memcmp(v->header.parent_uuid, v->footer.uuid, 16)) {
		vhd_error(ELOOP, "%s: names itself as its parent (a loop)", v->path);
		goto fail;
	}
	if (!(v->parent_path = vhd_find_parent(v)))
		goto fail;
	if ((flags & VHD_OPEN_STRICT_DIR) && !same_directory(v->path, v->parent_path)) {
		vhd_error(EPERM, "%s: parent %s is outside the child's directory", v->path,
		          v->parent_path);
		goto fail;
	}
	if (!(v->parent = open_chain(v->parent_path, flags, level + 1)))
		goto fail;
	if (memcmp(v->parent->footer.uuid, v->header.parent_uuid, 16)) {
		vhd_error(EBADMSG, "%s: parent %s: invalid parent uuid", v->path, v->parent_path);
		goto fail;
	}
	v->depth = v->parent->depth + 1;
	return v;
fail:
	vhd_close(v);
	return NULL;
}

VHD_EXPORT vhd_t *vhd_open(const char *path, int flags)
{
	if (!path)
		return vhd_error(EINVAL, "no path given"), NULL;
	if ((flags & VHD_OPEN_LAX) && (flags & VHD_OPEN_RDWR))
		return vhd_error(EINVAL, "%s: a lax open is read-only", path), NULL;
	return open_chain(path, flags, 0);
}

VHD_EXPORT int vhd_close(vhd_t *v)
{
	int rc = 0;
	while (v) {
		struct vhd *parent = v->parent;
		if (v->writable && fsync(v->fd) < 0 && errno != EINVAL)
			rc = vhd_error(errno, "%s: fsync: %s", v->path, strerror(errno));
		vhd_free(v);
		v = parent;
	}
	return rc;
}

/* Read V's file again from its path, read-only, with its chain: the fresh
 * header names the parents as they are now on disk. */
static struct vhd *open_fresh_chain(const struct vhd *v)
{
	struct vhd *fresh = open_chain(v->path, v->flags & ~VHD_OPEN_RDWR & ~VHD_OPEN_DURABLE, 0);
	if (!fresh)
		return NULL;
	if (memcmp(fresh->footer.uuid, v->footer.uuid, 16) || fresh->footer.type != v->footer.type ||
	    fresh->header.table_offset != v->header.table_offset ||
	    fresh->header.block_size != v->header.block_size ||
	    fresh->header.max_bat_entries != v->header.max_bat_entries) {
		vhd_error(EBUSY, "%s: the file at this path is no longer the one open", v->path);
		vhd_close(fresh);
		return NULL;
	}
	return fresh;
}

VHD_EXPORT int vhd_reopen_parents(vhd_t *v)
{
	if (!v)
		return vhd_error(EINVAL, "no handle given");
	if (v->footer.type != VHD_TYPE_DIFF)
		return 0;
	struct vhd *fresh = open_fresh_chain(v);
	if (!fresh)
		return vhd_error_prefix("re-open parents");
	/* only the parent fields may have changed (a reparent rewrites them
	 * in place); the BAT and bitmaps are this handle's own */
	memcpy(v->header.parent_uuid, fresh->header.parent_uuid, 16);
	v->header.parent_timestamp = fresh->header.parent_timestamp;
	memcpy(v->header.parent_name, fresh->header.parent_name, sizeof v->header.parent_name);
	memcpy(v->header.loc, fresh->header.loc, sizeof v->header.loc);
	v->header.checksum = fresh->header.checksum;
	struct vhd *old_parent = v->parent;
	char *old_name = v->parent_name, *old_path = v->parent_path;
	v->parent = fresh->parent;
	v->parent_name = fresh->parent_name;
	v->parent_path = fresh->parent_path;
	v->depth = fresh->depth;
	fresh->parent = old_parent;
	fresh->parent_name = old_name;
	fresh->parent_path = old_path;
	vhd_close(fresh);   /* and with it the old parents */
	return 0;
}

VHD_EXPORT int vhd_get_info(vhd_t *v, struct vhd_info *i)
{
	memset(i, 0, sizeof *i);
	i->type = (int)v->footer.type;
	i->virtual_size = v->footer.curr_size;
	i->original_size = v->footer.orig_size;
	i->file_size = v->file_size;
	i->hidden = v->footer.hidden;
	memcpy(i->uuid, v->footer.uuid, 16);
	i->timestamp = v->footer.timestamp;
	memcpy(i->creator_app, v->footer.creator_app, 4);
	i->creator_version = v->footer.creator_version;
	i->creator_os = v->footer.creator_os;
	i->geometry = v->footer.geometry;
	i->depth = vhd_chain_depth(v);
	i->path = v->path;
	i->parent_name = v->parent_name;
	i->parent_path = v->parent_path;
	i->features = v->footer.features;
	i->saved_state = v->footer.saved_state;
	i->data_offset = v->footer.data_offset;
	i->footer_checksum = v->footer.checksum;
	if (v->footer.type == VHD_TYPE_FIXED)
		return 0;
	i->table_offset = v->header.table_offset;
	i->header_checksum = v->header.checksum;
	if (v->has_batmap) {
		i->batmap_offset = v->batmap_hdr.map_offset;
		i->batmap_sectors = v->batmap_hdr.map_sectors;
		i->batmap_version = v->batmap_hdr.version;
		i->batmap_checksum = v->batmap_hdr.checksum;
	}
	i->block_size = v->header.block_size;
	i->max_bat_entries = v->bat_entries;
	for (uint32_t b = 0; b < v->bat_entries; b++) {
		if (v->bat[b] == BAT_UNUSED)
			continue;
		i->allocated_blocks++;
		if (v->has_batmap && bit_test(v->batmap, b))
			i->full_blocks++;
	}
	i->has_batmap = v->has_batmap;
	if (v->footer.type == VHD_TYPE_DIFF) {
		memcpy(i->parent_uuid, v->header.parent_uuid, 16);
		i->parent_timestamp = v->header.parent_timestamp;
	}
	return 0;
}

VHD_EXPORT vhd_t *vhd_get_parent(vhd_t *v)
{
	return v->parent;
}

VHD_EXPORT unsigned vhd_chain_depth(vhd_t *v)
{
	unsigned d = 0;
	for (; v; v = v->parent)
		d++;
	return d;
}

VHD_EXPORT int vhd_get_locator(vhd_t *v, int n, struct vhd_locator_info *loc)
{
	if (n < 0 || n >= LOC_COUNT || v->footer.type == VHD_TYPE_FIXED)
		return vhd_error(EINVAL, "%s: no locator %d", v->path, n);
	const struct vhd_locator *l = &v->header.loc[n];
	loc->code = l->code;
	loc->data_space = l->data_space;
	loc->data_length = l->data_len;
	loc->data_offset = l->data_offset;
	loc->name = l->code ? vhd_locator_path(v, n) : NULL;
	return 0;
}
