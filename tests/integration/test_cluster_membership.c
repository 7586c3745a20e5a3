// SPDX-License-Identifier: MIT
/* test_cluster_membership.c -- lib/cluster against a real Redis, in process: a live name is
 * refused (-EEXIST, naming the node) after the TTL wait, a clean free gives it back at once,
 * and a node started while Redis does not answer gets an error at once, tells its hooks
 * "down", and registers and tells them "up" once Redis answers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "ingress_harness.h"
#include "lib/cluster.h"
#include "netns.h"
#include "redisharness.h"
#include "test_progs.h"

#define PERIOD_MS 50
#define TENANT	  "[acme]\nkey = " HARNESS_KEY_A_HEX "\nreq_rate = 100\nsyn_rate = 50\n"
#define ACL_RULES "on '>s3cret-pw' '~sluice:cluster:*' -@all +@read +@write +eval +time"

static struct cluster *client(uint16_t port, const char *name)
{
	struct cluster_config cc = {.period_ms = PERIOD_MS};

	redis_config_default(&cc.redis);
	cc.redis.port = port;
	cc.redis.connect_timeout_ms = 200;
	cc.redis.op_timeout_ms = 200;
	snprintf(cc.node, sizeof(cc.node), "%s", name);
	return cluster_new(&cc);
}

struct hook_seen {
	int up, down;
};

static void hook(struct cluster *c, bool up, void *arg)
{
	struct hook_seen *s = arg;

	__atomic_add_fetch(up ? &s->up : &s->down, 1, __ATOMIC_RELAXED);
}

static bool wait_up(struct hook_seen *s, int want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 20) {
		if (__atomic_load_n(&s->up, __ATOMIC_RELAXED) >= want)
			return true;
		usleep(20000);
	}
	return false;
}

void test_cluster_membership(void)
{
	struct redis_harness r;
	struct cluster *a = NULL, *b = NULL, *c = NULL;
	struct hook_seen seen = {0};
	struct cluster_status st;
	char err[512];
	double t0;
	int ret = redis_harness_start(&r);

	if (ret == -ENOENT) {
		test__skip("redis-server not installed");
		return;
	}
	if (!ASSERT_OK(ret, "redis"))
		return;
	a = client(r.port, "x");
	b = client(r.port, "x");
	if (!ASSERT_OK_PTR(a, "a") || !ASSERT_OK_PTR(b, "b"))
		goto out;
	ASSERT_OK(cluster_register(a, err, sizeof(err)), "a takes x");
	ASSERT_OK(cluster_run(a), "a renews");
	t0 = clock_mono_s();
	ASSERT_EQ(cluster_register(b, err, sizeof(err)), -EEXIST, "b refused while a is live");
	ASSERT_GE(clock_mono_s() - t0, cluster_ttl_ms(cluster_config(b)) / 1000.0 * 0.9,
		  "after waiting out one TTL");
	ASSERT_HAS_STR(err, "node name 'x' is already used", "the message names the node");
	cluster_free(a); /* gives x back */
	a = NULL;
	t0 = clock_mono_s();
	ASSERT_OK(cluster_register(b, err, sizeof(err)), "b takes x once a is gone");
	ASSERT_LT(clock_mono_s() - t0, 0.5, "at once: a clean stop released it");
	cluster_free(b);
	b = NULL;

	/* started while Redis does not answer (paused): an error now, registered and "up"
	 * once it answers again */
	if (!ASSERT_OK(redis_harness_pause(&r), "pause redis"))
		goto out;
	c = client(r.port, "y");
	if (!ASSERT_OK_PTR(c, "c"))
		goto out;
	ASSERT_LT(cluster_register(c, err, sizeof(err)), 0, "no answer: an error, not a hang");
	ASSERT_OK(cluster_add_hook(c, hook, &seen), "hook");
	ASSERT_OK(cluster_run(c), "run");
	usleep(10 * PERIOD_MS * 1000);
	ASSERT_GT(__atomic_load_n(&seen.down, __ATOMIC_RELAXED), 0, "hooks told Redis is down");
	ASSERT_EQ(__atomic_load_n(&seen.up, __ATOMIC_RELAXED), 0, "and never up");
	ASSERT_OK(redis_harness_resume(&r), "resume redis");
	ASSERT_TRUE(wait_up(&seen, 1, 5000), "up once Redis answers");
	cluster_status(c, &st);
	ASSERT_TRUE(st.registered, "registered then");
	ASSERT_GT(st.errors, 0, "the outage was counted");
