// SPDX-License-Identifier: MIT
/* pool.c -- worker pools (bulkheads): own threads, own in-flight limit, own dispatcher
 *
 * One mutex per pool guards its dispatcher and counters; workers wait on the pool's condition
 * variable (CLOCK_REALTIME, the dispatcher's clock) until an entry is ready, a slot is free,
 * or the earliest parked retry is due, so nothing polls. A worker takes an entry only while
 * in_flight < max_inflight; pool_done/pool_retry free the slot and wake one waiter. Nothing
 * here waits on another pool: a pool that is full or blocked holds only its own entries.
 *
 * Invariants: in_flight = entries handed to the handler and not yet done/retried; an entry
 * is owned by exactly one of: the dispatcher, a handler, the queue backend (after ack).
 * The pool knows nothing of who feeds it: its owner (pool_set.c) learns of finished entries
 * through the done hook and stops the pool with pool_drain; pool.c calls nothing above it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "lib/clock.h"
#include "lib/log.h"
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
	pthread_cond_t hook_cv; /* pool_on_done: hook_calls reached 0 */
	struct dispatch d;
	uint32_t paused; /* class bits */
	uint64_t in_flight, done, retried, full_waits, handed_over;
	bool inited, stop, draining;
	pool_done_fn *on_done; /* the owner's hook (or NULL) and its argument */
	void *on_done_arg;
	uint32_t hook_calls; /* calls of on_done running now, outside the lock */
};

static void wait_until(struct pool *p, uint64_t due)
{
	struct timespec ts = clock_ts(due);

	if (due == UINT64_MAX)
		pthread_cond_wait(&p->cv, &p->lock);
	else
		pthread_cond_timedwait(&p->cv, &p->lock, &ts);
}

/* Next entry this worker may run, or NULL after waiting (caller loops). Lock held. */
static struct queue_entry *pool_take(struct pool *p)
{
	struct queue_entry *e = NULL;
	bool full = p->in_flight >= p->max_inflight;

	if (!p->draining && !full)
		e = dispatch_pop(&p->d, clock_real_ns(), DISPATCH_ALL_CLASSES & ~p->paused);
	if (e) {
		p->in_flight++;
		return e;
	}
	if (full && dispatch_count(&p->d))
		p->full_waits++;
	wait_until(p, full || p->draining ? UINT64_MAX : dispatch_next_due(&p->d));
	return NULL;
}

