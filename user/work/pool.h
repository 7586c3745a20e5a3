/* SPDX-License-Identifier: MIT */
/* pool.h -- worker pools (bulkheads): named, own threads, own in-flight limit, own dispatcher
 *
 * Each pool orders its entries with its own struct dispatch and runs them on its own threads,
 * so a pool that is full (in_flight == max_inflight) or slow delays only its own entries.
 * A handler either finishes an entry (returns POOL_ACK: the pool acks it on the queue) or
 * keeps it (POOL_HELD) and later calls exactly one of
 *	pool_done(p, e)            every effect committed (e.g. the Postgres writer after
 *	                           COMMIT): ack on the queue, free the in-flight slot;
 *	pool_retry(p, e, delay)    run it again not before now + delay: the entry is parked in
 *	                           the dispatcher, the worker thread is free at once.
 * In-flight counts entries from dispatch until done/retry, so held entries (async work) are
 * bounded by max_inflight, not by the thread count. Classes can be paused and resumed
 * (thin mode pauses low): paused entries stay queued and keep counting in the lag.
 *
 * pool_set (below, pool_set.c) is the consumer side of a queue: one feeder thread takes
 * durable entries from the backend (queue_next), a route function picks each entry's pool,
 * and it implements worker retirement (--max-messages / --max-age): it counts finished
 * entries through each pool's done hook (pool_on_done) and stops the pools with pool_drain.
 * pool_set.c calls pool.c, never the other way round.
 */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "work/dispatch.h"
#include "queue/queue.h"

enum pool_verdict {
	POOL_ACK = 0,  /* done: the pool acks the entry */
	POOL_HELD = 1, /* the handler (or someone it handed e to) calls pool_done/pool_retry */
};

struct pool;
typedef enum pool_verdict pool_handler_fn(void *arg, struct pool *p, struct queue_entry *e);

struct pool_cfg {
	const char *name;      /* "db", "ai", ... (copied) */
	uint32_t threads;      /* worker threads (>= 1) */
	uint32_t max_inflight; /* entries dispatched and not done (0: = threads) */
	struct dispatch_cfg dispatch;
	pool_handler_fn *handler;
	void *arg;
};

struct pool_stats {
	uint64_t in_flight, max_inflight;
	uint64_t queued;		    /* ready + parked in the pool's dispatcher */
	uint64_t done, retried, full_waits; /* full_waits: times work waited for a free slot */
	uint64_t handed_over;		    /* entries moved on to another pool (next step) */
	uint32_t paused_mask;
	uint32_t weight[DISPATCH_CLASSES]; /* class weights (shares) in force */
	struct dispatch_stats dispatch;
};

/* Create a pool acking on q and start its threads. Returns NULL with errno: EINVAL (message
 * names the bad field), ENOMEM, or the pthread error. */
struct pool *pool_new(const struct pool_cfg *cfg, struct queue *q);
/* Stop the threads (after their current handler returns) and free the pool. Entries still
 * queued are handed back un-acked with queue ownership rules: they are simply freed here and
 * a restart replays them. Held entries must be finished before. NULL is a no-op. */
void pool_free(struct pool *p);
const char *pool_name(const struct pool *p);
/* Queue an entry for this pool (ownership moves in). -ENOMEM, -EINVAL (bad class),
 * -ESHUTDOWN while stopping; on failure the caller still owns e. */
int pool_submit(struct pool *p, struct queue_entry *e);
/* Every effect of a held entry is committed: ack it on the queue (which frees it) and free
 * its slot. Any thread. Returns the ack's result. */
int pool_done(struct pool *p, struct queue_entry *e);
/* Re-run a held entry not before now + delay_ns (attempts is incremented); frees the slot. */
int pool_retry(struct pool *p, struct queue_entry *e, uint64_t delay_ns);
/* Like pool_retry, but the wait is not an attempt (breaker open, bulkhead full, waiting
 * for retry budget): attempts is left as it is. */
int pool_defer(struct pool *p, struct queue_entry *e, uint64_t delay_ns);
/* Give up the pool's hold on a held entry without acking it: its slot is freed and the
 * caller owns e (e.g. the parked store took it over). */
