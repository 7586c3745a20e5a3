// SPDX-License-Identifier: MIT
/* test_06_hot_tenant.c -- issue 8 "Hot tenant": one tenant at 20x the others
 *
 * Four tenants send leads that are stored and scored by `call ai` on a two-thread pool
 * against a mock answering in 40 ms (about 50 leads/s). The hot tenant offers 100/s, 20
 * times each of the three others (5/s), and holds request credits of 50/s: the rest of
 * its requests are answered 429 with Retry-After. What it gets in still exceeds the pool
 * (65/s in all against 50/s), so a backlog builds, but deficit round robin over tenants
 * serves the others in every round: their received -> scored latency stays within a
 * second while the hot tenant's own backlog grows. Every 202'd lead is stored.
 */
#include <stdio.h>
#include <unistd.h>

#include "scenario.h"
#include "lib/sha256.h"
#include "test_progs.h"

#define OTHERS_BOUND_MS 1000

static void tenant(char *out, size_t cap, const char *name, const char *key, int rate)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	size_t len = strlen(out);

	sha256(key, strlen(key), d);
	sha256_hex(d, hex);
	snprintf(out + len, cap - len, "[%s]\nkey = %s\nreq_rate = %d\nreq_burst = %d\n", name, hex,
		 rate, rate / 2);
}

void test_06_hot_tenant(void)
{
	struct scn s = {0};
	struct scn_load l = {0};
	static struct scn_timeline tl;
	char routes[1024], tenants[2048] = "";
	long long accepted, hot_p99, others_p99;

	if (!test__require_root())
		return;
	tenant(tenants, sizeof(tenants), "hot", "hot-key", 50);
	tenant(tenants, sizeof(tenants), "t1", "key-1", 1000);
	tenant(tenants, sizeof(tenants), "t2", "key-2", 1000);
	tenant(tenants, sizeof(tenants), "t3", "key-3", 1000);
	if (!ASSERT_OK(scn_start_pg(&s), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&s.ai, "latency_ms=40"), "mock ai"))
		goto out;
	snprintf(routes, sizeof(routes),
		 "[pool db]\nthreads = 2\ninflight = 256\n[pool ai]\nthreads = 2\ninflight = 2\n"
		 "[upstream ai]\nurl = %s\nscore_field = score\ntimeout_ms = 2000\n"
		 "[route lead.created]\nclass = normal\nstep = store pool=db\n"
		 "step = call ai pool=ai\n",
		 s.ai.url);
	if (!ASSERT_OK(scn_start_daemon(&s, tenants, routes, NULL), "sluiced"))
		goto out;
	{
		const char *args[] = {
		    "--key",	  "hot-key:20", "--key",	 "key-1:1", "--key",  "key-2:1",
		    "--key",	  "key-3:1",	"--connections", "16",	    "--rate", "115",
		    "--duration", "10",		"--prefix",	 "hot",	    NULL};

		scn_timeline_init(&tl);
		scn_timeline_watch(&tl, "sat_ai", "sluice_pool_saturation{pool=\"ai\"}");
		if (!ASSERT_OK(scn_load_start(&l, s.d.port, args), "loadgen"))
			goto out;
		scn_timeline_follow(&tl, s.d.admin_port, &l, 500, 10);
	}
	scn_timeline_print(&tl, stdout);
	if (!ASSERT_OK(scn_load_wait(&l, 10000), "loadgen report"))
		goto out;
	accepted = scn_report_ll(&l, "status.202");
	ASSERT_EQ(accepted + scn_report_ll(&l, "status.429"), scn_report_ll(&l, "sent"),
		  "every request answered 202 or 429");
	ASSERT_GT(scn_report_ll(&l, "per_key.0.429"), 0, "the hot tenant is throttled");
	ASSERT_EQ(scn_report_ll(&l, "retry_after.429"), scn_report_ll(&l, "status.429"),
		  "every 429 carries Retry-After");
	ASSERT_EQ(scn_report_ll(&l, "per_key.1.429") + scn_report_ll(&l, "per_key.2.429") +
		      scn_report_ll(&l, "per_key.3.429"),
		  0, "the others are not");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:ai'",
				accepted, 30),
		    "every 202'd lead stored and scored");
	hot_p99 = scn_step_p99_ms(&s.pg, "call:ai", "e.tenant = 'hot'");
	others_p99 = scn_step_p99_ms(&s.pg, "call:ai", "e.tenant <> 'hot'");
	printf("hot_tenant: hot 202 %lld / 429 %lld; others 202 %lld; received->scored p99: hot "
	       "%lld ms, others %lld ms (bound %d ms)\n",
	       scn_report_ll(&l, "per_key.0.2xx"), scn_report_ll(&l, "per_key.0.429"),
	       accepted - scn_report_ll(&l, "per_key.0.2xx"), hot_p99, others_p99, OTHERS_BOUND_MS);
	ASSERT_GE(others_p99, 0, "the others' leads were scored");
	ASSERT_LT(others_p99, OTHERS_BOUND_MS, "the others' latency stays within the bound");
	ASSERT_GT(hot_p99, 2 * others_p99, "the hot tenant waits on its own backlog");
out:
	scn_load_fini(&l);
	scn_stop(&s);
}
