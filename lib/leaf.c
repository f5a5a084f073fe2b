/* leaf.c - leaf-coalesce: merge a leaf into its parent, then let the parent
 * take the leaf's place (path, UUID, hidden flag), so that the chain is one
 * shorter and whoever uses the leaf by path or UUID sees no change.
 *
 * The swap, under the SR lock and journaled (".vhdleaf-<leaf>.journal"):
 *   1. the journal records leaf and parent (names, UUIDs) and the leaf's
 *      size and mtime;
 *   2. rename(parent, leaf): the leaf's path now holds the merged parent,
 *      which reads exactly as the leaf did, under the parent's UUID;
 *   3. the footers get the leaf's UUID and hidden flag;
 *   4. the journal goes.
 * At every moment the leaf's path holds a VHD with the leaf's content.  The
 * recovery looks at the files to see how far it got: the leaf still a child
 * of the parent (not renamed: rename, unless the leaf changed since the
 * journal or the journal is a live merge's, then drop it: the merge is
 * redone later), the parent's UUID at
 * the leaf's path (renamed: footers), the leaf's UUID there (footers again:
 * the crash may have fallen between the primary's write and the backup's). */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "merge.h"

#define LEAF_PREFIX ".vhdleaf-"
#define LEAF_SUFFIX ".journal"

struct leaf_journal {
	char dir[PATH_MAX];
	char path[PATH_MAX];        /* of the journal */
	char leaf[PATH_MAX], parent[PATH_MAX];
	uint8_t leaf_uuid[16], parent_uuid[16];
	int hidden;
	uint64_t leaf_size;
	int64_t leaf_mtime_ns;
	int live;                   /* a live merge's: never renamed by a recovery */
};

static int split_path(const char *path, char *dir, size_t dlen, const char **name)
{
	char abs[PATH_MAX];
	if (!realpath(path, abs))
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	char *slash = strrchr(abs, '/');
	*slash = 0;
	snprintf(dir, dlen, "%s", abs[0] ? abs : "/");
	*name = path + (strrchr(path, '/') ? strrchr(path, '/') - path + 1 : 0);
	return 0;
}

static int journal_name(struct leaf_journal *j, const char *leaf_name)
{
	if ((size_t)snprintf(j->path, sizeof j->path, "%s/" LEAF_PREFIX "%s" LEAF_SUFFIX, j->dir,
	                     leaf_name) >= sizeof j->path)
		return vhd_error(ENAMETOOLONG, "%s: path too long", leaf_name);
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int save(const struct leaf_journal *j)
{
	json_object *o = json_object_new_object();
	int bad = json_put(o, "vhdkit_leaf_journal", json_object_new_int(1));
	bad |= json_put(o, "leaf", json_object_new_string(base_name(j->leaf)));
	bad |= json_put(o, "leaf_uuid", uuid_json(j->leaf_uuid));
	bad |= json_put(o, "parent", json_object_new_string(base_name(j->parent)));
	bad |= json_put(o, "parent_uuid", uuid_json(j->parent_uuid));
	bad |= json_put(o, "hidden", json_object_new_boolean(j->hidden));
	bad |= json_put(o, "leaf_size", json_object_new_uint64(j->leaf_size));
	bad |= json_put(o, "leaf_mtime_ns", json_object_new_int64(j->leaf_mtime_ns));
	if (j->live)
		bad |= json_put(o, "live", json_object_new_boolean(1));
	int rc = json_save_atomic(bad ? NULL : o, j->path);
	json_object_put(o);
	return rc;
}

/* A bare file name of the journal's directory, checked. */
static int name_field(json_object *o, const char *key, const char *dir, char *out, size_t len)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -1;
	const char *s = json_object_get_string(v);
	if (!*s || strchr(s, '/') || s[0] == '.')
		return -1;
	return (size_t)snprintf(out, len, "%s/%s", dir, s) >= len ? -1 : 0;
}

