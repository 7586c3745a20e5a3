// SPDX-License-Identifier: MIT
/* test_e2e.c -- HTTP in, rows out: the real sluiced with the journal, worker and PostgreSQL
 *
 * POSTs events over keep-alive connections, including duplicates, then waits for
 * PostgreSQL to hold exactly one row per idempotency key, checks the call step ran with
 * the mock upstream, that /metrics exposes the worker side and passes promtool, that an
 * event accepted while the database is down is stored once it returns, and that SIGTERM
 * drains and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "mockharness.h"
#include "netns.h"
#include "pgharness.h"
#include "test_progs.h"

#define TENANTS                                                                                    \
	"[acme]\nkey = " HARNESS_KEY_A_HEX "\nclass = critical\nreq_rate = 100000\n"               \
	"req_burst = 100000\n"                                                                     \
	"[beta]\nkey = " HARNESS_KEY_B_HEX                                                         \
	"\nclass = low\nreq_rate = 100000\nreq_burst = 100000\n"

static char resp[1 << 16];

static int post_on(struct http_client *c, const char *key, const char *type, const char *ikey)
{
	char body[512], req[1024];
	int n;

	snprintf(body, sizeof(body),
		 "{\"type\":\"%s\",\"idempotency_key\":\"%s\",\"payload\":{\"email\":\"%s@x.io\"}}",
		 type, ikey, ikey);
	n = http_event_request(req, sizeof(req), key, body);
	if (http_send(c, req, (size_t)n) || http_read(c, resp, sizeof(resp), 10000) <= 0)
		return -1;
	return http_status(resp);
}

void test_e2e(void)
{
	struct pgh_server pg = {0};
	struct mock_upstream mock = {0};
	struct sluiced_proc p = {0};
	struct http_client c = {.fd = -1};
	char routes[600], text[1024], out[8192];
	int accepted = 0, status;
	FILE *f;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&pg, test__tmpdir(), NULL), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&mock, NULL), "mock upstream"))
		goto out;
	snprintf(routes, sizeof(routes), "%s/routes.ini", test__tmpdir());
	snprintf(text, sizeof(text),
		 "[pool db]\nthreads = 2\ninflight = 1024\n[pool ai]\nthreads = 2\ninflight = 8\n"
		 "[upstream ai]\nurl = %s\nscore_field = score\n"
		 "[route lead.created]\nstep = store pool=db\nstep = call ai pool=ai\n"
		 "[route vip.*]\nclass = critical\nstep = store pool=db\n",
		 mock.url);
	f = fopen(routes, "w");
	fputs(text, f);
	fclose(f);
	{
		const char *args[] = {"--journal-dir", "@journal",  "--pg", pg.conninfo, "--routes",
				      routes,	       "--threads", "1",    NULL};

		if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "sluiced"))
			goto out;
	}
	if (!ASSERT_OK(http_open(&c, p.port), "connect"))
		goto out;
	for (int i = 0; i < 200; i++) {
		char ikey[32];

		snprintf(ikey, sizeof(ikey), "lead-%d", i % 150); /* 50 duplicates */
		status = post_on(&c, i % 2 ? "hello" : "test", "lead.created", ikey);
		accepted += status == 202;
	}
	ASSERT_EQ(accepted, 200, "every POST answered 202 (durable)");
	/* acme and beta each sent keys lead-0..149 with parity: 150 distinct (tenant, key) */
	ASSERT_TRUE(pgh_wait_ll(&pg, "SELECT count(*) FROM events", 150, 30),
		    "one row per (tenant, idempotency key)");
	ASSERT_TRUE(pgh_wait_ll(&pg,
				"SELECT count(*) FROM step_results WHERE step = 'call:ai' "
				"AND status = 'done'",
				150, 30),
		    "the call step ran once per event");
	ASSERT_EQ(mock_upstream_stat(&mock, "dup_keys"), 0, "no upstream duplicates");
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM events WHERE tenant = 'beta' "
				    "AND class = 'low'"),
		  75, "a route without a class keeps the tenant's class");
	/* the route gives critical; the tenant's class is the ceiling: acme (critical) gets
	 * it, beta (low) stays low */
	for (int i = 0; i < 5; i++) {
		char ikey[32];

		snprintf(ikey, sizeof(ikey), "vip-%d", i);
		ASSERT_EQ(post_on(&c, i < 3 ? "test" : "hello", "vip.lead", ikey), 202, "vip 202");
		ASSERT_HAS_STR(resp, i < 3 ? "\"class\":\"critical\"" : "\"class\":\"low\"",
			       i < 3 ? "the route's class answers"
				     : "not above the tenant's class");
	}
	ASSERT_TRUE(pgh_wait_ll(&pg,
				"SELECT count(*) FROM events WHERE type = 'vip.lead' AND "
				"class = 'critical'",
				3, 30),
		    "the route's class reaches the row");
	ASSERT_TRUE(pgh_wait_ll(&pg,
				"SELECT count(*) FROM events WHERE type = 'vip.lead' AND "
				"class = 'low' AND tenant = 'beta'",
				2, 30),
		    "beta's vip leads are stored low");

	/* the database goes away: intake keeps answering 202, rows land when it returns */
	if (!ASSERT_OK(pgh_server_stop(&pg, "immediate"), "stop postgres"))
		goto out;
	accepted = 0;
	for (int i = 0; i < 20; i++) {
		char ikey[32];

		snprintf(ikey, sizeof(ikey), "outage-%d", i);
		accepted += post_on(&c, "test", "lead.created", ikey) == 202;
	}
	ASSERT_EQ(accepted, 20, "accepted while the database is down");
	sleep(1);
	/* still ready (the journal accepts), with the database check reported failing */
	ASSERT_EQ(http_admin(&p, "/readyz", out, sizeof(out)), 200,
		  "ready while the journal accepts");
	ASSERT_HAS_STR(out, "\"database\":{\"ok\":false", "the database check says it is down");
	if (!ASSERT_OK(pgh_server_restart(&pg), "restart postgres"))
		goto out;
	ASSERT_TRUE(pgh_wait_ll(&pg, "SELECT count(*) FROM events", 175, 60),
		    "backlog drained after the outage");

	ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "metrics");
	ASSERT_HAS_STR(resp, "sluice_db_rows_written_total 175", "rows written exported");
	ASSERT_HAS_STR(resp, "sluice_queue_lag_seconds{class=\"normal\"}", "lag exported");
	ASSERT_HAS_STR(resp, "sluice_overload_state 0", "overload state exported");
	ASSERT_HAS_STR(resp, "sluice_breaker_state{upstream=\"ai\"} 0", "breaker exported");
	ASSERT_HAS_STR(resp, "sluice_upstream_budget_waits_total{upstream=\"ai\"} 0",
		       "retry budget waits exported");
	ASSERT_HAS_STR(resp, "sluice_steps_parked_total 0", "parked steps exported");
	if (!access("/usr/bin/promtool", X_OK)) {
		char *body = strstr(resp, "\r\n\r\n"), path[600];

		snprintf(path, sizeof(path), "%s/metrics.txt", test__tmpdir());
		f = fopen(path, "w");
		fputs(body ? body + 4 : resp, f);
		fclose(f);
		status = netns_run(NULL, out, sizeof(out), "promtool check metrics < %s", path);
		if (!ASSERT_EQ(status, 0, "promtool check metrics"))
			printf("%s\n", out);
	}
	http_close(&c);
	ASSERT_EQ(sluiced_stop(&p, 15000), 0, "SIGTERM drains and exits 0");
out:
	http_close(&c);
	if (p.pid > 0)
		sluiced_stop(&p, 5000);
	mock_upstream_stop(&mock);
	pgh_server_destroy(&pg);
}
