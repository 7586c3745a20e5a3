// SPDX-License-Identifier: MIT
/* test_03_lead_burst.c -- issue 7 "Lead burst": 600 leads in 10 s, 30 % of upstream calls failing
 *
 * Each lead is stored, scored by `call ai` (fallback: the local model) and synced by
 * `call crm` (no fallback: a failed call is retried with backoff and, when the attempts
 * run out, dead-lettered with the reason; since issue 18 the retry budget delays retries
 * instead of giving them up, and the crm upstream refills it at 20/s so the retries it
 * delays still finish within the bounds). Both mocks fail 30 % of
 * requests at random with HTTP 500. Asserted: every lead stored exactly once; every ai
 * step answered (upstream or fallback); every crm step either done or in dead_letters with
 * a reason, never both; retries and fallbacks visible in /metrics; and neither mock
 * applied any idempotency key twice (dup_keys == 0).
 */
#include <stdlib.h>
#include <unistd.h>

#include "scenario.h"
#include "test_progs.h"

#define LEADS 600

void test_03_lead_burst(void)
{
	struct scn s = {0};
	struct scn_load l = {0};
	char routes[1400];
	long long crm_done, crm_dead;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(scn_start_pg(&s), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&s.ai, "error_rate=0.3&latency_ms=5"), "mock ai") ||
	    !ASSERT_OK(mock_upstream_start(&s.crm, "error_rate=0.3&latency_ms=5"), "mock crm"))
		goto out;
	snprintf(
	    routes, sizeof(routes),
	    "[pool db]\nthreads = 2\ninflight = 256\n[pool ai]\nthreads = 4\ninflight = 16\n"
	    "[pool crm]\nthreads = 4\ninflight = 16\n"
	    "[upstream ai]\nurl = %s\nscore_field = score\ntimeout_ms = 1000\nfallback.model = on\n"
	    "[upstream crm]\nurl = %s\ntimeout_ms = 1000\nfallback.model = off\n"
	    "retry.max_attempts = 4\nretry.base_ms = 50\nretry.cap_ms = 400\n"
	    "retry.budget_refill_per_s = 20\n"
	    "[route lead.created]\nclass = normal\nstep = store pool=db\n"
	    "step = call ai pool=ai\nstep = call crm pool=crm\n",
	    s.ai.url, s.crm.url);
	if (!ASSERT_OK(scn_start_daemon(&s, SCN_TENANT_ACME, routes, NULL), "sluiced"))
		goto out;
	{
		const char *args[] = {"--key",	 "test", "--connections", "8",	   "--rate", "60",
				      "--count", "600",	 "--prefix",	  "burst", NULL};

		if (!ASSERT_OK(scn_load_run(&l, s.d.port, args, 30000), "loadgen"))
			goto out;
	}
	printf("lead_burst: %lld sent in %.2f s, %lld answered 202\n", scn_report_ll(&l, "sent"),
	       scn_report_f(&l, "elapsed_s"), scn_report_ll(&l, "status.202"));
	ASSERT_EQ(scn_report_ll(&l, "status.202"), LEADS, "every lead accepted");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM events", LEADS, 30),
		    "every lead stored");
	ASSERT_EQ(pgh_query_ll(&s.pg, "SELECT count(DISTINCT idempotency_key) FROM events"), LEADS,
		  "each once");
	ASSERT_TRUE(pgh_wait_ll(&s.pg,
				"SELECT count(*) FROM step_results WHERE step = 'call:ai' "
				"AND status IN ('done', 'fallback')",
				LEADS, 30),
		    "every ai step answered");
	/* a dead-lettered step also has its step_results row, status 'failed' */
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:crm'",
				LEADS, 40),
		    "every crm step finished");
	crm_done = pgh_query_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:crm' "
				       "AND status = 'done'");
	crm_dead = pgh_query_ll(&s.pg, "SELECT count(*) FROM dead_letters WHERE step = 'call:crm' "
				       "AND reason <> '' AND last_error <> ''");
	ASSERT_EQ(crm_done + crm_dead, LEADS, "crm: done or dead-lettered with a reason");
	ASSERT_EQ(pgh_query_ll(&s.pg, "SELECT count(*) FROM dead_letters d JOIN step_results r "
				      "USING (tenant, idempotency_key) WHERE r.step = d.step AND "
				      "r.status <> 'failed'"),
		  0, "never both done and dead-lettered");
	ASSERT_EQ(pgh_query_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:crm' "
				      "AND status = 'fallback'"),
		  0, "a crm sync that succeeded is 'done', not a fallback");
	ASSERT_EQ(pgh_query_ll(&s.pg, "SELECT count(*) FROM dead_letters WHERE step <> 'call:crm'"),
		  0, "only the crm step dead-letters (ai has its fallback)");
	{
		static char m[1 << 20];

		if (ASSERT_OK(scn_metrics(s.d.admin_port, m, sizeof(m)), "metrics")) {
			double retried = scn_metric(m, "sluice_worker_events_total{outcome="
						       "\"step_retried\"}");
			double fb = scn_metric(m, "sluice_fallback_answers_total{upstream=\"ai\",");
			double failed =
			    scn_metric(m, "sluice_upstream_calls_total{upstream=\"crm\","
					  "outcome=\"failed\"}");

			printf("lead_burst: crm done %lld, dead-lettered %lld; steps retried %.0f, "
			       "ai fallbacks %.0f, crm failed calls %.0f\n",
			       crm_done, crm_dead, retried, fb, failed);
			ASSERT_GT(retried, 0, "retries visible in metrics");
			ASSERT_GT(fb, 0, "fallbacks visible in metrics");
			ASSERT_GT(failed, 0, "failed crm calls visible in metrics");
		}
	}
	ASSERT_EQ(mock_upstream_stat(&s.ai, "dup_keys"), 0, "ai: no key applied twice");
	ASSERT_EQ(mock_upstream_stat(&s.crm, "dup_keys"), 0, "crm: no key applied twice");
	ASSERT_EQ(mock_upstream_stat(&s.crm, "applied"), crm_done, "crm applied = crm done");
out:
	scn_load_fini(&l);
	scn_stop(&s);
}
