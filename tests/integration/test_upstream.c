// SPDX-License-Identifier: MIT
/* test_upstream.c -- the upstream client against tools/mock-upstream on loopback: answers
 * and scores, keep-alive, timeouts, hangs, resets, down, bulkhead full, 429 + Retry-After
 * honoured, 4xx, slow calls, and the breaker opening under 50 % errors and half-opening */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "mockharness.h"
#include "test_progs.h"
#include "sink/upstream/upstream.h"

#define MS 1000000ULL

struct transitions {
	int n;
	enum breaker_state to[32];
};

static void on_transition(void *ctx, const char *name, enum breaker_state from,
			  enum breaker_state to, const struct breaker_snapshot *why)
{
	struct transitions *t = ctx;

	if (t->n < 32)
		t->to[t->n++] = to;
}

static struct upstream *make(const struct mock_upstream *m, struct upstream_config *cfg,
			     struct transitions *t)
{
	char err[256] = "";
	struct upstream *u = upstream_new(cfg, on_transition, t, err, sizeof(err));

	if (!u)
		fprintf(stdout, "upstream_new: %s\n", err);
	return u;
}

static void config_for(struct upstream_config *cfg, const struct mock_upstream *m)
{
	upstream_config_default(cfg, "ai", m->url);
	snprintf(cfg->score_field, sizeof(cfg->score_field), "score");
	cfg->timeout_ms = 1000;
}

static int call(struct upstream *u, const char *key, uint32_t attempt, struct upstream_result *r)
{
	struct upstream_request req = {
	    .payload = "{\"email\":\"jo@acme.example\",\"company_size\":40}",
	    .idempotency_key = key,
	    .tenant = "acme",
	    .type = "lead",
	    .attempt = attempt,
	};

	memset(r, 0, sizeof(*r));
	return upstream_call(u, &req, r);
}

static void subtest_ok_keepalive(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream *u;
	char key[32];

	config_for(&cfg, m);
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "ok-%d", i);
		if (!ASSERT_OK(call(u, key, 1, &r), "call"))
			break;
		ASSERT_EQ(r.outcome, UPSTREAM_OK, "ok");
		ASSERT_EQ(r.http_status, 200, "200");
		ASSERT_TRUE(r.has_score && r.score >= 0 && r.score < 1, "score read");
		ASSERT_HAS_STR(r.body, "\"applied\":1", "applied once");
		upstream_result_fini(&r);
		ASSERT_EQ(mock_upstream_applied(m, key), 1, "mock applied the key once");
	}
	/* 20 sequential calls over one kept-alive connection */
	ASSERT_EQ(mock_upstream_stat(m, "connections"), 1, "one connection");
	upstream_free(u);
}

static void expect_failure(struct upstream *u, const char *why, const char *reason, double max_ms)
{
	struct upstream_result r;
	double t0 = clock_mono_ms();

	if (!ASSERT_OK(call(u, why, 1, &r), why))
		return;
	ASSERT_EQ(r.outcome, UPSTREAM_FAILED, why);
	ASSERT_HAS_STR(r.reason, reason, why);
	ASSERT_TRUE(r.retryable, why);
	ASSERT_LT(clock_mono_ms() - t0, max_ms, why);
	upstream_result_fini(&r);
}

static void subtest_faults(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream *u;

	config_for(&cfg, m);
	cfg.timeout_ms = 150;
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	/* the bounds are loose (shared machine); without a timeout these calls take 3 s+ */
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=3000"), "slow mock");
	expect_failure(u, "latency", "timeout after 150 ms", 1500);
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=0&hang=1"), "hang");
	expect_failure(u, "hang", "timeout after 150 ms", 1500);
	ASSERT_OK(mock_upstream_faults(m, "hang=0&reset_rate=1"), "reset");
	expect_failure(u, "reset", "connection reset", 1500);
	ASSERT_OK(mock_upstream_faults(m, "reset_rate=0&error_rate=1&error_status=503"), "503");
	expect_failure(u, "503", "http 503", 1500);
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0&down=1"), "down");
	usleep(200000); /* the mock closes its listener within 50 ms */
	expect_failure(u, "down", "connect failed", 1500);
	ASSERT_OK(mock_upstream_faults(m, "down=0"), "up");
	usleep(200000);
	upstream_free(u);
}

