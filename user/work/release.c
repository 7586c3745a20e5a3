// SPDX-License-Identifier: MIT
/* release.c -- parked call steps: park durably, release due ones at a ramp
 *
 * Released entries are marked in queue_entry.backend (bit 63; bit 62 = not called since
 * its release) with the row id in the low bits: the wrapper queue's ack of such an entry
 * deletes the row and frees the entry, everything else goes to the intake queue. Journal
 * segment numbers and Kafka offsets never reach bit 62.
 *
 * The releaser ticks every 50 ms. Per upstream it adds rate * elapsed to a token count
 * (capped at a quarter second of rate, so a pause does not turn into a burst) and leases
 * that many due rows. Statistics (rows, oldest) are read once a second; the park.max check
 * adds the rows parked since that reading (reserved under the lock), so it holds to within
 * the parks that commit while a reading runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/confparse.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "sink/pg/parked.h"
#include "sink/upstream/upstream.h"
#include "work/release.h"

#define MS		 1000000ULL
#define MARK_PARKED	 (1ULL << 63)
#define MARK_FRESH	 (1ULL << 62)
#define ID_MASK		 (MARK_FRESH - 1)
#define TICK_NS		 (50 * MS)
#define PROBE_EVERY_NS	 (250 * MS)
#define STATS_EVERY_NS	 (1000 * MS)
#define ORPHANS_EVERY_NS (10000 * MS)
#define ORPHANS_MAX	 16	/* upstreams without a releaser shown in the metrics */
#define LEASE_MS	 300000 /* a released step runs well within 5 min, or its row is due again */
#define RAMP_MIN	 0.05
#define TAKE_MAX	 200

struct rupstream {
	struct upstream *u;
	struct park_config cfg;
	uint64_t closed_since; /* mono ns the breaker was first seen closed (0: not closed) */
	uint64_t last_probe;
	double tokens, rate;
	struct pg_parked_stats db; /* last reading */
	uint64_t since_reading;	   /* rows parked (or being parked) since that reading */
	uint64_t parked_total, released, refused; /* atomics */
};

struct release {
	struct queue q; /* first: the wrapper handed to the pools */
	struct queue *inner;
	struct pg_steps *ps;
	release_submit_fn *submit;
	void *submit_arg;
	struct rupstream *ups;
	int nups;
	pthread_mutex_t lock; /* ups[*].db, rate; the stop flag */
	pthread_cond_t cv;
	pthread_t thread;
	bool started, stop;
	struct release *next_live; /* the list the metrics collector reads */
	/* parked rows of upstreams the routes no longer name (under lock): shown in the
	 * metrics with the others, 0 once gone; warned about once per appearance */
	struct rorphan {
		struct pg_parked_orphan o;
		bool warned;
	} orphans[ORPHANS_MAX];
	int norphans;
};

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct release *live;

void park_config_default(struct park_config *c)
{
	*c = (struct park_config){
	    .after_ns = 5000 * MS, .max = 100000, .ramp_ns = 30000 * MS, .rate_max = 50};
}

#define F(f) CONFPARSE_FIELD(struct park_config, f)

static const struct confparse_opt park_opts[] = {
    {"park.after_ms", NULL, NULL, CONFPARSE_INT, F(after_ns), 0, 86400000, .scale = MS},
    {"park.max", NULL, NULL, CONFPARSE_INT, F(max), 0, 1e9},
    {"release.ramp_ms", NULL, NULL, CONFPARSE_INT, F(ramp_ns), 0, 3600000, .scale = MS},
    {"release.rate_max", NULL, NULL, CONFPARSE_INT, F(rate_max), 1, 1000000},
};

static const struct confparse_table park_table = CONFPARSE_TABLE_OF(park_opts);

int park_config_set(struct park_config *c, const char *key, const char *value, char *err,
		    size_t errlen)
{
	return confparse_set(&park_table, c, key, value, err, errlen);
}

/* ---- the wrapper queue -------------------------------------------------------------- */

static struct release *of(struct queue *q)
{
	return (struct release *)q;
}

bool release_entry_parked(const struct queue_entry *e)
{
	return e->backend & MARK_PARKED;
}

