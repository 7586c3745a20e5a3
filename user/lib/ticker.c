// SPDX-License-Identifier: MIT
/* ticker.c -- a thread that calls one function every period until stopped */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "lib/clock.h"
#include "lib/ticker.h"

struct ticker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stop;
	uint64_t period_ns;
	ticker_fn *fn;
	void *arg;
};

static void *ticker_main(void *arg)
{
	struct ticker *t = arg;
	uint64_t next = clock_mono_ns();

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		uint64_t now = clock_mono_ns();

		if (now < next) {
			struct timespec ts = clock_ts(next);

			pthread_cond_timedwait(&t->cond, &t->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&t->lock);
		t->fn(t->arg);
		pthread_mutex_lock(&t->lock);
		next += t->period_ns;
		now = clock_mono_ns();
		if (next < now) /* overran: the next call now, the schedule from here */
			next = now;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct ticker *ticker_start(uint64_t period_ns, ticker_fn *fn, void *arg)
{
	struct ticker *t;
	pthread_condattr_t ca;
	int err;

	if (!period_ns || !fn) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	*t = (struct ticker){.period_ns = period_ns, .fn = fn, .arg = arg};
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&t->thread, NULL, ticker_main, t);
	if (err) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		errno = err;
		return NULL;
	}
	return t;
}

void ticker_stop(struct ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
