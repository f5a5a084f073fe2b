/* relink.c - the end of a merge with relink: re-point the top's children
 * at the base, delete the merged layers; and the directory listings both
 * this and recover.c use. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "merge.h"

void free_paths(char **paths)
{
	for (char **p = paths; p && *p; p++)
		free(*p);
	free(paths);
}

static int push_path(char ***list, size_t *n, size_t *cap, char *path)
{
	if (!path)
		return -1;
	if (*n + 2 > *cap) {
		size_t c = *cap ? 2 * *cap : 8;
		char **l = realloc(*list, c * sizeof *l);
		if (!l) {
			free(path);
			return vhd_error(ENOMEM, "out of memory");
		}
		*list = l;
		*cap = c;
	}
	(*list)[(*n)++] = path;
	(*list)[*n] = NULL;
	return 0;
}

static char *join(const char *dir, const char *name)
{
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p) {
		vhd_error(ENAMETOOLONG, "%s/%s: path too long", dir, name);
		return NULL;
	}
	return xstrdup(p);
}

/* Is PATH a differencing VHD whose header names UUID as its parent?
 * Damaged or foreign files simply are not. */
static bool is_child_of(const char *path, const void *uuid)
{
	struct vhd *v = vhd_open_file(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, true);
	bool yes = v && v->footer.type == VHD_TYPE_DIFF && !memcmp(v->header.parent_uuid, uuid, 16);
	vhd_free(v);
	return yes;
}

static bool same_inode(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Is PATH a differencing VHD whose raw parent is the file RAW? */
static bool is_raw_child_of(const char *path, const void *raw)
{
	struct vhd *v = vhd_open_file(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, true);
	char *p = v && vhd_has_raw_parent(v) ? vhd_find_parent(v) : NULL;
	bool yes = p && same_inode(p, raw);
	free(p);
	vhd_free(v);
	return yes;
}

static bool same_path(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];
	return b && realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

char **paths_in_dir(const char *dir, bool (*want)(const char *name))
{
	DIR *d = opendir(dir);
	if (!d) {
		vhd_error(errno, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	char **list = xcalloc(1, sizeof *list);   /* an empty list, NULL-terminated */
	size_t n = 0, cap = 1;
	int rc = list ? 0 : -1;
	struct dirent *e;
	while (!rc && (e = readdir(d)))
		if (want(e->d_name))
			rc = push_path(&list, &n, &cap, join(dir, e->d_name));
	closedir(d);
	if (rc) {
		free_paths(list);
		return NULL;
	}
	return list;
}

static bool is_vhd_name(const char *name)
{
	return name[0] != '.' && ends_with(name, ".vhd");
}

static char **scan_children(const char *dir, const char *skip,
                            bool (*is_child)(const char *, const void *), const void *arg)
{
	char **list = paths_in_dir(dir, is_vhd_name);
	size_t kept = 0;
	for (size_t i = 0; list && list[i]; i++) {
		if (same_path(list[i], skip) || !is_child(list[i], arg))
			free(list[i]);
		else
			list[kept++] = list[i];
	}
	if (list)
		list[kept] = NULL;
	return list;
}

char **children_in_dir(const char *dir, const uint8_t uuid[16], const char *skip)
{
	return scan_children(dir, skip, is_child_of, uuid);
}

char **raw_children_in_dir(const char *dir, const char *raw, const char *skip)
{
	return scan_children(dir, skip, is_raw_child_of, raw);
}

int merge_relink(struct journal *j, const struct vhd_coalesce_opts *opts)
{
	(void)opts;
	const struct layer_stamp *top = &j->layers[0];
	char dir[PATH_MAX];
	char **children = children_in_dir(path_dir(top->path, dir, sizeof dir), top->uuid, top->path);
	if (!children)
		return -1;
	int rc = 0;
	for (char **c = children; !rc && *c; c++) {
		vhd_debug(*c, "re-pointing at %s", j->base);
		int r = uuid_is_nil(j->base_uuid) ? vhd_reparent_raw_file(*c, j->base, VHD_OPEN_NO_LOCK)
		                                  : vhd_reparent_file(*c, j->base, VHD_OPEN_NO_LOCK);
		if (r)
			rc = vhd_error_prefix("relink");
	}
	free_paths(children);
	return rc;
}

/* A child of merged layer I that the relink did not re-point: any child of
 * the top (the relink re-pointed them all), or a child of a layer below it
 * other than the merged layer above (a snapshot taken of it meanwhile,
 * which the merge must not leave pointing at a deleted file).  1 if so,
 * with the error set; -1 on error. */
static int unexpected_child(const struct journal *j, unsigned i)
{
	const struct layer_stamp *s = &j->layers[i];
	char dir[PATH_MAX];
	char **kids = children_in_dir(path_dir(s->path, dir, sizeof dir), s->uuid,
	                              i ? j->layers[i - 1].path : s->path);
	if (!kids)
		return -1;
	int r = kids[0] ? 1 : 0;
	if (r)
		vhd_error(EBUSY, "%s: has a child the merge did not re-point, %s: not deleting it",
		          s->path, kids[0]);
	free_paths(kids);
	return r;
}

/* Delete the merged layers, top first, each only if it still is the file
 * the journal names (same UUID: a path may have been reused) and nothing
 * but the merged layer above still depends on it. */
int merge_delete(struct journal *j, const struct vhd_coalesce_opts *opts)
{
	(void)opts;
	for (unsigned i = 0; i < j->nlayers; i++) {
		const struct layer_stamp *s = &j->layers[i];
		struct vhd *v = vhd_open_file(s->path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, true);
		if (!v) {
			if (access(s->path, F_OK) && errno == ENOENT)
				continue;   /* already deleted */
			return vhd_error_prefix("delete");
		}
		bool same = !memcmp(v->footer.uuid, s->uuid, 16);
		vhd_free(v);
		if (!same)
			return vhd_error(EEXIST, "%s: is no longer the merged file; not deleting it",
			                 s->path);
		if (unexpected_child(j, i))
			return -1;
		if (unlink(s->path) && errno != ENOENT)
			return vhd_error(errno, "%s: %s", s->path, strerror(errno));
		if (fsync_parent_dir(s->path))
			return -1;
	}
	return 0;
}
