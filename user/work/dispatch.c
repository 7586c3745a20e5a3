// SPDX-License-Identifier: MIT
/* dispatch.c -- hierarchical dispatch: class weights with aging, tenant DRR, FIFO
 *
 * Class choice, per pop, among the classes in the caller's mask that have ready entries:
 *  1. aging: a class unserved for at least its max_wait_ns (since it last got a pop, or
 *     since it became non-empty) wins; the most overdue first. So a backlogged class gets at
 *     least one dispatch per max_wait_ns whatever the load of the others.
 *  2. otherwise smooth weighted round robin (nginx's SWRR) over the candidates with a
 *     weight: each gains its weight, the largest current wins and pays the total. Over any
 *     window the shares converge to the weights, interleaved rather than in bursts.
 *  3. only weight-0 candidates: the longest-unserved one (work conserving).
 * Tenant choice inside the class: deficit round robin with a cost of one per entry. The ring
 * holds the tenants with ready entries; the head tenant gets quantum * weight credits when
 * its turn starts, spends one per pop, and moves to the tail when they run out or its FIFO
 * empties (then its deficit resets, so idle tenants bank nothing).
 * Retries (not_before_ns > now) wait in a min-heap; when due they go to the head of their
 * tenant's FIFO (they are older than anything behind them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "work/dispatch.h"

struct dispatch_tenant {
	struct dispatch_tenant *hnext; /* hash chain */
	struct dispatch_tenant *rnext; /* ring order */
	struct queue_entry *head, *tail;
	uint64_t count;
	int64_t deficit;
	uint32_t tenant, weight;
	bool active; /* in the ring */
};

static const uint32_t default_weight[DISPATCH_CLASSES] = {70, 25, 5};

static uint32_t tenant_hash(uint32_t t)
{
	return t * 2654435761u;
}

