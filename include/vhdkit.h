/* vhdkit.h - the public interface of libvhdkit.
 *
 * libvhdkit reads and writes VHD images (fixed, dynamic, differencing, with
 * blktap's batmap and hidden flag) and whole chains of them.
 *
 * Conventions, for every function below:
 *  - Errors: functions returning int return -1 on error, functions returning
 *    a pointer return NULL.  The reason is kept per thread: vhd_get_error()
 *    gives a message with context ("child.vhd: block 17: ..."), and
 *    vhd_get_errno() the errno value.  The library never exits or aborts.
 *  - Memory: a returned pointer is owned by the handle it came from and valid
 *    until vhd_close(), unless the function says "caller frees" (use free()).
 *  - Threads: a handle must be used by one thread at a time; separate handles
 *    may be used from separate threads concurrently.  The data functions
 *    (vhd_pread, vhd_pwrite, vhd_zero, vhd_trim, vhd_flush, vhd_is_zero,
 *    vhd_block_status, vhd_prefetch) are the exception: any number of
 *    threads may call them at once on one handle, as an NBD server does,
 *    provided no other function is called on it meanwhile.  Concurrent
 *    requests that overlap land in some order, sector by sector.
 *  - Units: offsets and sizes are in bytes; I/O must be 512-byte aligned.
 */
#ifndef VHDKIT_H
#define VHDKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VHD_SECTOR_SIZE 512u
#define VHD_DEFAULT_BLOCK_SIZE (2u * 1024 * 1024)
#define VHD_MAX_CHAIN_DEPTH 256   /* hard limit when following parents */
#define VHD_XEN_MAX_DEPTH 30      /* XenServer's chain limit */

typedef struct vhd vhd_t;   /* opaque: one open VHD (and its open parents) */

enum vhd_type { VHD_TYPE_FIXED = 2, VHD_TYPE_DYNAMIC = 3, VHD_TYPE_DIFF = 4 };

/* ---- errors ---------------------------------------------------------- */

/* Last error message of this thread; never NULL (empty if none). */
const char *vhd_get_error(void);
/* errno of this thread's last error: EBADMSG for a damaged image (ELOOP for
 * a chain that loops), EINVAL for a call that does not fit the image (a
 * coalesce of a disk without a parent), EPERM, EBUSY, EEXIST, E2BIG or
 * ENOTSUP for a refusal, another errno from the system. */
int vhd_get_errno(void);

/* ---- open / close ---------------------------------------------------- */

enum vhd_open_flags {
	VHD_OPEN_RDONLY    = 0,
	VHD_OPEN_RDWR      = 1 << 0,  /* the leaf is writable (parents never are) */
	VHD_OPEN_NO_PARENT = 1 << 1,  /* do not open the parent chain; reads of
	                                 sectors absent from this file fail */
	VHD_OPEN_STRICT_DIR = 1 << 2, /* parents must be in the leaf's directory */
	VHD_OPEN_NO_LOCK   = 1 << 3,  /* RDWR without taking the leaf's write lock */
	VHD_OPEN_LAX       = 1 << 4,  /* read-only inspection of a damaged file:
	                                 use the backup footer if the primary is
	                                 bad, ignore a bad batmap, do not check
	                                 BAT entries (reads of bad ones fail) */
	VHD_OPEN_DURABLE   = 1 << 5,  /* RDWR for a server: the image stays valid
	                                 through a power cut at any point.  A new
	                                 block's footer move and bitmap are made
	                                 durable (fdatasync) before its BAT entry,
	                                 and the batmap is never changed (its map
	                                 and header are two writes a power cut can
	                                 tear): blocks that fill up are not marked
	                                 full, and a zero or trim in a block the
	                                 batmap shows full writes zeros (a trim
	                                 leaves it alone).  Writes not flushed may
	                                 still be lost, or read as zeros. */
};

/* Open PATH.  A differencing disk's parents are opened read-only by their
 * locators (relative to the child's directory), falling back to the header's
 * parent name in the child's directory; each parent's UUID is verified.
 * An RDWR open takes an exclusive lock on the file (flock; see README
 * "In use"), failing with EBUSY if another process holds it.
 * Returns NULL on error. */
