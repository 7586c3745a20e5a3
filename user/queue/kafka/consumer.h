/* SPDX-License-Identifier: MIT */
/* consumer.h -- the Kafka queue backend's worker half: a consumer group behind queue_ops
 *
 * kafka_consumer_open joins a consumer group (cooperative-sticky assignment, no auto-commit)
 * on the three class topics <prefix>.critical|normal|low and serves queue_next/queue_ack:
 *   - a poll thread turns each record into a queue_entry laid out like a journal record
 *     (data = tenant name '\n' envelope, class from the topic, enq_ns = the sluice-due
 *     header, tenant slot from cfg.tenant_slot) and puts it on its class's ready list;
 *     a partition with cfg.prefetch records ready is paused and resumed once half drained,
 *     so memory stays bounded and the class weights of the pools decide what runs;
 *   - next() hands out ready entries, at most cfg.window per class not yet acked;
 *   - ack() marks the record finished in its partition's tracker (offsets.h); the poll
 *     thread commits each partition's finished prefix asynchronously every
 *     cfg.commit_interval_ms, and synchronously when partitions are revoked and at close.
 *     Acks of records whose partition was revoked since are ignored: the new owner reads
 *     them again from the committed offset (PostgreSQL idempotency keeps the effect single).
 *   - append is -ENOTSUP (the producer half is the ingress's); replay hands out nothing
 *     (what was never committed comes back through next()).
 * The code is an ordinary librdkafka client: nothing mock-only.
 */
#ifndef SLUICE_KAFKA_CONSUMER_H
#define SLUICE_KAFKA_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define KAFKA_GROUP_DEFAULT "sluice-workers"

struct kafka_consumer_cfg {
	const char *group;	     /* NULL or "": KAFKA_GROUP_DEFAULT */
	uint32_t window;	     /* entries per class handed out and not acked (0: 1024) */
	uint32_t prefetch;	     /* ready entries per partition before pausing it (0: 512) */
	uint32_t commit_interval_ms; /* async commit period (0: 100) */
	/* the tenant slot of a tenant name (the worker's tenants file), -1 when unknown; NULL
	 * or -1: a hash of the name stands in (never a real slot), so DRR still tells tenants
	 * apart */
	int64_t (*tenant_slot)(void *arg, const char *name);
	void *tenant_arg;
};

struct kafka_opts;
/* Create the consumer for the class topics of o (brokers, prefix, --kafka passthrough, see
 * kafka.h) and subscribe. group.id, the cooperative-sticky strategy and auto-commit off are
 * required (a --kafka pair setting them otherwise is refused). NULL + errno with err naming
 * the bad setting. The group is joined in the background (kafka_consumer_joined). */
struct queue *kafka_consumer_open(const struct kafka_opts *o, const struct kafka_consumer_cfg *c,
				  char *err, size_t errlen);

/* The group assigned this consumer its partitions at least once (it may own none when there
 * are more consumers than partitions) and it has not left since. */
bool kafka_consumer_joined(struct queue *q);

/* Commit every owned partition's finished prefix now, synchronously (the poll thread does
 * it asynchronously every commit_interval_ms; close does it too). Any thread. */
void kafka_consumer_commit_now(struct queue *q);

/* The received time (sluice-received header, CLOCK_REALTIME ns) of an entry from this
 * backend; 0 when the record had none. */
uint64_t kafka_entry_received_ns(const struct queue_entry *e);

/* Per-class age input: the due time (CLOCK_REALTIME ns) of the oldest unfinished record of
 * class c among the partitions owned now, 0 when there is none. */
uint64_t kafka_consumer_oldest_ns(struct queue *q, uint32_t c);

/* One owned partition's numbers, for metrics. lag = high watermark - committed offset as the
 * client last saw them (-1: not known yet). */
struct kafka_part_info {
	const char *topic;
	uint32_t class;
	int32_t partition;
	int64_t lag, committed, high;
	uint64_t unfinished;
};
typedef void kafka_part_fn(void *arg, const struct kafka_part_info *p);
void kafka_consumer_each_partition(struct queue *q, kafka_part_fn *fn, void *arg);

/* Counters beyond queue_stats. */
struct kafka_consumer_stats {
	uint64_t records;	  /* records turned into entries */
	uint64_t acks_stale;	  /* acks ignored: their partition was revoked since */
	uint64_t commits;	  /* offset commits sent (async + sync) */
	uint64_t commit_errors;	  /* commits the broker refused or that failed */
	uint64_t assigned;	  /* partitions owned now */
	uint64_t rebalances;	  /* assign + revoke callbacks */
	uint64_t dropped_revoked; /* ready (never handed out) entries dropped on revoke */
	uint64_t pauses;	  /* partitions paused for a full prefetch */
	uint64_t lost;		  /* assignments lost (the group moved on without this member) */
	uint64_t commits_held;	  /* periodic commits put off while this member rejoined */
	uint64_t redelivered;	  /* records delivered again with attempts kept from earlier */
};
void kafka_consumer_get_stats(struct queue *q, struct kafka_consumer_stats *st);

struct metrics;
/* Register sluice_kafka_consumer_lag_records{topic,partition},
 * sluice_kafka_oldest_unfinished_seconds{class} and the consumer counters. -errno. */
int kafka_consumer_metrics(struct queue *q, struct metrics *m);

#endif /* SLUICE_KAFKA_CONSUMER_H */
