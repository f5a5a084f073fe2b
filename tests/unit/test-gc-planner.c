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

#define MAX_NODES 20
#define MAX_OPS 10
#define WAIT_USE " (waits: in use)"
#define WAIT_RESUME " (waits: cancelled: waits for 'vhd gc resume')"
#define WAIT_HELD " (waits: waits for the cancelled merge below ('vhd gc resume'))"
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
	{ "hidden layers under a served leaf are committed first (one pass), then the leaf live",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "leaf", "c", USE | SRV } },
	  { "commit c into a [b/c]", "leaf-coalesce leaf into c (live)" }, "" },
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
	{ "a run of hidden single-child layers is one commit into the base below it",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "d", "c", HID },
	    { "e", "d", 0 } },
	  { "commit d into a [b/c/d]", "leaf-coalesce e into d" }, "" },
	{ "the demo's 8-level SR: its seven hidden layers above the base in one pass",
	  { { "l0", NULL, HID }, { "l1", "l0", HID }, { "l2", "l1", HID }, { "l3", "l2", HID },
	    { "l4", "l3", HID }, { "l5", "l4", HID }, { "l6", "l5", HID }, { "l7", "l6", HID },
	    { "vm", "l7", 0 } },
	  { "commit l7 into l0 [l1/l2/l3/l4/l5/l6/l7]", "leaf-coalesce vm into l7" }, "" },
	{ "the deepest chain first, whatever the names",
	  { { "x1", NULL, HID }, { "x2", "x1", HID }, { "x3", "x2", 0 }, { "y1", NULL, HID },
	    { "y2", "y1", HID }, { "y3", "y2", HID }, { "y4", "y3", 0 } },
	  { "commit y3 into y1 [y2/y3]", "leaf-coalesce y4 into y3", "coalesce x2 into x1",
	    "leaf-coalesce x3 into x2" },
	  "" },
	{ "deeper chains first: a run of three before a run of two",
	  { { "p0", NULL, HID }, { "p1", "p0", HID }, { "p2", "p1", HID }, { "pv", "p2", 0 },
	    { "q0", NULL, HID }, { "q1", "q0", HID }, { "q2", "q1", HID }, { "q3", "q2", HID },
	    { "qv", "q3", 0 } },
	  { "commit q3 into q0 [q1/q2/q3]", "leaf-coalesce qv into q3", "commit p2 into p0 [p1/p2]",
	    "leaf-coalesce pv into p2" },
	  "" },
	{ "a visible layer ends a run; the run above it goes into the layer over it",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "v", "c", 0 },
	    { "d", "v", HID }, { "e", "d", HID }, { "leaf", "e", 0 } },
	  { "commit c into a [b/c]", "coalesce e into d", "leaf-coalesce leaf into e" }, "" },
	{ "a layer with two children is the run's top: both are re-pointed",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "x", "c", 0 },
	    { "y", "c", 0 } },
	  { "commit c into a [b/c]" }, "" },
	{ "a layer with two children below the top ends the run there",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "x", "c", HID },
	    { "y", "c", HID }, { "x1", "x", 0 }, { "y1", "y", 0 } },
	  { "commit c into a [b/c]", "leaf-coalesce x1 into x", "leaf-coalesce y1 into y" }, "" },
	{ "a base with two children is not merged into; the run starts above the fork",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "s", "a", 0 }, { "c", "b", HID },
	    { "d", "c", HID }, { "e", "d", 0 } },
	  { "commit d into b [c/d]", "leaf-coalesce e into d" }, "" },
	{ "a layer in use ends the run below it and merges the layers above into itself",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "u", "b", HID | USE }, { "c", "u", HID },
	    { "d", "c", HID }, { "e", "d", 0 } },
	  { "coalesce b into a", "coalesce u into b" WAIT_USE, "commit d into u [c/d]",
	    "leaf-coalesce e into d" }, "" },
	{ "a run's first layer in use waits alone",
	  { { "a", NULL, HID }, { "u", "a", HID | USE }, { "c", "u", HID }, { "d", "c", HID },
	    { "e", "d", 0 } },
	  { "coalesce u into a" WAIT_USE, "commit d into u [c/d]", "leaf-coalesce e into d" }, "" },
	{ "the run's top in use stays out of it",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "u", "c", HID | USE },
	    { "e", "u", 0 } },
	  { "commit c into a [b/c]", "coalesce u into c" WAIT_USE, "leaf-coalesce e into u" }, "" },
	{ "a run over a VHD whose parent is raw goes into that VHD",
	  { { "over", NULL, RAW | HID }, { "b", "over", HID }, { "c", "b", HID }, { "e", "c", 0 } },
	  { "commit c into over [b/c]", "leaf-coalesce e into c" }, "" },
	{ "a cancelled layer makes its whole run wait (resuming must find the same run)",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID | DEF }, { "d", "c", HID },
	    { "e", "d", 0 } },
	  { "commit d into a [b/c/d]" WAIT_RESUME, "leaf-coalesce e into d" WAIT_HELD }, "" },
	{ "a damaged leaf keeps the whole run untouched",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "e", "c", BAD } },
	  { 0 }, "e" },
	{ "an unreadable file makes a commit wait",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "e", "c", 0 },
	    { "junk", NULL, UNREAD } },
	  { "commit c into a [b/c]" WAIT_UNREAD, "leaf-coalesce e into c" WAIT_UNREAD }, "junk" },
	{ "garbage before any merge, even in a shallower tree",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID }, { "d", "c", 0 },
	    { "vm", NULL, 0 }, { "snap", "vm", HID } },
	  { "delete snap", "commit c into a [b/c]", "leaf-coalesce d into c" }, "" },
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
	{ "a cancelled coalesce waits; the deeper layers wait with it, in its run",
	  { { "a", NULL, HID }, { "b", "a", HID | DEF }, { "c", "b", HID }, { "d", "c", 0 } },
	  { "commit c into a [b/c]" WAIT_RESUME, "leaf-coalesce d into c" WAIT_HELD }, "" },
	{ "a cancelled commit holds only the layers its journal names: its top's children go on",
	  { { "a", NULL, HID }, { "b", "a", HID }, { "c", "b", HID | DEF }, { "x", "c", HID },
	    { "y", "c", HID }, { "x1", "x", 0 }, { "y1", "y", 0 }, { "o", NULL, HID },
	    { "o1", "o", 0 } },
	  { "commit c into a [b/c]" WAIT_RESUME, "leaf-coalesce x1 into x", "leaf-coalesce y1 into y",
	    "leaf-coalesce o1 into o" }, "" },
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
	snprintf(out, len, "%s %s%s%s%s%s%s%s%s%s%s", gc_kind_names[it->kind], it->vhd,
	         it->into[0] ? " into " : "", it->into, it->layers[0] ? " [" : "", it->layers,
	         it->layers[0] ? "]" : "", it->live ? " (live)" : "",
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
		char got[8192] = "(nothing)";
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
