// SPDX-License-Identifier: MIT
/* test_worker.c -- the job engine end to end: journal -> pools -> store + call -> ack
 *
 * Real PostgreSQL (pgharness), the mock upstream with fault injection, the real journal.
 * Events are appended the way the ingress does (event_encode), then the worker must store
 * each exactly once, call the upstream at most once successfully per key, fall back when
 * it fails, dead-letter what cannot be done, skip optional steps in thin mode, shed only
 * sheddable routes, and leave the queue empty.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/metrics.h"
#include "queue/event.h"
#include "mockharness.h"
#include "sink/pg/migrate.h"
#include "pgharness.h"
#include "queue/journal/journal.h"
#include "test_progs.h"
#include "work/release.h"
#include "work/worker.h"

struct env {
	struct pgh_server pg;
	struct mock_upstream mock;
	struct queue *q;
	char jdir[512];
};

/* One PostgreSQL server for all subtests (initdb and a start were most of a subtest's
 * time): started by the first env_start, stopped when the test ends; each subtest gets a
 * freshly created and migrated database "sluice" on it (e->pg is a copy: no subtest stops
 * the server). */
static struct pgh_server shared_pg;

static int env_start(struct env *e, const char *faults)
{
	static int seq;
	char err[256], base[400], out[1024];
	struct journal_cfg jc = {0};

	memset(e, 0, sizeof(*e));
	snprintf(base, sizeof(base), "%s/env%d", test__tmpdir(), ++seq);
	mkdir(base, 0755);
	if (!shared_pg.running) {
		if (pgh_server_start(&shared_pg, base, NULL))
			return -1;
	} else if (pgh_fresh_db(&shared_pg, out, sizeof(out))) {
		printf("a fresh database: %s\n", out);
		return -1;
	}
	e->pg = shared_pg;
	if (pg_migrate_conninfo(e->pg.conninfo, err, sizeof(err)) < 0) {
		printf("migrate: %s\n", err);
		return -1;
	}
	if (mock_upstream_start(&e->mock, faults))
		return -1;
	snprintf(e->jdir, sizeof(e->jdir), "%s/journal", base);
	jc.dir = e->jdir;
	e->q = journal_open(&jc);
	return e->q ? 0 : -1;
}

static void env_stop(struct env *e)
{
	if (e->q)
		queue_free(e->q);
	mock_upstream_stop(&e->mock);
}

static struct routes *routes_for(struct env *e, const char *extra)
{
	char text[2048], err[256];
	struct routes *r;

	snprintf(text, sizeof(text),
		 "[pool db]\nthreads = 2\ninflight = 512\n"
		 "[pool ai]\nthreads = 4\ninflight = 4\n"
		 "[upstream ai]\nurl = %s\ntimeout_ms = 1000\nscore_field = score\n"
		 "retry.base_ms = 5\nretry.cap_ms = 20\nretry.max_attempts = 6\n"
		 "retry.budget_pct = 100\nretry.budget_burst = 100000\n"
		 "breaker.window_size = 400\nbreaker.minimum_calls = 200\n%s",
		 e->mock.url, extra);
	r = routes_parse(text, "routes.ini", err, sizeof(err));
	if (!r)
		printf("routes: %s\n", err);
	return r;
}

struct counting_done {
	int ok, failed;
};

static void appended(void *arg, int err, uint64_t id)
{
	struct counting_done *c = arg;

	__atomic_add_fetch(err ? &c->failed : &c->ok, 1, __ATOMIC_RELAXED);
}

/* Append n events of type to the journal, tenants t0..t2, keys PREFIX-i. */
static int append_events(struct queue *q, int n, const char *type, const char *prefix)
{
	struct counting_done c = {0};
	char body[512], rec[640];

	for (int i = 0; i < n; i++) {
		char tenant[16];
		int len;
		struct queue_rec qr = {.class = 1, .tenant = 2 + i % 3};

		snprintf(tenant, sizeof(tenant), "t%d", i % 3);
		len = snprintf(body, sizeof(body),
			       "{\"type\":\"%s\",\"idempotency_key\":\"%s-%d\",\"payload\":"
			       "{\"email\":\"lead%d@example.com\",\"employees\":%d}}",
			       type, prefix, i, i, i * 7);
		qr.len = (uint32_t)event_encode(tenant, body, (size_t)len, rec, sizeof(rec));
		qr.data = rec;
		if (queue_append(q, &qr, appended, &c))
			return -1;
	}
	for (int i = 0; i < 500 && c.ok + c.failed < n; i++)
		usleep(10000);
	return c.ok == n ? 0 : -1;
}

