/* vhdutil-scan.c - `vhd-util scan`: list VHDs, or print them as a forest.
 *
 * Unlike blktap, -f lists files in sorted order (blktap's order is the
 * directory's, which is arbitrary).  LVM volume groups (-l) are not
 * scanned: give the volumes' device paths as file names instead. */
#include <errno.h>
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

struct scan {
	int flags;
	char **targets;
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

static void scan_error(struct scan *s, const char *file, int err)
{
	struct image im = { .name = (char *)file, .error = err,
	                    .message = "failure scanning target" };
	print_image(s, &im, 0);
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
	int err = vu_get_batmap(c);
	if (err)
		return err;
	im->marker = c->batmap.marker;
	im->keyhash_cookie = c->batmap.keyhash[0];
	memcpy(im->hash, c->batmap.keyhash + 33, 32);
	return 0;
}

/* Fills IM for TARGET; returns 0 or the error recorded in IM. */
static int scan_target(struct scan *s, const char *target, struct image *im, struct vu_ctx *c)
{
	struct stat st;
	int err;
	if (s->flags & SCAN_PRETTY) {
		im->name = realpath(target, NULL);
		if (!im->name) {
			im->error = -errno;
			im->name = strdup(target);
			im->message = "resolving name";
			return im->error;
		}
	} else {
		im->name = strdup(target);
	}
	if ((err = vu_open(c, target, VU_OPEN_IGNORE_DISABLED))) {
		im->message = "opening file";
		return im->error = err;
	}
	im->size = stat(target, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : c->size;
	im->capacity = c->footer.curr_size;
	im->hidden = c->footer.hidden;
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

static int add_target(struct scan *s, const char *file)
{
	for (size_t i = 0; i < s->ntargets; i++)
		if (!strcmp(base(s->targets[i]), base(file)))
			return 0;
	struct stat st;
	if (stat(file, &st) < 0)
		return -errno;
	char **t = realloc(s->targets, (s->ntargets + 1) * sizeof *t);
	if (!t)
		return -ENOMEM;
	s->targets = t;
	if (!(t[s->ntargets] = strdup(file)))
		return -ENOMEM;
	s->ntargets++;
	return 0;
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

static int scan_targets(struct scan *s)
{
	int err = 0, ret = 0;
	for (size_t t = 0; t < s->ntargets; t++) {
		struct image im = { 0 };
		struct vu_ctx c = { .fd = -1 };
		err = scan_target(s, s->targets[t], &im, &c);
		if (err)
			ret = -EAGAIN;
		if (!im.error && (s->flags & SCAN_PRETTY)) {
			im.parent_image = NULL;
			if ((s->flags & SCAN_PARENTS) && im.parent) {
				int e = add_target(s, im.parent);
				if (e)
					scan_error(s, im.parent, e);
			}
			keep_image(s, &im);
		} else {
			print_image(s, &im, 0);
			if ((s->flags & SCAN_PARENTS) && im.parent) {
				int e = add_target(s, im.parent);
				if (e)
					scan_error(s, im.parent, e);
			}
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

static int find_targets(struct scan *s, const char *filter, int n, char **names)
{
	glob_t g = { 0 };
	int err = 0;
	if (filter) {
		int r = glob(filter, GLOB_BRACE, NULL, &g);
		if (r == GLOB_NOSPACE || r == GLOB_ABORTED) {
			err = r == GLOB_NOSPACE ? -ENOMEM : -EIO;
			scan_error(s, filter, err);
			return err;
		}
	}
	for (size_t i = 0; !err && i < g.gl_pathc + (size_t)n; i++) {
		const char *f = i < g.gl_pathc ? g.gl_pathv[i] : names[i - g.gl_pathc];
		struct stat st;
		char **t = realloc(s->targets, (s->ntargets + 1) * sizeof *t);
		if (!t) {
			err = -ENOMEM;
			break;
		}
		s->targets = t;
		if (stat(f, &st) < 0) {
			scan_error(s, f, -errno);
			if (!(s->flags & SCAN_NOFAIL))
				err = -errno;
			continue;
		}
		if (!(t[s->ntargets] = strdup(f)))
			err = -ENOMEM;
		else
			s->ntargets++;
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
		free(s.targets[i]);
	free(s.targets);
	return (s.flags & SCAN_NOFAIL) ? 0 : err;
usage:
	printf("usage: [OPTIONS] FILES\n"
	       "options: [-m match filter] [-f fast] [-c continue on failure] "
	       "[-l LVM volume] [-p pretty print] [-a scan parents] "
	       "[-v verbose] [-h help] [-M show markers]\n");
	return err;
}
