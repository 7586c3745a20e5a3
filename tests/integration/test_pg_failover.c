// SPDX-License-Identifier: MIT
/* test_pg_failover.c -- the database primary fails; the writer finds the new one
 *
 * A real streaming standby (pg_basebackup), the writer on
 * "host=primary,standby target_session_attrs=read-write connect_timeout=2", a stream of
 * rows at a fixed rate. Mid-stream the primary is SIGKILLed (postmaster and children at
 * once: the machine died) and the standby promoted:
 *   sync_kill_primary  synchronous_standby_names names the standby: every acknowledged key
 *                      (acknowledged = the moment the journal may forget the event) must be
 *                      on the new primary, none lost;
 *   async_streaming    asynchronous, the standby streaming as usual: measured (what was
 *                      acknowledged but not yet streamed when the primary died is lost);
 *   async_behind       asynchronous, and the standby stopped streaming BEHIND_S seconds
 *                      before the kill: what was acknowledged in that window is lost, and
 *                      the test measures it (count, and the seconds of writes it spans);
 *   blackholed_host    the first host's packets are dropped (nftables in a namespace, no
 *                      RST): the writer must reach the second within the per-host connect
 *                      timeout, not wait for TCP to give up.
 * Each prints "figure: <name>=<value>" lines (tools/report/scenarios/db_failover reads them)
 * and the time from the kill until writes resumed on the new primary (its stored_at).
 * FAILOVER_SECONDS (default 20) sets the stream length; the kill comes at a quarter of it.
 *
 * Checked by hand that they fail with the feature broken: listing only the old primary
 * (the stream never finishes), and, for blackholed_host, handing libpq the whole host list
 * in one nonblocking connect as before (the second host is never reached).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/pg/migrate.h"
#include "dbchaos.h"
#include "pgharness.h"
#include "pgstream.h"
#include "test_progs.h"

#define RATE	 2000
#define BEHIND_S 3

static int stream_seconds(void)
{
	const char *v = getenv("FAILOVER_SECONDS");
	int s = v ? atoi(v) : 0;

	return s >= 8 ? s : 20;
}

static bool wait_acked(struct pgs_stream *s, int n, int timeout_s)
{
	for (int i = 0; i < timeout_s * 100; i++) {
		if (pgs_acked(s) >= n)
			return true;
		usleep(10000);
	}
	printf("acknowledged %d, want %d\n", pgs_acked(s), n);
	return false;
}

/* test__tmpdir()/name, created. */
static int subdir(char *dir, size_t cap, const char *name)
{
	snprintf(dir, cap, "%s/%s", test__tmpdir(), name);
	return mkdir(dir, 0755) && errno != EEXIST ? -errno : 0;
}

