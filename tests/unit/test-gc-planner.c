/* test-gc-planner.c - the GC's planner (gc/planner.c) on SR trees written
 * as tables: for each tree, the operations it chooses, in order, with why
 * each waits, and the files it reports damaged.
 *
 * A row's tree is a list of files: a name, its parent's name (NULL for a
 * root) and flags.  The tree facts the scan would give (children, depths,
 * visible descendants, parent loops) come from the library's own
 * sr_compute_depths; the worker's findings (a failed check, a deferred
 * operation, a verified `vhd serve`) from the flags.  No file is opened. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "internal.h"

enum {
	HID = 1,       /* hidden */
	USE = 2,       /* in use (another process holds its write lock) */
	BAD = 4,       /* fails check */
	DEF = 8,       /* its operation was cancelled: waits for resume */
	RAW = 16,      /* a differencing root over a raw image (nil parent UUID) */
	UNREAD = 32,   /* unreadable: no type, its parent unknown */
	SRV = 64,      /* `vhd serve` answers for it (the worker verified) */
};

#define MAX_NODES 10
#define MAX_OPS 10
#define WAIT_USE " (waits: in use)"
#define WAIT_RESUME " (waits: cancelled: waits for 'vhd gc resume')"
#define WAIT_UNREAD " (waits: an unreadable file in the SR may depend on it)"

struct node {
	const char *name;
	const char *parent;
	unsigned flags;
};

struct row {
	const char *what;
	struct node tree[MAX_NODES];
	const char *want[MAX_OPS];   /* the operations, in order */
	const char *broken;          /* the damaged files, space-separated */
};

