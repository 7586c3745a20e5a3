// SPDX-License-Identifier: MIT
/* pool_set.c -- queue consumer: replay, feeder thread, routing to pools, worker retirement
 *
 * The feeder takes durable entries from the backend (queue_next, 100 ms waits so it notices
 * stop and max_age without a timer) and submits each to the pool its route picks. A pool
 * that refuses an entry (no memory) gets it again on the next round; nothing is dropped.
 * Retirement (--max-messages N / --max-age T, the memory-leak guard): each pool's done hook
 * counts finished entries and, at N, stops every pool from dispatching (pool_drain, no wait);
 * the feeder stops taking entries and waits in pool_drain until nothing is in flight (held
 * entries included, so their effects are committed and acked), then the owner's retire
 * callback runs; the owner frees the pools and the queue (which makes the acks durable) and
 * exits 0. Entries still queued in the pools were never acked: the next process replays them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "work/pool.h"

struct pool_set {
	struct pool_set_cfg cfg;
	struct pool **pools; /* copy of cfg.pools */
	pthread_t feeder;
	bool started;
	uint64_t done;		   /* atomic */
	uint64_t start_ns;	   /* CLOCK_MONOTONIC */
	int stop;		   /* atomic */
	int retired;		   /* atomic */
	int retiring;		   /* atomic: the pools were told to take nothing new */
	struct queue_entry *stash; /* refused by a pool, to submit again */
	bool route_warned;
};

/* Each pool's done hook (pool_on_done): count, and at max_messages stop every pool from
 * taking more at once. Only the first to get there stops them; the feeder does the waiting. */
static void pool_set_count_done(void *arg, struct pool *p)
{
	struct pool_set *s = arg;
	uint64_t done = __atomic_add_fetch(&s->done, 1, __ATOMIC_RELAXED);

	(void)p;
	if (!s->cfg.max_messages || done < s->cfg.max_messages ||
	    __atomic_exchange_n(&s->retiring, 1, __ATOMIC_ACQ_REL))
		return;
	for (uint32_t i = 0; i < s->cfg.npools; i++)
		pool_drain(s->pools[i], 0);
}

static void pool_set_route(struct pool_set *s, struct queue_entry *e, uint64_t now)
{
	uint32_t idx = s->cfg.route ? s->cfg.route(s->cfg.route_arg, e) : 0;

	if (idx >= s->cfg.npools) {
		if (!s->route_warned)
			log_error(
			    "pool_set: route picked a pool that does not exist; using the first",
			    "pool_index=%u pools=%u", idx, s->cfg.npools);
		s->route_warned = true;
		idx = 0;
	}
	e->pool = idx;
	if (pool_submit_at(s->pools[idx], e, now)) {
		e->next = s->stash;
		s->stash = e;
	}
}

static void pool_set_replay_cb(void *arg, struct queue_entry *e)
{
	pool_set_route(arg, e, clock_real_ns());
}

static bool pool_set_due(struct pool_set *s)
{
	uint64_t done = __atomic_load_n(&s->done, __ATOMIC_RELAXED);

	return (s->cfg.max_messages && done >= s->cfg.max_messages) ||
	       (s->cfg.max_age_ns && clock_mono_ns() - s->start_ns >= s->cfg.max_age_ns);
}

static void pool_set_retire(struct pool_set *s)
{
	__atomic_store_n(&s->retiring, 1, __ATOMIC_RELEASE);
	log_info("pool_set: retiring: draining in-flight work",
		 "done=%llu max_messages=%llu "
		 "max_age_ms=%llu",
		 (unsigned long long)__atomic_load_n(&s->done, __ATOMIC_RELAXED),
		 (unsigned long long)s->cfg.max_messages,
		 (unsigned long long)(s->cfg.max_age_ns / 1000000));
	for (uint32_t i = 0; i < s->cfg.npools; i++)
		pool_drain(s->pools[i], -1);
	__atomic_store_n(&s->retired, 1, __ATOMIC_RELEASE);
	log_info("pool_set: retired; in-flight work finished and acked", "done=%llu",
		 (unsigned long long)__atomic_load_n(&s->done, __ATOMIC_RELAXED));
	if (s->cfg.retire)
		s->cfg.retire(s->cfg.retire_arg);
}

