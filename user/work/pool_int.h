/* SPDX-License-Identifier: MIT */
/* pool_int.h -- struct pool, shared by pool.c and pool_set.c (retirement accounting) */
#ifndef SLUICE_POOL_INT_H
#define SLUICE_POOL_INT_H

#include <pthread.h>

#include "work/pool.h"

struct pool {
	char *name;
	struct queue *q;
	pool_handler_fn *handler;
	void *arg;
	pthread_t *threads;
	uint32_t nthreads;
	uint32_t max_inflight;
	pthread_mutex_t lock;
	pthread_cond_t cv;	/* workers: entry ready, slot free, retry due, pause change */
	pthread_cond_t idle_cv; /* pool_drain: in_flight reached 0 */
	struct dispatch d;
	uint32_t paused; /* class bits */
	uint64_t in_flight, done, retried, full_waits, handed_over;
	bool inited, stop, draining;
	struct pool_set *set; /* the set feeding this pool, for max_messages (or NULL) */
};

/* An entry of one of the set's pools finished (pool_done). Any thread. */
void pool_set_note_done(struct pool_set *s);
/* pool_submit with the caller's clock reading (CLOCK_REALTIME ns): one read per batch. */
int pool_submit_at(struct pool *p, struct queue_entry *e, uint64_t now);
/* The pool's dispatcher figures at `now` (CLOCK_REALTIME ns). */
void pool_dispatch_stats(struct pool *p, uint64_t now, struct dispatch_stats *st);
/* The set is retiring: its pools must not start new entries. */
bool pool_set_retiring(const struct pool_set *s);

#endif /* SLUICE_POOL_INT_H */
