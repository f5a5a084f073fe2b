/* live.c - live leaf-coalesce: merge the leaf a server has open into its
 * hidden parent while the server keeps serving it (vhdkit.h says what each
 * call promises).
 *
 * Dirty tracking: one bit per 4 KiB chunk of the virtual disk.  At the
 * start every chunk of the leaf's allocated blocks is dirty (a step skips
 * the sectors the leaf does not hold): the first step marks them, when the
 * server already routes every guest write here.  A guest write lands on the leaf,
 * then, in copy mode, sets its chunks' bits; a step clears the bits of the
 * chunks it takes, then reads the leaf and writes the parent.
 *
 * Guest writes hold COPY_LOCK shared, a step holds it exclusive: a step's
 * read of the leaf and write of the parent never interleave with a guest
 * write, so in mirror mode (the guest's write goes to the leaf and the
 * parent before it returns, and marks nothing) a step cannot put older
 * data into the parent after the guest's newer mirrored write.  A step is
 * short (at most the caller's MAX bytes), which bounds what a guest write
 * waits.
 *
 * The live journal, "<dir>/.vhdlive-<leaf name>.journal", only says that a
 * merge of the leaf into that parent was running, for the server that
 * starts after a crash to resume it.  It holds no state the files need:
 * the parent is valid at every moment (opened durable), and the leaf is
 * what the guest sees until the pivot. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "merge.h"

#define LIVE_PREFIX ".vhdlive-"
#define LEAF_JOURNAL_PREFIX ".vhdleaf-"
#define JOURNAL_SUFFIX ".journal"
#define CHUNK_SECTORS (VHD_LIVE_CHUNK / SECTOR)

struct vhd_live {
	struct vhd *leaf;
	struct vhd *parent;          /* owned until the pivot hands it over */
	struct leaf_swap *swap;      /* from vhd_live_pivot_prepare to _end */
	struct vhd *pivoted;         /* the handle vhd_live_pivot returned */
	char journal[PATH_MAX];
	pthread_rwlock_t copy_lock;  /* guest writes: shared; a step: exclusive */
	uint64_t *dirty;             /* one bit per chunk (atomic ORs by writers) */
	uint64_t chunks;
	uint64_t dirty_count;        /* atomic */
	uint64_t cursor;             /* next chunk a step looks at (the stepper's) */
	uint64_t pass_end_left;      /* dirty chunks when the last pass ended */
	unsigned passes;
	bool marked;                 /* the first step marked the allocated blocks */
	int mirror;                  /* written under copy_lock exclusive */
	uint64_t bytes_done;         /* atomic */
	uint64_t guest_bytes;        /* atomic */
	int parent_failed;           /* atomic: a mirrored write failed */
	char parent_error[512];
	uint8_t *buf;                /* a step's data, BUF_BYTES */
	size_t buf_bytes;
};

