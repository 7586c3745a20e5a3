/* SPDX-License-Identifier: MIT */
/* bench_stats.h -- the order statistics every benchmark reports: sort, median, quantile
 *
 * Benchmarks repeat a measurement in rounds and report the median round (robust to one
 * noisy neighbour on the shared machine), and latency quantiles from sorted samples. One
 * copy here, so every benchmark means the same thing by "median" and "p99".
 */
#ifndef SLUICE_BENCH_STATS_H
#define SLUICE_BENCH_STATS_H

#include <stddef.h>

/* Sort v ascending in place. */
void bench_sort(double *v, size_t n);
/* Median of v (sorts v in place): the middle value, or the mean of the two middle values
 * when n is even; 0 for n == 0. */
double bench_median(double *v, size_t n);
/* Quantile q (0..1) of sorted[0..n) by the nearest rank below: sorted[(size_t)(n * q)],
 * clamped to the last element; 0 for n == 0. */
double bench_quantile(const double *sorted, size_t n, double q);

#endif /* SLUICE_BENCH_STATS_H */