bool release_entry_fresh(const struct queue_entry *e)
{
	return (e->backend & (MARK_PARKED | MARK_FRESH)) == (MARK_PARKED | MARK_FRESH);
}

void release_entry_called(struct queue_entry *e)
{
	if (release_entry_parked(e))
		e->backend &= ~MARK_FRESH;
}

static int w_append(struct queue *q, const struct queue_rec *rec, queue_done_fn *done, void *arg)
{
	return queue_append(of(q)->inner, rec, done, arg);
}

static int w_next(struct queue *q, struct queue_entry **out, int max, int timeout_ms)
{
	return queue_next(of(q)->inner, out, max, timeout_ms);
}

/* A released step is finished: forget its row. A failed delete leaves the row to come
 * back after its lease; its step is then found done in step_results and not run again. */
static int w_ack(struct queue *q, struct queue_entry *e)
{
	struct release *r = of(q);
	char err[200];
	int ret;

	if (!release_entry_parked(e))
		return queue_ack(r->inner, e);
	ret = pg_parked_delete(r->ps, (int64_t)(e->backend & ID_MASK), err, sizeof(err));
	if (ret)
		log_warn("release: parked row not deleted; it comes back after its lease",
			 "id=%llu err=\"%s\"", (unsigned long long)(e->backend & ID_MASK), err);
	free(e);
	return ret;
}

static int w_replay(struct queue *q, queue_replay_fn *fn, void *arg)
{
	return queue_replay(of(q)->inner, fn, arg);
}

static int w_stats(struct queue *q, struct queue_stats *st)
{
	return queue_stats(of(q)->inner, st);
}

static void w_set_notify(struct queue *q, queue_notify_fn *fn, void *arg)
{
	queue_set_notify(of(q)->inner, fn, arg);
}

static void w_shutdown(struct queue *q)
{
	queue_shutdown(of(q)->inner);
}

static int w_note_attempt(struct queue *q, const struct queue_entry *e)
{
	/* a released step's attempts are written with its row when it is parked again */
	return release_entry_parked(e) ? 0 : queue_note_attempt(of(q)->inner, e);
}

static void w_free(struct queue *q)
{
	(void)q; /* owned by the release store: release_free */
}

static const struct queue_ops wrapper_ops = {
    .name = "parked",
    .append = w_append,
    .next = w_next,
    .ack = w_ack,
    .replay = w_replay,
    .stats = w_stats,
    .set_notify = w_set_notify,
    .shutdown = w_shutdown,
    .note_attempt = w_note_attempt,
    .free = w_free,
};

struct queue *release_queue(struct release *r)
{
	return &r->q;
}

/* ---- parking ------------------------------------------------------------------------- */

int release_park(struct release *r, int idx, struct pool *p, struct queue_entry *e,
		 const char *tenant, const char *key, uint64_t due_ns, const char *last_error)
{
	struct rupstream *ru = &r->ups[idx];
	struct pg_parked_row row = {
	    .upstream = upstream_name(ru->u),
	    .tenant = tenant,
	    .idempotency_key = key,
	    .step = e->step,
	    .received_us = (int64_t)(e->enq_ns / 1000),
	    .attempts = e->attempts,
	    .due_us = (int64_t)(due_ns / 1000),
	    .class = e->class,
	    .tenant_slot = e->tenant,
	    .event = e->data,
	    .len = e->len,
	    .last_error = last_error,
	};
	bool new_row = !release_entry_parked(e);
	char err[200];

	/* a new row reserves its place under the lock, so parallel parks cannot pass the
	 * limit together */
	pthread_mutex_lock(&r->lock);
	if (new_row && ru->db.rows + ru->since_reading >= ru->cfg.max) {
		pthread_mutex_unlock(&r->lock);
		__atomic_add_fetch(&ru->refused, 1, __ATOMIC_RELAXED);
		return -ENOSPC;
	}
	ru->since_reading += new_row;
	pthread_mutex_unlock(&r->lock);
	if (pg_parked_put(r->ps, &row, err, sizeof(err))) {
		pthread_mutex_lock(&r->lock);
		ru->since_reading -= new_row && ru->since_reading;
		pthread_mutex_unlock(&r->lock);
		__atomic_add_fetch(&ru->refused, 1, __ATOMIC_RELAXED);
		log_warn("release: step not parked; it waits in memory, unacked",
			 "upstream=%s "
			 "key=%s err=\"%s\"",
			 row.upstream, key, err);
		return -EIO;
	}
	__atomic_add_fetch(&ru->parked_total, 1, __ATOMIC_RELAXED);
	if (release_entry_parked(e)) {
		/* its row was updated (due, attempts): the entry itself is done with */
		pool_forget(p, e);
		free(e);
	} else {
		pool_done(p, e); /* committed: the intake entry may go */
	}
	return 0;
}

