// SPDX-License-Identifier: MIT
/* test_pg_writer.c -- the batch writer on a real PostgreSQL: duplicates, poison rows, stalls */
#include <libpq-fe.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/array_size.h"
#include "lib/clock.h"
#include "sink/pg/migrate.h"
#include "sink/pg/writer.h"
#include "pgharness.h"
#include "pgrows.h"
#include "test_progs.h"

static struct pg_writer *writer_start(const char *conninfo, struct pgr_ledger *l, int batch_max,
				      int max_pending, int statement_timeout_ms)
{
	struct pg_writer_config cfg = {
	    .conninfo = conninfo,
	    .pool_size = 2,
	    .batch_max = batch_max,
	    .linger_ms = 5,
	    .max_pending = max_pending,
	    .statement_timeout_ms = statement_timeout_ms,
	    .backoff_min_ms = 20,
	    .backoff_max_ms = 500,
	    .max_payload_bytes = 64 * 1024,
	};

	return pg_writer_new(&cfg, pgr_done, l);
}

static long long count_prefix(const struct pgh_server *s, const char *table, const char *prefix)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE idempotency_key LIKE '%s-%%'",
		 table, prefix);
	return pgh_query_ll(s, sql);
}

static void subtest_duplicates(const struct pgh_server *s)
{
	struct pg_writer *w = NULL;
	struct pg_writer_stats st;
	struct pgr_ledger l;
	char buf[512];
	struct pg_row row;

	if (!ASSERT_OK(pgr_ledger_init(&l, 400), "ledger"))
		return;
	/* within one batch: rows 0..99 where key i and key i+50 collide (same tenant too) */
	w = writer_start(s->conninfo, &l, 500, 0, 0);
	if (!ASSERT_OK_PTR(w, "writer"))
		goto out;
	for (int i = 0; i < 100; i++) {
		pgr_make(&row, buf, sizeof(buf), "dup", i % 50);
		row.cookie = (void *)(uintptr_t)(i + 1);
		ASSERT_OK(pg_writer_submit(w, &row), "submit");
	}
	ASSERT_OK(pg_writer_drain(w, 30000), "drain within");
	ASSERT_EQ(count_prefix(s, "events", "dup"), 50, "one row per key (within a batch)");
	ASSERT_EQ(l.count[PG_ROW_STORED], 50, "stored");
	ASSERT_EQ(l.count[PG_ROW_DUPLICATE], 50, "duplicates reported");
	pg_writer_free(w);

	/* across batches, in flight at once on two connections: batches of 7 rows */
	w = writer_start(s->conninfo, &l, 7, 0, 0);
	if (!ASSERT_OK_PTR(w, "writer"))
		goto out;
	ASSERT_OK(pgr_submit_range(w, "dup", 100, 300), "first copies");
	ASSERT_OK(pgr_submit_range(w, "dup", 100, 300), "second copies");
	ASSERT_OK(pg_writer_drain(w, 30000), "drain across");
	ASSERT_EQ(count_prefix(s, "events", "dup"), 250, "one row per key (across batches)");
	pg_writer_get_stats(w, &st);
	ASSERT_EQ(st.rows_stored, 200, "stored across");
	ASSERT_EQ(st.rows_duplicate, 200, "duplicates across");
	ASSERT_GE(st.batches_committed, 400 / 7, "small batches");
	pg_writer_free(w);

	/* across a writer restart: every key again (0..49 and 100..299), all duplicates */
	w = writer_start(s->conninfo, &l, 500, 0, 0);
	if (!ASSERT_OK_PTR(w, "writer"))
		goto out;
	ASSERT_OK(pgr_submit_range(w, "dup", 0, 50), "after restart");
	ASSERT_OK(pgr_submit_range(w, "dup", 100, 300), "after restart");
	ASSERT_OK(pg_writer_drain(w, 30000), "drain restart");
	pg_writer_get_stats(w, &st);
	ASSERT_EQ(st.rows_stored, 0, "nothing new stored");
	ASSERT_EQ(st.rows_duplicate, 250, "all duplicates");
	ASSERT_EQ(count_prefix(s, "events", "dup"), 250, "still one row per key");
	ASSERT_EQ(count_prefix(s, "event_keys", "dup"), 250, "one key row per key");
	ASSERT_EQ(l.count[PG_ROW_DEAD_LETTERED] + l.count[PG_ROW_RETRY_LATER], 0, "no failures");
out:
	pg_writer_free(w);
	pgr_ledger_fini(&l);
}

