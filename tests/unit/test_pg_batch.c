// SPDX-License-Identifier: MIT
/* test_pg_batch.c -- batch forming without a database: sort order, twins, splitting */
#include <stdlib.h>

#include "sink/pg/batch.h"
#include "test_progs.h"

static struct pg_wrow *row(const char *tenant, const char *key, uint64_t seq)
{
	struct pg_wrow *r = calloc(1, sizeof(*r));

	r->tenant = tenant;
	r->key = key;
	r->seq = seq;
	return r;
}

static int twins_of(const struct pg_wrow *r)
{
	int n = 0;

	for (const struct pg_wrow *t = r->twins; t; t = t->twins)
		n++;
	return n;
}

static void free_rows(struct pg_wrow **rows, int n)
{
	for (int i = 0; i < n; i++) {
		struct pg_wrow *t = rows[i]->twins;

		while (t) {
			struct pg_wrow *next = t->twins;

			free(t);
			t = next;
		}
		free(rows[i]);
	}
}

static void subtest_sort_and_twins(void)
{
	struct pg_wrow **rows = calloc(6, sizeof(*rows)), *all[6];
	struct pg_batch *b;

	/* submission order: b/2, a/9, b/2 again, a/1, b/2 a third time, a/9 again */
	all[0] = rows[0] = row("b", "2", 0);
	all[1] = rows[1] = row("a", "9", 1);
	all[2] = rows[2] = row("b", "2", 2);
	all[3] = rows[3] = row("a", "1", 3);
	all[4] = rows[4] = row("b", "2", 4);
	all[5] = rows[5] = row("a", "9", 5);
	b = pg_batch_new(PG_BATCH_EVENTS, rows, 6);
	if (!ASSERT_OK_PTR(b, "batch"))
		return;
	ASSERT_EQ(pg_batch_dedupe(b), 3, "three later copies folded");
	ASSERT_EQ(b->n, 3, "three distinct keys sent");
	/* sorted by (tenant, key): the lock order every writer connection shares */
	ASSERT_TRUE(b->rows[0] == all[3] && b->rows[1] == all[1] && b->rows[2] == all[0],
		    "a/1, a/9, b/2");
	/* the first submitted copy is the one sent; the others ride on it, in order */
	ASSERT_EQ(twins_of(all[0]), 2, "b/2 carries two twins");
	ASSERT_TRUE(all[0]->twins == all[2] && all[2]->twins == all[4], "twins in order");
	ASSERT_EQ(twins_of(all[1]), 1, "a/9 carries one twin");
	ASSERT_EQ(twins_of(all[3]), 0, "a/1 alone");
	free_rows(b->rows, b->n);
	pg_batch_free(b);
}

static void subtest_split(void)
{
	struct pg_wrow **rows = calloc(5, sizeof(*rows));
	struct pg_batch *b, *half;
	const char *keys[5] = {"1", "2", "3", "4", "5"};

	for (int i = 0; i < 5; i++)
		rows[i] = row("t", keys[i], i);
	b = pg_batch_new(PG_BATCH_EVENTS, rows, 5);
	if (!ASSERT_OK_PTR(b, "batch"))
		return;
	half = pg_batch_split(b);
	if (!ASSERT_OK_PTR(half, "split"))
		goto out;
	ASSERT_EQ(b->n, 2, "first half keeps n/2");
	ASSERT_EQ(half->n, 3, "second half the rest");
	ASSERT_STREQ(b->rows[1]->key, "2", "first half ends at 2");
	ASSERT_STREQ(half->rows[0]->key, "3", "second half starts at 3");
	free_rows(half->rows, half->n);
	pg_batch_free(half);
out:
	free_rows(b->rows, b->n);
	pg_batch_free(b);
}

void test_pg_batch(void)
{
	if (test__start_subtest("sort_and_twins"))
		subtest_sort_and_twins();
	if (test__start_subtest("split"))
		subtest_split();
}
