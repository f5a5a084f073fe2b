/* internal.h - libvhdkit's private structures and helpers. Not installed. */
#ifndef VHDKIT_INTERNAL_H
#define VHDKIT_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "vhdkit.h"

#define VHD_EXPORT __attribute__((visibility("default")))

#define SECTOR 512u
#define FOOTER_SIZE 512u
#define HEADER_SIZE 1024u
#define BAT_UNUSED 0xFFFFFFFFu
#define DD_OFFSET_NONE 0xFFFFFFFFFFFFFFFFull
#define VHD_VERSION 0x00010000u
#define VHD_FEATURE_RESERVED 0x2u
#define BATMAP_VERSION 0x00010002u
#define TAP_CREATOR_VERSION 0x00010003u
#define LOC_MACX 0x4D616358u   /* "MacX" */
#define LOC_W2KU 0x57326B75u   /* "W2ku" */
#define LOC_W2RU 0x57327275u   /* "W2ru" */
#define LOC_WI2R 0x57693272u   /* "Wi2r" */
#define LOC_WI2K 0x5769326Bu   /* "Wi2k" */
#define LOC_MAC 0x4D616320u    /* "Mac " */
#define LOC_COUNT 8
#define LOC_AREA 512u          /* bytes blktap reserves per locator */
#define DATA_ALIGN 4096u       /* block data areas start 4 KiB aligned */
#define BITMAP_CACHE 64        /* direct-mapped bitmap cache slots */
#define MAX_BAT_ENTRIES (1u << 28)  /* refuse BATs larger than 1 GiB */
#define MAX_BLOCK_SIZE (1u << 28)   /* 256 MiB */
#define MIN_BLOCK_SIZE SECTOR

/* ---- decoded on-disk structures (host byte order) ------------------ */

struct vhd_footer {
	char cookie[8];
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;
	char creator_app[4];
	uint32_t creator_version;
	uint32_t creator_os;
	uint64_t orig_size;
	uint64_t curr_size;
	uint32_t geometry;
	uint32_t type;
	uint32_t checksum;
	uint8_t uuid[16];
	uint8_t saved_state;
	uint8_t hidden;
	uint8_t reserved[426];
};

struct vhd_locator {
	uint32_t code;
	uint32_t data_space;
	uint32_t data_len;
	uint32_t reserved;
	uint64_t data_offset;
};

struct vhd_header {
	char cookie[8];
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_bat_entries;
	uint32_t block_size;
	uint32_t checksum;
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	uint32_t reserved1;
	uint8_t parent_name[512];          /* UTF-16BE as on disk */
	struct vhd_locator loc[LOC_COUNT];
	uint8_t reserved2[256];
};

struct vhd_batmap_header {
	char cookie[8];
	uint64_t map_offset;
	uint32_t map_sectors;
	uint32_t version;
	uint32_t checksum;
	uint8_t marker;
	/* keyhash (cookie, nonce, hash) kept raw, as found */
	uint8_t keyhash[65];
};

/* ---- codec (format.c) --------------------------------------------- */

void footer_decode(struct vhd_footer *f, const uint8_t *buf);
void footer_encode(uint8_t *buf, const struct vhd_footer *f);
/* An interrupted leaf swap's footers (leaf.c): see there. */
bool leaf_swap_between_footers(const char *path, const struct vhd_footer *primary,
                               const struct vhd_footer *backup);
uint32_t footer_checksum(const struct vhd_footer *f);
/* Early tapdisk images (creator 0.1 and 1.1), which set the hidden flag
 * without updating the checksum, and keep it valid only in the backup. */
bool footer_early_tap(const struct vhd_footer *f);
/* The checksum is right (or right with hidden=0, as early tap versions wrote). */
bool footer_checksum_ok(const struct vhd_footer *f);
void header_decode(struct vhd_header *h, const uint8_t *buf);
void header_encode(uint8_t *buf, const struct vhd_header *h);
uint32_t header_checksum(const struct vhd_header *h);
void batmap_header_decode(struct vhd_batmap_header *b, const uint8_t *buf);
void batmap_header_encode(uint8_t *buf, const struct vhd_batmap_header *b);
uint32_t batmap_checksum(const uint8_t *map, size_t bytes);