/* ---- releasing ----------------------------------------------------------------------- */

struct take_ctx {
	struct release *r;
	struct rupstream *ru;
	int submitted;
};

static void on_row(void *arg, const struct pg_parked_row *row)
{
	struct take_ctx *t = arg;
	struct queue_entry *e = calloc(1, sizeof(*e) + row->len);
	char err[200];

	if (e) {
		e->id = (uint64_t)row->id;
		e->enq_ns = (uint64_t)row->received_us * 1000;
		e->not_before_ns = clock_real_ns(); /* due again now: lag counts from here */
		e->class = row->class;
		e->tenant = row->tenant_slot;
		e->attempts = row->attempts;
		e->len = (uint32_t)row->len;
		e->step = row->step;
		e->backend = MARK_PARKED | MARK_FRESH | ((uint64_t)row->id & ID_MASK);
		memcpy(e->data, row->event, row->len);
		if (!t->r->submit(t->r->submit_arg, e)) {
			t->submitted++;
			__atomic_add_fetch(&t->ru->released, 1, __ATOMIC_RELAXED);
			/* the pool owns e now; its ack frees it */
			// cppcheck-suppress memleak
			return;
		}
		free(e);
	}
	if (pg_parked_unlease(t->r->ps, row->id, err, sizeof(err)))
		log_warn("release: could not give a parked row back; due after its lease",
			 "id=%lld err=\"%s\"", (long long)row->id, err);
}

/* The release rate now for ru, per second; 0 holds everything, -1 asks for one probe. */
static double rate_now(struct rupstream *ru, uint64_t now)
{
	enum breaker_state st = upstream_breaker_state(ru->u);

	if (st != BREAKER_CLOSED) {
		ru->closed_since = 0;
		ru->tokens = 0;
		if (st == BREAKER_OPEN && upstream_breaker_open_remaining_ns(ru->u) > 0)
			return 0;
		/* the breaker closes only on calls that succeed: let a probe through now
		 * and then (live events probe too) */
		if (now - ru->last_probe < PROBE_EVERY_NS)
			return 0;
		ru->last_probe = now;
		return -1;
	}
	if (!ru->closed_since)
		ru->closed_since = now;
	return release_ramp_rate(&ru->cfg, now - ru->closed_since);
}

double release_ramp_rate(const struct park_config *c, uint64_t closed_for_ns)
{
	double f = c->ramp_ns ? (double)closed_for_ns / (double)c->ramp_ns : 1;

	f = f < RAMP_MIN ? RAMP_MIN : f > 1 ? 1 : f;
	return c->rate_max * f;
}

static void tick_one(struct release *r, struct rupstream *ru, uint64_t now, uint64_t dt)
{
	struct take_ctx t = {r, ru, 0};
	double rate = rate_now(ru, now), cap;
	char err[200];
	int n;

	if (rate < 0) {
		n = 1; /* a probe */
	} else {
		cap = rate / 4 > 1 ? rate / 4 : 1;
		ru->tokens += rate * (double)dt / 1e9;
		ru->tokens = ru->tokens > cap ? cap : ru->tokens;
		n = (int)ru->tokens;
	}
	pthread_mutex_lock(&r->lock);
	ru->rate = rate < 0 ? 0 : rate;
	if (!ru->db.due && rate >= 0)
		n = 0; /* nothing due at the last reading: don't ask */
	pthread_mutex_unlock(&r->lock);
	if (n <= 0)
		return;
	n = n > TAKE_MAX ? TAKE_MAX : n;
	if (pg_parked_take(r->ps, upstream_name(ru->u), n, LEASE_MS, on_row, &t, err, sizeof(err)) <
	    0) {
		log_warn("release: cannot read parked steps", "upstream=%s err=\"%s\"",
			 upstream_name(ru->u), err);
		return;
	}
	if (rate >= 0)
		ru->tokens -= t.submitted;
	pthread_mutex_lock(&r->lock);
	ru->db.due = ru->db.due > (uint64_t)t.submitted ? ru->db.due - (uint64_t)t.submitted : 0;
	if (t.submitted == n)
		ru->db.due += 1; /* there may be more: ask again next tick */
	pthread_mutex_unlock(&r->lock);
}

