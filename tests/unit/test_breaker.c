// SPDX-License-Identifier: MIT
/* test_breaker.c -- every breaker transition, both windows and slow calls, on a fake clock */
#include <errno.h>
#include <stdint.h>

#include "sink/upstream/breaker.h"
#include "test_progs.h"

#define MS  1000000ULL
#define SEC 1000000000ULL

struct fake {
	uint64_t now;
	int n;
	enum breaker_state from[16], to[16];
	struct breaker_snapshot why[16];
};

static uint64_t fake_clock(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static void on_transition(void *ctx, const char *name, enum breaker_state from,
			  enum breaker_state to, const struct breaker_snapshot *why)
{
	struct fake *f = ctx;

	if (f->n < 16) {
		f->from[f->n] = from;
		f->to[f->n] = to;
		f->why[f->n] = *why;
	}
	f->n++;
}

static struct breaker *make(struct fake *f, struct breaker_config *cfg)
{
	return breaker_new("ai", cfg, fake_clock, f, on_transition, f);
}

/* One call through the breaker; returns 0, or -EBUSY when it was rejected. */
static int call(struct breaker *b, bool failed, uint64_t duration)
{
	struct breaker_permit p;
	int err = breaker_acquire(b, &p);

	if (!err)
		breaker_record(b, &p, failed, duration);
	return err;
}

static struct breaker_config base_cfg(void)
{
	struct breaker_config c;

	breaker_config_default(&c);
	c.window_size = 10;
	c.minimum_calls = 5;
	c.failure_rate_pct = 50;
	c.slow_call_ns = SEC;
	c.slow_rate_pct = 100;
	c.open_wait_ns = 5 * SEC;
	c.half_open_calls = 3;
	return c;
}

static void subtest_count_opens(void)
{
	struct fake f = {.now = 100 * SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b = make(&f, &cfg);

	if (!ASSERT_OK_PTR(b, "new"))
		return;
	/* below minimum calls nothing is decided, even at 100 % failures */
	for (int i = 0; i < 4; i++)
		call(b, i < 2, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "4 calls: closed");
	call(b, false, MS); /* 2/5 = 40 % */
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "40 %: closed");
	call(b, true, MS); /* 3/6 = 50 % */
	ASSERT_EQ(breaker_state(b), BREAKER_OPEN, "50 %: open");
	ASSERT_EQ(f.n, 1, "one transition");
	ASSERT_EQ(f.from[0], BREAKER_CLOSED, "from closed");
	ASSERT_EQ(f.to[0], BREAKER_OPEN, "to open");
	ASSERT_EQ(f.why[0].calls, 6, "why calls");
	ASSERT_EQ(f.why[0].failed, 3, "why failed");
	ASSERT_EQ(f.why[0].failure_rate_pct, 50, "why rate");
	breaker_free(b);
}

static void subtest_count_slides(void)
{
	struct fake f = {.now = 100 * SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b;

	cfg.window_size = 4;
	cfg.minimum_calls = 4;
	cfg.failure_rate_pct = 75;
	b = make(&f, &cfg);
	if (!ASSERT_OK_PTR(b, "new"))
		return;
	for (int i = 0; i < 4; i++)
		call(b, false, MS);
	call(b, true, MS);
	call(b, true, MS); /* window O O F F = 50 % */
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "50 % of the last 4");
	call(b, true, MS); /* window O F F F = 75 %; over all 7 calls it would be 43 % */
	ASSERT_EQ(breaker_state(b), BREAKER_OPEN, "75 % of the last 4");
	breaker_free(b);
}

static void subtest_open_then_half_open(void)
{
	struct fake f = {.now = 100 * SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b = make(&f, &cfg);
	struct breaker_stats st;
	struct breaker_permit p;

	if (!ASSERT_OK_PTR(b, "new"))
		return;
	for (int i = 0; i < 5; i++)
		call(b, true, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_OPEN, "open");
	ASSERT_EQ(breaker_acquire(b, &p), -EBUSY, "open rejects");
	ASSERT_EQ(breaker_open_remaining_ns(b), cfg.open_wait_ns, "whole wait ahead");
	f.now += cfg.open_wait_ns - 1;
	ASSERT_EQ(breaker_open_remaining_ns(b), 1, "1 ns left");
	ASSERT_EQ(breaker_acquire(b, &p), -EBUSY, "still open 1 ns before the wait ends");
	f.now += 1;
	ASSERT_OK(breaker_acquire(b, &p), "first probe permitted");
	ASSERT_TRUE(p.probe, "is a probe");
	ASSERT_EQ(breaker_state(b), BREAKER_HALF_OPEN, "half open");
	ASSERT_EQ(f.n, 2, "two transitions");
	ASSERT_EQ(f.to[1], BREAKER_HALF_OPEN, "to half open");
	breaker_stats(b, &st);
	ASSERT_EQ(st.rejected, 2, "rejected counted");
	ASSERT_EQ(st.opened, 1, "opened once");
	breaker_free(b);
}

static void subtest_half_open_closes(void)
{
	struct fake f = {.now = 100 * SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b = make(&f, &cfg);
	struct breaker_permit p[4];
	struct breaker_stats st;

	if (!ASSERT_OK_PTR(b, "new"))
		return;
	for (int i = 0; i < 5; i++)
		call(b, true, MS);
	f.now += cfg.open_wait_ns;
	for (int i = 0; i < 3; i++)
		ASSERT_OK(breaker_acquire(b, &p[i]), "probe permitted");
	ASSERT_EQ(breaker_acquire(b, &p[3]), -EBUSY, "fourth probe rejected");
	/* a released probe frees its slot */
	breaker_release(b, &p[2]);
	ASSERT_OK(breaker_acquire(b, &p[2]), "slot given back");
	breaker_record(b, &p[0], false, MS);
	breaker_record(b, &p[1], true, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_HALF_OPEN, "undecided until all probes are in");
	breaker_record(b, &p[2], false, MS); /* 1/3 = 33 % < 50 % */
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "closed");
	ASSERT_EQ(f.to[f.n - 1], BREAKER_CLOSED, "transition to closed reported");
	ASSERT_EQ(f.why[f.n - 1].calls, 3, "decided on 3 probes");
	ASSERT_EQ(f.why[f.n - 1].failed, 1, "one failed probe");
	breaker_stats(b, &st);
	ASSERT_EQ(st.window.calls, 0, "fresh window after closing");
	/* the fresh window needs minimum_calls again before it can open */
	for (int i = 0; i < 4; i++)
		call(b, true, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "4 failures below minimum");
	breaker_free(b);
}

static void subtest_half_open_reopens(void)
{
	struct fake f = {.now = 100 * SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b = make(&f, &cfg);
	struct breaker_permit p;

	if (!ASSERT_OK_PTR(b, "new"))
		return;
	for (int i = 0; i < 5; i++)
		call(b, true, MS);
	f.now += cfg.open_wait_ns;
	call(b, true, MS);
	call(b, true, MS);
	call(b, false, MS); /* 2/3 failed */
	ASSERT_EQ(breaker_state(b), BREAKER_OPEN, "reopened");
	ASSERT_EQ(f.from[f.n - 1], BREAKER_HALF_OPEN, "from half open");
	/* the open wait starts again from the reopening */
	f.now += cfg.open_wait_ns - MS;
	ASSERT_EQ(breaker_acquire(b, &p), -EBUSY, "new wait");
	f.now += MS;
	ASSERT_OK(breaker_acquire(b, &p), "probe after the new wait");
	breaker_free(b);
}

static void subtest_stale_permit(void)
{
	struct fake f = {.now = 100 * SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b = make(&f, &cfg);
	struct breaker_permit old, probe;
	struct breaker_stats st;

	if (!ASSERT_OK_PTR(b, "new"))
		return;
	ASSERT_OK(breaker_acquire(b, &old), "acquired while closed");
	for (int i = 0; i < 5; i++)
		call(b, true, MS);
	f.now += cfg.open_wait_ns;
	ASSERT_OK(breaker_acquire(b, &probe), "probe");
	/* the old call ends during half-open: it must not count as a probe */
	breaker_record(b, &old, false, MS);
	breaker_stats(b, &st);
	ASSERT_EQ(st.window.calls, 0, "no probe finished");
	ASSERT_EQ(st.successes, 1, "but the success is counted");
	breaker_free(b);
}

static void subtest_slow_calls(void)
{
	struct fake f = {.now = 100 * SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b;
	struct breaker_permit p;

	cfg.slow_rate_pct = 60;
	b = make(&f, &cfg);
	if (!ASSERT_OK_PTR(b, "new"))
		return;
	ASSERT_OK(breaker_acquire(b, &p), "acquire");
	ASSERT_TRUE(breaker_record(b, &p, false, SEC), "exactly the threshold is slow");
	ASSERT_OK(breaker_acquire(b, &p), "acquire");
	ASSERT_FALSE(breaker_record(b, &p, false, SEC - 1), "just under is not");
	call(b, false, 2 * SEC);
	call(b, false, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "4 calls");
	call(b, false, 3 * SEC); /* 3 slow of 5 = 60 %, no failures at all */
	ASSERT_EQ(breaker_state(b), BREAKER_OPEN, "slow rate opens");
	ASSERT_EQ(f.why[0].slow, 3, "3 slow");
	ASSERT_EQ(f.why[0].failed, 0, "no failures");
	ASSERT_EQ(f.why[0].slow_rate_pct, 60, "slow rate");
	breaker_free(b);
}

static void subtest_time_window(void)
{
	struct fake f = {.now = 100 * SEC + 500 * MS};
	struct breaker_config cfg = base_cfg();
	struct breaker *b;
	struct breaker_stats st;

	cfg.window = BREAKER_WINDOW_TIME;
	cfg.window_size = 10; /* seconds */
	cfg.minimum_calls = 4;
	b = make(&f, &cfg);
	if (!ASSERT_OK_PTR(b, "new"))
		return;
	for (int i = 0; i < 3; i++)
		call(b, true, MS);
	f.now += 9 * SEC;
	breaker_stats(b, &st);
	ASSERT_EQ(st.window.calls, 3, "9 s later the failures are still in the window");
	f.now += 2 * SEC;
	breaker_stats(b, &st);
	ASSERT_EQ(st.window.calls, 0, "11 s later they have left it");
	call(b, true, MS);
	for (int i = 0; i < 3; i++)
		call(b, false, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "1 of 4 in the window");
	f.now += 3 * SEC;
	call(b, true, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_CLOSED, "2 of 5");
	call(b, true, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_OPEN, "3 of 6 across two buckets");
	f.now += 1000 * SEC; /* a long gap clears at most window_size buckets, no loop */
	ASSERT_OK(call(b, false, MS), "probe after a long gap");
	breaker_free(b);
}

static void subtest_minimum_clamped(void)
{
	struct fake f = {.now = SEC};
	struct breaker_config cfg = base_cfg();
	struct breaker *b;

	/* resilience4j's 100 minimum calls in a window of 5 would never trip: clamp to 5 */
	cfg.window_size = 5;
	cfg.minimum_calls = 100;
	b = make(&f, &cfg);
	if (!ASSERT_OK_PTR(b, "new"))
		return;
	for (int i = 0; i < 5; i++)
		call(b, true, MS);
	ASSERT_EQ(breaker_state(b), BREAKER_OPEN, "opens at the window size");
	breaker_free(b);
}

static void subtest_config(void)
{
	struct breaker_config cfg;
	char err[128] = "";

	breaker_config_default(&cfg);
	ASSERT_OK(breaker_config_check(&cfg, err, sizeof(err)), "defaults valid");
	ASSERT_OK(breaker_config_set(&cfg, "window", "time", err, sizeof(err)), "window");
	ASSERT_EQ(cfg.window, BREAKER_WINDOW_TIME, "window set");
	ASSERT_OK(breaker_config_set(&cfg, "slow_call_ms", "2500", err, sizeof(err)), "slow");
	ASSERT_EQ(cfg.slow_call_ns, 2500 * MS, "slow in ns");
	ASSERT_EQ(breaker_config_set(&cfg, "failure_rate", "150", err, sizeof(err)), -EINVAL,
		  "rate over 100");
	ASSERT_HAS_STR(err, "failure_rate = 150", "message names the input");
	ASSERT_HAS_STR(err, "1-100", "message gives the range");
	ASSERT_EQ(breaker_config_set(&cfg, "window_size", "-3", err, sizeof(err)), -EINVAL,
		  "negative");
	ASSERT_EQ(breaker_config_set(&cfg, "window", "hour", err, sizeof(err)), -EINVAL,
		  "bad window");
	ASSERT_EQ(breaker_config_set(&cfg, "colour", "red", err, sizeof(err)), -ENOENT,
		  "unknown key");
	cfg.half_open_calls = 0;
	ASSERT_EQ(breaker_config_check(&cfg, err, sizeof(err)), -EINVAL, "0 probes");
	ASSERT_HAS_STR(err, "half_open_calls", "names the field");
	errno = 0;
	ASSERT_FALSE(breaker_new("x", &cfg, NULL, NULL, NULL, NULL), "new refuses");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
}

void test_breaker(void)
{
	if (test__start_subtest("count_opens"))
		subtest_count_opens();
	if (test__start_subtest("count_slides"))
		subtest_count_slides();
	if (test__start_subtest("open_then_half_open"))
		subtest_open_then_half_open();
	if (test__start_subtest("half_open_closes"))
		subtest_half_open_closes();
	if (test__start_subtest("half_open_reopens"))
		subtest_half_open_reopens();
	if (test__start_subtest("stale_permit"))
		subtest_stale_permit();
	if (test__start_subtest("slow_calls"))
		subtest_slow_calls();
	if (test__start_subtest("time_window"))
		subtest_time_window();
	if (test__start_subtest("minimum_clamped"))
		subtest_minimum_clamped();
	if (test__start_subtest("config"))
		subtest_config();
}
