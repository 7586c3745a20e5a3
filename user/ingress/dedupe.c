// SPDX-License-Identifier: MIT
/* dedupe.c -- the ingress fast path for duplicates: Redis says "seen", Postgres stays the truth
 *
 * A bounded FIFO of jobs served by a few threads. A check job copies the event (its
 * pointers only live during append), asks Redis, and either completes it as a duplicate or
 * appends it to the queue with a completion that, on success, queues a remember job
 * (SET with TTL) and then completes the request. When the FIFO is full the event skips the
 * check and goes to the queue at once: dedupe is an optimisation, never a gate.
 *
 * Teardown: a queue completion (on_durable, on the queue's flusher thread) touches the
 * dedupe, so dedupe_free waits until every append it made has completed (`inflight`) before
 * freeing it. The queue must still be running then (sluiced.c frees it afterwards).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/dedupe.h"
#include "lib/log.h"

#define DEDUPE_MAX_JOBS	   8192
#define DEDUPE_MAX_THREADS 16

struct job {
	struct job *next;
	struct dedupe *d;
	bool remember; /* else: check, then append */
	uint64_t id;   /* remember: the durable event id */
	ingress_durable_fn *done;
	void *arg;
	struct ingress_event ev; /* pointers into buf */
	char buf[];		 /* tenant, type, key, body, each NUL-terminated */
};

struct dedupe {
	struct redis *redis;
	uint64_t ttl_ms;
	int (*next)(void *q, const struct ingress_event *ev, ingress_durable_fn *done, void *arg);
	void *next_q;
	pthread_mutex_t lock;
	pthread_cond_t cv;	/* jobs for the threads */
	pthread_cond_t idle_cv; /* inflight reached 0 */
	struct job *head, *tail;
	unsigned njobs;
	unsigned inflight; /* appended to the queue, completion not run yet */
	bool stop;
	pthread_t threads[DEDUPE_MAX_THREADS];
	int nthreads;
	struct dedupe_stats st;
};

static void push(struct dedupe *d, struct job *j)
{
	j->next = NULL;
	if (d->tail)
		d->tail->next = j;
	else
		d->head = j;
	d->tail = j;
	d->njobs++;
	pthread_cond_signal(&d->cv);
}

/* The key is (tenant, idempotency key) in the REDIS_DEDUPE space, each field length-prefixed
 * by the client: tenant "acme" key "eu:123" never meets tenant "acme:eu" key "123", and no
 * upstream's fallback cache (REDIS_CACHE) can answer for it. */
static int seen_get(struct dedupe *d, const struct ingress_event *ev, char **val)
{
	const char *f[2] = {ev->tenant, ev->idempotency_key};

	return redis_kv_get(d->redis, REDIS_DEDUPE, f, 2, val);
}

static int seen_set(struct dedupe *d, const struct ingress_event *ev, const char *val)
{
	const char *f[2] = {ev->tenant, ev->idempotency_key};

	return redis_kv_set(d->redis, REDIS_DEDUPE, f, 2, val, d->ttl_ms);
}

/* The queue made the event durable (flusher thread): remember it, answer the client. */
static void on_durable(void *arg, int err, uint64_t id)
{
	struct job *j = arg;
	struct dedupe *d = j->d;

	j->done(j->arg, err, id);
	j->remember = !err;
	j->id = id;
	pthread_mutex_lock(&d->lock);
	if (j->remember && d->njobs < DEDUPE_MAX_JOBS && !d->stop)
		push(d, j);
	else
		free(j);
	/* the last touch of d: dedupe_free may free it as soon as the lock is released */
	if (!--d->inflight)
		pthread_cond_broadcast(&d->idle_cv);
	pthread_mutex_unlock(&d->lock);
}

static void run_check(struct dedupe *d, struct job *j)
{
	char *val = NULL;
	int ret;

	ret = seen_get(d, &j->ev, &val);
	__atomic_add_fetch(ret < 0 ? &d->st.bypassed : &d->st.checked, 1, __ATOMIC_RELAXED);
	if (ret == 1) {
		uint64_t orig = strtoull(val, NULL, 16);

		free(val);
		__atomic_add_fetch(&d->st.duplicates, 1, __ATOMIC_RELAXED);
		j->done(j->arg, -EEXIST, orig);
		free(j);
		return;
	}
	pthread_mutex_lock(&d->lock);
	d->inflight++;
	pthread_mutex_unlock(&d->lock);
	ret = d->next(d->next_q, &j->ev, on_durable, j);
	if (ret) {
		pthread_mutex_lock(&d->lock);
		d->inflight--; /* refused at once: no completion will come */
		pthread_mutex_unlock(&d->lock);
		j->done(j->arg, ret, 0);
		free(j);
	}
}