static void subtest_client_error(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream_stats st;
	struct upstream *u;

	config_for(&cfg, m);
	cfg.breaker.minimum_calls = 2;
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "error_rate=1&error_status=422"), "422");
	for (int i = 0; i < 5; i++) {
		call(u, "bad", 1, &r);
		ASSERT_EQ(r.outcome, UPSTREAM_FAILED, "failed");
		ASSERT_FALSE(r.retryable, "a 4xx is not retried");
		upstream_result_fini(&r);
	}
	upstream_stats(u, &st);
	ASSERT_EQ(st.breaker.failures, 0, "a 4xx is the request's fault, not the upstream's");
	ASSERT_EQ(st.breaker.state, BREAKER_CLOSED, "closed");
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0"), "ok again");
	cfg.score_field[0] = 0;
	snprintf(cfg.score_field, sizeof(cfg.score_field), "result.score");
	upstream_free(u);
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	call(u, "noscore", 1, &r);
	ASSERT_EQ(r.outcome, UPSTREAM_FAILED, "answer without the score field");
	ASSERT_HAS_STR(r.reason, "result.score", "reason names the field");
	upstream_result_fini(&r);
	upstream_free(u);
}

/* Issue 18: statuses classified per upstream; the reason keeps the body's first bytes. */
static void subtest_status_classes(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream_stats st;
	struct upstream *u;
	char err[160];

	config_for(&cfg, m);
	cfg.recovering_window_ns = 0; /* the recovering rule is checked below on its own */
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "error_rate=1&error_status=404"), "404");
	call(u, "k404", 1, &r);
	ASSERT_FALSE(r.retryable, "default: 404 is not retryable");
	ASSERT_HAS_STR(r.reason, "http 404: {\"error\":\"injected\"}", "status and body kept");
	upstream_result_fini(&r);
	ASSERT_OK(mock_upstream_faults(m, "error_status=425"), "425");
	call(u, "k425", 1, &r);
	ASSERT_TRUE(r.retryable, "default: 425 Too Early is retryable");
	upstream_result_fini(&r);
	upstream_stats(u, &st);
	ASSERT_EQ(st.breaker.failures, 1, "only the 425 counted against the breaker");
	upstream_free(u);

	ASSERT_OK(upstream_config_set(&cfg, "retryable", "404, 408,425,429,5xx", err, sizeof(err)),
		  "add 404");
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "error_status=404"), "404");
	call(u, "k404b", 1, &r);
	ASSERT_TRUE(r.retryable, "404 configured retryable");
	upstream_result_fini(&r);
	upstream_stats(u, &st);
	ASSERT_EQ(st.breaker.failures, 1, "and a breaker failure (failures follow retryable)");
	upstream_free(u);

	ASSERT_OK(upstream_config_set(&cfg, "breaker_failures", "5xx", err, sizeof(err)), "bf");
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	call(u, "k404c", 1, &r);
	ASSERT_TRUE(r.retryable, "still retryable");
	upstream_result_fini(&r);
	upstream_stats(u, &st);
	ASSERT_EQ(st.breaker.failures, 0, "not a breaker failure when breaker_failures says so");
	upstream_free(u);

	/* recovering: a 404 right after the upstream was unreachable is a restart's 404 */
	config_for(&cfg, m);
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0&down=1"), "down");
	usleep(300000); /* the mock closes its listener within 50 ms */
	call(u, "kdown", 1, &r);
	ASSERT_HAS_STR(r.reason, "connect", "unreachable");
	upstream_result_fini(&r);
	ASSERT_OK(mock_upstream_faults(m, "down=0&error_rate=1&error_status=404"), "404 window");
	usleep(300000); /* and reopens it within 50 ms */
	call(u, "k404d", 1, &r);
	ASSERT_TRUE(r.retryable, "a 404 just after an outage is retried");
	ASSERT_HAS_STR(r.reason, "http 404 (recovering)", "reason says why");
	upstream_result_fini(&r);
	upstream_stats(u, &st);
	ASSERT_EQ(st.breaker.failures, 2, "and counts against the breaker (no early close)");
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0"), "ok");
	upstream_free(u);
	ASSERT_EQ(upstream_config_set(&cfg, "retryable", "4040", err, sizeof(err)), -EINVAL, "bad");
	ASSERT_HAS_STR(err, "\"4040\" is not a status", "names the item");
}

