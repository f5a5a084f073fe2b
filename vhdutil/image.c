/* image.c - vhd-util create, snapshot, set, repair and modify. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "vhdutil.h"

static bool is_block_device(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISBLK(st.st_mode);
}

/* A VHD written onto an existing block device (an LVM volume): built in a
 * temporary file, copied to the start of the device, with the footer also
 * at the device's end so that the device reads as one VHD. */
static int create_on_device(const char *dev, uint64_t bytes, int flags)
{
	char tmp[] = "/tmp/vhd-util-create-XXXXXX";
	int tfd = mkstemp(tmp), err = 0;
	struct vu_ctx c;
	if (tfd < 0)
		return -errno;
	close(tfd);
	if (vhd_create(tmp, bytes, flags | VHD_CREATE_OVERWRITE))
		err = vu_lib_errno();
	if (!err && !(err = vu_open(&c, tmp, 0))) {
		uint8_t *buf = malloc(c.size);
		int dfd = open(dev, O_WRONLY | O_CLOEXEC);
		uint64_t dsize = 0;
		bool blk;
		if (!buf || dfd < 0 || fd_size(dfd, dev, &dsize, &blk) || dsize < c.size ||
		    vu_pread(&c, buf, c.size, 0))
			err = dfd < 0 ? -errno : -ENOSPC;
		if (!err && (pwrite(dfd, buf, c.size, 0) != (ssize_t)c.size ||
		             pwrite(dfd, buf + c.size - FOOTER_SIZE, FOOTER_SIZE,
		                    (off_t)(dsize - FOOTER_SIZE)) != FOOTER_SIZE || fsync(dfd)))
			err = -EIO;
		if (dfd >= 0)
			close(dfd);
		free(buf);
		vu_close(&c);
	}
	unlink(tmp);
	return err;
}

