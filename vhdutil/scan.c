/* scan.c - `vhd-util scan`: list VHDs, or print them as a forest.
 *
 * As blktap's: -f opens fast (the footer copy at offset 0 and the header),
 * -a adds each parent found, a raw parent (nil parent UUID) as a raw target
 * (capacity and size the file's, hidden=1, no parent), -M reads the batmap's
 * marker and key hash or, without a batmap, the file's extended attributes.
 * Deliberate differences: -f lists files in sorted order (blktap's order is
 * the directory's, which is arbitrary) and lists fixed VHDs (blktap's fast
 * open fails on them with -22); with -c a name that cannot be stat'ed is
 * reported once (blktap also prints an empty "vhd=" line for it); LVM
 * volume groups (-l) are not scanned: give the volumes' device paths as file
 * names instead. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdutil.h"

#define SCAN_FAST 0x01
#define SCAN_PRETTY 0x02
#define SCAN_NOFAIL 0x08
#define SCAN_VERBOSE 0x10
#define SCAN_PARENTS 0x20
#define SCAN_MARKERS 0x40

struct image {
	char *name, *parent;
	uint64_t capacity, size;
	unsigned hidden, marker;
	uint8_t keyhash_cookie, hash[32];
	int error;
	const char *message;
	struct image *parent_image;
	size_t *children, nchildren;
	bool printed;
};

#define MAX_NAME_LEN 1024   /* blktap's VHD_MAX_NAME_LEN */

struct target {
	char *name;
	bool raw;        /* a raw parent found by -a: listed, never opened */
	uint64_t size;   /* the file's size when it was added */
};

struct scan {
	int flags;
	struct target *targets;
	size_t ntargets;
	struct image *images;   /* pretty mode: collected, printed at the end */
	size_t nimages;
};

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static void print_image(const struct scan *s, const struct image *im, int tab)
{
	const char *name = im->name, *parent = im->parent ? im->parent : "none";
	const char *pmsg = (s->flags & SCAN_PRETTY) && im->parent && !im->parent_image
	                   ? " (not found in scan)" : "";
	if (!(s->flags & SCAN_VERBOSE)) {
		name = base(im->name);
		if (im->parent)
			parent = base(im->parent);
	}
	if (im->error) {
		printf("%*svhd=%s scan-error=%d error-message='%s'\n", tab, tab ? " " : "", im->name,
		       im->error, im->message);
	} else if (!(s->flags & SCAN_MARKERS)) {
		printf("%*svhd=%s capacity=%" PRIu64 " size=%" PRIu64 " hidden=%u parent=%s%s\n", tab,
		       tab ? " " : "", name, im->capacity, im->size, im->hidden, parent, pmsg);
	} else {
		char hash[65] = "";
		for (int i = 0; im->keyhash_cookie && i < 32; i++)
			sprintf(hash + 2 * i, "%02x", im->hash[i]);
		printf("%*svhd=%s capacity=%" PRIu64 " size=%" PRIu64 " hidden=%u marker=%u "
		       "keyhash=%s parent=%s%s\n", tab, tab ? " " : "", name, im->capacity, im->size,
		       im->hidden, im->marker, hash, parent, pmsg);
	}
}

static void scan_error(const char *file, int err)
{
	printf("vhd=%s scan-error=%d error-message='failure scanning target'\n", file, err);
}

/* glob's error callback, as blktap's: report the directory with the
 * (positive) errno and stop the glob. */
static int glob_error(const char *path, int err)
{
	scan_error(path, err);
	return err;
}