static int wait_empty(struct queue *q, int seconds)
{
	struct queue_stats st;

	for (int i = 0; i < seconds * 20; i++) {
		if (!queue_stats(q, &st) && st.entries == 0)
			return 0;
		usleep(50000);
	}
	queue_stats(q, &st);
	printf("queue still holds %llu entries\n", (unsigned long long)st.entries);
	return -1;
}

static struct worker *start_worker(struct env *e, struct routes *r)
{
	char err[256];
	struct worker_cfg wc = {.routes = r, .queue = e->q, .pg_conninfo = e->pg.conninfo};
	struct worker *w = worker_new(&wc, err, sizeof(err));

	if (!w)
		printf("worker_new: %s\n", err);
	return w;
}

static void subtest_pipeline_with_failures(void)
{
	struct env e;
	struct worker *w = NULL;
	struct worker_stats st;

	if (!ASSERT_OK(env_start(&e, "error_rate=0.3"), "env"))
		goto out;
	/* the model answers only for an upstream that asks for it */
	w = start_worker(&e, routes_for(&e, "fallback.model = on\n"
					    "[route lead.created]\nclass = normal\n"
					    "step = store pool=db\nstep = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker"))
		goto out;
	if (!ASSERT_OK(append_events(e.q, 300, "lead.created", "k"), "append 300"))
		goto out;
	if (!ASSERT_OK(wait_empty(e.q, 60), "every entry acked"))
		goto out;
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM events"), 300, "stored once each");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE step = 'call:ai' "
				      "AND status IN ('done', 'fallback')"),
		  300, "every call step answered");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "dup_keys"), 0, "no key applied twice upstream");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM dead_letters"), 0, "no dead letters");
	worker_get_stats(w, &st);
	ASSERT_EQ(st.events_done, 300, "events done");
	/* a failed call is answered down the chain (no Redis here: by the local model) */
	ASSERT_GT(st.steps_fallback, 30, "about 30 % answered by the fallback");
	if (!ASSERT_LT(st.steps_fallback, 150, "the rest by the upstream")) {
		char out[4096];

		pgh_psql(
		    &e.pg, out, sizeof(out),
		    "SELECT error, count(*) FROM step_results GROUP BY 1 ORDER BY 2 DESC LIMIT 5");
		printf("%s\n", out);
	}
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE status = 'fallback' "
				      "AND result->>'source' = 'model'"),
		  (long long)st.steps_fallback, "fallback source recorded");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

/* Issue 18: without a configured fallback a failed call is never marked done by something
 * the upstream did not say: it is retried until the upstream takes it. */
static void subtest_no_fallback_by_default(void)
{
	struct env e;
	struct worker *w = NULL;
	struct worker_stats st;

	if (!ASSERT_OK(env_start(&e, "error_rate=0.3"), "env"))
		goto out;
	w = start_worker(&e, routes_for(&e, "retry.max_attempts = 40\n"
					    "[route lead.created]\nclass = normal\n"
					    "step = store pool=db\nstep = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker"))
		goto out;
	if (!ASSERT_OK(append_events(e.q, 200, "lead.created", "n"), "append 200") ||
	    !ASSERT_OK(wait_empty(e.q, 90), "every entry acked"))
		goto out;
	worker_get_stats(w, &st);
	ASSERT_EQ(st.steps_fallback, 0, "no fallback answered");
	ASSERT_GT(st.steps_retried, 20, "the failures were retried");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE step = 'call:ai' "
				      "AND status = 'done' AND result->>'source' = 'upstream'"),
		  200, "every call answered by the upstream itself");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM dead_letters"), 0, "no dead letters");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