/* ---- the rules, one table per on-disk structure (rules.c) ---------- */

/* The errno of an image that breaks a rule: damaged, not a caller's
 * mistake.  Every "invalid" error about on-disk data uses it. */
#define VHD_EDAMAGED EBADMSG

enum rule_flags {
	RULE_BLKTAP = 1 << 0,   /* a test of blktap's `vhd-util check`, its words */
	RULE_READ = 1 << 1,     /* reading needs it: vhd_open refuses the image (the
	                           batmap: ignores it), vhd check calls it fatal */
	RULE_CLOCK = 1 << 2,    /* compares with the clock ("ignore timestamps") */
};

/* What a rule looks at; each table uses the fields it names. */
struct rule_input {
	const struct vhd_footer *footer;      /* every table but the footer's: the footer kept */
	const struct vhd_header *header;
	const struct vhd_batmap_header *batmap;
	const struct vhd_locator *locator;
	uint64_t limit;         /* metadata must end by here (the primary footer's offset) */
	uint32_t now;           /* VHD time now (rule_now()) */
	bool batmap_sum_known;  /* the map was read: */
	uint32_t batmap_sum;    /* its checksum */
	/* one BAT entry, in sectors: where blocks may start and must end by */
	uint32_t block_offset;
	uint64_t data_start, data_limit, span;
};

struct rule {
	int id;
	int flags;
	const char *message;    /* blktap's wording (or vhdkit's, for its own rules) */
	bool (*broken)(const struct rule_input *in);
};

struct rule_table {
	const struct rule *rules;
	size_t count;
};

enum rule_id {
	R_FOOTER_COOKIE, R_FOOTER_CHECKSUM, R_FOOTER_FEATURE, R_FOOTER_FEATURES,
	R_FOOTER_VERSION, R_FOOTER_DATA_OFFSET, R_FOOTER_FUTURE, R_FOOTER_TAP_VERSION,
	R_FOOTER_GEOMETRY, R_FOOTER_TYPE, R_FOOTER_SAVED, R_FOOTER_HIDDEN, R_FOOTER_RESERVED,
	R_HEADER_COOKIE, R_HEADER_CHECKSUM, R_HEADER_VERSION, R_HEADER_DATA_OFFSET,
	R_HEADER_TABLE_OFFSET, R_HEADER_BAT_PADDING, R_HEADER_BLOCK_SIZE, R_HEADER_BLOCK_RANGE,
	R_HEADER_RESERVED, R_HEADER_BAT_TOO_LARGE, R_HEADER_BAT_TOO_SMALL,
	R_PARENT_FUTURE, R_PARENT_NAME, R_PARENT_LOOP, R_PARENT_NULL_NAME,
	R_PARENT_NULL_LOCATORS, R_PARENT_NULL_UUID, R_PARENT_NULL_TIME,
	R_BATMAP_COOKIE, R_BATMAP_VERSION, R_BATMAP_CHECKSUM, R_BATMAP_SIZE_ZERO,
	R_BATMAP_SIZE_BAT, R_BATMAP_OFFSET, R_BATMAP_OVER_HEADER, R_BATMAP_SIZE,
	R_LOCATOR_CODE, R_LOCATOR_NULL, R_LOCATOR_OFFSET, R_LOCATOR_SPACE, R_LOCATOR_LEN,
	R_LOCATOR_SIZE, R_LOCATOR_RESERVED,
	R_BLOCK_HEADERS, R_BLOCK_FOOTER,
};

/* footer (blktap: "primary/backup footer invalid"), header ("header is
 * invalid"), its parent fields ("differencing header is invalid"), batmap
 * header ("batmap is invalid"), one parent locator ("invalid parent
 * locator N"). */
extern const struct rule_table footer_rules, header_rules, parent_rules, batmap_rules,
	locator_rules, block_rules;
/* block_rules' input for V: the blocks lie between the end of its
 * metadata and its primary footer (block_offset is the caller's). */
