// SPDX-License-Identifier: MIT
/* writer.c -- the batched, idempotent PostgreSQL writer behind the `store` step
 *
 * Threads: callers only touch the incoming list, counters and the drain condition, under
 * one mutex (pg_writer_submit copies the row, appends, and writes the eventfd only when the
 * list was empty or a batch's worth is waiting). Everything else belongs to the writer
 * thread: the ready list (rows waiting for a batch), the retry list (formed batches waiting
 * for a connection or a backoff), and the connection slots, driven by one poll() loop.
 *
 * Invariants:
 *  - every submitted row is reported exactly once; `outstanding` counts the rest and is
 *    what max_pending bounds;
 *  - a row is reported STORED/DUPLICATE only after its batch's Sync arrived with every
 *    result OK (COMMIT included); a batch whose connection broke is re-sent whole, and
 *    ON CONFLICT DO NOTHING turns an already-committed retry into DUPLICATEs;
 *  - a data error (SQLSTATE 22/23/54) halves the batch until the bad row is alone, then
 *    that row goes to dead_letters; halves are sent at once, never behind a backoff;
 *  - a connection failure or a transient error never drops rows: the batch waits on the
 *    retry list with capped exponential backoff and jitter.
 *
 * This file is the callers' side: config, submit, drain, stats, free. The thread lives in
 * writer_loop.c; what both sides do to the shared state (taking incoming rows, reporting
 * and counting outcomes, the clock) lives in writer_state.c. The calls go one way:
 * writer.c -> writer_loop.c -> writer_state.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "sink/pg/writer_int.h"

const uint64_t pg_writer_rows_bounds[PG_WRITER_ROWS_BOUNDS] = {1,   2,	 5,   10,  25,	50,
							       100, 200, 300, 400, 500, 1000};
const uint64_t pg_writer_latency_bounds[PG_WRITER_LATENCY_BOUNDS] = {
    250,    500,    1000,   2000,    5000,    10000,   20000,	50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

/* "ready", "degraded", ... for logs and /readyz; static strings */
const char *pg_health_name(enum pg_health h)
{
	static const char *const names[] = {"connecting", "ready", "degraded", "unreachable"};

	return h <= PG_HEALTH_UNREACHABLE ? names[h] : "?";
}

/* "stored", "duplicate", ... for logs; static strings */
const char *pg_row_status_name(enum pg_row_status s)
{
	static const char *const names[] = {"stored", "duplicate", "dead_lettered", "retry_later"};

	return s <= PG_ROW_RETRY_LATER ? names[s] : "?";
}

/* ---- the API -------------------------------------------------------------------------- */

static int config_defaults(struct pg_writer_config *c)
{
	if (!c->conninfo || c->pool_size < 0 || c->batch_max < 0 || c->batch_max > 5000 ||
	    c->linger_ms < 0 || c->max_pending < 0 || c->backoff_min_ms < 0 ||
	    c->backoff_max_ms < 0 || c->pool_size > 64)
		return -EINVAL;
	c->pool_size = c->pool_size ?: 4;
	c->batch_max = c->batch_max ?: 500;
	c->linger_ms = c->linger_ms ?: 5;
	c->max_pending = c->max_pending ?: 100000;
	c->statement_timeout_ms = c->statement_timeout_ms ?: 10000;
	c->backoff_min_ms = c->backoff_min_ms ?: 50;
	c->backoff_max_ms = c->backoff_max_ms ?: 1000;
	if (c->backoff_max_ms < c->backoff_min_ms)
		c->backoff_max_ms = c->backoff_min_ms;
	c->max_payload_bytes = c->max_payload_bytes ?: 1 << 20;
	return 0;
}

/* See writer.h. The thread starts here; connections open in the background. */
struct pg_writer *pg_writer_new(const struct pg_writer_config *cfg, pg_writer_done_fn *done,
				void *ctx)
{
	struct pg_writer *w = calloc(1, sizeof(*w));
	int err = ENOMEM;
	char msg[200];

	if (!w)
		goto fail;
	w->cfg = *cfg;
	if (config_defaults(&w->cfg)) {
		err = EINVAL;
		goto fail;
	}
	if (pg_hosts_parse(&w->hosts, w->cfg.conninfo, msg, sizeof(msg))) {
		log_error("postgres: bad conninfo", "error=\"%s\"", msg);
		err = EINVAL;
		goto fail;
	}
	w->done = done;
	w->ctx = ctx;
	w->in_tail = &w->in_head;
	w->ready_tail = &w->ready_head;
	w->rnd = (unsigned int)clock_mono_ns() ^ (unsigned int)(uintptr_t)w;
	w->st.batch_rows =
	    (struct pg_hist){.bounds = pg_writer_rows_bounds, .nbounds = PG_WRITER_ROWS_BOUNDS};
	w->st.batch_latency_us = (struct pg_hist){.bounds = pg_writer_latency_bounds,
						  .nbounds = PG_WRITER_LATENCY_BOUNDS};
	w->slots = calloc(w->cfg.pool_size, sizeof(*w->slots));
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!w->slots || w->efd < 0)
		goto fail;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->drained, NULL);
	err = pthread_create(&w->thread, NULL, pg_writer_main, w);
	if (err) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->drained);
		goto fail;
	}
	return w;
