// SPDX-License-Identifier: MIT
/* test_retry.c -- full-jitter bounds, the retry budget, Retry-After parsing and decisions */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "lib/array_size.h"
#include "sink/upstream/retry.h"
#include "test_progs.h"

#define MS  1000000ULL
#define SEC 1000000000ULL

static struct retry_policy policy(void)
{
	struct retry_policy p;

	retry_policy_default(&p);
	p.base_ns = 100 * MS;
	p.cap_ns = 2 * SEC;
	p.budget_refill_per_s = 0; /* deposits only: exact counts below */
	return p;
}

static void subtest_jitter_bounds(void)
{
	struct retry_policy p = policy();
	uint64_t ceil[] = {0, 100 * MS, 200 * MS, 400 * MS, 800 * MS, 1600 * MS, 2 * SEC, 2 * SEC};

	for (uint32_t n = 1; n < ARRAY_SIZE(ceil); n++) {
		uint64_t max = 0;

		ASSERT_EQ(retry_backoff_ns(&p, n, 0), 0, "rnd 0 -> 0");
		ASSERT_EQ(retry_backoff_ns(&p, n, ceil[n]), ceil[n], "rnd = ceiling -> ceiling");
		for (int i = 0; i < 2000; i++) {
			uint64_t d = retry_backoff_ns(&p, n, retry_rand());

			max = d > max ? d : max;
		}
		if (!ASSERT_LE(max, ceil[n], "never above the ceiling"))
			return;
		/* 2000 uniform draws: the largest is within 1 % of the top with p > 1 - 1e-8 */
		ASSERT_GT(max, ceil[n] / 100 * 99, "reaches near the ceiling");
	}
	ASSERT_LE(retry_backoff_ns(&p, 200, UINT64_MAX), 2 * SEC, "retry 200 saturates at cap");
}

static void subtest_jitter_mean(void)
{
	struct retry_policy p = policy();
	double sum = 0;
	int n = 20000;

	for (int i = 0; i < n; i++)
		sum += (double)retry_backoff_ns(&p, 3, retry_rand());
	/* uniform on [0, 400 ms]: mean 200 ms, standard error ~0.8 ms */
	ASSERT_NEAR_PCT(sum / n, 200.0 * MS, 3, "mean is half the ceiling");
}

static void subtest_budget(void)
{
	struct retry_policy p = policy();
	struct retry_budget b;
	int retries = 0;

	p.budget_pct = 10;
	p.budget_burst = 2;
	retry_budget_init(&b, &p);
	ASSERT_TRUE(retry_budget_withdraw(&b), "burst 1");
	ASSERT_TRUE(retry_budget_withdraw(&b), "burst 2");
	ASSERT_FALSE(retry_budget_withdraw(&b), "empty");
	for (int i = 0; i < 9; i++)
		retry_budget_on_call(&b);
	ASSERT_FALSE(retry_budget_withdraw(&b), "9 calls earn 0.9 retries");
	retry_budget_on_call(&b);
	ASSERT_TRUE(retry_budget_withdraw(&b), "10 calls earn 1 retry");

	/* every call fails and wants a retry: retries <= 10 % of calls + burst */
	retry_budget_init(&b, &p);
	for (int i = 0; i < 1000; i++) {
		retry_budget_on_call(&b);
		retries += retry_budget_withdraw(&b);
	}
	/* the first call's deposit is lost to the full bucket: 2 + 99.9 -> 101 */
	ASSERT_LE(retries, 1000 / 10 + 2, "retries <= 10 % of calls + burst");
	ASSERT_EQ(retries, 101, "exactly the tokens earned");
	ASSERT_EQ(b.retries, 101, "counted");
	ASSERT_EQ(b.denied, 899, "denied counted");

	/* a long quiet success streak banks at most the burst */
	retry_budget_init(&b, &p);
	for (int i = 0; i < 100000; i++)
		retry_budget_on_call(&b);
	retries = 0;
	for (int i = 0; i < 10; i++)
		retries += retry_budget_withdraw(&b);
	ASSERT_EQ(retries, 2, "bank capped at the burst");
}