static void subtest_restart_replays(void)
{
	struct env e;
	struct worker *w = NULL;
	struct journal_cfg jc = {0};

	if (!ASSERT_OK(env_start(&e, "latency_ms=5"), "env"))
		goto out;
	w = start_worker(&e, routes_for(&e, "[route lead.created]\nstep = store pool=db\n"
					    "step = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker") ||
	    !ASSERT_OK(append_events(e.q, 200, "lead.created", "r"), "append 200"))
		goto out;
	usleep(100000);
	/* stop mid-stream: whatever is unfinished stays unacked in the journal */
	worker_free(w, 0);
	w = NULL;
	{
		struct queue_stats qs;

		queue_stats(e.q, &qs);
		ASSERT_GT(qs.entries, 0,
			  "the stop left work unfinished (else this proves nothing)");
	}
	queue_free(e.q);
	jc.dir = e.jdir;
	e.q = journal_open(&jc);
	if (!ASSERT_OK_PTR(e.q, "journal reopened"))
		goto out;
	w = start_worker(&e, routes_for(&e, "[route lead.created]\nstep = store pool=db\n"
					    "step = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker restarted") || !ASSERT_OK(wait_empty(e.q, 60), "drained"))
		goto out;
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM events"), 200, "each stored once");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE step = 'call:ai'"),
		  200, "each called");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "dup_keys"), 0, "no duplicate upstream effect");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

static void subtest_dead_letters(void)
{
	struct env e;
	struct worker *w = NULL;
	struct worker_stats st;

	if (!ASSERT_OK(env_start(&e, "error_rate=1"), "env"))
		goto out;
	w = start_worker(&e, routes_for(&e, "fallback.model = off\n"
					    "[route crm.sync]\nstep = call ai pool=ai\n"
					    "step = store pool=db\n"));
	if (!ASSERT_OK_PTR(w, "worker") ||
	    !ASSERT_OK(append_events(e.q, 20, "crm.sync", "d"), "append 20") ||
	    !ASSERT_OK(wait_empty(e.q, 60), "acked after dead-lettering"))
		goto out;
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM dead_letters WHERE step = 'call:ai'"),
		  20, "one dead letter per event");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE status = 'failed'"),
		  20, "step recorded failed");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM events"), 0,
		  "later steps of a dead-lettered event do not run");
	worker_get_stats(w, &st);
	ASSERT_EQ(st.events_dead_lettered, 20, "counted");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

/* Issue 18: an essential call is retried until retry.max_age, then dead-lettered with the
 * status and body of the last answer; attempts alone would have allowed far more. */
static void subtest_max_age(void)
{
	struct env e;
	struct worker *w = NULL;

	if (!ASSERT_OK(env_start(&e, "error_rate=1&error_status=500"), "env"))
		goto out;
	w = start_worker(&e, routes_for(&e, "retry.max_attempts = 100000\n"
					    "retry.max_age_ms = 1500\nretry.base_ms = 50\n"
					    "retry.cap_ms = 100\n"
					    "[route crm.sync]\nstep = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker") ||
	    !ASSERT_OK(append_events(e.q, 5, "crm.sync", "m"), "append 5") ||
	    !ASSERT_OK(wait_empty(e.q, 60), "acked after dead-lettering"))
		goto out;
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM dead_letters WHERE reason = 'max age' "
				      "AND last_error LIKE 'past retry.max_age: http 500: "
				      "{\"error\":\"injected\"}%'"),
		  5, "dead-lettered for age, with the status and body");
	ASSERT_GT(pgh_query_ll(&e.pg, "SELECT min(attempts) FROM dead_letters"), 3,
		  "after several attempts");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

static long long queue_entries(struct queue *q)
{
	struct queue_stats st;

	return queue_stats(q, &st) ? -1 : (long long)st.entries;
}

static bool wait_sql(struct env *e, const char *sql, long long want, int seconds)
{
	for (int i = 0; i < seconds * 10; i++) {
		if (pgh_query_ll(&e->pg, sql) == want)
			return true;
		usleep(100000);
	}
	printf("%s: %lld, want %lld\n", sql, pgh_query_ll(&e->pg, sql), want);
	return false;
}