struct poison {
	int at;
	const char *payload; /* NULL: oversized payload */
	const char *type;
	const char *expect; /* in dead_letters.last_error */
	bool bad_key;	    /* the idempotency key ends in an invalid UTF-8 byte */
};

static void subtest_poison(const struct pgh_server *s, const char *conninfo, const char *prefix)
{
	static char longtype[300];
	const struct poison bad[] = {
	    {17, "{\"s\":\"a\\u0000b\"}", NULL, "unsupported Unicode escape sequence", false},
	    {77, "{}", NULL, "invalid byte sequence for encoding", true},
	    {123, "{\"s\":\"\xff\xfe\"}", NULL, "invalid byte sequence for encoding", false},
	    {250, "{not json", NULL, "invalid input syntax for type json", false},
	    {311, "{}", longtype, "value too long for type character varying(128)", false},
	    {499, NULL, NULL, "max_payload_bytes", false},
	};
	const int nbad = ARRAY_SIZE(bad);
	struct pg_writer *w = NULL;
	struct pg_writer_stats st;
	struct pgr_ledger l;
	char buf[512], sql[256], out[512];
	char *big = malloc(100 * 1024), badkey[64];
	struct pg_row row;

	memset(longtype, 'x', sizeof(longtype) - 1);
	if (!ASSERT_OK(pgr_ledger_init(&l, 500), "ledger") || !ASSERT_OK_PTR(big, "big"))
		goto out;
	memset(big, ' ', 100 * 1024);
	big[0] = '[';
	big[100 * 1024 - 1] = ']';
	w = writer_start(conninfo, &l, 500, 0, 0);
	if (!ASSERT_OK_PTR(w, "writer"))
		goto out;
	for (int i = 0, b = 0; i < 500; i++) {
		pgr_make(&row, buf, sizeof(buf), prefix, i);
		if (b < nbad && bad[b].at == i) {
			row.payload = bad[b].payload ? bad[b].payload : big;
			row.payload_len = bad[b].payload ? strlen(bad[b].payload) : 100 * 1024;
			row.type = bad[b].type ? bad[b].type : row.type;
			if (bad[b].bad_key) {
				snprintf(badkey, sizeof(badkey), "%s\xff", row.idempotency_key);
				row.idempotency_key = badkey;
			}
			b++;
		}
		ASSERT_OK(pg_writer_submit(w, &row), "submit");
	}
	ASSERT_OK(pg_writer_drain(w, 30000), "drain");
	ASSERT_EQ(count_prefix(s, "events", prefix), 500 - nbad, "the rest of the batch stored");
	ASSERT_EQ(l.count[PG_ROW_STORED], 500 - nbad, "stored reported");
	ASSERT_EQ(l.count[PG_ROW_DEAD_LETTERED], nbad, "dead letters reported");
	ASSERT_EQ(count_prefix(s, "dead_letters", prefix), nbad, "dead_letters rows");
	for (int b = 0; b < nbad; b++) {
		ASSERT_EQ(l.status[bad[b].at], 1 + PG_ROW_DEAD_LETTERED, "the bad row itself");
		snprintf(sql, sizeof(sql),
			 "SELECT reason || ': ' || last_error FROM dead_letters "
			 "WHERE idempotency_key IN ('%s-%d', '%s-%d?')",
			 prefix, bad[b].at, prefix, bad[b].at);
		pgh_psql(s, out, sizeof(out), "%s", sql);
		ASSERT_HAS_STR(out, bad[b].expect, "server's error recorded");
	}
	/* the raw bytes are kept, so the event can be repaired and replayed */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM dead_letters WHERE idempotency_key = '%s-123' "
		 "AND payload = '\\x7b2273223a22fffe227d'::bytea",
		 prefix);
	ASSERT_EQ(pgh_query_ll(s, sql), 1, "invalid UTF-8 payload kept byte for byte");
	pg_writer_get_stats(w, &st);
	ASSERT_GT(st.batch_splits, 0, "batch was split to isolate");