static void refresh_stats(struct release *r)
{
	for (int i = 0; i < r->nups; i++) {
		struct pg_parked_stats st;
		char err[200];

		if (pg_parked_stats(r->ps, upstream_name(r->ups[i].u), &st, err, sizeof(err)))
			continue;
		pthread_mutex_lock(&r->lock);
		r->ups[i].db = st;
		r->ups[i].since_reading = 0; /* (parks committed during the query: counted twice
					      * or not at all until the next reading) */
		pthread_mutex_unlock(&r->lock);
	}
}

/* Rows whose upstream no releaser of this process serves stay parked until an upstream of
 * that name is configured again: say so (once per upstream while they stay), and show them
 * in sluice_parked_events / _oldest_seconds, so SluiceParkedDeliveriesOld sees them age. */
static void refresh_orphans(struct release *r)
{
	const char **known = calloc((size_t)r->nups + 1, sizeof(*known));
	struct pg_parked_orphan got[ORPHANS_MAX];
	char err[200];
	int n;

	if (!known)
		return;
	for (int i = 0; i < r->nups; i++)
		known[i] = upstream_name(r->ups[i].u);
	n = pg_parked_orphans(r->ps, known, r->nups, got, ORPHANS_MAX, err, sizeof(err));
	free(known);
	if (n < 0)
		return;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->norphans; i++) {
		r->orphans[i].o.rows = 0;
		r->orphans[i].o.oldest_s = 0;
	}
	for (int k = 0; k < n; k++) {
		struct rorphan *o = r->orphans;

		while (o < r->orphans + r->norphans && strcmp(o->o.upstream, got[k].upstream))
			o++;
		if (o == r->orphans + ORPHANS_MAX)
			continue;
		if (o == r->orphans + r->norphans) {
			*o = (struct rorphan){.warned = false};
			r->norphans++;
		}
		o->o = got[k];
		if (!o->warned)
			log_warn("release: parked steps of an upstream the routes do not name wait "
				 "until it is configured again",
				 "upstream=\"%s\" rows=%llu oldest_s=%.0f", got[k].upstream,
				 (unsigned long long)got[k].rows, got[k].oldest_s);
		o->warned = true;
	}
	for (int i = 0; i < r->norphans; i++)
		if (!r->orphans[i].o.rows)
			r->orphans[i].warned = false; /* gone: warn again if they come back */
	pthread_mutex_unlock(&r->lock);
}