vhd_t *vhd_open(const char *path, int flags);

/* Flush (if writable) and close the whole chain.  Returns -1 if the final
 * flush failed (the handle is freed regardless).  NULL is accepted. */
int vhd_close(vhd_t *vhd);

/* ---- information ----------------------------------------------------- */

struct vhd_info {
	int type;                      /* enum vhd_type */
	uint64_t virtual_size;         /* footer current size, bytes */
	uint64_t original_size;        /* footer original size, bytes */
	uint64_t file_size;            /* bytes (device size for block devices) */
	uint32_t block_size;           /* bytes; 0 for fixed disks */
	uint32_t max_bat_entries;      /* 0 for fixed disks */
	uint32_t allocated_blocks;     /* BAT entries in use */
	uint32_t full_blocks;          /* allocated blocks whose bitmap is all ones
	                                  per the batmap (0 without a batmap) */
	int hidden;                    /* footer byte 85 */
	int has_batmap;
	uint8_t uuid[16];
	uint8_t parent_uuid[16];       /* zero unless differencing */
	uint32_t timestamp;            /* seconds since 2000-01-01 UTC */
	uint32_t parent_timestamp;
	char creator_app[5];           /* NUL-terminated */
	uint32_t creator_version;
	uint32_t creator_os;
	uint32_t geometry;             /* C<<16 | H<<8 | S */
	unsigned depth;                /* 1 for a disk without parent */
	uint32_t features;
	uint32_t saved_state;
	uint64_t data_offset;          /* footer's: header position (~0 if fixed) */
	uint64_t table_offset;         /* BAT position */
	uint32_t footer_checksum;
	uint32_t header_checksum;
	uint64_t batmap_offset;        /* the map's; 0 without a batmap */
	uint32_t batmap_sectors;
	uint32_t batmap_version;
	uint32_t batmap_checksum;
	const char *path;              /* as opened; owned by the handle */
	const char *parent_name;       /* header's (UTF-8); owned by the handle */
	const char *parent_path;       /* resolved parent path, or NULL */
};

/* Fill INFO for the handle's own file.  Returns 0, or -1. */
int vhd_get_info(vhd_t *vhd, struct vhd_info *info);

/* The open parent of VHD, or NULL (no parent, or opened NO_PARENT).
 * Owned by VHD. */
vhd_t *vhd_get_parent(vhd_t *vhd);

/* Is VHD a raw image: the parent of a differencing disk whose header
 * parent UUID is nil (blktap's raw parent, `vhd-util snapshot -m`)?  Such
 * a handle reads as a fixed disk of the file's size (rounded up to a
 * sector; past the end, zeros) with a nil UUID.  Returns 1 or 0. */
int vhd_is_raw(vhd_t *vhd);

/* Number of files in the chain starting at VHD (1 without parent). */
unsigned vhd_chain_depth(vhd_t *vhd);

struct vhd_locator_info {
	uint32_t code;          /* 0x4d616358 "MacX", 0x57326b75 "W2ku", ...; 0 = empty */
	uint32_t data_space;    /* as stored (bytes, or sectors if < 512) */
	uint32_t data_length;   /* bytes */
	uint64_t data_offset;
	char *name;             /* decoded path (UTF-8, '/' separators); caller
	                           frees; NULL for an empty or undecodable slot */
};
/* Parent locator N (0..7).  Returns 0, or -1 if N is out of range or the
 * disk is fixed.  An undecodable slot returns 0 with NAME NULL and the
 * reason in vhd_get_error(). */
int vhd_get_locator(vhd_t *vhd, int n, struct vhd_locator_info *loc);

/* Allocated data of this file only: calls FN for every run of sectors that
 * this file holds (bitmap bit set; everything for fixed disks), in order,
 * merging adjacent runs.  With CHAIN non-zero, reports runs present in any
 * layer, with LAYER = 0 for this file, 1 for its parent, ...
 * FN returns 0 to go on, non-zero to stop (vhd_map then returns it).
 * Returns 0, FN's non-zero value, or -1 on error. */