struct rule_input block_rule_input(const struct vhd *v);

/* The allocated BAT entries (of the first N; SKIP, when not NULL, leaves
 * out block b where SKIP[b]) sorted by offset, then block: caller frees.
 * Two blocks overlap iff they overlap a neighbour in this order. */
struct bat_extent {
	uint32_t off, block;
};
struct bat_extent *bat_by_offset(const uint32_t *bat, uint32_t n, const bool *skip,
                                 size_t *count);
void sort_extents(struct bat_extent *e, size_t n);   /* by off, then block */
/* Does block B, SPAN sectors long, start before block A (sorted before it) ends? */
static inline bool extents_overlap(const struct bat_extent *a, const struct bat_extent *b,
                                   uint64_t span)
{
	return (uint64_t)a->off + span > b->off;
}

/* The next rule of T after AFTER (NULL: the first) that IN breaks, among
 * those with every flag of WANT and none of SKIP; NULL when none. */
const struct rule *rule_next_broken(const struct rule_table *t, const struct rule *after,
                                    const struct rule_input *in, int want, int skip);
/* The message of the first such rule, or NULL. */
const char *rule_first_broken(const struct rule_table *t, const struct rule_input *in, int want,
                              int skip);
/* Does IN break rule ID of T? */
bool rule_broken(const struct rule_table *t, int id, const struct rule_input *in);
uint32_t rule_now(void);
/* The error of a broken rule: "PATH: WHAT: MESSAGE", errno VHD_EDAMAGED.
 * Returns -1. */
int rule_error(const char *path, const char *what, const char *message);

/* blktap's rule for the footer copies: the backup (raw BACKUP) is the
 * primary (raw PRIMARY) byte for byte, or an early tap image's backup with
 * the hidden flag set that the primary lacks. */
bool footer_copies_match(const uint8_t *primary, const uint8_t *backup);
/* The footer's first broken rule (STRICT: every one of `vhd-util check`,
 * else those reading needs; CHECK_TIME: also the clock's), or NULL. */
const char *footer_invalid(const struct vhd_footer *f, bool strict, bool check_time);
/* The header's first broken rule that reading needs (the BAT must end by
 * FOOTER_OFFSET), or NULL. */
const char *header_invalid(const struct vhd_header *h, const struct vhd_footer *f,
                           uint64_t footer_offset);

/* Big-endian access. */
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Bitmaps, MSB first. */
static inline bool bit_test(const uint8_t *map, uint64_t i)
{
	return map[i >> 3] & (0x80u >> (i & 7));
}
static inline void bit_set(uint8_t *map, uint64_t i)
{
	map[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
}
static inline void bit_clear(uint8_t *map, uint64_t i)
{
	map[i >> 3] &= (uint8_t)~(0x80u >> (i & 7));
}
/* First index in [from, to) whose bit equals VALUE, or TO. */
uint64_t bit_find(const uint8_t *map, uint64_t from, uint64_t to, bool value);

static inline uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline uint64_t div_round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a; }

/* ---- the handle ---------------------------------------------------- */

struct bitmap_slot {
	uint32_t block;        /* BAT_UNUSED when empty */
	uint8_t *map;          /* bitmap_bytes */
	pthread_mutex_t lock;  /* held while the slot is looked at or changed by
	                          the concurrent I/O paths (vhd_bitmap_lock) */
};

struct vhd {
	char *path;
	int fd;
	int flags;
	bool writable;
	bool is_blockdev;
	uint64_t file_size;        /* at open (device size for block devices) */
	uint64_t footer_offset;    /* where the primary footer is (end of data) */

	struct vhd_footer footer;
	struct vhd_header header;  /* dynamic/differencing only */

	uint32_t *bat;             /* max_bat_entries, host order */
	uint32_t bat_entries;      /* = header.max_bat_entries */
	uint32_t block_sectors;    /* sectors per block */
	uint32_t bitmap_bytes;     /* bitmap area, rounded to a sector */

	bool has_batmap;
	struct vhd_batmap_header batmap_hdr;
	uint8_t *batmap;           /* map_sectors * 512 bytes */
	uint64_t batmap_hdr_offset;