/* Issue 18: the mock behaves like a restarting receiver (down, then 404 while it registers
 * its webhooks, then OK) and can acknowledge then lose; calls carry a stable Webhook-Id. */
static void subtest_mock_receiver_faults(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream *u;
	char id1[64] = "", id2[64] = "", id3[64] = "";
	double t0;

	config_for(&cfg, m);
	cfg.score_field[0] = 0;
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	mock_upstream_control(m, "POST", "/reset", NULL, 0);
	t0 = clock_mono_ms();
	ASSERT_OK(mock_upstream_faults(m, "restart_down_ms=1000&restart_404_ms=1000"), "restart");
	usleep(300000);
	call(u, "rs-1", 1, &r);
	ASSERT_HAS_STR(r.reason, "connect", "down first");
	upstream_result_fini(&r);
	while (clock_mono_ms() - t0 < 1400)
		usleep(50000);
	call(u, "rs-2", 1, &r);
	ASSERT_EQ(r.http_status, 404, "then 404");
	ASSERT_HAS_STR(r.reason, "not registered", "with n8n's body");
	ASSERT_TRUE(r.retryable, "retried: the upstream was just unreachable");
	upstream_result_fini(&r);
	while (clock_mono_ms() - t0 < 2400)
		usleep(50000);
	call(u, "rs-3", 1, &r);
	ASSERT_EQ(r.outcome, UPSTREAM_OK, "then OK");
	upstream_result_fini(&r);
	ASSERT_EQ(mock_upstream_stat(m, "not_ready"), 1, "one 404 counted");

	ASSERT_OK(mock_upstream_faults(m, "lose_rate=1"), "lose");
	call(u, "lost-1", 1, &r);
	ASSERT_EQ(r.outcome, UPSTREAM_OK, "acknowledged");
	upstream_result_fini(&r);
	ASSERT_EQ(mock_upstream_key_count(m, "lost-1", "applied"), 0, "but not applied");
	ASSERT_EQ(mock_upstream_key_count(m, "lost-1", "lost"), 1, "counted lost");
	ASSERT_OK(mock_upstream_faults(m, "lose_rate=0"), "keep");

	/* Webhook-Id: the same for every attempt of one event, another for another tenant */
	call(u, "wid", 1, &r);
	upstream_result_fini(&r);
	mock_upstream_key_str(m, "wid", "webhook_id", id1, sizeof(id1));
	call(u, "wid", 2, &r);
	upstream_result_fini(&r);
	mock_upstream_key_str(m, "wid", "webhook_id", id2, sizeof(id2));
	ASSERT_HAS_STR(id1, "msg_", "Webhook-Id sent");
	ASSERT_EQ(strlen(id1), 36, "msg_ + 32 hex");
	ASSERT_STREQ(id1, id2, "stable across attempts");
	{
		struct upstream_request req = {
		    .payload = "{}", .idempotency_key = "wid", .tenant = "other", .attempt = 1};

		upstream_call(u, &req, &r);
		upstream_result_fini(&r);
		mock_upstream_key_str(m, "wid", "webhook_id", id3, sizeof(id3));
		ASSERT_TRUE(strcmp(id1, id3) != 0, "another tenant's event, another id");
	}
	upstream_free(u);
}

struct async_done {
	int n;
	struct upstream_result r[4];
};

