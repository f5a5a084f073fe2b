/* meta.c - metadata layout and updates: footers, header, BAT, batmap,
 * locators, the bitmap cache and block allocation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Tapdisk writes a batmap from version 1.2 on; 1.1 images may have one
 * (libvhd). Either way it is used only when its header's cookie is found
 * at its place. */
bool creator_has_batmap(const struct vhd_footer *f)
{
	return !memcmp(f->creator_app, "tap", 3) && f->creator_version >= 0x00010001u;
}

int vhd_write_footers(struct vhd *v)
{
	if (v->is_raw)   /* its footer is synthesized: the file holds disk data only */
		return vhd_error(EINVAL, "%s: a raw image has no footer to write", v->path);
	uint8_t buf[FOOTER_SIZE];
	v->footer.checksum = footer_checksum(&v->footer);
	footer_encode(buf, &v->footer);
	if (write_at(v->fd, v->path, buf, FOOTER_SIZE, v->footer_offset))
		return -1;
	if (v->footer.type != VHD_TYPE_FIXED && write_at(v->fd, v->path, buf, FOOTER_SIZE, 0))
		return -1;
	return 0;
}

int vhd_write_header(struct vhd *v)
{
	uint8_t buf[HEADER_SIZE];
	v->header.checksum = header_checksum(&v->header);
	header_encode(buf, &v->header);
	return write_at(v->fd, v->path, buf, HEADER_SIZE, v->footer.data_offset);
}

int vhd_write_bat_entry(struct vhd *v, uint32_t block)
{
	uint8_t buf[4];
	put_be32(buf, v->bat[block]);
	return write_at(v->fd, v->path, buf, 4, v->header.table_offset + 4ull * block);
}

int vhd_write_batmap(struct vhd *v)
{
	uint8_t buf[SECTOR];
	if (!v->has_batmap)
		return 0;
	v->batmap_hdr.checksum = batmap_checksum(v->batmap, batmap_checksum_bytes(v));
	if (write_at(v->fd, v->path, v->batmap, (size_t)v->batmap_hdr.map_sectors * SECTOR,
	             v->batmap_hdr.map_offset))
		return -1;
	batmap_header_encode(buf, &v->batmap_hdr);
	return write_at(v->fd, v->path, buf, SECTOR, v->batmap_hdr_offset);
}

/* Set BLOCK's batmap bit to FULL, writing only the map sector concerned and
 * the header (for its checksum).  Under the metadata lock: I/O threads of
 * one handle update the map concurrently (and read it atomically). */
int vhd_batmap_set(struct vhd *v, uint32_t block, bool full)
{
	uint8_t buf[SECTOR];
	if (!v->has_batmap)
		return 0;
	pthread_mutex_lock(&v->meta_lock);
	int rc = 0;
	if (batmap_full(v, block) == full)
		goto out;
	uint8_t bit = (uint8_t)(0x80u >> (block & 7));
	if (full)
		__atomic_fetch_or(&v->batmap[block >> 3], bit, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&v->batmap[block >> 3], (uint8_t)~bit, __ATOMIC_RELEASE);
	uint64_t sector = (block / 8) / SECTOR;
	rc = write_at(v->fd, v->path, v->batmap + sector * SECTOR, SECTOR,
	              v->batmap_hdr.map_offset + sector * SECTOR);
	if (rc)
		goto out;
	v->batmap_hdr.checksum = batmap_checksum(v->batmap, batmap_checksum_bytes(v));
	batmap_header_encode(buf, &v->batmap_hdr);
	rc = write_at(v->fd, v->path, buf, SECTOR, v->batmap_hdr_offset);
out:
	pthread_mutex_unlock(&v->meta_lock);
	return rc;
}

char *vhd_locator_path(const struct vhd *v, int n)
{
	const struct vhd_locator *l = &v->header.loc[n];
	if (!l->code)
		return NULL;
	if (l->code != LOC_MACX && l->code != LOC_W2KU && l->code != LOC_W2RU) {
		vhd_error(EBADMSG, "%s: parent locator %d: unknown code 0x%08x", v->path, n, l->code);
		return NULL;
	}
	if (!l->data_len || l->data_len > locator_bytes(l) || l->data_len > 65536 ||
	    l->data_offset > v->footer_offset || l->data_len > v->footer_offset - l->data_offset) {
		vhd_error(EBADMSG, "%s: parent locator %d: data (%u bytes at %llu) outside the file",
		           v->path, n, l->data_len, (unsigned long long)l->data_offset);
		return NULL;
	}
	uint8_t *raw = xmalloc(l->data_len + 1);
	if (!raw)
		return NULL;
	char *name = NULL;
	if (read_at(v->fd, v->path, raw, l->data_len, l->data_offset))
		goto out;
	if (l->code == LOC_MACX) {
		raw[l->data_len] = 0;
		const char *s = (const char *)raw;
		if (!strncmp(s, "file://", 7))
			s += 7;
		name = xstrdup(s);
	} else {
		name = utf16_to_utf8(raw, l->data_len, false);
		for (char *c = name; c && *c; c++)
			if (*c == '\\')
				*c = '/';
	}
	if (!name || !*name) {
		vhd_error(EBADMSG, "%s: parent locator %d: cannot decode the name", v->path, n);
		free(name);
		name = NULL;
	}
out:
	free(raw);
	return name;
}

