// SPDX-License-Identifier: MIT
/* steps.c -- step_results and dead_letters: what each step of an event did, durably
 *
 * A mutex-guarded stack of idle connections; a caller takes one (or opens one while fewer
 * than max_conns exist, else waits), runs its statement, and gives it back -- or closes it
 * when it broke, so the next caller reconnects. Times go in as Unix microseconds and are
 * turned into timestamptz by the server (to_timestamp), so no client time formatting.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "sink/pg/steps.h"

#define STEPS_MAX_CONNS 16

struct pg_steps {
	char *conninfo;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	PGconn *idle[STEPS_MAX_CONNS];
	int nidle, open, max;
	struct pg_steps_stats st;
};

struct pg_steps *pg_steps_new(const char *conninfo, int max_conns)
{
	struct pg_steps *ps;

	if (!conninfo || !*conninfo) {
		errno = EINVAL;
		return NULL;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->conninfo = strdup(conninfo))) {
		free(ps);
		errno = ENOMEM;
		return NULL;
	}
	ps->max = max_conns < 1 ? 1 : max_conns > STEPS_MAX_CONNS ? STEPS_MAX_CONNS : max_conns;
	pthread_mutex_init(&ps->lock, NULL);
	pthread_cond_init(&ps->cv, NULL);
	return ps;
}

void pg_steps_free(struct pg_steps *ps)
{
	if (!ps)
		return;
	for (int i = 0; i < ps->nidle; i++)
		PQfinish(ps->idle[i]);
	pthread_mutex_destroy(&ps->lock);
	pthread_cond_destroy(&ps->cv);
	free(ps->conninfo);
	free(ps);
}

static PGconn *conn_get(struct pg_steps *ps, char *err, size_t errlen)
{
	PGconn *c = NULL;

	pthread_mutex_lock(&ps->lock);
	while (!ps->nidle && ps->open >= ps->max)
		pthread_cond_wait(&ps->cv, &ps->lock);
	if (ps->nidle)
		c = ps->idle[--ps->nidle];
	else
		ps->open++;
	pthread_mutex_unlock(&ps->lock);
	if (c)
		return c;
	c = PQconnectdb(ps->conninfo);
	if (PQstatus(c) == CONNECTION_OK) {
		__atomic_add_fetch(&ps->st.connects, 1, __ATOMIC_RELAXED);
		return c;
	}
	snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
	PQfinish(c);
	pthread_mutex_lock(&ps->lock);
	ps->open--;
	pthread_cond_signal(&ps->cv);
	pthread_mutex_unlock(&ps->lock);
	return NULL;
}

/* Back to the pool, or closed when broken, in a transaction, or read-only (drop). */
static void conn_put(struct pg_steps *ps, PGconn *c, bool drop)
{
	bool broken =
	    drop || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE;

	pthread_mutex_lock(&ps->lock);
	if (broken) {
		PQfinish(c);
		ps->open--;
	} else {
		ps->idle[ps->nidle++] = c;
	}
	pthread_cond_signal(&ps->cv);
	pthread_mutex_unlock(&ps->lock);
}

/* Run one statement; returns the result when its status is `want`, else NULL with err set.
 * *read_only (may be NULL) is set when the server refused it as read-only (SQLSTATE 25006: a
 * demoted primary): the connection should go, so a multi-host conninfo finds the primary. */
static PGresult *run(PGconn *c, const char *sql, int n, const char *const *vals, const int *lens,
		     const int *fmts, ExecStatusType want, char *err, size_t errlen,
		     bool *read_only)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, 0);
	const char *state;

	if (PQresultStatus(r) == want)
		return r;
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (read_only && state && !strcmp(state, "25006"))
		*read_only = true;
	snprintf(err, errlen, "%s",
		 PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(c));
	err[strcspn(err, "\n")] = 0;
	PQclear(r);
	return NULL;
}

static void us_text(char *buf, size_t cap, int64_t us)
{
	snprintf(buf, cap, "%lld", (long long)us);
}

/* One statement on a pooled connection: counts it in *counter, and as an error when it
 * fails. Returns the result (caller clears) or NULL with err filled. */