static void collect(void *ctx, struct upstream_result *res)
{
	struct async_done *d = ctx;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	d->r[d->n] = *res;
	__atomic_fetch_add(&d->n, 1, __ATOMIC_SEQ_CST);
}

static void subtest_bulkhead(const struct mock_upstream *m)
{
	struct upstream_request req = {.payload = "{}", .idempotency_key = "bh", .attempt = 1};
	struct async_done d = {0};
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream_stats st;
	struct upstream *u;
	double t0;

	config_for(&cfg, m);
	cfg.max_concurrent = 2;
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=400"), "slow mock");
	ASSERT_OK(upstream_call_async(u, &req, collect, &d), "first");
	ASSERT_OK(upstream_call_async(u, &req, collect, &d), "second");
	t0 = clock_mono_ms();
	ASSERT_OK(call(u, "third", 1, &r), "third");
	ASSERT_EQ(r.outcome, UPSTREAM_BULKHEAD_FULL, "third refused");
	ASSERT_HAS_STR(r.reason, "bulkhead full (2 calls in flight)", "reason");
	ASSERT_LT(clock_mono_ms() - t0, 200, "refused at once, not after the 400 ms calls");
	upstream_stats(u, &st);
	ASSERT_EQ(st.in_flight, 2, "two in flight");
	ASSERT_EQ(st.bulkhead_full, 1, "counted");
	for (int i = 0; i < 300 && __atomic_load_n(&d.n, __ATOMIC_SEQ_CST) < 2; i++)
		usleep(10000);
	if (ASSERT_EQ(d.n, 2, "both finished")) {
		ASSERT_EQ(d.r[0].outcome, UPSTREAM_OK, "first ok");
		ASSERT_EQ(d.r[1].outcome, UPSTREAM_OK, "second ok");
		upstream_result_fini(&d.r[0]);
		upstream_result_fini(&d.r[1]);
	}
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=0"), "fast mock");
	ASSERT_OK(call(u, "fourth", 1, &r), "fourth");
	ASSERT_EQ(r.outcome, UPSTREAM_OK, "slot free again");
	upstream_result_fini(&r);
	upstream_free(u);
}

static void subtest_retry_after(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r;
	struct retry_decision d;
	struct upstream *u;
	char q[160], date[64];
	time_t later = time(NULL) + 3;
	double t0;

	config_for(&cfg, m);
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "r429_rate=1&retry_after=1"), "429");
	t0 = clock_mono_ms();
	ASSERT_OK(call(u, "ra", 1, &r), "call");
	ASSERT_EQ(r.http_status, 429, "429");
	ASSERT_EQ(r.retry_after_ns, 1000 * MS, "Retry-After: 1 read");
	upstream_retry_decide(u, &r, 1, &d);
	upstream_result_fini(&r);
	ASSERT_EQ(d.verdict, RETRY_AFTER_DELAY, "retry");
	ASSERT_GE(d.delay_ns, 1000 * MS, "not before Retry-After");
	ASSERT_STREQ(d.reason, "retry-after", "because of Retry-After");
	/* honour it: wait, then the rate limit is over */
	usleep((useconds_t)(d.delay_ns / 1000));
	ASSERT_OK(mock_upstream_faults(m, "r429_rate=0"), "limit over");
	ASSERT_OK(call(u, "ra", 2, &r), "retry");
	ASSERT_EQ(r.outcome, UPSTREAM_OK, "retry answered");
	ASSERT_GE(clock_mono_ms() - t0, 1000, "the retry came after Retry-After");
	upstream_result_fini(&r);
	ASSERT_EQ(mock_upstream_applied(m, "ra"), 1, "applied once");

	/* the HTTP-date form, on a 503 */
	strftime(date, sizeof(date), "%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT", gmtime(&later));
	snprintf(q, sizeof(q), "error_rate=1&error_status=503&retry_after=%s", date);
	ASSERT_OK(mock_upstream_faults(m, q), "503 with a date");
	ASSERT_OK(call(u, "ra-date", 1, &r), "call");
	ASSERT_EQ(r.http_status, 503, "503");
	ASSERT_GE(r.retry_after_ns, 1000 * MS, "date read (>= 1 s ahead)");
	ASSERT_LE(r.retry_after_ns, 3000 * MS, "date read (<= 3 s ahead)");
	upstream_result_fini(&r);
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0"), "ok");
	upstream_free(u);
}

