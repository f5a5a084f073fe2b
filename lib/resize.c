/* resize.c - grow a VHD's virtual size, crash-safely.
 *
 * Dynamic and differencing disks: when the BAT's last sector and the
 * batmap have room, the new entries are written first and the header and
 * footers last.  Otherwise the BAT and batmap move to a bigger region
 * placed right after all the old metadata, so that it never overlaps what
 * the old header still uses: the blocks in the way are moved to the end of
 * the file one at a time (copy, sync, then the BAT entry), the new BAT and
 * batmap are written into the freed space, and a single header write (its
 * first sector: table offset, entry count, checksum) switches to them.  A
 * crash at any point leaves a valid image of the old or the new size with
 * the same content; the old BAT and batmap are left as unused space.  blktap's tools accept the result: every
 * block still lies after all the metadata.
 *
 * Fixed disks: see grow_fixed().
 *
 * vhd_resize_plan (internal.h) lists, without writing, the byte ranges of the
 * image a resize may overwrite: vhd-util resize -j journals them first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static int sync_fd(struct vhd *v)
{
	if (fdatasync(v->fd))
		return vhd_error(errno, "%s: fdatasync: %s", v->path, strerror(errno));
	return 0;
}

static int write_zeros(struct vhd *v, uint64_t from, uint64_t to)
{
	static const uint8_t zero[64 * 1024];
	for (uint64_t off = from; off < to; off += sizeof zero) {
		size_t n = to - off < sizeof zero ? (size_t)(to - off) : sizeof zero;
		if (write_at(v->fd, v->path, zero, n, off))
			return -1;
	}
	return 0;
}

/* Zero [from, to), skipping a regular file's holes (an earlier, interrupted
 * resize may have left a long one there). */