int vu_create(int argc, char **argv)
{
	const char *name = NULL;
	uint64_t size = 0, msize = 0;
	bool sparse = true, have_size = false;
	int ch;
	while ((ch = getopt(argc, argv, "n:s:S:rh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 's': size = strtoull(optarg, NULL, 10); have_size = true; break;
		case 'S': msize = strtoull(optarg, NULL, 10); have_size = true; break;
		case 'r': sparse = false; break;
		default: goto usage;
		}
	}
	if (!have_size || !name || optind != argc)
		goto usage;
	if (msize && msize < size) {
		printf("Error: <-S size> must be greater than <-s size>\n");
		return -EINVAL;
	}
	if (size > (UINT64_MAX >> 20))
		return -EINVAL;
	int flags = sparse ? 0 : VHD_CREATE_FIXED;
	if (is_block_device(name))
		return create_on_device(name, size << 20, flags);
	/* an existing file is refused (EEXIST), where blktap overwrites it */
	return vhd_create(name, size << 20, flags) ? vu_lib_errno() : 0;
usage:
	printf("options: <-n name> <-s size (MB)> [-r reserve] [-h help] "
	       "[<-S size (MB) for metadata preallocation (see vhd-util resize)>]\n");
	return -EINVAL;
}

/* blktap links a snapshot to the nearest ancestor with data: an empty
 * differencing parent is skipped (unless -e); an empty one whose parent is
 * raw (nil parent UUID) makes the snapshot's parent that raw image. */
static int find_snapshot_target(const char *name, char **result, bool *raw)
{
	char *target = strdup(name);
	struct vu_ctx c;
	int err = target ? 0 : -ENOMEM;
	*raw = false;
	for (int level = 0; !err && level < VHD_MAX_CHAIN_DEPTH; level++) {
		if ((err = vu_open(&c, target, 0)))
			break;
		bool empty = c.footer.type == VHD_TYPE_DIFF && !(err = vu_get_bat(&c));
		for (uint32_t i = 0; empty && i < c.bat_entries; i++)
			empty = c.bat[i] == BAT_UNUSED;
		if (!empty) {
			vu_close(&c);
			*result = target;
			return err;
		}
		free(target);
		err = vu_parent_get(&c, &target);
		*raw = !err && uuid_is_nil(c.header.parent_uuid);
		vu_close(&c);
		if (*raw) {
			*result = target;
			return 0;
		}
	}
	free(target);
	return err ? err : -ELOOP;
}

/* The virtual size of the VHD NAME, or 0. */
static uint64_t vhd_size_of(const char *name)
{
	struct vu_ctx c;
	if (vu_open(&c, name, 0))
		return 0;
	uint64_t size = c.footer.curr_size;
	vu_close(&c);
	return size;
}

/* A snapshot on a raw image: blktap takes the parent as given (its real
 * path), with no depth limit.  SIZE 0: the raw file's. */
static int snapshot_raw(const char *name, const char *raw, uint64_t size)
{
	if (vhd_snapshot_raw(raw, name, size) == 0)
		return 0;
	fprintf(stderr, "%s\n", vhd_get_error());
	return vu_lib_errno();
}

int vu_snapshot(int argc, char **argv)
{
	const char *name = NULL, *pname = NULL;
	bool raw = false, empty_check = true;
	long limit = 0;
	char *backing = NULL;
	int ch, err;
	while ((ch = getopt(argc, argv, "n:p:S:l:meh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'p': pname = optarg; break;
		case 'S': break;   /* metadata preallocation: BATs are sized for the disk */
		case 'l': limit = strtol(optarg, NULL, 10); break;
		case 'm': raw = true; break;
		case 'e': empty_check = false; break;
		default: goto usage;
		}
	}
	if (!name || !pname || optind != argc)
		goto usage;
	if (raw) {
		char *ppath = realpath(pname, NULL);
		if (!ppath)
			return -errno;
		err = snapshot_raw(name, ppath, 0);
		free(ppath);
		return err;
	}
	if (!empty_check)
		backing = strdup(pname);
	else if ((err = find_snapshot_target(pname, &backing, &raw))) {
		fprintf(stderr, "error finding snapshot target: %d\n", err);
		return err;
	}
	if (!backing)
		return -ENOMEM;
	if (raw) {   /* through empty snapshots down to a raw image: PNAME's size */
		err = snapshot_raw(name, backing, vhd_size_of(pname));
		free(backing);
		return err;
	}
	if (limit) {
		struct vu_ctx c;
		int depth = 0;
		err = vu_open(&c, backing, 0);
		if (!err) {
			err = vu_chain_depth(&c, &depth);
			vu_close(&c);
		}
		if (err) {
			printf("error checking snapshot depth: %d\n", err);
		} else if (depth + 1 > limit) {
			err = -ENOSPC;
			printf("snapshot depth exceeded: current depth: %d, limit: %ld\n", depth, limit);
		}
		if (err) {
			free(backing);
			return err;
		}
	}
	err = vhd_snapshot(backing, name, VHD_MAX_CHAIN_DEPTH) ? vu_lib_errno() : 0;
	free(backing);
	return err;
usage:
	printf("options: <-n name> <-p parent name> [-l snapshot depth limit] "
	       "[-m parent_is_raw] [-S size (MB) for metadata preallocation "
	       "(see vhd-util resize)] [-e link to supplied parent name even if "
	       "it might be empty] [-h help]\n");
	return -EINVAL;
}

/* The batmap header's marker byte; the map and its checksum are kept
 * (blktap's `set -f marker` leaves a batmap that no longer validates). */
static int set_marker(struct vu_ctx *c, uint8_t value)
{
	if (!vu_has_batmap(c))
		return fsetxattr(c->fd, MARKER_XATTR, &value, 1, 0) < 0 ? -errno : 0;
	struct vhd *v = vhd_open_file(c->file, VHD_OPEN_RDWR, false);
	if (!v)
		return vu_lib_errno();
	int err = 0;
	if (!v->has_batmap)
		err = -EINVAL;
	else {
		v->batmap_hdr.marker = value;
		err = vhd_write_batmap(v) ? vu_lib_errno() : fsync(v->fd) < 0 ? -errno : 0;
	}
	vhd_free(v);
	return err;
}

/* The footer byte as given (blktap stores any value 0-255), written in
 * place under the write lock. */
static int set_hidden(const char *name, uint8_t value)
{
	struct vhd *v = vhd_open_file(name, VHD_OPEN_RDWR, false);
	if (!v)
		return vu_lib_errno();
	v->footer.hidden = value;
	int err = vhd_write_footers(v) ? vu_lib_errno() : fsync(v->fd) < 0 ? -errno : 0;
	vhd_free(v);
	return err;
}

/* blktap's checks, in its order, after the options: the field name, then
 * the value's range (parsed by strtol, trailing text ignored). */
static bool field_ok(const char *field, long value)
{
	if (strnlen(field, 25) >= 25)
		printf("invalid field\n");
	else if (strcmp(field, "hidden") && strcmp(field, "marker"))
		printf("invalid field %s\n", field);
	else if (value < 0 || value > 255)
		printf("invalid value %ld\n", value);
	else
		return true;
	return false;
}

int vu_set(int argc, char **argv)
{
	const char *name = NULL, *field = NULL;
	long value = 0;
	struct vu_ctx c;
	int ch, err = -EINVAL;
	while ((ch = getopt(argc, argv, "n:f:v:h")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'f': field = optarg; break;
		case 'v': err = 0; value = strtol(optarg, NULL, 10); break;
		default: goto usage;
		}
	}
	if (!name || !field || optind != argc || err || !field_ok(field, value))
		goto usage;
	if ((err = vu_open(&c, name, VU_OPEN_RDWR))) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	err = !strcmp(field, "hidden") ? set_hidden(name, (uint8_t)value)
	                               : set_marker(&c, (uint8_t)value);
	vu_close(&c);
	return err;
usage:
	printf("options: <-n name> <-f field> <-v value> [-h help]\n");
	return -EINVAL;
}

/* blktap's repair: the footer (with -b, the copy at offset 0, which must be
 * valid) is written back at the end of data and at offset 0, with a UUID
 * generated if it has none. */
int vu_repair(int argc, char **argv)
{
	const char *name = NULL;
	int flags = VU_OPEN_RDWR;
	struct vu_ctx c;
	int ch, err;
	while ((ch = getopt(argc, argv, "n:bh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'b': flags |= VU_OPEN_BACKUP_FOOTER; break;
		default: goto usage;
		}
	}
	if (!name || optind != argc)
		goto usage;
	if ((err = vu_open(&c, name, flags))) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	if (uuid_is_nil(c.footer.uuid))
		uuid_generate(c.footer.uuid);
	if ((err = vu_write_footer(&c)))
		printf("error writing footer: %d\n", err);
	vu_close(&c);
	return err;
usage:
	printf("options: <-n name> <-b use the back-up footer> [-h help]\n");
	return -EINVAL;
}

static int zero_bat(struct vu_ctx *c)
{
	int err = vu_get_bat(c);
	if (!err && vu_has_batmap(c))
		err = vu_get_batmap(c);
	if (err)
		return err;
	size_t n = c->header.max_bat_entries;
	if (c->bat_entries < n)   /* a table past the end of the file: never rewritten */
		return -EINVAL;
	uint8_t *raw = malloc(round_up(n * 4, SECTOR) + 1);
	if (!raw)
		return -ENOMEM;
	memset(raw, 0xff, round_up(n * 4, SECTOR));
	for (size_t i = 0; i < n; i++)
		c->bat[i] = BAT_UNUSED;
	err = vu_pwrite(c, raw, round_up(n * 4, SECTOR), c->header.table_offset);
	free(raw);
	if (err || !c->batmap_map)
		return err;
	uint8_t hdr[SECTOR];
	memset(c->batmap_map, 0, (size_t)c->batmap.map_sectors * SECTOR);
	c->batmap.checksum = vu_batmap_checksum(c);
	batmap_header_encode(hdr, &c->batmap);
	err = vu_pwrite(c, c->batmap_map, (size_t)c->batmap.map_sectors * SECTOR,
	                c->batmap.map_offset);
	return err ? err : vu_pwrite(c, hdr, SECTOR, c->header.table_offset +
	                             round_up(n * 4, SECTOR));
}

static int set_phys_size(struct vu_ctx *c, int64_t size)
{
	uint64_t end;
	int err = vu_end_of_data(c, &end);
	if (err)
		return err;
	if (size < 0 || (uint64_t)size < end + FOOTER_SIZE || (c->is_block && (uint64_t)size > c->size))
		return -EINVAL;
	uint8_t buf[FOOTER_SIZE];
	c->footer.checksum = footer_checksum(&c->footer);
	footer_encode(buf, &c->footer);
	if ((err = vu_pwrite(c, buf, sizeof buf, (uint64_t)size - FOOTER_SIZE)))
		return err;
	if (!c->is_block && ftruncate(c->fd, size) < 0)
		return -errno;
	return 0;
}

static int change_parent(const char *name, const char *newparent, bool raw)
{
	char cpath[PATH_MAX];
	if (!realpath(newparent, cpath))
		snprintf(cpath, sizeof cpath, "%s", newparent);
	if ((raw ? vhd_reparent_raw(name, cpath) : vhd_reparent(name, cpath)) == 0)
		return 0;
	int err = vu_lib_errno();
	printf("failed to set parent to '%s': %d\n", cpath, err);
	return err;
}

int vu_modify(int argc, char **argv)
{
	const char *name = NULL, *newparent = NULL;
	bool size = false, kill_data = false, raw = false;
	int64_t newsize = 0;
	struct vu_ctx c;
	int ch, err = 0;
	while ((ch = getopt(argc, argv, "n:s:p:mzh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 's':
			size = true;
			errno = 0;
			newsize = strtoll(optarg, NULL, 10);
			if (errno) {
				fprintf(stderr, "Invalid size '%s'\n", optarg);
				goto usage;
			}
			break;
		case 'p': newparent = optarg; break;
		case 'm': raw = true; break;
		case 'z': kill_data = true; break;
		default: goto usage;
		}
	}
	if (!name || optind != argc)
		goto usage;
	if ((err = vu_open(&c, name, VU_OPEN_RDWR))) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	if (kill_data) {
		err = vu_dynamic(&c) ? zero_bat(&c) : -ENOSYS;
		if (!err && !c.is_block)
			err = vu_write_footer(&c);
		if (err)
			printf("failed to zero VHD: %d\n", err);
	}
	if (size && (err = set_phys_size(&c, newsize)))
		printf("failed to set physical size to %" PRId64 ": %d\n", newsize, err);
	vu_close(&c);
	if (newparent)
		err = change_parent(name, newparent, raw);
	return err;
usage:
	printf("*** Dangerous operations, use with care ***\n");
	printf("options: <-n name> [-p NEW_PARENT set parent [-m raw]] "
	       "[-s NEW_SIZE set size] [-z zero (kill data)] [-h help]\n");
	return -EINVAL;
}
