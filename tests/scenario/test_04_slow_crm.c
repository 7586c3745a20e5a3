// SPDX-License-Identifier: MIT
/* test_04_slow_crm.c -- issue 7: a CRM answering in 2 s fills only the `crm` pool
 *
 * Leads are stored, scored by `call ai` (pool ai, 4 threads, mock answering in 10 ms) and
 * synced by `call crm` (pool crm, 2 threads, mock answering in 2 s: one sync a second).
 * At 30 leads/s for 10 s the crm pool is saturated for the whole run while the ai pool
 * is not; every lead is stored and scored within seconds of the load ending although the
 * crm backlog would need minutes: the slow upstream costs only its own bulkhead. The
 * timeline shows both pools' saturation and completed calls per upstream.
 */
#include <unistd.h>

#include "scenario.h"
#include "test_progs.h"

void test_04_slow_crm(void)
{
	struct scn s = {0};
	struct scn_load l = {0};
	static struct scn_timeline tl;
	char routes[1400], sql[200];
	double sat_ai = 0, sat_crm_min = 1;
	long long accepted, crm_done;
	int busy_rows = 0;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(scn_start_pg(&s), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&s.ai, "latency_ms=10"), "mock ai") ||
	    !ASSERT_OK(mock_upstream_start(&s.crm, "latency_ms=2000"), "mock crm"))
		goto out;
	snprintf(routes, sizeof(routes),
		 "[pool db]\nthreads = 2\ninflight = 256\n[pool ai]\nthreads = 4\ninflight = 4\n"
		 "[pool crm]\nthreads = 2\ninflight = 2\n"
		 "[upstream ai]\nurl = %s\nscore_field = score\ntimeout_ms = 1000\n"
		 "[upstream crm]\nurl = %s\ntimeout_ms = 5000\nmax_concurrent = 2\n"
		 "[route lead.created]\nclass = normal\nstep = store pool=db\n"
		 "step = call ai pool=ai\nstep = call crm pool=crm\n",
		 s.ai.url, s.crm.url);
	if (!ASSERT_OK(scn_start_daemon(&s, SCN_TENANT_ACME, routes, NULL), "sluiced"))
		goto out;
	{
		const char *args[] = {"--key",	    "test", "--connections", "8",   "--rate", "30",
				      "--duration", "10",   "--prefix",	     "crm", NULL};

		scn_timeline_init(&tl);
		scn_timeline_watch(&tl, "sat_ai", "sluice_pool_saturation{pool=\"ai\"}");
		scn_timeline_watch(&tl, "satcrm", "sluice_pool_saturation{pool=\"crm\"}");
		scn_timeline_watch(&tl, "ai_ok",
				   "sluice_upstream_calls_total{upstream=\"ai\",outcome=\"ok\"}");
		scn_timeline_watch(
		    &tl, "crmslo",
		    "sluice_upstream_calls_total{upstream=\"crm\",outcome=\"slow\"}");
		if (!ASSERT_OK(scn_load_start(&l, s.d.port, args), "loadgen"))
			goto out;
		scn_timeline_follow(&tl, s.d.admin_port, &l, 500, 13);
	}
	scn_timeline_print(&tl, stdout);
	if (!ASSERT_OK(scn_load_wait(&l, 10000), "loadgen report"))
		goto out;
	accepted = scn_report_ll(&l, "status.202");
	ASSERT_EQ(accepted, scn_report_ll(&l, "sent"), "every lead accepted");
	/* rows from 2 s into the load until it ended: the steady part */
	for (int i = 0; i < tl.n; i++) {
		if (tl.rows[i].t < 2 || tl.rows[i].t > 10)
			continue;
		sat_ai += tl.rows[i].x[0];
		sat_crm_min = tl.rows[i].x[1] < sat_crm_min ? tl.rows[i].x[1] : sat_crm_min;
		busy_rows++;
	}
	ASSERT_GT(busy_rows, 0, "timeline rows during the load");
	ASSERT_EQ(sat_crm_min, 1.0, "the crm pool is full all along");
	ASSERT_LT(sat_ai / (busy_rows ? busy_rows : 1), 0.5, "the ai pool is not");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM events", accepted, 5),
		    "every lead stored within 5 s of the load ending");
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM step_results WHERE step = 'call:ai' AND "
		 "status = 'done'");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, sql, accepted, 5),
		    "every lead scored by the ai upstream within 5 s of the load ending");
	crm_done = pgh_query_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:crm' "
				       "AND status = 'done'");
	printf("slow_crm: %lld leads; all stored and scored, crm synced %lld so far (one a "
	       "second per crm thread); mean ai pool saturation %.2f\n",
	       accepted, crm_done, sat_ai / (busy_rows ? busy_rows : 1));
	ASSERT_LT(crm_done, accepted / 4, "crm still far behind (it was the slow one)");
	ASSERT_GT(crm_done, 0, "crm calls completed");
out:
	scn_load_fini(&l);
	scn_stop(&s);
}
