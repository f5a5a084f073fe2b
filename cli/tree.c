/* tree.c - `vhd tree DIR`: every VHD of a directory as a forest.
 *
 * Each file is opened alone (no parent, lax) and linked to its parent by
 * the parent UUID of its header; when several files carry that UUID (a
 * copy), the one a locator or the header's parent name designates wins.
 * A differencing disk whose parent is not in DIR is a root of its own
 * tree, marked; parent loops are cut and marked. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd tree [--json] DIR\n"
	"\n"
	"Show every VHD of DIR (files named *.vhd, and any other file that ends\n"
	"in a VHD footer; names starting with '.' are skipped) as a forest:\n"
	"each differencing disk under its parent, found by the parent UUID.\n"
	"Each line gives the type, the virtual size, the file size, the hidden\n"
	"flag and the depth of the chain down to that file.  A disk whose\n"
	"parent is not in DIR is shown as a root with the reason (\"raw parent:\n"
	"NAME\" when its parent is a raw image, blktap's nil parent UUID); files that\n"
	"cannot be read are listed at the end with the error.  Entries are in\n"
	"name order.\n"
	"\n"
	"Options:\n"
	"  -j, --json   print one JSON object: directory, trees (nested\n"
	"               children), unreadable\n"
	"  -h, --help   this text\n"
	"\n"
	"Example:\n"
	"  vhd tree /var/run/sr-mount/SR-UUID\n";

struct node {
	char *name, *path;
	char *error;                /* unreadable: why */
	struct vhd_info info;       /* path and parent_name are copies below */
	char *parent_name;
	char **locators;            /* resolved real paths of the parent locators */
	int nlocators;
	char real[PATH_MAX];
	int parent;                 /* index, or -1 */
	int *children, nchildren;
	const char *note;           /* why a differencing root has no parent here */
	const char *note_name;      /* the parent it names, or closes a loop with */
	char *chain_error;          /* orphan: why its chain cannot be opened */
	int depth;                  /* 0 = unknown */
	bool visited;
	bool raw_parent;            /* nil parent UUID: the parent is a raw image */
};

struct forest {
	const char *dir;
	struct node *nodes;
	int n;
};

static bool cookie_at(int fd, off_t off)
{
	char buf[8];
	return off >= 0 && pread(fd, buf, sizeof buf, off) == (ssize_t)sizeof buf &&
	       !memcmp(buf, "conectix", 8);
}

/* A primary footer at the end, or a dynamic disk's copy at the start. */
static bool looks_like_vhd(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	bool yes = !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size >= 512 &&
	           (cookie_at(fd, (st.st_size & ~(off_t)511) - 512) || cookie_at(fd, 0));
	close(fd);
	return yes;
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct node *)a)->name, ((const struct node *)b)->name);
}

static bool wanted(const char *dir, const char *name)
{
	if (name[0] == '.')
		return false;
	if (has_suffix(name, ".vhd"))
		return true;
	char *p = join(dir, name);
	bool yes = p && looks_like_vhd(p);
	free(p);
	return yes;
}