/* Issue 18: with the upstream down and its breaker open, call steps are parked in
 * PostgreSQL and their intake entries acked (the queue empties); while the database
 * refuses the park they stay unacked ("held"). When the upstream is back, the releaser
 * brings them back at a ramp and each is delivered once. */
static void subtest_parked_durably(void)
{
	struct env e;
	struct worker *w = NULL;
	long long early = -1;
	double t_up;

	if (!ASSERT_OK(env_start(&e, "down=1"), "env"))
		goto out;
	pgh_query_ll(&e.pg, "ALTER TABLE parked_steps RENAME TO parked_steps_away");
	w = start_worker(&e, routes_for(&e, "breaker.window_size = 4\nbreaker.minimum_calls = 4\n"
					    "breaker.open_wait_ms = 500\npark.after_ms = 2000\n"
					    "release.rate_max = 40\nrelease.ramp_ms = 4000\n"
					    "[route crm.sync]\nstep = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker") ||
	    !ASSERT_OK(append_events(e.q, 40, "crm.sync", "p"), "append 40"))
		goto out;
	usleep(1500000);
	ASSERT_EQ(queue_entries(e.q), 40, "database refuses the park: every entry held, unacked");
	pgh_query_ll(&e.pg, "ALTER TABLE parked_steps_away RENAME TO parked_steps");
	if (!ASSERT_OK(wait_empty(e.q, 30), "parked: every intake entry acked"))
		goto out;
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM parked_steps"), 40, "40 rows parked");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results"), 0, "none done");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "applied"), 0, "nothing reached the receiver");
	usleep(1000000);
	ASSERT_LE(pgh_query_ll(&e.pg, "SELECT max(attempts) FROM parked_steps"), 4,
		  "an open breaker spends no attempts while parked");
	ASSERT_OK(mock_upstream_faults(&e.mock, "down=0"), "receiver back");
	t_up = clock_mono_ms();
	for (int i = 0; i < 300 && mock_upstream_stat(&e.mock, "applied") < 40; i++) {
		if (early < 0 && clock_mono_ms() - t_up >= 1500)
			early = mock_upstream_stat(&e.mock, "applied");
		usleep(50000);
	}
	printf("released within 1.5 s of recovery: %lld of 40\n", early);
	ASSERT_LE(early, 25, "a ramp, not the whole backlog at once (40/s without it)");
	ASSERT_TRUE(wait_sql(&e, "SELECT count(*) FROM parked_steps", 0, 60), "all released");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE status = 'done'"),
		  40, "every step done");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "applied"), 40, "delivered");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "dup_keys"), 0, "each once");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM dead_letters"), 0, "no dead letters");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

/* Parked rows of an upstream the routes no longer name (removed or renamed while steps
 * waited for it) are left alone, named in a warning, and shown in sluice_parked_events /
 * _oldest_seconds like the others, so they cannot wait unseen. (The name has the characters
 * a text[] literal must quote.) */
