/* SPDX-License-Identifier: MIT */
/* worker.h -- the worker role: queue -> pools -> route steps (store, call) -> ack
 *
 * Consumes durable queue entries, runs each event's route step by step, each step in its
 * own pool (bulkhead), and acks the entry only when every step is done, skipped or
 * dead-lettered. `store` goes through the batched PostgreSQL writer; `call UPSTREAM` through
 * the upstream client (breaker, bulkhead, retry budget) and its fallback chain (Redis cache
 * -> local model -> defer). Outcomes are recorded in step_results; a redelivered event skips
 * the steps already recorded, so a crash between a call and the ack never calls twice.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "control/overload.h"
#include "sink/pg/writer.h"
#include "work/pool.h"
#include "queue/queue.h"
#include "lib/redis.h"
#include "work/routes.h"

struct worker_cfg {
	struct routes *routes;	     /* owned by the worker from worker_new() on */
	struct queue *queue;	     /* borrowed */
	const char *pg_conninfo;     /* required */
	struct pg_writer_config pgw; /* tuning; conninfo is filled from pg_conninfo */
	struct redis *redis;	     /* borrowed, may be NULL (no cache fallback) */
	uint64_t max_messages;	     /* retire after N events (0: never) */
	uint64_t max_age_ns;	     /* retire after running this long (0: never) */
	/* every pool's class weights at start (the NORMAL shares) and aging bounds per class
	 * (max_wait_ns: a backlogged class is served at least once per bound); zero: 70/25/5,
	 * no aging */
	struct dispatch_cfg dispatch;
	pool_retire_fn *retire;
	void *retire_arg;
};

struct worker_stats {
	uint64_t events_done;	       /* acked after every step */
	uint64_t events_dead_lettered; /* acked after an essential step went to dead_letters */
	uint64_t events_shed;	       /* sheddable events dropped at EMERGENCY (counted loss) */
	uint64_t events_duplicate;     /* a copy of an event stored earlier: acked, no steps */
	uint64_t steps_skipped;	       /* optional steps skipped in THIN/EMERGENCY */
	uint64_t steps_fallback;       /* call steps answered by cache or model */
	uint64_t steps_retried;	       /* step runs parked for a later retry */
	uint64_t steps_parked;	       /* of which parked durably (parked_steps) */
	uint64_t steps_replayed;       /* steps found already done on redelivery */
	uint64_t lag_ns[3];	       /* oldest waiting entry per class, over all pools */
	uint64_t depth[3];	       /* waiting entries per class, over all pools */
	uint64_t contended[3];	       /* pops that left lower-class work waiting, over all pools */
	uint32_t busiest_permille;     /* the fullest pool's in-flight / limit */
};

/* Start pools, writer and upstream clients, replay the queue's unacked entries, start
 * consuming. NULL + errno with err naming the cause (a bad [upstream] setting names its
 * file line). The routes are owned by the worker even on failure. */
struct worker *worker_new(const struct worker_cfg *cfg, char *err, size_t errlen);
/* Stop consuming, finish what is in flight (bounded by timeout_ms), free everything.
 * Entries not finished stay unacked in the queue and are replayed on the next start. */
void worker_free(struct worker *w, int timeout_ms);

/* Swap in a reloaded routes file (ownership moves in, also on failure). Only routes may
 * change: different pools or upstream settings are refused (-EINVAL, err says to restart)
 * and the current routes stay. */
int worker_set_routes(struct worker *w, struct routes *r, char *err, size_t errlen);

/* The class the current routes give an event type, or -1 when its route sets none. */
int worker_type_class(struct worker *w, const char *type);

/* Apply the overload controller's actions (skip optional steps, pause low, shed, class
 * shares of every pool). Shares that add up to 0 leave the weights as they are. One thread
 * (the controller's). */
void worker_apply(struct worker *w, const struct overload_actions *a);
void worker_get_stats(struct worker *w, struct worker_stats *st);

/* Per-pool and per-upstream numbers for /metrics: calls fn for each. */
struct upstream;
struct fallback;
void worker_each_pool(struct worker *w,
		      void (*fn)(void *arg, const char *name, const struct pool_stats *st),
		      void *arg);
void worker_each_upstream(struct worker *w,
			  void (*fn)(void *arg, struct upstream *u, struct fallback *fb),
			  void *arg);
struct pg_writer *worker_pg_writer(struct worker *w);

#endif /* SLUICE_WORKER_H */
