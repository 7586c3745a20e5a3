/* SPDX-License-Identifier: MIT */
/* kafka.h -- the Kafka queue backend: settings, topic names, client configuration
 *
 * Sluice on Kafka splits the daemon in two roles that scale apart: ingress nodes produce
 * each accepted event to its class topic (producer.c: `--queue kafka --role ingress`, the
 * 202 only after the delivery report), workers consume the three class topics as one
 * consumer group. Both build their librdkafka configuration here, from the same settings,
 * so `--kafka kafka.KEY=VALUE` (TLS, SASL, tuning) reaches every client the same way.
 *
 * The record (docs/kafka.md, README "Kafka record format"; the consumer parses exactly this):
 *   topic    <prefix>.critical | <prefix>.normal | <prefix>.low   (kafka_topic_name)
 *   key      the tenant name; a hot tenant's records "<tenant>#<salt>", salt one decimal
 *            digit = hash(idempotency key) mod k (kafka_record_key)
 *   value    the event envelope JSON exactly as received
 *   headers  sluice-tenant    tenant name (the true tenant, also when the key is salted)
 *            sluice-class     critical | normal | low
 *            sluice-id        the event id of the 202 answer, 16 lowercase hex digits
 *            sluice-key       the envelope's idempotency_key
 *            sluice-received  CLOCK_REALTIME ns when the ingress accepted it, decimal
 *            sluice-due       CLOCK_REALTIME ns when it becomes due, decimal (= received for
 *                             a new event; later for a retry)
 *            sluice-attempts  deliveries so far, decimal (0 for a new event)
 *
 * Nothing here is mock-only: the same code runs against a real cluster; tools/kafka-mock
 * stands in for one in tests and `make run QUEUE=kafka`.
 */
#ifndef SLUICE_QUEUE_KAFKA_H
#define SLUICE_QUEUE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAFKA_CONF_MAX	   32
#define KAFKA_HOT_SALT_MAX 10 /* salts are one decimal digit */

/* Record header names. */
#define KAFKA_H_TENANT	 "sluice-tenant"
#define KAFKA_H_CLASS	 "sluice-class"
#define KAFKA_H_ID	 "sluice-id"
#define KAFKA_H_KEY	 "sluice-key"
#define KAFKA_H_RECEIVED "sluice-received"
#define KAFKA_H_DUE	 "sluice-due"
#define KAFKA_H_ATTEMPTS "sluice-attempts"

struct kafka_opts {
	char brokers[512];		   /* bootstrap.servers (--kafka-brokers) */
	char topic_prefix[64];		   /* --kafka-topic-prefix, default "sluice" */
	int nconf;			   /* --kafka kafka.KEY=VALUE pairs, in order given */
	char conf[KAFKA_CONF_MAX][2][256]; /* [i][0] key without "kafka.", [i][1] value */
	bool spill;			   /* --kafka-spill: journal while no broker takes writes */
	long long queue_max;	/* --kafka-queue-max: records produced, not yet reported */
	int hot_share_permille; /* --kafka-hot-share: 0 = no hot-tenant spreading */
	int hot_salts;		/* partitions a hot tenant is spread over (2..10) */
};

/* Defaults of every field (prefix "sluice", queue_max 10000, hot spreading off). */
void kafka_opts_default(struct kafka_opts *o);

/* One "kafka.KEY=VALUE" item into o (the --kafka flag's setter). 0, or -EINVAL (no
 * "kafka." prefix, no '=', empty key, too long) / -E2BIG (more than KAFKA_CONF_MAX) with
 * why filled. */
int kafka_opts_add_conf(struct kafka_opts *o, const char *item, char *why, size_t whylen);

/* The topic of class cls (enum sluice_class): "<prefix>.critical|normal|low". The length
 * written, or -EINVAL for an unknown class, -ENOSPC when buf is too small. */
int kafka_topic_name(const struct kafka_opts *o, unsigned cls, char *buf, size_t len);
/* The class of a topic name under o's prefix, or -ENOENT. */
int kafka_topic_class(const struct kafka_opts *o, const char *topic);
/* Class names as in the sluice-class header, NULL for an unknown class. */
const char *kafka_class_name(unsigned cls);

/* A new librdkafka configuration with bootstrap.servers = o->brokers and every --kafka
 * passthrough pair applied. The caller owns it (rd_kafka_conf_destroy, or hand it to
 * rd_kafka_new). NULL with err naming the flag and key on a refused pair
 * ("--kafka kafka.foo=1: No such configuration property: \"foo\""). */
