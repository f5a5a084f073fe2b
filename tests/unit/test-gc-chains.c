/* test-gc-chains.c - the GC's per-chain summary and ETA (gc/chains.c) on
 * tables: an SR forest, the queue the planner would give, the running
 * operation, the measured speed, the rate limit and the free space; for each
 * visible leaf, the summary written out as one line:
 *   "LEAF<ROOT d=DEPTH n=NODES b=BYTES next=FITS eta=ETA [DEPTH@ETA ...] waits=NOTE"
 * (ETA "?" when unknown; FITS: y, n, ? when the free space is unknown, -
 * when no merge of the chain is queued; the space figure itself is checked
 * against gc_space_need's formula), and the ETA to a given depth
 * (gc_chain_eta_to_depth). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "unit.h"

#define MAX_NODES 10
#define MAX_OPS 8
#define MiB (1u << 20)
#define NEED(b) ((b) + (b) / 64 + 4 * MiB)   /* gc_space_need without --min-free */

struct node {
	const char *name, *parent;
	bool hidden;
};
struct op {
	enum gc_kind kind;
	const char *vhd;
	uint64_t bytes;
	const char *note;
	unsigned nlayers;   /* a commit's run length (0: 1) */
};
struct row {
	const char *what;
	struct node tree[MAX_NODES];
	struct op queue[MAX_OPS];
	int current;              /* index in queue of the running operation, -1 */
	uint64_t current_left;
	double speed;
	uint64_t rate_limit, avail, min_free;
	const char *want[MAX_NODES];   /* one line per visible leaf, forest order */
	unsigned to_depth;        /* gc_chain_eta_to_depth of the first chain ... */
	double want_to_depth;     /* ... is this */
	uint64_t speed_limit;     /* the rate limit the speed was measured under */
};

#define SPACE_UNKNOWN UINT64_MAX

