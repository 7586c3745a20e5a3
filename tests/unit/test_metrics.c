// SPDX-License-Identifier: MIT
/* test_metrics.c -- registry output: exact text for each type, escaping, promtool check */
#include <stdlib.h>
#include <unistd.h>

#include "lib/metrics.h"
#include "test_progs.h"

static void collect(struct metrics *m, void *arg)
{
	metric_set(arg, 42);
}

void test_metrics(void)
{
	static const double buckets[] = {0.001, 0.01, 0.1};
	struct metrics *m = metrics_new();
	struct metric_family *req, *conns, *lat, *snap;
	struct metric_series *s;
	char *out = NULL, path[512], cmd[700];
	size_t len;
	FILE *f;

	if (!ASSERT_OK_PTR(m, "new"))
		return;
	req = metrics_family(m, METRIC_COUNTER, "sluice_http_requests_total", "Requests.",
			     "route,status", NULL, 0);
	conns = metrics_family(m, METRIC_GAUGE, "sluice_http_connections", "Open.", NULL, NULL, 0);
	lat = metrics_family(m, METRIC_HISTOGRAM, "sluice_http_request_seconds", "Latency.",
			     "route", buckets, 3);
	if (!ASSERT_OK_PTR(req, "counter") || !ASSERT_OK_PTR(conns, "gauge") ||
	    !ASSERT_OK_PTR(lat, "histogram"))
		goto out;
	ASSERT_EQ(metrics_family(m, METRIC_COUNTER, "bad-name", "x", NULL, NULL, 0), NULL,
		  "bad name refused");
	metric_add(metrics_series(req, (const char *[]){"/v1/events", "202"}), 2);
	s = metrics_series(req, (const char *[]){"/v1/events", "202"});
	metric_add(s, 1);
	ASSERT_EQ(metric_value(s), 3, "same series");
	metric_add(metrics_series(req, (const char *[]){"q\"\\\n", "400"}), 1);
	metrics_on_collect(m, collect, metrics_series(conns, NULL));
	s = metrics_series(lat, (const char *[]){"/healthz"});
	metric_observe(s, 0.0005);
	metric_observe(s, 0.05);
	metric_observe(s, 5);
	/* a histogram kept by another thread, copied in whole (the PostgreSQL writer's) */
	snap = metrics_family(m, METRIC_HISTOGRAM, "sluice_db_batch_seconds", "Batches.", NULL,
			      buckets, 3);
	ASSERT_OK(
	    metric_hist_set(metrics_series(snap, NULL), (const uint64_t[]){4, 0, 2}, 3, 7, 0.25),
	    "snapshot set");
	ASSERT_EQ(metric_hist_set(metrics_series(snap, NULL), (const uint64_t[]){1, 1}, 2, 2, 0),
		  -EINVAL, "bucket count must match the family");
	ASSERT_EQ(metric_hist_set(metrics_series(conns, NULL), (const uint64_t[]){1}, 1, 1, 0),
		  -EINVAL, "only histograms");
	out = metrics_render(m, &len);
	if (!ASSERT_OK_PTR(out, "render"))
		goto out;
	ASSERT_HAS_STR(out, "# TYPE sluice_http_requests_total counter\n", "type line");
	ASSERT_HAS_STR(out, "sluice_http_requests_total{route=\"/v1/events\",status=\"202\"} 3\n",
		       "counter line");
	ASSERT_HAS_STR(out, "route=\"q\\\"\\\\\\n\"", "escaped label");
	ASSERT_HAS_STR(out, "sluice_http_connections 42\n", "collected gauge");
	ASSERT_HAS_STR(out,
		       "sluice_http_request_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 1\n",
		       "bucket 1");
	ASSERT_HAS_STR(out, "le=\"0.1\"} 2\n", "bucket cumulative");
	ASSERT_HAS_STR(out, "le=\"+Inf\"} 3\n", "inf bucket");
	ASSERT_HAS_STR(out, "sluice_http_request_seconds_count{route=\"/healthz\"} 3\n", "count");
	ASSERT_HAS_STR(out, "sluice_db_batch_seconds_bucket{le=\"0.01\"} 4\n",
		       "snapshot cumulative");
	ASSERT_HAS_STR(out, "sluice_db_batch_seconds_bucket{le=\"0.1\"} 6\n", "snapshot bucket 3");
	ASSERT_HAS_STR(out, "sluice_db_batch_seconds_bucket{le=\"+Inf\"} 7\n",
		       "overflow from count");
	ASSERT_HAS_STR(out, "sluice_db_batch_seconds_sum 0.25\n", "snapshot sum");
	if (access("/usr/bin/promtool", X_OK)) {
		test__skip("promtool not installed (apt package prometheus)");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/metrics.txt", test__tmpdir());
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "tmp file"))
		goto out;
	fwrite(out, 1, len, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	ASSERT_OK(system(cmd), "promtool check metrics");
out:
	free(out);
	metrics_free(m);
}