static int get_parent(struct scan *s, struct vu_ctx *c, struct image *im)
{
	if (s->flags & SCAN_FAST) {
		if (!vu_parent_name(&c->header, &im->parent))
			return 0;
	} else if (!vu_parent_get(c, &im->parent)) {
		return 0;
	}
	/* as blktap: the MacX locator, else W2ru, else the first one there is */
	const struct vhd_locator *loc = NULL;
	for (int i = 0; i < LOC_COUNT; i++) {
		const struct vhd_locator *l = &c->header.loc[i];
		if (l->code == LOC_MACX) {
			loc = l;
			break;
		}
		if (l->code == LOC_W2RU || (!loc && l->code))
			loc = l;
	}
	return loc ? vu_locator_read(c, loc, &im->parent) : -EINVAL;
}

static int get_markers(struct vu_ctx *c, struct image *im)
{
	uint8_t marker, keyhash[65];
	if (!vu_has_batmap(c)) {
		int err = vu_get_xattr(c->fd, MARKER_XATTR, &marker, 1);
		if (!err)
			err = vu_get_xattr(c->fd, KEYHASH_XATTR, keyhash, sizeof keyhash);
		if (err)
			return err;
		im->marker = marker;
		im->keyhash_cookie = keyhash[0];
		memcpy(im->hash, keyhash + 33, 32);
		return 0;
	}
	int err = vu_get_batmap(c);
	if (err)
		return err;
	im->marker = c->batmap.marker;
	im->keyhash_cookie = c->batmap.keyhash[0];
	memcpy(im->hash, c->batmap.keyhash + 33, 32);
	return 0;
}

/* -f reads the footer copy at offset 0, which a fixed VHD lacks: vhdkit
 * then opens it normally (blktap reports -22). */
static int open_target(struct scan *s, const char *name, struct vu_ctx *c)
{
	if (!(s->flags & SCAN_FAST))
		return vu_open(c, name, VU_OPEN_IGNORE_DISABLED);
	int err = vu_open(c, name, VU_OPEN_IGNORE_DISABLED | VU_OPEN_FAST);
	if (err != -EINVAL || vu_open(c, name, VU_OPEN_IGNORE_DISABLED))
		return err;
	if (c->footer.type == VHD_TYPE_FIXED)
		return 0;
	vu_close(c);
	return err;
}

static int image_name(struct scan *s, const struct target *t, struct image *im)
{
	if (!(s->flags & SCAN_PRETTY)) {
		im->name = strdup(t->name);
		return 0;
	}
	im->name = realpath(t->name, NULL);
	if (im->name)
		return 0;
	im->error = -errno;
	im->name = strdup(t->name);
	im->message = "resolving name";
	return im->error;
}

/* Fills IM for target T; returns 0 or the error recorded in IM. */
static int scan_target(struct scan *s, const struct target *t, struct image *im,
                       struct vu_ctx *c)
{
	int err, hidden;
	if (image_name(s, t, im))
		return im->error;
	im->size = t->size;
	if (t->raw) {   /* as blktap: not opened, hidden, its own capacity */
		im->capacity = t->size;
		im->hidden = 1;
		return 0;
	}
	if ((err = open_target(s, t->name, c))) {
		im->message = "opening file";
		return im->error = err;
	}
	if (c->is_block)
		im->size = c->size;
	im->capacity = c->footer.curr_size;
	if ((err = vu_hidden(c, &hidden))) {
		im->message = "checking 'hidden' field";
		return im->error = err;
	}
	im->hidden = (uint8_t)hidden;
	if ((s->flags & SCAN_MARKERS) && (err = get_markers(c, im))) {
		im->message = "checking markers";
		return im->error = err;
	}
	if (c->footer.type == VHD_TYPE_DIFF && (err = get_parent(s, c, im))) {
		im->message = "getting parent";
		return im->error = err;
	}
	return 0;
}

/* A block device's size (blktap takes st_size, 0: vhdkit reads block
 * devices as files of the device's size). */
static uint64_t block_size_of(const char *dev)
{
	uint64_t size = 0;
	bool blk;
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fd_size(fd, dev, &size, &blk))
		size = 0;
	if (fd >= 0)
		close(fd);
	return size;
}

