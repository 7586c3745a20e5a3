/* SPDX-License-Identifier: MIT */
/* release.h -- parked call steps: park durably, release due ones at a ramp
 *
 * A call step whose retry is further away than park.after_ms, or whose upstream's breaker
 * is open, does not wait in memory or in the intake queue: release_park commits it to the
 * parked_steps table (user/sink/pg/parked.c) and only then finishes its queue entry (acked,
 * so hours of one upstream's outage never fill the queue every tenant shares). A parked
 * step spends no memory and, while the breaker is open, no attempts.
 *
 * One releaser thread per worker moves due parked steps back into the pools, per upstream:
 *	breaker OPEN (wait not over)	nothing
 *	OPEN (wait over) / HALF_OPEN	one every 250 ms: the probes that close the breaker
 *	CLOSED				a ramp: rate_max * t / ramp_ms (at least 5 %) for t
 *					since it closed, then rate_max (slow start, so a
 *					receiver that just came back is not hit by the whole
 *					backlog at once)
 * A released step is a queue entry owned by the release store: the pools run it from its
 * step like any entry, and its "ack" deletes the row. The releaser therefore sits between
 * the pools and the intake queue: release_queue() is the queue the pools and the pool_set
 * use; it forwards everything to the intake queue except what concerns released entries.
 *
 * The due time: a released entry's not_before_ns is its release time, so the overload
 * controller's lag counts from when the step became due again, never from its receipt
 * (a Kafka backend would carry it as the `sluice-due` header; the journal keeps it in the
 * entry). Parked steps are not in any pool, so they are not lag.
 */
#ifndef SLUICE_RELEASE_H
#define SLUICE_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"
#include "work/pool.h"

struct pg_steps;
struct upstream;
struct metrics;

struct park_config {
	uint64_t after_ns; /* park.after_ms: park a retry further away than this (5 s) */
	uint64_t max;	   /* park.max: parked steps per upstream (100000); then in memory */
	uint64_t ramp_ns;  /* release.ramp_ms: slow start after the breaker closes (30 s) */
	uint32_t rate_max; /* release.rate_max: released steps per second at most (50) */
};

void park_config_default(struct park_config *c);
/* Set park.after_ms, park.max, release.ramp_ms or release.rate_max (key as written in the
 * upstream section). 0, -ENOENT (another key) or -EINVAL with err naming the input. */
int park_config_set(struct park_config *c, const char *key, const char *value, char *err,
		    size_t errlen);

/* Release rate (steps/s) closed_for_ns after the breaker closed: rate_max * t / ramp,
 * at least 5 % of rate_max, at most rate_max (ramp 0: rate_max at once). */
double release_ramp_rate(const struct park_config *c, uint64_t closed_for_ns);

struct release;
/* Queue a released entry into the pool of its step (e->step); 0, or -errno and the caller
 * still owns e. */
typedef int release_submit_fn(void *arg, struct queue_entry *e);

/* A store over the intake queue inner and the database ps (both borrowed). NULL + errno. */
struct release *release_new(struct queue *inner, struct pg_steps *ps, release_submit_fn *submit,
			    void *arg);
/* Register upstream u (borrowed) with its settings; returns its index or -ENOMEM. */
int release_add(struct release *r, struct upstream *u, const struct park_config *pc);
/* Start the releaser thread. 0 or -errno. */
int release_start(struct release *r);
/* Stop the releaser thread (no more entries are queued into the pools). NULL-safe. */
void release_stop(struct release *r);
/* Stop and free. The pools using release_queue() must be freed before; released entries
 * they did not finish keep their rows, which come back when their lease runs out. */
void release_free(struct release *r);

/* The queue the pools must use (acks of released entries delete their rows). */
struct queue *release_queue(struct release *r);
/* Whether e came out of the parked store, and whether it was released and not yet called
 * (its first call is paced by the ramp, not by the retry budget). */
bool release_entry_parked(const struct queue_entry *e);
bool release_entry_fresh(const struct queue_entry *e);
void release_entry_called(struct queue_entry *e);

/* The settings upstream idx was added with. */
const struct park_config *release_config(const struct release *r, int idx);

/* Park the step e->step of held entry e (event tenant/key) for upstream idx, due at due_ns
 * (CLOCK_REALTIME), with attempts calls made and last_error. On 0 the step is committed to
 * the store and e is finished: an intake entry is acked (pool_done), a released one's row
 * updated and e freed (pool_forget). -ENOSPC (park.max reached) or -EIO (the database
 * refused): nothing changed, the caller still holds e and keeps it in memory, unacked. */
int release_park(struct release *r, int idx, struct pool *p, struct queue_entry *e,
		 const char *tenant, const char *key, uint64_t due_ns, const char *last_error);

struct release_stats {
	uint64_t parked;       /* rows of the upstream (refreshed every second) */
	double oldest_s;       /* age of the oldest, seconds */
	uint64_t parked_total; /* steps parked by this process */
	uint64_t released;     /* steps released by this process */
	uint64_t refused;      /* parks refused (park.max or database): kept in memory */
	double rate;	       /* release rate allowed now, per second */
};
void release_stats(struct release *r, int idx, struct release_stats *st);

/* Register sluice_parked_events{upstream}, sluice_parked_oldest_seconds{upstream} and
 * sluice_parked_released_total{upstream} in m, filled from every live release store. */
int release_metrics_register(struct metrics *m);

#endif /* SLUICE_RELEASE_H */