typedef int (*vhd_map_fn)(uint64_t offset, uint64_t length, unsigned layer,
                          void *opaque);
int vhd_map(vhd_t *vhd, int chain, vhd_map_fn fn, void *opaque);

/* ---- data I/O -------------------------------------------------------- */

/* Read COUNT bytes at OFFSET of the virtual disk through the chain: each
 * sector from the nearest layer whose bitmap has it, zeros if none.
 * OFFSET and COUNT must be multiples of 512 and within the virtual size.
 * Returns 0, or -1. */
int vhd_pread(vhd_t *vhd, void *buf, uint64_t count, uint64_t offset);

/* Write to the leaf (opened RDWR) at sector granularity, allocating blocks
 * as needed; a partial write into a new block leaves the parent's other
 * sectors visible.  Keeps bitmaps and the batmap exact.  Returns 0, or -1. */
int vhd_pwrite(vhd_t *vhd, const void *buf, uint64_t count, uint64_t offset);

/* Does the range [OFFSET, OFFSET+COUNT) hold only zeros in the chain?
 * Cheap when the range is unallocated.  Returns 1, 0, or -1. */
int vhd_is_zero(vhd_t *vhd, uint64_t count, uint64_t offset);

/* Make every write so far durable (fsync), whichever thread made it.
 * Returns 0, or -1. */
int vhd_flush(vhd_t *vhd);

enum vhd_zero_flags {
	VHD_ZERO_NO_HOLE = 1 << 0,  /* keep the range allocated: write zeros */
	VHD_ZERO_FAST    = 1 << 1,  /* fail with ENOTSUP, changing nothing, if
	                               zeroing would need data written */
};
/* Make [OFFSET, OFFSET+COUNT) of the leaf (opened RDWR) read as zeros.
 * Dynamic and differencing: where no layer below holds data, the sectors'
 * bits are cleared (data punched out of the file, or zeroed); elsewhere,
 * or with NO_HOLE, zeros are written, hiding the parent's data.  Fixed:
 * fallocate (punch, or ZERO_RANGE with NO_HOLE), else zeros written.
 * Aligned as vhd_pread.  Returns 0, or -1. */
int vhd_zero(vhd_t *vhd, uint64_t count, uint64_t offset, int flags);

/* Discard [OFFSET, OFFSET+COUNT) of the leaf (opened RDWR): afterwards the
 * range reads as the layers below (zeros on a dynamic disk, the parent's
 * data on a differencing one).  The leaf's sectors are marked absent and
 * their data punched out of the file (the blocks stay in the BAT); a fixed
 * disk's range is punched where the file system can (zeros then), else
 * left as it is.  Returns 0, or -1. */
int vhd_trim(vhd_t *vhd, uint64_t count, uint64_t offset);

/* Block status: calls FN for each run of [OFFSET, OFFSET+COUNT), in order
 * and merged, with LAYER the depth below VHD of the file holding the run
 * (0: VHD itself) or -1 where no layer holds it (it reads as zeros).  FN
 * returns 0 to go on, non-zero to stop (passed back).  Aligned as
 * vhd_pread.  Returns 0, FN's non-zero value, or -1. */
typedef int (*vhd_extent_fn)(uint64_t offset, uint64_t length, int layer, void *opaque);
int vhd_block_status(vhd_t *vhd, uint64_t count, uint64_t offset, vhd_extent_fn fn,
                     void *opaque);

/* Ask the kernel to read ahead the data of [OFFSET, OFFSET+COUNT) from the
 * layers holding it (posix_fadvise WILLNEED).  Returns 0, or -1 (range). */
int vhd_prefetch(vhd_t *vhd, uint64_t count, uint64_t offset);

/* ---- creating and changing images ----------------------------------- */

enum vhd_create_flags {
	VHD_CREATE_FIXED     = 1 << 0,   /* fixed instead of dynamic */
	VHD_CREATE_OVERWRITE = 1 << 1,   /* replace an existing file */
	VHD_CREATE_SPARSE    = 1 << 2,   /* fixed: leave the data area a hole */
};

