/* chains.c - per chain, what the GC's plan will merge of it and when.
 *
 * A chain is a visible leaf's path to its root: the disk a VM or a backup
 * tool knows, as in Xen Orchestra's "VDIs to coalesce".  A hidden layer
 * shared by several disks belongs to each of their chains, so the bytes of
 * two chains may count it twice (the status's queue_bytes counts it once).
 *
 * The ETA follows the worker: it runs the queue's items in order, one at a
 * time, skipping those that wait (in use, cancelled), and stops at the first
 * one the SR has no room for.  Each merge takes its bytes over the measured
 * speed (capped by the rate limit); nothing is guessed when no speed is
 * known yet, nor when it was measured under a lower rate limit than now. */
#include <stdlib.h>
#include <string.h>

#include "gc.h"

unsigned gc_item_layers(const struct gc_item *it)
{
	if (it->kind == GC_DELETE)
		return 0;
	return it->nlayers ? it->nlayers : 1;   /* a one-pass commit: its whole run */
}

uint64_t gc_space_need(const struct gc_item *it, uint64_t min_free)
{
	if (it->kind == GC_DELETE)
		return 0;
	return it->bytes + it->bytes / 64 + (4u << 20) + min_free;
}

/* Does the queue's item name the forest entry it was planned from? */
static int item_node(const struct gc_chain_input *in, const struct gc_item *it)
{
	if (it->entry >= in->nforest || strcmp(in->forest[it->entry].vhd, it->vhd))
		return -1;
	return (int)it->entry;
}

static bool same_item(const struct gc_item *a, const struct gc_item *b)
{
	return a && b && a->kind == b->kind && !strcmp(a->vhd, b->vhd);
}

/* The members of the chain of LEAF into MEMBER (the walk stops after every
 * node: a parent loop goes round for ever); its root's index. */
static unsigned mark_members(const struct gc_chain_input *in, unsigned leaf, bool *member)
{
	memset(member, 0, in->nforest * sizeof *member);
	int n = (int)leaf, root = n;
	for (unsigned steps = 0; n >= 0 && (unsigned)n < in->nforest && !member[n] &&
	                         steps <= in->nforest; steps++) {
		member[n] = true;
		root = n;
		n = in->forest[n].parent;
	}
	return (unsigned)root;
}

/* The speed the next merges will go at: the measured one capped by the
 * rate limit; unknown (0) when the limit was raised or lifted since (the
 * measurement is then only a lower bound). */
static double effective_speed(const struct gc_chain_input *in)
{
	double s = in->speed > 0 ? in->speed : 0;
	if (in->speed_limit && (!in->rate_limit || in->rate_limit > in->speed_limit))
		return 0;
	if (s > 0 && in->rate_limit && (double)in->rate_limit < s)
		s = (double)in->rate_limit;
	return s;
}

static int add_step(struct gc_chain *c, unsigned layers, double eta)
{
	struct gc_chain_step *s = realloc(c->steps, (c->nsteps + 1) * sizeof *s);
	if (!s)
		return -1;
	c->steps = s;
	c->depth -= layers < c->depth ? layers : c->depth - 1;   /* never below 1 */
	c->steps[c->nsteps++] = (struct gc_chain_step){ .depth = c->depth, .eta = eta };
	return 0;
}

/* Walk the queue as the worker will, adding the steps of chain C (its
 * members in MEMBER).  C->depth is the chain's depth on entry, and ends as
 * the depth the plan leaves it at; restored by the caller. */
static int walk_queue(const struct gc_chain_input *in, const bool *member, struct gc_chain *c)
{
	double speed = effective_speed(in);
	double t = speed > 0 ? 0 : -1;   /* when the worker is done with what it has seen */
	bool stalled = false;            /* one of the chain's merges waits */
	if (in->current) {
		int n = item_node(in, in->current);
		if (t >= 0)
			t += (double)in->current_left / speed;
		if (n >= 0 && member[n] && gc_item_layers(in->current)) {
			c->nodes += gc_item_layers(in->current);
			c->bytes += in->current_left;
			if (add_step(c, gc_item_layers(in->current), t))
				return -1;
		}
	}
	for (unsigned i = 0; i < in->nqueue; i++) {
		const struct gc_item *it = &in->queue[i];
		if (same_item(it, in->current))
			continue;
		int n = item_node(in, it);
		bool mine = n >= 0 && member[n] && gc_item_layers(it);
		bool runs = !it->note[0];
		uint64_t need = gc_space_need(it, in->min_free);
		if (runs && t >= 0)
			t = in->avail != UINT64_MAX && need > in->avail ? -1   /* the worker stops here */
			                                                : t + (double)it->bytes / speed;
		if (!mine)
			continue;
		if (c->next < 0) {
			c->next = (int)i;
			c->next_need = need;
			c->next_fits = in->avail == UINT64_MAX ? -1 : need <= in->avail;
		}
		if (!runs && !c->waits)
			c->waits = it->note;
		stalled |= !runs;
		c->nodes += gc_item_layers(it);
		c->bytes += it->bytes;
		if (add_step(c, gc_item_layers(it), stalled ? -1 : t))
			return -1;
	}
	return 0;
}

static int chain_of(const struct gc_chain_input *in, unsigned leaf, bool *member,
                    struct gc_chain *c)
{
	memset(c, 0, sizeof *c);
	c->leaf = leaf;
	c->root = mark_members(in, leaf, member);
	c->next = -1;
	c->next_fits = -1;
	c->depth = in->forest[leaf].depth ? in->forest[leaf].depth : 1;
	unsigned depth = c->depth;
	if (walk_queue(in, member, c))
		return -1;
	c->depth = depth;
	c->eta = c->nsteps ? c->steps[c->nsteps - 1].eta : 0;
	return 0;
}

int gc_chains_make(const struct gc_chain_input *in, struct gc_chain **out)
{
	*out = NULL;
	unsigned n = 0, cap = 0;
	bool *has_child = calloc(in->nforest + 1, sizeof *has_child);
	bool *member = calloc(in->nforest + 1, sizeof *member);
	struct gc_chain *c = NULL;
	int rc = has_child && member ? 0 : -1;
	for (unsigned i = 0; !rc && i < in->nforest; i++) {
		int p = in->forest[i].parent;
		if (p >= 0 && (unsigned)p < in->nforest)
			has_child[p] = true;
	}
	for (unsigned i = 0; !rc && i < in->nforest; i++) {
		const struct gc_node *nd = &in->forest[i];
		if (!nd->type || nd->hidden || has_child[i])
			continue;   /* not a visible leaf */
		if (n == cap) {
			struct gc_chain *m = realloc(c, (cap = cap ? 2 * cap : 8) * sizeof *m);
			if (!m) {
				rc = -1;
				break;
			}
			c = m;
		}
		rc = chain_of(in, i, member, &c[n]);
		n++;   /* counted even when it failed: its steps are freed below */
	}
	free(member);
	free(has_child);
	if (rc) {
		gc_chains_free(c, n);
		return -1;
	}
	*out = c;
	return (int)n;
}

void gc_chains_free(struct gc_chain *c, unsigned n)
{
	for (unsigned i = 0; c && i < n; i++)
		free(c[i].steps);
	free(c);
}

double gc_chain_eta_to_depth(const struct gc_chain *c, unsigned max_depth)
{
	if (c->depth <= max_depth)
		return 0;
	for (unsigned i = 0; i < c->nsteps; i++)
		if (c->steps[i].depth <= max_depth)
			return c->steps[i].eta;
	return -1;
}
