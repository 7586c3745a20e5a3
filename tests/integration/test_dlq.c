// SPDX-License-Identifier: MIT
/* test_dlq.c -- dead letters end to end: fail, list, show, replay after the fix, purge
 *
 * An essential call step against an upstream that always fails (model fallback off) sends
 * every event to dead_letters; `sluicectl dlq` lists and shows them; once the upstream is
 * healthy again `dlq replay --all` puts them back through the running sluiced, the step
 * runs and succeeds, and the rows are stamped replayed; `dlq purge` deletes. The replayer
 * alone (subtest as_queued): a replayed event keeps its class, tenant slot and received time,
 * is due from the replay (the dispatcher's lag counts from then), and only its own failed
 * step row is cleared.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/dlq.h"
#include "lib/clock.h"
#include "ingress_harness.h"
#include "queue/journal/journal.h"
#include "sink/pg/migrate.h"
#include "sink/pg/steps.h"
#include "work/dispatch.h"
#include "mockharness.h"
#include "netns.h"
#include "pgharness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"

static char out[16384];

static int ctl(const struct pgh_server *pg, const char *args)
{
	return netns_run(NULL, out, sizeof(out), "%s/sluicectl dlq %s --pg '%s'", test__outdir(),
			 args, pg->conninfo);
}

static void subtest_end_to_end(void)
{
	struct pgh_server pg = {0};
	struct mock_upstream mock = {0};
	struct sluiced_proc p = {0};
	char routes[600], text[1024];
	FILE *f;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&pg, test__tmpdir(), NULL), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&mock, "error_rate=1"), "mock"))
		goto out;
	snprintf(routes, sizeof(routes), "%s/routes.ini", test__tmpdir());
	snprintf(text, sizeof(text),
		 "[pool ai]\nthreads = 2\n[upstream crm]\nurl = %s\nfallback.model = off\n"
		 "retry.max_attempts = 2\nretry.base_ms = 5\nretry.cap_ms = 10\n"
		 "[route lead.created]\nstep = store pool=db\nstep = call crm pool=ai\n",
		 mock.url);
	f = fopen(routes, "w");
	fputs(text, f);
	fclose(f);
	{
		const char *args[] = {"--journal-dir", "@journal", "--pg", pg.conninfo,
				      "--routes",      routes,	   NULL};

		if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "sluiced"))
			goto out;
	}
	for (int i = 0; i < 5; i++) {
		char body[256], req[1024];

		snprintf(body, sizeof(body),
			 "{\"type\":\"lead.created\",\"idempotency_key\":\"d%d\",\"payload\":{}}",
			 i);
		http_event_request(req, sizeof(req), "test", body);
		ASSERT_EQ(http_once(p.port, req, out, sizeof(out)), 202, "accepted");
	}
	if (!ASSERT_TRUE(pgh_wait_ll(&pg, "SELECT count(*) FROM dead_letters", 5, 30),
			 "every event dead-lettered"))
		goto out;
	ASSERT_EQ(ctl(&pg, "list --json"), 0, "dlq list");
	ASSERT_HAS_STR(out, "\"step\": \"call:crm\"", "the failing step");
	ASSERT_HAS_STR(out, "\"idempotency_key\": \"d4\"", "the event");
	ASSERT_EQ(ctl(&pg, "show 1"), 0, "dlq show");
	ASSERT_HAS_STR(out, "last_error", "error shown");
	ASSERT_HAS_STR(out, "acme\n{\"type\":\"lead.created\"", "stored event shown");
	ASSERT_EQ(ctl(&pg, "show 999"), 1, "unknown id fails");
	ASSERT_HAS_STR(out, "no such id", "and says so");

	/* the upstream is fixed: replay everything through the running daemon */
	if (!ASSERT_OK(mock_upstream_faults(&mock, "error_rate=0"), "heal the mock"))
		goto out;
	ASSERT_EQ(ctl(&pg, "replay --all"), 0, "dlq replay --all");
	ASSERT_HAS_STR(out, "5 dead letters queued for replay", "5 requested");
	ASSERT_TRUE(pgh_wait_ll(&pg,
				"SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL",
				5, 30),
		    "stamped replayed");
	ASSERT_TRUE(pgh_wait_ll(&pg,
				"SELECT count(*) FROM step_results WHERE step = 'call:crm' "
				"AND status = 'done'",
				5, 30),
		    "the failed step ran again and succeeded");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM events"), 5,
		  "the store step saw its own row: still one per key");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM step_results s JOIN events e ON "
				    "e.tenant = s.tenant AND e.idempotency_key = s.idempotency_key "
				    "AND e.received_at = s.received_at WHERE s.step = 'call:crm' "
				    "AND s.status = 'done'"),
		  5, "the replayed steps are recorded under the original received time");
	ASSERT_EQ(mock_upstream_stat(&mock, "dup_keys"), 0, "applied once each upstream");

	ASSERT_EQ(ctl(&pg, "purge 1"), 0, "purge one");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM dead_letters"), 4, "one fewer");
	ASSERT_EQ(ctl(&pg, "purge"), 2, "purge without ID or --all is a usage error");
	ASSERT_EQ(ctl(&pg, "purge --all"), 0, "purge all");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM dead_letters"), 0, "empty");
	ASSERT_EQ(sluiced_stop(&p, 15000), 0, "clean exit");
