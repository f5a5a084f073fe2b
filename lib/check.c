/* check.c - vhd_check(): every test of blktap's `vhd-util check`, in its
 * order and with its wording, but going on after a problem so that all of
 * them are reported; plus data checks (VHD_CHECK_DATA) and the ancestors
 * (VHD_CHECK_CHAIN).
 *
 * Nothing read is trusted: a size or offset is compared with the file size
 * before anything is allocated or read with it, so hostile metadata costs
 * at most the file's own size in memory.  Plain checks read the footers,
 * the header, the BAT and the batmap in one read each, never a bitmap. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "internal.h"

#define LIST_CAP 20          /* lines per kind of repeated problem */
#define FOOTER_OF_511 511u   /* blktap tolerates a last footer byte missing */
#define CHS_MAX (65535u << 16 | 16u << 8 | 255u)

enum kind { PROBLEM, FATAL, NOTE };

struct check {
	struct vhd *v;             /* fd, path, sizes, footer, header, BAT, batmap */
	int flags;
	vhd_problem_fn fn;
	void *opaque;
	vhd_progress_fn progress;
	void *progress_opaque;
	int problems;
	uint8_t primary_raw[FOOTER_SIZE];
	uint8_t backup_raw[FOOTER_SIZE];
	bool primary_bad;          /* the primary footer has a fatal problem */
	uint32_t blocks;           /* blocks the virtual size covers */
	bool geometry_noted;
	bool *bad_block;           /* BAT entry unusable for data checks */
	bool batmap_header_found;
	bool batmap_read;          /* the map was read: batmap_sum is its checksum */
	uint32_t batmap_sum;
	char *parent;              /* the verified parent, for VHD_CHECK_CHAIN */
	bool parent_raw;           /* nil parent UUID: PARENT is a raw image */
};

/* ---- reporting --------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void say(struct check *c, enum kind k, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (k != NOTE)
		c->problems++;
	if (!c->fn)
		return;
	struct vhd_problem p = { .path = c->v->path, .message = msg, .fatal = k == FATAL,
	                         .note = k == NOTE };
	c->fn(&p, c->opaque);
}

/* Repeated problems of one kind (blocks, sectors): the first LIST_CAP are
 * listed, the rest summed up in one line by list_end(). */
struct list {
	unsigned shown, more;
};

static bool list_room(struct list *l)
{
	if (l->shown < LIST_CAP) {
		l->shown++;
		return true;
	}
	l->more++;
	return false;
}

static void list_end(struct check *c, const struct list *l, enum kind k, const char *what)
{
	if (l->more)
		say(c, k, "%u more %s (not listed)", l->more, what);
}

/* ---- footers ----------------------------------------------------------- */

static bool valid_type(uint32_t type)
{
	return type == VHD_TYPE_FIXED || type == VHD_TYPE_DYNAMIC || type == VHD_TYPE_DIFF;
}

static enum kind rule_kind(const struct rule *r)
{
	return r->flags & RULE_READ ? FATAL : PROBLEM;
}

static int clock_skip(const struct check *c)
{
	return c->flags & VHD_CHECK_NO_TIME ? RULE_CLOCK : 0;
}

/* A broken footer rule, with what vhdkit adds to blktap's words. */
static void footer_problem(struct check *c, const char *what, const struct vhd_footer *f,
                           const struct rule *r)
{
	switch (r->id) {
	case R_FOOTER_CHECKSUM:
		say(c, FATAL, "%s invalid: %s (0x%08x stored, 0x%08x computed)", what, r->message,
		    f->checksum, footer_checksum(f));
		break;
	case R_FOOTER_TYPE:
		say(c, FATAL, "%s invalid: %s %u", what, r->message, f->type);
		break;
	case R_FOOTER_GEOMETRY:
		if (f->geometry != CHS_MAX) {
			say(c, PROBLEM, "%s invalid: %s", what, r->message);
		} else if (!c->geometry_noted) {   /* once for both footers */
			c->geometry_noted = true;
			say(c, NOTE, "geometry 65535/16/255 (qemu's force_size) exceeds the CHS of "
			    "the size; the size field is used");
		}
		break;
	default:
		say(c, rule_kind(r), "%s invalid: %s", what, r->message);
	}
}

/* Every rule of the footer, in blktap's order.  Returns true when the
 * footer is usable for the rest of the check (cookie and type right),
 * sets *FATAL when vhd_open() would refuse it. */
