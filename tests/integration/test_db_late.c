// SPDX-License-Identifier: MIT
/* test_db_late.c -- sluiced started before its database: accept now, migrate and store later
 *
 * Degrade, don't fail: with PostgreSQL not running yet sluiced starts, answers 202 (the
 * journal holds the events), stays ready (reporting the database check failed); once the database
 * answers, the schema is created and the backlog is stored, one row per key. Meanwhile /metrics
 * says sluice_db_up 0 (the "database down at boot" alert needs a series to fire on), and after the
 * backlog the batch latency histogram has counted the batches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "pgharness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"

/* The value of an unlabelled series in a /metrics page, -1 when absent. */
static double metric_in(const char *page, const char *name)
{
	char needle[128];
	const char *p;

	snprintf(needle, sizeof(needle), "\n%s ", name);
	p = strstr(page, needle);
	return p ? atof(p + strlen(needle)) : -1;
}

void test_db_late(void)
{
	struct pgh_server pg = {0};
	struct sluiced_proc p = {0};
	static char resp[1 << 16];

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&pg, test__tmpdir(), NULL), "postgres") ||
	    !ASSERT_OK(pgh_server_stop(&pg, "fast"), "stopped before sluiced starts"))
		goto out;
	{
		const char *args[] = {"--journal-dir", "@journal", "--pg", pg.conninfo, NULL};

		if (!ASSERT_OK(sluiced_start(&p, TENANTS, args),
			       "sluiced starts without a database"))
			goto out;
	}
	for (int i = 0; i < 10; i++) {
		char body[256], req[1024];

		snprintf(
		    body, sizeof(body),
		    "{\"type\":\"lead.created\",\"idempotency_key\":\"late-%d\",\"payload\":{}}",
		    i % 8);
		http_event_request(req, sizeof(req), "test", body);
		ASSERT_EQ(http_once(p.port, req, resp, sizeof(resp)), 202, "accepted meanwhile");
	}
	ASSERT_EQ(http_admin(&p, "/readyz", resp, sizeof(resp)), 200,
		  "ready: the journal accepts while the database is away");
	ASSERT_HAS_STR(resp, "\"database\":{\"ok\":false", "the database check reports it");
	ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "metrics");
	ASSERT_EQ(metric_in(resp, "sluice_db_up"), 0, "sluice_db_up 0 before any connection");
	if (!ASSERT_OK(pgh_server_restart(&pg), "database up"))
		goto out;
	ASSERT_TRUE(pgh_wait_ll(&pg, "SELECT count(*) FROM events", 8, 15),
		    "schema created and backlog stored, one row per key");
	ASSERT_TRUE(sluiced_log_wait(&p, "controller: worker started", 1000),
		    "the worker started late");
	ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "metrics");
	ASSERT_EQ(metric_in(resp, "sluice_db_up"), 1, "sluice_db_up 1 once connected");
	ASSERT_GT(metric_in(resp, "sluice_db_batch_duration_seconds_count"), 0,
		  "batches timed (the dashboard's DB latency panel)");
	ASSERT_GT(metric_in(resp, "sluice_db_batch_duration_seconds_sum"), 0, "their time summed");
	ASSERT_EQ(sluiced_stop(&p, 15000), 0, "clean exit");
out:
	if (p.pid > 0)
		sluiced_stop(&p, 5000);
	pgh_server_destroy(&pg);
}