static void subtest_retry_after(void)
{
	time_t date = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
	uint64_t d = 1;

	ASSERT_OK(retry_after_parse("120", 0, &d), "delta");
	ASSERT_EQ(d, 120 * SEC, "120 s");
	ASSERT_OK(retry_after_parse(" 0 ", 0, &d), "zero with spaces");
	ASSERT_EQ(d, 0, "0 s");
	ASSERT_OK(retry_after_parse("99999999999999999999999", 0, &d), "huge saturates");
	ASSERT_EQ(d, (uint64_t)UINT32_MAX * SEC, "saturated");
	ASSERT_OK(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", date - 30, &d), "imf");
	ASSERT_EQ(d, 30 * SEC, "imf 30 s ahead");
	ASSERT_OK(retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", date - 7, &d), "rfc850");
	ASSERT_EQ(d, 7 * SEC, "rfc850 7 s ahead");
	ASSERT_OK(retry_after_parse("Sun Nov  6 08:49:37 1994", date - 1, &d), "asctime");
	ASSERT_EQ(d, 1 * SEC, "asctime 1 s ahead");
	ASSERT_OK(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", date + 100, &d), "past");
	ASSERT_EQ(d, 0, "past date: retry now");
	ASSERT_EQ(retry_after_parse("-5", 0, &d), -EINVAL, "negative");
	ASSERT_EQ(retry_after_parse("5s", 0, &d), -EINVAL, "unit");
	ASSERT_EQ(retry_after_parse("soon", 0, &d), -EINVAL, "word");
	ASSERT_EQ(retry_after_parse("", 0, &d), -EINVAL, "empty");
	ASSERT_EQ(retry_after_parse("Sun, 06 Nov 1994 08:49:37 CET", 0, &d), -EINVAL, "not GMT");
}

static void subtest_decide(void)
{
	struct retry_policy p = policy();
	struct retry_budget b;
	struct retry_decision d;

	p.max_attempts = 3;
	p.retry_after_max_ns = 30 * SEC;
	retry_budget_init(&b, &p);

	retry_decide(&p, &b, 1, true, 503, 2 * SEC, 0, &d);
	ASSERT_EQ(d.verdict, RETRY_AFTER_DELAY, "503 retried");
	ASSERT_EQ(d.delay_ns, 2 * SEC, "after Retry-After");
	ASSERT_STREQ(d.reason, "retry-after", "reason");
	retry_decide(&p, &b, 1, true, 429, 1, UINT64_MAX - 1, &d);
	ASSERT_GE(d.delay_ns, 1, "at least Retry-After");
	retry_decide(&p, &b, 1, true, 500, 20 * SEC, 7, &d);
	ASSERT_EQ(d.verdict, RETRY_AFTER_DELAY, "500 retried");
	ASSERT_EQ(d.delay_ns, 7, "Retry-After on a 500 is not honoured: backoff only");
	retry_decide(&p, &b, 1, true, 429, 60 * SEC, 0, &d);
	ASSERT_EQ(d.verdict, RETRY_AFTER_DELAY, "Retry-After beyond the in-memory max: waited");
	ASSERT_EQ(d.delay_ns, 60 * SEC, "the whole Retry-After");
	ASSERT_STREQ(d.reason, "retry-after (long: parked)", "reason");
	retry_decide(&p, &b, 3, true, 500, 0, 0, &d);
	ASSERT_EQ(d.verdict, RETRY_GIVE_UP, "3 of 3 attempts made");
	ASSERT_STREQ(d.reason, "attempts exhausted", "reason");
	retry_decide(&p, &b, 1, false, 400, 0, 0, &d);
	ASSERT_STREQ(d.reason, "not retryable", "400 not retried");
	/* the budget limits the rate of retries, it never gives an event up (issue 18) */
	p.budget_burst = 0;
	retry_budget_init(&b, &p);
	retry_decide(&p, &b, 1, true, 500, 0, 0, &d);
	ASSERT_EQ(d.verdict, RETRY_AFTER_DELAY, "empty budget: still a retry");
	ASSERT_EQ(b.denied, 0, "the decision takes no token (the retry call does)");
}

/* Defaults tolerate a day's outage; the time refill lets retries move without traffic. */
static void subtest_outage_defaults(void)
{
	struct retry_policy p;
	struct retry_budget b;
	uint64_t sum = 0;

	retry_policy_default(&p);
	ASSERT_EQ(p.max_age_ns, 24 * 3600 * SEC, "max_age 24 h");
	ASSERT_GE(p.max_attempts, 100, "attempts raised to match");
	for (uint32_t n = 1; n < p.max_attempts; n++) {
		uint64_t ceiling = n > 40 ? p.cap_ns : p.base_ns << (n - 1);

		sum += (ceiling < p.cap_ns ? ceiling : p.cap_ns) / 2; /* mean of full jitter */
	}
	ASSERT_GT(sum, 20 * 3600 * SEC, "mean schedule spans most of max_age");
	ASSERT_LT(sum, 40 * 3600 * SEC, "and not far past it");
	p.budget_burst = 1;
	p.budget_pct = 0;
	p.budget_refill_per_s = 20;
	retry_budget_init(&b, &p);
	ASSERT_TRUE(retry_budget_withdraw(&b), "burst");
	ASSERT_FALSE(retry_budget_withdraw(&b), "empty");
	usleep(200000); /* 20/s for 0.2 s: 4 tokens, capped at the burst of 1 */
	ASSERT_TRUE(retry_budget_withdraw(&b), "refilled by time");
	ASSERT_FALSE(retry_budget_withdraw(&b), "capped at the burst");
}

static void subtest_config(void)
{
	struct retry_policy p;
	char err[128] = "";

	retry_policy_default(&p);
	ASSERT_OK(retry_policy_set(&p, "base_ms", "250", err, sizeof(err)), "base");
	ASSERT_EQ(p.base_ns, 250 * MS, "base ns");
	ASSERT_EQ(retry_policy_set(&p, "max_attempts", "0", err, sizeof(err)), -EINVAL, "0");
	ASSERT_HAS_STR(err, "max_attempts = 0", "names input");
	ASSERT_EQ(retry_policy_set(&p, "tries", "3", err, sizeof(err)), -ENOENT, "unknown");
}

void test_retry(void)
{
	if (test__start_subtest("jitter_bounds"))
		subtest_jitter_bounds();
	if (test__start_subtest("jitter_mean"))
		subtest_jitter_mean();
	if (test__start_subtest("budget"))
		subtest_budget();
	if (test__start_subtest("retry_after"))
		subtest_retry_after();
	if (test__start_subtest("decide"))
		subtest_decide();
	if (test__start_subtest("outage_defaults"))
		subtest_outage_defaults();
	if (test__start_subtest("config"))
		subtest_config();
}
