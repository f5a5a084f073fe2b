/* resize.c - vhd-util resize (with blktap's undo journal) and revert.
 *
 * The journal is blktap's format (../shared/FORMAT-NOTES.md): a 512-byte
 * header ("vjournal", the VHD's UUID, the VHD's footer offset, entry counts
 * and offsets, and the journal's end, that one field little-endian as blktap
 * writes it), then metadata entries (primary and backup footer, header,
 * locators, BAT, batmap header and map, in the order blktap's revert reads
 * them), then data entries.  Each entry is a 32-byte big-endian header
 * (cookie, type, size, offset, checksum, padding) followed by SIZE bytes to
 * be written back at OFFSET.  blktap's revert can undo vhdkit's resize and
 * the other way round.
 *
 * The whole journal is written and synced (with its directory) before the
 * image is touched; then the footer is disabled ("v_poison"), the image
 * grown, enabled again with the new size, and the journal committed (entry
 * counts zeroed, cut to its header) and removed.  A journal left at any
 * point restores the original image byte for byte.  On an error the
 * journal is reverted at once, as blktap does.
 *
 * Resizing happens in place when the BAT's padding and the batmap have room
 * for the new block count (blktap's "fast" case, always true for grows up to
 * 128 blocks per BAT sector); a fixed disk is extended.  Otherwise (-j only)
 * libvhdkit's crash-safe grow (lib/resize.c) moves the blocks in the way to
 * the end of the file and the BAT and batmap behind the old metadata, and
 * vhd_resize_plan tells beforehand which bytes of the image it may
 * overwrite: those not already in a metadata entry are journaled as data
 * entries (the old places of the moved blocks, where the new BAT lands).
 * On a block device (whose last sector vhd-util takes as the footer's
 * place, so nothing can move past it) that grow fails with ENOSPC before
 * anything is written. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdutil.h"

#define JOURNAL_COOKIE "vjournal"
#define ENTRY_COOKIE 0xaaaa12344321aaaaull
#define ENTRY_HEADER 32u
#define DATA_CHUNK (1u << 20)      /* bytes per data entry */
#define MAX_ENTRY (64u << 20)      /* larger entries are refused on revert */
#define MAX_SAVED (LOC_COUNT + 8)
enum { J_FOOTER_P = 1, J_FOOTER_C = 2, J_HEADER = 3, J_LOCATOR = 4, J_BAT = 5,
       J_BATMAP_H = 6, J_BATMAP_M = 7, J_DATA = 8 };

struct journal {
	int fd;
	struct vu_ctx *c;
	uint64_t footer_off;        /* the VHD's primary footer */
	uint64_t pos;               /* where the next entry goes */
	uint32_t meta, data;        /* entries of each kind */
	uint64_t data_off;          /* where the data entries start */
	struct { uint64_t off, end; } saved[MAX_SAVED];   /* metadata entries */
	unsigned nsaved;
	int err;                    /* of the walk over vhd_resize_plan's ranges */
};

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t sum_bytes(const uint8_t *p, size_t n, uint32_t sum)
{
	while (n--)
		sum += *p++;
	return sum;
}