static int uuid_field(json_object *o, const char *key, uint8_t out[16])
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -1;
	return uuid_parse(json_object_get_string(v), out);
}

static int load(struct leaf_journal *j)
{
	json_object *o = json_object_from_file(j->path), *v;
	int rc = o ? 0 : -1;
	rc = rc || name_field(o, "leaf", j->dir, j->leaf, sizeof j->leaf);
	rc = rc || name_field(o, "parent", j->dir, j->parent, sizeof j->parent);
	rc = rc || uuid_field(o, "leaf_uuid", j->leaf_uuid) || uuid_field(o, "parent_uuid", j->parent_uuid);
	if (!rc && json_object_object_get_ex(o, "hidden", &v))
		j->hidden = json_object_get_boolean(v);
	if (!rc && json_object_object_get_ex(o, "leaf_size", &v))
		j->leaf_size = json_object_get_uint64(v);
	if (!rc && json_object_object_get_ex(o, "leaf_mtime_ns", &v))
		j->leaf_mtime_ns = json_object_get_int64(v);
	if (!rc && json_object_object_get_ex(o, "live", &v))
		j->live = json_object_get_boolean(v);
	json_object_put(o);
	return rc ? vhd_error(EBADMSG, "%s: not a valid leaf-coalesce journal", j->path) : 0;
}

/* Is PATH's pair of footers the state a crash leaves between the two
 * footer writes of the swap's step 3: a leaf journal for PATH, the primary
 * footer with the leaf's UUID, the backup still with the parent's?  The
 * disk then reads as the leaf (the primary footer rules) and vhd_leaf_recover
 * writes the backup; vhd check says so instead of calling it damage. */
bool leaf_swap_between_footers(const char *path, const struct vhd_footer *primary,
                               const struct vhd_footer *backup)
{
	struct leaf_journal j = { 0 };
	const char *name;
	if (split_path(path, j.dir, sizeof j.dir, &name) || journal_name(&j, name) ||
	    access(j.path, F_OK) || load(&j))
		return false;
	return !strcmp(base_name(j.leaf), name) && !memcmp(primary->uuid, j.leaf_uuid, 16) &&
	       !memcmp(backup->uuid, j.parent_uuid, 16);
}

static int stat_leaf(const char *path, uint64_t *size, int64_t *mtime_ns)
{
	struct stat st;
	if (stat(path, &st))
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	*size = (uint64_t)st.st_size;
	*mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

/* The file at the leaf's path now (the merged parent) gets the leaf's
 * identity.  V is open RDWR (its write lock held). */
static int take_identity(struct leaf_journal *j, struct vhd *v)
{
	memcpy(v->footer.uuid, j->leaf_uuid, 16);
	v->footer.hidden = (uint8_t)(j->hidden ? 1 : 0);
	if (vhd_write_footers(v) || vhd_flush(v))
		return -1;
	return 0;
}

/* Steps 2-4 with the parent open RDWR as PARENT. */
static int swap(struct leaf_journal *j, struct vhd *parent)
{
	if (rename(j->parent, j->leaf))
		return vhd_error(errno, "%s -> %s: rename: %s", j->parent, j->leaf, strerror(errno));
	if (fsync_parent_dir(j->leaf) || take_identity(j, parent))
		return -1;
	if (unlink(j->path) && errno != ENOENT)
		return vhd_error(errno, "%s: %s", j->path, strerror(errno));
	return fsync_parent_dir(j->path);
}

static int lock_fd(const char *path, int *fd)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (*fd < 0)
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB))
		return vhd_error(EBUSY, "%s: in use: another process has it open for writing", path);
	return 0;
}

static struct vhd *open_checked(const char *path, const uint8_t uuid[16], int flags)
{
	struct vhd *v = vhd_open_file(path, flags | VHD_OPEN_NO_PARENT, false);
	if (v && memcmp(v->footer.uuid, uuid, 16)) {
		vhd_error(EEXIST, "%s: not the file the journal names", path);
		vhd_free(v);
		return NULL;
	}
	return v;
}