static void failover(bool sync, int behind_s)
{
	const char *mode = sync ? "sync" : behind_s ? "async_behind" : "async";
	int rows = RATE * stream_seconds();
	struct pgh_server p = {0}, st = {0};
	struct pgs_stream s = {0};
	char conninfo[400], err[512], dir[300];
	struct pgs_loss loss;
	int64_t t_kill, t_promoted, t_detach = 0, t_behind = 0;
	double resume;

	if (!ASSERT_OK(subdir(dir, sizeof(dir), mode), "scratch dir") ||
	    !ASSERT_OK(pgh_server_start(&p, dir, NULL), "primary") ||
	    !ASSERT_EQ(pg_migrate_conninfo(p.conninfo, err, sizeof(err)), pg_migrate_latest(),
		       "migrate") ||
	    !ASSERT_OK(pgh_standby_start(&st, &p, dir, "standby", sync), "standby"))
		goto out;
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=sluice user=postgres "
		 "target_session_attrs=read-write connect_timeout=2",
		 p.port, st.port);
	{
		struct pg_writer_config cfg = {.conninfo = conninfo, .pool_size = 2};

		if (!ASSERT_OK(pgs_start(&s, &cfg, mode, rows, RATE), "stream"))
			goto out;
	}
	if (!ASSERT_TRUE(wait_acked(&s, rows / 4, 120), "a quarter acknowledged"))
		goto out;
	if (behind_s) {
		t_detach = pgs_now_us();
		if (!ASSERT_OK(pgh_standby_detach(&st, &p), "standby stops streaming"))
			goto out;
		t_behind = pgs_now_us();
		sleep(behind_s);
	}
	if (!ASSERT_OK(pgh_server_kill(&p), "SIGKILL the primary"))
		goto out;
	/* after every process of the old primary is gone: nothing stored later came from it */
	t_kill = pgs_now_us();
	if (!ASSERT_OK(pgh_promote(&st), "promote the standby"))
		goto out;
	t_promoted = pgs_now_us();
	printf("killed at %d acknowledged rows; promoted %.2f s after the kill\n", pgs_acked(&s),
	       (t_promoted - t_kill) / 1e6);
	if (!ASSERT_OK(pgs_finish(&s, 120000), "the stream finishes on the new primary"))
		goto out;
	ASSERT_EQ(pgs_acked(&s), rows, "every row acknowledged");
	ASSERT_EQ(s.l.twice, 0, "none twice");
	if (!ASSERT_OK(pgs_check(&s, &st, &loss), "check the new primary"))
		goto out;
	resume = pgs_first_stored_after(&s, &st, t_kill);
	printf("figure: %s_resume_s=%.2f\nfigure: %s_promote_s=%.2f\nfigure: %s_acked=%d\n"
	       "figure: %s_lost=%d\nfigure: %s_lost_s=%.2f\nfigure: %s_behind_s=%d\n",
	       mode, resume, mode, (t_promoted - t_kill) / 1e6, mode, loss.acked, mode, loss.lost,
	       mode, loss.lost_span_s, mode, behind_s);
	ASSERT_GE(resume, 0, "writes resumed on the new primary");
	if (sync) {
		ASSERT_EQ(loss.lost, 0, "synchronous: no acknowledged key lost");
	} else if (behind_s) {
		/* the measurement sees the loss the setup made, and nothing beyond it */
		ASSERT_GT(loss.lost, 0, "asynchronous and behind: the window is lost");
		ASSERT_LE(loss.last_lost_us, t_kill, "only keys acknowledged before the kill");
		ASSERT_GE(loss.first_lost_us, t_detach - 1000000,
			  "none from before it fell behind");
		printf("no walsender for %.2f s before the kill (%.2f s since the detach began), "
		       "lost %.2f s of writes\n",
		       (t_kill - t_behind) / 1e6, (t_kill - t_detach) / 1e6, loss.lost_span_s);
	}
out:
	pgs_free(&s);
	pgh_server_destroy(&st);
	pgh_server_destroy(&p);
}

static void blackholed_host(void)
{
	struct pgh_server p = {0};
	struct dbchaos c = {0};
	struct pgs_stream s = {0};
	char conninfo[400], err[512], dir[300];
	int64_t t0, first = 0;

	if (!ASSERT_OK(subdir(dir, sizeof(dir), "blackhole"), "scratch dir") ||
	    !ASSERT_OK(dbchaos_create(&c), "namespace") ||
	    !ASSERT_OK(dbchaos_partition(&c), "its packets dropped") ||
	    !ASSERT_OK(pgh_server_start(&p, dir, NULL), "postgres") ||
	    !ASSERT_EQ(pg_migrate_conninfo(p.conninfo, err, sizeof(err)), pg_migrate_latest(),
		       "migrate"))
		goto out;
	snprintf(conninfo, sizeof(conninfo),
		 "host=%s,127.0.0.1 port=5432,%d dbname=sluice user=postgres "
		 "target_session_attrs=read-write connect_timeout=2",
		 c.ip_ns, p.port);
	t0 = pgs_now_us();
	{
		struct pg_writer_config cfg = {.conninfo = conninfo, .pool_size = 2};

		if (!ASSERT_OK(pgs_start(&s, &cfg, "bh", RATE * 4, RATE), "stream"))
			goto out;
	}
	if (!ASSERT_TRUE(wait_acked(&s, 1, 60), "a row stored through the second host"))
		goto out;
	for (int i = 0; i < s.n; i++)
		if (s.ack_us[i] && (!first || s.ack_us[i] < first))
			first = s.ack_us[i];
	printf("figure: blackhole_first_write_s=%.2f (connect_timeout=2)\n", (first - t0) / 1e6);
	/* 2 s per blackholed attempt; generous for a loaded machine, far below TCP's minutes */
	ASSERT_LT((first - t0) / 1e6, 15.0, "past the blackholed host within the connect timeout");
	ASSERT_OK(pgs_finish(&s, 60000), "the stream finishes");
	ASSERT_EQ(pgs_acked(&s), RATE * 4, "every row acknowledged");
out:
	pgs_free(&s);
	pgh_server_destroy(&p);
	dbchaos_destroy(&c);
}

void test_pg_failover(void)
{
	if (!test__require_root())
		return;
	if (test__start_subtest("sync_kill_primary"))
		failover(true, 0);
	if (test__start_subtest("async_streaming"))
		failover(false, 0);
	if (test__start_subtest("async_behind"))
		failover(false, BEHIND_S);
	if (test__start_subtest("blackholed_host"))
		blackholed_host();
}
