// SPDX-License-Identifier: MIT
/* test_redis.c -- the Redis client against a real private redis-server: NX duplicate check,
 * cache TTL, and degrading within the timeout when Redis is stopped, paused or absent */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "lib/clock.h"
#include "lib/redis.h"
#include "redisharness.h"
#include "test_progs.h"

static bool start(struct redis_harness *h)
{
	int err = redis_harness_start(h);

	if (err == -ENOENT) {
		test__skip("redis-server not installed (tools/setup installs it)");
		return false;
	}
	return ASSERT_OK(err, "start redis-server");
}

static struct redis *client(uint16_t port, uint32_t backoff_ms)
{
	struct redis_config cfg;

	redis_config_default(&cfg);
	cfg.port = port;
	/* far below the stall a paused server causes, far above a healthy answer on a busy
	 * shared machine (50 ms, the default, timed out healthy calls under load) */
	cfg.op_timeout_ms = 250;
	cfg.connect_timeout_ms = 250;
	cfg.down_backoff_ms = backoff_ms;
	return redis_new(&cfg);
}

/* One-field keys in the cache space, for the subtests about the transport. */
static int cget(struct redis *r, const char *key, char **v)
{
	return redis_kv_get(r, REDIS_CACHE, &key, 1, v);
}

static int cset(struct redis *r, const char *key, const char *v, uint64_t ttl_ms)
{
	return redis_kv_set(r, REDIS_CACHE, &key, 1, v, ttl_ms);
}

static void subtest_idem(struct redis *r)
{
	char orig[64] = "";

	ASSERT_EQ(redis_idem_check(r, "acme", "lead-1", "ev-1", 60000, orig, sizeof(orig)),
		  REDIS_IDEM_NEW, "first time: new");
	ASSERT_EQ(redis_idem_check(r, "acme", "lead-1", "ev-2", 60000, orig, sizeof(orig)),
		  REDIS_IDEM_DUPLICATE, "second time: duplicate");
	ASSERT_STREQ(orig, "ev-1", "original id returned");
	ASSERT_EQ(redis_idem_check(r, "globex", "lead-1", "ev-3", 60000, orig, sizeof(orig)),
		  REDIS_IDEM_NEW, "same key, other tenant: new");
	ASSERT_EQ(redis_idem_check(r, "acme", "a:b\r\n$x", "ev-4", 60000, orig, sizeof(orig)),
		  REDIS_IDEM_NEW, "key with protocol bytes");
	ASSERT_EQ(redis_idem_check(r, "acme", "a:b\r\n$x", "ev-5", 60000, orig, sizeof(orig)),
		  REDIS_IDEM_DUPLICATE, "binary-safe duplicate");
	ASSERT_STREQ(orig, "ev-4", "its original id");
	/* the TTL bounds the fast path; Postgres is the authority after it */
	ASSERT_EQ(redis_idem_check(r, "acme", "short", "ev-6", 100, orig, sizeof(orig)),
		  REDIS_IDEM_NEW, "short ttl");
	usleep(250000);
	ASSERT_EQ(redis_idem_check(r, "acme", "short", "ev-7", 100, orig, sizeof(orig)),
		  REDIS_IDEM_NEW, "expired: new again");
}

static void subtest_cache(struct redis *r)
{
	char *v = NULL;

	ASSERT_EQ(cget(r, "ai:jo@acme.example", &v), 0, "miss");
	ASSERT_OK(cset(r, "ai:jo@acme.example", "{\"score\":0.7}", 150), "set");
	if (ASSERT_EQ(cget(r, "ai:jo@acme.example", &v), 1, "hit"))
		ASSERT_STREQ(v, "{\"score\":0.7}", "value");
	free(v);
	v = NULL;
	usleep(300000);
	ASSERT_EQ(cget(r, "ai:jo@acme.example", &v), 0, "expired after the TTL");
	free(v);
}

/* Each user has its own space and every field is length-prefixed: no two (space, fields)
 * share a key, whatever the fields hold (issue 12: tenant "acme:eu" key "123" was answered
 * with tenant "acme" key "eu:123"'s event id, and an upstream named "dedupe" wrote there). */
