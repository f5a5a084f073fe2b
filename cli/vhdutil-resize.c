/* vhdutil-resize.c - vhd-util resize (with blktap's undo journal) and revert.
 *
 * The journal is blktap's format (../shared/FORMAT-NOTES.md): a 512-byte
 * header ("vjournal", the VHD's UUID, the VHD's footer offset, entry counts
 * and offsets, and the journal's end, that one field little-endian as blktap
 * writes it), then metadata entries, then data entries.  Each entry is a
 * 32-byte big-endian header (cookie, type, size, offset, checksum, padding)
 * followed by SIZE bytes to be written back at OFFSET.  blktap's revert can
 * undo vhdkit's resize and the other way round.
 *
 * Resizing happens in place when the BAT's padding and the batmap have room
 * for the new block count (blktap's "fast" case, always true for grows up to
 * 128 blocks per BAT sector); a fixed disk is extended.  Otherwise it fails
 * with ENOSPC before anything is written: moving data blocks is not done
 * here. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdutil.h"

#define JOURNAL_COOKIE "vjournal"
#define ENTRY_COOKIE 0xaaaa12344321aaaaull
#define ENTRY_HEADER 32u
enum { J_FOOTER_P = 1, J_FOOTER_C = 2, J_HEADER = 3, J_LOCATOR = 4, J_BAT = 5,
       J_BATMAP_H = 6, J_BATMAP_M = 7, J_DATA = 8 };

struct journal {
	int fd;
	uint64_t pos;       /* where the next entry goes */
	uint32_t entries;
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
	return pwrite(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : (errno ? -errno : -EIO);
}