static const struct row rows[] = {
	{ "a lone disk: depth 1, nothing to merge, done now",
	  { { "vm", NULL, false } }, { { 0 } }, -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "vm<vm d=1 n=0 b=0 next=- eta=0 []" }, 1, 0, 0 },
	{ "a 5-deep chain, 4 merges of 1 MB at 1 MB/s: 1 s each (free space unknown)",
	  { { "a", NULL, true }, { "b", "a", true }, { "c", "b", true }, { "d", "c", true },
	    { "e", "d", false } },
	  { { GC_COALESCE, "b", 1000000, NULL, 0 }, { GC_COALESCE, "c", 1000000, NULL, 0 },
	    { GC_COALESCE, "d", 1000000, NULL, 0 }, { GC_LEAF, "e", 1000000, NULL, 0 } },
	  -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "e<a d=5 n=4 b=4000000 next=? eta=4 [4@1 3@2 2@3 1@4]" }, 3, 2, 0 },
	{ "no speed measured yet: the ETA is unknown, the rest is known",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 300, NULL, 0 } }, -1, 0, 0, 0, 100 * MiB, 0,
	  { "b<a d=2 n=1 b=300 next=y eta=? [1@?]" }, 1, -1, 0 },
	{ "the rate limit caps the measured speed",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 4000000, NULL, 0 } }, -1, 0, 8e6, 1000000, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=4000000 next=? eta=4 [1@4]" }, 1, 4, 0 },
	{ "a rate limit above the speed changes nothing",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 4000000, NULL, 0 } }, -1, 0, 2e6, 50000000, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=4000000 next=? eta=2 [1@2]" }, 1, 2, 0 },
	{ "a speed measured under a rate limit, the limit lifted: only a lower bound, unknown",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 4000000, NULL, 0 } }, -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=4000000 next=? eta=? [1@?]" }, 1, -1, 1000000 },
	{ "measured under a limit, now a higher one: unknown",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 4000000, NULL, 0 } }, -1, 0, 1e6, 2000000, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=4000000 next=? eta=? [1@?]" }, 1, -1, 1000000 },
	{ "measured under a limit, now a lower one: capped by it",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 4000000, NULL, 0 } }, -1, 0, 1e6, 500000, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=4000000 next=? eta=8 [1@8]" }, 1, 8, 1000000 },
	{ "measured under the same limit: the measured speed",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 4000000, NULL, 0 } }, -1, 0, 9e5, 1000000, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=4000000 next=? eta=4.44444 [1@4.44444]" }, 1, 4000000 / 9e5, 1000000 },
	{ "a one-pass commit of a run of 3 layers shortens the chain by 3 at once",
	  { { "a", NULL, true }, { "b", "a", true }, { "c", "b", true }, { "d", "c", true },
	    { "e", "d", false } },
	  { { GC_COMMIT, "d", 3000000, NULL, 3 }, { GC_LEAF, "e", 1000000, NULL, 0 } },
	  -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "e<a d=5 n=4 b=4000000 next=? eta=4 [2@3 1@4]" }, 2, 3, 0 },
	{ "the running merge counts its bytes left, and is not counted twice from the queue",
	  { { "a", NULL, true }, { "b", "a", true }, { "c", "b", false } },
	  { { GC_COALESCE, "b", 5000000, NULL, 0 }, { GC_LEAF, "c", 2000000, NULL, 0 } },
	  0, 1000000, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "c<a d=3 n=2 b=3000000 next=? eta=3 [2@1 1@3]" }, 1, 3, 0 },
	{ "another chain's merges queued first delay this chain's ETA",
	  { { "x1", NULL, true }, { "x2", "x1", true }, { "x3", "x2", false },
	    { "y1", NULL, true }, { "y2", "y1", false } },
	  { { GC_COALESCE, "x2", 2000000, NULL, 0 }, { GC_LEAF, "x3", 1000000, NULL, 0 },
	    { GC_LEAF, "y2", 1000000, NULL, 0 } },
	  -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "x3<x1 d=3 n=2 b=3000000 next=? eta=3 [2@2 1@3]",
	    "y2<y1 d=2 n=1 b=1000000 next=? eta=4 [1@4]" }, 1, 3, 0 },
	{ "garbage deletes take no time; a visible disk with a (garbage) child is no leaf",
	  { { "vm", NULL, false }, { "snap", "vm", true }, { "a", NULL, true }, { "b", "a", false } },
	  { { GC_DELETE, "snap", 0, NULL, 0 }, { GC_LEAF, "b", 1000000, NULL, 0 } },
	  -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=1000000 next=? eta=1 [1@1]" }, 1, 1, 0 },
	{ "a shared hidden layer counts in the chain of each disk above it",
	  { { "base", NULL, true }, { "mid", "base", true }, { "v1", "mid", false },
	    { "v2", "mid", false } },
	  { { GC_COALESCE, "mid", 2000000, NULL, 0 } }, -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "v1<base d=3 n=1 b=2000000 next=? eta=2 [2@2]",
	    "v2<base d=3 n=1 b=2000000 next=? eta=2 [2@2]" }, 2, 2, 0 },
	{ "a merge that waits (leaf in use): its depth and every later one unknown",
	  { { "a", NULL, true }, { "b", "a", true }, { "c", "b", true }, { "d", "c", false } },
	  { { GC_COALESCE, "b", 1000000, NULL, 0 }, { GC_COALESCE, "c", 1000000, "in use", 0 },
	    { GC_LEAF, "d", 1000000, NULL, 0 } },
	  -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "d<a d=4 n=3 b=3000000 next=? eta=? [3@1 2@? 1@?] waits=in use" }, 3, 1, 0 },
	{ "a waiting merge of another chain is skipped by the worker: no delay",
	  { { "x1", NULL, true }, { "x2", "x1", false }, { "y1", NULL, true }, { "y2", "y1", false } },
	  { { GC_LEAF, "x2", 9000000, "in use", 0 }, { GC_LEAF, "y2", 1000000, NULL, 0 } },
	  -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "x2<x1 d=2 n=1 b=9000000 next=? eta=? [1@?] waits=in use",
	    "y2<y1 d=2 n=1 b=1000000 next=? eta=1 [1@1]" }, 1, -1, 0 },
	{ "the next merge does not fit: it and everything after it waits for space",
	  { { "x1", NULL, true }, { "x2", "x1", false }, { "y1", NULL, true }, { "y2", "y1", false } },
	  { { GC_LEAF, "x2", 200 * MiB, NULL, 0 }, { GC_LEAF, "y2", 1 * MiB, NULL, 0 } },
	  -1, 0, 1e6, 0, 100 * MiB, 0,
	  { "x2<x1 d=2 n=1 b=209715200 next=n eta=? [1@?]",
	    "y2<y1 d=2 n=1 b=1048576 next=y eta=? [1@?]" }, 1, -1, 0 },
	{ "--min-free counts in the space the next merge needs",
	  { { "a", NULL, true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 10 * MiB, NULL, 0 } }, -1, 0, 1e6, 0, 30 * MiB, 20 * MiB,
	  { "b<a d=2 n=1 b=10485760 next=n eta=? [1@?]" }, 1, -1, 0 },
	{ "too few merges planned for the depth asked: unknown",
	  { { "vm", NULL, false }, { "a", "vm", true }, { "b", "a", false } },
	  { { GC_LEAF, "b", 1000000, NULL, 0 } }, -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "b<vm d=3 n=1 b=1000000 next=? eta=1 [2@1]" }, 1, -1, 0 },
	{ "hidden leaves are no chains; an item naming no file of the forest is in no chain (its time counts)",
	  { { "a", NULL, true }, { "b", "a", false }, { "h", NULL, true } },
	  { { GC_LEAF, "gone", 1000000, NULL, 0 }, { GC_LEAF, "b", 1000000, NULL, 0 } },
	  -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "b<a d=2 n=1 b=1000000 next=? eta=2 [1@2]" }, 1, 2, 0 },
	{ "a parent loop ends the walk to the root",
	  { { "l1", "l2", true }, { "l2", "l1", true }, { "v", "l1", false } },
	  { { 0 } }, -1, 0, 1e6, 0, SPACE_UNKNOWN, 0,
	  { "v<l2 d=3 n=0 b=0 next=- eta=0 []" }, 3, 0, 0 },
};