out:
	if (p.pid > 0)
		sluiced_stop(&p, 5000);
	mock_upstream_stop(&mock);
	pgh_server_destroy(&pg);
}

/* issue 12: replay_row appended every event as class normal in tenant slot 0, and cleared the
 * failed step row of every copy of the event (same tenant, key and step), not only its own. */
static void subtest_as_queued(void)
{
	const int64_t r1 = 1767225600000000LL, r2 = r1 + 5000000; /* two copies, 5 s apart */
	struct pg_step_key k1 = {"acme", "k", "call:crm", r1}, k2 = {"acme", "k", "call:crm", r2};
	static const char rec[] = "acme\n{\"type\":\"lead.created\",\"idempotency_key\":\"k\","
				  "\"payload\":{}}";
	struct pg_dead_event ev = {rec, sizeof(rec) - 1, 0 /* critical */, 7};
	struct pgh_server pg = {0};
	struct journal_cfg jc = {0};
	struct pg_steps *ps = NULL;
	struct queue *q = NULL;
	struct dlq_replayer *r = NULL;
	struct queue_entry *e = NULL;
	struct dispatch d;
	char base[512], jdir[600], err[256];
	uint64_t t0;

	if (!test__require_root())
		return;
	snprintf(base, sizeof(base), "%s/as_queued", test__tmpdir());
	mkdir(base, 0755);
	snprintf(jdir, sizeof(jdir), "%s/journal", base);
	jc.dir = jdir;
	if (!ASSERT_OK(pgh_server_start(&pg, base, NULL), "postgres") ||
	    !ASSERT_GE(pg_migrate_conninfo(pg.conninfo, err, sizeof(err)), 0, err) ||
	    !ASSERT_OK_PTR(ps = pg_steps_new(pg.conninfo, 1), "steps") ||
	    !ASSERT_OK_PTR(q = journal_open(&jc), "journal"))
		goto out;
	/* the second copy failed too and stays failed: it was not asked for */
	ASSERT_OK(pg_steps_put(ps, &k2, "failed", 3, NULL, "boom", err, sizeof(err)), "copy 2");
	ASSERT_OK(pg_steps_dead_letter(ps, &k1, "retries", 3, "boom", &ev, err, sizeof(err)),
		  "dead letter of copy 1");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM step_results WHERE status = 'failed'"), 2,
		  "two failed rows");
	ASSERT_OK(pgh_psql(&pg, NULL, 0, "UPDATE dead_letters SET replay_requested_at = now()"),
		  "request the replay");
	t0 = clock_real_ns();
	r = dlq_replayer_new(pg.conninfo, q, 20);
	if (!ASSERT_OK_PTR(r, "replayer"))
		goto out;
	ASSERT_TRUE(pgh_wait_ll(&pg,
				"SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL",
				1, 20),
		    "replayed");
	if (!ASSERT_EQ(queue_next(q, &e, 1, 5000), 1, "the event is back in the queue"))
		goto out;
	ASSERT_EQ(e->class, 0, "as critical, its class");
	ASSERT_EQ(e->tenant, 7, "in its tenant's slot");
	ASSERT_EQ(e->enq_ns, (uint64_t)r1 * 1000, "with its received time");
	/* issue 18: due at the replay, so the dispatcher's lag (what the overload controller
	 * reads) counts from the replay, not from the receipt months ago */
	ASSERT_GE(e->not_before_ns, t0, "due from the replay");
	ASSERT_LE(e->not_before_ns, clock_real_ns(), "not in the future");
	if (ASSERT_OK(dispatch_init(&d, NULL), "dispatch")) {
		struct dispatch_stats ds;
		uint64_t now = clock_real_ns();

		ASSERT_OK(dispatch_push(&d, e, now), "dispatched");
		dispatch_stats(&d, now, &ds);
		ASSERT_EQ(ds.cls[0].depth, 1, "ready at once");
		ASSERT_LT(ds.cls[0].lag_ns, 60 * 1000000000ull,
			  "lag counts from the replay (under the thin threshold's 30 s with room)");
		ASSERT_EQ(dispatch_pop(&d, now, 1), e, "popped");
		dispatch_fini(&d);
	}
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM dead_letters WHERE received_at = "
				    "to_timestamp(1767225600)"),
		  1, "the stored row keeps its received time");
	ASSERT_EQ(e->len, sizeof(rec) - 1, "and its record");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM step_results WHERE status = 'failed' "
				    "AND received_at = to_timestamp(1767225605)"),
		  1, "the other copy's failed row is kept");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM step_results WHERE status = 'failed'"), 1,
		  "only the replayed copy's row is cleared");
	queue_ack(q, e);
out:
	dlq_replayer_free(r);
	if (q)
		queue_free(q);
	pg_steps_free(ps);
	pgh_server_destroy(&pg);
}

void test_dlq(void)
{
	if (test__start_subtest("end_to_end"))
		subtest_end_to_end();
	if (test__start_subtest("as_queued"))
		subtest_as_queued();
}
