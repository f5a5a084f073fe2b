/* ctx.c - images as blktap's libvhd sees them, for vhd-util.
 *
 * vhd-util's messages and exit statuses follow from the order in which
 * libvhd reads things and from what it checks at each step (footer and
 * header at open; BAT, batmap and parents only on demand).  This file
 * reproduces that order on top of libvhdkit's codec; every on-disk value is
 * range-checked before use.  Two deliberate differences: a bad header is
 * reported at once (libvhd retries for 10 s), and a block device is opened
 * like a file whose size is the device's. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "vhdutil.h"

#define MAX_MAP_SECTORS (1u << 20)

int vu_lib_errno(void)
{
	int e = vhd_get_errno();
	if (e == EBADMSG)   /* libvhd's status for bad metadata */
		return -EINVAL;
	return -(e ? e : EIO);
}

int vu_pread(struct vu_ctx *c, void *buf, size_t len, uint64_t off)
{
	ssize_t n;
	size_t done = 0;
	if (off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	while (done < len) {
		n = pread(c->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)   /* libvhd: nothing at all past the end is EPIPE, a cut read EIO */
			return done ? -EIO : -EPIPE;
		done += (size_t)n;
	}
	return 0;
}

/* The error vu_pread would give for LEN bytes at OFF because the file is
 * too short (-EPIPE from the end on, -EIO for a cut read), or 0: the
 * batmap is checked with it before it is allocated, so that a header
 * claiming a 512 MiB batmap in a small file fails as blktap's read does,
 * without the allocation. */
static int read_fits(const struct vu_ctx *c, uint64_t len, uint64_t off)
{
	if (off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	if (!len || off + len <= c->size)
		return 0;
	return off >= c->size ? -EPIPE : -EIO;
}

int vu_pwrite(struct vu_ctx *c, const void *buf, size_t len, uint64_t off)
{
	ssize_t n;
	size_t done = 0;
	while (done < len) {
		n = pwrite(c->fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int vu_get_xattr(int fd, const char *name, void *value, size_t size)
{
	memset(value, 0, size);
	if (fgetxattr(fd, name, value, size) < 0 && errno != ENODATA && errno != ENOTSUP)
		return -errno;
	return 0;
}

/* libvhd checks only the cookie and the checksum when opening. */
static int validate_footer(const struct vhd_footer *f, bool ignore_disabled)
{
	if (memcmp(f->cookie, "conectix", 8) &&
	    !(ignore_disabled && !memcmp(f->cookie, "v_poison", 8)))
		return -EINVAL;
	return footer_checksum_ok(f) ? 0 : -EINVAL;
}

/* Reads LEN bytes at OFF into F (zero padded); then validates. */
static int footer_at(struct vu_ctx *c, struct vhd_footer *f, uint64_t off, size_t len,
                     bool ignore_disabled)
{
	uint8_t buf[FOOTER_SIZE] = { 0 };
	int err = vu_pread(c, buf, len, off);
	if (err)
		return err;
	footer_decode(f, buf);
	return validate_footer(f, ignore_disabled);
}

int vu_read_footer(struct vu_ctx *c, struct vhd_footer *f, bool ignore_disabled)
{
	int err = -EINVAL;
	memset(f, 0, sizeof *f);
	if (c->size == 0)
		return -EPIPE;   /* what libvhd reports for an empty file */
	if (c->size % SECTOR == 0)
		err = footer_at(c, f, c->size - FOOTER_SIZE, FOOTER_SIZE, ignore_disabled);
	else if (c->size % SECTOR == SECTOR - 1)
		err = footer_at(c, f, c->size - (SECTOR - 1), SECTOR - 1, ignore_disabled);
	if (err != -EINVAL)
		return err;
	if (c->size < FOOTER_SIZE)
		return -EIO;
	return footer_at(c, f, 0, FOOTER_SIZE, ignore_disabled);
}

/* The footer copy at offset 0 of a file of at least NEED bytes (else
 * -EIO): VU_OPEN_BACKUP_FOOTER (blktap's VHD_OPEN_USE_BKP_FOOTER) needs the
 * footer, VU_OPEN_FAST (VHD_OPEN_FAST) the footer and the header, which
 * blktap reads as one 1536-byte piece. */
static int first_footer(struct vu_ctx *c, struct vhd_footer *f, uint64_t need,
                        bool ignore_disabled)
{
	memset(f, 0, sizeof *f);
	if (c->size < need)
		return -EIO;
	return footer_at(c, f, 0, FOOTER_SIZE, ignore_disabled);
}

static int backup_footer(struct vu_ctx *c, struct vhd_footer *f, bool ignore_disabled)
{
	return first_footer(c, f, FOOTER_SIZE, ignore_disabled);
}

int vu_read_header(struct vu_ctx *c, struct vhd_header *h)
{
	uint8_t buf[HEADER_SIZE];
	uint64_t off = c->footer.data_offset;
	memset(h, 0, sizeof *h);
	if (off % SECTOR || off > c->size || c->size - off < HEADER_SIZE)
		return -EINVAL;
	int err = vu_pread(c, buf, sizeof buf, off);
	if (err)
		return err;
	header_decode(h, buf);
	if (memcmp(h->cookie, "cxsparse", 8) || h->version != VHD_VERSION ||
	    header_checksum(h) != h->checksum)
		return -EINVAL;
	if (!h->block_size || h->block_size & (h->block_size - 1) || h->block_size < SECTOR ||
	    h->block_size > MAX_BLOCK_SIZE)
		return -EINVAL;
	return 0;
}

bool vu_dynamic(const struct vu_ctx *c)
{
	return c->footer.type == VHD_TYPE_DYNAMIC || c->footer.type == VHD_TYPE_DIFF;
}

/* libvhd: a tap 1.1 image may or may not have a batmap (one updated from
 * 0.1 has none); it has one when the header at its place validates. */
static bool batmap_header_valid_v11(struct vu_ctx *c)
{
	uint8_t buf[SECTOR];
	struct vhd_batmap_header m;
	if (memcmp(c->footer.creator_app, "tap", 3) || c->footer.creator_version != 0x00010001u ||
	    vu_pread(c, buf, SECTOR, bat_end(&c->header)))
		return false;
	batmap_header_decode(&m, buf);
	return !memcmp(m.cookie, "tdbatmap", 8) && m.version <= BATMAP_VERSION;
}

int vu_open(struct vu_ctx *c, const char *name, int flags)
{
	bool blk;
	memset(c, 0, sizeof *c);
	c->fd = open(name, (flags & VU_OPEN_RDWR ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	c->file = strdup(name);
	if (!c->file || fd_size(c->fd, name, &c->size, &blk)) {
		vu_close(c);
		return -ENOMEM;
	}
	c->is_block = blk;
	bool ign = flags & VU_OPEN_IGNORE_DISABLED;
	int err = flags & VU_OPEN_FAST ? first_footer(c, &c->footer, FOOTER_SIZE + HEADER_SIZE, ign)
	          : flags & VU_OPEN_BACKUP_FOOTER ? backup_footer(c, &c->footer, ign)
	          : vu_read_footer(c, &c->footer, ign);
	/* as blktap, the fast open does not look for the disabled cookie */
	if (!err && !memcmp(c->footer.cookie, "v_poison", 8) && !ign && !(flags & VU_OPEN_FAST))
		err = -EINVAL;
	if (!err && vu_dynamic(c)) {
		err = vu_read_header(c, &c->header);
		c->spb = c->header.block_size / SECTOR;
		c->bm_secs = (uint32_t)div_round_up(div_round_up(c->spb, 8), SECTOR);
		c->batmap_v11 = batmap_header_valid_v11(c);
	}
	if (err)
		vu_close(c);
	return err;
}

void vu_close(struct vu_ctx *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->file);
	free(c->bat);
	free(c->batmap_map);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

bool vu_has_batmap(const struct vu_ctx *c)
{
	return vu_dynamic(c) && !memcmp(c->footer.creator_app, "tap", 3) &&
	       (c->footer.creator_version >= 0x00010002u || c->batmap_v11);
}

/* How many of the header's BAT entries are held: all of them when the
 * table lies inside the file (what check's header test demands), else
 * only the disk's own, the ones blktap reads: a header claiming a table
 * far beyond the end costs no memory. */
static size_t bat_entries_held(const struct vu_ctx *c, uint64_t used)
{
	uint64_t n = c->header.max_bat_entries, off = c->header.table_offset;
	uint64_t in_file = c->size > off ? (c->size - off) / 4 : 0;
	return (size_t)(n <= in_file ? n : used);
}

/* blktap's vhd_read_bat reads only the entries of the footer's size (in
 * 2 MiB units), -EINVAL if the header has fewer; its errors are that
 * read's (as vu_pread's: -EPIPE from the end on, -EIO for a cut read, found
 * before allocating anything).  Entries past the end of the file are unused. */
int vu_get_bat(struct vu_ctx *c)
{
	if (c->bat)
		return 0;
	if (!vu_dynamic(c))
		return -EINVAL;
	uint64_t used = c->footer.curr_size >> 21, off = c->header.table_offset;
	if (c->header.max_bat_entries < used)
		return -EINVAL;
	uint64_t blktap_bytes = round_up(used ? used * 4 : 1, SECTOR);
	if (off >= c->size)
		return -EPIPE;
	if (blktap_bytes > c->size - off)
		return -EIO;
	size_t held = bat_entries_held(c, used);
	size_t bytes = held * 4 > blktap_bytes ? held * 4 : (size_t)blktap_bytes;
	size_t in_file = bytes < c->size - off ? bytes : (size_t)(c->size - off);
	uint8_t *raw = malloc(bytes);
	c->bat = malloc(held * 4 + 1);
	int err = raw && c->bat ? 0 : -ENOMEM;
	if (!err) {
		memset(raw, 0xff, bytes);
		err = vu_pread(c, raw, in_file, off);
	}
	for (size_t i = 0; !err && i < held; i++)
		c->bat[i] = get_be32(raw + 4 * i);
	free(raw);
	c->bat_entries = err ? 0 : (uint32_t)held;
	if (err) {
		free(c->bat);
		c->bat = NULL;
	}
	return err;
}

/* Entry I of the BAT read by vu_get_bat; unused past what it holds. */
uint32_t vu_bat_at(const struct vu_ctx *c, uint64_t i)
{
	return i < c->bat_entries ? c->bat[i] : BAT_UNUSED;
}

uint32_t vu_batmap_checksum(const struct vu_ctx *c)
{
	uint64_t bytes = ((c->footer.curr_size >> 21) >> 3);
	bytes = bytes ? round_up(bytes, SECTOR) : SECTOR;
	if (bytes > (uint64_t)c->batmap.map_sectors * SECTOR)
		bytes = (uint64_t)c->batmap.map_sectors * SECTOR;
	return c->batmap_map ? batmap_checksum(c->batmap_map, bytes) : ~0u;
}

int vu_get_batmap(struct vu_ctx *c)
{
	uint8_t buf[SECTOR];
	if (c->batmap_map)
		return 0;
	if (!vu_has_batmap(c))
		return -EINVAL;
	int err = vu_pread(c, buf, SECTOR, bat_end(&c->header));
	if (err)
		return err;
	batmap_header_decode(&c->batmap, buf);
	if (memcmp(c->batmap.cookie, "tdbatmap", 8) || c->batmap.version > BATMAP_VERSION ||
	    c->batmap.map_sectors > MAX_MAP_SECTORS)
		return -EINVAL;
	if ((err = read_fits(c, (uint64_t)c->batmap.map_sectors * SECTOR, c->batmap.map_offset)))
		return err;
	c->batmap_map = calloc(1, (size_t)c->batmap.map_sectors * SECTOR + 1);
	if (!c->batmap_map)
		return -ENOMEM;
	err = vu_pread(c, c->batmap_map, (size_t)c->batmap.map_sectors * SECTOR,
	               c->batmap.map_offset);
	if (!err && vu_batmap_checksum(c) != c->batmap.checksum)
		err = -EINVAL;
	if (err) {
		free(c->batmap_map);
		c->batmap_map = NULL;
	}
	return err;
}

bool vu_batmap_test(const struct vu_ctx *c, uint64_t block)
{
	if (!c->batmap_map || block >= (uint64_t)c->batmap.map_sectors * SECTOR * 8)
		return false;
	return bit_test(c->batmap_map, block);
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

int vu_end_of_headers(struct vu_ctx *c, uint64_t *end)
{
	uint64_t eom = c->footer.data_offset + HEADER_SIZE;
	uint64_t bat = bat_bytes(c->header.max_bat_entries);
	eom = max64(eom, c->header.table_offset + (bat ? bat : SECTOR));   /* blktap: a sector at least */
	if (vu_has_batmap(c)) {
		int err = vu_get_batmap(c);
		if (err)
			return err;
		eom = max64(eom, bat_end(&c->header) + SECTOR);
		eom = max64(eom, c->batmap.map_offset + (uint64_t)c->batmap.map_sectors * SECTOR);
	}
	for (int i = 0; i < LOC_COUNT; i++) {
		const struct vhd_locator *l = &c->header.loc[i];
		if (l->code)
			eom = max64(eom, l->data_offset + locator_bytes(l));
	}
	*end = eom;
	return 0;
}

int vu_end_of_data(struct vu_ctx *c, uint64_t *end)
{
	if (!vu_dynamic(c)) {
		*end = c->size >= FOOTER_SIZE ? c->size - FOOTER_SIZE : 0;
		return 0;
	}
	uint64_t eom;
	int err = vu_end_of_headers(c, &eom);
	if (!err)
		err = vu_get_bat(c);
	if (err)
		return err;
	for (uint32_t i = 0; i < c->bat_entries; i++)   /* the rest is unused */
		if (c->bat[i] != BAT_UNUSED)
			eom = max64(eom, ((uint64_t)c->bat[i] + c->bm_secs + c->spb) * SECTOR);
	*end = eom;
	return 0;
}

int vu_locator_read(struct vu_ctx *c, const struct vhd_locator *l, char **name)
{
	*name = NULL;
	if (c->footer.type != VHD_TYPE_DIFF)
		return -EINVAL;
	if (l->code != LOC_MACX && l->code != LOC_W2KU && l->code != LOC_W2RU)
		return -EINVAL;
	uint64_t size = locator_bytes(l);
	if (!size || size > 64 * 1024 || l->data_len > size || !l->data_len)
		return -EINVAL;
	uint8_t *buf = calloc(1, size + 2);
	if (!buf)
		return -ENOMEM;
	int err = vu_pread(c, buf, size, l->data_offset);
	char *s = NULL;
	if (!err && l->code == LOC_MACX) {
		if (strncmp((char *)buf, "file://", 7) || memchr(buf, 0, l->data_len))
			err = -EINVAL;
		else
			s = strndup((char *)buf + 7, l->data_len - 7);
	} else if (!err) {
		s = utf16_to_utf8(buf, l->data_len, false);
		for (char *p = s; p && *p; p++)
			if (*p == '\\')
				*p = '/';
	}
	free(buf);
	if (!err && !s)
		err = -EINVAL;
	*name = s;
	return err;
}

int vu_parent_name(const struct vhd_header *h, char **name)
{
	*name = utf16_to_utf8(h->parent_name, sizeof h->parent_name, true);
	return *name ? 0 : -EINVAL;
}

int vu_find_parent(struct vu_ctx *c, const char *name, char **location)
{
	*location = NULL;
	if (name[0] == '/') {
		*location = realpath(name, NULL);
		return *location ? 0 : -errno;
	}
	char *self = realpath(c->file, NULL);
	if (!self)
		return -errno;
	const char *dir = dirname(self);
	size_t len = strlen(dir) + strlen(name) + 2;
	char *joined = malloc(len);
	if (joined)
		snprintf(joined, len, "%s/%s", dir, name);
	free(self);
	if (!joined)
		return -ENOMEM;
	*location = realpath(joined, NULL);
	int err = *location ? 0 : -errno;
	free(joined);
	return err;
}

int vu_parent_get(struct vu_ctx *c, char **parent)
{
	int err = -EINVAL;
	*parent = NULL;
	for (int i = 0; i < LOC_COUNT; i++) {
		char *name;
		if (!c->header.loc[i].code)
			continue;
		if (vu_locator_read(c, &c->header.loc[i], &name))
			continue;
		err = vu_find_parent(c, name, parent);
		free(name);
		if (!err)
			return 0;
	}
	return err;
}

int vu_chain_depth(struct vu_ctx *c, int *depth)
{
	struct vu_ctx cur;
	struct vu_ctx *v = c;
	int err = 0;
	*depth = 1;
	while (v->footer.type == VHD_TYPE_DIFF && *depth <= VHD_MAX_CHAIN_DEPTH) {
		char *parent;
		if (uuid_is_nil(v->header.parent_uuid)) {   /* a raw parent ends the chain */
			++*depth;
			break;
		}
		if ((err = vu_parent_get(v, &parent)))
			break;
		if (v == &cur)
			vu_close(&cur);
		err = vu_open(&cur, parent, VU_OPEN_IGNORE_DISABLED);
		free(parent);
		if (err) {
			v = c;
			break;
		}
		v = &cur;
		++*depth;
	}
	if (v == &cur)
		vu_close(&cur);
	return err ? err : *depth > VHD_MAX_CHAIN_DEPTH ? -ELOOP : 0;
}

static int write_footer_at(struct vu_ctx *c, uint64_t off)
{
	uint8_t buf[FOOTER_SIZE];
	c->footer.checksum = footer_checksum(&c->footer);
	footer_encode(buf, &c->footer);
	return vu_pwrite(c, buf, sizeof buf, off);
}

/* blktap's vhd_hidden: early tap images (creator version 0.1 and 1.1) keep
 * the flag valid only in the backup footer, which must then validate.  The
 * flag is blktap's signed char widened to int (225 is -31). */
int vu_hidden(struct vu_ctx *c, int *hidden)
{
	struct vhd_footer f;
	*hidden = (signed char)c->footer.hidden;
	if (!vu_dynamic(c) || !footer_early_tap(&c->footer))
		return 0;
	int err = backup_footer(c, &f, true);
	if (!err)
		*hidden = (signed char)f.hidden;
	return err;
}

/* At the end of data (a block device: its last sector), as libvhd. */
int vu_write_footer(struct vu_ctx *c)
{
	uint64_t end;
	int err = 0;
	if (c->is_block && c->size < FOOTER_SIZE)
		return -EINVAL;
	if (c->is_block)
		end = c->size - FOOTER_SIZE;
	else
		err = vu_end_of_data(c, &end);
	if (err)
		return err;
	if ((err = write_footer_at(c, end)))
		return err;
	if (!c->is_block && ftruncate(c->fd, (off_t)(end + FOOTER_SIZE)) < 0)
		return -errno;
	if (vu_dynamic(c) && (err = write_footer_at(c, 0)))
		return err;
	return fsync(c->fd) < 0 ? -errno : 0;
}