static bool is_child_of(const struct vhd *v, const uint8_t uuid[16])
{
	return v->footer.type == VHD_TYPE_DIFF && !memcmp(v->header.parent_uuid, uuid, 16);
}

/* Finish the swap J describes, with the SR lock held. */
static int recover_swap(struct leaf_journal *j)
{
	struct vhd *at_leaf = vhd_open_file(j->leaf, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, false);
	if (!at_leaf)
		return vhd_error_prefix("leaf swap");
	bool renamed = !memcmp(at_leaf->footer.uuid, j->parent_uuid, 16);
	bool not_begun = !memcmp(at_leaf->footer.uuid, j->leaf_uuid, 16) &&
	                 is_child_of(at_leaf, j->parent_uuid);
	bool done = !memcmp(at_leaf->footer.uuid, j->leaf_uuid, 16) && !not_begun;
	vhd_free(at_leaf);
	int rc = 0, lfd = -1;
	if (renamed) {
		struct vhd *v = open_checked(j->leaf, j->parent_uuid, VHD_OPEN_RDWR);
		rc = !v || take_identity(j, v);
		vhd_close(v);
	} else if (not_begun) {
		uint64_t size;
		int64_t mtime;
		if (j->live)
			vhd_debug(j->leaf, "live swap not begun: dropped, the live merge resumes");
		else if (stat_leaf(j->leaf, &size, &mtime) || lock_fd(j->leaf, &lfd))
			rc = -1;
		else if (size != j->leaf_size || mtime != j->leaf_mtime_ns)
			vhd_debug(j->leaf, "changed since the merge: swap dropped, merge again later");
		else {
			struct vhd *p = open_checked(j->parent, j->parent_uuid, VHD_OPEN_RDWR);
			rc = !p || swap(j, p);
			vhd_close(p);
		}
		if (lfd >= 0)
			close(lfd);
	} else if (done) {
		/* the leaf's UUID is read from the primary footer: a crash between
		 * the two footer writes of step 3 leaves the backup with the
		 * parent's, so both are written again */
		struct vhd *v = open_checked(j->leaf, j->leaf_uuid, VHD_OPEN_RDWR);
		rc = !v || take_identity(j, v);
		vhd_close(v);
	} else {
		return vhd_error(EBADMSG, "%s: %s holds neither the leaf nor its parent", j->path, j->leaf);
	}
	if (rc)
		return -1;
	if (unlink(j->path) && errno != ENOENT)
		return vhd_error(errno, "%s: %s", j->path, strerror(errno));
	return fsync_parent_dir(j->path);
}

/* Merge done: swap under the SR lock.  LEAF_FD holds the leaf's lock. */
static int swap_locked(struct leaf_journal *j)
{
	int sr = vhd_sr_lock(j->dir, 1);
	if (sr < 0)
		return -1;
	int rc = -1;
	struct vhd *leaf = open_checked(j->leaf, j->leaf_uuid, VHD_OPEN_RDONLY);
	struct vhd *parent = open_checked(j->parent, j->parent_uuid, VHD_OPEN_RDWR);
	if (leaf && parent && !is_child_of(leaf, j->parent_uuid))
		vhd_error(EBUSY, "%s: no longer a child of %s", j->leaf, j->parent);
	else if (leaf && parent && !stat_leaf(j->leaf, &j->leaf_size, &j->leaf_mtime_ns)) {
		j->hidden = leaf->footer.hidden;
		rc = save(j) || swap(j, parent);
	}
	vhd_free(leaf);
	if (vhd_close(parent))
		rc = -1;
	vhd_sr_unlock(sr);
	return rc;
}