static bool footer_tests(struct check *c, const struct vhd_footer *f, const char *what,
                         bool *fatal)
{
	struct rule_input in = { .footer = f, .now = rule_now() };
	const struct rule *r = NULL;
	*fatal = false;
	while ((r = rule_next_broken(&footer_rules, r, &in, 0, clock_skip(c)))) {
		footer_problem(c, what, f, r);
		*fatal |= (r->flags & RULE_READ) != 0;
		if (r->id == R_FOOTER_COOKIE)
			return false;   /* not a footer: its other fields mean nothing */
	}
	return valid_type(f->type);
}

static bool read_ok(struct check *c, void *buf, size_t len, uint64_t off, const char *what)
{
	if (!read_at(c->v->fd, c->v->path, buf, len, off))
		return true;
	say(c, FATAL, "error reading %s: %d (%s)", what, -vhd_get_errno(), vhd_get_error());
	return false;
}

static void check_fixed(struct check *c)
{
	struct vhd *v = c->v;
	if (v->footer.curr_size > v->footer_offset)
		say(c, FATAL, "fixed disk of %llu bytes does not fit in a file of %llu bytes",
		    (unsigned long long)v->footer.curr_size, (unsigned long long)v->file_size);
	else if (v->footer.curr_size < v->footer_offset)
		say(c, NOTE, "%llu bytes between the end of the disk and the footer",
		    (unsigned long long)(v->footer_offset - v->footer.curr_size));
}

/* The footers differ in nothing but the UUID, hidden flag and checksum, as
 * an interrupted leaf swap leaves them (lib/leaf.c), and its journal agrees. */
static bool swap_between_footers(const struct check *c, const struct vhd_footer *backup)
{
	struct vhd_footer primary, b = *backup;
	uint8_t raw[FOOTER_SIZE];
	footer_decode(&primary, c->primary_raw);
	memcpy(b.uuid, primary.uuid, 16);
	b.hidden = primary.hidden;
	b.checksum = primary.checksum;
	footer_encode(raw, &b);
	return !memcmp(raw, c->primary_raw, FOOTER_SIZE) &&
	       leaf_swap_between_footers(c->v->path, &primary, backup);
}

/* The backup footer at offset 0 of a dynamic disk.  Returns true when it
 * is usable (and may stand in for a bad primary). */
static bool check_backup(struct check *c, bool primary_usable, struct vhd_footer *backup)
{
	bool fatal;
	if (c->v->file_size < FOOTER_SIZE + HEADER_SIZE + FOOTER_SIZE) {
		if (primary_usable)
			say(c, FATAL, "error reading backup footer: -5 (file of %llu bytes)",
			    (unsigned long long)c->v->file_size);
		return false;
	}
	if (!read_ok(c, c->backup_raw, FOOTER_SIZE, 0, "backup footer"))
		return false;
	footer_decode(backup, c->backup_raw);
	if (!primary_usable && memcmp(backup->cookie, "conectix", 8)) {
		say(c, NOTE, "no footer at offset 0 either: not a VHD, or a fixed one whose footer "
		    "is lost");
		return false;
	}
	bool usable = footer_tests(c, backup, "backup footer", &fatal);
	if (primary_usable && usable && !footer_copies_match(c->primary_raw, c->backup_raw)) {
		if (swap_between_footers(c, backup))
			say(c, NOTE, "primary and backup footers differ only in the UUID a leaf "
			    "swap is writing (its journal is beside it): vhd recover completes it");
		else
			say(c, PROBLEM, "primary and backup footers do not match");
	}
	return usable && !fatal && backup->type != VHD_TYPE_FIXED;
}

/* Both footers.  Returns true when the check can go on to the header (a
 * dynamic or differencing disk with a usable footer in c->v->footer). */
static bool check_footers(struct check *c)
{
	struct vhd *v = c->v;
	struct vhd_footer backup;
	bool fatal;
	uint64_t size = v->file_size;
	size_t len = size % SECTOR ? FOOTER_OF_511 : FOOTER_SIZE;

	if (size < len) {
		say(c, FATAL, "error calculating end of file: %d (a file of %llu bytes cannot hold "
		    "a VHD footer)", -EINVAL, (unsigned long long)size);
		return false;
	}
	v->footer_offset = size - len;
	memset(c->primary_raw, 0, sizeof c->primary_raw);
	if (!read_ok(c, c->primary_raw, len, v->footer_offset, "primary footer"))
		return false;
	footer_decode(&v->footer, c->primary_raw);
	bool usable = footer_tests(c, &v->footer, "primary footer", &fatal);
	c->primary_bad = fatal || !usable;
	if (usable && v->footer.type == VHD_TYPE_FIXED) {
		if (!fatal)
			check_fixed(c);
		return false;
	}
	bool backup_ok = check_backup(c, usable, &backup);
	if (c->primary_bad && backup_ok) {
		v->footer = backup;
		return true;
	}
	return usable;
}

