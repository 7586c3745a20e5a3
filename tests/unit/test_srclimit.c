// SPDX-License-Identifier: MIT
/* test_srclimit.c -- per-source connection counts: the cap, release, growth, and a random
 * walk checked against a plain array (the table's backward-shift deletion) */
#include <errno.h>
#include <stdlib.h>

#include "ingress/srclimit.h"
#include "test_progs.h"

static struct sluice_addr addr(uint32_t n)
{
	struct sluice_addr a = {0};

	a.a[10] = a.a[11] = 0xff;
	memcpy(&a.a[12], &n, 4);
	return a;
}

static void subtest_cap(void)
{
	struct srclimit *s = srclimit_new(3);
	struct sluice_addr a = addr(1), b = addr(2);

	if (!ASSERT_OK_PTR(s, "new"))
		return;
	for (int i = 0; i < 3; i++)
		ASSERT_OK(srclimit_acquire(s, &a), "within the cap");
	ASSERT_EQ(srclimit_acquire(s, &a), -EBUSY, "fourth refused");
	ASSERT_EQ(srclimit_count(s, &a), 3, "refusal not counted");
	ASSERT_OK(srclimit_acquire(s, &b), "another source is not affected");
	srclimit_release(s, &a);
	ASSERT_OK(srclimit_acquire(s, &a), "room again after a close");
	for (int i = 0; i < 3; i++)
		srclimit_release(s, &a);
	ASSERT_EQ(srclimit_count(s, &a), 0, "all closed");
	ASSERT_EQ(srclimit_count(s, &b), 1, "b kept");
	srclimit_free(s);
	srclimit_free(NULL);
}

/* 20,000 sources (the table grows from 1,024 slots) opened and closed in a random order,
 * compared with an array after every step. */
static void subtest_random_walk(void)
{
	enum { N = 20000, STEPS = 400000, MAX = 4 };
	unsigned *want = calloc(N, sizeof(*want));
	struct srclimit *s = srclimit_new(MAX);
	unsigned bad = 0;

	if (!ASSERT_OK_PTR(s, "new") || !ASSERT_OK_PTR(want, "array"))
		goto out;
	srand(7);
	for (int i = 0; i < STEPS; i++) {
		uint32_t n = (uint32_t)rand() % (i < STEPS / 2 ? N : N / 10);
		struct sluice_addr a = addr(n);

		if (rand() % 2) {
			int r = srclimit_acquire(s, &a);

			bad += want[n] < MAX ? r != 0 : r != -EBUSY;
			want[n] += want[n] < MAX;
		} else if (want[n]) {
			srclimit_release(s, &a);
			want[n]--;
		}
		if (i % 97 == 0) {
			uint32_t m = (uint32_t)rand() % N;
			struct sluice_addr b = addr(m);

			bad += srclimit_count(s, &b) != want[m];
		}
	}
	for (uint32_t n = 0; n < N; n++) {
		struct sluice_addr a = addr(n);

		bad += srclimit_count(s, &a) != want[n];
	}
	ASSERT_EQ(bad, 0, "table agrees with the array");
out:
	srclimit_free(s);
	free(want);
}

void test_srclimit(void)
{
	if (test__start_subtest("cap"))
		subtest_cap();
	if (test__start_subtest("random_walk"))
		subtest_random_walk();
}