/* The swap of a live leaf-coalesce (live.c), in three calls so that the
 * guest waits only for the rename: LEAF, the served leaf (its lock held by
 * the server), is merged into PARENT, open RDWR.
 * leaf_swap_begin, before the drain: the SR lock, the journal (marked
 * live: until the rename a recovery drops it, and the live merge, whose
 * own journal is still there, resumes: the parent may still lack writes
 * the guest makes until the drain).  leaf_swap_rename, under the drain:
 * the rename, durable; *RENAMED tells the caller whether the leaf's path
 * now holds the parent (then the parent serves).  leaf_swap_end, after
 * it: the footers get the leaf's identity (under the metadata lock: the
 * guest's writes may allocate blocks meanwhile), the journal goes, the SR
 * lock is released; a step that fails leaves the journal for
 * vhd_leaf_recover. */
struct leaf_swap {
	struct leaf_journal j;
	int sr;
	bool renamed;
};

struct leaf_swap *leaf_swap_begin(struct vhd *leaf, struct vhd *parent)
{
	struct leaf_swap *s = calloc(1, sizeof *s);
	const char *name = NULL;
	if (!s)
		return vhd_error(ENOMEM, "out of memory"), NULL;
	struct leaf_journal *j = &s->j;
	j->live = 1;
	if (split_path(leaf->path, j->dir, sizeof j->dir, &name) || journal_name(j, name))
		goto fail;
	if ((size_t)snprintf(j->leaf, sizeof j->leaf, "%s/%s", j->dir, name) >= sizeof j->leaf ||
	    !realpath(parent->path, j->parent)) {
		vhd_error(ENAMETOOLONG, "%s: path too long or gone", leaf->path);
		goto fail;
	}
	memcpy(j->leaf_uuid, leaf->footer.uuid, 16);
	memcpy(j->parent_uuid, parent->footer.uuid, 16);
	j->hidden = leaf->footer.hidden;
	if ((s->sr = vhd_sr_lock(j->dir, 1)) < 0)
		goto fail;
	if (!is_child_of(leaf, j->parent_uuid))
		vhd_error(EBUSY, "%s: no longer a child of %s", j->leaf, j->parent);
	else if (!stat_leaf(j->leaf, &j->leaf_size, &j->leaf_mtime_ns) && !save(j))
		return s;
	vhd_sr_unlock(s->sr);
fail:
	free(s);
	return NULL;
}

int leaf_swap_rename(struct leaf_swap *s, bool *renamed)
{
	if (rename(s->j.parent, s->j.leaf))
		return *renamed = false,
		       vhd_error(errno, "%s -> %s: rename: %s", s->j.parent, s->j.leaf, strerror(errno));
	*renamed = s->renamed = true;
	return fsync_parent_dir(s->j.leaf);
}

int leaf_swap_end(struct leaf_swap *s, struct vhd *now)
{
	if (!s)
		return 0;
	int rc = 0;
	if (s->renamed) {
		pthread_mutex_lock(&now->meta_lock);
		memcpy(now->footer.uuid, s->j.leaf_uuid, 16);
		now->footer.hidden = (uint8_t)(s->j.hidden ? 1 : 0);
		rc = vhd_write_footers(now);
		pthread_mutex_unlock(&now->meta_lock);
		rc = rc || vhd_flush(now);
	}
	/* not renamed: the swap is given up, its journal goes */
	if (!rc)
		rc = (unlink(s->j.path) && errno != ENOENT) ? vhd_error(errno, "%s: %s", s->j.path, strerror(errno))
		                                            : fsync_parent_dir(s->j.path);
	vhd_sr_unlock(s->sr);
	free(s);
	return rc;
}

/* The caller's options stay live (rate_limit "may be changed while the
 * operation runs"), but the merge gets a copy with other flags: each
 * progress call carries the caller's current limit into the copy. */
struct live_rate {
	const struct vhd_coalesce_opts *caller;
	struct vhd_coalesce_opts *copy;
};