static void *releaser(void *arg)
{
	struct release *r = arg;
	uint64_t last = clock_mono_ns(), last_stats = 0, last_orphans = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct timespec ts = clock_ts(clock_real_ns() + TICK_NS);
		uint64_t now;

		pthread_cond_timedwait(&r->cv, &r->lock, &ts);
		if (r->stop)
			break;
		pthread_mutex_unlock(&r->lock);
		now = clock_mono_ns();
		if (now - last_stats >= STATS_EVERY_NS) {
			refresh_stats(r);
			last_stats = now;
		}
		if (!last_orphans || now - last_orphans >= ORPHANS_EVERY_NS) {
			refresh_orphans(r);
			last_orphans = now;
		}
		for (int i = 0; i < r->nups; i++)
			tick_one(r, &r->ups[i], now, now - last);
		last = now;
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- life cycle, figures ------------------------------------------------------------- */

struct release *release_new(struct queue *inner, struct pg_steps *ps, release_submit_fn *submit,
			    void *arg)
{
	struct release *r = calloc(1, sizeof(*r));

	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	r->q.ops = &wrapper_ops;
	r->inner = inner;
	r->ps = ps;
	r->submit = submit;
	r->submit_arg = arg;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_mutex_lock(&live_lock);
	r->next_live = live;
	live = r;
	pthread_mutex_unlock(&live_lock);
	return r;
}

int release_add(struct release *r, struct upstream *u, const struct park_config *pc)
{
	struct rupstream *n = realloc(r->ups, sizeof(*n) * (size_t)(r->nups + 1));

	if (!n)
		return -ENOMEM;
	r->ups = n;
	n[r->nups] = (struct rupstream){.u = u, .cfg = *pc};
	n[r->nups].db.due = 1; /* rows may be parked from an earlier run: look at once */
	return r->nups++;
}

int release_start(struct release *r)
{
	int err = pthread_create(&r->thread, NULL, releaser, r);

	if (err)
		return -err;
	r->started = true;
	return 0;
}

void release_stop(struct release *r)
{
	if (!r)
		return;
	/* out of the metrics first: its upstreams may be freed after this */
	pthread_mutex_lock(&live_lock);
	for (struct release **pp = &live; *pp; pp = &(*pp)->next_live) {
		if (*pp == r) {
			*pp = r->next_live;
			break;
		}
	}
	pthread_mutex_unlock(&live_lock);
	if (!r->started)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->started = false;
}

void release_free(struct release *r)
{
	if (!r)
		return;
	release_stop(r);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->lock);
	free(r->ups);
	free(r);
}

const struct park_config *release_config(const struct release *r, int idx)
{
	return &r->ups[idx].cfg;
}

void release_stats(struct release *r, int idx, struct release_stats *st)
{
	struct rupstream *ru = &r->ups[idx];

	pthread_mutex_lock(&r->lock);
	st->parked = ru->db.rows;
	st->oldest_s = ru->db.oldest_s;
	st->rate = ru->rate;
	pthread_mutex_unlock(&r->lock);
	st->parked_total = __atomic_load_n(&ru->parked_total, __ATOMIC_RELAXED);
	st->released = __atomic_load_n(&ru->released, __ATOMIC_RELAXED);
	st->refused = __atomic_load_n(&ru->refused, __ATOMIC_RELAXED);
}

static struct metric_family *f_parked, *f_oldest, *f_released;

static void collect(struct metrics *m, void *arg)
{
	(void)m;
	(void)arg;
	pthread_mutex_lock(&live_lock);
	for (struct release *r = live; r; r = r->next_live) {
		for (int i = 0; i < r->nups; i++) {
			const char *name[1] = {upstream_name(r->ups[i].u)};
			struct release_stats st;

			release_stats(r, i, &st);
			metric_set(metrics_series(f_parked, name), (double)st.parked);
			metric_set(metrics_series(f_oldest, name), st.oldest_s);
			metric_set(metrics_series(f_released, name), (double)st.released);
		}
		pthread_mutex_lock(&r->lock);
		for (int i = 0; i < r->norphans; i++) {
			const char *name[1] = {r->orphans[i].o.upstream};

			metric_set(metrics_series(f_parked, name), (double)r->orphans[i].o.rows);
			metric_set(metrics_series(f_oldest, name), r->orphans[i].o.oldest_s);
		}
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&live_lock);
}

int release_metrics_register(struct metrics *m)
{
	f_parked = metrics_family(m, METRIC_GAUGE, "sluice_parked_events",
				  "Call steps parked in PostgreSQL waiting for their upstream.",
				  "upstream", NULL, 0);
	f_oldest = metrics_family(m, METRIC_GAUGE, "sluice_parked_oldest_seconds",
				  "Age of the oldest parked call step.", "upstream", NULL, 0);
	f_released =
	    metrics_family(m, METRIC_COUNTER, "sluice_parked_released_total",
			   "Parked call steps released back to the pools.", "upstream", NULL, 0);
	if (!f_parked || !f_oldest || !f_released)
		return -errno;
	return metrics_on_collect(m, collect, NULL);
}