static void subtest_slow(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream *u;

	config_for(&cfg, m);
	cfg.breaker.slow_call_ns = 100 * MS;
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=150"), "150 ms");
	ASSERT_OK(call(u, "slow", 1, &r), "call");
	ASSERT_EQ(r.outcome, UPSTREAM_SLOW, "answered, but slow");
	ASSERT_TRUE(r.has_score, "the answer is still usable");
	upstream_result_fini(&r);
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=0"), "fast");
	upstream_free(u);
}

/* Call until the breaker refuses, at most max calls; returns the calls made. */
static int calls_until_open(struct upstream *u, int max)
{
	struct upstream_result r;
	char key[32];
	int i;

	for (i = 0; i < max; i++) {
		snprintf(key, sizeof(key), "b-%d", i);
		call(u, key, 1, &r);
		upstream_result_fini(&r);
		if (r.outcome == UPSTREAM_REJECTED)
			break;
	}
	return i;
}

static void subtest_breaker(const struct mock_upstream *m)
{
	struct transitions t = {0};
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream *u;
	long long before;
	int n;

	config_for(&cfg, m);
	cfg.breaker.window_size = 10;
	cfg.breaker.minimum_calls = 10;
	cfg.breaker.failure_rate_pct = 50;
	cfg.breaker.open_wait_ns = 300 * MS;
	cfg.breaker.half_open_calls = 2;
	u = make(m, &cfg, &t);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0.5&error_status=500"), "50 % errors");
	/* a window of 10 at p = 0.5 reaches 5 failures within 400 calls with near certainty */
	n = calls_until_open(u, 400);
	ASSERT_LT(n, 400, "breaker opened");
	ASSERT_GE(n, 10, "not before minimum_calls");
	if (!ASSERT_GE(t.n, 1, "transition reported"))
		goto out;
	ASSERT_EQ(t.to[0], BREAKER_OPEN, "to open");
	before = mock_upstream_stat(m, "received");
	for (int i = 0; i < 20; i++) {
		call(u, "while-open", 1, &r);
		ASSERT_EQ(r.outcome, UPSTREAM_REJECTED, "open: rejected");
		upstream_result_fini(&r);
	}
	ASSERT_EQ(mock_upstream_stat(m, "received"), before, "no request reached the mock");
	{
		struct upstream_stats st0, st1;
		struct retry_decision d;

		call(u, "rejected", 1, &r);
		upstream_stats(u, &st0);
		upstream_retry_decide(u, &r, 1, &d);
		upstream_stats(u, &st1);
		upstream_result_fini(&r);
		ASSERT_EQ(d.verdict, RETRY_AFTER_DELAY, "rejected: retry later");
		ASSERT_STREQ(d.reason, "breaker open", "because the breaker is open");
		ASSERT_GT(d.delay_ns, 0, "after the open wait");
		ASSERT_LE(d.delay_ns, 375 * MS, "the open wait, spread by at most a quarter");
		ASSERT_EQ(st1.budget.retries, st0.budget.retries, "no retry budget spent");
		upstream_retry_decide(u, &r, cfg.retry.max_attempts, &d);
		ASSERT_EQ(d.verdict, RETRY_AFTER_DELAY,
			  "a rejected call spends no attempt: never given up for attempts");
	}
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0"), "mock healthy again");
	usleep(350000);
	for (int i = 0; i < 2; i++) {
		call(u, "probe", 1, &r);
		ASSERT_EQ(r.outcome, UPSTREAM_OK, "probe answered");
		upstream_result_fini(&r);
	}
	ASSERT_EQ(t.n, 3, "open, half-open, closed");
	ASSERT_EQ(t.to[1], BREAKER_HALF_OPEN, "half-open");
	ASSERT_EQ(t.to[2], BREAKER_CLOSED, "closed");
out:
	upstream_free(u);
}

