// SPDX-License-Identifier: MIT
/* test_upstream_fallback.c -- the fallback chain with the mock upstream and a real Redis:
 * upstream answer remembered -> cache answers when the breaker is open -> model answers
 * for an unknown lead or with Redis down -> defer without a model; cache TTL; the cache is
 * per tenant (another tenant's answer for the same lead is never served) */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "sink/upstream/fallback.h"
#include "mockharness.h"
#include "redisharness.h"
#include "test_progs.h"

#define MS 1000000ULL

static const char *lead_x = "{\"email\":\"x@acme.example\",\"company_size\":250,\"phone\":\"1\"}";
static const char *lead_y = "{\"email\":\"y@gmail.com\",\"company_size\":3}";

struct env {
	struct mock_upstream mock;
	struct redis_harness rh;
	struct redis *redis;
	struct upstream *up;
	struct model model;
	struct fallback *fb;
};

/* One step of tenant's event as the step runner does it: call, then the chain on whatever
 * came back. */
static void step_of(struct env *e, const char *tenant, const char *key, const char *payload,
		    struct fallback_answer *a)
{
	struct upstream_request req = {
	    .payload = payload, .idempotency_key = key, .tenant = tenant, .attempt = 1};
	struct upstream_result r = {0};

	upstream_call(e->up, &req, &r);
	fallback_after_call(e->fb, tenant, payload, &r, a);
	upstream_result_fini(&r);
}

static void step(struct env *e, const char *key, const char *payload, struct fallback_answer *a)
{
	step_of(e, "acme", key, payload, a);
}

static double model_of(const struct model *m, const char *payload)
{
	json_t *p = json_loads(payload, 0, NULL);
	double s = model_score(m, p);

	json_decref(p);
	return s;
}

static int setup(struct env *e, uint64_t ttl_ms)
{
	struct fallback_config fcfg;
	struct upstream_config ucfg;
	struct redis_config rcfg;
	char err[256];
	int ret;

	ret = redis_harness_start(&e->rh);
	if (ret == -ENOENT)
		return test__skip("redis-server not installed"), -ENOENT;
	ret = ret ?: mock_upstream_start(&e->mock, NULL);
	if (ret == -ENOENT)
		return test__skip("mock-upstream not built (make)"), -ENOENT;
	if (ret)
		return ret;
	redis_config_default(&rcfg);
	rcfg.port = e->rh.port;
	rcfg.down_backoff_ms = 100;
	rcfg.op_timeout_ms = 250; /* 50 ms timed out a healthy Redis on a loaded machine */
	e->redis = redis_new(&rcfg);
	upstream_config_default(&ucfg, "ai", e->mock.url);
	snprintf(ucfg.score_field, sizeof(ucfg.score_field), "score");
	ucfg.timeout_ms = 3000;
	ucfg.breaker.window_size = 4;
	ucfg.breaker.minimum_calls = 4;
	ucfg.breaker.open_wait_ns = 60000 * MS; /* stays open for the test */
	e->up = upstream_new(&ucfg, NULL, NULL, err, sizeof(err));
	model_init_default(&e->model);
	fallback_config_default(&fcfg);
	fallback_config_set(&fcfg, "key_field", "email", err, sizeof(err));
	fallback_config_set(&fcfg, "model", "on", err, sizeof(err)); /* opt-in */
	fcfg.cache_ttl_ms = ttl_ms;
	e->fb = fallback_new("ai", &fcfg, e->redis, &e->model);
	return e->redis && e->up && e->fb ? 0 : -ENOMEM;
}

static void teardown(struct env *e)
{
	fallback_free(e->fb);
	upstream_free(e->up);
	redis_free(e->redis);
	mock_upstream_stop(&e->mock);
	redis_harness_stop(&e->rh);
}

/* Make the mock fail until the breaker is open. */
static bool open_breaker(struct env *e)
{
	struct fallback_answer a;
	struct upstream_stats st;

	if (mock_upstream_faults(&e->mock, "error_rate=1"))
		return false;
	for (int i = 0; i < 4; i++)
		step(e, "fail", "{}", &a);
	upstream_stats(e->up, &st);
	return ASSERT_EQ(st.breaker.state, BREAKER_OPEN, "breaker open");
}

static void subtest_chain(void)
{
	struct env e = {0};
	struct fallback_answer a, first;
	struct fallback_stats st;
	double t0;

	if (setup(&e, 60000))
		goto out;
	step(&e, "x-1", lead_x, &first);
	ASSERT_EQ(first.source, FALLBACK_UPSTREAM, "upstream answers");
	if (!open_breaker(&e))
		goto out;
	t0 = clock_mono_ms();
	step(&e, "x-2", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_CACHE, "breaker open: the cache answers");
	ASSERT_TRUE(a.score == first.score, "with the upstream's last score");
	ASSERT_LT(clock_mono_ms() - t0, 1500, "without waiting for the 3 s upstream timeout");
	step(&e, "y-1", lead_y, &a);
	ASSERT_EQ(a.source, FALLBACK_MODEL, "unknown lead: the model answers");
	ASSERT_TRUE(a.score == model_of(&e.model, lead_y), "the model's score");
	ASSERT_HAS_STR(a.reason, "cache: miss", "says the cache missed");
	fallback_stats(e.fb, &st);
	ASSERT_EQ(st.upstream, 1, "one upstream answer");
	ASSERT_EQ(st.remembered, 1, "remembered");
	ASSERT_EQ(st.cache_hits, 1, "one hit");
	ASSERT_EQ(st.model, 5, "model: 4 breaker-opening failures + lead y");
out:
	teardown(&e);
}

