// SPDX-License-Identifier: MIT
/* test_kafka_offsets.c -- the consumer's commit tracker against a brute-force model: random
 * completion orders over offsets with gaps, duplicate and unknown completions, reset on
 * revoke (stale completions refused, a new span starts), and ring growth across wrap-around */
#include <stdlib.h>

#include "queue/kafka/offsets.h"
#include "test_progs.h"

#define N 5000

/* The model: the committable offset is the first handed-out offset not done, else last + 1. */
static int64_t model_committable(const int64_t *off, const bool *done, int n)
{
	for (int i = 0; i < n; i++)
		if (!done[i])
			return off[i];
	return n ? off[n - 1] + 1 : -1;
}

static void shuffle(int *a, int n, unsigned *seed)
{
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(rand_r(seed) % (unsigned)(i + 1)), t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

static void random_orders(void)
{
	static int64_t off[N];
	static bool done[N];
	static int order[N];
	struct kafka_offsets t;

	for (unsigned seed = 1; seed <= 20; seed++) {
		unsigned s = seed;
		int64_t o = 1000 * seed, prev = -1;
		int added = 0, nd = 0;
		bool ok = true;

		kafka_offsets_init(&t);
		for (int i = 0; i < N; i++) {
			o += 1 + (rand_r(&s) % 7 == 0 ? rand_r(&s) % 5 : 0); /* gaps */
			off[i] = o;
			done[i] = false;
			order[i] = i;
		}
		shuffle(order, N, &s);
		/* interleave: hand out in offset order, complete in random order among handed */
		for (int k = 0; k < N && ok; k++) {
			while (added < N && (added <= order[k] || rand_r(&s) % 3 == 0)) {
				ok &= ASSERT_OK(kafka_offsets_add(&t, off[added], (uint64_t)added),
						"add");
				added++;
			}
			ok &= ASSERT_OK(kafka_offsets_done(&t, off[order[k]]), "done");
			done[order[k]] = true;
			nd++;
			int64_t c = kafka_offsets_committable(&t);

			ok &= ASSERT_EQ(c, model_committable(off, done, added), "committable");
			ok &= ASSERT_GE(c, prev, "committable never moves back");
			ok &= ASSERT_EQ(kafka_offsets_unfinished(&t), (size_t)(added - nd),
					"unfinished");
			/* never past unfinished work: every offset below c is done */
			for (int i = 0; i < added && off[i] < c && ok; i++)
				ok &= ASSERT_TRUE(done[i], "below committable is done");
			prev = c;
			if (rand_r(&s) % 50 == 0) /* a second completion of the same record */
				ok &= ASSERT_EQ(kafka_offsets_done(&t, off[order[k]]), -ENOENT,
						"duplicate done");
		}
		ASSERT_EQ(kafka_offsets_committable(&t), off[N - 1] + 1, "all done: last + 1");
		ASSERT_EQ(kafka_offsets_unfinished(&t), (size_t)0, "none unfinished");
		kafka_offsets_fini(&t);
		if (!ok)
			return;
	}
}

static void edges(void)
{
	struct kafka_offsets t;
	uint64_t gen;

	kafka_offsets_init(&t);
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)-1, "nothing handed out");
	ASSERT_EQ(kafka_offsets_oldest_ts(&t), (uint64_t)0, "no oldest");
	ASSERT_OK(kafka_offsets_add(&t, 10, 100), "add 10");
	ASSERT_OK(kafka_offsets_add(&t, 12, 200), "add 12 (gap at 11)");
	ASSERT_EQ(kafka_offsets_add(&t, 12, 0), -EINVAL, "offsets must increase");
	ASSERT_EQ(kafka_offsets_add(&t, 5, 0), -EINVAL, "no going back");
	ASSERT_EQ(kafka_offsets_done(&t, 11), -ENOENT, "a gap is not a record");
	ASSERT_EQ(kafka_offsets_done(&t, 99), -ENOENT, "not handed out");
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)10, "10 unfinished");
	ASSERT_OK(kafka_offsets_done(&t, 12), "done 12");
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)10, "12 done, 10 still holds");
	ASSERT_EQ(kafka_offsets_oldest_ts(&t), (uint64_t)100, "oldest is 10's");
	ASSERT_OK(kafka_offsets_done(&t, 10), "done 10");
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)13, "all done: 12 + 1");
	/* revoke with work out: its completions after the reset are stale */
	ASSERT_OK(kafka_offsets_add(&t, 13, 300), "add 13");
	gen = t.gen;
	kafka_offsets_reset(&t);
	ASSERT_NEQ(t.gen, gen, "reset changes the generation");
	ASSERT_EQ(kafka_offsets_done(&t, 13), -ENOENT, "stale completion refused");
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)-1, "nothing to commit after reset");
	/* re-assigned: the new owner starts where the last commit was (13 again) */
	ASSERT_OK(kafka_offsets_add(&t, 13, 400), "redelivered 13");
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)13, "13 unfinished");
	/* wrap-around and growth with a stuck head */
	for (int64_t o = 14; o < 14 + 1000; o++) {
		ASSERT_OK(kafka_offsets_add(&t, o, 0), "add");
		ASSERT_OK(kafka_offsets_done(&t, o), "done");
	}
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)13, "the stuck head holds the commit");
	ASSERT_EQ(kafka_offsets_unfinished(&t), (size_t)1, "one unfinished");
	ASSERT_OK(kafka_offsets_done(&t, 13), "head done");
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)1014, "everything below 1014 done");
	for (int round = 0; round < 300; round++) { /* ring wraps many times at small len */
		int64_t o = 1014 + round;

		ASSERT_OK(kafka_offsets_add(&t, o, 0), "add");
		ASSERT_OK(kafka_offsets_done(&t, o), "done");
	}
	ASSERT_EQ(kafka_offsets_committable(&t), (int64_t)1314, "after wrap");
	kafka_offsets_fini(&t);
}

void test_kafka_offsets(void)
{
	if (test__start_subtest("random_orders"))
		random_orders();
	if (test__start_subtest("edges"))
		edges();
}