static int full_write(int fd, const void *buf, size_t len, uint64_t off)
{
	errno = 0;
	return pwrite(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : (errno ? -errno : -EIO);
}

static int full_read(int fd, void *buf, size_t len, uint64_t off)
{
	return pread(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

/* ---- writing the journal ---- */

/* Journals LEN bytes of the VHD at OFF as an entry of TYPE. */
static int journal_add(struct journal *j, uint32_t type, uint64_t off, uint32_t len)
{
	uint8_t hdr[ENTRY_HEADER] = { 0 };
	uint64_t image_end = j->footer_off + FOOTER_SIZE;
	/* what revert would refuse (a damaged locator's size, say) is refused
	 * now, before anything is allocated or written */
	if (!len || len % SECTOR || len > MAX_ENTRY || off > image_end || len > image_end - off)
		return -EINVAL;
	uint8_t *data = malloc(len);
	int err = data ? vu_pread(j->c, data, len, off) : -ENOMEM;
	if (!err) {
		put_be64(hdr, ENTRY_COOKIE);
		put_be32(hdr + 8, type);
		put_be32(hdr + 12, len);
		put_be64(hdr + 16, off);
		put_be32(hdr + 24, ~sum_bytes(data, len, sum_bytes(hdr, ENTRY_HEADER, 0)));
		err = full_write(j->fd, hdr, ENTRY_HEADER, j->pos);
		if (!err)
			err = full_write(j->fd, data, len, j->pos + ENTRY_HEADER);
		j->pos += ENTRY_HEADER + len;
	}
	free(data);
	if (err)
		return err;
	if (type == J_DATA) {
		j->data++;
		return 0;
	}
	j->meta++;
	if (j->nsaved < MAX_SAVED) {
		j->saved[j->nsaved].off = off;
		j->saved[j->nsaved++].end = off + len;
	}
	return 0;
}

/* The header; COMMITTED: no entries (blktap's commit). */
static int journal_header(struct journal *j, bool committed)
{
	uint8_t h[SECTOR] = { 0 };
	memcpy(h, JOURNAL_COOKIE, 8);
	memcpy(h + 8, j->c->footer.uuid, 16);
	put_be64(h + 24, j->footer_off);
	if (!committed) {
		put_be32(h + 32, j->data);
		put_be32(h + 36, j->meta);
		put_be64(h + 40, j->data_off);
		put_be64(h + 48, SECTOR);
	}
	put_le64(h + 56, committed ? SECTOR : j->pos);   /* blktap stores this one little-endian */
	return full_write(j->fd, h, sizeof h, 0);
}

/* Every piece of metadata, in the order blktap's revert expects. */
static int journal_metadata(struct journal *j)
{
	struct vu_ctx *c = j->c;
	int err = journal_add(j, J_FOOTER_P, j->footer_off, FOOTER_SIZE);
	if (err || !vu_dynamic(c))
		return err;
	if ((err = journal_add(j, J_FOOTER_C, 0, FOOTER_SIZE)) ||
	    (err = journal_add(j, J_HEADER, c->footer.data_offset, HEADER_SIZE)))
		return err;
	for (int i = 0; i < LOC_COUNT && !err; i++) {
		const struct vhd_locator *l = &c->header.loc[i];
		if (l->code && locator_bytes(l))
			err = journal_add(j, J_LOCATOR, l->data_offset, (uint32_t)locator_bytes(l));
	}
	uint32_t bat = (uint32_t)bat_bytes(c->header.max_bat_entries);
	if (!err)
		err = journal_add(j, J_BAT, c->header.table_offset, bat);
	if (!err && c->batmap_map)
		err = journal_add(j, J_BATMAP_H, c->header.table_offset + bat, SECTOR);
	if (!err && c->batmap_map)
		err = journal_add(j, J_BATMAP_M, c->batmap.map_offset,
		                  c->batmap.map_sectors * SECTOR);
	return err;
}

static bool saved_covers(const struct journal *j, uint64_t off, uint64_t end)
{
	for (unsigned i = 0; i < j->nsaved; i++)
		if (j->saved[i].off <= off && end <= j->saved[i].end)
			return true;
	return false;
}

/* vhd_resize_plan's callback: a range the grow may overwrite, journaled as
 * data entries unless a metadata entry holds it already. */
static int journal_range(void *arg, uint64_t off, uint64_t len)
{
	struct journal *j = arg;
	uint64_t vhd_end = j->footer_off + FOOTER_SIZE;
	if (off >= vhd_end)
		return 0;
	uint64_t end = len > vhd_end - off ? vhd_end : off + len;
	off -= off % SECTOR;
	end = round_up(end, SECTOR);
	if (off >= end || saved_covers(j, off, end))
		return 0;
	for (uint32_t n; off < end; off += n) {
		n = end - off < DATA_CHUNK ? (uint32_t)(end - off) : DATA_CHUNK;
		if ((j->err = journal_add(j, J_DATA, off, n)))
			return 1;
	}
	return 0;
}

static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;
	free(copy);
	if (fd < 0 || fsync(fd))
		err = -errno;
	if (fd >= 0)
		close(fd);
	return err;
}

/* Writes and syncs the whole journal; with V (the library's handle, when
 * the BAT must grow), data entries for what vhd_resize(V, SIZE) overwrites. */
static int journal_create(struct journal *j, struct vhd *v, uint64_t size, const char *jname)
{
	j->fd = open(jname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (j->fd < 0)
		return -errno;
	int err = journal_metadata(j), rc;
	j->data_off = j->pos;
	if (!err && v && (rc = vhd_resize_plan(v, size, journal_range, j)))
		err = rc < 0 ? vu_lib_errno() : j->err;
	if (!err)
		err = journal_header(j, false);
	if (!err && fsync(j->fd))
		err = -errno;
	if (!err)
		err = sync_dir(jname);
	if (err) {
		close(j->fd);
		j->fd = -1;
		unlink(jname);
	}
	return err;
}

/* blktap's commit: no entries, the journal cut to its header; then it goes. */
static int journal_commit(struct journal *j, const char *jname)
{
	int err = journal_header(j, true);
	if (!err && ftruncate(j->fd, SECTOR))
		err = -errno;
	if (!err && unlink(jname))
		err = -errno;
	close(j->fd);
	j->fd = -1;
	return err;
}

/* ---- growing ---- */

static int write_footer(struct vu_ctx *c, uint64_t off)
{
	uint8_t buf[FOOTER_SIZE];
	c->footer.checksum = footer_checksum(&c->footer);
	footer_encode(buf, &c->footer);
	return vu_pwrite(c, buf, sizeof buf, off);
}

static int poison(struct vu_ctx *c, uint64_t footer_off, bool on)
{
	memcpy(c->footer.cookie, on ? "v_poison" : "conectix", 8);
	int err = write_footer(c, footer_off);
	if (!err && vu_dynamic(c))
		err = write_footer(c, 0);
	return err ? err : (fdatasync(c->fd) ? -errno : 0);
}

/* The BAT's padding and the batmap have room for the new block count. */
static bool fits_in_place(const struct vu_ctx *c, uint64_t size)
{
	uint64_t entries = div_round_up(size, c->header.block_size);
	uint64_t room = bat_bytes(c->header.max_bat_entries) / 4;
	return entries <= room &&
	       !(c->batmap_map && entries > (uint64_t)c->batmap.map_sectors * SECTOR * 8);
}

static int grow_dynamic(struct vu_ctx *c, uint64_t size, uint64_t footer_off)
{
	uint64_t entries = div_round_up(size, c->header.block_size);
	if (!fits_in_place(c, size))
		return -ENOSPC;
	uint8_t unused[4] = { 0xff, 0xff, 0xff, 0xff }, hdr[HEADER_SIZE];
	int err = 0;
	for (uint64_t b = c->header.max_bat_entries; !err && b < entries; b++)
		err = vu_pwrite(c, unused, 4, c->header.table_offset + 4 * b);
	if (err)
		return err;
	if (entries > c->header.max_bat_entries) {
		c->header.max_bat_entries = (uint32_t)entries;
		c->header.checksum = header_checksum(&c->header);
		header_encode(hdr, &c->header);
		if ((err = vu_pwrite(c, hdr, sizeof hdr, c->footer.data_offset)))
			return err;
	}
	c->footer.curr_size = size;
	c->footer.geometry = vhd_chs_geometry(size);
	return poison(c, footer_off, false);
}

static int grow_fixed(struct vu_ctx *c, uint64_t size, uint64_t footer_off)
{
	uint8_t zero[FOOTER_SIZE] = { 0 };
	if (c->is_block && size + FOOTER_SIZE > c->size)
		return -ENOSPC;
	int err = vu_pwrite(c, zero, sizeof zero, footer_off);   /* the old footer: data now */
	if (!err && !c->is_block && ftruncate(c->fd, (off_t)(size + FOOTER_SIZE)) < 0)
		err = -errno;
	c->footer.curr_size = size;
	c->footer.geometry = vhd_chs_geometry(size);
	return err ? err : poison(c, size, false);
}

/* The library's handle on the image, for a grow that moves the BAT; its
 * idea of the footer's place must be the journal's. */
static struct vhd *open_for_move(struct vu_ctx *c, int *err)
{
	struct vhd *v = vhd_open_file(c->file, VHD_OPEN_RDWR, false);
	*err = v ? 0 : vu_lib_errno();
	if (v && v->footer_offset + FOOTER_SIZE != c->size) {
		vhd_free(v);
		v = NULL;
		*err = -EINVAL;
	}
	return v;
}

static int set_cookie(struct vhd *v, const char *cookie)
{
	memcpy(v->footer.cookie, cookie, 8);
	if (vhd_write_footers(v))
		return vu_lib_errno();
	return fdatasync(v->fd) ? -errno : 0;
}

/* Disabled all along, as blktap's image is while its journal is live; the
 * library's grow keeps the image valid at every step besides. */
static int grow_moving(struct vhd *v, uint64_t size)
{
	int err = set_cookie(v, "v_poison");
	if (!err && vhd_resize(v, size))
		err = vu_lib_errno();
	return err ? err : set_cookie(v, "conectix");
}

static int revert(const char *name, const char *jname, const char **stage);

static int grow(struct vu_ctx *c, struct vhd *v, uint64_t size, uint64_t footer_off)
{
	if (v)
		return grow_moving(v, size);
	int err = poison(c, footer_off, true);
	if (!err)
		err = vu_dynamic(c) ? grow_dynamic(c, size, footer_off) : grow_fixed(c, size, footer_off);
	return err;
}

/* After the grow: commit, or (on an error) revert at once, as blktap. */
static int finish(struct journal *j, const char *jname, int err)
{
	if (!err) {
		int jerr = journal_commit(j, jname);
		if (jerr)
			printf("closing journal failed: %d\n", jerr);
		return jerr;
	}
	printf("resize failed: %d\n", err);
	close(j->fd);
	j->fd = -1;
	const char *stage;
	int jerr = revert(j->c->file, jname, &stage);
	if (jerr)
		printf("closing journal failed: %d\n", jerr);
	return err;
}

static int resize_journaled(struct vu_ctx *c, uint64_t size, const char *jname)
{
	struct journal j = { .fd = -1, .c = c, .footer_off = c->size - FOOTER_SIZE, .pos = SECTOR };
	struct vhd *v = NULL;
	int err = vu_dynamic(c) ? vu_get_bat(c) : 0;
	if (!err && vu_has_batmap(c))
		err = vu_get_batmap(c);
	bool move = !err && vu_dynamic(c) && !fits_in_place(c, size);
	if (move && (!jname || c->is_block))
		err = -ENOSPC;   /* -f: in place only, as blktap; a device cannot grow */
	else if (move)
		v = open_for_move(c, &err);
	if (err) {
		printf("resize failed: %d\n", err);
	} else if (jname && (err = journal_create(&j, v, size, jname))) {
		printf("creating journal failed: %d\n", err);
	} else if (jname) {
		err = finish(&j, jname, grow(c, v, size, j.footer_off));
	} else if ((err = grow(c, v, size, j.footer_off))) {
		printf("resize failed: %d\n", err);
		if (err == -ENOSPC)
			poison(c, j.footer_off, false);   /* nothing was changed but the cookie */
	}
	vhd_free(v);
	return err;
}

int vu_resize(int argc, char **argv)
{
	const char *name = NULL, *jname = NULL;
	uint64_t mb = 0;
	bool fast = false, have_size = false;
	struct vu_ctx c;
	int ch, err;
	while ((ch = getopt(argc, argv, "n:s:j:fh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 's': mb = strtoull(optarg, NULL, 10); have_size = true; break;
		case 'j': jname = optarg; break;
		case 'f': fast = true; break;
		default: goto usage;
		}
	}
	if (!name || !have_size || (!jname && !fast) || optind != argc || mb > (UINT64_MAX >> 21))
		goto usage;
	if ((err = vu_open(&c, name, VU_OPEN_RDWR))) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	uint64_t size = mb << 20;
	if (memcmp(c.footer.creator_app, "tap", 3)) {
		printf("%s not created by xen; resize not supported\n", name);
		err = -EINVAL;
	} else if (size < c.footer.curr_size) {
		printf("shrinking is not supported\n");
		err = -EINVAL;
	} else if (size > c.footer.curr_size) {
		err = resize_journaled(&c, size, fast ? NULL : jname);
	}
	vu_close(&c);
	return err;
usage:
	printf("options: <-n name> <-s size (in MB)> (<-j journal>|<-f fast>) [-h help]\n");
	return -EINVAL;
}

/* ---- revert ---- */

/* What the journal's header says. */
struct jhead {
	uint64_t footer_off;        /* the image's primary footer before the resize */
	uint64_t meta_off, data_off, jsize;
	uint32_t meta, data;        /* entry counts */
};

/* One entry, read and checked. */
struct jentry {
	uint32_t type, len;
	uint64_t off;
	uint8_t *buf;
};

/* Reads the entry at *POS and checks it: cookie, a type of the kind
 * expected (DATA), a size the journal holds, the checksum, and a place
 * inside the image as it was before the resize (the only bytes a resize
 * journals).  *POS moves past it; E->buf is the caller's to free. */
static int load_entry(int jfd, const struct jhead *h, uint64_t *pos, bool data,
                      struct jentry *e)
{
	uint8_t hdr[ENTRY_HEADER];
	uint64_t image_end = h->footer_off + FOOTER_SIZE;
	e->buf = NULL;
	if (*pos > h->jsize || h->jsize - *pos < ENTRY_HEADER || full_read(jfd, hdr, sizeof hdr, *pos))
		return -EINVAL;
	e->type = get_be32(hdr + 8);
	e->len = get_be32(hdr + 12);
	e->off = get_be64(hdr + 16);
	uint32_t sum = get_be32(hdr + 24);
	if (get_be64(hdr) != ENTRY_COOKIE || !e->len || e->len % SECTOR || e->len > MAX_ENTRY ||
	    h->jsize - *pos - ENTRY_HEADER < e->len || (e->type == J_DATA) != data || !e->type ||
	    e->type > J_DATA || e->off > image_end || e->len > image_end - e->off)
		return -EINVAL;
	if (!(e->buf = malloc(e->len)))
		return -ENOMEM;
	memset(hdr + 24, 0, 4);
	int err = full_read(jfd, e->buf, e->len, *pos + ENTRY_HEADER);
	if (!err && ~sum_bytes(e->buf, e->len, sum_bytes(hdr, sizeof hdr, 0)) != sum)
		err = -EINVAL;
	if (err) {
		free(e->buf);
		e->buf = NULL;
	}
	*pos += ENTRY_HEADER + e->len;
	return err;
}

enum { CHECK_ONLY, WRITE_BODY, WRITE_FOOTERS };

/* The entries of one kind (DATA or metadata): checked, and with WHAT, those
 * that are footers (WRITE_FOOTERS) or not (WRITE_BODY) written back. */
static int replay(int jfd, int vfd, const struct jhead *h, bool data, int what)
{
	uint64_t pos = data ? h->data_off : h->meta_off;
	uint32_t count = data ? h->data : h->meta;
	int err = 0;
	for (uint32_t i = 0; i < count && !err; i++) {
		struct jentry e;
		if ((err = load_entry(jfd, h, &pos, data, &e)))
			break;
		bool footer = e.type == J_FOOTER_P || e.type == J_FOOTER_C;
		if (what != CHECK_ONLY && footer == (what == WRITE_FOOTERS))
			err = full_write(vfd, e.buf, e.len, e.off);
		free(e.buf);
	}
	return err;
}

/* A journal for another image is refused (when the image's footer, disabled
 * or not, can still be read). */
static int same_image(int vfd, const char *name, const uint8_t uuid[16])
{
	struct vu_ctx c = { .fd = vfd };
	bool blk;
	if (fd_size(vfd, name, &c.size, &blk))
		return vu_lib_errno();
	return vu_read_footer(&c, &c.footer, true) || !memcmp(c.footer.uuid, uuid, 16) ? 0 : -EINVAL;
}

/* The journal's header, checked against the image (VSIZE bytes now: a
 * resize only grows it). */
static int load_head(int jfd, uint64_t jsize, uint64_t vsize, struct jhead *h, uint8_t uuid[16])
{
	uint8_t b[SECTOR];
	int err = full_read(jfd, b, sizeof b, 0);
	if (err)
		return err;
	*h = (struct jhead){ .footer_off = get_be64(b + 24), .data = get_be32(b + 32),
	                     .meta = get_be32(b + 36), .data_off = get_be64(b + 40),
	                     .meta_off = get_be64(b + 48), .jsize = jsize };
	memcpy(uuid, b + 8, 16);
	/* not a journal, a committed one (nothing to undo), or one for a larger image */
	if (memcmp(b, JOURNAL_COOKIE, 8) || !h->meta || h->footer_off % SECTOR ||
	    h->footer_off > vsize || vsize - h->footer_off < FOOTER_SIZE)
		return -EINVAL;
	return 0;
}

static int sync_err(int fd)
{
	return fsync(fd) ? -errno : 0;
}

/* Every entry is checked before anything is written (a damaged journal
 * leaves the image as it is); then the metadata and data are written back,
 * the VHD cut to its old end and synced, and the footers written last, so
 * that the image stays disabled until all the rest is back.  *STAGE names
 * what failed, in blktap's words (opening, reverting, removing). */
static int revert(const char *name, const char *jname, const char **stage)
{
	struct jhead h;
	uint8_t uuid[16];
	uint64_t jsize, vsize;
	bool blk, vblk;
	int err, vfd = open(name, O_RDWR | O_NONBLOCK | O_CLOEXEC),
	         jfd = open(jname, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	*stage = "opening";
	if (vfd < 0 || jfd < 0) {
		err = -errno;
		goto out;
	}
	if (fd_size(jfd, jname, &jsize, &blk) || fd_size(vfd, name, &vsize, &vblk)) {
		err = vu_lib_errno();
		goto out;
	}
	if ((err = load_head(jfd, jsize, vsize, &h, uuid)) || (err = same_image(vfd, name, uuid)) ||
	    (err = replay(jfd, vfd, &h, false, CHECK_ONLY)))
		goto out;
	*stage = "reverting";
	if ((err = replay(jfd, vfd, &h, true, CHECK_ONLY)) ||
	    (err = replay(jfd, vfd, &h, false, WRITE_BODY)) ||
	    (err = replay(jfd, vfd, &h, true, WRITE_BODY)))
		goto out;
	if (!vblk && ftruncate(vfd, (off_t)(h.footer_off + FOOTER_SIZE)) < 0)
		err = -errno;
	if (err || (err = sync_err(vfd)) || (err = replay(jfd, vfd, &h, false, WRITE_FOOTERS)) ||
	    (err = sync_err(vfd)))
		goto out;
	*stage = "removing";
	if (!blk && unlink(jname))
		err = -errno;
out:
	if (vfd >= 0)
		close(vfd);
	if (jfd >= 0)
		close(jfd);
	return err;
}

int vu_revert(int argc, char **argv)
{
	const char *name = NULL, *jname = NULL, *stage;
	int ch;
	while ((ch = getopt(argc, argv, "n:j:h")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'j': jname = optarg; break;
		default: goto usage;
		}
	}
	if (!name || !jname || optind != argc)
		goto usage;
	int err = revert(name, jname, &stage);
	if (err)
		printf("%s journal failed: %d\n", stage, err);
	return err;
usage:
	printf("options: <-n name> <-j journal> [-h help]\n");
	return -EINVAL;
}