static int class_rehash(struct dispatch_class *c)
{
	uint32_t n = c->nbuckets ? c->nbuckets * 2 : 64;
	struct dispatch_tenant **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nbuckets; i++) {
		struct dispatch_tenant *t = c->buckets[i], *next;

		for (; t; t = next) {
			next = t->hnext;
			t->hnext = b[tenant_hash(t->tenant) & (n - 1)];
			b[tenant_hash(t->tenant) & (n - 1)] = t;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	return 0;
}

static struct dispatch_tenant *tenant_get(struct dispatch_class *c, uint32_t tenant)
{
	struct dispatch_tenant *t;
	uint32_t h;

	if (c->nbuckets) {
		for (t = c->buckets[tenant_hash(tenant) & (c->nbuckets - 1)]; t; t = t->hnext)
			if (t->tenant == tenant)
				return t;
	}
	if ((c->ntenants + 1 > c->nbuckets * 2 || !c->nbuckets) && class_rehash(c))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->tenant = tenant;
	t->weight = 1;
	h = tenant_hash(tenant) & (c->nbuckets - 1);
	t->hnext = c->buckets[h];
	c->buckets[h] = t;
	c->ntenants++;
	return t;
}

static void ring_append(struct dispatch_class *c, struct dispatch_tenant *t)
{
	t->rnext = NULL;
	if (c->ring_tail)
		c->ring_tail->rnext = t;
	else
		c->ring = t;
	c->ring_tail = t;
}

static struct dispatch_tenant *ring_pop_head(struct dispatch_class *c)
{
	struct dispatch_tenant *t = c->ring;

	c->ring = t->rnext;
	if (!c->ring)
		c->ring_tail = NULL;
	t->rnext = NULL;
	return t;
}

/* Put e into its tenant FIFO (at the head for a due retry). Ready for dispatch at once. */
static int fifo_add(struct dispatch *d, struct queue_entry *e, uint64_t now, bool at_head)
{
	struct dispatch_class *c = &d->cls[e->class];
	struct dispatch_tenant *t = tenant_get(c, e->tenant);

	if (!t)
		return -ENOMEM;
	if (at_head) {
		e->next = t->head;
		t->head = e;
		if (!t->tail)
			t->tail = e;
	} else {
		e->next = NULL;
		if (t->tail)
			t->tail->next = e;
		else
			t->head = e;
		t->tail = e;
	}
	t->count++;
	if (!t->active) {
		t->active = true;
		t->deficit = 0;
		ring_append(c, t);
	}
	if (!c->depth++)
		c->waiting_since = now;
	return 0;
}

static int heap_push(struct dispatch *d, struct queue_entry *e)
{
	uint32_t i;

	if (d->heap_len == d->heap_cap) {
		uint32_t cap = d->heap_cap ? d->heap_cap * 2 : 64;
		struct queue_entry **h = realloc(d->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		d->heap = h;
		d->heap_cap = cap;
	}
	for (i = d->heap_len++; i; i = (i - 1) / 2) {
		struct queue_entry *parent = d->heap[(i - 1) / 2];

		if (parent->not_before_ns <= e->not_before_ns)
			break;
		d->heap[i] = parent;
	}
	d->heap[i] = e;
	d->cls[e->class].delayed++;
	return 0;
}

static struct queue_entry *heap_pop(struct dispatch *d)
{
	struct queue_entry *top = d->heap[0], *last = d->heap[--d->heap_len];
	uint32_t i = 0;

	for (;;) {
		uint32_t l = 2 * i + 1, m = l;

		if (l >= d->heap_len)
			break;
		if (l + 1 < d->heap_len &&
		    d->heap[l + 1]->not_before_ns < d->heap[l]->not_before_ns)
			m = l + 1;
		if (last->not_before_ns <= d->heap[m]->not_before_ns)
			break;
		d->heap[i] = d->heap[m];
		i = m;
	}
	if (d->heap_len)
		d->heap[i] = last;
	d->cls[top->class].delayed--;
	return top;
}

/* Move retries whose time has come into their FIFOs. */
static void heap_promote(struct dispatch *d, uint64_t now)
{
	while (d->heap_len && d->heap[0]->not_before_ns <= now) {
		struct queue_entry *e = heap_pop(d);

		if (fifo_add(d, e, now, true)) {
			heap_push(d, e); /* no memory for a tenant: try again next pop */
			return;
		}
	}
}

int dispatch_init(struct dispatch *d, const struct dispatch_cfg *cfg)
{
	uint64_t sum = 0, aging = 0;

	memset(d, 0, sizeof(*d));
	if (cfg)
		d->cfg = *cfg;
	for (int c = 0; c < DISPATCH_CLASSES; c++) {
		sum += d->cfg.weight[c];
		aging |= d->cfg.max_wait_ns[c];
	}
	if (!sum && !aging)
		memcpy(d->cfg.weight, default_weight, sizeof(default_weight));
	if (!d->cfg.quantum)
		d->cfg.quantum = 1;
	/* keeps the SWRR and deficit arithmetic far from overflow */
	if (sum > DISPATCH_WEIGHT_MAX || d->cfg.quantum > DISPATCH_WEIGHT_MAX)
		return -EINVAL;
	return 0;
}

void dispatch_fini(struct dispatch *d)
{
	for (int c = 0; c < DISPATCH_CLASSES; c++) {
		struct dispatch_class *cl = &d->cls[c];

		for (uint32_t i = 0; i < cl->nbuckets; i++) {
			struct dispatch_tenant *t = cl->buckets[i], *next;

			for (; t; t = next) {
				next = t->hnext;
				free(t);
			}
		}
		free(cl->buckets);
	}
	free(d->heap);
	memset(d, 0, sizeof(*d));
}

int dispatch_push(struct dispatch *d, struct queue_entry *e, uint64_t now)
{
	if (e->class >= DISPATCH_CLASSES)
		return -EINVAL;
	if (e->not_before_ns > now)
		return heap_push(d, e);
	return fifo_add(d, e, now, false);
}

/* Step 1 of the class choice: the most overdue class past its aging bound, or -1. */
static int class_aged(struct dispatch *d, uint64_t now, unsigned mask)
{
	uint64_t over = 0;
	int aged = -1;

	for (int c = 0; c < DISPATCH_CLASSES; c++) {
		struct dispatch_class *cl = &d->cls[c];
		uint64_t wait = now > cl->waiting_since ? now - cl->waiting_since : 0;

		if (!(mask & (1u << c)) || !cl->depth || !d->cfg.max_wait_ns[c] ||
		    wait < d->cfg.max_wait_ns[c])
			continue;
		if (aged < 0 || wait - d->cfg.max_wait_ns[c] > over) {
			aged = c;
			over = wait - d->cfg.max_wait_ns[c];
		}
	}
	return aged;
}

/* Steps 1-3 of the class choice (see the top of the file); -1 when nothing is ready. */
static int class_pick(struct dispatch *d, uint64_t now, unsigned mask)
{
	int best = -1, idle0 = -1, aged = class_aged(d, now, mask);
	int64_t total = 0;

	if (aged >= 0) {
		d->cls[aged].aged++;
		return aged;
	}
	for (int c = 0; c < DISPATCH_CLASSES; c++) {
		struct dispatch_class *cl = &d->cls[c];

		if (!(mask & (1u << c)) || !cl->depth)
			continue;
		if (!d->cfg.weight[c]) {
			if (idle0 < 0 || cl->waiting_since < d->cls[idle0].waiting_since)
				idle0 = c;
			continue;
		}
		cl->current += d->cfg.weight[c];
		total += d->cfg.weight[c];
		if (best < 0 || cl->current > d->cls[best].current)
			best = c;
	}
	if (best < 0)
		return idle0;
	d->cls[best].current -= total;
	return best;
}

/* Deficit round robin over the class's ready tenants; the class has depth > 0. */
static struct queue_entry *drr_pop(struct dispatch *d, struct dispatch_class *c)
{
	struct dispatch_tenant *t = c->ring;
	struct queue_entry *e;

	if (t->deficit <= 0)
		t->deficit += (int64_t)d->cfg.quantum * t->weight;
	e = t->head;
	t->head = e->next;
	if (!t->head)
		t->tail = NULL;
	e->next = NULL;
	t->count--;
	t->deficit--;
	c->depth--;
	if (!t->count) {
		ring_pop_head(c);
		t->active = false;
		t->deficit = 0;
	} else if (t->deficit <= 0) {
		ring_append(c, ring_pop_head(c));
	}
	return e;
}

struct queue_entry *dispatch_pop(struct dispatch *d, uint64_t now, unsigned class_mask)
{
	struct dispatch_class *c;
	struct queue_entry *e;
	int k;

	heap_promote(d, now);
	k = class_pick(d, now, class_mask);
	if (k < 0)
		return NULL;
	c = &d->cls[k];
	c->dispatched++;
	c->waiting_since = now;
	e = drr_pop(d, c);
	/* the pool could not keep up with the classes below critical at this pop: what each
	 * class takes of such pops is what it needs of a saturated pool (overload.c) */
	for (int l = 1; l < DISPATCH_CLASSES; l++)
		if ((class_mask & (1u << l)) && d->cls[l].depth) {
			c->contended++;
			break;
		}
	return e;
}

uint64_t dispatch_next_due(const struct dispatch *d)
{
	return d->heap_len ? d->heap[0]->not_before_ns : UINT64_MAX;
}

uint64_t dispatch_count(const struct dispatch *d)
{
	uint64_t n = 0;

	for (int c = 0; c < DISPATCH_CLASSES; c++)
		n += d->cls[c].depth + d->cls[c].delayed;
	return n;
}

struct queue_entry *dispatch_take_any(struct dispatch *d)
{
	if (d->heap_len)
		return heap_pop(d);
	for (int c = 0; c < DISPATCH_CLASSES; c++)
		if (d->cls[c].depth)
			return drr_pop(d, &d->cls[c]);
	return NULL;
}

int dispatch_set_weights(struct dispatch *d, const uint32_t weight[DISPATCH_CLASSES])
{
	uint64_t sum = 0;

	for (int c = 0; c < DISPATCH_CLASSES; c++)
		sum += weight[c];
	if (!sum || sum > DISPATCH_WEIGHT_MAX)
		return -EINVAL;
	for (int c = 0; c < DISPATCH_CLASSES; c++) {
		d->cfg.weight[c] = weight[c];
		d->cls[c].current = 0;
	}
	return 0;
}

int dispatch_set_tenant_weight(struct dispatch *d, uint32_t class, uint32_t tenant, uint32_t weight)
{
	struct dispatch_tenant *t;

	if (class >= DISPATCH_CLASSES || !weight || weight > DISPATCH_WEIGHT_MAX)
		return -EINVAL;
	t = tenant_get(&d->cls[class], tenant);
	if (!t)
		return -ENOMEM;
	t->weight = weight;
	return 0;
}

void dispatch_stats(const struct dispatch *d, uint64_t now, struct dispatch_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (int c = 0; c < DISPATCH_CLASSES; c++) {
		const struct dispatch_class *cl = &d->cls[c];
		struct dispatch_class_stats *s = &st->cls[c];
		uint64_t oldest = UINT64_MAX;

		for (const struct dispatch_tenant *t = cl->ring; t; t = t->rnext) {
			/* lag counts from when the entry became due (enqueued, or its retry or
			 * release time), not from its receipt: a retry an hour after receipt is
			 * not an hour of backlog (issue 18) */
			uint64_t due = t->head->enq_ns > t->head->not_before_ns
					   ? t->head->enq_ns
					   : t->head->not_before_ns;

			s->tenants++;
			if (due < oldest)
				oldest = due;
		}
		s->depth = cl->depth;
		s->delayed = cl->delayed;
		s->lag_ns = oldest != UINT64_MAX && now > oldest ? now - oldest : 0;
		s->dispatched = cl->dispatched;
		s->aged = cl->aged;
		s->contended = cl->contended;
	}
}