static int full_read(int fd, void *buf, size_t len, uint64_t off)
{
	return pread(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

/* Journals LEN bytes of the VHD at OFF as an entry of TYPE. */
static int journal_add(struct journal *j, struct vu_ctx *c, uint32_t type, uint64_t off,
                       uint32_t len)
{
	uint8_t hdr[ENTRY_HEADER] = { 0 };
	uint8_t *data = malloc(len ? len : 1);
	int err = data ? vu_pread(c, data, len, off) : -ENOMEM;
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
		j->entries++;
	}
	free(data);
	return err;
}

static int journal_header(int fd, const uint8_t uuid[16], uint64_t footer_off, uint32_t data,
                          uint32_t meta, uint64_t data_off, uint64_t eof)
{
	uint8_t h[SECTOR] = { 0 };
	memcpy(h, JOURNAL_COOKIE, 8);
	memcpy(h + 8, uuid, 16);
	put_be64(h + 24, footer_off);
	put_be32(h + 32, data);
	put_be32(h + 36, meta);
	put_be64(h + 40, data_off);
	put_be64(h + 48, SECTOR);
	put_le64(h + 56, eof);   /* blktap stores this one little-endian */
	return full_write(fd, h, sizeof h, 0);
}

/* Every piece of metadata that the resize rewrites. */
static int journal_metadata(struct journal *j, struct vu_ctx *c, uint64_t footer_off)
{
	int err = journal_add(j, c, J_FOOTER_P, footer_off, FOOTER_SIZE);
	if (err || !vu_dynamic(c))
		return err;
	if ((err = journal_add(j, c, J_FOOTER_C, 0, FOOTER_SIZE)) ||
	    (err = journal_add(j, c, J_HEADER, c->footer.data_offset, HEADER_SIZE)))
		return err;
	for (int i = 0; i < LOC_COUNT && !err; i++) {
		const struct vhd_locator *l = &c->header.loc[i];
		if (l->code && vu_locator_size(l))
			err = journal_add(j, c, J_LOCATOR, l->data_offset, (uint32_t)vu_locator_size(l));
	}
	uint32_t bat = (uint32_t)round_up((uint64_t)c->header.max_bat_entries * 4, SECTOR);
	if (!err)
		err = journal_add(j, c, J_BAT, c->header.table_offset, bat);
	if (!err && c->batmap_map)
		err = journal_add(j, c, J_BATMAP_H, c->header.table_offset + bat, SECTOR);
	if (!err && c->batmap_map)
		err = journal_add(j, c, J_BATMAP_M, c->batmap.map_offset,
		                  c->batmap.map_sectors * SECTOR);
	return err;
}

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

static int grow_dynamic(struct vu_ctx *c, uint64_t size, uint64_t footer_off)
{
	uint64_t entries = div_round_up(size, c->header.block_size);
	uint64_t room = round_up((uint64_t)c->header.max_bat_entries * 4, SECTOR) / 4;
	if (entries > room || (c->batmap_map && entries > (uint64_t)c->batmap.map_sectors * 4096))
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

static int resize_journaled(struct vu_ctx *c, uint64_t size, const char *jname)
{
	uint64_t footer_off = c->size - FOOTER_SIZE;
	int err = vu_dynamic(c) ? vu_get_bat(c) : 0;
	if (!err && vu_has_batmap(c))
		err = vu_get_batmap(c);
	if (err)
		return err;
	struct journal j = { .fd = -1, .pos = SECTOR };
	if (jname) {
		j.fd = open(jname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (j.fd < 0) {
			err = -errno;
			printf("error creating journal %s: %d\n", jname, err);
			return err;
		}
		err = journal_metadata(&j, c, footer_off);
		if (!err)
			err = journal_header(j.fd, c->footer.uuid, footer_off, 0, j.entries, j.pos, j.pos);
		if (!err && fsync(j.fd))
			err = -errno;
	}
	if (!err)
		err = poison(c, footer_off, true);
	if (!err)
		err = vu_dynamic(c) ? grow_dynamic(c, size, footer_off) : grow_fixed(c, size, footer_off);
	if (err == -ENOSPC)
		poison(c, footer_off, false);   /* nothing was changed but the cookie */
	if (j.fd >= 0) {
		if (!err) {   /* commit: the journal is no longer needed */
			journal_header(j.fd, c->footer.uuid, footer_off, 0, 0, SECTOR, SECTOR);
			unlink(jname);
		}
		close(j.fd);
		if (err == -ENOSPC)
			unlink(jname);
	}
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
	if (size < c.footer.curr_size) {
		printf("shrinking is not supported\n");
		err = -EINVAL;
	} else if (size > c.footer.curr_size) {
		err = resize_journaled(&c, size, fast ? NULL : jname);
		if (err)
			printf("resize failed: %d\n", err);
	}
	vu_close(&c);
	return err;
usage:
	printf("options: <-n name> <-s size (in MB)> (<-j journal>|<-f fast>) [-h help]\n");
	return -EINVAL;
}

/* Writes every entry of the journal back, truncates the VHD to its old end
 * and removes the journal. */
static int revert(const char *name, const char *jname)
{
	uint8_t h[SECTOR], e[ENTRY_HEADER];
	int err, vfd = open(name, O_RDWR | O_CLOEXEC), jfd = open(jname, O_RDONLY | O_CLOEXEC);
	if (vfd < 0 || jfd < 0) {
		err = -errno;
		goto out;
	}
	if ((err = full_read(jfd, h, sizeof h, 0)) || memcmp(h, JOURNAL_COOKIE, 8)) {
		err = -EINVAL;
		goto out;
	}
	uint64_t footer_off = get_be64(h + 24);
	uint32_t counts[2] = { get_be32(h + 36), get_be32(h + 32) };
	uint64_t starts[2] = { get_be64(h + 48), get_be64(h + 40) };
	for (int kind = 0; kind < 2 && !err; kind++) {
		uint64_t pos = starts[kind];
		for (uint32_t i = 0; i < counts[kind] && !err; i++) {
			if ((err = full_read(jfd, e, sizeof e, pos)))
				break;
			uint32_t len = get_be32(e + 12), sum = get_be32(e + 24);
			uint64_t off = get_be64(e + 16);
			uint8_t *data = get_be64(e) == ENTRY_COOKIE && len <= (64u << 20) ? malloc(len + 1)
			                                                                   : NULL;
			memset(e + 24, 0, 4);
			if (!data || full_read(jfd, data, len, pos + ENTRY_HEADER) ||
			    ~sum_bytes(data, len, sum_bytes(e, sizeof e, 0)) != sum)
				err = -EINVAL;
			else
				err = full_write(vfd, data, len, off);
			free(data);
			pos += ENTRY_HEADER + len;
		}
	}
	bool blk;
	uint64_t vsize;
	if (!err && !fd_size(vfd, name, &vsize, &blk) && !blk &&
	    ftruncate(vfd, (off_t)(footer_off + FOOTER_SIZE)) < 0)
		err = -errno;
	if (!err && fsync(vfd))
		err = -errno;
	if (!err)
		unlink(jname);
out:
	if (vfd >= 0)
		close(vfd);
	if (jfd >= 0)
		close(jfd);
	return err;
}

int vu_revert(int argc, char **argv)
{
	const char *name = NULL, *jname = NULL;
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
	int err = revert(name, jname);
	if (err)
		printf("revert failed: %d\n", err);
	return err;
usage:
	printf("options: <-n name> <-j journal> [-h help]\n");
	return -EINVAL;
}
