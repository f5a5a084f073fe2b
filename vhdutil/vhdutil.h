/* vhdutil.h - the `vhd-util` personality: blktap's command line and output.
 *
 * vhd-util's subcommands print exactly what blktap's vhd-util prints and
 * return a negative errno (the exit status is its absolute value).  They
 * look at images the way blktap's libvhd does (vu_* below: footer with the
 * backup fallback, header, BAT and batmap read on demand, parents found by
 * locator only), so that the same damage gives the same messages. */
#ifndef VHDUTIL_H
#define VHDUTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

#define VU_OPEN_RDWR 1
#define VU_OPEN_IGNORE_DISABLED 2   /* accept a footer disabled by resize -j */
#define VU_OPEN_BACKUP_FOOTER 4     /* read only the footer copy at offset 0 */
#define VU_OPEN_FAST 8              /* footer copy at 0 and header (scan -f) */

/* An image as libvhd sees it. */
struct vu_ctx {
	char *file;
	int fd;
	bool is_block;
	uint64_t size;              /* file or device size */
	struct vhd_footer footer;
	struct vhd_header header;   /* dynamic and differencing only */
	uint32_t spb, bm_secs;      /* sectors per block, bitmap sectors */
	uint32_t *bat;              /* NULL until vu_get_bat */
	uint32_t bat_entries;       /* held in bat: max_bat_entries unless the
	                               table runs past the end of the file */
	struct vhd_batmap_header batmap;
	uint8_t *batmap_map;        /* NULL until vu_get_batmap */
	bool batmap_v11;            /* a tap 1.1 image whose batmap header validates */
};

/* Open NAME: returns 0 or -errno (as libvhd: -EINVAL for a bad header). */
int vu_open(struct vu_ctx *c, const char *name, int flags);
void vu_close(struct vu_ctx *c);
/* Read the footer as libvhd does (primary, short, backup at 0): 0 or -errno;
 * the footer read last stays in F even when invalid. */
int vu_read_footer(struct vu_ctx *c, struct vhd_footer *f, bool ignore_disabled);
/* The header at the footer's data offset (zeros if unreadable). */
int vu_read_header(struct vu_ctx *c, struct vhd_header *h);
bool vu_dynamic(const struct vu_ctx *c);
bool vu_has_batmap(const struct vu_ctx *c);

/* blktap's marker and key hash of a VHD without batmap: extended
 * attributes of the file, read with vu_get_xattr (absent, or extended
 * attributes unsupported: zeros). */
#define MARKER_XATTR "user.com.citrix.xenclient.backend.marker"
#define KEYHASH_XATTR "user.com.citrix.xenclient.backend.keyhash"
int vu_get_xattr(int fd, const char *name, void *value, size_t size);
int vu_get_bat(struct vu_ctx *c);
uint32_t vu_bat_at(const struct vu_ctx *c, uint64_t i);
int vu_get_batmap(struct vu_ctx *c);
uint32_t vu_batmap_checksum(const struct vu_ctx *c);
bool vu_batmap_test(const struct vu_ctx *c, uint64_t block);
int vu_end_of_headers(struct vu_ctx *c, uint64_t *end);
int vu_end_of_data(struct vu_ctx *c, uint64_t *end);
/* Decoded path of a locator (caller frees), or -errno. */
int vu_locator_read(struct vu_ctx *c, const struct vhd_locator *l, char **name);
/* The header's parent name (caller frees), or -errno. */
int vu_parent_name(const struct vhd_header *h, char **name);
/* Absolute path of the parent found through the locators, or -errno. */
int vu_parent_get(struct vu_ctx *c, char **parent);
int vu_find_parent(struct vu_ctx *c, const char *name, char **location);
int vu_chain_depth(struct vu_ctx *c, int *depth);
/* The hidden flag as libvhd reads it (the backup's for early tap images). */
int vu_hidden(struct vu_ctx *c, int *hidden);
/* Write the footer at the end of data (a block device: at its end) and the
 * backup, truncating a file after it, as libvhd's vhd_write_footer.  0 or
 * -errno. */
int vu_write_footer(struct vu_ctx *c);
int vu_pread(struct vu_ctx *c, void *buf, size_t len, uint64_t off);
int vu_pwrite(struct vu_ctx *c, const void *buf, size_t len, uint64_t off);
/* -errno of the library's last error (for calls into libvhdkit); a damaged
 * image (EBADMSG) is -EINVAL, as libvhd says. */
int vu_lib_errno(void);

/* Printing, as `vhd-util read`. */
void vu_print_footer(const struct vhd_footer *f, bool hex);
void vu_print_header(const struct vhd_header *h, bool hex);
int vu_print_headers(struct vu_ctx *c, bool hex);
void vu_dump_headers(const char *name, bool hex);
/* `vhd-util read -p -n NAME` (what check prints for an invalid image). */
int vu_read_print(const char *name);

int vhdutil_main(int argc, char **argv);
int vu_create(int argc, char **argv);
int vu_snapshot(int argc, char **argv);
int vu_query(int argc, char **argv);
int vu_read(int argc, char **argv);
int vu_set(int argc, char **argv);
int vu_repair(int argc, char **argv);
int vu_resize(int argc, char **argv);
int vu_fill(int argc, char **argv);
int vu_coalesce(int argc, char **argv);
int vu_modify(int argc, char **argv);
int vu_scan(int argc, char **argv);
int vu_check(int argc, char **argv);
int vu_revert(int argc, char **argv);

#endif