/* Create a dynamic (2 MiB blocks, batmap) or fixed VHD of SIZE bytes
 * (rounded up to a sector) as blktap does.  Refuses an existing file
 * (EEXIST) unless OVERWRITE.  Returns 0, or -1. */
int vhd_create(const char *path, uint64_t size, int flags);

/* Create CHILD, a differencing VHD on PARENT, with MacX, W2ku and W2ru
 * locators holding PARENT's path relative to CHILD's directory.  Refuses
 * when the new chain would be deeper than MAX_DEPTH (E2BIG) or CHILD exists
 * (EEXIST).  Returns 0, or -1. */
int vhd_snapshot(const char *parent, const char *child, unsigned max_depth);

/* Create CHILD, a differencing VHD on the raw image RAW (a plain file or
 * block device holding the parent disk's bytes at their offsets), as
 * blktap's `vhd-util snapshot -m`: nil parent UUID, RAW's mtime as parent
 * timestamp, locators as vhd_snapshot.  SIZE 0: RAW's size, rounded up to
 * a sector.  Refuses a RAW that is a VHD (EINVAL) and an existing CHILD
 * (EEXIST).  Returns 0, or -1. */
int vhd_snapshot_raw(const char *raw, const char *child, uint64_t size);

/* Point differencing CHILD at the raw image RAW (blktap's `vhd-util modify
 * -m`): nil parent UUID, RAW's mtime, name and locators rewritten in place.
 * Refuses a RAW that is a VHD.  Returns 0, or -1. */
int vhd_reparent_raw(const char *child, const char *raw);

/* Set or clear the hidden flag (both footers).  Returns 0, or -1. */
int vhd_set_hidden(vhd_t *vhd, int hidden);

/* Grow the virtual size to NEW_SIZE bytes (dynamic/differencing: within
 * the BAT's capacity, or by relocating blocks to enlarge the BAT; fixed:
 * by extending the file).  Crash-safe: a crash leaves the old or the new
 * size, never a damaged image.  Returns 0, or -1 (EINVAL to shrink). */
int vhd_resize(vhd_t *vhd, uint64_t new_size);

/* Point differencing CHILD at PARENT: header parent UUID, timestamp, name
 * and locators.  Refuses if PARENT's virtual size is larger than CHILD's
 * or PARENT is CHILD's own descendant.  Returns 0, or -1. */
int vhd_reparent(const char *child, const char *parent);

/* ---- check and repair ----------------------------------------------- */

enum vhd_check_flags {
	VHD_CHECK_DATA       = 1 << 0,  /* read data: bitmaps vs. data, batmap vs. bitmaps */
	VHD_CHECK_CHAIN      = 1 << 1,  /* check every ancestor too */
	VHD_CHECK_NO_TIME    = 1 << 2,  /* skip "timestamp in the future" tests */
	VHD_CHECK_PARENT_ANY = 1 << 3,  /* do not require the parent be openable */
};

/* One problem found by vhd_check().  MESSAGE is blktap's wording where blktap
 * has one (e.g. "primary footer invalid: invalid checksum"). */
struct vhd_problem {
	const char *path;     /* the file concerned */
	const char *message;
	int fatal;            /* the image cannot be opened because of it */
	int note;             /* a remark only, not a defect: not counted by
	                         vhd_check() (e.g. qemu's force_size geometry) */
};
typedef void (*vhd_problem_fn)(const struct vhd_problem *p, void *opaque);

/* Check PATH without trusting any of it; reports every problem found to FN
 * (may be NULL).  Returns the number of problems (0 = valid), or -1 if the
 * check itself could not run (e.g. the file cannot be opened). */
int vhd_check(const char *path, int flags, vhd_problem_fn fn, void *opaque);

