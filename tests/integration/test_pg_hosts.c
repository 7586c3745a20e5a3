// SPDX-License-Identifier: MIT
/* test_pg_hosts.c -- the writer's host list: splitting a multi-host conninfo, and leaving a
 * session that turned read-only for the writable host
 *
 * read_only_session: two independent primaries A and B, the writer on
 * "host=A,B target_session_attrs=read-write". Mid-stream A gets default_transaction_read_only
 * (what a demoted old primary, or an operator fencing it, looks like to its sessions): the
 * writer's batches on A fail with SQLSTATE 25006, and the writer must reconnect, find B and
 * store the rest there. Every acknowledged key is in A or B, once. The step store (blocking
 * libpq, pooled sessions) on the same conninfo drops its read-only session and reaches B too. With
 * 25006 treated as a transient error (retry on the same session) the stream never finishes: checked
 * by hand.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/pg/hosts.h"
#include "sink/pg/migrate.h"
#include "sink/pg/steps.h"
#include "pgharness.h"
#include "pgstream.h"
#include "test_progs.h"

#define ROWS 20000
#define RATE 4000

static void parse_cases(void)
{
	struct pg_hosts h;
	char err[256];

	if (ASSERT_OK(pg_hosts_parse(&h,
				     "host=a,b port=5432,5433 dbname=x "
				     "target_session_attrs=read-write connect_timeout=3",
				     err, sizeof(err)),
		      "two hosts, two ports")) {
		ASSERT_EQ(h.n, 2, "n");
		ASSERT_EQ(h.connect_timeout_ms, 3000, "connect_timeout per host");
		ASSERT_HAS_STR(h.conninfo[0], "host='a'", "host 0");
		ASSERT_HAS_STR(h.conninfo[0], "port='5432'", "port 0");
		ASSERT_HAS_STR(h.conninfo[1], "host='b'", "host 1");
		ASSERT_HAS_STR(h.conninfo[1], "port='5433'", "port 1");
		ASSERT_HAS_STR(h.conninfo[1], "target_session_attrs='read-write'", "attrs kept");
		ASSERT_HAS_STR(h.conninfo[1], "dbname='x'", "dbname kept");
		ASSERT_STREQ(h.label[1], "b:5433", "label");
		pg_hosts_free(&h);
	}
	if (ASSERT_OK(pg_hosts_parse(&h,
				     "postgresql://u@a:1,b:2/db?target_session_attrs=read-write",
				     err, sizeof(err)),
		      "URI")) {
		ASSERT_EQ(h.n, 2, "URI n");
		ASSERT_HAS_STR(h.conninfo[1], "port='2'", "URI port 1");
		ASSERT_HAS_STR(h.conninfo[1], "user='u'", "URI user");
		ASSERT_EQ(h.connect_timeout_ms, PG_HOSTS_DEFAULT_TIMEOUT_MS, "default timeout");
		pg_hosts_free(&h);
	}
	if (ASSERT_OK(pg_hosts_parse(&h, "host=a,b,c port=7 connect_timeout=1 password='p q\\'r'",
				     err, sizeof(err)),
		      "one port for three hosts")) {
		ASSERT_EQ(h.n, 3, "three");
		ASSERT_HAS_STR(h.conninfo[2], "port='7'", "shared port");
		ASSERT_HAS_STR(h.conninfo[2], "password='p q\\'r'", "quoting kept");
		ASSERT_EQ(h.connect_timeout_ms, 2000, "libpq's 2 s minimum");
		pg_hosts_free(&h);
	}
	if (ASSERT_OK(pg_hosts_parse(&h, "dbname=x", err, sizeof(err)), "no host")) {
		ASSERT_EQ(h.n, 1, "one default host");
		ASSERT_STREQ(h.conninfo[0], "dbname='x'", "unchanged");
		pg_hosts_free(&h);
	}
	ASSERT_EQ(pg_hosts_parse(&h, "host=a,b port=1,2,3", err, sizeof(err)), -EINVAL,
		  "three ports for two hosts");
	ASSERT_HAS_STR(err, "3 ports", "the reason names the lists");
	ASSERT_EQ(pg_hosts_parse(&h, "host=a bogus=1", err, sizeof(err)), -EINVAL, "bad option");
	ASSERT_HAS_STR(err, "bogus", "libpq's reason");
}

static bool stored_some(struct pgs_stream *s, int n, int timeout_s)
{
	for (int i = 0; i < timeout_s * 100; i++) {
		if (pgs_acked(s) >= n)
			return true;
		usleep(10000);
	}
	return false;
}

static void read_only_session(void)
{
	struct pgh_server a = {0}, b = {0};
	struct pgs_stream s = {0};
	char dir[400], conninfo[400], err[512], out[512];
	struct pg_step_key key = {.tenant = "t0",
				  .idempotency_key = "ro-step",
				  .step = "call:crm",
				  .received_us = pgs_now_us()};
	struct pg_steps *steps = NULL;
	int step_ret = -1;
	long long on_a, on_b, distinct;

	snprintf(dir, sizeof(dir), "%s/b", test__tmpdir());
	if (!ASSERT_OK(mkdir(dir, 0755), "dir for B") ||
	    !ASSERT_OK(pgh_server_start(&a, test__tmpdir(), NULL), "postgres A") ||
	    !ASSERT_OK(pgh_server_start(&b, dir, NULL), "postgres B") ||
	    !ASSERT_EQ(pg_migrate_conninfo(a.conninfo, err, sizeof(err)), pg_migrate_latest(),
		       "migrate A") ||
	    !ASSERT_EQ(pg_migrate_conninfo(b.conninfo, err, sizeof(err)), pg_migrate_latest(),
		       "migrate B"))
		goto out;
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=sluice user=postgres "
		 "target_session_attrs=read-write connect_timeout=2",
		 a.port, b.port);
	{
		struct pg_writer_config cfg = {.conninfo = conninfo,
					       .pool_size = 2,
					       .backoff_min_ms = 20,
					       .backoff_max_ms = 500};

		if (!ASSERT_OK(pgs_start(&s, &cfg, "ro", ROWS, RATE), "stream"))
			goto out;
	}
	if (!ASSERT_TRUE(stored_some(&s, ROWS / 4, 60), "a quarter stored on A"))
		goto out;
	/* the step store (blocking libpq, pooled connections) on the same conninfo */
	steps = pg_steps_new(conninfo, 1);
	if (!ASSERT_OK_PTR(steps, "steps") ||
	    !ASSERT_OK(pg_steps_put(steps, &key, "done", 1, NULL, NULL, err, sizeof(err)),
		       "step stored on A"))
		goto out;
	ASSERT_EQ(pgh_query_ll(&b, "SELECT count(*) FROM events"), 0, "nothing on B yet");
	if (!ASSERT_OK(pgh_psql(&a, out, sizeof(out),
				"ALTER SYSTEM SET default_transaction_read_only = on"),
		       "A read-only") ||
	    !ASSERT_OK(pgh_psql(&a, out, sizeof(out), "SELECT pg_reload_conf()"), "reload A"))
		goto out;
	printf("A turned read-only at %d acknowledged rows\n", pgs_acked(&s));
	/* the reload reaches sessions a moment after pg_reload_conf() returns */
	ASSERT_TRUE(pgh_wait_ll(&a,
				"SELECT (current_setting('default_transaction_read_only') = "
				"'on')::int",
				1, 10),
		    "A's sessions read-only");
	usleep(200000);
	/* the pooled session on A refuses once (25006) and is dropped; the next one is B's */
	for (int i = 0; i < 3 && step_ret; i++) {
		step_ret = pg_steps_put(steps, &key, "failed", 2, NULL, NULL, err, sizeof(err));
		printf("step put %d: %d %s\n", i, step_ret, step_ret ? err : "");
	}
	ASSERT_OK(step_ret, "the step store moved to B");
	ASSERT_EQ(pgh_query_ll(&b, "SELECT count(*) FROM step_results WHERE status = 'failed'"), 1,
		  "the step's update is on B");
	if (!ASSERT_OK(pgs_finish(&s, 60000), "the stream finishes on B"))
		goto out;
	ASSERT_EQ(pgs_acked(&s), ROWS, "every row acknowledged");
	ASSERT_EQ(s.l.twice, 0, "none twice");
	on_a = pgh_query_ll(&a, "SELECT count(*) FROM events WHERE idempotency_key LIKE 'ro-%'");
	on_b = pgh_query_ll(&b, "SELECT count(*) FROM events WHERE idempotency_key LIKE 'ro-%'");
	printf("rows on A %lld, on B %lld\n", on_a, on_b);
	ASSERT_GT(on_b, 0, "the writer moved to B");
	ASSERT_EQ(on_a + on_b, ROWS, "every row in A or B");
	distinct = pgh_query_ll(&b, "SELECT count(DISTINCT idempotency_key) FROM events");
	ASSERT_EQ(distinct, on_b, "B: each key once");
out:
	pg_steps_free(steps);
	pgs_free(&s);
	pgh_server_destroy(&b);
	pgh_server_destroy(&a);
}

void test_pg_hosts(void)
{
	if (test__start_subtest("parse"))
		parse_cases();
	if (test__start_subtest("read_only_session")) {
		if (test__require_root())
			read_only_session();
	}
}
