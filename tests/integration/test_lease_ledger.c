// SPDX-License-Identifier: MIT
/* test_lease_ledger.c -- the cluster ledger's split (admit/lease.c) against a real Redis:
 * max-min fairness with a floor, shares adding up to the global rate, a silent node's share
 * going back to the others after the expiry, a new node starting small and growing with its
 * demand, many tenants in one script call per node and period. Three "nodes" here are three
 * cluster clients (lib/cluster.h) in this process, each registered under its own name. */
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admit/lease.h"
#include "lib/clock.h"
#include "lib/cluster.h"
#include "redisharness.h"
#include "test_progs.h"

#define PERIOD_MS 100
#define RATE	  300.0
#define FLOOR	  (RATE * LEASE_FLOOR)

static struct cluster *node(struct redis_harness *r, const char *name)
{
	struct cluster_config cc = {.period_ms = PERIOD_MS};
	struct cluster *c;
	char err[256];

	redis_config_default(&cc.redis);
	cc.redis.port = r->port;
	cc.redis.op_timeout_ms = 2000; /* 1000 tenants in one call on a loaded machine */
	snprintf(cc.node, sizeof(cc.node), "%s", name);
	c = cluster_new(&cc);
	if (!ASSERT_OK_PTR(c, "cluster_new"))
		return NULL;
	if (!ASSERT_OK(cluster_register(c, err, sizeof(err)), err)) {
		cluster_free(c);
		return NULL;
	}
	return c;
}

/* One exchange of node c for tenant "t" (REQ at RATE) with this demand; its share. */
static double share_of(struct cluster *c, double demand, unsigned *nodes)
{
	struct lease_entry e = {
	    .tenant = "t", .limit = SLUICE_LIMIT_REQ, .demand = demand, .rate = RATE};

	if (!ASSERT_OK(lease_exchange(c, &e, 1), "exchange"))
		return -1;
	if (nodes)
		*nodes = e.nodes;
	return e.share;
}

/* Two rounds so every node's second exchange sees the others' demand. */
static void round2(struct cluster **c, const double *d, double *s, int n)
{
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < n; i++)
			s[i] = share_of(c[i], d[i], NULL);
}

static long long eval_calls(struct redis_harness *r)
{
	redisContext *rc = redisConnect("127.0.0.1", r->port);
	redisReply *rep = rc && !rc->err ? redisCommand(rc, "INFO commandstats") : NULL;
	long long calls = -1;
	const char *p;

	if (rep && rep->type == REDIS_REPLY_STRING) {
		p = strstr(rep->str, "cmdstat_eval:calls=");
		calls = p ? atoll(p + strlen("cmdstat_eval:calls=")) : 0;
	}
	if (rep)
		freeReplyObject(rep);
	if (rc)
		redisFree(rc);
	return calls;
}

static void subtest_fair(struct cluster **c)
{
	const double d[3] = {50, 200, 400}, low[3] = {10, 20, 30};
	double s[3];

	/* floor 3 each, then 50 fully, the rest (241) evenly between the two that want more */
	round2(c, d, s, 3);
	ASSERT_LT(fabs(s[0] - (50 + FLOOR / 3)), 0.01, "the small demand is met in full");
	ASSERT_LT(fabs(s[1] - s[2]), 0.01, "the two big ones split the rest evenly");
	ASSERT_LT(fabs(s[0] + s[1] + s[2] - RATE), 0.01, "shares add up to the rate");
	ASSERT_LT(s[1], 200, "nobody gets what it asked beyond its fair share");
	/* all demands met: what nobody wants is split evenly on top */
	round2(c, low, s, 3);
	ASSERT_LT(fabs(s[1] - s[0] - 10), 0.01, "demand differences kept");
	ASSERT_LT(fabs(s[0] + s[1] + s[2] - RATE), 0.01, "all of the rate handed out");
}

static void subtest_expiry(struct cluster **c)
{
	double s[2];
	unsigned nodes = 0;

	/* c[2] goes silent; a and b keep reporting; past the expiry it is no longer counted */
	for (int t = 0; t < (LEASE_EXPIRE_PERIODS + 3) * PERIOD_MS; t += PERIOD_MS) {
		s[0] = share_of(c[0], 300, NULL);
		s[1] = share_of(c[1], 300, &nodes);
		usleep(PERIOD_MS * 1000);
	}
	ASSERT_EQ(nodes, 2, "the silent node expired");
	ASSERT_LT(fabs(s[0] + s[1] - RATE), 0.01, "the two left share the whole rate");
	ASSERT_LT(fabs(s[0] - RATE / 2), 0.01, "evenly");
}

static void subtest_new_node(struct cluster **c, struct cluster *d)
{
	double s[3], busy[3] = {400, 400, 0};
	struct cluster *all[3] = {c[0], c[1], d};

	round2(all, busy, s, 3);
	ASSERT_LT(s[2], RATE * 0.05, "a new node without demand starts small");
	ASSERT_GT(s[2], 0, "but not at zero: its first requests are seen");
	busy[2] = 400;
	round2(all, busy, s, 3);
	ASSERT_LT(fabs(s[2] - RATE / 3), 0.01, "it grows with its demand to a fair third");
}

static void subtest_one_call(struct redis_harness *r, struct cluster *c)
{
	static struct lease_entry e[1000 * 2];
	static char names[1000][24];
	long long before, after;
	double t0;

	for (int i = 0; i < 1000; i++) {
		snprintf(names[i], sizeof(names[i]), "tenant%d", i);
		e[2 * i] = (struct lease_entry){names[i], SLUICE_LIMIT_REQ, 10, 100, 0, 0};
		e[2 * i + 1] = (struct lease_entry){names[i], SLUICE_LIMIT_SYN, 5, 50, 0, 0};
	}
	before = eval_calls(r);
	t0 = clock_mono_ms();
	ASSERT_OK(lease_exchange(c, e, 2000), "1000 tenants x 2 limits");
	printf("one exchange of 1000 tenants x 2 limits: %.1f ms\n", clock_mono_ms() - t0);

	after = eval_calls(r);
	ASSERT_EQ(after - before, 1, "one script call for all of them");
	ASSERT_GT(e[1999].share, 0, "the last one got its share");
	ASSERT_LE(e[1999].share, 50.0 + 1e-6, "within its rate");
}

void test_lease_ledger(void)
{
	struct redis_harness r;
	struct cluster *c[3] = {0}, *d = NULL;
	int ret = redis_harness_start(&r);

	if (ret == -ENOENT) {
		test__skip("redis-server not installed");
		return;
	}
	if (!ASSERT_OK(ret, "redis"))
		return;
	if (!(c[0] = node(&r, "a")) || !(c[1] = node(&r, "b")) || !(c[2] = node(&r, "c")))
		goto out;
	if (test__start_subtest("max_min_fair"))
		subtest_fair(c);
	if (test__start_subtest("silent_node_expires"))
		subtest_expiry(c);
	if (test__start_subtest("new_node_starts_small") && (d = node(&r, "d")))
		subtest_new_node(c, d);
	if (test__start_subtest("one_call_per_period"))
		subtest_one_call(&r, c[0]);
out:
	cluster_free(d);
	for (int i = 0; i < 3; i++)
		cluster_free(c[i]);
	redis_harness_stop(&r);
}