fail:
	if (w) {
		if (w->efd > 0)
			close(w->efd);
		free(w->slots);
		pg_hosts_free(&w->hosts);
		free(w);
	}
	errno = err;
	return NULL;
}

static void wake(struct pg_writer *w)
{
	uint64_t one = 1;

	if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("postgres: eventfd write failed", "errno=%d", errno);
}

static struct pg_wrow *copy_row(const struct pg_row *row)
{
	size_t lt = strlen(row->tenant) + 1, lk = strlen(row->idempotency_key) + 1;
	size_t ly = strlen(row->type) + 1, lc = strlen(row->class_name) + 1;
	struct pg_wrow *r = malloc(sizeof(*r) + lt + lk + ly + lc + row->payload_len);
	char *p;

	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	p = r->data;
	r->tenant = memcpy(p, row->tenant, lt);
	r->key = memcpy(p += lt, row->idempotency_key, lk);
	r->type = memcpy(p += lk, row->type, ly);
	r->cls = memcpy(p += ly, row->class_name, lc);
	r->payload = memcpy(p + lc, row->payload, row->payload_len);
	r->payload_len = row->payload_len;
	r->received_us = row->received_us;
	r->cookie = row->cookie;
	r->submit_ns = clock_mono_ns();
	return r;
}

/* See writer.h. Reserves a pending slot first so the copy happens outside the lock. */
int pg_writer_submit(struct pg_writer *w, const struct pg_row *row)
{
	struct pg_wrow *r;
	bool kick;

	if (!row->tenant || !row->idempotency_key || !row->type || !row->class_name ||
	    (!row->payload && row->payload_len))
		return -EINVAL;
	pthread_mutex_lock(&w->mu);
	if (w->stop || w->outstanding >= (uint64_t)w->cfg.max_pending) {
		w->st.rows_rejected_full++;
		pthread_mutex_unlock(&w->mu);
		return w->stop ? -ESHUTDOWN : -EAGAIN;
	}
	w->outstanding++; /* reserve the slot before copying outside the lock */
	pthread_mutex_unlock(&w->mu);
	r = copy_row(row);
	pthread_mutex_lock(&w->mu);
	if (!r) {
		w->outstanding--;
		pthread_mutex_unlock(&w->mu);
		return -ENOMEM;
	}
	r->seq = w->seq++;
	*w->in_tail = r;
	w->in_tail = &r->next;
	w->in_count++;
	w->st.rows_submitted++;
	/* the first row starts the linger clock; a full batch should not wait for it */
	kick = w->in_count == 1 || w->in_count == w->cfg.batch_max;
	pthread_mutex_unlock(&w->mu);
	if (kick)
		wake(w);
	return 0;
}

/* See writer.h. While anyone drains, the writer skips the linger wait. */
int pg_writer_drain(struct pg_writer *w, int timeout_ms)
{
	struct timespec until = clock_deadline(
	    CLOCK_REALTIME, (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ULL);
	int ret = 0;

	pthread_mutex_lock(&w->mu);
	w->drainers++;
	wake(w);
	while (w->outstanding && !ret)
		ret = timeout_ms < 0 ? pthread_cond_wait(&w->drained, &w->mu)
				     : pthread_cond_timedwait(&w->drained, &w->mu, &until);
	w->drainers--;
	pthread_mutex_unlock(&w->mu);
	return ret ? -ETIMEDOUT : 0;
}

/* See writer.h: a copy taken under the lock. */
void pg_writer_get_stats(struct pg_writer *w, struct pg_writer_stats *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->st;
	out->pending = w->outstanding;
	pthread_mutex_unlock(&w->mu);
}

/* See writer.h. */
enum pg_health pg_writer_health(struct pg_writer *w)
{
	enum pg_health h;

	pthread_mutex_lock(&w->mu);
	h = w->st.health;
	pthread_mutex_unlock(&w->mu);
	return h;
}

static void report_list(struct pg_writer *w, struct pg_wrow *r)
{
	uint64_t count[4] = {0};

	while (r) {
		struct pg_wrow *next = r->next;

		pg_writer_report_row(w, r, PG_ROW_RETRY_LATER, count);
		r = next;
	}
	pg_writer_account(w, count);
}

/* See writer.h. Joins the thread first, so the rest runs single-threaded. */
void pg_writer_free(struct pg_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_mutex_unlock(&w->mu);
	wake(w);
	pthread_join(w->thread, NULL);
	pg_writer_take_incoming(w);
	report_list(w, w->ready_head);
	while (w->retry) {
		struct pg_batch *b = w->retry;

		w->retry = b->next;
		pg_writer_report_batch(w, b, PG_ROW_RETRY_LATER);
	}
	for (int i = 0; i < w->cfg.pool_size; i++) {
		struct slot *s = &w->slots[i];

		if (s->b && s->b->kind != PG_BATCH_ROLLBACK)
			pg_writer_report_batch(w, s->b, PG_ROW_RETRY_LATER);
		else
			pg_batch_free(s->b);
		PQfinish(s->c);
	}
	close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->drained);
	free(w->slots);
	pg_hosts_free(&w->hosts);
	free(w);
}