static void run_remember(struct dedupe *d, struct job *j)
{
	char val[24];

	snprintf(val, sizeof(val), "%016" PRIx64, j->id);
	if (!seen_set(d, &j->ev, val))
		__atomic_add_fetch(&d->st.remembered, 1, __ATOMIC_RELAXED);
	free(j);
}

static void *dedupe_thread(void *arg)
{
	struct dedupe *d = arg;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct job *j;

		while (!d->head && !d->stop)
			pthread_cond_wait(&d->cv, &d->lock);
		j = d->head;
		if (!j)
			break;
		d->head = j->next;
		if (!d->head)
			d->tail = NULL;
		d->njobs--;
		pthread_mutex_unlock(&d->lock);
		if (j->remember)
			run_remember(d, j);
		else
			run_check(d, j);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

struct dedupe *dedupe_new(struct redis *redis, int threads, uint64_t ttl_ms,
			  int (*next)(void *q, const struct ingress_event *ev,
				      ingress_durable_fn *done, void *arg),
			  void *next_q)
{
	struct dedupe *d;

	if (!redis || !next || threads < 1 || threads > DEDUPE_MAX_THREADS || !ttl_ms) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	*d = (struct dedupe){.redis = redis, .ttl_ms = ttl_ms, .next = next, .next_q = next_q};
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cv, NULL);
	pthread_cond_init(&d->idle_cv, NULL);
	for (; d->nthreads < threads; d->nthreads++) {
		if (pthread_create(&d->threads[d->nthreads], NULL, dedupe_thread, d)) {
			dedupe_free(d);
			errno = EAGAIN;
			return NULL;
		}
	}
	return d;
}

void dedupe_free(struct dedupe *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	/* the threads are gone, so no new append; wait for the completions of the earlier ones */
	pthread_mutex_lock(&d->lock);
	while (d->inflight)
		pthread_cond_wait(&d->idle_cv, &d->lock);
	pthread_mutex_unlock(&d->lock);
	pthread_cond_destroy(&d->idle_cv);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	p[n] = 0;
	return p + n + 1;
}

int dedupe_append(void *dv, const struct ingress_event *ev, ingress_durable_fn *done, void *arg)
{
	struct dedupe *d = dv;
	size_t tl = strlen(ev->tenant), yl = strlen(ev->type), kl = strlen(ev->idempotency_key);
	struct job *j;
	char *p;

	pthread_mutex_lock(&d->lock);
	if (d->njobs >= DEDUPE_MAX_JOBS || d->stop) {
		pthread_mutex_unlock(&d->lock);
		__atomic_add_fetch(&d->st.bypassed, 1, __ATOMIC_RELAXED);
		return d->next(d->next_q, ev, done, arg);
	}
	pthread_mutex_unlock(&d->lock);
	j = malloc(sizeof(*j) + tl + yl + kl + ev->body_len + 4);
	if (!j)
		return d->next(d->next_q, ev, done, arg);
	*j = (struct job){.d = d, .done = done, .arg = arg, .ev = *ev};
	p = j->buf;
	j->ev.tenant = p;
	p = put(p, ev->tenant, tl);
	j->ev.type = p;
	p = put(p, ev->type, yl);
	j->ev.idempotency_key = p;
	p = put(p, ev->idempotency_key, kl);
	j->ev.body = p;
	put(p, ev->body, ev->body_len);
	pthread_mutex_lock(&d->lock);
	push(d, j);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void dedupe_get_stats(struct dedupe *d, struct dedupe_stats *st)
{
	st->checked = __atomic_load_n(&d->st.checked, __ATOMIC_RELAXED);
	st->duplicates = __atomic_load_n(&d->st.duplicates, __ATOMIC_RELAXED);
	st->remembered = __atomic_load_n(&d->st.remembered, __ATOMIC_RELAXED);
	st->bypassed = __atomic_load_n(&d->st.bypassed, __ATOMIC_RELAXED);
}