static void subtest_parked_orphans(void)
{
	struct env e;
	struct worker *w = NULL;
	struct metrics *m = metrics_new();
	char *text = NULL;
	bool seen = false;

	if (!ASSERT_OK_PTR(m, "metrics") || !ASSERT_OK(env_start(&e, ""), "env"))
		goto out;
	for (int i = 0; i < 3; i++) {
		char sql[512];

		snprintf(
		    sql, sizeof(sql),
		    "INSERT INTO parked_steps (upstream, tenant, idempotency_key, step, "
		    "received_at, attempts, due_at, parked_at, class, tenant_slot, event) VALUES "
		    "('crm{v1,old}', 't0', 'orphan-%d', 1, now(), 2, now(), "
		    "now() - interval '1 hour', 1, 2, 'x'::bytea) RETURNING 1",
		    i);
		ASSERT_EQ(pgh_query_ll(&e.pg, sql), 1LL, "a row parked for an upstream now gone");
	}
	if (!ASSERT_OK(release_metrics_register(m), "release metrics"))
		goto out;
	w = start_worker(&e, routes_for(&e, "[route crm.sync]\nstep = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker"))
		goto out;
	for (int i = 0; i < 100 && !seen; i++) {
		size_t len;

		free(text);
		text = metrics_render(m, &len);
		seen = text && strstr(text, "sluice_parked_events{upstream=\"crm{v1,old}\"} 3");
		if (!seen)
			usleep(100000);
	}
	if (!ASSERT_TRUE(seen, "the orphan rows in sluice_parked_events"))
		printf("%s\n", text ? text : "(no metrics)");
	ASSERT_HAS_STR(text ? text : "",
		       "sluice_parked_oldest_seconds{upstream=\"crm{v1,old}\"} 36",
		       "their age (an hour)");
	ASSERT_HAS_STR(text ? text : "", "sluice_parked_events{upstream=\"ai\"} 0",
		       "the configured upstream beside them");
	usleep(500000);
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM parked_steps"), 3LL,
		  "left parked: no releaser takes them");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "received"), 0, "nothing sent anywhere");
out:
	free(text);
	worker_free(w, 5000);
	env_stop(&e);
	metrics_free(m);
}

/* park.max bounds the parked rows of an upstream; past it steps wait in memory, unacked. */
static void subtest_park_max(void)
{
	struct env e;
	struct worker *w = NULL;

	if (!ASSERT_OK(env_start(&e, "down=1"), "env"))
		goto out;
	w = start_worker(&e, routes_for(&e, "breaker.window_size = 4\nbreaker.minimum_calls = 4\n"
					    "breaker.open_wait_ms = 60000\npark.max = 5\n"
					    "[route crm.sync]\nstep = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker") ||
	    !ASSERT_OK(append_events(e.q, 20, "crm.sync", "x"), "append 20"))
		goto out;
	for (int i = 0; i < 50 && queue_entries(e.q) > 15; i++)
		usleep(100000);
	usleep(2500000); /* a few statistics readings later */
	ASSERT_GE(pgh_query_ll(&e.pg, "SELECT count(*) FROM parked_steps"), 5, "parked to the max");
	ASSERT_LE(pgh_query_ll(&e.pg, "SELECT count(*) FROM parked_steps"), 6,
		  "not past it (but for a park committing during a reading)");
	ASSERT_EQ(queue_entries(e.q) + pgh_query_ll(&e.pg, "SELECT count(*) FROM parked_steps"), 20,
		  "the rest held in the queue, unacked");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

/* Issue 18: a route without a store step, no Redis: a client's second copy of each key
 * (another receipt time) never reaches the upstream. */
static void subtest_call_only_duplicates(void)
{
	struct env e;
	struct worker *w = NULL;
	struct worker_stats st;

	if (!ASSERT_OK(env_start(&e, "latency_ms=5"), "env"))
		goto out;
	w = start_worker(&e, routes_for(&e, "[route crm.sync]\nstep = call ai pool=ai\n"));
	if (!ASSERT_OK_PTR(w, "worker") ||
	    !ASSERT_OK(append_events(e.q, 30, "crm.sync", "c"), "append 30") ||
	    !ASSERT_OK(append_events(e.q, 30, "crm.sync", "c"), "the same 30 keys again") ||
	    !ASSERT_OK(wait_empty(e.q, 60), "drained"))
		goto out;
	ASSERT_EQ(mock_upstream_stat(&e.mock, "received"), 30, "each key reached it once");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "dup_keys"), 0, "no key applied twice");
	worker_get_stats(w, &st);
	ASSERT_EQ(st.events_duplicate, 30, "the copies counted as duplicates");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM call_claims"), 30, "one claim a key");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