/* Appends FILE (stat'ed now, as blktap's target) to the targets. */
static int push_target(struct scan *s, const char *file, bool raw)
{
	struct stat st;
	if (stat(file, &st) < 0)
		return -errno;
	if (strlen(file) >= MAX_NAME_LEN)
		return -ENAMETOOLONG;
	struct target *t = realloc(s->targets, (s->ntargets + 1) * sizeof *t);
	if (!t)
		return -ENOMEM;
	s->targets = t;
	t += s->ntargets;
	t->raw = raw;
	t->size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode))
		t->size = block_size_of(file);
	if (!(t->name = strdup(file)))
		return -ENOMEM;
	s->ntargets++;
	return 0;
}

/* -a: a parent is added once (by base name, as blktap); a nil parent UUID
 * makes it a raw target. */
static int add_target(struct scan *s, const char *file, bool raw)
{
	for (size_t i = 0; i < s->ntargets; i++)
		if (!strcmp(base(s->targets[i].name), base(file)))
			return 0;
	return push_target(s, file, raw);
}

static void keep_image(struct scan *s, struct image *im)
{
	for (size_t i = 0; i < s->nimages; i++)
		if (!strcmp(s->images[i].name, im->name))
			goto drop;
	struct image *n = realloc(s->images, (s->nimages + 1) * sizeof *n);
	if (n) {
		s->images = n;
		s->images[s->nimages++] = *im;
		return;
	}
drop:
	free(im->name);
	free(im->parent);
}

static void add_parent(struct scan *s, const struct vu_ctx *c, const struct image *im)
{
	if (!(s->flags & SCAN_PARENTS) || !im->parent)
		return;
	int e = add_target(s, im->parent, uuid_is_nil(c->header.parent_uuid));
	if (e)
		scan_error(im->parent, e);
}

static int scan_targets(struct scan *s)
{
	int err = 0, ret = 0;
	for (size_t t = 0; t < s->ntargets; t++) {
		struct image im = { 0 };
		struct vu_ctx c = { .fd = -1 };
		err = scan_target(s, &s->targets[t], &im, &c);
		if (err)
			ret = -EAGAIN;
		if (!im.error && (s->flags & SCAN_PRETTY)) {
			add_parent(s, &c, &im);
			keep_image(s, &im);
		} else {
			print_image(s, &im, 0);
			add_parent(s, &c, &im);
			free(im.name);
			free(im.parent);
		}
		if (c.fd >= 0)
			vu_close(&c);
		if (err && !(s->flags & SCAN_NOFAIL))
			break;
	}
	return (s->flags & SCAN_NOFAIL) ? ret : err;
}

static int cmp_image(const void *a, const void *b)
{
	return strcmp(((const struct image *)a)->name, ((const struct image *)b)->name);
}

static void print_tree(struct scan *s, struct image *im, int depth)
{
	print_image(s, im, depth * 3);
	im->printed = true;
	for (int hidden = 0; hidden < 2; hidden++)
		for (size_t k = 0; k < im->nchildren; k++) {
			struct image *child = &s->images[im->children[k]];
			if (!child->printed && (int)(child->hidden != 0) == hidden)
				print_tree(s, child, depth + 1);
		}
}

static void print_forest(struct scan *s)
{
	if (s->nimages)
		qsort(s->images, s->nimages, sizeof *s->images, cmp_image);
	for (size_t i = 0; i < s->nimages; i++) {
		struct image *im = &s->images[i], key = { .name = im->parent };
		if (!im->parent)
			continue;
		struct image *p = bsearch(&key, s->images, s->nimages, sizeof key, cmp_image);
		if (!p)
			continue;
		size_t *ch = realloc(p->children, (p->nchildren + 1) * sizeof *ch);
		if (!ch)
			continue;
		im->parent_image = p;
		p->children = ch;
		p->children[p->nchildren++] = i;
	}
	for (size_t i = 0; i < s->nimages; i++)
		if (!s->images[i].parent_image && s->images[i].hidden && !s->images[i].printed)
			print_tree(s, &s->images[i], 0);
	for (size_t i = 0; i < s->nimages; i++)
		if (!s->images[i].parent_image && !s->images[i].printed)
			print_tree(s, &s->images[i], 0);
	for (size_t i = 0; i < s->nimages; i++)
		if (!s->images[i].printed)
			print_tree(s, &s->images[i], 0);
	for (size_t i = 0; i < s->nimages; i++) {
		free(s->images[i].name);
		free(s->images[i].parent);
		free(s->images[i].children);
	}
	free(s->images);
}