void pool_forget(struct pool *p, struct queue_entry *e);
/* Move a held entry on to another pool (its next step runs there): frees the slot in from,
 * queues e in to without acking. If to refuses (stopping, -ENOMEM) the entry is parked in
 * from as a retry in 100 ms instead. Any thread. 0 or pool_retry's result. */
int pool_hand_over(struct pool *from, struct queue_entry *e, struct pool *to);
/* Pause / resume dispatch of one class in this pool. -EINVAL for a bad class. */
int pool_pause_class(struct pool *p, uint32_t class);
int pool_resume_class(struct pool *p, uint32_t class);
/* Class weights of this pool's dispatcher from the next pop on (dispatch_set_weights):
 * the overload controller's shares for its state. -EINVAL (unchanged) for a zero sum. */
int pool_set_class_weights(struct pool *p, const uint32_t weight[DISPATCH_CLASSES]);
/* DRR weight of a tenant in a class of this pool (see dispatch_set_tenant_weight). */
int pool_set_tenant_weight(struct pool *p, uint32_t class, uint32_t tenant, uint32_t weight);
void pool_stats(struct pool *p, struct pool_stats *st);
/* Stop dispatching new entries and wait until nothing is in flight (timeout_ms -1: forever,
 * 0: do not wait, only stop). 0 when drained, -ETIMEDOUT. Queued entries stay un-acked. */
int pool_drain(struct pool *p, int timeout_ms);
/* pool_submit with the caller's clock reading (CLOCK_REALTIME ns): one read per batch. */
int pool_submit_at(struct pool *p, struct queue_entry *e, uint64_t now);
/* The pool's dispatcher figures at `now` (CLOCK_REALTIME ns); cheaper than pool_stats. */
void pool_dispatch_stats(struct pool *p, uint64_t now, struct dispatch_stats *st);

/* The pool finished an entry (pool_done, or the handler returned POOL_ACK): called once per
 * entry, on the thread that finished it, after the ack and before its slot is freed, without
 * the pool's lock held, so it may call pool_drain(any, 0) on this pool or another. */
typedef void pool_done_fn(void *arg, struct pool *p);
/* Set the pool's done hook (fn NULL: none); one per pool, set by its owner (the pool_set that
 * counts done entries for --max-messages). Returns once no call of the previous hook is
 * running, so the previous arg may be freed then. Not from inside the hook (it would wait for
 * itself). */
void pool_on_done(struct pool *p, pool_done_fn *fn, void *arg);

/* ---- pool_set: queue consumer, routing and retirement ----------------------------------- */

struct pool_set;
/* Which pool runs e (index into the set's pools); may read e->data. */
typedef uint32_t pool_route_fn(void *arg, const struct queue_entry *e);
/* The set retired: everything in flight finished and acked; the owner should exit 0. */
typedef void pool_retire_fn(void *arg);

struct pool_set_cfg {
	struct queue *queue;
	struct pool **pools; /* borrowed; the set does not free them */
	uint32_t npools;
	pool_route_fn *route; /* NULL: everything to pools[0] */
	void *route_arg;
	uint64_t max_messages;	/* retire after this many entries done (0: never) */
	uint64_t max_age_ns;	/* retire after running this long (0: never) */
	pool_retire_fn *retire; /* called once, from the set's feeder thread */
	void *retire_arg;
};

/* Replay the queue's unacked entries into the pools, then start the feeder thread.
 * NULL + errno (EINVAL naming the field, ENOMEM, pthread error). */
struct pool_set *pool_set_new(const struct pool_set_cfg *cfg);
/* Stop the feeder; pools are left running (free them after). NULL is a no-op. */
void pool_set_free(struct pool_set *s);
/* Entries the set has seen finished (pool_done or POOL_ACK) across its pools. */
uint64_t pool_set_done(const struct pool_set *s);
bool pool_set_retired(const struct pool_set *s);
/* Per-class figures over every pool of the set, for metrics and the overload controller:
 * depth, delayed, dispatched, aged and tenants summed, lag_ns the largest (the age of the
 * oldest entry waiting anywhere). now = CLOCK_REALTIME ns (0: read the clock). */
void pool_set_class_stats(struct pool_set *s, uint64_t now, struct dispatch_stats *out);
/* Pause or resume one class in every pool of the set (thin mode pauses low). -EINVAL. */
int pool_set_pause_class(struct pool_set *s, uint32_t class, bool pause);

#endif /* SLUICE_POOL_H */
