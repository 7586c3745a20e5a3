// SPDX-License-Identifier: MIT
/* test_dlq.c -- dead letters end to end: fail, list, show, replay after the fix, purge
 *
 * An essential call step against an upstream that always fails (model fallback off) sends
 * every event to dead_letters; `sluicectl dlq` lists and shows them; once the upstream is
 * healthy again `dlq replay --all` puts them back through the running sluiced, the step
 * runs and succeeds, and the rows are stamped replayed; `dlq purge` deletes.
 */
#include <stdio.h>
#include <unistd.h>

#include "ingress_harness.h"
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

void test_dlq(void)
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