static PGresult *query(struct pg_steps *ps, uint64_t *counter, const char *sql, int n,
		       const char *const *v, ExecStatusType want, char *err, size_t errlen)
{
	PGconn *c = conn_get(ps, err, errlen);
	PGresult *r = NULL;

	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
	if (c) {
		bool read_only = false;

		r = run(c, sql, n, v, NULL, NULL, want, err, errlen, &read_only);
		conn_put(ps, c, read_only);
	}
	if (!r)
		__atomic_add_fetch(&ps->st.errors, 1, __ATOMIC_RELAXED);
	return r;
}

int pg_steps_get(struct pg_steps *ps, const struct pg_step_key *k, char *status, size_t cap,
		 char *err, size_t errlen)
{
	char ts[32];
	const char *v[4] = {k->tenant, k->idempotency_key, k->step, ts};
	PGresult *r;
	int found;

	us_text(ts, sizeof(ts), k->received_us);
	r = query(ps, &ps->st.lookups,
		  "SELECT status FROM step_results WHERE tenant = $1 AND idempotency_key = $2 "
		  "AND step = $3 AND received_at = to_timestamp($4::bigint / 1000000.0)",
		  4, v, PGRES_TUPLES_OK, err, errlen);
	if (!r)
		return -EIO;
	found = PQntuples(r) > 0;
	if (found)
		snprintf(status, cap, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return found;
}

int pg_steps_event_received(struct pg_steps *ps, const char *tenant, const char *key,
			    int64_t *received_us, char *err, size_t errlen)
{
	const char *v[2] = {tenant, key};
	PGresult *r;
	int found;

	r = query(ps, &ps->st.lookups,
		  "SELECT (extract(epoch FROM received_at) * 1000000)::bigint FROM event_keys "
		  "WHERE tenant = $1 AND idempotency_key = $2",
		  2, v, PGRES_TUPLES_OK, err, errlen);
	if (!r)
		return -EIO;
	found = PQntuples(r) > 0;
	if (found)
		*received_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return found;
}

int pg_steps_claim(struct pg_steps *ps, const char *tenant, const char *key, int64_t received_us,
		   char *err, size_t errlen)
{
	char ts[32];
	const char *v[3] = {tenant, key, ts};
	PGresult *r;
	int mine;

	us_text(ts, sizeof(ts), received_us);
	/* the no-op update makes RETURNING give the row either way, so one round trip says
	 * whose claim it is */
	r = query(ps, &ps->st.writes,
		  "INSERT INTO call_claims (tenant, idempotency_key, received_at) VALUES ($1, $2, "
		  "to_timestamp($3::bigint / 1000000.0)) ON CONFLICT (tenant, idempotency_key) DO "
		  "UPDATE SET tenant = EXCLUDED.tenant RETURNING received_at = "
		  "to_timestamp($3::bigint / 1000000.0)",
		  3, v, PGRES_TUPLES_OK, err, errlen);
	if (!r)
		return -EIO;
	mine = PQntuples(r) > 0 && !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return mine;
}

struct pg_result *pg_steps_exec(struct pg_steps *ps, const char *sql, int n,
				const char *const *vals, const int *lens, const int *fmts, int want,
				char *err, size_t errlen)
{
	PGconn *c = conn_get(ps, err, errlen);
	PGresult *r = NULL;

	__atomic_add_fetch(&ps->st.writes, 1, __ATOMIC_RELAXED);
	if (c) {
		bool read_only = false;

		r = run(c, sql, n, vals, lens, fmts, (ExecStatusType)want, err, errlen, &read_only);
		conn_put(ps, c, read_only);
	}
	if (!r)
		__atomic_add_fetch(&ps->st.errors, 1, __ATOMIC_RELAXED);
	return r;
}

static const char *put_sql =
    "INSERT INTO step_results (tenant, idempotency_key, step, received_at, status, attempts, "
    "result, error) VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000000.0), $5, $6, "
    "$7::jsonb, $8) ON CONFLICT (tenant, idempotency_key, step, received_at) DO UPDATE SET "
    "status = EXCLUDED.status, attempts = EXCLUDED.attempts, result = EXCLUDED.result, "
    "error = EXCLUDED.error, updated_at = clock_timestamp()";

int pg_steps_put(struct pg_steps *ps, const struct pg_step_key *k, const char *status,
		 uint32_t attempts, const char *result_json, const char *error, char *err,
		 size_t errlen)
{
	char ts[32], att[16];
	const char *v[8] = {k->tenant, k->idempotency_key, k->step, ts, status,
			    att,       result_json,	   error};
	PGresult *r;

	us_text(ts, sizeof(ts), k->received_us);
	snprintf(att, sizeof(att), "%u", attempts);
	r = query(ps, &ps->st.writes, put_sql, 8, v, PGRES_COMMAND_OK, err, errlen);
	if (!r)
		return -EIO;
	PQclear(r);
	return 0;
}

int pg_steps_dead_letter(struct pg_steps *ps, const struct pg_step_key *k, const char *reason,
			 uint32_t attempts, const char *last_error, const struct pg_dead_event *ev,
			 char *err, size_t errlen)
{
	static const char *const classes[] = {"critical", "normal", "low"};
	char ts[32], att[16], slot[16];
	const char *sv[8] = {k->tenant, k->idempotency_key, k->step, ts, "failed", att,
			     NULL,	last_error};
	const char *pv[10] = {k->tenant,  k->idempotency_key, k->step, reason, att,
			      last_error, ev->data,	      ts,      NULL,   slot};
	int lens[10] = {0, 0, 0, 0, 0, 0, (int)ev->len, 0, 0, 0};
	int fmts[10] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
	PGconn *c = conn_get(ps, err, errlen);
	PGresult *r = NULL;

	if (!c)
		goto fail;
	us_text(ts, sizeof(ts), k->received_us);
	snprintf(att, sizeof(att), "%u", attempts);
	snprintf(slot, sizeof(slot), "%u", ev->tenant_slot);
	pv[8] = ev->class < 3 ? classes[ev->class] : NULL; /* a class the table refuses: NULL */
	r = run(c, "BEGIN", 0, NULL, NULL, NULL, PGRES_COMMAND_OK, err, errlen, NULL);
	if (r) {
		PQclear(r);
		r = run(c, put_sql, 8, sv, NULL, NULL, PGRES_COMMAND_OK, err, errlen, NULL);
	}
	if (r) {
		PQclear(r);
		r = run(
		    c,
		    "INSERT INTO dead_letters (tenant, idempotency_key, step, reason, attempts, "
		    "last_error, payload, received_at, class, tenant_slot) VALUES ($1, $2, $3, $4, "
		    "$5, $6, $7, to_timestamp($8::bigint / 1000000.0), $9, $10)",
		    10, pv, lens, fmts, PGRES_COMMAND_OK, err, errlen, NULL);
	}
	if (r) {
		PQclear(r);
		r = run(c, "COMMIT", 0, NULL, NULL, NULL, PGRES_COMMAND_OK, err, errlen, NULL);
	}
	if (!r)
		PQclear(PQexec(c, "ROLLBACK"));
	conn_put(ps, c, false);
	if (!r)
		goto fail;
	PQclear(r);
	__atomic_add_fetch(&ps->st.dead_letters, 1, __ATOMIC_RELAXED);
	return 0;
fail:
	__atomic_add_fetch(&ps->st.errors, 1, __ATOMIC_RELAXED);
	log_warn("pg: dead letter not written; the step is retried",
		 "tenant=%s key=%s step=%s err=\"%s\"", k->tenant, k->idempotency_key, k->step,
		 err);
	return -EIO;
}

void pg_steps_get_stats(struct pg_steps *ps, struct pg_steps_stats *st)
{
	st->lookups = __atomic_load_n(&ps->st.lookups, __ATOMIC_RELAXED);
	st->writes = __atomic_load_n(&ps->st.writes, __ATOMIC_RELAXED);
	st->dead_letters = __atomic_load_n(&ps->st.dead_letters, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&ps->st.errors, __ATOMIC_RELAXED);
	st->connects = __atomic_load_n(&ps->st.connects, __ATOMIC_RELAXED);
}
