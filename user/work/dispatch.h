/* SPDX-License-Identifier: MIT */
/* dispatch.h -- hierarchical dispatch: class weights with aging, tenant DRR, FIFO
 *
 * A pure data structure (no threads, no clock of its own: every call takes `now`, CLOCK_REALTIME
 * ns) that orders queue entries for one worker pool:
 *   class  critical > normal > low by smooth weighted round robin (default 70/25/5); a class
 *          whose waiting work has not been served for max_wait_ns is served next (aging), so
 *          no class starves however heavy the others are;
 *   tenant deficit round robin over the tenants with work in the class (quantum entries per
 *          turn, per-tenant weight), so a tenant with 100x the traffic gets its share only;
 *   FIFO   per tenant and class.
 * Entries with not_before_ns in the future (retries) wait in a min-heap and join their
 * tenant's FIFO when due. The caller locks (the pool does). Entries are linked through
 * queue_entry.next: no allocation per entry, only per (class, tenant) seen.
 */
#ifndef SLUICE_DISPATCH_H
#define SLUICE_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "queue/queue.h"

#define DISPATCH_CLASSES     QUEUE_CLASS_MAX
#define DISPATCH_ALL_CLASSES ((1u << DISPATCH_CLASSES) - 1)
#define DISPATCH_WEIGHT_MAX  1000000u /* class weight sum, quantum, tenant weight */

struct dispatch_cfg {
	/* shares (0,0,0 and no aging: 70/25/5); a class with weight 0 is served only when no
	 * class with a weight has work ready, or by aging */
	uint32_t weight[DISPATCH_CLASSES];
	uint64_t max_wait_ns[DISPATCH_CLASSES]; /* aging bound per class (0: none for that class) */
	uint32_t quantum;			/* DRR entries per tenant turn (0: 1) */
};

struct dispatch_tenant; /* per (class, tenant) FIFO, dispatch.c */

struct dispatch_class {
	struct dispatch_tenant **buckets; /* tenant hash, chained */
	uint32_t nbuckets, ntenants;
	struct dispatch_tenant *ring; /* active tenants (non-empty FIFO), head = current */
	struct dispatch_tenant *ring_tail;
	uint64_t depth;		   /* entries in FIFOs */
	uint64_t delayed;	   /* entries waiting for not_before */
	uint64_t dispatched, aged; /* pops; pops forced by aging */
	uint64_t contended;	   /* pops after which a lower class still had work ready */
	uint64_t waiting_since;	   /* backlogged and unserved since (aging clock) */
	int64_t current;	   /* smooth WRR state */
};

struct dispatch {
	struct dispatch_cfg cfg;
	struct dispatch_class cls[DISPATCH_CLASSES];
	struct queue_entry **heap; /* delayed entries, min-heap on not_before_ns */
	uint32_t heap_len, heap_cap;
};

struct dispatch_class_stats {
	uint64_t depth;	     /* ready entries */
	uint64_t delayed;    /* retries waiting for their not-before time */
	uint64_t lag_ns;     /* how long the oldest ready entry has been due (since enqueue,
			      * or since its retry/release time): 0 when empty */
	uint64_t dispatched; /* entries popped so far */
	uint64_t aged;	     /* of which forced by the aging bound */
	uint64_t contended;  /* of which left normal or low work waiting (pool the bottleneck) */
	uint32_t tenants;    /* tenants with ready entries */
};

struct dispatch_stats {
	struct dispatch_class_stats cls[DISPATCH_CLASSES];
};

/* Set up an empty dispatcher; cfg NULL = defaults (all weights 0 and no aging also means the
 * default weights). -EINVAL when the weight sum or quantum passes DISPATCH_WEIGHT_MAX;
 * nothing to undo on failure. */
int dispatch_init(struct dispatch *d, const struct dispatch_cfg *cfg);
/* Free the dispatcher's tables. Entries still inside are not freed: drain them first. */
void dispatch_fini(struct dispatch *d);
/* Add an entry (ownership moves in). A not_before_ns > now parks it until due.
 * -EINVAL for a class out of range, -ENOMEM (entry not added) when a new tenant's FIFO
 * cannot be allocated. */
int dispatch_push(struct dispatch *d, struct queue_entry *e, uint64_t now);
/* Take the next entry among the classes in class_mask (bit per class), or NULL when none is
 * ready. Ownership moves to the caller. */
struct queue_entry *dispatch_pop(struct dispatch *d, uint64_t now, unsigned class_mask);
/* Earliest not_before of a parked entry (UINT64_MAX if none): when to look again. */
uint64_t dispatch_next_due(const struct dispatch *d);
/* Ready + parked entries in all classes. */
uint64_t dispatch_count(const struct dispatch *d);
/* Remove one entry (any order) for shutdown/drain; NULL when empty. */
struct queue_entry *dispatch_take_any(struct dispatch *d);
/* Replace the class weights (the overload controller's shares for its state: 70/25/5 at
 * NORMAL and THIN, 100/0/0 at EMERGENCY by default). The smooth WRR state restarts, so the
 * new shares hold from the next pop; aging bounds stay. -EINVAL (weights unchanged) when the
 * sum is 0 or passes DISPATCH_WEIGHT_MAX. */
int dispatch_set_weights(struct dispatch *d, const uint32_t weight[DISPATCH_CLASSES]);
/* Give tenant a DRR weight in class (quantum multiplier, 1..DISPATCH_WEIGHT_MAX).
 * -EINVAL, -ENOMEM. */
int dispatch_set_tenant_weight(struct dispatch *d, uint32_t class, uint32_t tenant,
			       uint32_t weight);
/* Snapshot depth, parked retries, lag and counters per class. */
void dispatch_stats(const struct dispatch *d, uint64_t now, struct dispatch_stats *st);

#endif /* SLUICE_DISPATCH_H */