/* ---- header ------------------------------------------------------------ */

/* A broken header rule, with what vhdkit adds to blktap's words.  Returns
 * false when the BAT cannot be read because of it. */
static bool header_problem(struct check *c, const struct vhd_header *h, const struct rule *r)
{
	switch (r->id) {
	case R_HEADER_CHECKSUM:
		say(c, FATAL, "header is invalid: %s (0x%08x stored, 0x%08x computed)", r->message,
		    h->checksum, header_checksum(h));
		return true;
	case R_HEADER_TABLE_OFFSET:
	case R_HEADER_BAT_PADDING:
		say(c, FATAL, "header is invalid: %s (BAT of %u entries at 0x%llx, file of %llu "
		    "bytes)", r->message, h->max_bat_entries, (unsigned long long)h->table_offset,
		    (unsigned long long)c->v->file_size);
		return false;
	case R_HEADER_BLOCK_RANGE:
		say(c, FATAL, "header is invalid: %s %u", r->message, h->block_size);
		return false;
	case R_HEADER_BAT_TOO_LARGE:
		say(c, FATAL, "header is invalid: %s (%u entries)", r->message, h->max_bat_entries);
		return false;
	default:
		say(c, rule_kind(r), "header is invalid: %s", r->message);
		return r->id != R_HEADER_BLOCK_SIZE;
	}
}

/* Every rule of the header, in blktap's order (the BAT's size against the
 * disk's is blktap's BAT test, made by check_header).  Returns true when
 * the BAT can be read (table offset and block size sane). */
static bool header_tests(struct check *c, const struct vhd_header *h)
{
	struct rule_input in = { .footer = &c->v->footer, .header = h,
	                         .limit = c->v->footer_offset };
	const struct rule *r = NULL;
	bool bat_ok = true;
	while ((r = rule_next_broken(&header_rules, r, &in, 0, 0))) {
		if (r->id == R_HEADER_BAT_TOO_SMALL)
			continue;
		if (!header_problem(c, h, r))
			bat_ok = false;
		if (r->id == R_HEADER_COOKIE)
			return false;   /* not a header: its other fields mean nothing */
	}
	return bat_ok;
}

static bool check_header(struct check *c)
{
	struct vhd *v = c->v;
	uint8_t raw[HEADER_SIZE];
	uint64_t off = v->footer.data_offset;
	if (!header_placed(off, v->footer_offset)) {
		say(c, FATAL, "error reading header: %d (data offset 0x%llx is outside the file)",
		    -EIO, (unsigned long long)off);
		return false;
	}
	if (!read_ok(c, raw, HEADER_SIZE, off, "header"))
		return false;
	header_decode(&v->header, raw);
	if (!header_tests(c, &v->header))
		return false;
	vhd_set_block_layout(v);
	struct rule_input in = { .footer = &v->footer, .header = &v->header };
	uint64_t blocks = div_round_up(v->footer.curr_size, v->header.block_size);
	if (rule_broken(&header_rules, R_HEADER_BAT_TOO_SMALL, &in)) {
		say(c, FATAL, "VHD size (%llu blocks) exceeds BAT size (%u)",
		    (unsigned long long)blocks, v->bat_entries);
		blocks = v->bat_entries;
	}
	c->blocks = (uint32_t)blocks;
	return true;
}

static void check_parent_fields(struct check *c)
{
	struct vhd *v = c->v;
	struct rule_input in = { .footer = &v->footer, .header = &v->header, .now = rule_now() };
	const struct rule *r = NULL;
	while ((r = rule_next_broken(&parent_rules, r, &in, 0, clock_skip(c))))
		say(c, rule_kind(r), "differencing header is invalid: %s", r->message);
	if (v->footer.type == VHD_TYPE_DIFF)
		v->parent_name = utf16_to_utf8(v->header.parent_name, sizeof v->header.parent_name,
		                               true);
}

/* ---- batmap ------------------------------------------------------------ */

