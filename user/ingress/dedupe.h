/* SPDX-License-Identifier: MIT */
/* dedupe.h -- the ingress fast path for duplicates: Redis says "seen", Postgres stays the truth
 *
 * Sits in front of the durable queue's append (same signature as ingress_queue.append).
 * For each event a dedupe thread asks Redis whether (tenant, idempotency key) was accepted
 * before; if so the request completes with -EEXIST and the original event id (the router
 * answers 200 with it), else the event goes on to the queue, and only once the queue says it
 * is durable is the key remembered in Redis (with a TTL) -- never before, so an event that
 * was refused can be sent again. Redis down or slow costs one short timeout, then the
 * client's backoff skips it: events go straight to the queue and PostgreSQL's unique key
 * dedupes them. Redis calls never run on an io_uring loop thread.
 */
#ifndef SLUICE_DEDUPE_H
#define SLUICE_DEDUPE_H

#include <stdint.h>

#include "ingress/intake.h"
#include "lib/redis.h"

struct dedupe;

struct dedupe_stats {
	uint64_t checked, duplicates, remembered, bypassed; /* bypassed: Redis down or busy */
};

/* next/next_q: the append it guards (the journal adapter). redis is borrowed. ttl_ms: how
 * long a key is remembered. threads: Redis round trips in parallel (1-16). NULL + errno. */
struct dedupe *dedupe_new(struct redis *redis, int threads, uint64_t ttl_ms,
			  int (*next)(void *q, const struct ingress_event *ev,
				      ingress_durable_fn *done, void *arg),
			  void *next_q);
/* Stop the threads after the queued checks are done, then wait until every append made to
 * the queue has completed (its completion refers to the dedupe): the queue must still be
 * running. NULL-safe. */
void dedupe_free(struct dedupe *d);

/* ingress_queue.append: 0 (done is called exactly once later: err 0 durable, -EEXIST
 * duplicate with the original id, or the queue's refusal), or -errno at once. */
int dedupe_append(void *d, const struct ingress_event *ev, ingress_durable_fn *done, void *arg);

void dedupe_get_stats(struct dedupe *d, struct dedupe_stats *st);

#endif /* SLUICE_DEDUPE_H */