static int index_of(const struct row *r, const char *name)
{
	for (int i = 0; name && i < MAX_NODES && r->tree[i].name; i++)
		if (!strcmp(r->tree[i].name, name))
			return i;
	return -1;
}

/* The forest the scan would give (depth: 1 + the parent's, a loop counted
 * once round), and the queue with each item's entry. */
static void build(const struct row *r, struct gc_node *f, unsigned *nf, struct gc_item *q,
                  unsigned *nq)
{
	*nf = 0;
	for (; *nf < MAX_NODES && r->tree[*nf].name; (*nf)++) {
		struct gc_node *n = &f[*nf];
		memset(n, 0, sizeof *n);
		snprintf(n->vhd, sizeof n->vhd, "%s", r->tree[*nf].name);
		n->parent = index_of(r, r->tree[*nf].parent);
		n->type = n->parent >= 0 ? VHD_TYPE_DIFF : VHD_TYPE_DYNAMIC;
		n->hidden = r->tree[*nf].hidden;
	}
	for (unsigned i = 0; i < *nf; i++) {
		bool seen[MAX_NODES] = { false };
		for (int p = (int)i; p >= 0 && !seen[p]; p = f[p].parent) {
			seen[p] = true;
			f[i].depth++;
		}
	}
	*nq = 0;
	for (; *nq < MAX_OPS && r->queue[*nq].vhd; (*nq)++) {
		const struct op *o = &r->queue[*nq];
		struct gc_item *it = &q[*nq];
		memset(it, 0, sizeof *it);
		it->kind = o->kind;
		snprintf(it->vhd, sizeof it->vhd, "%s", o->vhd);
		it->bytes = o->bytes;
		it->nlayers = o->nlayers ? o->nlayers : 1;
		snprintf(it->note, sizeof it->note, "%s", o->note ? o->note : "");
		int e = index_of(r, o->vhd);
		it->entry = e >= 0 ? (unsigned)e : 99;
	}
}

static void eta_text(double eta, char *out, size_t len)
{
	if (eta < 0)
		snprintf(out, len, "?");
	else
		snprintf(out, len, "%g", eta);
}