/* "<dir of LEAF>/PREFIX<name>.journal" into OUT. */
static int journal_path(const char *leaf, const char *prefix, char *out, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(leaf, '/');
	path_dir(leaf, dir, sizeof dir);
	if ((size_t)snprintf(out, len, "%s/%s%s" JOURNAL_SUFFIX, dir, prefix,
	                     slash ? slash + 1 : leaf) >= len)
		return vhd_error(ENAMETOOLONG, "%s: path too long", leaf);
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int save_journal(const struct vhd_live *l, uint64_t rate)
{
	json_object *o = json_object_new_object();
	int bad = json_put(o, "vhdkit_live_journal", json_object_new_int(1));
	bad |= json_put(o, "leaf", json_object_new_string(base_name(l->leaf->path)));
	bad |= json_put(o, "parent", json_object_new_string(base_name(l->parent->path)));
	bad |= json_put(o, "parent_uuid", uuid_json(l->parent->footer.uuid));
	bad |= json_put(o, "rate", json_object_new_uint64(rate));
	int rc = json_save_atomic(bad ? NULL : o, l->journal);
	json_object_put(o);
	return rc;
}

/* ---- the checks of vhd_live_start ---- */

static int check_leaf(const struct vhd *leaf)
{
	char swap[PATH_MAX];
	if (!leaf->writable)
		return vhd_error(EINVAL, "%s: not open for writing", leaf->path);
	if (leaf->footer.type != VHD_TYPE_DIFF || !leaf->parent)
		return vhd_error(EINVAL, "%s: not a differencing disk: nothing to merge", leaf->path);
	if (leaf->parent->is_raw)
		return vhd_error(ENOTSUP, "%s: a raw parent is not merged live", leaf->path);
	if (!same_directory(leaf->path, leaf->parent_path))
		return vhd_error(EPERM, "%s: parent %s is outside its directory", leaf->path,
		                 leaf->parent_path);
	if (!leaf->parent->footer.hidden)
		return vhd_error(EPERM, "%s: not hidden: merging would change the content of a disk "
		                        "that may be in use", leaf->parent_path);
	if (leaf->parent->footer.curr_size != leaf->footer.curr_size)
		return vhd_error(ENOTSUP, "%s: virtual size differs from %s's: not merged live",
		                 leaf->parent_path, leaf->path);
	if (journal_path(leaf->path, LEAF_JOURNAL_PREFIX, swap, sizeof swap))
		return -1;
	if (!access(swap, F_OK))
		return vhd_error(EBUSY, "%s: a leaf swap is pending", swap);
	return 0;
}

static int check_only_child(const struct vhd *leaf)
{
	char dir[PATH_MAX];
	char **others = children_in_dir(path_dir(leaf->parent_path, dir, sizeof dir),
	                                leaf->parent->footer.uuid, leaf->path);
	if (!others)
		return -1;
	int rc = others[0] ? vhd_error(EBUSY, "%s: has another child, %s, whose content the merge "
	                                      "would change", leaf->parent_path, others[0])
	                   : 0;
	free_paths(others);
	return rc;
}

static struct vhd *open_parent(const struct vhd *leaf)
{
	struct vhd *p = vhd_open(leaf->parent_path, VHD_OPEN_RDWR | VHD_OPEN_DURABLE |
	                                            VHD_OPEN_STRICT_DIR);
	if (p && memcmp(p->footer.uuid, leaf->header.parent_uuid, 16)) {
		vhd_error(EBUSY, "%s: changed while being opened", leaf->parent_path);
		vhd_close(p);
		return NULL;
	}
	return p;
}

/* ---- the dirty map ---- */

static bool chunk_dirty(const struct vhd_live *l, uint64_t c)
{
	return __atomic_load_n(&l->dirty[c / 64], __ATOMIC_RELAXED) & (1ull << (c % 64));
}

/* Set the bits of chunks [FROM, TO), counting those newly set; whole
 * words at once (a whole allocated block is 512 chunks). */
static void mark_chunks(struct vhd_live *l, uint64_t from, uint64_t to)
{
	uint64_t added = 0;
	while (from < to) {
		unsigned first = (unsigned)(from % 64);
		uint64_t n = to - from < 64 - first ? to - from : 64 - first;
		uint64_t bits = (n == 64 ? ~0ull : ((1ull << n) - 1)) << first;
		uint64_t old = __atomic_fetch_or(&l->dirty[from / 64], bits, __ATOMIC_RELAXED);
		added += (uint64_t)__builtin_popcountll(bits & ~old);
		from += n;
	}
	if (added)
		__atomic_fetch_add(&l->dirty_count, added, __ATOMIC_RELAXED);
}

static void mark_range(struct vhd_live *l, uint64_t count, uint64_t offset)
{
	if (count)
		mark_chunks(l, offset / VHD_LIVE_CHUNK, div_round_up(offset + count, VHD_LIVE_CHUNK));
}

/* Every chunk of the leaf's allocated blocks (the leaf is idle). */
static void mark_allocated(struct vhd_live *l)
{
	uint64_t block_bytes = (uint64_t)l->leaf->block_sectors * SECTOR;
	for (uint32_t b = 0; b < l->leaf->bat_entries; b++) {
		uint64_t off = (uint64_t)b * block_bytes;
		if (bat_get(l->leaf, b) != BAT_UNUSED && off < l->leaf->footer.curr_size)
			mark_range(l, block_bytes < l->leaf->footer.curr_size - off
			                  ? block_bytes : l->leaf->footer.curr_size - off, off);
	}
}

VHD_EXPORT vhd_live_t *vhd_live_start(vhd_t *leaf, uint64_t rate)
{
	if (!leaf)
		return vhd_error(EINVAL, "no handle given"), NULL;
	if (check_leaf(leaf) || check_only_child(leaf))
		return NULL;
	struct vhd_live *l = xcalloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->leaf = leaf;
	l->chunks = div_round_up(leaf->footer.curr_size, VHD_LIVE_CHUNK);
	l->pass_end_left = UINT64_MAX;
	l->buf_bytes = 4u << 20;
	/* writer first: a stream of guest writes must not starve the steps */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&l->copy_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (!(l->dirty = xcalloc(div_round_up(l->chunks, 64), sizeof *l->dirty)) ||
	    !(l->buf = xaligned_alloc(4096, l->buf_bytes)) ||
	    journal_path(leaf->path, LIVE_PREFIX, l->journal, sizeof l->journal) ||
	    !(l->parent = open_parent(leaf)) || save_journal(l, rate)) {
		vhd_error_prefix("live coalesce");
		vhd_live_end(l);
		return NULL;
	}
	return l;
}

/* ---- the guest's requests ---- */

/* After the guest's change of [OFFSET, OFFSET+COUNT) landed on the leaf:
 * mirror it (BUF NULL: zeros), or mark it dirty. */
static void follow(struct vhd_live *l, const void *buf, uint64_t count, uint64_t offset)
{
	__atomic_fetch_add(&l->guest_bytes, count, __ATOMIC_RELAXED);
	if (l->mirror && !__atomic_load_n(&l->parent_failed, __ATOMIC_ACQUIRE)) {
		int rc = buf ? vhd_pwrite(l->parent, buf, count, offset)
		             : vhd_zero(l->parent, count, offset, VHD_ZERO_NO_HOLE);
		if (!rc)
			return;
		/* the first failure is kept; the guest's own write succeeded */
		int was = 0;
		if (__atomic_compare_exchange_n(&l->parent_failed, &was, 1, false, __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE))
			snprintf(l->parent_error, sizeof l->parent_error, "%s", vhd_get_error());
	}
	mark_range(l, count, offset);
}

VHD_EXPORT int vhd_live_pwrite(vhd_live_t *l, const void *buf, uint64_t count, uint64_t offset)
{
	pthread_rwlock_rdlock(&l->copy_lock);
	int rc = vhd_pwrite(l->leaf, buf, count, offset);
	if (!rc)
		follow(l, buf, count, offset);
	pthread_rwlock_unlock(&l->copy_lock);
	return rc;
}

VHD_EXPORT int vhd_live_zero(vhd_live_t *l, uint64_t count, uint64_t offset, int flags)
{
	pthread_rwlock_rdlock(&l->copy_lock);
	int rc = vhd_zero(l->leaf, count, offset, flags | VHD_ZERO_NO_HOLE);
	if (!rc)
		follow(l, NULL, count, offset);
	pthread_rwlock_unlock(&l->copy_lock);
	return rc;
}

VHD_EXPORT int vhd_live_trim(vhd_live_t *l, uint64_t count, uint64_t offset)
{
	(void)l;
	(void)count;
	(void)offset;
	return 0;
}

VHD_EXPORT int vhd_live_flush(vhd_live_t *l)
{
	if (vhd_flush(l->leaf))
		return -1;
	/* a mirrored write that fails to sync is re-copied, as a failed write */
	if (vhd_flush(l->parent) &&
	    !__atomic_exchange_n(&l->parent_failed, 1, __ATOMIC_ACQ_REL))
		snprintf(l->parent_error, sizeof l->parent_error, "%s", vhd_get_error());
	return 0;
}

/* ---- the copy ---- */

/* The first dirty chunk at or after FROM, or CHUNKS. */
static uint64_t next_dirty(const struct vhd_live *l, uint64_t from)
{
	for (uint64_t c = from; c < l->chunks;) {
		uint64_t word = __atomic_load_n(&l->dirty[c / 64], __ATOMIC_RELAXED) >> (c % 64);
		if (word)
			return c + (uint64_t)__builtin_ctzll(word) < l->chunks
			           ? c + (uint64_t)__builtin_ctzll(word) : l->chunks;
		c = (c / 64 + 1) * 64;
	}
	return l->chunks;
}

/* A pass ended: decide on mirror mode (the rule in vhdkit.h). */
static void end_pass(struct vhd_live *l)
{
	uint64_t left = __atomic_load_n(&l->dirty_count, __ATOMIC_RELAXED);
	__atomic_store_n(&l->passes, l->passes + 1, __ATOMIC_RELAXED);
	if (!l->mirror && (left > l->pass_end_left / 4 * 3 || l->passes >= VHD_LIVE_MAX_PASSES)) {
		__atomic_store_n(&l->mirror, 1, __ATOMIC_RELAXED);
		vhd_debug(l->leaf->path, "live coalesce: mirror mode after pass %u (%llu chunks left)",
		          l->passes, (unsigned long long)left);
	}
	l->pass_end_left = left;
}

struct run_list {
	uint64_t off[64], len[64];
	unsigned n;
};

static int leaf_run(uint64_t offset, uint64_t length, int layer, void *opaque)
{
	struct run_list *r = opaque;
	if (layer != 0)
		return 0;
	if (r->n == 64)
		return 1;   /* the rest next time: the caller copies what it has */
	r->off[r->n] = offset;
	r->len[r->n++] = length;
	return 0;
}

/* Copy the leaf's sectors of [OFF, OFF+LEN) to the parent. */
static int copy_range(struct vhd_live *l, uint64_t off, uint64_t len, uint64_t *copied)
{
	uint64_t end = off + len;
	while (off < end) {
		struct run_list r = { .n = 0 };
		int rc = vhd_block_status(l->leaf, end - off, off, leaf_run, &r);
		if (rc < 0)
			return -1;
		for (unsigned i = 0; i < r.n; i++) {
			if (vhd_pread(l->leaf, l->buf, r.len[i], r.off[i]) ||
			    vhd_pwrite(l->parent, l->buf, r.len[i], r.off[i]))
				return -1;
			*copied += r.len[i];
		}
		/* stopped at 64 runs: go on after the last one */
		off = rc > 0 ? r.off[63] + r.len[63] : end;
	}
	return 0;
}

VHD_EXPORT int vhd_live_step(vhd_live_t *l, uint64_t max, uint64_t *copied)
{
	*copied = 0;
	if (__atomic_load_n(&l->parent_failed, __ATOMIC_ACQUIRE))
		return vhd_error(EIO, "%s", l->parent_error);
	max = max < VHD_LIVE_CHUNK ? VHD_LIVE_CHUNK : max > l->buf_bytes ? l->buf_bytes : max;
	if (!l->marked) {   /* see vhd_live_start in vhdkit.h: the server routes every write now */
		mark_allocated(l);   /* atomic ORs, beside the guest's: no lock needed */
		l->marked = true;
	}
	pthread_rwlock_wrlock(&l->copy_lock);
	int rc = 0;
	if (!__atomic_load_n(&l->dirty_count, __ATOMIC_RELAXED))
		goto out;
	uint64_t c = next_dirty(l, l->cursor);
	if (c == l->chunks) {
		end_pass(l);
		c = next_dirty(l, 0);
	}
	uint64_t n = 0;
	while (c + n < l->chunks && (n + 1) * VHD_LIVE_CHUNK <= max && chunk_dirty(l, c + n)) {
		__atomic_fetch_and(&l->dirty[(c + n) / 64], ~(1ull << ((c + n) % 64)), __ATOMIC_RELAXED);
		n++;
	}
	__atomic_fetch_sub(&l->dirty_count, n, __ATOMIC_RELAXED);
	uint64_t off = c * VHD_LIVE_CHUNK, len = n * VHD_LIVE_CHUNK;
	if (off + len > l->leaf->footer.curr_size)
		len = l->leaf->footer.curr_size - off;
	if (copy_range(l, off, len, copied)) {
		mark_chunks(l, c, c + n);   /* not copied: still dirty */
		rc = vhd_error_prefix("live coalesce: copy");
		goto out;
	}
	l->cursor = c + n;
	__atomic_fetch_add(&l->bytes_done, *copied, __ATOMIC_RELAXED);
	rc = 1;
out:
	pthread_rwlock_unlock(&l->copy_lock);
	return rc;
}

VHD_EXPORT void vhd_live_get_status(vhd_live_t *l, struct vhd_live_status *st)
{
	st->mirror = __atomic_load_n(&l->mirror, __ATOMIC_RELAXED);
	st->passes = __atomic_load_n(&l->passes, __ATOMIC_RELAXED);
	st->bytes_done = __atomic_load_n(&l->bytes_done, __ATOMIC_RELAXED);
	st->bytes_left = __atomic_load_n(&l->dirty_count, __ATOMIC_RELAXED) * VHD_LIVE_CHUNK;
	st->guest_bytes = __atomic_load_n(&l->guest_bytes, __ATOMIC_RELAXED);
	st->leaf = l->leaf->path;
	st->parent = l->leaf->parent_path;
}

/* ---- the pivot and the end ---- */

static int remove_journal(const char *path)
{
	if (unlink(path) && errno != ENOENT)
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	return fsync_parent_dir(path);
}

VHD_EXPORT int vhd_live_pivot_prepare(vhd_live_t *l)
{
	if (!l->parent)
		return vhd_error(EINVAL, "%s: live coalesce: pivot done already", l->leaf->path);
	if (l->swap)
		return 0;
	l->swap = leaf_swap_begin(l->leaf, l->parent);
	return l->swap ? 0 : vhd_error_prefix("live coalesce: pivot");
}

/* A pivot that cannot be done now: its swap journal goes. */
static vhd_t *pivot_not_now(struct vhd_live *l)
{
	int e = vhd_get_errno();
	char why[512];
	snprintf(why, sizeof why, "%s", vhd_get_error());
	if (leaf_swap_end(l->swap, NULL))
		vhd_debug(l->leaf->path, "%s", vhd_get_error());
	l->swap = NULL;
	return vhd_error(e, "%s", why), NULL;
}

VHD_EXPORT vhd_t *vhd_live_pivot(vhd_live_t *l)
{
	if (!l->parent)
		return vhd_error(EINVAL, "%s: live coalesce: pivot done already", l->leaf->path), NULL;
	if (!l->swap)
		return vhd_error(EINVAL, "%s: live coalesce: pivot not prepared", l->leaf->path), NULL;
	if (__atomic_load_n(&l->dirty_count, __ATOMIC_RELAXED))
		return vhd_error(EAGAIN, "%s: live coalesce: chunks still dirty", l->leaf->path),
		       pivot_not_now(l);
	if (__atomic_load_n(&l->parent_failed, __ATOMIC_ACQUIRE))
		return vhd_error(EIO, "%s", l->parent_error), pivot_not_now(l);
	bool renamed = false;
	char *name = xstrdup(l->leaf->path);
	/* the parent's data durable before it takes the leaf's name (most of
	 * it synced before the drain); the leaf's need not be: until the
	 * rename it is what a crash leaves, flushed or not as the guest asked */
	if (!name || vhd_flush(l->parent) || leaf_swap_rename(l->swap, &renamed)) {
		if (!renamed) {
			free(name);
			vhd_error_prefix("live coalesce: pivot");
			return pivot_not_now(l);
		}
		/* the leaf's path holds the parent now: it must serve; the swap's
		 * journal stays for vhd_leaf_recover to finish */
		vhd_debug(name, "live coalesce: rename not known durable: %s", vhd_get_error());
	}
	struct vhd *v = l->parent;
	free(v->path);
	v->path = name;
	l->parent = NULL;
	return l->pivoted = v;
}

/* After the drain: the rest of the swap (the footers, the journals).  A
 * crash before it ends is finished by vhd_leaf_recover and
 * vhd_live_recover; the chain is valid meanwhile. */
VHD_EXPORT int vhd_live_pivot_end(vhd_live_t *l)
{
	if (!l->pivoted)
		return 0;
	int rc = leaf_swap_end(l->swap, l->pivoted);
	l->swap = NULL;
	l->pivoted = NULL;
	if (rc)
		return vhd_error_prefix("live coalesce: after the pivot");
	return remove_journal(l->journal);
}

VHD_EXPORT int vhd_live_end(vhd_live_t *l)
{
	if (!l)
		return 0;
	int rc = 0;
	if (l->pivoted && vhd_live_pivot_end(l))
		rc = -1;
	if (l->swap && leaf_swap_end(l->swap, NULL))
		rc = -1;
	if (l->parent && vhd_close(l->parent))
		rc = -1;
	if (l->journal[0] && remove_journal(l->journal))
		rc = -1;
	pthread_rwlock_destroy(&l->copy_lock);
	free(l->dirty);
	free(l->buf);
	free(l);
	return rc;
}

/* ---- after a crash ---- */

static int load_live_journal(const char *path, char *parent_name, size_t len,
                             uint8_t uuid[16], uint64_t *rate)
{
	json_object *o = json_object_from_file(path), *v;
	int rc = -1;
	if (o && json_object_object_get_ex(o, "parent", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    (size_t)snprintf(parent_name, len, "%s", json_object_get_string(v)) < len &&
	    json_object_object_get_ex(o, "parent_uuid", &v) &&
	    json_object_is_type(v, json_type_string) && !uuid_parse(json_object_get_string(v), uuid)) {
		*rate = json_object_object_get_ex(o, "rate", &v) ? json_object_get_uint64(v) : 0;
		rc = 0;
	}
	json_object_put(o);
	return rc ? vhd_error(EBADMSG, "%s: not a valid live-coalesce journal", path) : 0;
}

VHD_EXPORT int vhd_live_recover(const char *leaf, uint64_t *rate)
{
	char swap[PATH_MAX], live[PATH_MAX], dir[PATH_MAX], parent_name[PATH_MAX];
	uint8_t uuid[16];
	*rate = 0;
	if (journal_path(leaf, LEAF_JOURNAL_PREFIX, swap, sizeof swap) ||
	    journal_path(leaf, LIVE_PREFIX, live, sizeof live))
		return -1;
	if (!access(swap, F_OK) && vhd_leaf_recover(path_dir(leaf, dir, sizeof dir)) < 0)
		return -1;
	if (access(live, F_OK))
		return 0;
	if (load_live_journal(live, parent_name, sizeof parent_name, uuid, rate))
		return -1;
	struct vhd *v = vhd_open_file(leaf, VHD_OPEN_RDONLY, false);
	if (!v)
		return -1;
	bool running = v->footer.type == VHD_TYPE_DIFF && !memcmp(v->header.parent_uuid, uuid, 16);
	vhd_free(v);
	if (running)
		return 1;
	vhd_debug(leaf, "live coalesce into %s: over (pivot done): journal removed", parent_name);
	return remove_journal(live) ? -1 : 0;
}