rd_kafka_conf_t *kafka_conf_new(const struct kafka_opts *o, char *err, size_t errlen);
/* Set key = value in c unless the operator passed key through --kafka (their value wins).
 * 0, or -EINVAL with err naming the key. */
int kafka_conf_default(rd_kafka_conf_t *c, const struct kafka_opts *o, const char *key,
		       const char *value, char *err, size_t errlen);
/* Set key = value in c whatever was passed: a setting the backend's guarantees rest on
 * (enable.idempotence=true, acks=all). A --kafka pair that sets key to another value is
 * refused: -EINVAL with err naming it. */
int kafka_conf_require(rd_kafka_conf_t *c, const struct kafka_opts *o, const char *key,
		       const char *value, char *err, size_t errlen);

/* The record key of tenant: the name, or "<name>#<salt>" for salt >= 0. Length or
 * -ENOSPC. */
int kafka_record_key(const char *tenant, int salt, char *buf, size_t len);

/* Sluice-id values: 16 lowercase hex digits, as in the 202 answer. */
void kafka_id_format(uint64_t id, char buf[17]);

struct queue;
/* The producer backend (producer.c), for --role ingress/all: a struct queue whose append
 * produces; next/ack/replay answer -ENOTSUP. spill (may be NULL, with o->spill) is the
 * local journal records go to while no broker takes writes; the producer owns it from
 * here. NULL with err filled (a configuration error names the key: exit 2). */
struct queue *kafka_producer_open(const struct kafka_opts *o, struct queue *spill, char *err,
				  size_t errlen);

/* An accepted event as the ingress hands it over, with what the headers need. */
struct kafka_event {
	unsigned cls;	      /* enum sluice_class */
	const char *tenant;   /* name */
	const char *idem_key; /* idempotency_key */
	const void *value;    /* the envelope as received */
	size_t len;
	uint64_t received_ns; /* CLOCK_REALTIME; 0 = now */
	uint64_t due_ns;      /* 0 = received_ns */
	uint32_t attempts;
};

typedef void kafka_done_fn(void *arg, int err, uint64_t id);
/* Produce ev (copied) to q, a kafka_producer_open() handle. 0: done(arg, err, id) follows
 * exactly once from the producer's thread, err 0 only after the delivery report succeeded
 * (or, with spill, after the journal's fsync); id is the sluice-id. -ENOSPC: the producer
 * queue is full, -ENETDOWN: no broker takes writes (no spill), -EIO: the producer failed
 * for good, -ESHUTDOWN: closing, -EINVAL: a bad event; done is not called then. */
int kafka_produce(struct queue *q, const struct kafka_event *ev, kafka_done_fn *done, void *arg);
/* The producer's counters (a snapshot), for sluiced's metrics. */
struct kafka_producer_stats {
	uint64_t produced;	 /* delivery reports with success */
	uint64_t failed_timeout; /* delivery reports: message timed out */
	uint64_t failed_other;	 /* delivery reports: another error */
	uint64_t refused_full;	 /* produce refused: producer queue full */
	uint64_t refused_fatal;	 /* produce refused: the producer failed for good */
	uint64_t refused_down;	 /* produce refused: no broker takes writes, no spill */
	uint64_t in_flight;	 /* produced, no delivery report yet */
	uint64_t spilled;	 /* events written to the spill journal */
	uint64_t forwarded;	 /* spilled events delivered to Kafka, journal entry acked */
	uint64_t spill_depth;	 /* spilled events not yet forwarded */
	uint64_t hot_tenants;	 /* tenants spread over partitions now */
	uint64_t lat_count;	 /* delivery latency (produce -> report) of successes */
	uint64_t lat_hist[16];	 /* by ms: <1, <2, <4, ... <2^14, more */
	uint64_t lat_sum_ns;
	bool kafka_down; /* no broker took the last writes */
	bool fatal;	 /* the producer failed for good (restart) */
};
/* 0, or -EINVAL when q is not a producer handle. */
int kafka_producer_stats(struct queue *q, struct kafka_producer_stats *st);

struct metrics;
/* Register the producer's metric families in m and a collect hook reading q's counters
 * (sluice_kafka_*: produced, delivery failures and refusals by reason, in flight, delivery
 * latency, spill, hot tenants, up). 0 or -errno. */
int kafka_producer_metrics(struct metrics *m, struct queue *q);

/* The consumer backend for --role worker/all is kworker's: kafka_consumer_open() in
 * user/queue/kafka/consumer.c (not in this file set). sluiced.c calls it through the hook
 * open_kafka_consumer() there. */

#endif /* SLUICE_QUEUE_KAFKA_H */