static const struct row rows[] = {
	{ "an empty SR", { { 0 } }, { 0 }, "" },
	{ "a lone visible disk", { { "base", NULL, 0 } }, { 0 }, "" },
	{ "a hidden leaf under a visible disk is garbage",
	  { { "base", NULL, 0 }, { "snap", "base", HID } }, { "delete snap" }, "" },
	{ "a hidden root without children is garbage", { { "old", NULL, HID } }, { "delete old" }, "" },
	{ "garbage goes from its leaf: hidden children first",
	  { { "g1", NULL, HID }, { "g2", "g1", HID }, { "g3", "g2", HID } }, { "delete g3" }, "" },
	{ "garbage in use waits",
	  { { "base", NULL, 0 }, { "snap", "base", HID | USE } }, { "delete snap" WAIT_USE }, "" },
	{ "a hidden leaf beside a visible sibling is garbage; the sibling waits for it",
	  { { "base", NULL, HID }, { "leaf", "base", 0 }, { "snap", "base", HID } },
	  { "delete snap" }, "" },
	{ "a visible leaf, only child of a hidden parent, is leaf-coalesced",
	  { { "base", NULL, HID }, { "leaf", "base", 0 } }, { "leaf-coalesce leaf into base" }, "" },
	{ "a leaf in use waits",
	  { { "base", NULL, HID }, { "leaf", "base", USE } },
	  { "leaf-coalesce leaf into base" WAIT_USE }, "" },
	{ "a leaf in use by its vhd serve is merged live by the server",
	  { { "base", NULL, HID }, { "leaf", "base", USE | SRV } },
	  { "leaf-coalesce leaf into base (live)" }, "" },
	{ "a served leaf whose lock is free is merged as any other (no live)",
	  { { "base", NULL, HID }, { "leaf", "base", SRV } }, { "leaf-coalesce leaf into base" }, "" },
	{ "a served leaf's cancelled live merge waits for resume",
	  { { "base", NULL, HID }, { "leaf", "base", USE | SRV | DEF } },
	  { "leaf-coalesce leaf into base (live)" WAIT_RESUME }, "" },
	{ "a served leaf beside a sibling is not merged",
	  { { "base", NULL, HID }, { "leaf", "base", USE | SRV }, { "snap", "base", 0 } }, { 0 }, "" },
	{ "hidden layers under a served leaf are coalesced first, then the leaf live",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "leaf", "c", USE | SRV } },
	  { "coalesce b into a", "coalesce c into b", "leaf-coalesce leaf into c (live)" }, "" },
	{ "an unreadable file makes a served leaf wait too",
	  { { "base", NULL, HID }, { "leaf", "base", USE | SRV }, { "junk", NULL, UNREAD } },
	  { "leaf-coalesce leaf into base (live)" WAIT_UNREAD }, "junk" },
	{ "a visible parent is never merged into",
	  { { "base", NULL, 0 }, { "leaf", "base", 0 } }, { 0 }, "" },
	{ "a parent of two children is not merged into",
	  { { "base", NULL, HID }, { "a", "base", 0 }, { "b", "base", 0 } }, { 0 }, "" },
	{ "a hidden layer with children, only child of a hidden parent, is coalesced",
	  { { "base", NULL, HID }, { "mid", "base", HID }, { "a", "mid", 0 }, { "b", "mid", 0 } },
	  { "coalesce mid into base" }, "" },
	{ "a hidden layer over a visible disk stays; the leaf goes into it",
	  { { "base", NULL, 0 }, { "mid", "base", HID }, { "leaf", "mid", 0 } },
	  { "leaf-coalesce leaf into mid" }, "" },
	{ "a chain is merged from its shallowest layer",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "d", "c", HID },
	    { "e", "d", 0 } },
	  { "coalesce b into a", "coalesce c into b", "coalesce d into c", "leaf-coalesce e into d" },
	  "" },
	{ "the deepest chain first, whatever the names",
	  { { "x1", NULL, HID }, { "x2", "x1", HID }, { "x3", "x2", 0 }, { "y1", NULL, HID },
	    { "y2", "y1", HID }, { "y3", "y2", HID }, { "y4", "y3", 0 } },
	  { "coalesce y2 into y1", "coalesce y3 into y2", "leaf-coalesce y4 into y3",
	    "coalesce x2 into x1", "leaf-coalesce x3 into x2" },
	  "" },
	{ "garbage before any merge, even in a shallower tree",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "d", "c", 0 },
	    { "vm", NULL, 0 }, { "snap", "vm", HID } },
	  { "delete snap", "coalesce b into a", "coalesce c into b", "leaf-coalesce d into c" }, "" },
	{ "a damaged leaf: its ancestors are never touched",
	  { { "base", NULL, HID }, { "mid", "base", HID }, { "leaf", "mid", BAD } }, { 0 }, "leaf" },
	{ "a damaged base: its descendants are never touched",
	  { { "base", NULL, HID | BAD }, { "mid", "base", HID }, { "leaf", "mid", 0 } }, { 0 },
	  "base" },
	{ "a damaged disk's garbage sibling still goes; the damaged disk stays",
	  { { "vm", NULL, 0 }, { "bad", "vm", BAD }, { "snap", "vm", HID } }, { "delete snap" },
	  "bad" },
	{ "a damaged file elsewhere does not stop another chain",
	  { { "base", NULL, HID }, { "leaf", "base", 0 }, { "other", NULL, BAD } },
	  { "leaf-coalesce leaf into base" }, "other" },
	{ "an unreadable file makes every delete and merge wait",
	  { { "base", NULL, HID }, { "leaf", "base", 0 }, { "old", NULL, HID }, { "junk", NULL, UNREAD } },
	  { "delete old" WAIT_UNREAD, "leaf-coalesce leaf into base" WAIT_UNREAD }, "junk" },
	{ "an unreadable file outranks in use",
	  { { "vm", NULL, 0 }, { "snap", "vm", HID | USE }, { "junk", NULL, UNREAD } },
	  { "delete snap" WAIT_UNREAD }, "junk" },
	{ "a cancelled operation waits for resume",
	  { { "base", NULL, HID }, { "leaf", "base", DEF } },
	  { "leaf-coalesce leaf into base" WAIT_RESUME }, "" },
	{ "a cancelled coalesce waits; the deeper layers are planned behind it",
	  { { "a", NULL, HID }, { "b", "a", HID | DEF }, { "c", "b", HID }, { "d", "c", 0 } },
	  { "coalesce b into a" WAIT_RESUME, "coalesce c into b", "leaf-coalesce d into c" }, "" },
	{ "garbage in use and cancelled says in use",
	  { { "vm", NULL, 0 }, { "snap", "vm", HID | USE | DEF } }, { "delete snap" WAIT_USE }, "" },
	{ "the raw parent is not in the SR: the leaf goes into the VHD over it",
	  { { "over", NULL, RAW | HID }, { "leaf", "over", 0 } },
	  { "leaf-coalesce leaf into over" }, "" },
	{ "a visible disk over a raw parent is left alone", { { "disk", NULL, RAW } }, { 0 }, "" },
	{ "a parent loop: its members are damaged, the rest is planned",
	  { { "l1", "l2", HID }, { "l2", "l1", HID }, { "base", NULL, HID }, { "leaf", "base", 0 } },
	  { "leaf-coalesce leaf into base" }, "l1 l2" },
	{ "a file below a parent loop is damaged too: its ancestry loops",
	  { { "l1", "l2", HID }, { "l2", "l1", HID }, { "below", "l1", HID } }, { 0 },
	  "l1 l2 below" },
};

