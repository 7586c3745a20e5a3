// SPDX-License-Identifier: MIT
/* test_upstream_pools.c -- many threads against upstreams on the mock: the bulkhead holds
 * from the server's side, a slow upstream fills only its own pool, and a burst with 30 %
 * failures retried under the budget applies every event at most once */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "mockharness.h"
#include "test_progs.h"
#include "sink/upstream/upstream.h"

#define REFILL_PER_S 50

#define MS 1000000ULL

static struct upstream *make(const char *name, const struct mock_upstream *m,
			     uint32_t max_concurrent)
{
	struct upstream_config cfg;
	char err[256] = "";
	struct upstream *u;

	upstream_config_default(&cfg, name, m->url);
	cfg.max_concurrent = max_concurrent;
	cfg.timeout_ms = 2000;
	/* these tests are about pools and retries: keep the breaker out of the way */
	cfg.breaker.window_size = 1000;
	cfg.breaker.minimum_calls = 1000;
	cfg.retry.base_ns = 1 * MS;
	cfg.retry.cap_ns = 8 * MS;
	cfg.retry.budget_refill_per_s = REFILL_PER_S;
	u = upstream_new(&cfg, NULL, NULL, err, sizeof(err));
	if (!u)
		fprintf(stdout, "upstream_new: %s\n", err);
	return u;
}

struct worker {
	struct upstream *u;
	int id, events;
	int ok, full, gave_up, other, budget_waits;
	char reasons[160];
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	struct upstream_result r;
	char key[32];

	for (int i = 0; i < w->events; i++) {
		struct upstream_request req = {
		    .payload = "{}", .idempotency_key = key, .attempt = 1};

		snprintf(key, sizeof(key), "h-%d-%d", w->id, i);
		upstream_call(w->u, &req, &r);
		w->ok += r.outcome == UPSTREAM_OK;
		w->full += r.outcome == UPSTREAM_BULKHEAD_FULL;
		w->other += r.outcome != UPSTREAM_OK && r.outcome != UPSTREAM_BULKHEAD_FULL;
		upstream_result_fini(&r);
	}
	return NULL;
}

static void subtest_bulkhead_server_side(const struct mock_upstream *m)
{
	struct worker w[8];
	pthread_t t[8];
	struct upstream *u = make("ai", m, 3);
	int ok = 0, full = 0, other = 0;

	if (!ASSERT_OK_PTR(u, "new"))
		return;
	mock_upstream_control(m, "POST", "/reset", NULL, 0);
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=10&jitter_ms=10"), "10-20 ms answers");
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){.u = u, .id = i, .events = 25};
		pthread_create(&t[i], NULL, hammer, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok, full += w[i].full, other += w[i].other;
	}
	ASSERT_LE(mock_upstream_stat(m, "max_inflight"), 3, "never more than 3 at the mock");
	ASSERT_EQ(ok + full, 200, "every call answered or refused");
	ASSERT_EQ(other, 0, "nothing else");
	ASSERT_GT(full, 0, "8 callers on 3 slots: some refused");
	ASSERT_EQ(mock_upstream_stat(m, "received"), ok, "refused calls never reached the mock");
	ASSERT_OK(mock_upstream_faults(m, "latency_ms=0&jitter_ms=0"), "fast again");
	upstream_free(u);
}

struct collect {
	int n;
	struct upstream_result r[8];
};

static void collect(void *ctx, struct upstream_result *res)
{
	struct collect *c = ctx;
	int i = __atomic_load_n(&c->n, __ATOMIC_SEQ_CST);

	c->r[i] = *res;
	__atomic_store_n(&c->n, i + 1, __ATOMIC_SEQ_CST);
}

static void subtest_isolation(const struct mock_upstream *ai_mock)
{
	struct upstream_request req = {.payload = "{}", .idempotency_key = "crm", .attempt = 1};
	struct upstream *ai = NULL, *crm = NULL;
	struct mock_upstream crm_mock = {0};
	struct upstream_result r;
	struct collect c = {0};
	double worst = 0, t0;
	int full = 0;

	if (!ASSERT_OK(mock_upstream_start(&crm_mock, "latency_ms=800"), "crm mock"))
		return;
	ai = make("ai", ai_mock, 4);
	crm = make("crm", &crm_mock, 2);
	if (!ASSERT_OK_PTR(ai, "ai") || !ASSERT_OK_PTR(crm, "crm"))
		goto out;
	/* the slow CRM's pool fills: 2 in flight, the rest refused at once (synchronously) */
	for (int i = 0; i < 6; i++)
		upstream_call_async(crm, &req, collect, &c);
	for (int i = 0; i < c.n; i++) {
		full += c.r[i].outcome == UPSTREAM_BULKHEAD_FULL;
		upstream_result_fini(&c.r[i]);
	}
	ASSERT_EQ(full, 4, "crm pool full after 2");
	/* meanwhile AI calls go through at full speed */
	for (int i = 0; i < 20; i++) {
		t0 = clock_mono_ms();
		ASSERT_OK(upstream_call(ai,
					&(struct upstream_request){
					    .payload = "{}", .idempotency_key = "ai", .attempt = 1},
					&r),
			  "ai call");
		ASSERT_EQ(r.outcome, UPSTREAM_OK, "ai answered");
		upstream_result_fini(&r);
		worst = clock_mono_ms() - t0 > worst ? clock_mono_ms() - t0 : worst;
	}
	/* an AI call waiting for the CRM would take 800 ms; the bound is loose for a shared box */
	ASSERT_LT(worst, 400, "no ai call waited for the crm");
	for (int i = 0; i < 300 && __atomic_load_n(&c.n, __ATOMIC_SEQ_CST) < 6; i++)
		usleep(10000);
	ASSERT_EQ(c.n, 6, "crm calls finished");
	for (int i = 4; i < c.n; i++) {
		ASSERT_EQ(c.r[i].outcome, UPSTREAM_OK, "slow crm answered");
		upstream_result_fini(&c.r[i]);
	}
out:
	upstream_free(ai);
	upstream_free(crm);
	mock_upstream_stop(&crm_mock);
}