enum vhd_repair_flags {
	VHD_REPAIR_DRY_RUN = 1 << 0,   /* say what would be done, change nothing */
	VHD_REPAIR_FORCE   = 1 << 1,   /* also repair where data is already lost
	                                  (truncated file, block past the end):
	                                  the missing data then reads as zeros */
};
/* Repair what can be repaired safely: restore a damaged footer from its
 * copy, cut trailing garbage, rebuild a wrong batmap, fix a checksum whose
 * structure is intact.  Each action (done or, with DRY_RUN, planned) is
 * reported to FN as a problem with fatal=0.  Returns the number of actions,
 * or -1 if the image cannot be repaired safely (nothing is written then):
 * errno EPERM = refused as unsafe, EBADMSG = not a VHD, EBUSY = in use. */
int vhd_repair(const char *path, int flags, vhd_problem_fn fn, void *opaque);

/* ---- coalesce and commit ------------------------------------------- */

/* Progress of a long operation, reported to a vhd_progress_fn. */
struct vhd_progress {
	const char *phase;       /* "prepare", "resize", "copy", "relink", "delete", "done" */
	const char *top;         /* the file whose data is merged (coalesce: the child) */
	const char *base;        /* the file written (coalesce: the parent) */
	uint64_t bytes_done;     /* data bytes copied so far (resumed runs included) */
	uint64_t bytes_total;    /* data bytes the whole copy moves */
	double rate;             /* bytes per second, recent */
	double eta;              /* seconds left; negative when unknown */
	int resumed;             /* 1 if this run continued an interrupted one */
	uint64_t copy_reads;     /* source reads the copy threads made, this run */
	double copy_read_seconds; /* the time they took, summed (their mean is the
	                            merge's own read latency) */
};
/* Return 0 to go on; non-zero asks the operation to stop at the next
 * consistent point (it then fails with EINTR and stays resumable). */
typedef int (*vhd_progress_fn)(const struct vhd_progress *p, void *opaque);

enum vhd_coalesce_flags {
	VHD_COALESCE_RELINK = 1 << 0,      /* then re-point the child's children at
	                                      the parent and delete the child */
	VHD_COALESCE_NO_SPACE_CHECK = 1 << 1,
	VHD_COALESCE_FORCE = 1 << 2,       /* merge into a visible (not hidden)
	                                      or shared parent: its content, and
	                                      that of its other children, change */
	VHD_COALESCE_STRICT_DIR = 1 << 3,  /* every file must be in the child's
	                                      directory (VHD_OPEN_STRICT_DIR); for
	                                      vhd_recover, a journal naming a file
	                                      elsewhere is refused (EPERM) */
	VHD_COALESCE_RAW_ANYWHERE = 1 << 4, /* write into a raw parent outside the
	                                      child's directory (refused otherwise:
	                                      locators alone name a raw parent) */
};

struct vhd_coalesce_opts {
	int flags;                           /* enum vhd_coalesce_flags */
	volatile uint64_t rate_limit;        /* bytes/s, 0 = unlimited; may be
	                                        changed while the operation runs */
	volatile int *stop;                  /* optional: set non-zero (e.g. from a
	                                        signal handler) to stop, resumable */
	vhd_progress_fn progress;            /* optional, called about 10 times/s */
	void *opaque;
	unsigned batch_blocks;               /* blocks per durable step; 0 = default */
	int io_priority;                     /* the kernel I/O priority of the copy
	                                        threads (ioprio_set(2) value, e.g.
	                                        VHD_IO_PRIORITY_IDLE); 0 = the
	                                        calling thread's */
};
/* I/O priorities for vhd_coalesce_opts.io_priority (IOPRIO_PRIO_VALUE of
 * linux/ioprio.h): the idle class, or best-effort at LEVEL 0 (high) to 7. */
#define VHD_IO_PRIORITY_IDLE (3 << 13)
#define VHD_IO_PRIORITY_BEST_EFFORT(level) ((2 << 13) | ((level) & 7))
/* Set the calling thread's I/O priority (ioprio_set(2); each thread has its
 * own, and threads it starts inherit it).  Returns 0, or -1. */
int vhd_set_io_priority(int prio);

