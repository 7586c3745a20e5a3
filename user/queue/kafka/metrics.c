// SPDX-License-Identifier: MIT
/* metrics.c -- the Kafka producer's Prometheus families (sluice_kafka_*)
 *
 * The producer keeps plain atomic counters (kafka_producer_stats); a collect hook copies
 * them into the families before each scrape, so the intake path never touches the
 * metrics lock.
 */
#include <errno.h>

#include "lib/metrics.h"
#include "queue/kafka/producer_int.h"

#define LAT_BUCKETS 15 /* 1 ms .. 16.384 s, doubling (the producer's histogram) */

static void collect(struct metrics *m, void *arg)
{
	struct kmetrics *k = arg;
	struct kafka_producer_stats st;

	(void)m;
	if (kafka_producer_stats(k->q, &st))
		return;
	metric_set(metrics_series(k->produced, NULL), (double)st.produced);
	metric_set(metrics_series(k->failures, (const char *[]){"timeout"}),
		   (double)st.failed_timeout);
	metric_set(metrics_series(k->failures, (const char *[]){"error"}), (double)st.failed_other);
	metric_set(metrics_series(k->refused, (const char *[]){"queue_full"}),
		   (double)st.refused_full);
	metric_set(metrics_series(k->refused, (const char *[]){"no_broker"}),
		   (double)st.refused_down);
	metric_set(metrics_series(k->refused, (const char *[]){"fatal"}), (double)st.refused_fatal);
	metric_set(metrics_series(k->in_flight, NULL), (double)st.in_flight);
	metric_hist_set(metrics_series(k->latency, NULL), st.lat_hist, LAT_BUCKETS, st.lat_count,
			(double)st.lat_sum_ns / 1e9);
	metric_set(metrics_series(k->spilled, NULL), (double)st.spilled);
	metric_set(metrics_series(k->forwarded, NULL), (double)st.forwarded);
	metric_set(metrics_series(k->spill_depth, NULL), (double)st.spill_depth);
	metric_set(metrics_series(k->hot, NULL), (double)st.hot_tenants);
	metric_set(metrics_series(k->up, NULL), st.kafka_down || st.fatal ? 0 : 1);
}

int kafka_producer_metrics(struct metrics *m, struct queue *q)
{
	static double bounds[LAT_BUCKETS];
	/* inside the producer, which is freed after the last scrape (the admin loop is
	 * drained before the queue goes) */
	struct kmetrics *k = &((struct kprod *)q)->metrics;
	struct kafka_producer_stats st;

	if (kafka_producer_stats(q, &st))
		return -EINVAL; /* not a producer */

	for (int i = 0; i < LAT_BUCKETS; i++)
		bounds[i] = (double)(1u << i) / 1000.0;
	k->q = q;
	k->produced = metrics_family(m, METRIC_COUNTER, "sluice_kafka_produced_total",
				     "Records Kafka acknowledged (acks=all).", NULL, NULL, 0);
	k->failures = metrics_family(m, METRIC_COUNTER, "sluice_kafka_delivery_failures_total",
				     "Delivery reports with an error (the event answered 503 or "
				     "spilled), by reason.",
				     "reason", NULL, 0);
	k->refused = metrics_family(m, METRIC_COUNTER, "sluice_kafka_produce_refused_total",
				    "Events refused at intake (503) before producing, by reason.",
				    "reason", NULL, 0);
	k->in_flight = metrics_family(m, METRIC_GAUGE, "sluice_kafka_in_flight",
				      "Records produced, delivery report pending.", NULL, NULL, 0);
	k->latency =
	    metrics_family(m, METRIC_HISTOGRAM, "sluice_kafka_delivery_seconds",
			   "Produce to successful delivery report.", NULL, bounds, LAT_BUCKETS);
	k->spilled = metrics_family(m, METRIC_COUNTER, "sluice_kafka_spilled_total",
				    "Events written to the spill journal.", NULL, NULL, 0);
	k->forwarded = metrics_family(m, METRIC_COUNTER, "sluice_kafka_forwarded_total",
				      "Spilled events delivered to Kafka and acked in the journal.",
				      NULL, NULL, 0);
	k->spill_depth = metrics_family(m, METRIC_GAUGE, "sluice_kafka_spill_depth",
					"Spilled events not yet forwarded.", NULL, NULL, 0);
	k->hot = metrics_family(m, METRIC_GAUGE, "sluice_kafka_hot_tenants",
				"Tenants spread over several partitions now.", NULL, NULL, 0);
	k->up = metrics_family(m, METRIC_GAUGE, "sluice_kafka_up",
			       "1 while brokers take writes, 0 during an outage.", NULL, NULL, 0);
	if (!k->produced || !k->failures || !k->refused || !k->in_flight || !k->latency ||
	    !k->spilled || !k->forwarded || !k->spill_depth || !k->hot || !k->up)
		return -EINVAL;
	return metrics_on_collect(m, collect, k);
}