	struct bitmap_slot cache[BITMAP_CACHE];
	/* Serializes block allocation and batmap updates (footer_offset,
	 * file_size, the BAT entry, batmap bytes) between I/O threads.  Lock
	 * order: a bitmap slot's lock, then this one. */
	pthread_mutex_t meta_lock;
	uint8_t *zero_block;       /* lazily allocated zero buffer (block_size) */

	char *parent_name;         /* UTF-8 of header.parent_name */
	char *parent_path;         /* resolved */
	struct vhd *parent;
	unsigned depth;
	bool is_raw;               /* a raw parent: plain bytes, no VHD metadata;
	                              footer synthesized (fixed, nil UUID,
	                              size = the file's, rounded up to a sector) */
};

/* ---- error reporting (error.c) ------------------------------------ */

/* Set the thread's error: ERRNUM and a printf-style message.  Returns -1
 * so callers can `return vhd_error(...)`. */
int vhd_error(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "PREFIX: " (keeps errno). Returns -1. */
int vhd_error_prefix(const char *prefix);
/* Keep the last error's message, give it errno ERRNUM; returns -1. */
int vhd_error_recode(int errnum);
void vhd_debug(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- I/O helpers (util.c) ----------------------------------------- */

/* Full pread/pwrite; short reads past EOF are errors. Return 0 or -1
 * (with the error set, naming PATH). */
int read_at(int fd, const char *path, void *buf, size_t len, uint64_t off);
int write_at(int fd, const char *path, const void *buf, size_t len, uint64_t off);
/* Size of a regular file or block device. */
int fd_size(int fd, const char *path, uint64_t *size, bool *is_blockdev);
/* Allocate, checking the size is sane. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
/* The directory of PATH, into BUF: "." for a bare name, "/" at the root. */
const char *path_dir(const char *path, char *buf, size_t len);
void *xaligned_alloc(size_t align, size_t n);
char *xstrdup(const char *s);
bool is_zero(const void *buf, size_t len);
/* Does S end with SUFFIX? */
bool ends_with(const char *s, const char *suffix);

/* UTF-16 <-> UTF-8 (locators and the parent name).  Return a malloc'd
 * string or NULL on malformed input. */
char *utf16_to_utf8(const uint8_t *in, size_t bytes, bool big_endian);
/* Encodes into OUT (capacity OUTCAP bytes); returns bytes written or -1. */
ssize_t utf8_to_utf16(uint8_t *out, size_t outcap, const char *in, bool big_endian);

/* ---- derived quantities (rules.c): each formula written once ------- */

/* Bytes of a BAT of ENTRIES entries (whole sectors), and where the BAT of
 * H ends (the batmap header follows it). */
uint64_t bat_bytes(uint32_t entries);
uint64_t bat_end(const struct vhd_header *h);
/* Sectors of a batmap mapping ENTRIES blocks. */
uint32_t batmap_sectors_for(uint32_t entries);
/* Bytes of V's batmap its checksum covers (blocks of the virtual size). */
uint64_t batmap_checksum_bytes(const struct vhd *v);
/* Bytes of a locator's area (blktap's rule; 0 when unusable). */
uint64_t locator_bytes(const struct vhd_locator *l);
/* bat_entries, block_sectors and bitmap_bytes from V's header. */
void vhd_set_block_layout(struct vhd *v);
/* The whole sectors of SIZE bytes (a file's bytes that may hold data), and
 * where vhdkit reads the primary footer of a file of FILE_SIZE bytes (at
 * least FOOTER_SIZE): its last whole sector. */
uint64_t whole_sectors(uint64_t size);
uint64_t primary_footer_offset(uint64_t file_size);
/* A header at DATA_OFFSET (a footer's field) is sector-aligned and ends by LIMIT. */
bool header_placed(uint64_t data_offset, uint64_t limit);
/* Bytes of one block in the file: bitmap and data. */
uint64_t block_span(const struct vhd *v);
/* Offset of the first byte after all metadata (header, BAT, batmap,
 * locator areas): where blocks may begin. */
uint64_t vhd_metadata_end(const struct vhd *v);
/* Where the primary footer of V belongs: after the metadata and every
 * block whose bitmap lies before LIMIT (the bytes that may hold data),
 * rounded up to a sector.  vhd check and vhd repair both use it. */
uint64_t vhd_data_end(const struct vhd *v, uint64_t limit);

/* ---- metadata and layout (meta.c) --------------------------------- */

/* Write both footers (primary at footer_offset, backup at 0 unless fixed),
 * recomputing the checksum.  */
int vhd_write_footers(struct vhd *v);
int vhd_write_header(struct vhd *v);
int vhd_write_bat_entry(struct vhd *v, uint32_t block);
int vhd_write_batmap(struct vhd *v);   /* header + map, checksum recomputed */
/* Set BLOCK's batmap bit (writes one map sector and the header). */
int vhd_batmap_set(struct vhd *v, uint32_t block, bool full);
/* Decode locator N to a path (caller frees), NULL if empty or malformed. */
char *vhd_locator_path(const struct vhd *v, int n);
/* Resolve REL against the directory of CHILD_PATH (caller frees). */
char *path_relative_to(const char *child_path, const char *rel);

/* Bitmap of BLOCK (must be allocated), through the cache. NULL on error. */
uint8_t *vhd_block_bitmap(struct vhd *v, uint32_t block);
/* The same with the cache slot's lock held, for the paths that run
 * concurrently on one handle (io.c); release with vhd_bitmap_unlock (not
 * after a NULL return: the lock is then released already). */
uint8_t *vhd_bitmap_lock(struct vhd *v, uint32_t block);
void vhd_bitmap_unlock(struct vhd *v, uint32_t block);
/* Store a modified bitmap (the cache slot returned above) to disk. */
int vhd_store_bitmap(struct vhd *v, uint32_t block);
/* BAT entry B: an atomic load, since an I/O thread may allocate the block
 * while another reads (the entry only ever goes from BAT_UNUSED to a
 * place during concurrent I/O). */
static inline uint32_t bat_get(const struct vhd *v, uint32_t b)
{
	return __atomic_load_n(&v->bat[b], __ATOMIC_ACQUIRE);
}
/* Batmap bit of BLOCK ("full"), read atomically for the same reason. */
static inline bool batmap_full(const struct vhd *v, uint32_t block)
{
	return v->has_batmap &&
	       (__atomic_load_n(&v->batmap[block >> 3], __ATOMIC_ACQUIRE) & (0x80u >> (block & 7)));
}
/* Byte offset of block data / bitmap. */
static inline uint64_t block_bitmap_offset(const struct vhd *v, uint32_t b)
{
	return (uint64_t)bat_get(v, b) * SECTOR;
}
static inline uint64_t block_data_offset(const struct vhd *v, uint32_t b)
{
	return (uint64_t)bat_get(v, b) * SECTOR + v->bitmap_bytes;
}
/* Allocate a new block at the end of data (4 KiB aligned data area, empty
 * bitmap, data area a hole), move the footer, update the BAT. */
int vhd_allocate_block(struct vhd *v, uint32_t block);

/* Chain reads (source.c, io.c).  vhd_find_source: which file provides the run of
 * sectors starting at SECTOR (at most MAX), looking at no more than LAYERS
 * files from V down.  Sets *RUN, and *LAYER to that file's depth below V
 * (0 = V) with *FROM to the file, or *LAYER to NO_LAYER when none of those
 * layers has it (zeros, or the layers below).  Returns 0, or -1 on error. */
#define NO_LAYER (-1)
int vhd_find_source(struct vhd *v, uint64_t sector, uint64_t max, uint64_t *run,
                    struct vhd **from, int *layer, unsigned layers);
/* File offset of virtual SECTOR in V's own data (V must hold it). */
uint64_t vhd_sector_offset(const struct vhd *v, uint64_t sector);
/* Read sectors [SECTOR, SECTOR+N) of V's chain into BUF in few system
 * calls (readv.c); SPANS, if not NULL, is increased by the number of
 * preadv spans made (for the tests).  0 or -1 with the error set. */
int vhd_read_planned(struct vhd *v, uint8_t *buf, uint64_t sector, uint64_t n,
                     unsigned *spans);
/* Read N sectors of V's own data at virtual SECTOR (V must hold them). */
int vhd_read_sectors(struct vhd *v, void *buf, uint64_t sector, uint64_t n);

/* vhd_reparent with extra vhd_open flags for the child (create.c):
 * VHD_OPEN_NO_LOCK lets a coalesce re-point a child that is in use, which
 * is safe because the child's content does not change. */
int vhd_reparent_file(const char *child, const char *parent, int open_flags);
/* vhd_reparent_raw with extra vhd_open flags for the child (create.c). */
int vhd_reparent_raw_file(const char *child, const char *raw, int open_flags);

/* The handle (handle.c).  vhd_alloc_handle: a zeroed handle, fd -1, empty
 * bitmap cache, locks initialized; NULL on allocation failure.  vhd_free
 * closes and frees everything it holds. */
struct vhd *vhd_alloc_handle(void);
void vhd_free(struct vhd *v);
/* Open a single file, no parent (open.c); LAX tolerates a bad primary footer
 * (uses the backup) and a bad batmap (ignored), for repair and info. */
struct vhd *vhd_open_file(const char *path, int flags, bool lax);

/* Raw parents (raw.c).  blktap marks a differencing disk whose parent is a
 * plain image by a nil parent UUID; the locators name the file. */
bool uuid_is_nil(const uint8_t uuid[16]);
/* V is differencing and its parent is raw. */
bool vhd_has_raw_parent(const struct vhd *v);
/* Why PATH cannot be a raw parent (not a regular file or block device, or
 * it ends in a valid VHD footer), or NULL.  Sets no error. */
const char *raw_parent_problem(const char *path);
/* Open PATH as a raw image (WRITABLE: O_RDWR and the exclusive lock). */
struct vhd *vhd_open_raw(const char *path, bool writable);
/* Do A and B (resolved) lie in the same directory? */
bool same_directory(const char *a, const char *b);
/* Take V's exclusive flock (EBUSY "in use" when another process holds it;
 * handle.c). */
int lock_exclusive(struct vhd *v);
/* Could an image by this creator have a batmap (tapdisk 1.1 and later)? */
bool creator_has_batmap(const struct vhd_footer *f);
/* The path of V's parent (open.c): the first candidate (locators, then
 * the header's parent name beside V) holding the UUID the header names, or
 * for a raw parent the first existing one; caller frees; NULL with the
 * error. */
char *vhd_find_parent(const struct vhd *v);
/* Read N sectors at SECTOR of a raw image; bytes past its end are zeros. */
int raw_read_sectors(struct vhd *v, void *buf, uint64_t sector, uint64_t n);

/* The forest of a scanned SR from its entries' parent links (sr.c; the
 * GC planner's unit test builds SRs with it): children, depth,
 * subtree_depth and visible_below; the members of a parent loop are marked
 * damaged (ok 0, the defect set, depth 0). */
void sr_compute_depths(struct vhd_sr *sr);

/* ---- what a resize overwrites (resize.c), for vhd-util's undo journal ---- */

/* Called with each byte range [OFF, OFF + LEN) of the image; a non-zero
 * return stops the walk and is passed back. */
typedef int (*vhd_range_fn)(void *arg, uint64_t off, uint64_t len);

/* Walks the byte ranges of V's image, up to the end of its primary footer,
 * that vhd_resize(V, NEW_SIZE) may overwrite (footers, header, BAT, batmap,
 * and, when the BAT must grow, the region the new metadata is written into,
 * where the blocks that were in the way lay).  Writes past the footer's end
 * are not reported: they extend the file.  Nothing is written.  Returns 0,
 * -1 with the error set when vhd_resize would refuse NEW_SIZE, or FN's first
 * non-zero return. */
int vhd_resize_plan(const struct vhd *v, uint64_t new_size, vhd_range_fn fn, void *arg);

#endif