static int failures;

static void fail(const struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const struct row *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: test-gc-planner: %s: ", r->what);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

static int index_of(const struct row *r, const char *name)
{
	for (int i = 0; name && i < MAX_NODES && r->tree[i].name; i++)
		if (!strcmp(r->tree[i].name, name))
			return i;
	return -1;
}

/* The SR the scan would give for R's tree, and the worker's facts. */
static size_t build_sr(const struct row *r, struct vhd_sr_entry *e, struct gc_facts *facts)
{
	size_t n = 0;
	for (; n < MAX_NODES && r->tree[n].name; n++) {
		const struct node *nd = &r->tree[n];
		memset(&e[n], 0, sizeof e[n]);
		e[n].name = nd->name;
		e[n].ok = !(nd->flags & UNREAD);
		e[n].type = nd->flags & UNREAD ? 0 : nd->parent || (nd->flags & RAW) ? VHD_TYPE_DIFF
		                                                                   : VHD_TYPE_DYNAMIC;
		e[n].hidden = !!(nd->flags & HID);
		e[n].in_use = !!(nd->flags & USE);
		e[n].parent = index_of(r, nd->parent);
		e[n].uuid[0] = (uint8_t)(n + 1);
		if (e[n].parent >= 0)
			e[n].parent_uuid[0] = (uint8_t)(e[n].parent + 1);
		if (nd->flags & UNREAD)
			e[n].defect = strdup("bad footer");
	}
	struct vhd_sr sr = { .dir = "sr", .count = n, .entries = e };
	sr_compute_depths(&sr);
	for (size_t i = 0; i < n; i++) {
		facts[i].defect = !e[i].ok ? e[i].defect : r->tree[i].flags & BAD ? "fails check" : NULL;
		facts[i].deferred = r->tree[i].flags & DEF;
		facts[i].served = r->tree[i].flags & SRV;
	}
	return n;
}

static void describe(const struct gc_item *it, char *out, size_t len)
{
	snprintf(out, len, "%s %s%s%s%s%s%s%s", gc_kind_names[it->kind], it->vhd,
	         it->into[0] ? " into " : "", it->into, it->live ? " (live)" : "",
	         it->note[0] ? " (waits: " : "", it->note,
	         it->note[0] ? ")" : "");
}

static void check_row(const struct row *r)
{
	struct vhd_sr_entry e[MAX_NODES];
	struct gc_facts facts[MAX_NODES] = { { 0 } };
	size_t n = build_sr(r, e, facts);
	struct vhd_sr sr = { .dir = "sr", .count = n, .entries = e };
	struct gc_plan plan;
	int failures_before = failures;
	if (gc_plan_make(&sr, facts, &plan)) {
		fail(r, "gc_plan_make failed");
		return;
	}
	unsigned want = 0;
	while (want < MAX_OPS && r->want[want])
		want++;
	for (unsigned i = 0; i < plan.n || i < want; i++) {
		char got[1024] = "(nothing)";
		if (i < plan.n)
			describe(&plan.items[i], got, sizeof got);
		const char *exp = i < want ? r->want[i] : "(nothing)";
		if (strcmp(got, exp))
			fail(r, "operation %s, expected %s", got, exp);
		if (i < plan.n && (plan.items[i].entry >= n ||
		                   strcmp(e[plan.items[i].entry].name, plan.items[i].vhd)))
			fail(r, "%s: the item's entry is another file", plan.items[i].vhd);
		if (i < plan.n && plan.items[i].bytes)
			fail(r, "%s: bytes measured by the planner", plan.items[i].vhd);
	}
	char broken[MAX_NODES * 64] = "";
	for (unsigned i = 0; i < plan.nbroken; i++)
		snprintf(broken + strlen(broken), sizeof broken - strlen(broken), "%s%s",
		         i ? " " : "", plan.broken[i].vhd);
	if (strcmp(broken, r->broken))
		fail(r, "damaged \"%s\", expected \"%s\"", broken, r->broken);
	if (failures == failures_before)
		printf("ok: %s: %u operation(s), %u damaged\n", r->what, plan.n, plan.nbroken);
	gc_plan_free(&plan);
	for (size_t i = 0; i < n; i++)
		free(e[i].defect);
}

int main(void)
{
	size_t nrows = sizeof rows / sizeof *rows;
	for (size_t i = 0; i < nrows; i++)
		check_row(&rows[i]);
	if (failures) {
		fprintf(stderr, "FAIL: test-gc-planner: %d mismatch(es)\n", failures);
		return 1;
	}
	printf("ok: test-gc-planner: %zu SR trees planned as expected\n", nrows);
	return 0;
}