static void subtest_redis_down(void)
{
	struct env e = {0};
	struct fallback_answer a;
	struct fallback_stats st;
	double t0;

	if (setup(&e, 60000))
		goto out;
	step(&e, "x-1", lead_x, &a);
	if (!open_breaker(&e))
		goto out;
	redis_harness_pause(&e.rh); /* stalled, not refused: the worst case */
	t0 = clock_mono_ms();
	step(&e, "x-2", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_MODEL, "redis stalled: the model answers");
	ASSERT_TRUE(a.score == model_of(&e.model, lead_x), "model score");
	ASSERT_HAS_STR(a.reason, "redis", "reason names redis");
	/* 250 ms Redis timeout; loose bound for a shared machine, the stall itself is endless */
	ASSERT_LT(clock_mono_ms() - t0, 1500, "within the redis timeout");
	redis_harness_stop(&e.rh);
	step(&e, "x-3", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_MODEL, "redis gone: the model answers");
	fallback_stats(e.fb, &st);
	ASSERT_GE(st.cache_errors, 2, "cache errors counted");
	/* no model either: defer, with every reason */
	fallback_free(e.fb);
	{
		struct fallback_config c;

		fallback_config_default(&c);
		snprintf(c.key_field, sizeof(c.key_field), "email");
		e.fb = fallback_new("ai", &c, e.redis, NULL);
	}
	step(&e, "x-4", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_DEFER, "nothing answers: defer");
	ASSERT_FALSE(a.has_score, "no score");
	ASSERT_HAS_STR(a.reason, "model: not configured", "reason");
out:
	teardown(&e);
}

static void subtest_ttl(void)
{
	struct env e = {0};
	struct fallback_answer a;

	if (setup(&e, 200))
		goto out;
	step(&e, "x-1", lead_x, &a);
	if (!open_breaker(&e))
		goto out;
	step(&e, "x-2", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_CACHE, "cached");
	usleep(350000);
	step(&e, "x-3", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_MODEL, "after the TTL the model answers");
out:
	teardown(&e);
}

/* Tenant A's answer for a lead is A's: B sending the same lead (same key field value) gets
 * the model or its own cached answer, never A's. */
static void subtest_per_tenant(void)
{
	struct env e = {0};
	struct fallback_answer a, first;
	struct fallback_stats st;

	if (setup(&e, 60000))
		goto out;
	step_of(&e, "acme", "x-1", lead_x, &first);
	ASSERT_EQ(first.source, FALLBACK_UPSTREAM, "upstream answers acme");
	if (!open_breaker(&e))
		goto out;
	step_of(&e, "beta", "x-b1", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_MODEL, "beta, same lead: not acme's cached answer");
	ASSERT_TRUE(a.score == model_of(&e.model, lead_x), "the model's score");
	ASSERT_HAS_STR(a.reason, "cache: miss", "beta's cache missed");
	step_of(&e, "acme", "x-2", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_CACHE, "acme still gets its own cached answer");
	ASSERT_TRUE(a.score == first.score, "acme's score");
	/* the tenant is a length-prefixed field: "acme" + "x@..." is not "acme:x" + "@..." */
	step_of(&e, "acme:x", "x-3", "{\"email\":\"@acme.example\"}", &a);
	ASSERT_EQ(a.source, FALLBACK_MODEL, "a name that would join differently: a miss");
	fallback_stats(e.fb, &st);
	ASSERT_EQ(st.cache_hits, 1, "one hit: acme's own");
out:
	teardown(&e);
}

/* Issue 18: both fallbacks are opt-in. A default chain given Redis and a model answers
 * nothing: no key_field, no cache lookup; model not switched on, no model answer. */
static void subtest_opt_in(void)
{
	struct env e = {0};
	struct fallback_config c;
	struct fallback_answer a;
	struct fallback_stats st;

	if (setup(&e, 60000))
		goto out;
	fallback_free(e.fb);
	fallback_config_default(&c);
	e.fb = fallback_new("ai", &c, e.redis, &e.model);
	step(&e, "x-1", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_UPSTREAM, "upstream answers");
	if (!open_breaker(&e))
		goto out;
	step(&e, "x-2", lead_x, &a);
	ASSERT_EQ(a.source, FALLBACK_DEFER, "default chain: defer, no cache, no model");
	ASSERT_HAS_STR(a.reason, "no key_field", "reason: no cache key configured");
	ASSERT_HAS_STR(a.reason, "model: switched off", "reason: model not on");
	fallback_stats(e.fb, &st);
	ASSERT_EQ(st.model, 0, "the model never answered");
	ASSERT_EQ(st.cache_hits + st.cache_misses, 0, "the cache was never read");
out:
	teardown(&e);
}

static void subtest_config(void)
{
	struct fallback_config c;
	char err[160] = "";

	fallback_config_default(&c);
	ASSERT_FALSE(c.use_model, "model off by default");
	ASSERT_STREQ(c.key_field, "", "no cache key by default");
	ASSERT_OK(fallback_config_set(&c, "model", "off", err, sizeof(err)), "model off");
	ASSERT_FALSE(c.use_model, "off");
	ASSERT_EQ(fallback_config_set(&c, "model", "maybe", err, sizeof(err)), -EINVAL, "bad");
	ASSERT_HAS_STR(err, "model = maybe", "names input");
	ASSERT_EQ(fallback_config_set(&c, "cache_ttl_ms", "0", err, sizeof(err)), -EINVAL, "ttl 0");
}

void test_upstream_fallback(void)
{
	if (test__start_subtest("config"))
		subtest_config();
	if (test__start_subtest("opt_in"))
		subtest_opt_in();
	if (test__start_subtest("chain"))
		subtest_chain();
	if (test__start_subtest("redis_down"))
		subtest_redis_down();
	if (test__start_subtest("ttl"))
		subtest_ttl();
	if (test__start_subtest("per_tenant"))
		subtest_per_tenant();
}