/* Configured headers (an API key) and method reach the upstream; a 401 is not retried. */
static void subtest_auth_method(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r;
	struct upstream *u;
	char err[200] = "";

	ASSERT_OK(mock_upstream_faults(m, "require_auth=s3cret"), "mock wants a token");
	config_for(&cfg, m);
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		goto out;
	call(u, "no-token", 1, &r);
	ASSERT_EQ(r.http_status, 401, "401 without the header");
	ASSERT_FALSE(r.retryable, "a 401 is not retried");
	upstream_result_fini(&r);
	upstream_free(u);
	ASSERT_OK(
	    upstream_config_set(&cfg, "header", "Authorization: Bearer s3cret", err, sizeof(err)),
	    "header");
	ASSERT_OK(upstream_config_set(&cfg, "method", "PUT", err, sizeof(err)), "method");
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		goto out;
	call(u, "token", 1, &r);
	ASSERT_EQ(r.outcome, UPSTREAM_OK, "accepted with the header");
	ASSERT_HAS_STR(r.body, "\"method\":\"PUT\"", "sent as PUT");
	upstream_result_fini(&r);
	upstream_free(u);
out:
	mock_upstream_faults(m, "require_auth=");
}

/* Freeing an upstream with calls in flight finishes them, without waiting for the answers. */
static void subtest_shutdown(const struct mock_upstream *m)
{
	struct upstream_request req = {.payload = "{}", .idempotency_key = "sd", .attempt = 1};
	struct async_done d = {0};
	struct upstream_config cfg;
	struct upstream *u;
	double t0;

	config_for(&cfg, m);
	cfg.timeout_ms = 10000;
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=5000"), "slow mock");
	ASSERT_OK(upstream_call_async(u, &req, collect, &d), "first");
	req.idempotency_key = "sd-2"; /* distinct keys: the mock applies both 5 s later */
	ASSERT_OK(upstream_call_async(u, &req, collect, &d), "second");
	usleep(100000); /* both requests are at the mock */
	t0 = clock_mono_ms();
	upstream_free(u);
	ASSERT_LT(clock_mono_ms() - t0, 2000, "free did not wait for the 5 s answers");
	if (ASSERT_EQ(d.n, 2, "both callbacks ran")) {
		for (int i = 0; i < 2; i++) {
			ASSERT_EQ(d.r[i].outcome, UPSTREAM_FAILED, "failed");
			ASSERT_STREQ(d.r[i].reason, "shutting down", "reason");
			upstream_result_fini(&d.r[i]);
		}
	}
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=0"), "fast");
}

/* The mock as a CRM honouring Idempotency-Key: a retried key is answered, not re-applied. */
static void subtest_mock_dedupe(const struct mock_upstream *m)
{
	struct upstream_config cfg;
	struct upstream_result r1, r2;
	struct upstream *u;

	config_for(&cfg, m);
	u = make(m, &cfg, NULL);
	if (!ASSERT_OK_PTR(u, "new"))
		return;
	mock_upstream_control(m, "POST", "/reset", NULL, 0);
	ASSERT_OK(mock_upstream_faults(m, "dedupe=1"), "dedupe on");
	call(u, "dd", 1, &r1);
	call(u, "dd", 2, &r2);
	ASSERT_HAS_STR(r1.body, "\"replayed\":false", "first applied");
	ASSERT_HAS_STR(r2.body, "\"replayed\":true", "retry replayed");
	ASSERT_HAS_STR(r2.body, "\"id\":\"m-1\"", "with the original id");
	ASSERT_TRUE(r1.score == r2.score, "same answer");
	ASSERT_EQ(mock_upstream_applied(m, "dd"), 1, "applied once");
	ASSERT_EQ(mock_upstream_stat(m, "replayed"), 1, "one replay counted");
	ASSERT_EQ(mock_upstream_stat(m, "dup_keys"), 0, "no duplicate side effect");
	upstream_result_fini(&r1);
	upstream_result_fini(&r2);
	mock_upstream_faults(m, "dedupe=0");
	upstream_free(u);
}

