// SPDX-License-Identifier: MIT
/* test_05_redis_killed.c -- issue 7 "Redis killed mid-run": no client errors, PostgreSQL dedupes
 *
 * sluiced runs with --redis pointing at a private redis-server: the ingress answers a
 * repeated key from it (200 with the original id) and the worker uses it as the ai
 * upstream's fallback cache (every good score is written under the lead's email, every
 * failed call looks it up). The ai mock fails 20 % of calls, so the cache is read and
 * written all along. 40 events/s for 12 s, a fifth of them resending an earlier key;
 * after 5 s redis-server is killed. Asserted: every request answered 202, or 200 for a
 * duplicate Redis still knew, never an error; after the kill duplicates are accepted
 * again and PostgreSQL rejects them (exactly one row per key, and no key reached the
 * upstream twice); the outage is visible (sluice_redis_up 0, failures counted, a warning
 * logged); every failed call still got an answer from the model.
 */
#include <stdlib.h>
#include <unistd.h>

#include "scenario.h"
#include "test_progs.h"

#define KILL_AT 5.0

void test_05_redis_killed(void)
{
	struct scn s = {0};
	struct scn_load l = {0};
	static struct scn_timeline tl;
	static char m[1 << 20];
	char routes[1024], redis[64], *log = NULL;
	long long keys;
	bool killed = false;
	int ret;

	if (!test__require_root())
		return;
	ret = redis_harness_start(&s.redis);
	if (ret == -ENOENT) {
		test__skip("redis-server is not installed");
		return;
	}
	if (!ASSERT_OK(ret, "redis-server") || !ASSERT_OK(scn_start_pg(&s), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&s.ai, "error_rate=0.2&latency_ms=5"), "mock ai"))
		goto out;
	snprintf(
	    routes, sizeof(routes),
	    "[pool db]\nthreads = 2\ninflight = 256\n[pool ai]\nthreads = 4\ninflight = 8\n"
	    "[upstream ai]\nurl = %s\nscore_field = score\ntimeout_ms = 1000\nfallback.model = on\n"
	    "fallback.key_field = email\n"
	    "[route lead.created]\nclass = normal\nstep = store pool=db\n"
	    "step = call ai pool=ai\n",
	    s.ai.url);
	snprintf(redis, sizeof(redis), "127.0.0.1:%u", s.redis.port);
	{
		const char *extra[] = {"--redis", redis, NULL};

		if (!ASSERT_OK(scn_start_daemon(&s, SCN_TENANT_ACME, routes, extra), "sluiced"))
			goto out;
	}
	{
		const char *args[] = {"--key",	    "test", "--connections", "8",
				      "--rate",	    "40",   "--duration",    "12",
				      "--dup-rate", "0.2",  "--prefix",	     "redis",
				      NULL};

		scn_timeline_init(&tl);
		scn_timeline_watch(&tl, "rd_up", "sluice_redis_up");
		scn_timeline_watch(&tl, "rd_cmd", "sluice_redis_commands_total");
		scn_timeline_watch(&tl, "rd_err", "sluice_redis_failures_total");
		scn_timeline_watch(&tl, "fb_mod",
				   "sluice_fallback_answers_total{upstream=\"ai\","
				   "source=\"model\"}");
		if (!ASSERT_OK(scn_load_start(&l, s.d.port, args), "loadgen"))
			goto out;
	}
	while (scn_load_running(&l) || scn_timeline_now(&tl) < 14) {
		if (!killed && scn_timeline_now(&tl) >= KILL_AT) {
			redis_harness_stop(&s.redis); /* SIGTERM: the server is gone */
			killed = true;
		}
		scn_timeline_sample(&tl, s.d.admin_port);
		usleep(500000);
	}
	scn_timeline_print(&tl, stdout);
	if (!ASSERT_OK(scn_load_wait(&l, 10000), "loadgen report"))
		goto out;
	/* a duplicate Redis still knew is answered 200 with the original id; no errors */
	ASSERT_EQ(
	    scn_report_ll(&l, "status.202") + scn_report_ll(&l, "status.200"),
	    scn_report_ll(&l, "sent"),
	    "every request answered 202 (or 200: a known duplicate), before and after the kill");
	ASSERT_LE(scn_report_ll(&l, "status.200"), scn_report_ll(&l, "dups_sent"),
		  "only duplicates answered 200");
	ASSERT_GT(scn_report_ll(&l, "dups_sent"), 0, "duplicates were sent");
	if (!ASSERT_OK(scn_load_log_to_pg(&l, &s.pg, "lg"), "answers into PostgreSQL"))
		goto out;
	keys = pgh_query_ll(&s.pg, "SELECT count(DISTINCT key) FROM lg WHERE status = 202");
	ASSERT_GT(pgh_query_ll(&s.pg, "SELECT count(*) FROM (SELECT key FROM lg WHERE status = "
				      "202 GROUP BY key HAVING count(*) > 1) d"),
		  0, "without Redis, duplicates reach the queue again (202)");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM events", keys, 20),
		    "one row per key: duplicates rejected by PostgreSQL");
	ASSERT_EQ(pgh_query_ll(&s.pg, "SELECT count(DISTINCT idempotency_key) FROM events"), keys,
		  "distinct keys stored");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:ai'",
				keys, 20),
		    "every lead scored (upstream, cache or model)");
	ASSERT_EQ(mock_upstream_stat(&s.ai, "dup_keys"), 0,
		  "no duplicate reached the upstream twice");
	ASSERT_EQ(pgh_query_ll(&s.pg, "SELECT count(*) FROM dead_letters"), 0,
		  "nothing dead-lettered");
	if (ASSERT_OK(scn_metrics(s.d.admin_port, m, sizeof(m)), "metrics")) {
		ASSERT_EQ(scn_metric(m, "sluice_redis_up"), 0, "the outage is visible");
		ASSERT_GT(scn_metric(m, "sluice_redis_failures_total"), 0, "failures counted");
		ASSERT_GT(scn_metric(m, "sluice_db_duplicates_total") +
			      scn_metric(m, "sluice_worker_events_total{outcome=\"duplicate\"}"),
			  0, "duplicates seen by the worker");
	}
	{
		bool up_before = false;

		for (int i = 0; i < tl.n && tl.rows[i].t < KILL_AT; i++)
			up_before |= tl.rows[i].x[0] == 1;
		ASSERT_TRUE(up_before, "sluice_redis_up was 1 before the kill");
	}
	log = sluiced_log(&s.d);
	ASSERT_HAS_STR(log, "redis: unavailable, continuing without it", "a warning was logged");
	printf("redis_killed: %lld requests, %lld duplicates sent, %lld answered 200 by the Redis "
	       "fast path; %lld distinct keys stored once\n",
	       scn_report_ll(&l, "sent"), scn_report_ll(&l, "dups_sent"),
	       scn_report_ll(&l, "status.200"), keys);
out:
	free(log);
	scn_load_fini(&l);
	scn_stop(&s);
}