out:
	pg_writer_free(w);
	pgr_ledger_fini(&l);
	free(big);
}

static void subtest_stalled_database(const struct pgh_server *s)
{
	PGconn *locker = PQconnectdb(s->conninfo);
	struct pg_writer *w = NULL;
	struct pg_writer_stats st;
	struct pgr_ledger l;
	uint64_t worst = 0, t0;
	int accepted = 0, refused = 0, ret;
	enum pg_health h;
	char buf[512];
	struct pg_row row;

	if (!ASSERT_OK(pgr_ledger_init(&l, 100000), "ledger") ||
	    !ASSERT_EQ(PQstatus(locker), CONNECTION_OK, "locker connects"))
		goto out;
	PQclear(PQexec(locker, "BEGIN; LOCK TABLE event_keys IN ACCESS EXCLUSIVE MODE"));
	w = writer_start(s->conninfo, &l, 500, 2000, 300);
	if (!ASSERT_OK_PTR(w, "writer"))
		goto out;
	/* 2.5 s of submitting as fast as possible while every INSERT waits on the lock */
	for (t0 = clock_mono_ns() / 1000; clock_mono_ns() / 1000 - t0 < 2500000;) {
		uint64_t c0 = clock_mono_ns() / 1000, dt;

		pgr_make(&row, buf, sizeof(buf), "stall", accepted);
		ret = pg_writer_submit(w, &row);
		dt = clock_mono_ns() / 1000 - c0;
		worst = dt > worst ? dt : worst;
		if (!ret)
			accepted++;
		else if (ASSERT_EQ(ret, -EAGAIN, "refused only as full"))
			refused++;
		else
			break;
		if (ret)
			usleep(100);
	}
	pg_writer_get_stats(w, &st);
	h = pg_writer_health(w);
	ASSERT_EQ(accepted, 2000, "accepted up to max_pending, no more");
	ASSERT_GT(refused, 0, "refused beyond max_pending");
	ASSERT_EQ(st.pending, 2000, "bounded pending");
	/* the table stays locked for the whole loop: a submit that waited for the database
	 * would not return before the loop ends (the bound is loose: the machine is shared) */
	ASSERT_LT(worst, 1000000, "submit never waited for the database (us)");
	ASSERT_GT(st.batches_failed, 0, "statement timeouts seen");
	ASSERT_HAS_STR(st.last_error, "57014", "cancelled by statement timeout");
	ASSERT_EQ(h, PG_HEALTH_DEGRADED, "health says degraded");
	ASSERT_EQ(count_prefix(s, "events", "stall"), 0, "nothing written while locked");
	PQclear(PQexec(locker, "COMMIT"));
	ASSERT_OK(pg_writer_drain(w, 30000), "drains once the lock is gone");
	ASSERT_EQ(count_prefix(s, "events", "stall"), 2000, "all accepted rows stored");
	ASSERT_EQ(l.count[PG_ROW_STORED], 2000, "all reported stored");
	ASSERT_EQ(l.twice, 0, "none twice");
	ASSERT_TRUE(pgr_wait_health(w, PG_HEALTH_READY, 5000), "ready again");
out:
	pg_writer_free(w);
	PQfinish(locker);
	pgr_ledger_fini(&l);
}