/* One event, retried by the policy until it is answered or given up. */
static void process(struct worker *w, const char *key)
{
	struct upstream_request req = {.payload = "{}", .idempotency_key = key};
	struct upstream_result r;
	struct retry_decision d;

	for (req.attempt = 1;;) {
		bool sent;

		upstream_call(w->u, &req, &r);
		if (r.outcome == UPSTREAM_OK) {
			w->ok++;
			break;
		}
		sent = r.outcome == UPSTREAM_FAILED;
		w->budget_waits += r.outcome == UPSTREAM_BUDGET_WAIT;
		upstream_retry_decide(w->u, &r, req.attempt, &d);
		upstream_result_fini(&r);
		req.attempt += sent; /* a budget wait sent nothing: not an attempt */
		if (d.verdict == RETRY_GIVE_UP) {
			w->gave_up++;
			if (!strstr(w->reasons, d.reason))
				snprintf(w->reasons + strlen(w->reasons),
					 sizeof(w->reasons) - strlen(w->reasons), "%s;", d.reason);
			return;
		}
		usleep((useconds_t)(d.delay_ns / 1000));
	}
	upstream_result_fini(&r);
}

static void *burst(void *arg)
{
	struct worker *w = arg;
	char key[32];

	for (int i = 0; i < w->events; i++) {
		snprintf(key, sizeof(key), "lead-%d-%d", w->id, i);
		process(w, key);
	}
	return NULL;
}

static void subtest_burst_no_duplicates(const struct mock_upstream *m)
{
	struct upstream *u = make("ai", m, 8);
	struct upstream_stats st;
	struct worker w[4];
	pthread_t t[4];
	int ok = 0, gave_up = 0, waits = 0;
	char key[32];
	double t0 = clock_mono_ms(), secs;

	if (!ASSERT_OK_PTR(u, "new"))
		return;
	mock_upstream_control(m, "POST", "/reset", NULL, 0);
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0.3&error_status=503&retry_after=0"),
		  "30 % failures");
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.u = u, .id = i, .events = 50};
		pthread_create(&t[i], NULL, burst, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok, gave_up += w[i].gave_up, waits += w[i].budget_waits;
		if (w[i].reasons[0])
			fprintf(stdout, "worker %d gave up: %s\n", i, w[i].reasons);
	}
	upstream_stats(u, &st);
	secs = (clock_mono_ms() - t0) / 1000 + 0.1;
	/* the budget limits the rate of retries; it never gives an event up (issue 18) */
	ASSERT_EQ(ok, 200, "every event answered");
	ASSERT_EQ(gave_up, 0, "none given up for the budget");
	ASSERT_GT(waits, 0, "some retries waited for a token (else this proves nothing)");
	ASSERT_GT(st.budget.retries, 0, "retries happened");
	ASSERT_LE(st.budget.retries, 200 / 10 + 10 + (uint64_t)(REFILL_PER_S * secs),
		  "retries <= 10 % of calls + burst + refill x time");
	ASSERT_EQ(mock_upstream_stat(m, "dup_keys"), 0, "no key applied twice");
	ASSERT_EQ(mock_upstream_stat(m, "applied"), ok, "one applied request per answered event");
	for (int i = 0; i < 4; i++) {
		for (int j = 0; j < 50; j += 7) {
			snprintf(key, sizeof(key), "lead-%d-%d", i, j);
			ASSERT_LE(mock_upstream_applied(m, key), 1, "at most once");
		}
	}
	ASSERT_OK(mock_upstream_faults(m, "error_rate=0"), "healthy");
	upstream_free(u);
}

void test_upstream_pools(void)
{
	struct mock_upstream m;
	int err = mock_upstream_start(&m, NULL);

	if (err == -ENOENT) {
		test__skip("mock-upstream not built (make)");
		return;
	}
	if (!ASSERT_OK(err, "start mock"))
		return;
	if (test__start_subtest("bulkhead_server_side"))
		subtest_bulkhead_server_side(&m);
	if (test__start_subtest("isolation"))
		subtest_isolation(&m);
	if (test__start_subtest("burst_no_duplicates"))
		subtest_burst_no_duplicates(&m);
	mock_upstream_stop(&m);
}
