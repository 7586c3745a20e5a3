// SPDX-License-Identifier: MIT
/* pgstream.c -- a paced stream of rows through a PostgreSQL writer (pgstream.h) */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "pgstream.h"

int64_t pgs_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void done(void *ctx, void *cookie, enum pg_row_status status)
{
	struct pgs_stream *s = ctx;
	int i = (int)(uintptr_t)cookie - 1;

	if ((status == PG_ROW_STORED || status == PG_ROW_DUPLICATE) && i >= 0 && i < s->n)
		__atomic_store_n(&s->ack_us[i], pgs_now_us(), __ATOMIC_RELAXED);
	pgr_done(&s->l, cookie, status);
}

static void *produce(void *arg)
{
	struct pgs_stream *s = arg;
	uint64_t t0 = clock_mono_ns();
	char buf[512];
	struct pg_row row;

	for (int i = 0; i < s->n && !__atomic_load_n(&s->stop, __ATOMIC_RELAXED); i++) {
		uint64_t due = t0 + (uint64_t)i * 1000000000ULL / s->rate, now;
		int ret;

		while ((now = clock_mono_ns()) < due)
			usleep((due - now) / 1000 < 2000 ? (due - now) / 1000 + 1 : 2000);
		pgr_make(&row, buf, sizeof(buf), s->prefix, i);
		/* a full writer: the journal holds the row until there is room */
		while ((ret = pg_writer_submit(s->w, &row)) == -EAGAIN &&
		       !__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
			usleep(1000);
		if (ret) {
			s->ret = ret;
			break;
		}
		__atomic_store_n(&s->submitted, i + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

int pgs_start(struct pgs_stream *s, const struct pg_writer_config *cfg, const char *prefix, int n,
	      int rate)
{
	int ret;

	memset(s, 0, sizeof(*s));
	snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
	s->n = n;
	s->rate = rate > 0 ? rate : 1;
	s->ack_us = calloc(n, sizeof(*s->ack_us));
	if (!s->ack_us)
		return -ENOMEM;
	ret = pgr_ledger_init(&s->l, n);
	if (ret) {
		free(s->ack_us);
		s->ack_us = NULL;
		return ret;
	}
	s->w = pg_writer_new(cfg, done, s);
	if (!s->w)
		return -errno;
	ret = pthread_create(&s->thr, NULL, produce, s);
	if (ret)
		return -ret;
	s->running = true;
	return 0;
}

int pgs_acked(struct pgs_stream *s)
{
	int n;

	pthread_mutex_lock(&s->l.mu);
	n = (int)(s->l.count[PG_ROW_STORED] + s->l.count[PG_ROW_DUPLICATE]);
	pthread_mutex_unlock(&s->l.mu);
	return n;
}

void pgs_sample(struct pgs_stream *s)
{
	struct pg_writer_stats st;

	pg_writer_get_stats(s->w, &st);
	if (st.pending > s->max_pending)
		s->max_pending = st.pending;
}

int pgs_finish(struct pgs_stream *s, int timeout_ms)
{
	if (s->running) {
		pthread_join(s->thr, NULL);
		s->running = false;
	}
	if (s->ret)
		return s->ret;
	return pg_writer_drain(s->w, timeout_ms);
}

void pgs_free(struct pgs_stream *s)
{
	if (s->running) {
		__atomic_store_n(&s->stop, true, __ATOMIC_RELAXED);
		pthread_join(s->thr, NULL);
		s->running = false;
	}
	pg_writer_free(s->w);
	s->w = NULL;
	if (s->ack_us) {
		pgr_ledger_fini(&s->l);
		free(s->ack_us);
		s->ack_us = NULL;
	}
}

int pgs_check(struct pgs_stream *s, const struct pgh_server *srv, struct pgs_loss *out)
{
	PGconn *c = PQconnectdb(srv->local_conninfo);
	size_t plen = strlen(s->prefix);
	char *seen = calloc(s->n, 1), sql[200];
	PGresult *res = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!seen || PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgstream: connect: %s", PQerrorMessage(c));
		goto out;
	}
	snprintf(sql, sizeof(sql),
		 "SELECT idempotency_key FROM event_keys WHERE idempotency_key LIKE '%s-%%'",
		 s->prefix);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pgstream: %s: %s", sql, PQresultErrorMessage(res));
		goto out;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		long i = strtol(PQgetvalue(res, r, 0) + plen + 1, NULL, 10);

		if (i >= 0 && i < s->n)
			seen[i] = 1;
	}
	for (int i = 0; i < s->n; i++) {
		int64_t t = __atomic_load_n(&s->ack_us[i], __ATOMIC_RELAXED);

		if (!t)
			continue;
		out->acked++;
		if (seen[i])
			continue;
		out->lost++;
		if (!out->first_lost_us || t < out->first_lost_us)
			out->first_lost_us = t;
		if (t > out->last_lost_us)
			out->last_lost_us = t;
	}
	out->lost_span_s = out->lost ? (double)(out->last_lost_us - out->first_lost_us) / 1e6 : 0;
	ret = 0;
out:
	PQclear(res);
	PQfinish(c);
	free(seen);
	return ret;
}

double pgs_first_stored_after(const struct pgs_stream *s, const struct pgh_server *srv,
			      int64_t t_us)
{
	char sql[300];
	long long us;

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce((SELECT (extract(epoch FROM min(stored_at)) * 1000000)::bigint "
		 "FROM events WHERE idempotency_key LIKE '%s-%%' AND stored_at > "
		 "to_timestamp(%lld / 1e6)), -1)",
		 s->prefix, (long long)t_us);
	us = pgh_query_ll(srv, sql);
	return us < 0 ? -1 : (double)(us - t_us) / 1e6;
}