static void *pool_worker(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct queue_entry *e = pool_take(p);

		if (!e)
			continue;
		pthread_mutex_unlock(&p->lock);
		if (p->handler(p->arg, p, e) == POOL_ACK)
			pool_done(p, e);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* A slot was freed (lock held). */
static void pool_release(struct pool *p)
{
	p->in_flight--;
	pthread_cond_signal(&p->cv);
	if (!p->in_flight)
		pthread_cond_broadcast(&p->idle_cv);
}

int pool_done(struct pool *p, struct queue_entry *e)
{
	uint64_t id = e->id;
	int err = queue_ack(p->q, e);
	pool_done_fn *fn;
	void *arg;

	if (err)
		log_error("pool: ack failed; the entry will be redelivered after a restart",
			  "pool=%s id=%llu err=%d", p->name, (unsigned long long)id, err);
	pthread_mutex_lock(&p->lock);
	p->done++;
	fn = p->on_done;
	arg = p->on_done_arg;
	if (fn) {
		/* outside the lock, so the hook may drain this pool; the slot is still taken, so
		 * no worker woken by this entry runs before the hook has had its say */
		p->hook_calls++;
		pthread_mutex_unlock(&p->lock);
		fn(arg, p);
		pthread_mutex_lock(&p->lock);
		if (!--p->hook_calls)
			pthread_cond_broadcast(&p->hook_cv);
	}
	pool_release(p);
	pthread_mutex_unlock(&p->lock);
	return err;
}

void pool_on_done(struct pool *p, pool_done_fn *fn, void *arg)
{
	pthread_mutex_lock(&p->lock);
	p->on_done = fn;
	p->on_done_arg = arg;
	while (p->hook_calls) /* a call that read the old hook may still be using its arg */
		pthread_cond_wait(&p->hook_cv, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

static int requeue(struct pool *p, struct queue_entry *e, uint64_t delay_ns, bool attempt)
{
	uint64_t now = clock_real_ns();
	int err;

	e->attempts += attempt;
	e->not_before_ns = now + delay_ns;
	/* before the push: once parked, another worker may run, ack and free e */
	if (queue_note_attempt(p->q, e))
		log_warn("pool: cannot remember a retry's attempt count; a restart resets it",
			 "pool=%s id=%llu", p->name, (unsigned long long)e->id);
	pthread_mutex_lock(&p->lock);
	err = dispatch_push(&p->d, e, now);
	p->retried += !err;
	pool_release(p);
	/* the earliest due time may have changed: let every idle worker recompute its wait */
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	if (err)
		log_error("pool: cannot park a retry; it is redelivered after a restart",
			  "pool=%s id=%llu err=%d", p->name, (unsigned long long)e->id, err);
	return err;
}

int pool_retry(struct pool *p, struct queue_entry *e, uint64_t delay_ns)
{
	return requeue(p, e, delay_ns, true);
}

int pool_defer(struct pool *p, struct queue_entry *e, uint64_t delay_ns)
{
	return requeue(p, e, delay_ns, false);
}

void pool_forget(struct pool *p, struct queue_entry *e)
{
	(void)e;
	pthread_mutex_lock(&p->lock);
	pool_release(p);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
}

int pool_hand_over(struct pool *from, struct queue_entry *e, struct pool *to)
{
	int err = pool_submit(to, e);

	if (err)
		return pool_retry(from, e, 100000000ULL); /* try the hand-over again in 100 ms */
	pthread_mutex_lock(&from->lock);
	from->handed_over++;
	pool_release(from);
	pthread_mutex_unlock(&from->lock);
	return 0;
}

int pool_submit(struct pool *p, struct queue_entry *e)
{
	return pool_submit_at(p, e, clock_real_ns());
}

int pool_submit_at(struct pool *p, struct queue_entry *e, uint64_t now)
{
	int err;

	pthread_mutex_lock(&p->lock);
	err = p->stop ? -ESHUTDOWN : dispatch_push(&p->d, e, now);
	if (!err)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int pool_set_paused(struct pool *p, uint32_t class, bool pause)
{
	if (class >= DISPATCH_CLASSES)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	if (pause)
		p->paused |= 1u << class;
	else
		p->paused &= ~(1u << class);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	log_info(pause ? "pool: class paused" : "pool: class resumed", "pool=%s class=%u", p->name,
		 class);
	return 0;
}

int pool_pause_class(struct pool *p, uint32_t class)
{
	return pool_set_paused(p, class, true);
}

int pool_resume_class(struct pool *p, uint32_t class)
{
	return pool_set_paused(p, class, false);
}

int pool_set_class_weights(struct pool *p, const uint32_t weight[DISPATCH_CLASSES])
{
	int err;

	pthread_mutex_lock(&p->lock);
	err = dispatch_set_weights(&p->d, weight);
	pthread_mutex_unlock(&p->lock);
	return err;
}

int pool_set_tenant_weight(struct pool *p, uint32_t class, uint32_t tenant, uint32_t weight)
{
	int err;

	pthread_mutex_lock(&p->lock);
	err = dispatch_set_tenant_weight(&p->d, class, tenant, weight);
	pthread_mutex_unlock(&p->lock);
	return err;
}

void pool_stats(struct pool *p, struct pool_stats *st)
{
	pthread_mutex_lock(&p->lock);
	st->in_flight = p->in_flight;
	st->max_inflight = p->max_inflight;
	st->queued = dispatch_count(&p->d);
	st->done = p->done;
	st->retried = p->retried;
	st->handed_over = p->handed_over;
	st->full_waits = p->full_waits;
	st->paused_mask = p->paused;
	memcpy(st->weight, p->d.cfg.weight, sizeof(st->weight));
	dispatch_stats(&p->d, clock_real_ns(), &st->dispatch);
	pthread_mutex_unlock(&p->lock);
}

void pool_dispatch_stats(struct pool *p, uint64_t now, struct dispatch_stats *st)
{
	pthread_mutex_lock(&p->lock);
	dispatch_stats(&p->d, now, st);
	pthread_mutex_unlock(&p->lock);
}

int pool_drain(struct pool *p, int timeout_ms)
{
	struct timespec ts = clock_deadline(
	    CLOCK_REALTIME, (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull);
	int err = 0;

	pthread_mutex_lock(&p->lock);
	p->draining = true;
	while (p->in_flight && timeout_ms && !err) {
		if (timeout_ms < 0)
			pthread_cond_wait(&p->idle_cv, &p->lock);
		else
			err = pthread_cond_timedwait(&p->idle_cv, &p->lock, &ts) ? -ETIMEDOUT : 0;
	}
	err = p->in_flight ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&p->lock);
	return err;
}

const char *pool_name(const struct pool *p)
{
	return p->name;
}

static int pool_cfg_check(const struct pool_cfg *cfg)
{
	const char *name = cfg && cfg->name ? cfg->name : "(unnamed)";

	if (!cfg || !cfg->name || !*cfg->name || !cfg->handler) {
		log_error("pool: a pool needs a name and a handler", "pool=%s", name);
		return -EINVAL;
	}
	if (cfg->threads < 1 || cfg->threads > 1024) {
		log_error("pool: threads out of range (1-1024)", "pool=%s threads=%u", name,
			  cfg->threads);
		return -EINVAL;
	}
	if (cfg->max_inflight && cfg->max_inflight < cfg->threads)
		log_warn("pool: max_inflight below threads; some threads will always idle",
			 "pool=%s threads=%u max_inflight=%u", name, cfg->threads,
			 cfg->max_inflight);
	return 0;
}

struct pool *pool_new(const struct pool_cfg *cfg, struct queue *q)
{
	pthread_condattr_t ca;
	struct pool *p;
	int err = pool_cfg_check(cfg);

	if (err || !q) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(cfg->name)) ||
	    !(p->threads = calloc(cfg->threads, sizeof(*p->threads)))) {
		err = -ENOMEM;
		goto fail;
	}
	err = dispatch_init(&p->d, &cfg->dispatch);
	if (err) {
		log_error("pool: dispatch weights or quantum too large", "pool=%s", cfg->name);
		goto fail;
	}
	p->q = q;
	p->handler = cfg->handler;
	p->arg = cfg->arg;
	p->max_inflight = cfg->max_inflight ? cfg->max_inflight : cfg->threads;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&p->cv, &ca);
	pthread_cond_init(&p->idle_cv, &ca);
	pthread_cond_init(&p->hook_cv, &ca);
	pthread_condattr_destroy(&ca);
	p->inited = true;
	for (; p->nthreads < cfg->threads; p->nthreads++) {
		err = -pthread_create(&p->threads[p->nthreads], NULL, pool_worker, p);
		if (err)
			goto fail;
	}
	return p;
fail:
	pool_free(p);
	errno = -err;
	return NULL;
}

void pool_free(struct pool *p)
{
	struct queue_entry *e;

	if (!p)
		return;
	if (p->inited) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->lock);
	}
	for (uint32_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* still un-acked on the queue: a restart replays them */
	while ((e = dispatch_take_any(&p->d)))
		free(e);
	dispatch_fini(&p->d);
	if (p->inited) {
		pthread_cond_destroy(&p->cv);
		pthread_cond_destroy(&p->idle_cv);
		pthread_cond_destroy(&p->hook_cv);
		pthread_mutex_destroy(&p->lock);
	}
	free(p->threads);
	free(p->name);
	free(p);
}