char *path_relative_to(const char *child_path, const char *rel)
{
	if (rel[0] == '/')
		return xstrdup(rel);
	const char *slash = strrchr(child_path, '/');
	size_t dirlen = slash ? (size_t)(slash - child_path) + 1 : 0;
	char *p = xmalloc(dirlen + strlen(rel) + 1);
	if (!p)
		return NULL;
	memcpy(p, child_path, dirlen);
	strcpy(p + dirlen, rel);
	return p;
}

uint8_t *vhd_block_bitmap(struct vhd *v, uint32_t block)
{
	struct bitmap_slot *s = &v->cache[block % BITMAP_CACHE];
	if (s->block == block)
		return s->map;
	if (!s->map && !(s->map = xmalloc(v->bitmap_bytes)))
		return NULL;
	s->block = BAT_UNUSED;
	if (read_at(v->fd, v->path, s->map, v->bitmap_bytes, block_bitmap_offset(v, block)))
		return NULL;
	s->block = block;
	return s->map;
}

uint8_t *vhd_bitmap_lock(struct vhd *v, uint32_t block)
{
	pthread_mutex_lock(&v->cache[block % BITMAP_CACHE].lock);
	uint8_t *map = vhd_block_bitmap(v, block);
	if (!map)
		pthread_mutex_unlock(&v->cache[block % BITMAP_CACHE].lock);
	return map;
}

void vhd_bitmap_unlock(struct vhd *v, uint32_t block)
{
	pthread_mutex_unlock(&v->cache[block % BITMAP_CACHE].lock);
}

int vhd_store_bitmap(struct vhd *v, uint32_t block)
{
	struct bitmap_slot *s = &v->cache[block % BITMAP_CACHE];
	if (s->block != block)
		return vhd_error(EINVAL, "%s: block %u: bitmap not cached", v->path, block);
	if (write_at(v->fd, v->path, s->map, v->bitmap_bytes, block_bitmap_offset(v, block)))
		return -1;
	if (v->flags & VHD_OPEN_DURABLE)   /* the batmap is left as it is (see vhdkit.h) */
		return 0;
	bool full = bit_find(s->map, 0, v->block_sectors, false) == v->block_sectors;
	return vhd_batmap_set(v, block, full);
}

/* With VHD_OPEN_DURABLE, what was written so far reaches the disk before
 * what depends on it: a power cut may drop any write not yet synced. */
static int durable_barrier(struct vhd *v)
{
	if (!(v->flags & VHD_OPEN_DURABLE) || fdatasync(v->fd) == 0)
		return 0;
	return vhd_error(errno, "%s: fdatasync: %s", v->path, strerror(errno));
}

/* Crash-safe order: the footer moves to the new end first (the file always
 * ends in a valid footer), then the empty bitmap, then the BAT entry; a
 * crash in between only leaks the space (with VHD_OPEN_DURABLE, a power cut
 * too: the footer, then the bitmap, are synced before the next step; else
 * the page cache may write them in any order).  Concurrent I/O on the handle must
 * hold BLOCK's bitmap slot lock and then the metadata lock around this. */
int vhd_allocate_block(struct vhd *v, uint32_t block)
{
	uint64_t start = round_up(v->footer_offset + v->bitmap_bytes, DATA_ALIGN) - v->bitmap_bytes;
	uint64_t new_footer = start + v->bitmap_bytes + v->header.block_size;
	if (start / SECTOR > UINT32_MAX - 1)
		return vhd_error(EFBIG, "%s: block %u: file would exceed the 2 TiB the BAT can address",
		                 v->path, block);
	if (v->is_blockdev && new_footer + FOOTER_SIZE > v->file_size)
		return vhd_error(ENOSPC, "%s: block %u: device is full", v->path, block);
	uint64_t old_footer = v->footer_offset;
	v->footer_offset = new_footer;
	uint8_t buf[FOOTER_SIZE];
	v->footer.checksum = footer_checksum(&v->footer);
	footer_encode(buf, &v->footer);
	if (write_at(v->fd, v->path, buf, FOOTER_SIZE, new_footer) || durable_barrier(v))
		goto fail;
	struct bitmap_slot *s = &v->cache[block % BITMAP_CACHE];
	if (!s->map && !(s->map = xmalloc(v->bitmap_bytes)))
		goto fail;
	memset(s->map, 0, v->bitmap_bytes);
	s->block = block;
	__atomic_store_n(&v->bat[block], (uint32_t)(start / SECTOR), __ATOMIC_RELEASE);
	if (write_at(v->fd, v->path, s->map, v->bitmap_bytes, start))
		goto fail_bat;
	/* the old footer's bytes, if not overwritten, are unreferenced padding */
	if (start > old_footer && write_at(v->fd, v->path, (uint8_t[FOOTER_SIZE]){0},
	                                   FOOTER_SIZE, old_footer))
		goto fail_bat;
	if (durable_barrier(v))
		goto fail_bat;
	if (vhd_write_bat_entry(v, block))
		goto fail_bat;
	if (!v->is_blockdev)
		v->file_size = new_footer + FOOTER_SIZE;
	return 0;
fail_bat:
	__atomic_store_n(&v->bat[block], BAT_UNUSED, __ATOMIC_RELEASE);
	s->block = BAT_UNUSED;
fail:
	v->footer_offset = old_footer;
	return -1;
}
