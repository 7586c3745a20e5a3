// SPDX-License-Identifier: MIT
/* test_pg_partition.c -- the database partitioned under load: nothing lost, quick recovery
 *
 * PostgreSQL runs in its own network namespace (dbchaos.h), reached over a veth. Mid-stream
 * nftables there drops every packet in and out (no RST, no ICMP: the writer's connections
 * just go silent) for PARTITION_SECONDS (default 15), then lets them through again. The
 * writer uses the recommended conninfo for a silent server (docs/postgres.md, "Failover"):
 * connect_timeout=2 and tcp_user_timeout=3000 plus keepalives, so connections stuck in the
 * partition are given up within seconds instead of waiting out TCP's retransmissions.
 * Meanwhile the rows wait in the writer (what the journal holds in sluiced); the test prints
 * the peak of that backlog and the time from the partition's end to the first row stored
 * after it (the server's stored_at), and checks every acknowledged key is in the table.
 *
 * Checked by hand that it fails without tcp_user_timeout and keepalives in the conninfo: the
 * connections in flight are given up only at the batch deadline (statement_timeout + 10 s),
 * after the partition ended, so nothing is noticed during it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sink/pg/migrate.h"
#include "dbchaos.h"
#include "pgharness.h"
#include "pgstream.h"
#include "test_progs.h"

#define RATE   2000
#define WARM_S 5
#define TAIL_S 8

/* The conninfo options that make a silent server a failed connection within seconds. */
#define SILENT_SERVER_OPTS                                                                         \
	"connect_timeout=2 keepalives=1 keepalives_idle=2 keepalives_interval=1 "                  \
	"keepalives_count=2 tcp_user_timeout=3000"

static int partition_seconds(void)
{
	const char *v = getenv("PARTITION_SECONDS");
	int s = v ? atoi(v) : 0;

	return s >= 5 ? s : 15;
}

/* Sample the writer's backlog every 100 ms for seconds. */
static void watch(struct pgs_stream *s, double seconds)
{
	for (int i = 0; i < seconds * 10; i++) {
		pgs_sample(s);
		usleep(100000);
	}
}

void test_pg_partition(void)
{
	int part_s = partition_seconds(), rows = RATE * (WARM_S + part_s + TAIL_S), acked_before;
	struct pgh_server p = {0};
	struct dbchaos c = {0};
	struct pgs_stream s = {0};
	char conninfo[600], err[512];
	struct pgs_loss loss;
	struct pg_writer_stats st;
	int64_t t_part, t_heal;
	double resume;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(dbchaos_create(&c), "namespace"))
		return;
	{
		struct pgh_options o = {.netns = c.ns, .listen_addr = c.ip_ns};

		if (!ASSERT_OK(pgh_server_start(&p, test__tmpdir(), &o),
			       "postgres in the namespace"))
			goto out;
	}
	if (!ASSERT_EQ(pg_migrate_conninfo(p.conninfo, err, sizeof(err)), pg_migrate_latest(),
		       "migrate over the veth")) {
		printf("%s\n", err);
		goto out;
	}
	snprintf(conninfo, sizeof(conninfo),
		 "host=%s port=%d dbname=sluice user=postgres " SILENT_SERVER_OPTS, p.host, p.port);
	{
		struct pg_writer_config cfg = {.conninfo = conninfo, .pool_size = 2};

		if (!ASSERT_OK(pgs_start(&s, &cfg, "part", rows, RATE), "stream"))
			goto out;
	}
	watch(&s, WARM_S);
	if (!ASSERT_GT(pgs_acked(&s), 0, "writing before the partition") ||
	    !ASSERT_OK(dbchaos_partition(&c), "partition (nft drop)"))
		goto out;
	t_part = pgs_now_us();
	acked_before = pgs_acked(&s);
	watch(&s, part_s);
	printf("acknowledged during the partition: %d (in flight when it began)\n",
	       pgs_acked(&s) - acked_before);
	pg_writer_get_stats(s.w, &st);
	/* without tcp_user_timeout/keepalives the writer notices only at the batch deadline
	 * (statement_timeout + 10 s = 20 s), after this partition ended */
	ASSERT_GT(st.batches_failed + st.connect_failures, 0,
		  "the silent server noticed during the partition");
	if (!ASSERT_OK(dbchaos_heal(&c), "heal"))
		goto out;
	t_heal = pgs_now_us();
	watch(&s, 2);
	if (!ASSERT_OK(pgs_finish(&s, 120000), "the backlog drains"))
		goto out;
	ASSERT_EQ(pgs_acked(&s), rows, "every row acknowledged");
	ASSERT_EQ(s.l.twice, 0, "none twice");
	if (!ASSERT_OK(pgs_check(&s, &p, &loss), "check the table"))
		goto out;
	resume = pgs_first_stored_after(&s, &p, t_heal);
	printf("figure: partition_s=%.1f\nfigure: resume_s=%.2f\nfigure: backlog_peak=%llu\n"
	       "figure: acked=%d\nfigure: lost=%d\n",
	       (t_heal - t_part) / 1e6, resume, (unsigned long long)s.max_pending, loss.acked,
	       loss.lost);
	ASSERT_EQ(loss.lost, 0, "no acknowledged key lost");
	ASSERT_GE(resume, 0, "writes resumed");
	/* ~1 s expected (backoff cap 1 s, connect_timeout 2 s); generous for a loaded machine */
	ASSERT_LT(resume, 10.0, "writes resume within seconds of the partition's end");
	ASSERT_GT(s.max_pending, RATE * part_s / 2, "the rows waited during the partition");
out:
	pgs_free(&s);
	pgh_server_destroy(&p);
	dbchaos_destroy(&c);
}
