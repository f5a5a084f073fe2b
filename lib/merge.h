/* merge.h - coalesce/commit internals shared by coalesce.c, journal.c and
 * relink.c.  Not installed. */
#ifndef VHDKIT_MERGE_H
#define VHDKIT_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "internal.h"

#define JOURNAL_PREFIX ".vhdkit-"
#define JOURNAL_SUFFIX ".journal"
#define MAX_MERGE_LAYERS VHD_MAX_CHAIN_DEPTH

/* Identity of a file that must not change while it is merged: if a layer
 * changed since the journal was written, the copy restarts from zero. */
struct layer_stamp {
	char *path;                /* absolute */
	uint8_t uuid[16];
	uint64_t size;
	int64_t mtime_ns;
};

enum merge_phase { PHASE_COPY, PHASE_RELINK, PHASE_DELETE };

/* The durable record of one coalesce/commit, kept beside the base as
 * ".vhdkit-<base name>.journal" (JSON, replaced atomically). */
struct journal {
	char *path;                /* of the journal file itself */
	char *op;                  /* "coalesce" or "commit" */
	char *base;                /* absolute path */
	uint8_t base_uuid[16];
	unsigned nlayers;          /* files above the base, top first */
	struct layer_stamp layers[MAX_MERGE_LAYERS];
	bool relink;
	enum merge_phase phase;
	uint32_t next_block;       /* base blocks below this one are merged */
	uint64_t bytes_done, bytes_total;
	int64_t started;           /* unix time */
};

/* A run of sectors of one base block present in a layer above the base. */
struct run {
	uint32_t start, len;       /* sectors, relative to the base block */
	struct vhd *from;          /* the layer holding them */
	int fd;                    /* from->fd, and the run's byte offset in it: */
	int direct_fd;             /* the same file opened O_DIRECT, or -1 */
	uint64_t src;              /* all the reader thread may use */
};

/* The data side of a merge (merge-copier.c): worker threads that copy
 * whole base blocks (read the runs, write them to the base), several in
 * flight.  Blocks come back in the order they were submitted. */
struct read_slot {
	uint32_t block;
	unsigned nruns;
	struct run *runs;
	uint8_t *buf;              /* the block's bytes, at their offsets */
	int dst_fd;
	int dst_direct_fd;         /* the base opened O_DIRECT, where the block may be
	                              written that way (see merge-copier.c), or -1 */
	uint64_t dst;              /* byte offset of the block's data in the base */
	uint64_t map_offset;       /* the base block's bitmap, read into MAP (0: none) */
	uint8_t *map;
	uint8_t *edge;             /* one page: where the edges of writes are read */
};
struct reader;
/* IO_PRIORITY: each worker's ioprio_set value (0: left as inherited). */
struct reader *reader_start(unsigned slots, unsigned workers, uint32_t block_sectors,
                            uint32_t bitmap_bytes, int io_priority);
/* Queue BLOCK with its N runs (copied), to be written at DST of DST_FD
 * (writes with a partial page at an edge through DST_DIRECT_FD unless -1);
 * if MAP_OFFSET, the worker also reads the base bitmap there (BITMAP_BYTES)
 * into the slot's MAP.  Waits for a free slot. */
int reader_submit(struct reader *r, uint32_t block, const struct run *runs, unsigned n,
                  int dst_fd, int dst_direct_fd, uint64_t dst, uint64_t map_offset);
/* The oldest submitted block once copied, or NULL with the error set. */
struct read_slot *reader_next(struct reader *r);
/* Give the slot returned by reader_next back. */
void reader_release(struct reader *r);
/* The source reads the workers made so far, and their summed time. */
void reader_read_stats(struct reader *r, uint64_t *reads, double *seconds);
/* Number of blocks submitted and not yet taken by reader_next. */
unsigned reader_pending(const struct reader *r);
unsigned reader_capacity(const struct reader *r);
void reader_stop(struct reader *r);

/* Journal path for BASE (caller frees). */
char *journal_path_for(const char *base);
/* Load PATH.  Returns 0, 1 if it does not exist, -1 if unreadable/invalid. */
int journal_load(const char *path, struct journal *j);
/* Write J atomically and durably (temp file, fsync, rename, fsync dir). */
/* JSON journals, shared by merge-journal.c and leaf.c.  json_put adds V
 * under KEY in O; when O or V is NULL (json-c out of memory) or the add
 * fails, it frees V and returns -1.  json_save_atomic writes O to PATH
 * through PATH.tmp (written, synced, renamed, directory synced); O NULL
 * is ENOMEM with a message. */
int json_put(json_object *o, const char *key, json_object *v);
json_object *uuid_json(const uint8_t uuid[16]);
int json_save_atomic(json_object *o, const char *path);
int journal_save(const struct journal *j);
/* Remove J's file durably. */
int journal_remove(const struct journal *j);
void journal_free(struct journal *j);
const char *phase_name(enum merge_phase p);

/* Fill a stamp from the file at PATH (size, mtime) and UUID. */
int stamp_file(struct layer_stamp *s, const char *path, const uint8_t uuid[16]);
bool stamp_equal(const struct layer_stamp *a, const struct layer_stamp *b);

/* fsync the directory holding PATH. */
int fsync_parent_dir(const char *path);

/* coalesce.c: run a merge (resuming its journal if there is one); finish
 * one from a journal whose copy is done. */
int merge_run(const char *top, const char *base, const char *op, bool relink,
              const struct vhd_coalesce_opts *opts);
int merge_resume_late(struct journal *j, const struct vhd_coalesce_opts *opts);

/* Relink phase (relink.c): re-point every VHD in TOP's directory whose
 * parent is TOP at BASE, then delete the merged layers. */
int merge_relink(struct journal *j, const struct vhd_coalesce_opts *opts);
int merge_delete(struct journal *j, const struct vhd_coalesce_opts *opts);
/* Paths of the VHDs in DIR whose header names UUID as their parent
 * (NULL-terminated, caller frees each and the array). */
char **children_in_dir(const char *dir, const uint8_t uuid[16], const char *skip);
/* The same for the VHDs in DIR whose raw parent is the file RAW. */
char **raw_children_in_dir(const char *dir, const char *raw, const char *skip);
/* Paths DIR/NAME of the entries of DIR whose NAME passes WANT, in directory
 * order (NULL-terminated, possibly empty; free with free_paths), or NULL
 * with the error set. */
char **paths_in_dir(const char *dir, bool (*want)(const char *name));
void free_paths(char **paths);

/* leaf.c: the swap of a live leaf-coalesce, with the handles open. */
struct leaf_swap;
struct leaf_swap *leaf_swap_begin(struct vhd *leaf, struct vhd *parent);
int leaf_swap_rename(struct leaf_swap *s, bool *renamed);
int leaf_swap_end(struct leaf_swap *s, struct vhd *now);

#endif
