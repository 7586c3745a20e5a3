// SPDX-License-Identifier: MIT
/* test_src_rate.c -- TLS handshakes per source: burst, steady rate, sources apart, eviction */
#include "ingress/src_rate.h"
#include "test_progs.h"

static struct sluice_addr addr(unsigned n)
{
	struct sluice_addr a = {{0}};

	a.a[10] = a.a[11] = 0xff;
	a.a[12] = 10;
	a.a[13] = (uint8_t)(n >> 16);
	a.a[14] = (uint8_t)(n >> 8);
	a.a[15] = (uint8_t)n;
	return a;
}

void test_src_rate(void)
{
	struct src_rate *r = src_rate_new(10, 64); /* 10/s, burst 10 */
	struct sluice_addr a = addr(1), b = addr(2);
	uint64_t t0 = 1000000000000ull;
	int passed = 0;

	if (!ASSERT_OK_PTR(r, "new"))
		return;
	for (int i = 0; i < 15; i++)
		passed += src_rate_pass(r, &a, t0);
	ASSERT_EQ(passed, 10, "a burst of one second's worth");
	ASSERT_TRUE(src_rate_pass(r, &b, t0), "another source is apart");
	ASSERT_FALSE(src_rate_pass(r, &a, t0 + 50000000), "not before an interval");
	ASSERT_TRUE(src_rate_pass(r, &a, t0 + 100000000), "one per 100 ms after");
	/* a flood of other sources evicts the quiet ones, never the table's bound */
	for (unsigned i = 100; i < 10000; i++) {
		struct sluice_addr x = addr(i);

		src_rate_pass(r, &x, t0);
	}
	passed = 0;
	for (int i = 0; i < 15; i++)
		passed += src_rate_pass(r, &a, t0 + 200000000);
	ASSERT_LE(passed, 10, "never more than the burst");
	ASSERT_EQ(src_rate_new(0, 64), NULL, "rate 0 is refused");
	src_rate_free(r);
}