static struct rule_input batmap_input(const struct check *c)
{
	const struct vhd *v = c->v;
	return (struct rule_input){ .footer = &v->footer, .header = &v->header,
	                            .batmap = &v->batmap_hdr, .limit = v->footer_offset,
	                            .batmap_sum_known = c->batmap_read, .batmap_sum = c->batmap_sum };
}

/* blktap's batmap tests (the header's cookie was found); the map is read
 * (and its checksum tested) only when it lies inside the file.  Returns
 * the first problem or NULL; with REPORT, reports every one. */
static const char *batmap_tests(struct check *c, bool report)
{
	const struct vhd_batmap_header *m = &c->v->batmap_hdr;
	struct rule_input in = batmap_input(c);
	const struct rule *r = NULL, *first = NULL;
	while ((r = rule_next_broken(&batmap_rules, r, &in, 0, 0))) {
		first = first ? first : r;
		if (!report)
			break;
		if (r->id == R_BATMAP_CHECKSUM)
			say(c, PROBLEM, "batmap is invalid: %s (0x%08x stored, 0x%08x computed)",
			    r->message, m->checksum, c->batmap_sum);
		else
			say(c, PROBLEM, "batmap is invalid: %s", r->message);
	}
	return first ? first->message : NULL;
}

/* Read the batmap header and, if it is placed sanely, the map; the map is
 * kept (v->batmap) only when its checksum is right. */
static int load_batmap(struct check *c)
{
	struct vhd *v = c->v;
	struct vhd_batmap_header *m = &v->batmap_hdr;
	uint8_t buf[SECTOR];
	uint64_t off = bat_end(&v->header);
	if (!creator_has_batmap(&v->footer) || off > v->footer_offset ||
	    v->footer_offset - off < SECTOR)
		return 0;
	if (read_at(v->fd, v->path, buf, SECTOR, off))
		return -1;
	batmap_header_decode(m, buf);
	if (memcmp(m->cookie, "tdbatmap", 8))   /* no batmap: not a problem */
		return 0;
	c->batmap_header_found = true;
	v->batmap_hdr_offset = off;
	uint64_t bytes = (uint64_t)m->map_sectors * SECTOR;
	struct rule_input in = batmap_input(c);
	if (rule_broken(&batmap_rules, R_BATMAP_SIZE_ZERO, &in) ||
	    rule_broken(&batmap_rules, R_BATMAP_OFFSET, &in) ||
	    rule_broken(&batmap_rules, R_BATMAP_SIZE, &in))
		return 0;   /* the map is not inside the file */
	uint8_t *map = xmalloc(bytes);
	if (!map || read_at(v->fd, v->path, map, bytes, m->map_offset)) {
		free(map);
		return -1;
	}
	c->batmap_read = true;
	c->batmap_sum = batmap_checksum(map, batmap_checksum_bytes(v));
	if (c->batmap_sum == m->checksum) {
		v->batmap = map;
		v->has_batmap = true;
	} else {
		free(map);
	}
	return 0;
}

static void check_batmap(struct check *c)
{
	struct vhd *v = c->v;
	struct list l = { 0 };
	if (!c->batmap_header_found)
		return;
	batmap_tests(c, true);
	if (!v->has_batmap)
		return;
	uint64_t bits = (uint64_t)v->batmap_hdr.map_sectors * SECTOR * 8;
	uint64_t n = c->blocks < bits ? c->blocks : bits;
	for (uint64_t b = bit_find(v->batmap, 0, n, true); b < n;
	     b = bit_find(v->batmap, b + 1, n, true)) {
		if (v->bat[b] == BAT_UNUSED && list_room(&l))
			say(c, PROBLEM, "batmap shows unallocated block %llu full", (unsigned long long)b);
	}
	list_end(c, &l, PROBLEM, "unallocated blocks shown full by the batmap");
}

/* ---- BAT --------------------------------------------------------------- */

static bool read_bat(struct check *c)
{
	struct vhd *v = c->v;
	size_t bytes = (size_t)v->bat_entries * 4;
	v->bat = xmalloc(bytes);
	c->bad_block = xcalloc(v->bat_entries ? v->bat_entries : 1, sizeof *c->bad_block);
	if (!v->bat || !c->bad_block || read_at(v->fd, v->path, v->bat, bytes, v->header.table_offset)) {
		say(c, FATAL, "error reading bat: %d (%s)", -vhd_get_errno(), vhd_get_error());
		free(v->bat);
		v->bat = NULL;
		return false;
	}
	for (uint32_t i = 0; i < v->bat_entries; i++)   /* in place: big-endian to host */
		v->bat[i] = get_be32((const uint8_t *)&v->bat[i]);
	return true;
}