/* vhd_check() that also reports the progress of VHD_CHECK_DATA (phase
 * "data", TOP = the file, bytes of allocated blocks) to PROGRESS (may be
 * NULL); a non-zero return from PROGRESS stops the check (-1, EINTR). */
int vhd_check_progress(const char *path, int flags, vhd_problem_fn fn, void *opaque,
                       vhd_progress_fn progress, void *progress_opaque);

/* Merge CHILD's data into its parent (blktap's semantics: CHILD is not
 * changed).  Sector-granular: the parent's sectors the child lacks survive,
 * also inside partly written child blocks; unwritten sectors are not copied.
 * The parent grows if the child is larger.  The parent must be hidden
 * (else EPERM) and have no child but CHILD in its directory (else EBUSY);
 * FORCE skips both tests.  Journaled in the parent's directory; an interrupted run is
 * resumed by the next call, or completed by vhd_recover().  Returns 0, or -1
 * (EINTR when stopped on request, ENOSPC when the parent's filesystem lacks
 * the space needed: the message gives the figure). */
int vhd_coalesce(const char *child, const struct vhd_coalesce_opts *opts);

/* Merge every layer from TOP down to (excluding) BASE into BASE in one pass,
 * each sector taken from the nearest layer, like `qemu-img commit -b`.
 * BASE must be an ancestor of TOP.  Same journaling as vhd_coalesce. */
int vhd_commit(const char *top, const char *base, const struct vhd_coalesce_opts *opts);

/* Complete every interrupted coalesce/commit whose journal is in DIR.
 * Returns the number of operations completed, or -1. */
int vhd_recover(const char *dir, const struct vhd_coalesce_opts *opts);

/* ---- storage repositories (SR): a directory of <uuid>.vhd files ------ */

/* The SR metadata lock, "<dir>/.vhd-sr.lock" (flock, exclusive), is held
 * briefly by whatever changes the SR's tree: vhd snapshot, set, reparent,
 * resize, and the GC while it plans, re-points children, deletes files and
 * swaps a leaf.  The GC lock, "<dir>/.vhd-gc.lock", is held by the one GC of
 * the SR for its whole life.  Both functions lock the SR directory DIR (or
 * the directory of a FILE in it: vhd_sr_lock_file).  WAIT non-zero: block
 * until the lock is free; else fail with EBUSY at once.  A directory that
 * cannot hold the lock file (read-only) and has none gives a descriptor
 * that locks nothing.  Return a descriptor for vhd_sr_unlock, or -1. */
int vhd_sr_lock(const char *dir, int wait);
int vhd_sr_lock_file(const char *file, int wait);
int vhd_gc_lock(const char *dir, int wait);
/* Release a lock from the functions above (closes FD; -1 is accepted). */
void vhd_sr_unlock(int fd);

/* One file of an SR, as vhd_sr_scan() found it. */
struct vhd_sr_entry {
	char *path;                /* DIR/NAME */
	const char *name;          /* the file name, within PATH */
	int ok;                    /* footer, header and BAT are sane */
	char *defect;              /* why not, when !ok */
	int type;                  /* enum vhd_type */
	int hidden;
	int in_use;                /* another open file holds its write lock */
	uint8_t uuid[16];
	uint8_t parent_uuid[16];   /* zero unless differencing */
	uint64_t virtual_size, file_size;
	uint64_t allocated_bytes;  /* allocated blocks * block size (fixed: size) */
	int parent;                /* index of the parent entry; -1 if none */
	int parent_missing;        /* differencing, but no entry has the parent UUID */
	unsigned children;         /* entries whose parent this is */
	unsigned depth;            /* 1 + the parent's depth (1 at a root) */
	unsigned subtree_depth;    /* depth of the deepest leaf below (or self) */
	int visible_below;         /* a visible entry is this one or below it */
	int64_t mtime_ns;
};
struct vhd_sr {
	char *dir;
	size_t count;
	struct vhd_sr_entry *entries;   /* sorted by name */
};
/* Read every "*.vhd" regular file of DIR (no symlinks, no dot files; no
 * parent locator is followed: parents are matched by UUID inside DIR) into
 * a forest.  Damaged files are entries with ok=0 and the defect; a UUID
 * found twice marks both entries damaged; a loop marks its members.
 * Returns NULL on error (DIR unreadable); free with vhd_sr_free(). */
