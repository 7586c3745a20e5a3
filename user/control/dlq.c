// SPDX-License-Identifier: MIT
/* dlq.c -- replay of dead letters an operator asked for (sluicectl dlq replay)
 *
 * One thread, one connection (reopened when it breaks), a batch of up to 100 requested rows
 * per poll. The event goes back with its original received time, class and tenant slot: the
 * worker then sees a redelivery of the same event (its store step finds its own row, not
 * another copy's), dispatched in its class and its tenant's turn, and the cleared `failed`
 * result -- of that event only, matched on its received time -- lets the step run again.
 * Its due time (queue_rec.not_before_ns) is the replay, so the overload controller's lag
 * counts from then: a replay of day-old dead letters is not a day of backlog.
 * replayed_at is stamped from the queue's durable callback through a small done-list the thread
 * writes back on its next poll, so the callback (the journal's flusher thread) never waits on
 * PostgreSQL.
 *
 * Teardown: that callback touches the replayer, so dlq_replayer_free waits until every
 * append it made has completed (`inflight` back to 0) before freeing it; the queue must still
 * be running then.
 */
#include <endian.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/dlq.h"
#include "lib/clock.h"
#include "lib/log.h"

#define DLQ_BATCH 100

struct done_id {
	struct done_id *next;
	long long id;
};

struct dlq_replayer {
	char *conninfo;
	struct queue *q;
	int period_ms;
	PGconn *c;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool stop;
	struct done_id *done; /* durable replays to stamp */
	unsigned inflight;    /* appended, not yet durable */
	struct dlq_stats st;
};

struct replay_ctx {
	struct dlq_replayer *r;
	long long id;
};

static PGresult *exec(struct dlq_replayer *r, const char *sql, int n, const char *const *v,
		      ExecStatusType want)
{
	PGresult *res;

	if (!r->c || PQstatus(r->c) != CONNECTION_OK) {
		PQfinish(r->c);
		r->c = PQconnectdb(r->conninfo);
		if (PQstatus(r->c) != CONNECTION_OK)
			return NULL;
	}
	res = PQexecParams(r->c, sql, n, NULL, v, NULL, NULL, 1);
	if (PQresultStatus(res) == want)
		return res;
	log_warn("dlq: statement failed", "err=\"%s\"", PQresultErrorMessage(res));
	PQclear(res);
	return NULL;
}

static void on_durable(void *arg, int err, uint64_t qid)
{
	struct replay_ctx *rc = arg;
	struct dlq_replayer *r = rc->r;
	long long rc_id = rc->id;
	struct done_id *d = err ? NULL : malloc(sizeof(*d));

	free(rc);
	pthread_mutex_lock(&r->lock);
	r->inflight--;
	if (d) {
		d->id = rc_id;
		d->next = r->done;
		r->done = d;
	} else {
		r->st.errors++; /* the request stays: the next poll tries again */
	}
	/* the last touch of r: dlq_replayer_free may free it once the lock is released */
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
}

static void stamp(struct dlq_replayer *r, long long id, const char *note)
{
	char ids[24];
	const char *v[2] = {ids, note};
	PGresult *res;

	snprintf(ids, sizeof(ids), "%lld", id);
	res = exec(r,
		   note ? "UPDATE dead_letters SET replayed_at = clock_timestamp(), "
			  "last_error = last_error || ' [not replayed: ' || $2 || ']' WHERE id = $1"
			: "UPDATE dead_letters SET replayed_at = clock_timestamp() WHERE id = $1",
		   note ? 2 : 1, v, PGRES_COMMAND_OK);
	PQclear(res);
}

static void flush_done(struct dlq_replayer *r)
{
	struct done_id *d;

	pthread_mutex_lock(&r->lock);
	d = r->done;
	r->done = NULL;
	pthread_mutex_unlock(&r->lock);
	while (d) {
		struct done_id *next = d->next;

		stamp(r, d->id, NULL);
		r->st.replayed++;
		free(d);
		d = next;
	}
}

/* The class a dead letter's event had (column text), normal when unknown. */
static uint32_t class_of(const char *s)
{
	static const char *const names[] = {"critical", "normal", "low"};

	for (uint32_t c = 0; c < 3; c++)
		if (!strcmp(s, names[c]))
			return c;
	return 1;
}