static int list_dir(struct forest *f)
{
	DIR *d = opendir(f->dir);
	if (!d) {
		warnx_("tree: %s: %s", f->dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	int cap = 0;
	while ((e = readdir(d))) {
		if (!wanted(f->dir, e->d_name))
			continue;
		if (f->n == cap) {
			cap = cap ? 2 * cap : 64;
			struct node *nn = realloc(f->nodes, (size_t)cap * sizeof *nn);
			if (!nn)
				break;
			f->nodes = nn;
		}
		struct node *n = &f->nodes[f->n++];
		memset(n, 0, sizeof *n);
		n->name = strdup(e->d_name);
		n->path = join(f->dir, e->d_name);
		n->parent = -1;
	}
	closedir(d);
	for (int i = 0; i < f->n; i++)
		if (!f->nodes[i].name || !f->nodes[i].path) {
			warnx_("tree: out of memory");
			return -1;
		}
	if (f->n)
		qsort(f->nodes, (size_t)f->n, sizeof *f->nodes, cmp_name);
	return 0;
}

static void read_locators(struct node *n, vhd_t *v, const char *dir)
{
	n->locators = calloc(8, sizeof *n->locators);
	for (int i = 0; n->locators && i < 8; i++) {
		struct vhd_locator_info l;
		if (vhd_get_locator(v, i, &l) || !l.name)
			continue;
		char *p = l.name[0] == '/' ? strdup(l.name) : join(dir, l.name);
		char real[PATH_MAX], *r;
		if (p && realpath(p, real) && (r = strdup(real)))
			n->locators[n->nlocators++] = r;
		free(p);
		free(l.name);
	}
}

static void read_node(struct node *n, const char *dir)
{
	vhd_t *v = vhd_open(n->path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT | VHD_OPEN_LAX);
	if (!v) {
		n->error = strdup(vhd_get_error());
		return;
	}
	vhd_get_info(v, &n->info);
	n->info.path = n->path;
	if (n->info.parent_name)
		n->parent_name = strdup(n->info.parent_name);
	n->info.parent_name = n->parent_name;
	n->info.parent_path = NULL;
	if (!realpath(n->path, n->real))
		n->real[0] = 0;
	if (n->info.type == VHD_TYPE_DIFF)
		read_locators(n, v, dir);
	vhd_close(v);
}

static bool designates(const struct node *child, const struct node *cand)
{
	for (int i = 0; i < child->nlocators; i++)
		if (!strcmp(child->locators[i], cand->real))
			return true;
	return false;
}

/* The node whose UUID is C's parent UUID; among several, the one C's
 * locators, else its parent name, point at; else the first by name. */
static int find_parent(const struct forest *f, const struct node *c)
{
	int first = -1, named = -1;
	for (int i = 0; i < f->n; i++) {
		const struct node *p = &f->nodes[i];
		if (p->error || memcmp(p->info.uuid, c->info.parent_uuid, 16))
			continue;
		if (designates(c, p))
			return i;
		if (named < 0 && c->parent_name && !strcmp(c->parent_name, p->name))
			named = i;
		if (first < 0)
			first = i;
	}
	return named >= 0 ? named : first;
}

static int add_child(struct node *p, int child)
{
	int *c = realloc(p->children, (size_t)(p->nchildren + 1) * sizeof *c);
	if (!c)
		return -1;
	p->children = c;
	p->children[p->nchildren++] = child;
	return 0;
}

static void remove_child(struct node *p, int child)
{
	for (int i = 0; i < p->nchildren; i++)
		if (p->children[i] == child) {
			memmove(p->children + i, p->children + i + 1,
			        (size_t)(p->nchildren - i - 1) * sizeof *p->children);
			p->nchildren--;
			return;
		}
}

static int link_nodes(struct forest *f)
{
	for (int i = 0; i < f->n; i++) {
		struct node *c = &f->nodes[i];
		if (c->error || c->info.type != VHD_TYPE_DIFF)
			continue;
		if (raw_parent_of(c->info.type, c->info.parent_uuid)) {
			c->raw_parent = true;
			c->note = "raw parent";
			c->note_name = c->parent_name;
			continue;
		}
		c->parent = find_parent(f, c);
		if (c->parent < 0) {
			c->note = "parent not in this directory";
			c->note_name = c->parent_name;
		}
		else if (add_child(&f->nodes[c->parent], i))
			return -1;
	}
	return 0;
}

/* Depth of a differencing root whose parent is elsewhere: open its chain. */
static int outside_depth(struct node *n)
{
	vhd_t *v = vhd_open(n->path, VHD_OPEN_RDONLY);
	if (!v) {
		n->chain_error = strdup(vhd_get_error());
		n->note = "parent missing";
		return 0;
	}
	int d = (int)vhd_chain_depth(v);
	vhd_close(v);
	return d;
}

static void visit(struct forest *f, int i, int depth)
{
	struct node *n = &f->nodes[i];
	n->visited = true;
	n->depth = depth;
	for (int k = 0; k < n->nchildren; k++)
		visit(f, n->children[k], depth ? depth + 1 : 0);
}

static bool on_cycle(const struct forest *f, int i)
{
	int p = f->nodes[i].parent;
	for (int steps = 0; p >= 0 && steps <= f->n; steps++, p = f->nodes[p].parent)
		if (p == i)
			return true;
	return false;
}

/* Roots: disks without parent and those whose parent is not here; then
 * cut every parent loop at its first member by name. */
static void assign_depths(struct forest *f)
{
	for (int i = 0; i < f->n; i++) {
		struct node *n = &f->nodes[i];
		if (n->error || n->parent >= 0)
			continue;
		visit(f, i, n->info.type == VHD_TYPE_DIFF ? outside_depth(n) : 1);
	}
	for (int i = 0; i < f->n; i++) {
		struct node *n = &f->nodes[i];
		if (n->error || n->visited || !on_cycle(f, i))
			continue;
		remove_child(&f->nodes[n->parent], i);
		n->note = "parent loop";
		n->note_name = f->nodes[n->parent].name;
		n->parent = -1;
		visit(f, i, 0);
	}
}

/* ---- output -------------------------------------------------------- */

static void print_line(const struct node *n, const char *prefix, const char *branch)
{
	char v[32], s[32], d[16] = "?";
	if (n->depth)
		snprintf(d, sizeof d, "%d", n->depth);
	printf("%s%s%s  %s %s, file %s%s, depth %s", prefix, branch, n->name,
	       type_name(n->info.type), human_size(n->info.virtual_size, v, sizeof v),
	       human_size(n->info.file_size, s, sizeof s), n->info.hidden ? ", hidden" : "", d);
	if (n->note)
		printf("  (%s: %s)", n->note, n->note_name ? n->note_name : "?");
	if (n->chain_error)
		printf(" [%s]", n->chain_error);
	putchar('\n');
}

static void print_subtree(const struct forest *f, int i, const char *prefix, bool last)
{
	const struct node *n = &f->nodes[i];
	print_line(n, prefix, last ? "└── " : "├── ");
	size_t len = strlen(prefix) + 8;
	char *sub = malloc(len);
	if (!sub)
		return;
	snprintf(sub, len, "%s%s", prefix, last ? "    " : "│   ");
	for (int k = 0; k < n->nchildren; k++)
		print_subtree(f, n->children[k], sub, k == n->nchildren - 1);
	free(sub);
}

static bool is_root(const struct node *n)
{
	return !n->error && n->parent < 0;
}

static void print_text(const struct forest *f)
{
	int roots = 0, last = -1, bad = 0;
	for (int i = 0; i < f->n; i++)
		if (is_root(&f->nodes[i])) {
			roots++;
			last = i;
		}
	printf("%s\n", f->dir);
	for (int i = 0; i < f->n; i++)
		if (is_root(&f->nodes[i]))
			print_subtree(f, i, "", i == last);
	for (int i = 0; i < f->n; i++)
		if (f->nodes[i].error) {
			printf("unreadable: %s: %s\n", f->nodes[i].name, f->nodes[i].error);
			bad++;
		}
	printf("\n%d file(s), %d tree(s), %d unreadable\n", f->n, roots, bad);
}

static struct json_object *node_json(const struct forest *f, int i)
{
	const struct node *n = &f->nodes[i];
	char u[37];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(n->name));
	json_object_object_add(o, "path", json_object_new_string(n->path));
	json_object_object_add(o, "type", json_object_new_string(type_name(n->info.type)));
	json_object_object_add(o, "virtual_size", json_object_new_uint64(n->info.virtual_size));
	json_object_object_add(o, "file_size", json_object_new_uint64(n->info.file_size));
	json_object_object_add(o, "hidden", json_object_new_boolean(n->info.hidden));
	json_object_object_add(o, "depth", n->depth ? json_object_new_int(n->depth) : NULL);
	uuid_string(n->info.uuid, u);
	json_object_object_add(o, "uuid", json_object_new_string(u));
	if (n->info.type == VHD_TYPE_DIFF) {
		uuid_string(n->info.parent_uuid, u);
		json_object_object_add(o, "parent_uuid", json_object_new_string(u));
		json_object_object_add(o, "parent_name",
		                       json_object_new_string(n->parent_name ? n->parent_name : ""));
		json_object_object_add(o, "parent", n->parent >= 0
		                       ? json_object_new_string(f->nodes[n->parent].name) : NULL);
	}
	if (n->raw_parent)
		json_object_object_add(o, "raw_parent",
		                       json_object_new_string(n->parent_name ? n->parent_name : ""));
	if (n->note && (!n->raw_parent || n->chain_error))
		json_object_object_add(o, "problem", json_object_new_string(n->note));
	if (n->chain_error)
		json_object_object_add(o, "chain_error", json_object_new_string(n->chain_error));
	struct json_object *kids = json_object_new_array();
	for (int k = 0; k < n->nchildren; k++)
		json_object_array_add(kids, node_json(f, n->children[k]));
	json_object_object_add(o, "children", kids);
	return o;
}

static void print_json(const struct forest *f)
{
	struct json_object *o = json_object_new_object(), *trees = json_object_new_array(),
	                   *bad = json_object_new_array();
	for (int i = 0; i < f->n; i++) {
		const struct node *n = &f->nodes[i];
		if (is_root(n))
			json_object_array_add(trees, node_json(f, i));
		if (!n->error)
			continue;
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "name", json_object_new_string(n->name));
		json_object_object_add(e, "path", json_object_new_string(n->path));
		json_object_object_add(e, "error", json_object_new_string(n->error));
		json_object_array_add(bad, e);
	}
	json_object_object_add(o, "directory", json_object_new_string(f->dir));
	json_object_object_add(o, "trees", trees);
	json_object_object_add(o, "unreadable", bad);
	json_print(o);
}

static void free_forest(struct forest *f)
{
	for (int i = 0; i < f->n; i++) {
		struct node *n = &f->nodes[i];
		for (int k = 0; k < n->nlocators; k++)
			free(n->locators[k]);
		free(n->locators);
		free(n->children);
		free(n->name);
		free(n->path);
		free(n->error);
		free(n->parent_name);
		free(n->chain_error);
	}
	free(f->nodes);
}

int cmd_tree(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (argc - optind != 1)
		return usage(help, true);
	struct forest f = { .dir = argv[optind] };
	int rc = EXIT_FAIL;
	if (list_dir(&f))
		goto out;
	for (int i = 0; i < f.n; i++)
		read_node(&f.nodes[i], f.dir);
	if (link_nodes(&f)) {
		warnx_("tree: out of memory");
		goto out;
	}
	assign_depths(&f);
	if (json)
		print_json(&f);
	else
		print_text(&f);
	rc = EXIT_OK;
out:
	free_forest(&f);
	return rc;
}