static uint64_t reported(struct pgr_ledger *l)
{
	uint64_t n;

	pthread_mutex_lock(&l->mu);
	n = l->count[0] + l->count[1] + l->count[2] + l->count[3];
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* A partial batch is written after the linger, without anyone calling drain. */
static void subtest_linger(const struct pgh_server *s)
{
	struct pg_writer *w = NULL;
	struct pg_writer_stats st;
	struct pgr_ledger l;

	if (!ASSERT_OK(pgr_ledger_init(&l, 3), "ledger"))
		return;
	w = writer_start(s->conninfo, &l, 500, 0, 0);
	if (!ASSERT_OK_PTR(w, "writer"))
		goto out;
	ASSERT_OK(pgr_submit_range(w, "linger", 0, 3), "three rows");
	for (int i = 0; i < 1000 && reported(&l) < 3; i++)
		usleep(10000);
	ASSERT_EQ(l.count[PG_ROW_STORED], 3, "stored after the linger");
	pg_writer_get_stats(w, &st);
	ASSERT_EQ(st.batches_committed, 1, "one batch");
	ASSERT_EQ(st.batch_rows.bucket[2], 1, "of 3 rows (bucket <= 5)");
	ASSERT_EQ(st.batch_latency_us.count, 1, "latency recorded");
out:
	pg_writer_free(w);
	pgr_ledger_fini(&l);
}

/* No database at all: rows are kept (not failed), health says unreachable, and freeing the
 * writer hands every row back as RETRY_LATER for the queue to redeliver. */
static void subtest_unreachable(void)
{
	char conninfo[128];
	struct pg_writer *w = NULL;
	struct pg_writer_stats st;
	struct pgr_ledger l;
	int port = pgh_free_port();

	if (!ASSERT_OK(pgr_ledger_init(&l, 300), "ledger") || !ASSERT_GT(port, 0, "port"))
		goto out;
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d dbname=sluice", port);
	w = writer_start(conninfo, &l, 100, 0, 0);
	if (!ASSERT_OK_PTR(w, "writer"))
		goto out;
	ASSERT_OK(pgr_submit_range(w, "nodb", 0, 300), "accepted while unreachable");
	ASSERT_TRUE(pgr_wait_health(w, PG_HEALTH_UNREACHABLE, 5000), "health unreachable");
	ASSERT_EQ(pg_writer_drain(w, 300), -ETIMEDOUT, "nothing can drain");
	pg_writer_get_stats(w, &st);
	ASSERT_EQ(st.pending, 300, "rows kept pending");
	ASSERT_GT(st.connect_failures, 1, "reconnects keep trying");
	ASSERT_HAS_STR(st.last_error, "refused", "the connection error is kept");
	pg_writer_free(w);
	w = NULL;
	ASSERT_EQ(l.count[PG_ROW_RETRY_LATER], 300, "handed back for redelivery");
	ASSERT_EQ(pgr_missing(&l), 0, "every row reported");
out:
	pg_writer_free(w);
	pgr_ledger_fini(&l);
}

void test_pg_writer(void)
{
	struct pgh_bouncer b = {0};
	struct pgh_server s;
	char err[512];

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&s, test__tmpdir(), NULL), "postgres start"))
		return;
	if (!ASSERT_EQ(pg_migrate_conninfo(s.conninfo, err, sizeof(err)), pg_migrate_latest(),
		       "migrate"))
		goto out;
	if (test__start_subtest("linger"))
		subtest_linger(&s);
	if (test__start_subtest("duplicates"))
		subtest_duplicates(&s);
	if (test__start_subtest("poison_rows"))
		subtest_poison(&s, s.conninfo, "poison");
	/* failed transactions stay open until ROLLBACK: PgBouncer must keep them on one server */
	if (test__start_subtest("poison_rows_pgbouncer")) {
		if (ASSERT_OK(pgh_bouncer_start(&b, &s, test__tmpdir(), 1), "pgbouncer start"))
			subtest_poison(&s, b.conninfo, "bpoison");
		pgh_bouncer_stop(&b);
	}
	if (test__start_subtest("stalled_database"))
		subtest_stalled_database(&s);
	if (test__start_subtest("unreachable"))
		subtest_unreachable();
out:
	pgh_server_destroy(&s);
}