/* blktap's glob: GLOB_BRACE, and with -f (fast, not -p) GLOB_NOSORT, so
 * that -f lists in directory order; errors reported through glob_error; no
 * match is an error only when glob left an errno (a name without wildcards
 * that does not exist: -ENOENT). */
static int glob_targets(const char *filter, bool fast, glob_t *g)
{
	errno = 0;
	int r = glob(filter, GLOB_BRACE | (fast ? GLOB_NOSORT : 0), glob_error, g);
	int err = r == GLOB_NOSPACE ? -ENOMEM : r == GLOB_ABORTED ? -EIO
	          : r == GLOB_NOMATCH ? -errno : 0;
	if (err)
		scan_error(filter, err);
	return err;
}

static int find_targets(struct scan *s, const char *filter, int n, char **names)
{
	glob_t g = { 0 };
	int err = filter ? glob_targets(filter, s->flags & SCAN_FAST, &g) : 0;
	for (size_t i = 0; !err && i < g.gl_pathc + (size_t)n; i++) {
		const char *f = i < g.gl_pathc ? g.gl_pathv[i] : names[i - g.gl_pathc];
		int e = push_target(s, f, false);
		if (e == -ENOMEM)
			err = e;
		else if (e) {
			scan_error(f, e);
			if (!(s->flags & SCAN_NOFAIL))
				err = e;
		}
	}
	if (filter)
		globfree(&g);
	return err;
}

int vu_scan(int argc, char **argv)
{
	struct scan s = { 0 };
	const char *filter = NULL;
	int ch, err;
	while ((ch = getopt(argc, argv, "m:fcl:pavMh")) != -1) {
		switch (ch) {
		case 'm': filter = optarg; break;
		case 'f': s.flags |= SCAN_FAST; break;
		case 'c': s.flags |= SCAN_NOFAIL; break;
		case 'l':
			fprintf(stderr, "lvm_scan_vg failed %d\n", -ENOSYS);
			return -ENOSYS;
		case 'p': s.flags |= SCAN_PRETTY; break;
		case 'a': s.flags |= SCAN_PARENTS; break;
		case 'v': s.flags |= SCAN_VERBOSE; break;
		case 'M': s.flags |= SCAN_MARKERS; break;
		case 'h': err = 0; goto usage;
		default: err = -EINVAL; goto usage;
		}
	}
	if (!filter && optind == argc) {
		err = -EINVAL;
		goto usage;
	}
	if (s.flags & SCAN_PRETTY)
		s.flags &= ~SCAN_FAST;
	err = find_targets(&s, filter, argc - optind, argv + optind);
	if (err) {
		fprintf(stderr, "scan failed: %d. Check syslog for details\n", err);
	} else if (s.ntargets) {
		err = scan_targets(&s);
		if (s.flags & SCAN_PRETTY)
			print_forest(&s);
	}
	for (size_t i = 0; i < s.ntargets; i++)
		free(s.targets[i].name);
	free(s.targets);
	return (s.flags & SCAN_NOFAIL) ? 0 : err;
usage:
	printf("usage: [OPTIONS] FILES\n"
	       "options: [-m match filter] [-f fast] [-c continue on failure] "
	       "[-l LVM volume] [-p pretty print] [-a scan parents] "
	       "[-v verbose] [-h help] [-M show markers]\n");
	return err;
}