static void subtest_config(void)
{
	struct upstream_config cfg;
	char err[256] = "";

	upstream_config_default(&cfg, "crm", "ftp://x");
	errno = 0;
	ASSERT_FALSE(upstream_new(&cfg, NULL, NULL, err, sizeof(err)), "bad url refused");
	ASSERT_HAS_STR(err, "url = ftp://x", "names the url");
	ASSERT_OK(upstream_config_set(&cfg, "breaker.open_wait_ms", "2000", err, sizeof(err)),
		  "breaker key");
	ASSERT_EQ(cfg.breaker.open_wait_ns, 2000 * MS, "set");
	ASSERT_EQ(upstream_config_set(&cfg, "breaker.failure_rate", "150", err, sizeof(err)),
		  -EINVAL, "bad breaker value");
	ASSERT_HAS_STR(err, "breaker.failure_rate = 150: expected a whole number in 1-100",
		       "names the key as written");
	ASSERT_OK(upstream_config_set(&cfg, "retry.max_attempts", "5", err, sizeof(err)), "retry");
	ASSERT_EQ(upstream_config_set(&cfg, "template", "{\"x\":{{body}}}", err, sizeof(err)),
		  -EINVAL, "unknown placeholder");
	ASSERT_HAS_STR(err, "{{body}}", "names the placeholder");
	ASSERT_EQ(upstream_config_set(&cfg, "max_concurrent", "0", err, sizeof(err)), -EINVAL,
		  "bulkhead 0");
	ASSERT_EQ(upstream_config_set(&cfg, "colour", "x", err, sizeof(err)), -ENOENT, "unknown");
	ASSERT_EQ(upstream_config_set(&cfg, "method", "GET", err, sizeof(err)), -EINVAL, "GET");
	ASSERT_EQ(upstream_config_set(&cfg, "header", "no colon", err, sizeof(err)), -EINVAL,
		  "header without a name");
	ASSERT_HAS_STR(err, "Name: value", "says the form");
	ASSERT_EQ(upstream_config_set(&cfg, "header", "X-A: 1\r\nX-B: 2", err, sizeof(err)),
		  -EINVAL, "header injection refused");
	for (int i = 0; i < UPSTREAM_MAX_HEADERS; i++)
		upstream_config_set(&cfg, "header", "X-N: 1", err, sizeof(err));
	ASSERT_EQ(upstream_config_set(&cfg, "header", "X-N: 1", err, sizeof(err)), -E2BIG,
		  "ninth header");
}

void test_upstream(void)
{
	struct mock_upstream m;
	int err;

	if (test__start_subtest("config"))
		subtest_config();
	err = mock_upstream_start(&m, NULL);
	if (err == -ENOENT) {
		test__skip("mock-upstream not built (make)");
		return;
	}
	if (!ASSERT_OK(err, "start mock"))
		return;
	if (test__start_subtest("ok_keepalive"))
		subtest_ok_keepalive(&m);
	if (test__start_subtest("faults"))
		subtest_faults(&m);
	if (test__start_subtest("client_error"))
		subtest_client_error(&m);
	if (test__start_subtest("status_classes"))
		subtest_status_classes(&m);
	if (test__start_subtest("mock_receiver_faults"))
		subtest_mock_receiver_faults(&m);
	if (test__start_subtest("bulkhead"))
		subtest_bulkhead(&m);
	if (test__start_subtest("retry_after"))
		subtest_retry_after(&m);
	if (test__start_subtest("slow"))
		subtest_slow(&m);
	if (test__start_subtest("breaker"))
		subtest_breaker(&m);
	if (test__start_subtest("auth_method"))
		subtest_auth_method(&m);
	if (test__start_subtest("shutdown"))
		subtest_shutdown(&m);
	if (test__start_subtest("mock_dedupe"))
		subtest_mock_dedupe(&m);
	mock_upstream_stop(&m);
}