static void describe(const struct gc_node *f, const struct gc_chain *c, char *out, size_t len)
{
	/* the space figure is checked apart (check_need); the line says if it fits */
	const char *need = c->next < 0 ? "-" : c->next_fits < 0 ? "?" : c->next_fits ? "y" : "n";
	char e[32];
	eta_text(c->eta, e, sizeof e);
	int n = snprintf(out, len, "%s<%s d=%u n=%u b=%llu next=%s eta=%s [", f[c->leaf].vhd,
	                 f[c->root].vhd, c->depth, c->nodes, (unsigned long long)c->bytes, need, e);
	for (unsigned i = 0; i < c->nsteps && n > 0 && (size_t)n < len; i++) {
		eta_text(c->steps[i].eta, e, sizeof e);
		n += snprintf(out + n, len - (size_t)n, "%s%u@%s", i ? " " : "", c->steps[i].depth, e);
	}
	if (n > 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, "]%s%s", c->waits ? " waits=" : "",
		         c->waits ? c->waits : "");
}

/* The space figure of the chain's next merge: gc_space_need of that item. */
static void check_need(const struct row *r, const struct gc_item *q, const struct gc_chain *c)
{
	if (c->next < 0)
		return;
	uint64_t want = NEED(q[c->next].bytes) + r->min_free;
	CHECK(c->next_need == want, "%s: next merge needs %llu, expected %llu", r->what,
	      (unsigned long long)c->next_need, (unsigned long long)want);
}

static void check_row(const struct row *r)
{
	struct gc_node forest[MAX_NODES];
	struct gc_item queue[MAX_OPS];
	unsigned nf, nq;
	build(r, forest, &nf, queue, &nq);
	struct gc_chain_input in = {
		.forest = forest, .nforest = nf, .queue = queue, .nqueue = nq,
		.current = r->current >= 0 ? &queue[r->current] : NULL,
		.current_left = r->current_left, .speed = r->speed, .speed_limit = r->speed_limit,
		.rate_limit = r->rate_limit,
		.avail = r->avail, .min_free = r->min_free,
	};
	unsigned before = unit_failures;
	struct gc_chain *c;
	int n = gc_chains_make(&in, &c);
	CHECK(n >= 0, "%s: gc_chains_make failed", r->what);
	if (n < 0)
		return;
	int want = 0;
	while (want < MAX_NODES && r->want[want])
		want++;
	for (int i = 0; i < n || i < want; i++) {
		char got[512] = "(none)";
		if (i < n) {
			describe(forest, &c[i], got, sizeof got);
			check_need(r, queue, &c[i]);
		}
		const char *exp = i < want ? r->want[i] : "(none)";
		CHECK(!strcmp(got, exp), "%s: chain %s, expected %s", r->what, got, exp);
	}
	if (n > 0) {
		double eta = gc_chain_eta_to_depth(&c[0], r->to_depth);
		CHECK(eta == r->want_to_depth, "%s: ETA to depth %u: %g, expected %g", r->what,
		      r->to_depth, eta, r->want_to_depth);
	}
	if (unit_failures == before)
		printf("ok: %s: %d chain(s)\n", r->what, n);
	gc_chains_free(c, (unsigned)n);
}

/* The speed's mean: the first sample sets it, then 30% of each new one. */
static void check_mean(void)
{
	static const struct { double mean; unsigned samples; double sample, want; } t[] = {
		{ 0, 0, 5e6, 5e6 },
		{ 5e6, 1, 1e6, 0.3 * 1e6 + 0.7 * 5e6 },
		{ 1e6, 7, 1e6, 1e6 },
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		double got = gc_speed_mean(t[i].mean, t[i].samples, t[i].sample);
		CHECK(got == t[i].want, "mean %g after %u samples + %g: %g, expected %g", t[i].mean,
		      t[i].samples, t[i].sample, got, t[i].want);
	}
	printf("ok: the speed's mean on %zu cases\n", sizeof t / sizeof *t);
}

int main(void)
{
	size_t nrows = sizeof rows / sizeof *rows;
	for (size_t i = 0; i < nrows; i++)
		check_row(&rows[i]);
	check_mean();
	printf("%zu SRs summarised\n", nrows);
	return unit_done("test-gc-chains");
}