static void subtest_spaces(struct redis_harness *h, struct redis *r)
{
	const char *acme[] = {"acme", "eu:123"}, *acme_eu[] = {"acme:eu", "123"};
	const char *up_dedupe[] = {"dedupe", "acme", "eu:123"};
	redisContext *raw;
	redisReply *rep;
	char *v = NULL;

	ASSERT_OK(redis_kv_set(r, REDIS_DEDUPE, acme, 2, "00000000000000a1", 60000), "set");
	ASSERT_EQ(redis_kv_get(r, REDIS_DEDUPE, acme_eu, 2, &v), 0, "other split: a miss");
	ASSERT_EQ(redis_kv_get(r, REDIS_CACHE, acme, 2, &v), 0, "other space: a miss");
	ASSERT_OK(redis_kv_set(r, REDIS_CACHE, up_dedupe, 3, "{\"score\":1}", 60000), "cache");
	if (ASSERT_EQ(redis_kv_get(r, REDIS_DEDUPE, acme, 2, &v), 1, "still its own value"))
		ASSERT_STREQ(v, "00000000000000a1", "not the cache's");
	free(v);
	v = NULL;
	ASSERT_EQ(redis_idem_check(r, "acme", "eu:123", "i1", 60000, NULL, 0), REDIS_IDEM_NEW,
		  "idem: own space");
	ASSERT_EQ(redis_idem_check(r, "acme:eu", "123", "i2", 60000, NULL, 0), REDIS_IDEM_NEW,
		  "idem: other split is new");
	/* the layout operators see in redis-cli */
	raw = redisConnect("127.0.0.1", h->port);
	if (!ASSERT_TRUE(raw && !raw->err, "raw connection"))
		goto out;
	rep = redisCommand(raw, "GET sluice:dedupe:4:acme:6:eu:123");
	ASSERT_TRUE(rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "00000000000000a1"),
		    "sluice:dedupe:<len>:<tenant>:<len>:<key>");
	freeReplyObject(rep);
	rep = redisCommand(raw, "EXISTS sluice:cache:6:dedupe:4:acme:6:eu:123");
	ASSERT_TRUE(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1,
		    "sluice:cache:<len>:<upstream>:<len>:<tenant>:<len>:<value>");
	freeReplyObject(rep);
out:
	if (raw)
		redisFree(raw);
}

static void subtest_paused(struct redis_harness *h, struct redis *r)
{
	struct redis_stats st;
	double t0, t1;
	char *v = NULL;
	int err;

	ASSERT_OK(cset(r, "k", "v", 60000), "works before");
	if (!ASSERT_OK(redis_harness_pause(h), "SIGSTOP redis"))
		return;
	t0 = clock_mono_ms();
	err = cget(r, "k", &v);
	t1 = clock_mono_ms();
	ASSERT_EQ(err, -ETIMEDOUT, "stalled server: timeout");
	/* 250 ms timeout; the bound is loose because the machine is shared, but a client that
	 * waited for the server would block until SIGCONT below, forever */
	ASSERT_LT(t1 - t0, 1500, "gave up within the timeout (+ slack)");
	t0 = clock_mono_ms();
	ASSERT_EQ(redis_idem_check(r, "acme", "x", "e", 1000, NULL, 0), -EAGAIN, "backoff");
	ASSERT_LT(clock_mono_ms() - t0, 20, "backoff answers without the network");
	redis_stats(r, &st);
	ASSERT_EQ(st.timeouts, 1, "one timeout counted");
	ASSERT_EQ(st.skipped, 1, "one call skipped");
	ASSERT_EQ(st.outages, 1, "one outage (one warning)");
	ASSERT_FALSE(st.up, "down");
	redis_harness_resume(h);
	usleep(250000); /* backoff 200 ms */
	ASSERT_EQ(cget(r, "k", &v), 1, "back after the backoff");
	free(v);
	redis_stats(r, &st);
	ASSERT_TRUE(st.up, "up again");
	ASSERT_EQ(st.outages, 1, "still one outage");
}

static void subtest_stopped(struct redis_harness *h, struct redis *r)
{
	struct redis_stats st;
	double t0;

	ASSERT_OK(cset(r, "k", "v", 60000), "works before");
	redis_harness_stop(h);
	t0 = clock_mono_ms();
	ASSERT_ERR(cset(r, "k", "v", 60000), "killed: error");
	ASSERT_ERR(redis_idem_check(r, "acme", "x", "e", 1000, NULL, 0), "still an error");
	ASSERT_LT(clock_mono_ms() - t0, 1000, "no waiting on a dead server");
	for (int i = 0; i < 5; i++) {
		usleep(60000); /* past the 50 ms backoff: each call tries again and fails */
		ASSERT_ERR(cset(r, "k", "v", 60000), "retry fails");
	}
	redis_stats(r, &st);
	ASSERT_EQ(st.outages, 1, "one warning for the whole outage");
	ASSERT_GE(st.errors, 6, "every failure counted");
}

