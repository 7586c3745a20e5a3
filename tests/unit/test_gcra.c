// SPDX-License-Identifier: MIT
/* test_gcra.c -- GCRA arithmetic with a fake clock, and threads racing on one state */
#include <linux/types.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "lib/clock.h"
#include "sluice/gcra.h"
#include "test_progs.h"

#define MS  1000000ULL
#define SEC 1000000000ULL

static int passes(__u64 *tat, __u64 now, __u64 interval, __u64 burst, int tries)
{
	__u64 retry;
	int n = 0;

	for (int i = 0; i < tries; i++)
		n += gcra_admit(tat, now, interval, burst, &retry) == GCRA_PASS;
	return n;
}

static void subtest_burst_then_rate(void)
{
	__u64 tat = 0, now = 1000 * SEC, retry = 0;
	int n;

	/* 1000/s, burst 10000: exactly 10000 pass from idle */
	n = passes(&tat, now, MS, 10000, 20000);
	ASSERT_EQ(n, 10000, "burst from idle");
	/* then one per ms: 250 more in 250 ms, stepped 1 ms at a time */
	n = 0;
	for (int ms = 1; ms <= 250; ms++)
		n += passes(&tat, now + ms * MS, MS, 10000, 5);
	ASSERT_EQ(n, 250, "rate after burst");
	/* rejected now: retry-after is the time until the next cell */
	ASSERT_EQ(gcra_admit(&tat, now + 250 * MS, MS, 10000, &retry), GCRA_REJECT, "exhausted");
	ASSERT_EQ(retry, MS, "retry after one interval");
	ASSERT_EQ(gcra_admit(&tat, now + 250 * MS + retry, MS, 10000, &retry), GCRA_PASS,
		  "passes at retry-after");
}

static void subtest_retry_after(void)
{
	__u64 tat = 0, now = 5 * SEC, retry = 0, nt = 0;

	/* 10/s burst 1: second cell at the same instant waits 100 ms */
	ASSERT_EQ(gcra_admit(&tat, now, 100 * MS, 1, &retry), GCRA_PASS, "first");
	ASSERT_EQ(gcra_admit(&tat, now, 100 * MS, 1, &retry), GCRA_REJECT, "second");
	ASSERT_EQ(retry, 100 * MS, "retry 100ms");
	ASSERT_EQ(gcra_admit(&tat, now + 40 * MS, 100 * MS, 1, &retry), GCRA_REJECT, "at 40ms");
	ASSERT_EQ(retry, 60 * MS, "retry 60ms");
	ASSERT_EQ(gcra_decide(tat, now + 100 * MS, 100 * MS, 1, &nt, &retry), GCRA_PASS,
		  "decide at 100ms");
	ASSERT_EQ(nt, now + 200 * MS, "new tat");
}

static void subtest_clock_backwards(void)
{
	__u64 tat = 0, now = 10 * SEC, retry;
	int n;

	ASSERT_EQ(passes(&tat, now, MS, 5, 10), 5, "burst");
	/* the clock steps back a full second: no credit appears from that */
	n = passes(&tat, now - SEC, MS, 5, 10);
	ASSERT_EQ(n, 0, "no credit when the clock goes back");
	ASSERT_EQ(gcra_admit(&tat, now - SEC, MS, 5, &retry), GCRA_REJECT, "still rejected");
	ASSERT_GT(retry, SEC, "retry spans the step back");
	ASSERT_EQ(passes(&tat, now + 5 * MS, MS, 5, 10), 5, "credit resumes with real time");
}

static void subtest_near_u64_max(void)
{
	__u64 max = ~(__u64)0, tat, retry = 0, nt;

	tat = max - 10;
	ASSERT_EQ(gcra_admit(&tat, max - 20, 100, 3, &retry), GCRA_REJECT, "saturated tat rejects");
	ASSERT_EQ(tat, max - 10, "tat unchanged on reject");
	tat = 0;
	ASSERT_EQ(gcra_admit(&tat, max - 5, 100, 3, &retry), GCRA_REJECT,
		  "now near max: next saturates, rejects, no wrap");
	ASSERT_EQ(gcra_tolerance(max / 2, 4), max, "tolerance saturates");
	ASSERT_EQ(gcra_tolerance(1ULL << 40, 2), 1ULL << 41, "large interval exact");
	ASSERT_EQ(gcra_decide(0, 1000, max, 1, &nt, &retry), GCRA_REJECT,
		  "huge interval with now: saturated next rejects");
	ASSERT_EQ(gcra_decide(0, 0, max, 1, &nt, &retry), GCRA_PASS, "huge interval at 0");
	ASSERT_EQ(gcra_credits(max, 0, 1, 10), 0, "credits of a far tat");
	ASSERT_EQ(gcra_credits(0, 100, 1000, 10), 10, "credits when idle");
	ASSERT_EQ(gcra_credits(100 + 2500, 100, 1000, 10), 7, "credits after 3 cells in flight");
}

static void subtest_unlimited(void)
{
	__u64 tat = 0, retry;

	ASSERT_EQ(passes(&tat, SEC, 0, 0, 1000), 1000, "interval 0 = unlimited");
	ASSERT_EQ(tat, 0, "state untouched");
	ASSERT_EQ(gcra_admit(&tat, SEC, MS, 0, &retry), GCRA_REJECT, "burst 0 admits nothing");
}

struct race {
	__u64 *tat;
	__u64 interval, burst;
	volatile int *go;
	long passed;
	__u64 start, end;
};

static void *racer(void *arg)
{
	struct race *r = arg;
	__u64 retry;

	while (!*r->go)
		;
	r->start = clock_mono_ns();
	for (int i = 0; i < 400000; i++)
		r->passed +=
		    gcra_admit(r->tat, clock_mono_ns(), r->interval, r->burst, &retry) == GCRA_PASS;
	r->end = clock_mono_ns();
	return NULL;
}

static void subtest_threads(void)
{
	enum { N = 4 };
	struct race r[N];
	pthread_t th[N];
	volatile int go = 0;
	__u64 tat = 0, t0, t1, bound;
	long total = 0;
	int i;

	t0 = clock_mono_ns();
	for (i = 0; i < N; i++) {
		r[i] = (struct race){.tat = &tat, .interval = 10000, .burst = 500, .go = &go};
		pthread_create(&th[i], NULL, racer, &r[i]);
	}
	go = 1;
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		total += r[i].passed;
	}
	t1 = clock_mono_ns();
	/* 100k/s, burst 500: never more than burst + rate * elapsed (+1 for the edge) */
	bound = 500 + (t1 - t0) / 10000 + 1;
	ASSERT_LE((__u64)total, bound, "passes bounded by burst + rate x elapsed");
	/* Beyond the burst only the rate grants; the lower bound cannot be rate x elapsed, since
	 * a loaded machine deschedules every racer for long stretches in which credits cap at
	 * the burst. 100 more is 1 ms of rate out of the racers' tens of ms of running. */
	ASSERT_GT(total, 500 + 100, "and the rate is actually granted beyond the burst");
}

void test_gcra(void)
{
	if (test__start_subtest("burst_then_rate"))
		subtest_burst_then_rate();
	if (test__start_subtest("retry_after"))
		subtest_retry_after();
	if (test__start_subtest("clock_backwards"))
		subtest_clock_backwards();
	if (test__start_subtest("near_u64_max"))
		subtest_near_u64_max();
	if (test__start_subtest("unlimited"))
		subtest_unlimited();
	if (test__start_subtest("threads"))
		subtest_threads();
}