/* Issue 18: one upstream serves many webhooks: each step calls its own path. */
static void subtest_step_paths(void)
{
	struct env e;
	struct worker *w = NULL;
	char path[128] = "";

	if (!ASSERT_OK(env_start(&e, NULL), "env"))
		goto out;
	w = start_worker(
	    &e, routes_for(&e, "template.wrap = {\"lead\":{{payload}}}\n"
			       "[route lead.created]\n"
			       "step = call ai pool=ai path=/webhook/lead template=wrap\n"
			       "[route deal.won]\nstep = call ai pool=ai path=/webhook/deal "
			       "method=PUT\n"));
	if (!ASSERT_OK_PTR(w, "worker") ||
	    !ASSERT_OK(append_events(e.q, 3, "lead.created", "l"), "append leads") ||
	    !ASSERT_OK(append_events(e.q, 3, "deal.won", "d"), "append deals") ||
	    !ASSERT_OK(wait_empty(e.q, 60), "drained"))
		goto out;
	mock_upstream_key_str(&e.mock, "l-1", "path", path, sizeof(path));
	ASSERT_STREQ(path, "/webhook/lead", "lead step called its path");
	mock_upstream_key_str(&e.mock, "d-2", "path", path, sizeof(path));
	ASSERT_STREQ(path, "/webhook/deal", "deal step called its path");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE step = "
				      "'call:ai/webhook/lead' AND status = 'done'"),
		  3, "recorded under the path");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE "
				      "result->>'http_status' = '200'"),
		  6, "all answered");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

static void subtest_thin_and_shed(void)
{
	struct env e;
	struct worker *w = NULL;
	struct worker_stats st;
	struct overload_config oc;
	struct overload_actions a;

	if (!ASSERT_OK(env_start(&e, NULL), "env"))
		goto out;
	w = start_worker(&e, routes_for(&e, "[route lead.created]\nstep = store pool=db\n"
					    "step = call ai pool=ai optional\n"
					    "[route analytics.*]\nsheddable = yes\nclass = low\n"
					    "step = store pool=db\n"));
	if (!ASSERT_OK_PTR(w, "worker"))
		goto out;
	overload_config_default(&oc);
	oc.sheddable_drop_permille = 1000;
	overload_actions_for(&oc, OVERLOAD_EMERGENCY, &a);
	a.pause_low = false; /* keep consuming low here: only shedding is under test */
	worker_apply(w, &a);
	if (!ASSERT_OK(append_events(e.q, 30, "lead.created", "t"), "append leads") ||
	    !ASSERT_OK(append_events(e.q, 30, "analytics.click", "a"), "append analytics") ||
	    !ASSERT_OK(wait_empty(e.q, 60), "drained"))
		goto out;
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM events WHERE type = 'lead.created'"),
		  30, "essential store still runs");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM step_results WHERE status = 'skipped'"),
		  30, "optional call skipped and recorded");
	ASSERT_EQ(mock_upstream_stat(&e.mock, "received"), 0, "upstream not called");
	ASSERT_EQ(pgh_query_ll(&e.pg, "SELECT count(*) FROM events WHERE type LIKE 'analytics%'"),
		  0, "sheddable route dropped at 1000 permille");
	worker_get_stats(w, &st);
	ASSERT_EQ(st.events_shed, 30, "drops counted");
	ASSERT_EQ(st.steps_skipped, 30, "skips counted");
out:
	worker_free(w, 5000);
	env_stop(&e);
}

void test_worker(void)
{
	if (!test__require_root())
		return;
	if (test__start_subtest("pipeline_with_failures"))
		subtest_pipeline_with_failures();
	if (test__start_subtest("no_fallback_by_default"))
		subtest_no_fallback_by_default();
	if (test__start_subtest("restart_replays"))
		subtest_restart_replays();
	if (test__start_subtest("dead_letters"))
		subtest_dead_letters();
	if (test__start_subtest("max_age"))
		subtest_max_age();
	if (test__start_subtest("parked_durably"))
		subtest_parked_durably();
	if (test__start_subtest("parked_orphans"))
		subtest_parked_orphans();
	if (test__start_subtest("park_max"))
		subtest_park_max();
	if (test__start_subtest("call_only_duplicates"))
		subtest_call_only_duplicates();
	if (test__start_subtest("step_paths"))
		subtest_step_paths();
	if (test__start_subtest("thin_and_shed"))
		subtest_thin_and_shed();
	pgh_server_destroy(&shared_pg);
}