out:
	cluster_free(a);
	cluster_free(b);
	cluster_free(c);
	redis_harness_stop(&r);
}

/* AUTH: an ACL user limited to the cluster's keys (the one docs/cluster.md recommends) works
 * in process and through sluiced's --cluster-redis-user/--cluster-redis-password-file and
 * $SLUICE_CLUSTER_REDIS_PASSWORD; a wrong password is refused by name, never echoed. */
void test_cluster_auth(void)
{
	struct redis_harness r;
	struct cluster_config cc = {.period_ms = PERIOD_MS};
	struct sluiced_proc p = {0};
	struct cluster *c = NULL;
	char err[512], addr[64], pwfile[300], out[512];
	const char *args[] = {"--node",
			      "authnode",
			      "--cluster-redis",
			      addr,
			      "--cluster-redis-user",
			      "sluice",
			      "--cluster-redis-password-file",
			      pwfile,
			      NULL};
	FILE *f;
	int ret = redis_harness_start(&r);

	if (ret == -ENOENT) {
		test__skip("redis-server not installed");
		return;
	}
	if (!ASSERT_OK(ret, "redis"))
		return;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", r.port);
	ret = netns_run(NULL, out, sizeof(out), "redis-cli -p %u ACL SETUSER sluice " ACL_RULES,
			r.port);
	if (!ASSERT_OK(ret, out))
		goto out;
	netns_run(NULL, out, sizeof(out), "redis-cli -p %u ACL SETUSER default off", r.port);

	redis_config_default(&cc.redis);
	cc.redis.port = r.port;
	snprintf(cc.node, sizeof(cc.node), "inproc");
	snprintf(cc.redis.user, sizeof(cc.redis.user), "sluice");
	snprintf(cc.redis.password, sizeof(cc.redis.password), "wrong-pw");
	c = cluster_new(&cc);
	if (!ASSERT_OK_PTR(c, "client"))
		goto out;
	ASSERT_LT(cluster_register(c, err, sizeof(err)), 0, "wrong password refused");
	ASSERT_HAS_STR(err, "AUTH refused", "says AUTH");
	ASSERT_FALSE(strstr(err, "wrong-pw"), "never the password");
	cluster_free(c);
	snprintf(cc.redis.password, sizeof(cc.redis.password), "s3cret-pw");
	c = cluster_new(&cc);
	if (!ASSERT_OK_PTR(c, "client"))
		goto out;
	ASSERT_OK(cluster_register(c, err, sizeof(err)), "the ACL user registers");
	cluster_free(c);
	c = NULL;

	/* through sluiced: the password file, then the environment */
	snprintf(pwfile, sizeof(pwfile), "%s/cluster-pw", test__tmpdir());
	f = fopen(pwfile, "w");
	if (!ASSERT_OK_PTR(f, "password file"))
		goto out;
	fprintf(f, "s3cret-pw\n");
	fclose(f);
	if (ASSERT_OK(sluiced_start(&p, TENANT, args), "sluiced with a password file")) {
		static char metrics[1 << 16];

		ASSERT_TRUE(sluiced_log_wait(&p, "auth=sluice", 3000), "joined as the ACL user");
		ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"cluster: node registered\"", 100),
			    "registered");
		usleep(1000 * 1000); /* a few lease periods: the ledger script runs under the ACL */
		ASSERT_EQ(http_admin(&p, "/metrics", metrics, sizeof(metrics)), 200, "metrics");
		ASSERT_HAS_STR(metrics, "sluice_lease_source{source=\"lease\"} 1",
			       "the ledger answers under the ACL");
		ASSERT_HAS_STR(metrics, "sluice_lease_redis_errors_total 0", "without errors");
		ASSERT_EQ(sluiced_stop(&p, 5000), 0, "clean exit");
	}
	args[6] = NULL; /* no file: $SLUICE_CLUSTER_REDIS_PASSWORD */
	setenv("SLUICE_CLUSTER_REDIS_PASSWORD", "s3cret-pw", 1);
	if (ASSERT_OK(sluiced_start(&p, TENANT, args), "sluiced with the password in the env")) {
		ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"cluster: node registered\"", 3000),
			    "registered");
		ASSERT_EQ(sluiced_stop(&p, 5000), 0, "clean exit");
	}
	unsetenv("SLUICE_CLUSTER_REDIS_PASSWORD");
out:
	if (p.pid)
		sluiced_stop(&p, 2000);
	cluster_free(c);
	redis_harness_stop(&r);
}
