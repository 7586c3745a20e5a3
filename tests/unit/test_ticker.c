// SPDX-License-Identifier: MIT
/* test_ticker.c -- lib/ticker: calls at once and then every period, never after stop, and
 * stop does not wait out a long period. Bounds are loose (a loaded machine stretches
 * periods): at least a few calls where ~10 are due, far fewer than a busy loop would make. */
#include <stdio.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/ticker.h"
#include "test_progs.h"

static void count(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
}

void test_ticker(void)
{
	struct ticker *t;
	int calls = 0, after;
	double t0;

	t = ticker_start(20 * 1000000ULL, count, &calls);
	if (!ASSERT_OK_PTR(t, "start"))
		return;
	usleep(210 * 1000);
	ticker_stop(t);
	after = __atomic_load_n(&calls, __ATOMIC_RELAXED);
	printf("calls in 210 ms at a 20 ms period: %d\n", after);
	ASSERT_GE(after, 3, "called every period");
	ASSERT_LE(after, 13, "not more often than the period");
	usleep(60 * 1000);
	ASSERT_EQ(__atomic_load_n(&calls, __ATOMIC_RELAXED), after, "never called after stop");

	/* a one-hour period: the first call comes at once, stop wakes the thread */
	calls = 0;
	t = ticker_start(3600ULL * 1000000000ULL, count, &calls);
	if (!ASSERT_OK_PTR(t, "start, long period"))
		return;
	for (int i = 0; i < 200 && !__atomic_load_n(&calls, __ATOMIC_RELAXED); i++)
		usleep(10000);
	ASSERT_EQ(__atomic_load_n(&calls, __ATOMIC_RELAXED), 1, "first call at once");
	t0 = clock_mono_s();
	ticker_stop(t);
	ASSERT_LT(clock_mono_s() - t0, 5.0, "stop does not wait for the next period");
	ASSERT_ERR(ticker_start(0, count, &calls) ? 0 : -1, "period 0 refused");
}