/* One requested row (binary result columns: see poll_once). */
static void replay_row(struct dlq_replayer *r, PGresult *res, int i)
{
	long long id = (long long)be64toh(*(uint64_t *)PQgetvalue(res, i, 0));
	const char *step = PQgetvalue(res, i, 1);
	const char *payload = PQgetvalue(res, i, 3);
	int len = PQgetlength(res, i, 3);
	/* received_at in binary: µs since 2000-01-01 */
	int64_t us = (int64_t)be64toh(*(uint64_t *)PQgetvalue(res, i, 2)) + 946684800000000LL;
	char ids[24];
	const char *v[1] = {ids};
	struct replay_ctx *rc;
	/* the event goes back as it was queued: its class and its tenant's slot */
	struct queue_rec rec = {.class = class_of(PQgetvalue(res, i, 4)),
				.tenant = be32toh(*(uint32_t *)PQgetvalue(res, i, 5)),
				.enq_ns = (uint64_t)us * 1000,
				/* due now: the overload controller's lag counts from the
				 * replay, not from the receipt (issue 18) */
				.not_before_ns = clock_real_ns(),
				.len = (uint32_t)len,
				.data = payload};
	PGresult *del;

	if (!strcmp(step, "store") || PQgetisnull(res, i, 3) || !memchr(payload, '\n', len)) {
		r->st.refused++;
		stamp(r, id, "PostgreSQL refused the row itself; fix the data and send it again");
		return;
	}
	/* this event's failed step only: another copy of it (same key, another received time)
	 * keeps its own result */
	snprintf(ids, sizeof(ids), "%lld", id);
	del = exec(r,
		   "DELETE FROM step_results s USING dead_letters d WHERE d.id = $1 AND "
		   "s.tenant = d.tenant AND s.idempotency_key = d.idempotency_key AND "
		   "s.step = d.step AND s.received_at = d.received_at AND s.status = 'failed'",
		   1, v, PGRES_COMMAND_OK);
	if (!del)
		return;
	PQclear(del);
	rc = malloc(sizeof(*rc));
	if (!rc)
		return;
	*rc = (struct replay_ctx){r, id};
	pthread_mutex_lock(&r->lock);
	r->inflight++;
	pthread_mutex_unlock(&r->lock);
	if (queue_append(r->q, &rec, on_durable, rc)) {
		pthread_mutex_lock(&r->lock);
		r->inflight--;
		r->st.errors++;
		pthread_mutex_unlock(&r->lock);
		free(rc);
	}
}

static void poll_once(struct dlq_replayer *r)
{
	/* rows from before migration 003 have no class or slot: the class of the event's
	 * stored row, else normal; slot 0 */
	PGresult *res =
	    exec(r,
		 "SELECT d.id, d.step, d.received_at, d.payload, coalesce(d.class, (SELECT "
		 "e.class FROM events e WHERE e.tenant = d.tenant AND e.idempotency_key = "
		 "d.idempotency_key AND e.received_at = d.received_at LIMIT 1), 'normal'), "
		 "coalesce(d.tenant_slot, 0) FROM dead_letters d WHERE d.replay_requested_at IS "
		 "NOT NULL AND d.replayed_at IS NULL AND d.received_at IS NOT NULL ORDER BY d.id "
		 "LIMIT 100",
		 0, NULL, PGRES_TUPLES_OK);

	if (!res)
		return;
	for (int i = 0; i < PQntuples(res); i++)
		replay_row(r, res, i);
	PQclear(res);
	/* wait for this batch to be durable so it is not picked up twice */
	pthread_mutex_lock(&r->lock);
	while (r->inflight && !r->stop)
		pthread_cond_wait(&r->cv, &r->lock);
	pthread_mutex_unlock(&r->lock);
	flush_done(r);
}

static void *replayer_thread(void *arg)
{
	struct dlq_replayer *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct timespec due =
		    clock_deadline(CLOCK_REALTIME, (uint64_t)r->period_ms * 1000000ULL);

		pthread_cond_timedwait(&r->cv, &r->lock, &due);
		if (r->stop)
			break;
		pthread_mutex_unlock(&r->lock);
		poll_once(r);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct dlq_replayer *dlq_replayer_new(const char *conninfo, struct queue *q, int period_ms)
{
	struct dlq_replayer *r;

	if (!conninfo || !*conninfo || !q || period_ms < 10) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->conninfo = strdup(conninfo))) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->q = q;
	r->period_ms = period_ms;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->thread, NULL, replayer_thread, r)) {
		free(r->conninfo);
		free(r);
		errno = EAGAIN;
		return NULL;
	}
	return r;
}

void dlq_replayer_free(struct dlq_replayer *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	/* no new append now; wait for the completions of the earlier ones (they touch r) */
	pthread_mutex_lock(&r->lock);
	while (r->inflight)
		pthread_cond_wait(&r->cv, &r->lock);
	pthread_mutex_unlock(&r->lock);
	flush_done(r);
	PQfinish(r->c);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->lock);
	free(r->conninfo);
	free(r);
}

void dlq_replayer_stats(struct dlq_replayer *r, struct dlq_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->st;
	pthread_mutex_unlock(&r->lock);
}
