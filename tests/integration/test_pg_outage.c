// SPDX-License-Identifier: MIT
/* test_pg_outage.c -- PostgreSQL crashes in the middle of a 50,000-row stream, directly and
 * behind PgBouncer (transaction pooling): every row reported done is stored exactly once,
 * none is lost, none reported done is missing from the table.
 *
 * A producer thread submits the rows as a queue would (waiting while the writer is full);
 * once 10,000 are stored the server is stopped with `pg_ctl stop -m immediate` (a crash:
 * in-flight transactions die mid-COMMIT), kept down, and started again. The writer must
 * notice, hold everything, reconnect with backoff and drain the backlog on its own.
 */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "sink/pg/migrate.h"
#include "sink/pg/writer.h"
#include "pgharness.h"
#include "pgrows.h"
#include "test_progs.h"

#define STREAM_ROWS 50000
#define CRASH_AFTER 10000

struct producer {
	struct pg_writer *w;
	const char *prefix;
	int ret;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	p->ret = pgr_submit_range(p->w, p->prefix, 0, STREAM_ROWS);
	return NULL;
}

static uint64_t stored_now(struct pgr_ledger *l)
{
	uint64_t n;

	pthread_mutex_lock(&l->mu);
	n = l->count[PG_ROW_STORED] + l->count[PG_ROW_DUPLICATE];
	pthread_mutex_unlock(&l->mu);
	return n;
}

static bool wait_for(bool (*cond)(void *), void *arg, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (cond(arg))
			return true;
		usleep(10000);
	}
	return cond(arg);
}

static bool crash_point(void *arg)
{
	return stored_now(arg) >= CRASH_AFTER;
}

static bool not_ready(void *arg)
{
	enum pg_health h = pg_writer_health(arg);

	return h == PG_HEALTH_UNREACHABLE || h == PG_HEALTH_DEGRADED;
}

static void check_table(struct pgh_server *s, const char *prefix)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE idempotency_key LIKE '%s-%%'",
		 prefix);
	ASSERT_EQ(pgh_query_ll(s, sql), STREAM_ROWS, "events: every row once");
	snprintf(sql, sizeof(sql),
		 "SELECT count(DISTINCT idempotency_key) FROM events WHERE idempotency_key LIKE "
		 "'%s-%%'",
		 prefix);
	ASSERT_EQ(pgh_query_ll(s, sql), STREAM_ROWS, "events: distinct keys");
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM event_keys WHERE idempotency_key LIKE '%s-%%'", prefix);
	ASSERT_EQ(pgh_query_ll(s, sql), STREAM_ROWS, "event_keys: every key once");
}

static void crash_during_stream(struct pgh_server *s, const char *conninfo, const char *prefix,
				int down_s)
{
	struct pg_writer_config cfg = {.conninfo = conninfo,
				       .pool_size = 2,
				       .max_pending = 20000,
				       .backoff_min_ms = 50,
				       .backoff_max_ms = 1000};
	struct producer p = {.prefix = prefix};
	struct pg_writer_stats st;
	struct pgr_ledger l;
	pthread_t thr;
	bool started = false;

	if (!ASSERT_OK(pgr_ledger_init(&l, STREAM_ROWS), "ledger"))
		return;
	p.w = pg_writer_new(&cfg, pgr_done, &l);
	if (!ASSERT_OK_PTR(p.w, "writer") ||
	    !ASSERT_OK(pthread_create(&thr, NULL, produce, &p), "producer"))
		goto out;
	started = true;
	if (!ASSERT_TRUE(wait_for(crash_point, &l, 60000), "10,000 rows stored before the crash"))
		goto out;
	if (!ASSERT_OK(pgh_server_stop(s, "immediate"), "pg_ctl stop -m immediate"))
		goto out;
	ASSERT_LT(stored_now(&l), STREAM_ROWS, "crashed mid-stream");
	ASSERT_TRUE(wait_for(not_ready, p.w, 5000), "health leaves ready during the outage");
	printf("outage: health=%s stored=%llu\n", pg_health_name(pg_writer_health(p.w)),
	       (unsigned long long)stored_now(&l));
	sleep(down_s);
	if (!ASSERT_OK(pgh_server_restart(s), "restart"))
		goto out;
	pthread_join(thr, NULL);
	started = false;
	ASSERT_OK(p.ret, "every row accepted by the writer");
	ASSERT_OK(pg_writer_drain(p.w, 120000), "backlog drains on its own");
	pg_writer_get_stats(p.w, &st);
	printf("stored=%llu duplicate=%llu batches=%llu failed=%llu connects=%llu "
	       "connect_failures=%llu\n",
	       (unsigned long long)st.rows_stored, (unsigned long long)st.rows_duplicate,
	       (unsigned long long)st.batches_committed, (unsigned long long)st.batches_failed,
	       (unsigned long long)st.connects, (unsigned long long)st.connect_failures);
	ASSERT_EQ(pgr_missing(&l), 0, "every row reported");
	ASSERT_EQ(l.twice, 0, "no row reported twice");
	ASSERT_EQ(l.count[PG_ROW_STORED] + l.count[PG_ROW_DUPLICATE], STREAM_ROWS,
		  "every row stored (a retried commit may come back as duplicate)");
	ASSERT_EQ(l.count[PG_ROW_DEAD_LETTERED] + l.count[PG_ROW_RETRY_LATER], 0, "no failures");
	ASSERT_GT(st.connect_failures + st.batches_failed, 0, "the outage was noticed");
	ASSERT_TRUE(pgr_wait_health(p.w, PG_HEALTH_READY, 5000), "ready after the outage");
	check_table(s, prefix);
out:
	if (started) {
		pgh_server_restart(s);
		pthread_join(thr, NULL);
	}
	pg_writer_free(p.w);
	pgr_ledger_fini(&l);
}

void test_pg_outage(void)
{
	struct pgh_server s;
	struct pgh_bouncer b = {0};
	char err[512];

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&s, test__tmpdir(), NULL), "postgres start"))
		return;
	if (!ASSERT_EQ(pg_migrate_conninfo(s.conninfo, err, sizeof(err)), pg_migrate_latest(),
		       "migrate"))
		goto out;
	/* the 10 s outage, directly; a shorter one behind PgBouncer to bound the runtime.
	 * PgBouncer gets one server connection for the writer's two: transactions from both
	 * clients interleave on it, so anything session-bound would break. */
	if (test__start_subtest("immediate_stop_direct"))
		crash_during_stream(&s, s.conninfo, "direct", 10);
	if (test__start_subtest("immediate_stop_pgbouncer")) {
		if (ASSERT_OK(pgh_bouncer_start(&b, &s, test__tmpdir(), 1), "pgbouncer start"))
			crash_during_stream(&s, b.conninfo, "bouncer", 4);
		pgh_bouncer_stop(&b);
	}
out:
	pgh_server_destroy(&s);
}