static int zero_range(struct vhd *v, uint64_t from, uint64_t to)
{
	while (from < to) {
		off_t data = v->is_blockdev ? (off_t)from : lseek(v->fd, (off_t)from, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			return write_zeros(v, from, to);
		if (data < 0 || (uint64_t)data >= to)
			return 0;   /* nothing but a hole up to the end */
		off_t hole = v->is_blockdev ? (off_t)to : lseek(v->fd, data, SEEK_HOLE);
		uint64_t end = hole < 0 || (uint64_t)hole > to ? to : (uint64_t)hole;
		if (write_zeros(v, (uint64_t)data, end))
			return -1;
		from = end;
	}
	return 0;
}

/* A fixed disk's footer sits at the end of the file and its current size
 * says how much of what comes before is disk.  Every step below leaves a
 * valid image: first a copy of the unchanged footer at the new end (the
 * disk keeps its old size; the bytes before it are not disk), then the
 * area the disk grows into is zeroed, and one footer write switches to
 * the new size.  On a block device the footer stays at the device's end. */
static int grow_fixed(struct vhd *v, uint64_t size)
{
	uint64_t old = v->footer.curr_size;
	uint64_t dirty_end = v->footer_offset + FOOTER_SIZE;   /* past it: fresh zeros */
	if (v->is_blockdev && size > v->footer_offset)
		return vhd_error(ENOSPC, "%s: device too small for %llu bytes", v->path,
		                 (unsigned long long)size);
	if (size > v->footer_offset) {
		v->footer_offset = size;
		if (vhd_write_footers(v) || sync_fd(v))
			return -1;
		v->file_size = size + FOOTER_SIZE;
	}
	if (zero_range(v, old, size < dirty_end ? size : dirty_end) || sync_fd(v))
		return -1;
	v->footer.curr_size = size;
	v->footer.geometry = vhd_chs_geometry(size);
	return vhd_write_footers(v) || sync_fd(v);
}

/* Entries the BAT's sectors can hold, and blocks the batmap can map. */
static uint32_t bat_capacity(const struct vhd *v)
{
	uint64_t cap = bat_bytes(v->bat_entries) / 4;
	if (v->has_batmap && cap > (uint64_t)v->batmap_hdr.map_sectors * SECTOR * 8)
		cap = (uint64_t)v->batmap_hdr.map_sectors * SECTOR * 8;
	return cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
}

static int set_size_fields(struct vhd *v, uint64_t size)
{
	v->footer.curr_size = size;
	v->footer.geometry = vhd_chs_geometry(size);
	if (vhd_write_footers(v) || sync_fd(v))
		return -1;
	/* the batmap's checksum covers bytes up to the new size: they are zero,
	 * the sum is unchanged, but rewrite it so that it is computed anew */
	return v->has_batmap ? vhd_write_batmap(v) || sync_fd(v) : 0;
}

static int grow_bat_array(struct vhd *v, uint32_t entries)
{
	uint32_t *bat = realloc(v->bat, (size_t)entries * 4);
	if (!bat)
		return vhd_error(ENOMEM, "%s: out of memory", v->path);
	for (uint32_t b = v->bat_entries; b < entries; b++)
		bat[b] = BAT_UNUSED;
	v->bat = bat;
	return 0;
}

/* The new entries fit in the BAT's last sector: mark them unused on disk,
 * then let the header count them. */
static int grow_in_place(struct vhd *v, uint32_t entries)
{
	uint32_t old = v->bat_entries;
	if (grow_bat_array(v, entries))
		return -1;
	uint8_t *raw = xmalloc((size_t)(entries - old) * 4);
	if (!raw)
		return -1;
	memset(raw, 0xFF, (size_t)(entries - old) * 4);
	int rc = write_at(v->fd, v->path, raw, (size_t)(entries - old) * 4,
	                  v->header.table_offset + 4ull * old);
	free(raw);
	if (rc || sync_fd(v))
		return -1;
	v->bat_entries = v->header.max_bat_entries = entries;
	return vhd_write_header(v) || sync_fd(v);
}

/* ---- moving the metadata ---- */

struct new_layout {
	uint32_t entries;
	uint64_t table_offset, bat_bytes;
	uint64_t batmap_hdr_offset, map_offset;
	uint32_t map_sectors;
	uint64_t end;                 /* blocks must start at or after this */
};

static void plan_layout(const struct vhd *v, uint32_t entries, struct new_layout *L)
{
	memset(L, 0, sizeof *L);
	L->entries = entries;
	L->table_offset = round_up(vhd_metadata_end(v), SECTOR);
	L->bat_bytes = bat_bytes(entries);
	uint64_t end = L->table_offset + L->bat_bytes;
	if (v->has_batmap) {
		L->batmap_hdr_offset = end;
		L->map_offset = end + SECTOR;
		L->map_sectors = batmap_sectors_for(entries);
		end = L->map_offset + (uint64_t)L->map_sectors * SECTOR;
	}
	L->end = end;
}

/* Move block B to the end of the file: the copy is durable before the BAT
 * entry points at it, so a crash leaves one intact copy referenced. */
static int move_block(struct vhd *v, uint32_t b, uint8_t *buf)
{
	uint64_t span = v->bitmap_bytes + (uint64_t)v->header.block_size;
	uint64_t from = block_bitmap_offset(v, b);
	uint64_t to = round_up(v->footer_offset + v->bitmap_bytes, DATA_ALIGN) - v->bitmap_bytes;
	if (to / SECTOR > UINT32_MAX - 1)
		return vhd_error(EFBIG, "%s: no room to move block %u", v->path, b);
	uint64_t old_footer = v->footer_offset;
	v->footer_offset = to + span;
	if (vhd_write_footers(v) || sync_fd(v))
		goto fail;
	if (read_at(v->fd, v->path, buf, span, from) || write_at(v->fd, v->path, buf, span, to) ||
	    sync_fd(v))
		goto fail;
	v->bat[b] = (uint32_t)(to / SECTOR);
	if (vhd_write_bat_entry(v, b) || sync_fd(v))
		return -1;
	v->file_size = v->footer_offset + FOOTER_SIZE;
	return 0;
fail:
	v->footer_offset = old_footer;
	return -1;
}

static int clear_the_way(struct vhd *v, const struct new_layout *L)
{
	uint64_t span = v->bitmap_bytes + (uint64_t)v->header.block_size;
	uint8_t *buf = NULL;
	for (;;) {
		uint32_t lowest = BAT_UNUSED;   /* the first block inside the new region */
		for (uint32_t b = 0; b < v->bat_entries; b++)
			if (v->bat[b] != BAT_UNUSED && (uint64_t)v->bat[b] * SECTOR < L->end &&
			    (lowest == BAT_UNUSED || v->bat[b] < v->bat[lowest]))
				lowest = b;
		if (lowest == BAT_UNUSED)
			break;
		if (!buf && !(buf = xmalloc(span)))
			return -1;
		if (move_block(v, lowest, buf)) {
			free(buf);
			return -1;
		}
	}
	free(buf);
	if (v->footer_offset < L->end) {   /* an almost empty file: grow it */
		v->footer_offset = L->end;
		if (vhd_write_footers(v) || sync_fd(v))
			return -1;
	}
	return 0;
}

/* Write the BAT at its new place (still unused space).  Locator data
 * stays where it is: the new region lies past it, and the header switch
 * then changes nothing in the header's second sector. */
static int write_new_bat(struct vhd *v, const struct new_layout *L, struct vhd_header *h)
{
	uint8_t *buf = xcalloc(1, (size_t)L->bat_bytes);
	if (!buf)
		return -1;
	memset(buf + 4 * (size_t)L->entries, 0xFF, (size_t)L->bat_bytes - 4 * (size_t)L->entries);
	for (uint32_t b = 0; b < L->entries; b++)
		put_be32(buf + 4 * (size_t)b, b < v->bat_entries ? v->bat[b] : BAT_UNUSED);
	*h = v->header;
	h->table_offset = L->table_offset;
	h->max_bat_entries = L->entries;
	int rc = write_at(v->fd, v->path, buf, (size_t)L->bat_bytes, L->table_offset);
	free(buf);
	return rc;
}

static int write_new_batmap(struct vhd *v, const struct new_layout *L)
{
	size_t bytes = (size_t)L->map_sectors * SECTOR;
	uint8_t *map = xcalloc(1, bytes);
	if (!map)
		return -1;
	size_t old = (size_t)v->batmap_hdr.map_sectors * SECTOR;
	memcpy(map, v->batmap, old < bytes ? old : bytes);
	free(v->batmap);
	v->batmap = map;
	v->batmap_hdr.map_offset = L->map_offset;
	v->batmap_hdr.map_sectors = L->map_sectors;
	v->batmap_hdr_offset = L->batmap_hdr_offset;
	return vhd_write_batmap(v);
}

/* After a failure here the handle no longer matches the file: callers
 * close it (the file itself is valid, of the old size). */
static int move_metadata(struct vhd *v, uint32_t entries)
{
	struct new_layout L;
	struct vhd_header h;
	plan_layout(v, entries, &L);
	if (clear_the_way(v, &L) || write_new_bat(v, &L, &h) ||
	    (v->has_batmap && write_new_batmap(v, &L)) || sync_fd(v) ||
	    grow_bat_array(v, entries))
		return -1;
	/* the switch: one header write */
	v->header = h;
	v->bat_entries = entries;
	return vhd_write_header(v) || sync_fd(v);
}

/* What vhd_resize does for NEW_SIZE (rounded up to a sector here). */
enum grow_kind { GROW_SAME, GROW_FIXED, GROW_FIELDS, GROW_IN_PLACE, GROW_MOVE };

/* The grow that *NEW_SIZE needs, and the BAT entries it needs in *ENTRIES;
 * -1 with the error set when it is refused. */
static int grow_kind(const struct vhd *v, uint64_t *new_size, uint32_t *entries)
{
	uint64_t size = round_up(*new_size, SECTOR);
	*new_size = size;
	if (size < v->footer.curr_size)
		return vhd_error(EINVAL, "%s: cannot shrink from %llu to %llu bytes", v->path,
		                 (unsigned long long)v->footer.curr_size, (unsigned long long)size);
	if (size == v->footer.curr_size)
		return GROW_SAME;
	if (v->footer.type == VHD_TYPE_FIXED)
		return GROW_FIXED;
	uint64_t blocks = div_round_up(size, v->header.block_size);
	if (blocks > MAX_BAT_ENTRIES || size > (uint64_t)2040 << 30)
		return vhd_error(EFBIG, "%s: %llu bytes is more than a VHD can hold", v->path,
		                 (unsigned long long)size);
	*entries = (uint32_t)blocks;
	if (blocks <= v->bat_entries)
		return GROW_FIELDS;
	return blocks <= bat_capacity(v) ? GROW_IN_PLACE : GROW_MOVE;
}

VHD_EXPORT int vhd_resize(vhd_t *v, uint64_t new_size)
{
	if (!v->writable)
		return vhd_error(EBADF, "%s: not opened for writing", v->path);
	uint32_t entries = 0;
	int kind = grow_kind(v, &new_size, &entries), rc = 0;
	if (kind < 0 || kind == GROW_SAME)
		return kind < 0 ? -1 : 0;
	if (kind == GROW_FIXED)
		return grow_fixed(v, new_size);
	if (kind == GROW_IN_PLACE)
		rc = grow_in_place(v, entries);
	else if (kind == GROW_MOVE)
		rc = move_metadata(v, entries);
	return rc ? -1 : set_size_fields(v, new_size);
}

/* ---- what a resize overwrites ---- */

/* FN on [OFF, OFF + LEN) clipped to the end of the primary footer. */
static int report(const struct vhd *v, vhd_range_fn fn, void *arg, uint64_t off, uint64_t len)
{
	uint64_t end = v->footer_offset + FOOTER_SIZE;
	if (off >= end)
		return 0;
	if (len > end - off)
		len = end - off;
	return len ? fn(arg, off, len) : 0;
}

/* Both footers, the header, the BAT's sectors and the batmap: everything a
 * dynamic disk's grow rewrites in place (the BAT entries of moved blocks,
 * the new entries, the size fields, the batmap's checksum). */
static int report_metadata(const struct vhd *v, vhd_range_fn fn, void *arg)
{
	int rc;
	if ((rc = report(v, fn, arg, 0, FOOTER_SIZE)) ||
	    (rc = report(v, fn, arg, v->footer_offset, FOOTER_SIZE)) ||
	    (rc = report(v, fn, arg, v->footer.data_offset, HEADER_SIZE)) ||
	    (rc = report(v, fn, arg, v->header.table_offset,
	                 bat_bytes(v->bat_entries))))
		return rc;
	if (!v->has_batmap)
		return 0;
	if ((rc = report(v, fn, arg, v->batmap_hdr_offset, SECTOR)))
		return rc;
	return report(v, fn, arg, v->batmap_hdr.map_offset,
	              (uint64_t)v->batmap_hdr.map_sectors * SECTOR);
}

/* Moved blocks go past the primary footer (the first one may cover it);
 * the new BAT and batmap go into the region plan_layout picks, over the
 * old places of those blocks and whatever else lay there. */
int vhd_resize_plan(const struct vhd *v, uint64_t new_size, vhd_range_fn fn, void *arg)
{
	uint32_t entries = 0;
	int kind = grow_kind(v, &new_size, &entries), rc;
	if (kind < 0 || kind == GROW_SAME)
		return kind < 0 ? -1 : 0;
	if (kind == GROW_FIXED)   /* zeros from the disk's old end, then the footer */
		return report(v, fn, arg, v->footer.curr_size, UINT64_MAX);
	if ((rc = report_metadata(v, fn, arg)) || kind != GROW_MOVE)
		return rc;
	struct new_layout L;
	plan_layout(v, entries, &L);
	return report(v, fn, arg, L.table_offset, L.end - L.table_offset);
}