static void *pool_set_feeder(void *arg)
{
	struct pool_set *s = arg;
	struct queue_entry *batch[64];

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		struct queue_entry *stash = s->stash;
		uint64_t now;
		int n;

		if (pool_set_due(s)) {
			pool_set_retire(s);
			break;
		}
		s->stash = NULL;
		while (stash) {
			struct queue_entry *e = stash;

			stash = e->next;
			pool_set_route(s, e, clock_real_ns());
		}
		n = queue_next(s->cfg.queue, batch, 64, 100);
		now = n > 0 ? clock_real_ns() : 0;
		for (int i = 0; i < n; i++)
			pool_set_route(s, batch[i], now);
	}
	return NULL;
}

struct pool_set *pool_set_new(const struct pool_set_cfg *cfg)
{
	struct pool_set *s;
	int err;

	if (!cfg || !cfg->queue || !cfg->pools || !cfg->npools) {
		log_error("pool_set: needs a queue and at least one pool", "%s", "");
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->pools = calloc(cfg->npools, sizeof(*s->pools)))) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->cfg = *cfg;
	memcpy(s->pools, cfg->pools, cfg->npools * sizeof(*s->pools));
	s->cfg.pools = s->pools;
	for (uint32_t i = 0; i < cfg->npools; i++)
		pool_on_done(s->pools[i], pool_set_count_done, s);
	s->start_ns = clock_mono_ns();
	queue_replay(cfg->queue, pool_set_replay_cb, s);
	err = pthread_create(&s->feeder, NULL, pool_set_feeder, s);
	if (err) {
		pool_set_free(s);
		errno = err;
		return NULL;
	}
	s->started = true;
	return s;
}

void pool_set_free(struct pool_set *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	if (s->started)
		pthread_join(s->feeder, NULL);
	for (uint32_t i = 0; i < s->cfg.npools; i++)
		pool_on_done(s->pools[i], NULL, NULL); /* waits out a running count */
	while (s->stash) {
		struct queue_entry *e = s->stash;

		s->stash = e->next;
		free(e); /* un-acked: a restart replays it */
	}
	free(s->pools);
	free(s);
}

uint64_t pool_set_done(const struct pool_set *s)
{
	return __atomic_load_n(&s->done, __ATOMIC_RELAXED);
}

bool pool_set_retired(const struct pool_set *s)
{
	return __atomic_load_n(&s->retired, __ATOMIC_ACQUIRE);
}

void pool_set_class_stats(struct pool_set *s, uint64_t now, struct dispatch_stats *out)
{
	if (!now)
		now = clock_real_ns();
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < s->cfg.npools; i++) {
		struct dispatch_stats one;

		pool_dispatch_stats(s->pools[i], now, &one);
		for (int c = 0; c < DISPATCH_CLASSES; c++) {
			struct dispatch_class_stats *o = &out->cls[c], *p = &one.cls[c];

			o->depth += p->depth;
			o->delayed += p->delayed;
			o->dispatched += p->dispatched;
			o->aged += p->aged;
			o->tenants += p->tenants;
			if (p->lag_ns > o->lag_ns)
				o->lag_ns = p->lag_ns;
		}
	}
}

int pool_set_pause_class(struct pool_set *s, uint32_t class, bool pause)
{
	for (uint32_t i = 0; i < s->cfg.npools; i++) {
		int err = pause ? pool_pause_class(s->pools[i], class)
				: pool_resume_class(s->pools[i], class);

		if (err)
			return err;
	}
	return 0;
}
