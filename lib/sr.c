/* sr.c - storage repositories: the SR and GC locks, and scanning an SR
 * directory into a forest of VHDs matched by UUID. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SR_LOCK_NAME ".vhd-sr.lock"
#define GC_LOCK_NAME ".vhd-gc.lock"

static int lock_in_dir(const char *dir, const char *name, int wait)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		return vhd_error(ENAMETOOLONG, "%s: path too long", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT)   /* no lock file and none possible */
			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0 && strcmp(name, SR_LOCK_NAME))
			return fd;
	}
	if (fd < 0)
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	while (flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB)) {
		if (errno == EINTR && wait)
			continue;
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return vhd_error(EBUSY, "%s: locked by another process", path);
		return vhd_error(e, "%s: cannot lock: %s", path, strerror(e));
	}
	return fd;
}

VHD_EXPORT int vhd_sr_lock(const char *dir, int wait)
{
	return lock_in_dir(dir, SR_LOCK_NAME, wait);
}

VHD_EXPORT int vhd_gc_lock(const char *dir, int wait)
{
	return lock_in_dir(dir, GC_LOCK_NAME, wait);
}

VHD_EXPORT int vhd_sr_lock_file(const char *file, int wait)
{
	char dir[PATH_MAX];
	return vhd_sr_lock(path_dir(file, dir, sizeof dir), wait);
}

VHD_EXPORT void vhd_sr_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ---- scanning ---- */

static bool wanted_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 4 && !strcmp(name + n - 4, ".vhd");
}

static int set_defect(struct vhd_sr_entry *e, const char *msg)
{
	e->ok = 0;
	if (!e->defect)
		e->defect = xstrdup(msg);
	return 0;
}

/* Does another open file hold FD's file's write lock? */
static int probe_in_use(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	int busy = flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

static void read_entry(struct vhd_sr_entry *e)
{
	struct stat st;
	e->parent = -1;
	if (lstat(e->path, &st) || !S_ISREG(st.st_mode)) {
		set_defect(e, "not a regular file");
		return;
	}
	e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	struct vhd *v = vhd_open_file(e->path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, false);
	if (!v) {
		set_defect(e, vhd_get_error());
		return;
	}
	e->ok = 1;
	e->type = (int)v->footer.type;
	e->hidden = v->footer.hidden;
	memcpy(e->uuid, v->footer.uuid, 16);
	if (e->type == VHD_TYPE_DIFF)
		memcpy(e->parent_uuid, v->header.parent_uuid, 16);
	e->virtual_size = v->footer.curr_size;
	e->file_size = v->file_size;
	if (e->type == VHD_TYPE_FIXED) {
		e->allocated_bytes = v->footer.curr_size;
	} else {
		for (uint32_t b = 0; b < v->bat_entries; b++)
			e->allocated_bytes += (v->bat[b] != BAT_UNUSED) * (uint64_t)v->header.block_size;
	}
	vhd_free(v);
	e->in_use = probe_in_use(e->path);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct vhd_sr_entry *)a)->name, ((const struct vhd_sr_entry *)b)->name);
}

static int list_dir(struct vhd_sr *sr)
{
	DIR *d = opendir(sr->dir);
	if (!d)
		return vhd_error(errno, "%s: %s", sr->dir, strerror(errno));
	size_t cap = 0;
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d))) {
		if (!wanted_name(de->d_name))
			continue;
		if (sr->count == cap) {
			cap = cap ? 2 * cap : 32;
			struct vhd_sr_entry *n = realloc(sr->entries, cap * sizeof *n);
			if (!n) {
				rc = vhd_error(ENOMEM, "out of memory");
				break;
			}
			sr->entries = n;
		}
		struct vhd_sr_entry *e = &sr->entries[sr->count];
		memset(e, 0, sizeof *e);
		size_t len = strlen(sr->dir) + strlen(de->d_name) + 2;
		if (!(e->path = xmalloc(len))) {
			rc = -1;
			break;
		}
		snprintf(e->path, len, "%s/%s", sr->dir, de->d_name);
		e->name = e->path + strlen(sr->dir) + 1;
		sr->count++;
	}
	closedir(d);
	return rc;
}

static void mark_duplicates(struct vhd_sr *sr)
{
	for (size_t i = 0; i < sr->count; i++)
		for (size_t k = i + 1; k < sr->count; k++) {
			struct vhd_sr_entry *a = &sr->entries[i], *b = &sr->entries[k];
			if (a->type && b->type && !memcmp(a->uuid, b->uuid, 16)) {
				set_defect(a, "UUID shared with another file of the SR");
				set_defect(b, "UUID shared with another file of the SR");
			}
		}
}

static void link_parents(struct vhd_sr *sr)
{
	for (size_t i = 0; i < sr->count; i++) {
		struct vhd_sr_entry *e = &sr->entries[i];
		if (e->type != VHD_TYPE_DIFF || e->defect)
			continue;
		e->parent_missing = 1;
		for (size_t k = 0; k < sr->count; k++)
			if (k != i && sr->entries[k].type && !memcmp(sr->entries[k].uuid, e->parent_uuid, 16)) {
				e->parent = (int)k;
				e->parent_missing = 0;
			}
	}
}

/* Depths from the roots; an entry whose ancestry loops is damaged. */
void sr_compute_depths(struct vhd_sr *sr)
{
	for (size_t i = 0; i < sr->count; i++) {
		struct vhd_sr_entry *e = &sr->entries[i];
		unsigned d = 1;
		int p = e->parent;
		while (p >= 0 && d <= sr->count) {
			d++;
			p = sr->entries[p].parent;
		}
		if (d > sr->count) {
			set_defect(e, "its chain of parents loops");
			d = 0;
		}
		e->depth = d;
		if (e->parent >= 0)
			sr->entries[e->parent].children++;
	}
	for (size_t i = 0; i < sr->count; i++) {
		struct vhd_sr_entry *e = &sr->entries[i];
		if (!e->depth)
			continue;
		bool visible = e->type && !e->hidden;
		for (int p = (int)i; p >= 0; p = sr->entries[p].parent) {
			struct vhd_sr_entry *a = &sr->entries[p];
			if (a->subtree_depth < e->depth)
				a->subtree_depth = e->depth;
			if (visible)
				a->visible_below = 1;
		}
	}
}

VHD_EXPORT struct vhd_sr *vhd_sr_scan(const char *dir)
{
	struct vhd_sr *sr = xcalloc(1, sizeof *sr);
	if (!sr)
		return NULL;
	if (!(sr->dir = xstrdup(dir)) || list_dir(sr)) {
		vhd_sr_free(sr);
		return NULL;
	}
	if (sr->count)
		qsort(sr->entries, sr->count, sizeof *sr->entries, by_name);
	for (size_t i = 0; i < sr->count; i++) {
		sr->entries[i].name = sr->entries[i].path + strlen(sr->dir) + 1;
		read_entry(&sr->entries[i]);
	}
	mark_duplicates(sr);
	link_parents(sr);
	sr_compute_depths(sr);
	return sr;
}

VHD_EXPORT void vhd_sr_free(struct vhd_sr *sr)
{
	if (!sr)
		return;
	for (size_t i = 0; i < sr->count; i++) {
		free(sr->entries[i].path);
		free(sr->entries[i].defect);
	}
	free(sr->entries);
	free(sr->dir);
	free(sr);
}
