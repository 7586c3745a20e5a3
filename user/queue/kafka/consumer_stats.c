// SPDX-License-Identifier: MIT
/* consumer_stats.c -- the Kafka consumer's numbers: broker lag per partition, the age of the
 * oldest unfinished record per class, counters, and their Prometheus series
 *
 * Broker lag (high watermark - committed offset) comes from librdkafka's statistics JSON
 * (statistics.interval.ms, 1 s by default here), which carries both offsets as the client
 * last saw them; reading them there costs no request to the brokers. The statistics
 * callback runs on the poll thread. A partition this worker does not own (any more) is
 * exported as 0, so a sum over workers counts each partition once.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/metrics.h"
#include "queue/kafka/consumer_int.h"

static int64_t json_i64(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* One topic's partitions from the statistics. Lock held. */
static void stats_topic(struct kconsumer *k, uint32_t c, json_t *parts)
{
	const char *key;
	json_t *p;

	json_object_foreach(parts, key, p)
	{
		char *end;
		long id = strtol(key, &end, 10);
		struct kpart *kp = *end || id < 0 ? NULL : kconsumer_part(k, c, (int32_t)id);
		int64_t hi, committed;

		if (!kp || !kp->assigned)
			continue;
		hi = json_i64(p, "hi_offset");
		committed = json_i64(p, "committed_offset");
		kp->high = hi;
		kp->committed = committed;
		/* before any commit of the group, everything from the log start is behind */
		if (committed < 0)
			committed = json_i64(p, "lo_offset");
		kp->lag = hi >= 0 && committed >= 0 ? (hi > committed ? hi - committed : 0) : -1;
	}
}

int kconsumer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct kconsumer *k = opaque;
	json_t *root = json_loadb(json, len, 0, NULL), *topics;
	const char *name;
	json_t *t;

	topics = json_object_get(root, "topics");
	pthread_mutex_lock(&k->lock);
	json_object_foreach(topics, name, t)
	{
		int c = kconsumer_class(k, name);

		if (c >= 0)
			stats_topic(k, (uint32_t)c, json_object_get(t, "partitions"));
	}
	pthread_mutex_unlock(&k->lock);
	json_decref(root);
	return 0; /* librdkafka frees json */
}

uint64_t kafka_consumer_oldest_ns(struct queue *q, uint32_t c)
{
	struct kconsumer *k = (struct kconsumer *)q;
	uint64_t oldest = 0;

	if (c >= QUEUE_CLASS_MAX)
		return 0;
	pthread_mutex_lock(&k->lock);
	for (int32_t p = 0; p < k->nparts[c]; p++) {
		struct kpart *kp = k->parts[c][p];
		uint64_t ts = kp && kp->assigned ? kafka_offsets_oldest_ts(&kp->t) : 0;

		if (ts && (!oldest || ts < oldest))
			oldest = ts;
	}
	pthread_mutex_unlock(&k->lock);
	return oldest;
}

void kafka_consumer_each_partition(struct queue *q, kafka_part_fn *fn, void *arg)
{
	struct kconsumer *k = (struct kconsumer *)q;

	pthread_mutex_lock(&k->lock);
	for (uint32_t c = 0; c < QUEUE_CLASS_MAX; c++)
		for (int32_t p = 0; p < k->nparts[c]; p++) {
			struct kpart *kp = k->parts[c][p];
			struct kafka_part_info pi;

			if (!kp)
				continue;
			pi = (struct kafka_part_info){
			    .topic = k->topics[c],
			    .class = c,
			    .partition = p,
			    .lag = kp->assigned ? kp->lag : 0,
			    .committed = kp->committed,
			    .high = kp->high,
			    .unfinished = kp->assigned ? kafka_offsets_unfinished(&kp->t) : 0,
			};
			fn(arg, &pi);
		}
	pthread_mutex_unlock(&k->lock);
}

void kafka_consumer_get_stats(struct queue *q, struct kafka_consumer_stats *st)
{
	struct kconsumer *k = (struct kconsumer *)q;

	pthread_mutex_lock(&k->lock);
	*st = k->st;
	pthread_mutex_unlock(&k->lock);
}

/* ---- Prometheus ------------------------------------------------------------------- */

struct kmetrics {
	struct queue *q;
	struct metric_family *lag, *oldest, *counters, *assigned;
};

static void export_part(void *arg, const struct kafka_part_info *p)
{
	struct kmetrics *km = arg;
	char part[16];
	const char *v[2] = {p->topic, part};

	snprintf(part, sizeof(part), "%d", p->partition);
	metric_set(metrics_series(km->lag, v), p->lag < 0 ? 0 : (double)p->lag);
}

static void collect(struct metrics *m, void *arg)
{
	static const char *const class_names[QUEUE_CLASS_MAX] = {"critical", "normal", "low"};
	struct kmetrics *km = arg;
	struct kafka_consumer_stats st;
	uint64_t now = clock_real_ns();

	kafka_consumer_each_partition(km->q, export_part, km);
	for (uint32_t c = 0; c < QUEUE_CLASS_MAX; c++) {
		uint64_t ts = kafka_consumer_oldest_ns(km->q, c);
		const char *v[1] = {class_names[c]};

		metric_set(metrics_series(km->oldest, v),
			   ts && now > ts ? (double)(now - ts) / 1e9 : 0);
	}
	kafka_consumer_get_stats(km->q, &st);
	metric_set(metrics_series(km->assigned, NULL), (double)st.assigned);
	{
		const struct {
			const char *name;
			uint64_t v;
		} c[] = {{"records", st.records},
			 {"acks_stale", st.acks_stale},
			 {"commits", st.commits},
			 {"commit_errors", st.commit_errors},
			 {"rebalances", st.rebalances},
			 {"dropped_revoked", st.dropped_revoked},
			 {"pauses", st.pauses},
			 {"lost", st.lost},
			 {"commits_held", st.commits_held},
			 {"redelivered", st.redelivered}};

		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
			metric_set(metrics_series(km->counters, (const char *[]){c[i].name}),
				   (double)c[i].v);
	}
}

int kafka_consumer_metrics(struct queue *q, struct metrics *m)
{
	/* lives as long as the registry: the collect hook cannot be removed */
	static struct kmetrics km;

	km.q = q;
	km.lag = metrics_family(m, METRIC_GAUGE, "sluice_kafka_consumer_lag_records",
				"Records behind in a partition this worker owns: high watermark - "
				"committed offset (0 for partitions owned elsewhere).",
				"topic,partition", NULL, 0);
	km.oldest = metrics_family(m, METRIC_GAUGE, "sluice_kafka_oldest_unfinished_seconds",
				   "Age (from its due time) of the oldest record of the class "
				   "polled and not yet finished.",
				   "class", NULL, 0);
	km.assigned =
	    metrics_family(m, METRIC_GAUGE, "sluice_kafka_partitions_assigned",
			   "Partitions of the class topics this worker owns.", NULL, NULL, 0);
	km.counters = metrics_family(m, METRIC_COUNTER, "sluice_kafka_consumer_events_total",
				     "Consumer events by kind (records polled, stale acks, "
				     "commits, rebalances, ...).",
				     "kind", NULL, 0);
	if (!km.lag || !km.oldest || !km.assigned || !km.counters)
		return -ENOMEM;
	return metrics_on_collect(m, collect, &km);
}
