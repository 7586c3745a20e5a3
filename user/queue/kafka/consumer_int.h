/* SPDX-License-Identifier: MIT */
/* consumer_int.h -- the Kafka consumer's state, shared by consumer.c (records, group,
 * commits) and consumer_stats.c (the client's statistics, metrics)
 *
 * One mutex guards everything below it; librdkafka calls are made without it except the
 * non-blocking pause/resume. Partitions are found by class and partition number (parts[c]
 * is indexed by the partition number and grows as partitions are assigned).
 */
#ifndef SLUICE_KAFKA_CONSUMER_INT_H
#define SLUICE_KAFKA_CONSUMER_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>

#include "queue/kafka/consumer.h"
#include "queue/kafka/offsets.h"

#define KCONSUMER_BATCH 256 /* records per poll */
/* a partial batch waits this long for the rest of its burst: bounds the poll thread's
 * wake-ups (and the feeder's) to one per period under load, adds at most this to latency */
#define KCONSUMER_GATHER_US 2000

struct kpart {
	uint32_t class;
	int32_t partition;
	struct kafka_offsets t; /* records handed to the ready list, and their completion */
	bool assigned, paused;
	bool dirty;		      /* the committable offset moved past the last commit */
	uint32_t ready;		      /* entries of this partition on the ready list */
	int64_t sent;		      /* last offset committed (or being committed), -1: none */
	int64_t lag, committed, high; /* from the client's statistics, -1: unknown */
	/* attempts kept with the group's committed offset (commit metadata, KATTEMPTS_META):
	 * the next delivery of the record at mark_off starts with mark_n attempts spent */
	int64_t mark_off;   /* -1: none */
	uint32_t mark_n;    /* kept in memory, committed with the offset mark_off */
	uint32_t mark_sent; /* mark_n last committed (a change is committed even in place) */
	bool mark_first;    /* assigned, first record not polled yet: it is marked durably */
	int64_t stored_off; /* read at assignment from the committed metadata, -1: none */
	uint32_t stored_n;
};

/* Commit metadata of a partition: "sluice-attempts=OFFSET:N". */
#define KATTEMPTS_META "sluice-attempts="

/* Backend-private trailer behind each entry's data (8-byte aligned). */
struct kentry {
	int64_t offset;
	uint64_t gen; /* the partition tracker's generation when handed out */
	uint64_t received_ns;
	int32_t partition;
	uint32_t bytes; /* allocation size, for the bytes count */
};

struct kconsumer {
	struct queue q; /* first: the queue handle */
	struct kafka_consumer_cfg cfg;
	rd_kafka_t *rk;
	char *topics[QUEUE_CLASS_MAX];
	pthread_t poller;
	bool poller_started;
	int stop; /* atomic: the poll thread ends */
	/* atomic: this member is between JoinGroup and its new assignment; periodic commits
	 * wait (consumer_group.c, rebalance_watch) */
	int rebalancing;
	queue_notify_fn *notify;
	void *notify_arg;
	rd_kafka_queue_t *cq; /* the consumer queue (the main queue forwarded to it) */
	/* the poll thread's batch; what is left found no memory and is offered again */
	rd_kafka_message_t *batch[KCONSUMER_BATCH];
	int nbatch;

	pthread_mutex_t lock;
	pthread_cond_t cv; /* ready entries, acks (window room), shutdown */
	struct kpart **parts[QUEUE_CLASS_MAX];
	int32_t nparts[QUEUE_CLASS_MAX];
	struct queue_entry *head[QUEUE_CLASS_MAX], *tail[QUEUE_CLASS_MAX];
	uint64_t nready[QUEUE_CLASS_MAX], nout[QUEUE_CLASS_MAX], bytes;
	bool shut, joined;
	uint64_t next_id, acks;
	struct kafka_consumer_stats st;
};

#define KENTRY_ALIGN8(x) (((x) + 7u) & ~(size_t)7u)

/* The trailer of an entry made by the consumer. */
static inline struct kentry *kentry_of(const struct queue_entry *e)
{
	return (struct kentry *)(void *)((uint8_t *)e->data + KENTRY_ALIGN8(e->len));
}

/* Mark the first record polled of each newly assigned partition in msgs (its delivery is
 * counted in the commit metadata before it is handed out). Lock not held; poll thread. */
void kconsumer_mark_first(struct kconsumer *k, rd_kafka_message_t **msgs, int n);
/* The partition, created (unassigned) when new. NULL on no memory. Lock held. */
struct kpart *kconsumer_part_get(struct kconsumer *k, uint32_t c, int32_t p);
/* The partition (class c, number p), NULL when never assigned. Lock held. */
struct kpart *kconsumer_part(struct kconsumer *k, uint32_t c, int32_t p);
/* The class of a topic name, -1 when it is none of ours. */
int kconsumer_class(const struct kconsumer *k, const char *topic);
/* Commit every owned partition's finished prefix that moved (async: the poll loop's
 * period; sync: at close). Lock not held. */
void kconsumer_commit(struct kconsumer *k, bool async);
/* librdkafka callbacks (consumer_group.c). */
void kconsumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			    rd_kafka_topic_partition_list_t *parts, void *opaque);
void kconsumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *offsets, void *opaque);
/* Watch the group protocol requests of rk (on_new interceptor, set on the conf before
 * rd_kafka_new) so periodic commits pause while this member rejoins its group. */
rd_kafka_resp_err_t kconsumer_rebalance_watch(rd_kafka_conf_t *conf, struct kconsumer *k);
/* The client's statistics JSON (statistics.interval.ms): broker lag per partition. */
int kconsumer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque);

#endif /* SLUICE_KAFKA_CONSUMER_INT_H */
