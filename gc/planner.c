/* planner.c - what the GC does in an SR, decided from facts alone.
 *
 * The input is a scanned SR (vhd_sr_scan: each entry's type, hidden flag,
 * in-use probe, parent, children and depths) and what the worker learnt of
 * each entry (why it is damaged; whether its operation waits for resume).
 * Nothing here opens a file, so the rules are unit-tested on tables
 * (tests/unit/test-gc-planner.c):
 *   delete    a hidden leaf with no visible descendant (garbage);
 *   coalesce  a hidden VHD with children whose hidden parent has it as only
 *             child: merged into that parent, its children re-pointed;
 *   commit    the same for a run of such layers, each the only child of the
 *             one below: the whole run, from the lowest up to the first
 *             layer with other than one hidden child with children, merged
 *             into the base below it in one pass (a sector rewritten in
 *             every layer is written once, not once per layer), the top's
 *             children re-pointed, the run deleted; a layer in use ends the
 *             run below it (it could not be deleted);
 *   leaf      a visible leaf whose hidden parent has it as only child:
 *             merged, the parent taking the leaf's place (waits while the
 *             leaf is in use, unless `vhd serve` is what uses it: then
 *             its server merges it live, and the item is marked live).
 * Garbage goes first, then the deepest chains, each from its shallowest
 * mergeable layer (every byte moves once).  A damaged file, its ancestors
 * and descendants are never touched; an unreadable file (its parent
 * unknown) makes every operation that removes a file wait.  An operation
 * that cannot run now stays in the plan with a note saying why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"

static const char unreadable_note[] = "an unreadable file in the SR may depend on it";

/* The walks up a chain stop after every entry: the parents of the members
 * of a loop (which the scan marks damaged) go round for ever. */
static bool chain_has(const struct vhd_sr *sr, const bool *set, int a)
{
	for (size_t steps = 0; a >= 0 && steps <= sr->count; steps++, a = sr->entries[a].parent)
		if (set[a])
			return true;
	return false;
}

static void mark_chain(const struct vhd_sr *sr, bool *set, int a)
{
	for (size_t steps = 0; a >= 0 && steps <= sr->count; steps++, a = sr->entries[a].parent)
		set[a] = true;
}

/* Damaged files, and every file related to one, are off limits. */
static void mark_blocked(const struct vhd_sr *sr, const bool *bad, bool *blocked)
{
	for (size_t i = 0; i < sr->count; i++) {
		if (chain_has(sr, bad, (int)i))
			blocked[i] = true;   /* it or an ancestor is damaged */
		if (bad[i])
			mark_chain(sr, blocked, (int)i);
	}
}

static int add_item(struct gc_plan *p, unsigned *cap, enum gc_kind kind, const struct vhd_sr *sr,
                    size_t i, const char *note)
{
	if (p->n == *cap) {
		unsigned c = *cap ? 2 * *cap : 16;
		struct gc_item *n = realloc(p->items, c * sizeof *n);
		if (!n)
			return -1;
		p->items = n;
		*cap = c;
	}
	const struct vhd_sr_entry *e = &sr->entries[i];
	struct gc_item *it = &p->items[p->n++];
	memset(it, 0, sizeof *it);
	it->kind = kind;
	it->entry = (unsigned)i;
	it->nlayers = 1;
	snprintf(it->vhd, sizeof it->vhd, "%s", e->name);
	if (kind != GC_DELETE)
		snprintf(it->into, sizeof it->into, "%s", sr->entries[e->parent].name);
	it->chain_depth = e->subtree_depth;
	snprintf(it->note, sizeof it->note, "%s", note ? note : "");
	return 0;
}

/* The only child of entry I (-1 if it has not exactly one). */
static int only_child(const struct vhd_sr *sr, size_t i)
{
	if (sr->entries[i].children != 1)
		return -1;
	for (size_t c = 0; c < sr->count; c++)
		if (sr->entries[c].parent == (int)i)
			return (int)c;
	return -1;
}

/* Can entry C, the only child of a layer of a run, join the run as its new
 * top?  It must be hidden with children (what a coalesce merges), readable,
 * sound and not in use (a merged layer is deleted). */
static bool joins_run(const struct vhd_sr *sr, const bool *blocked, int c)
{
	const struct vhd_sr_entry *e = &sr->entries[c];
	return !blocked[c] && e->type && e->hidden && e->children && !e->in_use;
}

/* The run of layers that starts at entry I (hidden with children, the only
 * child of a hidden base): every layer above it that joins, each marked in
 * COVERED so that it starts no run of its own; one item, a coalesce when
 * the run is I alone, else a commit of its top into the base.  A layer of
 * the run that waits for resume makes the whole run wait (resuming it must
 * find the same layers), and its layers HELD: a merge into one of them
 * waits too, else its journal would name files that are gone. */
static int plan_run(struct gc_plan *p, unsigned *cap, const struct vhd_sr *sr,
                    const struct gc_facts *facts, const bool *blocked, bool *covered, bool *held,
                    size_t i, const char *note)
{
	char layers[sizeof p->items->layers];
	size_t top = i;
	unsigned n = 1;
	bool deferred = facts[i].deferred;
	snprintf(layers, sizeof layers, "%s", sr->entries[i].name);
	/* a start in use waits alone: the layers above may still merge into it */
	for (int c; !sr->entries[i].in_use && n < GC_MAX_RUN && (c = only_child(sr, top)) >= 0 &&
	            joins_run(sr, blocked, c);) {
		size_t used = strlen(layers), more = strlen(sr->entries[c].name) + 1;
		if (used + more >= sizeof layers)
			break;
		snprintf(layers + used, sizeof layers - used, "/%s", sr->entries[c].name);
		covered[c] = true;
		deferred |= facts[c].deferred;
		top = (size_t)c;
		n++;
	}
	if (!note && deferred)
		note = "cancelled: waits for 'vhd gc resume'";
	/* its journal names these layers: nothing may merge into them meanwhile */
	for (size_t a = top; deferred && a != i; a = (size_t)sr->entries[a].parent)
		held[a] = true;
	held[i] |= deferred;
	if (!note && sr->entries[i].in_use)
		note = "in use";
	if (add_item(p, cap, n > 1 ? GC_COMMIT : GC_COALESCE, sr, top, note))
		return -1;
	struct gc_item *it = &p->items[p->n - 1];
	snprintf(it->into, sizeof it->into, "%s", sr->entries[sr->entries[i].parent].name);
	it->nlayers = n;
	if (n > 1)
		snprintf(it->layers, sizeof it->layers, "%s", layers);
	return 0;
}