struct vhd_sr *vhd_sr_scan(const char *dir);
void vhd_sr_free(struct vhd_sr *sr);

/* Leaf-coalesce: merge the leaf LEAF into its parent (which must be hidden
 * and have LEAF as its only child), then put the parent in LEAF's place,
 * keeping LEAF's path, UUID and hidden flag: the chain is one shorter and
 * LEAF reads as before.  LEAF must not be in use: its write lock is held
 * throughout (EBUSY otherwise).  Every file must be in LEAF's directory.
 * The merge is journaled and resumable as vhd_coalesce's; the swap (rename
 * then footer update) is journaled as "<dir>/.vhdleaf-<name>.journal" under
 * the SR lock, which this function takes (the caller must not hold it).
 * Returns 0, or -1 (EINTR when stopped on request). */
int vhd_leaf_coalesce(const char *leaf, const struct vhd_coalesce_opts *opts);
/* Complete every interrupted leaf swap in DIR.  Returns how many, or -1. */
int vhd_leaf_recover(const char *dir);

/* ---- live leaf-coalesce (a server's open leaf) --------------------------
 *
 * Merge the leaf a server has open RDWR into its hidden parent P while the
 * server keeps serving it, then let P take the leaf's place (path, UUID,
 * hidden flag) as vhd_leaf_coalesce does offline.  Until the pivot the leaf
 * stays authoritative and P only gains copies of the leaf's own sectors
 * (P is hidden and the leaf is its only child: nothing reads P's sectors
 * the leaf holds), so a crash before the pivot loses nothing and the copy
 * just starts again.  The pivot's swap is leaf.c's journaled swap.
 *
 * The server routes its guest writes, zeroes, trims and flushes through
 * vhd_live_pwrite/zero/trim/flush while the merge runs; they may be called
 * from any number of threads, alongside vhd_pread and the other data
 * functions on the leaf, and alongside one thread calling vhd_live_step.
 * vhd_live_pivot needs the leaf idle: no request in flight and none
 * starting (the server drains its requests). */
typedef struct vhd_live vhd_live_t;

#define VHD_LIVE_CHUNK 4096u     /* dirty tracking granularity, bytes */

/* Begin: LEAF (open RDWR) must be differencing, its parent a hidden VHD in
 * the same directory, of the same virtual size, with no other child there;
 * no leaf swap pending.  Opens the parent RDWR (durable), writes the live
 * journal "<dir>/.vhdlive-<name>.journal" (RATE, bytes/s, recorded for a
 * resume).  The first vhd_live_step marks dirty every chunk of the leaf's
 * allocated blocks: by then every write to the leaf must go through the
 * vhd_live_* calls, and those that did not must have completed.
 * Returns the merge, or NULL (EINVAL, EPERM, EBUSY, ENOTSUP: refused). */
vhd_live_t *vhd_live_start(vhd_t *leaf, uint64_t rate);

/* The guest's requests while the merge runs.  Each lands on the leaf, then
 * is mirrored to the parent before returning (mirror mode) or marks its
 * chunks dirty (copy mode).  Zeroes always write zeros (NO_HOLE) in the
 * leaf.  A trim does nothing (trim is advisory; a hole in the leaf would
 * show the parent's copied data).  A failed mirrored write never fails the
 * guest's request: the chunks are marked dirty, and vhd_live_step then
 * fails with the parent's error.  Flush makes the leaf's and the parent's
 * writes durable.  Return 0, or -1 (the leaf's error). */
int vhd_live_pwrite(vhd_live_t *live, const void *buf, uint64_t count, uint64_t offset);
int vhd_live_zero(vhd_live_t *live, uint64_t count, uint64_t offset, int flags);
int vhd_live_trim(vhd_live_t *live, uint64_t count, uint64_t offset);
int vhd_live_flush(vhd_live_t *live);

