/* SPDX-License-Identifier: MIT */
/* producer_int.h -- the Kafka producer's state, shared by producer.c and spill.c
 *
 * Threads: intake threads call kafka_produce; the poll thread (producer.c) serves
 * librdkafka's delivery reports; with --kafka-spill, the forwarder thread (spill.c) moves
 * spilled journal entries to Kafka, and the journal's flusher runs the spill completions.
 * Counters are atomics; the forwarder's lists sit behind fwd_lock.
 */
#ifndef SLUICE_KAFKA_PRODUCER_INT_H
#define SLUICE_KAFKA_PRODUCER_INT_H

#include <pthread.h>

#include "queue/kafka/hot.h"
#include "queue/kafka/kafka.h"
#include "queue/queue.h"

/* 202 ids of spilled events: the journal's sequence number with the top bit set (ids of
 * produced events have it clear), so the forwarder can give the record the 202's id. */
#define KAFKA_SPILL_ID(jid) ((jid) | (1ULL << 63))

/* One produced record, librdkafka's msg_opaque until its delivery report. */
struct kmsg {
	kafka_done_fn *done; /* intake: the caller's completion */
	void *arg;
	struct queue_entry *entry; /* forwarder: the spilled entry to ack once delivered */
	uint64_t id;
	uint64_t t0; /* CLOCK_MONOTONIC at produce */
	uint64_t received_ns, due_ns;
	uint32_t attempts;
	unsigned cls;
	char tenant[65];
};

/* The producer's metric families (metrics.c). */
struct kmetrics {
	struct queue *q;
	struct metric_family *produced, *failures, *refused, *in_flight, *latency, *spilled,
	    *forwarded, *spill_depth, *hot, *up;
};

struct kprod {
	struct queue q; /* first: the handle */
	struct kafka_opts o;
	rd_kafka_t *rk;
	rd_kafka_topic_t *topic[3];
	pthread_t poller;
	bool poller_started;
	int stop;	     /* atomic: the poll thread ends */
	int closing;	     /* atomic: appends refused (shutdown) */
	int fatal;	     /* atomic: librdkafka raised a fatal error */
	int down;	     /* atomic: no broker took the last writes */
	uint64_t last_probe; /* atomic, CLOCK_MONOTONIC: a produce let through while down */
	uint64_t id_hi, seq; /* ids: id_hi | seq++ */
	struct kafka_hot hot;
	struct kafka_producer_stats st; /* atomics, but for kafka_down and hot_tenants */
	struct kmetrics metrics;
	/* spill (spill.c) */
	struct queue *spill;
	pthread_t fwd;
	bool fwd_started;
	pthread_mutex_t fwd_lock;
	pthread_cond_t fwd_cond;
	struct queue_entry *pending, **pending_tail; /* taken from the journal, not produced */
	struct queue_entry *retry; /* produced, failed: again in id order after a pause */
	uint64_t fwd_inflight;	   /* forwarded, no delivery report yet */
};

/* Produce ev with id for m (owned by librdkafka from here on success). 0 or -errno: -ENOSPC
 * librdkafka's queue is full, -EINVAL a bad event; m stays the caller's then. */
int kprod_send(struct kprod *p, const struct kafka_event *ev, uint64_t id, struct kmsg *m);
/* A delivery failure that means no broker takes writes (vs. one record refused). */
bool kprod_outage(rd_kafka_resp_err_t err);

/* spill.c */
int kspill_start(struct kprod *p);
void kspill_stop(struct kprod *p);
/* Write ev to the spill journal; done(arg, err, KAFKA_SPILL_ID(jid)) once it is synced. 0 or
 * the journal's refusal (done not called). */
int kspill_append(struct kprod *p, const struct kafka_event *ev, kafka_done_fn *done, void *arg);
/* Entries of the spill journal not yet forwarded. */
uint64_t kspill_depth(struct kprod *p);
/* Free the entries the forwarder holds (after the producer is destroyed). */
void kspill_release(struct kprod *p);
/* Delivery report of a forwarded entry (poll thread). */
void kspill_delivered(struct kprod *p, struct queue_entry *e, rd_kafka_resp_err_t err);

#endif /* SLUICE_KAFKA_PRODUCER_INT_H */