static void check_placement(struct check *c)
{
	struct vhd *v = c->v;
	struct list list[2] = { { 0 }, { 0 } };   /* headers, footer */
	struct rule_input in = block_rule_input(v);
	for (uint32_t b = 0; b < v->bat_entries; b++) {
		if (v->bat[b] == BAT_UNUSED)
			continue;
		in.block_offset = v->bat[b];
		const struct rule *r = rule_next_broken(&block_rules, NULL, &in, 0, 0);
		if (!r)
			continue;
		c->bad_block[b] = true;
		if (list_room(&list[r->id == R_BLOCK_FOOTER]))
			say(c, FATAL, "block %u (offset 0x%x) %s", b, v->bat[b], r->message);
	}
	list_end(c, &list[0], FATAL, "blocks clobber headers");
	list_end(c, &list[1], FATAL, "blocks clobber the footer");
}

/* The sane allocated blocks in file order. */
static struct bat_extent *blocks_by_offset(const struct check *c, size_t *n)
{
	return bat_by_offset(c->v->bat, c->v->bat_entries, c->bad_block, n);
}

/* Sorted by offset, a block overlaps another iff it overlaps its
 * predecessor (all blocks have the same span): O(n log n).  Each such pair
 * is reported once, lower block first, in BAT order as blktap does. */
static void check_overlaps(struct check *c, uint64_t span)
{
	struct vhd *v = c->v;
	size_t n, np = 0;
	struct list l = { 0 };
	struct bat_extent *e = blocks_by_offset(c, &n);
	if (!e) {
		say(c, FATAL, "error checking overlaps: %s", vhd_get_error());
		return;
	}
	/* the pairs are stored over the entries already passed */
	for (size_t k = 1; k < n; k++) {
		struct bat_extent prev = e[k - 1], cur = e[k];
		if (!extents_overlap(&prev, &cur, span))
			continue;
		c->bad_block[prev.block] = c->bad_block[cur.block] = true;
		uint32_t lo = prev.block < cur.block ? prev.block : cur.block;
		uint32_t hi = prev.block ^ cur.block ^ lo;
		e[np++] = (struct bat_extent){ lo, hi };   /* np < k: entries no longer needed */
	}
	sort_extents(e, np);   /* the pairs (off = first block, block = second) in order */
	for (size_t k = 0; k < np; k++)
		if (list_room(&l))
			say(c, PROBLEM, "block %u (offset 0x%x) clobbers block %u (offset 0x%x)",
			    e[k].off, v->bat[e[k].off], e[k].block, v->bat[e[k].block]);
	list_end(c, &l, PROBLEM, "overlapping block pairs");
	free(e);
}

static void check_bat(struct check *c)
{
	struct vhd *v = c->v;
	uint64_t size = v->file_size;
	if (size % SECTOR && size % SECTOR != FOOTER_OF_511)
		say(c, PROBLEM, "invalid file size: 0x%llx", (unsigned long long)size);
	if (!read_bat(c))
		return;
	if (load_batmap(c) < 0) {
		say(c, FATAL, "error reading batmap: %d (%s)", -vhd_get_errno(), vhd_get_error());
		return;
	}
	if (c->batmap_header_found && batmap_tests(c, false))
		say(c, PROBLEM, "error calculating end of metadata: %d (the batmap is invalid)",
		    -EINVAL);

	uint64_t span = block_span(v) / SECTOR;
	check_placement(c);
	check_overlaps(c, span);
}

/* ---- parent locators and the parent ------------------------------------ */

static const char *locator_problem(const struct check *c, const struct vhd_locator *l)
{
	struct rule_input in = { .locator = l, .limit = c->v->footer_offset };
	return rule_first_broken(&locator_rules, &in, 0, 0);
}

/* Why the file at PATH is not the parent the header names, or NULL.  Only
 * its footer is read (primary, else the backup), as vhd_open() needs. */
static const char *parent_mismatch(const struct check *c, const char *path)
{
	if (vhd_has_raw_parent(c->v))   /* a raw image: anything but a VHD */
		return raw_parent_problem(path);
	struct vhd *p = vhd_open_file(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, true);
	const char *why = NULL;
	if (!p)
		why = "error opening parent";
	else if (memcmp(p->footer.uuid, c->v->header.parent_uuid, 16))
		why = "invalid parent uuid";
	vhd_free(p);
	return why;
}