/* One copy step: up to MAX bytes of dirty chunks (from where the last step
 * stopped, a pass over the disk at a time) copied from the leaf to the
 * parent, the leaf's written sectors only; *COPIED gets the data bytes
 * moved.  Mirror mode begins when a pass ends with more than 3/4 of the
 * work left that the pass before it ended with (the work left stops
 * shrinking: the guest dirties chunks nearly as fast as the copy cleans
 * them; a copy that converges shrinks it geometrically), or after
 * VHD_LIVE_MAX_PASSES passes: from then on no chunk becomes dirty, so the
 * next pass ends with nothing left.  Returns 1
 * (copied), 0 (nothing dirty: ready to pivot), or -1. */
#define VHD_LIVE_MAX_PASSES 8
int vhd_live_step(vhd_live_t *live, uint64_t max, uint64_t *copied);

struct vhd_live_status {
	int mirror;             /* 1 once in mirror mode */
	unsigned passes;        /* passes completed */
	uint64_t bytes_done;    /* data bytes copied by the steps */
	uint64_t bytes_left;    /* dirty chunks, in bytes (grows with guest writes) */
	uint64_t guest_bytes;   /* bytes the guest wrote or zeroed since the start */
	const char *leaf, *parent;   /* paths; owned by the merge */
};
void vhd_live_get_status(vhd_live_t *live, struct vhd_live_status *st);

/* The pivot in three calls, so that the guest waits only for the middle
 * one.  vhd_live_pivot_prepare, with nothing dirty, before the drain: the
 * SR lock and the swap's journal (a crash before the rename drops it and
 * the merge resumes).  vhd_live_pivot, with the leaf idle (else EAGAIN,
 * the prepared swap given up, nothing changed): the parent flushed (what
 * was written since the last flush), the rename, durable.  Returns the
 * handle that now serves (the parent's, named by the leaf's path, RDWR,
 * its lock held; the caller owns it and closes the old leaf handle), or
 * NULL (nothing changed unless the error says the swap is pending).
 * vhd_live_pivot_end, after the drain, requests allowed: the served
 * handle's footers take the leaf's UUID and hidden flag, the journals go,
 * the SR lock is released.  Each returns 0 or -1 (or as said). */
int vhd_live_pivot_prepare(vhd_live_t *live);
vhd_t *vhd_live_pivot(vhd_live_t *live);
int vhd_live_pivot_end(vhd_live_t *live);

/* End the merge (after a pivot, a failure, or to cancel one running): the
 * parent's handle, if still owned, is closed; the live journal removed.
 * The chain is intact.  Returns 0, or -1. */
int vhd_live_end(vhd_live_t *live);

/* At a server's start, before opening LEAF: finish a pivot's swap a crash
 * interrupted (vhd_leaf_recover of LEAF's directory when LEAF's swap
 * journal is there), then look at LEAF's live journal: returns 1 when a
 * live merge of LEAF into its present parent was running (resume it; *RATE
 * gets its rate), 0 when none (a journal whose merge is over is removed),
 * or -1. */
int vhd_live_recover(const char *leaf, uint64_t *rate);

/* Re-open VHD's parents from the header now on disk (another process, the
 * GC, re-pointed VHD at a merged ancestor), keeping VHD's own descriptor
 * and lock; the old parents' files are closed.  VHD must be idle, as for
 * vhd_live_start.  The file at VHD's path must still be VHD's (EBUSY).
 * Returns 0, or -1 (nothing changed). */
int vhd_reopen_parents(vhd_t *vhd);

/* ---- helpers --------------------------------------------------------- */

/* CHS geometry for SIZE bytes per the VHD specification. */
uint32_t vhd_chs_geometry(uint64_t size);
/* Seconds since 2000-01-01 UTC for a Unix time, and back. */
uint32_t vhd_time_from_unix(int64_t t);
int64_t vhd_time_to_unix(uint32_t t);

#ifdef __cplusplus
}
#endif
#endif /* VHDKIT_H */
