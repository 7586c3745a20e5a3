/* SPDX-License-Identifier: MIT */
/* metrics.h -- a Prometheus text-format registry: counters, gauges, histograms with labels
 *
 * A family (name, help, type, label names, histogram buckets) holds series, one per label
 * value tuple, created on first use and kept for the life of the registry. Updates are
 * lock-free atomics on the series; looking a series up takes the family's mutex, so hot paths
 * keep the series pointer. Rendering (GET /metrics) first runs the collect hooks, which set
 * gauges read from elsewhere (BPF per-CPU counters, queue depth), then prints every family in
 * registration order in the text exposition format 0.0.4 that `promtool check metrics` takes.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

#define METRICS_MAX_LABELS  4
#define METRICS_MAX_BUCKETS 16

struct metrics;
struct metric_family;
struct metric_series;

typedef void metrics_collect_fn(struct metrics *m, void *arg);

/* New empty registry; NULL + errno. Free with metrics_free() (NULL is a no-op). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Register a family. labels is a comma-separated list of label names ("route,status") or
 * NULL; buckets (ascending upper bounds, +Inf implied) only for histograms. Returns the
 * family (owned by m) or NULL + errno (EINVAL: bad name, too many labels or buckets). */
struct metric_family *metrics_family(struct metrics *m, enum metric_type type, const char *name,
				     const char *help, const char *labels, const double *buckets,
				     int nbuckets);

/* The series of f for these label values (as many as the family has labels; NULL when it
 * has none), created on first use. NULL + errno only when out of memory. */
struct metric_series *metrics_series(struct metric_family *f, const char *const *values);

/* Counter/gauge: add v (counters only ever grow: v >= 0). */
void metric_add(struct metric_series *s, double v);
/* Gauge: set to v. */
void metric_set(struct metric_series *s, double v);
/* Histogram: record one observation. */
void metric_observe(struct metric_series *s, double v);
/* Histogram: replace the whole state with a snapshot kept elsewhere (a thread's own
 * histogram): per-bucket counts, not cumulative, one per family bucket (observations above
 * the last bound are count minus their sum); sum in the family's unit. n must equal the
 * family's bucket count (else -EINVAL and nothing changes). */
int metric_hist_set(struct metric_series *s, const uint64_t *buckets, int n, uint64_t count,
		    double sum);
/* Current value of a counter/gauge series (tests, collect hooks). */
double metric_value(const struct metric_series *s);

/* Run fn(m, arg) before each render (to refresh gauges). */
int metrics_on_collect(struct metrics *m, metrics_collect_fn *fn, void *arg);

/* Render the whole registry as Prometheus text. Returns a malloc'd NUL-terminated string
 * the caller frees, length in *len; NULL + errno when out of memory. */
char *metrics_render(struct metrics *m, size_t *len);

#endif /* SLUICE_METRICS_H */
