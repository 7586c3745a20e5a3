// SPDX-License-Identifier: MIT
/* bench_stats.c -- the order statistics every benchmark reports: sort, median, quantile
 *
 * qsort with a comparator that is exact for doubles (no subtraction to overflow or round).
 * Samples are never NaN here (they are times and rates), so the order is total.
 */
#include <stdlib.h>

#include "bench_stats.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

double bench_median(double *v, size_t n)
{
	if (!n)
		return 0;
	bench_sort(v, n);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_quantile(const double *sorted, size_t n, double q)
{
	size_t i = (size_t)((double)n * q + 1e-9); /* 0.99 * 2000 must be 1980, not 1979 */

	if (!n)
		return 0;
	return sorted[i < n ? i : n - 1];
}