/* The operation entry I calls for, if any (-1: out of memory). */
static int plan_entry(struct gc_plan *p, unsigned *cap, const struct vhd_sr *sr,
                      const struct gc_facts *facts, const bool *blocked, bool *covered,
                      bool *held, size_t i)
{
	const struct vhd_sr_entry *e = &sr->entries[i];
	const struct vhd_sr_entry *par = e->parent >= 0 ? &sr->entries[e->parent] : NULL;
	const char *note = NULL;
	if (blocked[i] || !e->type || covered[i])
		return 0;
	if (facts[i].deferred)
		note = "cancelled: waits for 'vhd gc resume'";
	if (e->hidden && !e->visible_below) {
		if (e->children)
			return 0;   /* its hidden children go first */
		if (p->unreadable)
			note = unreadable_note;
		else if (e->in_use)
			note = "in use";
		return add_item(p, cap, GC_DELETE, sr, i, note);
	}
	if (!par || par->children != 1 || blocked[e->parent])
		return 0;
	if (!par->hidden)
		return 0;   /* merging would change a visible disk */
	if (p->unreadable)
		note = unreadable_note;
	else if (held[e->parent])
		note = "waits for the cancelled merge below ('vhd gc resume')";
	if (e->hidden && e->children)
		return plan_run(p, cap, sr, facts, blocked, covered, held, i,
		                p->unreadable || held[e->parent] ? note : NULL);
	if (e->hidden || e->children)
		return 0;
	bool live = e->in_use && facts[i].served;
	if (add_item(p, cap, GC_LEAF, sr, i, note ? note : e->in_use && !live ? "in use" : NULL))
		return -1;
	p->items[p->n - 1].live = live;
	return 0;
}

static int item_order(const struct gc_item *x, const struct gc_item *y)
{
	if ((x->kind == GC_DELETE) != (y->kind == GC_DELETE))
		return x->kind == GC_DELETE ? -1 : 1;
	if (x->chain_depth != y->chain_depth)
		return x->chain_depth > y->chain_depth ? -1 : 1;
	return 0;
}

/* Stable: ties keep the shallowest-first order the plan was built in. */
static void sort_items(struct gc_plan *p)
{
	for (unsigned i = 1; i < p->n; i++)
		for (unsigned k = i; k > 0 && item_order(&p->items[k - 1], &p->items[k]) > 0; k--) {
			struct gc_item t = p->items[k];
			p->items[k] = p->items[k - 1];
			p->items[k - 1] = t;
		}
}

static int by_depth(const void *a, const void *b, void *sr_)
{
	const struct vhd_sr *sr = sr_;
	unsigned da = sr->entries[*(const size_t *)a].depth, db = sr->entries[*(const size_t *)b].depth;
	return da < db ? -1 : da > db;
}

/* The damaged files (in the SR's order); BAD[i] set for each. */
static int list_broken(struct gc_plan *p, const struct vhd_sr *sr, const struct gc_facts *facts,
                       bool *bad)
{
	if (!(p->broken = calloc(sr->count + 1, sizeof *p->broken)))
		return -1;
	for (size_t i = 0; i < sr->count; i++) {
		if (!facts[i].defect)
			continue;
		bad[i] = true;
		p->unreadable |= !sr->entries[i].type;
		struct gc_broken *b = &p->broken[p->nbroken++];
		snprintf(b->vhd, sizeof b->vhd, "%s", sr->entries[i].name);
		snprintf(b->defect, sizeof b->defect, "%s", facts[i].defect);
	}
	return 0;
}

int gc_plan_make(const struct vhd_sr *sr, const struct gc_facts *facts, struct gc_plan *p)
{
	memset(p, 0, sizeof *p);
	bool *bad = calloc(sr->count + 1, sizeof *bad);
	bool *blocked = calloc(sr->count + 1, sizeof *blocked);
	bool *covered = calloc(sr->count + 1, sizeof *covered);
	bool *held = calloc(sr->count + 1, sizeof *held);
	size_t *order = calloc(sr->count + 1, sizeof *order);
	unsigned cap = 0;
	int rc = bad && blocked && covered && held && order ? list_broken(p, sr, facts, bad) : -1;
	if (!rc) {
		mark_blocked(sr, bad, blocked);
		for (size_t i = 0; i < sr->count; i++)
			order[i] = i;
		if (sr->count)
			qsort_r(order, sr->count, sizeof *order, by_depth, (void *)sr);
		for (size_t i = 0; !rc && i < sr->count; i++)
			rc = plan_entry(p, &cap, sr, facts, blocked, covered, held, order[i]);
		sort_items(p);
	}
	free(order);
	free(held);
	free(covered);
	free(blocked);
	free(bad);
	if (rc)
		gc_plan_free(p);
	return rc;
}

void gc_plan_free(struct gc_plan *p)
{
	free(p->items);
	free(p->broken);
	memset(p, 0, sizeof *p);
}