static int follow_rate(const struct vhd_progress *p, void *opaque)
{
	struct live_rate *l = opaque;
	l->copy->rate_limit = l->caller->rate_limit;
	return l->caller->progress ? l->caller->progress(p, l->caller->opaque) : 0;
}

VHD_EXPORT int vhd_leaf_coalesce(const char *leaf, const struct vhd_coalesce_opts *opts)
{
	static const struct vhd_coalesce_opts none;
	struct leaf_journal j = { 0 };
	const char *name = NULL;
	if (!leaf)
		return vhd_error(EINVAL, "no file given");
	if (!opts)
		opts = &none;
	if (split_path(leaf, j.dir, sizeof j.dir, &name) || journal_name(&j, name))
		return -1;
	if ((size_t)snprintf(j.leaf, sizeof j.leaf, "%s/%s", j.dir, name) >= sizeof j.leaf)
		return vhd_error(ENAMETOOLONG, "%s: path too long", leaf);
	if (!access(j.path, F_OK))
		return vhd_error(EBUSY, "%s: a leaf swap is pending: 'vhd gc' completes it", j.path);
	struct vhd *v = vhd_open(j.leaf, VHD_OPEN_RDONLY | VHD_OPEN_STRICT_DIR);
	if (!v)
		return -1;
	int rc = 0;
	if (v->footer.type != VHD_TYPE_DIFF || !v->parent)
		rc = vhd_error(EINVAL, "%s: not a differencing disk: nothing to merge", leaf);
	else if (!realpath(v->parent_path, j.parent))
		rc = vhd_error(errno, "%s: %s", v->parent_path, strerror(errno));
	else if (strncmp(j.parent, j.dir, strlen(j.dir)) || strchr(j.parent + strlen(j.dir) + 1, '/'))
		rc = vhd_error(EPERM, "%s: parent %s is outside its directory", leaf, j.parent);
	else {
		memcpy(j.leaf_uuid, v->footer.uuid, 16);
		memcpy(j.parent_uuid, v->parent->footer.uuid, 16);
	}
	vhd_close(v);
	int lfd = -1;
	if (rc || lock_fd(j.leaf, &lfd)) {
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	struct vhd_coalesce_opts o = *opts;
	o.flags = (o.flags & ~VHD_COALESCE_RELINK & ~VHD_COALESCE_FORCE) | VHD_COALESCE_STRICT_DIR;
	/* the copy's rate limit follows the caller's while it runs */
	struct live_rate live = { .caller = opts, .copy = &o };
	o.progress = follow_rate;
	o.opaque = &live;
	/* the merge's journal must be gone for good before the parent's name is */
	rc = vhd_coalesce(j.leaf, &o) || fsync_parent_dir(j.path) || swap_locked(&j);
	close(lfd);
	return rc ? -1 : 0;
}

VHD_EXPORT int vhd_leaf_recover(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return vhd_error(errno, "%s: %s", dir, strerror(errno));
	int done = 0, rc = 0, sr = vhd_sr_lock(dir, 1);
	if (sr < 0) {
		closedir(d);
		return -1;
	}
	struct dirent *e;
	size_t pl = strlen(LEAF_PREFIX), sl = strlen(LEAF_SUFFIX);
	while (!rc && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n <= pl + sl || strncmp(e->d_name, LEAF_PREFIX, pl) ||
		    strcmp(e->d_name + n - sl, LEAF_SUFFIX))
			continue;
		struct leaf_journal j = { 0 };
		snprintf(j.dir, sizeof j.dir, "%s", dir);
		if ((size_t)snprintf(j.path, sizeof j.path, "%s/%s", dir, e->d_name) >= sizeof j.path)
			continue;
		if (load(&j) || recover_swap(&j))
			rc = vhd_error_prefix(j.path);
		else
			done++;
	}
	closedir(d);
	vhd_sr_unlock(sr);
	return rc ? -1 : done;
}