/* "dir/./name" -> "dir/name" in place: locators hold "./name". */
static char *tidy_path(char *p)
{
	char *d;
	while (p && (d = strstr(p, "/./")))
		memmove(d, d + 2, strlen(d + 2) + 1);
	if (p && !strncmp(p, "./", 2) && p[2])
		memmove(p, p + 2, strlen(p + 2) + 1);
	return p;
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Locator I's resolved path (caller frees), or NULL when it has none. */
static char *locator_location(const struct check *c, int i)
{
	const struct vhd_locator *l = &c->v->header.loc[i];
	if (l->code != LOC_MACX && l->code != LOC_W2KU && l->code != LOC_W2RU)
		return NULL;
	if (locator_problem(c, l))
		return NULL;
	char *rel = vhd_locator_path(c->v, i);
	char *p = rel ? tidy_path(path_relative_to(c->v->path, rel)) : NULL;
	free(rel);
	return p;
}

static char *header_name_location(const struct check *c)
{
	const char *name = c->v->parent_name;
	if (!name || !*name || strchr(name, '/'))
		return NULL;
	return tidy_path(path_relative_to(c->v->path, name));
}

/* The parent as vhd_open() finds it: the first locator, then the header's
 * parent name, holding a VHD with the right UUID.  Caller frees. */
static char *find_parent(const struct check *c)
{
	for (int i = 0; i <= LOC_COUNT; i++) {
		char *p = i < LOC_COUNT ? locator_location(c, i) : header_name_location(c);
		if (p && file_exists(p) && !parent_mismatch(c, p))
			return p;
		free(p);
	}
	return NULL;
}

static bool duplicate_code(const struct vhd_header *h, int i)
{
	for (int k = 0; k < i; k++)
		if (h->loc[k].code == h->loc[i].code)
			return true;
	return false;
}

/* blktap's tests of locator I that has a followed code (MacX, W2ku, W2ru):
 * its name matches the header's, it resolves, it holds the parent. */
static void check_locator_target(struct check *c, int i, enum kind k, char **last)
{
	const struct vhd *v = c->v;
	char *rel = vhd_locator_path(v, i);
	if (!rel) {
		say(c, k, "error reading parent locator %d: %d (%s)", i, -EINVAL, vhd_get_error());
		return;
	}
	char *loc = tidy_path(path_relative_to(v->path, rel));
	if (!loc || (*last && !strcmp(*last, loc))) {
		free(loc);   /* the same path as the previous locator's: said already */
		free(rel);
		return;
	}
	const char *slash = strrchr(rel, '/');
	const char *base = slash ? slash + 1 : rel;
	if (v->parent_name && strcmp(v->parent_name, base))
		say(c, PROBLEM, "parent locator %d name (%s) does not match header name (%s)", i, base,
		    v->parent_name);
	free(rel);
	const char *why;
	bool want_parent = !(c->flags & VHD_CHECK_PARENT_ANY);
	if (want_parent && !file_exists(loc))
		say(c, k, "error resolving %s: %d (no such file)", loc, -ENOENT);
	else if (want_parent && (why = parent_mismatch(c, loc)))
		say(c, k, "invalid parent %s: %s", loc, why);
	free(*last);
	*last = loc;
}

static void check_locators(struct check *c)
{
	const struct vhd_header *h = &c->v->header;
	char *last = NULL;
	int followed = 0;
	c->parent = find_parent(c);
	/* a problem that leaves no way to the parent makes vhd_open() fail */
	enum kind k = c->parent || (c->flags & VHD_CHECK_PARENT_ANY) ? PROBLEM : FATAL;
	for (int i = 0; i < LOC_COUNT; i++) {
		const struct vhd_locator *l = &h->loc[i];
		const char *why = locator_problem(c, l);
		if (why) {
			say(c, PROBLEM, "invalid parent locator %d: %s", i, why);
			continue;
		}
		if (!l->code)
			continue;
		if (duplicate_code(h, i))
			say(c, PROBLEM, "duplicate platform code in locator %d: 0x%x", i, l->code);
		if (l->code == LOC_MACX || l->code == LOC_W2KU || l->code == LOC_W2RU) {
			followed++;
			check_locator_target(c, i, k, &last);
		}
	}
	free(last);
	c->parent_raw = vhd_has_raw_parent(c->v);
	if (c->parent && c->parent_raw)
		say(c, NOTE, "parent %s is a raw image (nil parent uuid)", c->parent);
	if (c->parent && !followed)
		say(c, NOTE, "no parent locator: parent %s found by the header's parent name",
		    c->parent);
	else if (!c->parent && !(c->flags & VHD_CHECK_PARENT_ANY))
		say(c, FATAL, "could not find parent %s", c->v->parent_name ? c->v->parent_name : "");
}

/* ---- a bad primary footer: where the disk really ends --------------------- */

static void locate_lost_footer(struct check *c)
{
	struct vhd *v = c->v;
	uint8_t raw[FOOTER_SIZE];
	/* where vhd repair puts it: the whole file may hold data */
	uint64_t end = vhd_data_end(v, whole_sectors(v->file_size));
	if (end + FOOTER_SIZE > v->file_size) {
		say(c, NOTE, "the file (%llu bytes) ends before its data and footer (%llu bytes): "
		    "truncated?", (unsigned long long)v->file_size,
		    (unsigned long long)(end + FOOTER_SIZE));
		return;
	}
	if (read_at(v->fd, v->path, raw, FOOTER_SIZE, end) || memcmp(raw, c->backup_raw, FOOTER_SIZE))
		return;
	say(c, NOTE, "a copy of the footer is at offset 0x%llx, after the data: the %llu bytes "
	    "after it are trailing garbage", (unsigned long long)end,
	    (unsigned long long)(v->file_size - end - FOOTER_SIZE));
}

/* ---- data (VHD_CHECK_DATA) ------------------------------------------------ */

struct data_scan {
	uint8_t *map, *data;
	struct list clear, batmap, remark;
	struct vhd_progress progress;
};

/* Every sector whose bitmap bit is clear must hold zeros: all its bytes are
 * tested (blktap looks at the first byte only).  Runs are reported. */
static void check_clear_sectors(struct check *c, struct data_scan *s, uint32_t block)
{
	const uint32_t n = c->v->block_sectors;
	for (uint32_t i = (uint32_t)bit_find(s->map, 0, n, false); i < n;
	     i = (uint32_t)bit_find(s->map, i + 1, n, false)) {
		if (is_zero(s->data + (size_t)i * SECTOR, SECTOR))
			continue;
		uint32_t j = i + 1;
		while (j < n && !bit_test(s->map, j) && !is_zero(s->data + (size_t)j * SECTOR, SECTOR))
			j++;
		bool listed = list_room(&s->clear);
		if (listed && j == i + 1)
			say(c, PROBLEM, "sector 0x%x of block 0x%x has data where bitmap is clear", i,
			    block);
		else if (listed)
			say(c, PROBLEM, "sectors 0x%x-0x%x of block 0x%x have data where bitmap is clear",
			    i, j - 1, block);
		i = j - 1;
	}
}

static void check_batmap_bit(struct check *c, struct data_scan *s, uint32_t block, bool full)
{
	const struct vhd *v = c->v;
	if (!v->has_batmap || (uint64_t)block >= (uint64_t)v->batmap_hdr.map_sectors * SECTOR * 8)
		return;
	bool marked = bit_test(v->batmap, block);
	if (marked && !full && list_room(&s->batmap))
		say(c, PROBLEM, "batmap shows block %u full but its bitmap is not", block);
	else if (!marked && full && list_room(&s->remark))
		say(c, NOTE, "block %u is full but its batmap bit is clear (harmless: reads are "
		    "slower)", block);
}

static int scan_block(struct check *c, struct data_scan *s, uint32_t block)
{
	const struct vhd *v = c->v;
	uint64_t off = (uint64_t)v->bat[block] * SECTOR;
	if (read_at(v->fd, v->path, s->map, v->bitmap_bytes, off))
		return -1;
	bool full = bit_find(s->map, 0, v->block_sectors, false) == v->block_sectors;
	check_batmap_bit(c, s, block, full);
	if (full)
		return 0;   /* no clear bit: nothing to test in the data */
	if (read_at(v->fd, v->path, s->data, v->header.block_size, off + v->bitmap_bytes))
		return -1;
	check_clear_sectors(c, s, block);
	return 0;
}

static bool progress_stopped(struct check *c, struct data_scan *s)
{
	return c->progress && c->progress(&s->progress, c->progress_opaque);
}

static int check_data(struct check *c)
{
	struct vhd *v = c->v;
	struct data_scan s = { .progress = { .phase = "data", .top = v->path, .eta = -1 } };
	size_t n;
	int rc = -1;
	struct bat_extent *e = blocks_by_offset(c, &n);
	s.map = xmalloc(v->bitmap_bytes);
	s.data = xmalloc(v->header.block_size);
	if (!e || !s.map || !s.data)
		goto out;
	s.progress.bytes_total = (uint64_t)n * v->header.block_size;
	for (size_t k = 0; k < n; k++) {
		if (progress_stopped(c, &s)) {
			vhd_error(EINTR, "%s: check stopped on request", v->path);
			goto out;
		}
		if (scan_block(c, &s, e[k].block)) {
			say(c, PROBLEM, "error reading block 0x%x: %d (%s)", e[k].block,
			    -vhd_get_errno(), vhd_get_error());
			continue;
		}
		s.progress.bytes_done += v->header.block_size;
	}
	s.progress.phase = "done";
	progress_stopped(c, &s);
	list_end(c, &s.clear, PROBLEM, "runs of sectors with data where the bitmap is clear");
	list_end(c, &s.batmap, PROBLEM, "blocks shown full by the batmap but not full");
	list_end(c, &s.remark, NOTE, "full blocks without their batmap bit");
	rc = 0;
out:
	free(e);
	free(s.map);
	free(s.data);
	return rc;
}

/* ---- one file, then the chain ------------------------------------------ */

static struct vhd *new_handle(const char *path)
{
	struct vhd *v = vhd_alloc_handle();
	if (!v)
		return NULL;
	if (!(v->path = xstrdup(path)))
		return vhd_free(v), NULL;
	v->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (v->fd < 0) {
		vhd_error(errno, "%s: %s", path, strerror(errno));
		vhd_free(v);
		return NULL;
	}
	return v;
}

static int check_dynamic(struct check *c)
{
	struct vhd *v = c->v;
	bool bat_ok = check_header(c);
	if (!memcmp(v->header.cookie, "cxsparse", 8))
		check_parent_fields(c);
	if (bat_ok) {
		check_bat(c);
		check_batmap(c);
	}
	if (v->footer.type == VHD_TYPE_DIFF && !memcmp(v->header.cookie, "cxsparse", 8))
		check_locators(c);
	if (!v->bat)
		return 0;
	if (c->primary_bad)
		locate_lost_footer(c);
	return c->flags & VHD_CHECK_DATA ? check_data(c) : 0;
}

/* Check PATH; returns its number of problems, or -1 if it cannot be read
 * at all.  Leaves the verified parent's path in c->parent. */
static int check_file(struct check *c, const char *path)
{
	struct stat st;
	int rc = 0;
	if (!(c->v = new_handle(path)))
		return -1;
	if (fstat(c->v->fd, &st) < 0) {
		rc = vhd_error(errno, "%s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		say(c, FATAL, "%s is not a regular file or block device", path);
	} else if (fd_size(c->v->fd, path, &c->v->file_size, &c->v->is_blockdev)) {
		rc = -1;
	} else if (check_footers(c)) {
		rc = check_dynamic(c);
	}
	free(c->bad_block);
	c->bad_block = NULL;
	vhd_free(c->v);
	c->v = NULL;
	return rc < 0 ? -1 : c->problems;
}

VHD_EXPORT int vhd_check_progress(const char *path, int flags, vhd_problem_fn fn, void *opaque,
                                  vhd_progress_fn progress, void *progress_opaque)
{
	if (!path)
		return vhd_error(EINVAL, "no path given");
	char *cur = xstrdup(path);
	int total = 0;
	for (unsigned depth = 0; cur; depth++) {
		struct check c = { .flags = flags, .fn = fn, .opaque = opaque,
		                   .progress = progress, .progress_opaque = progress_opaque };
		if (depth >= VHD_MAX_CHAIN_DEPTH) {
			free(cur);
			return vhd_error(ELOOP, "%s: chain deeper than %u files (a loop?)", path,
			                 VHD_MAX_CHAIN_DEPTH);
		}
		int n = check_file(&c, cur);
		free(cur);
		cur = NULL;
		if (n < 0) {
			free(c.parent);
			return -1;
		}
		total += n;
		if ((flags & VHD_CHECK_CHAIN) && !c.parent_raw)
			cur = c.parent;   /* a raw image has nothing to check */
		else
			free(c.parent);
	}
	return total;
}

VHD_EXPORT int vhd_check(const char *path, int flags, vhd_problem_fn fn, void *opaque)
{
	return vhd_check_progress(path, flags, fn, opaque, NULL, NULL);
}