struct racer {
	struct redis *r;
	int id, pass, new, dup, wrong, err;
};

/* Keys k-0..k-1599; pass 0 stores id "<key>", pass 1 must find it from another thread. */
static void *race(void *arg)
{
	struct racer *x = arg;
	char key[32], orig[32];

	for (int i = x->id; i < 1600; i += 8) {
		snprintf(key, sizeof(key), "k-%d", i);
		int ret = redis_idem_check(x->r, "race", key, x->pass ? "other" : key, 60000, orig,
					   sizeof(orig));

		x->new += ret == REDIS_IDEM_NEW;
		x->dup += ret == REDIS_IDEM_DUPLICATE;
		x->wrong += ret == REDIS_IDEM_DUPLICATE && strcmp(orig, key);
		x->err += ret < 0;
	}
	return NULL;
}

static void subtest_threads(struct redis *r)
{
	struct racer x[8];
	pthread_t t[8];
	struct redis_stats st;

	for (int pass = 0; pass < 2; pass++) {
		int new = 0, dup = 0, wrong = 0, err = 0;

		for (int i = 0; i < 8; i++) {
			/* pass 1 shifts the key ranges, so each key is checked by another thread */
			x[i] = (struct racer){.r = r, .id = (i + pass) % 8, .pass = pass};
			pthread_create(&t[i], NULL, race, &x[i]);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(t[i], NULL);
			new += x[i].new, dup += x[i].dup, wrong += x[i].wrong, err += x[i].err;
		}
		ASSERT_EQ(err, 0, "no errors");
		ASSERT_EQ(new, pass ? 0 : 1600, "first pass: all new");
		ASSERT_EQ(dup, pass ? 1600 : 0, "second pass: all duplicates");
		ASSERT_EQ(wrong, 0, "each with its own original id");
	}
	redis_stats(r, &st);
	ASSERT_LE(st.reconnects, 4, "at most pool_size connections were opened");
}

static void subtest_config(void)
{
	struct redis_config cfg;
	char err[128] = "";

	redis_config_default(&cfg);
	ASSERT_OK(redis_config_set(&cfg, "op_timeout_ms", "20", err, sizeof(err)), "timeout");
	ASSERT_EQ(cfg.op_timeout_ms, 20, "set");
	ASSERT_EQ(redis_config_set(&cfg, "port", "70000", err, sizeof(err)), -EINVAL, "port");
	ASSERT_HAS_STR(err, "port = 70000", "names input");
	ASSERT_EQ(redis_config_set(&cfg, "host", "", err, sizeof(err)), -EINVAL, "empty host");
	ASSERT_OK(redis_config_set(&cfg, "addr", "10.0.0.7:6380", err, sizeof(err)), "addr");
	ASSERT_STREQ(cfg.host, "10.0.0.7", "addr host");
	ASSERT_EQ(cfg.port, 6380, "addr port");
	ASSERT_OK(redis_config_set(&cfg, "addr", "[::1]:7000", err, sizeof(err)), "v6 addr");
	ASSERT_STREQ(cfg.host, "::1", "v6 host without brackets");
	ASSERT_EQ(redis_config_set(&cfg, "addr", "redis.local", err, sizeof(err)), -EINVAL,
		  "no port");
	ASSERT_HAS_STR(err, "HOST:PORT", "says the form");
	ASSERT_EQ(redis_config_set(&cfg, "addr", "h:0", err, sizeof(err)), -EINVAL, "port 0");
	ASSERT_EQ(cfg.port, 7000, "unchanged after an error");
}

void test_redis(void)
{
	struct redis_harness h = {0};
	struct redis *r = NULL;

	if (test__start_subtest("config"))
		subtest_config();
	if (!start(&h))
		return;
	r = client(h.port, 200);
	if (!ASSERT_OK_PTR(r, "client"))
		goto out;
	if (test__start_subtest("idem"))
		subtest_idem(r);
	if (test__start_subtest("cache_ttl"))
		subtest_cache(r);
	if (test__start_subtest("spaces"))
		subtest_spaces(&h, r);
	if (test__start_subtest("threads"))
		subtest_threads(r);
	if (test__start_subtest("paused"))
		subtest_paused(&h, r);
	redis_free(r);
	r = client(h.port, 50);
	if (test__start_subtest("stopped"))
		subtest_stopped(&h, r);
out:
	redis_free(r);
	redis_harness_stop(&h);
}
