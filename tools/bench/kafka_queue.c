// SPDX-License-Identifier: MIT
/* kafka_queue.c -- the Kafka queue alone: produce -> consume -> commit msgs/s through
 * Sluice's backend against a bare librdkafka loop on the same mock cluster, same run
 *
 * One in-process librdkafka mock cluster (3 brokers, the three class topics with
 * --partitions each, RF 3). Each round sends N records of --size bytes, class i % 3, key =
 * one of 16 tenants, and times from the first produce until every record was consumed,
 * acknowledged and its offset committed (synchronous commit at the end):
 *   sluice: kafka_produce (idempotent, acks=all, headers; the delivery report completes)
 *           -> kafka_consumer_open: queue_next -> queue_ack (as the worker acks) -> the
 *           tracker's prefix commits;
 *   bare:   rd_kafka_producev (same producer settings, no headers) -> a consumer in a group
 *           polling and committing its position every 100 ms -- the ceiling.
 * Both consumers have joined their group before the clock starts (the mock delays a first
 * join by 3 s). Rounds alternate; medians and the median ratio are printed. Target: sluice
 * >= 0.7 x bare.
 *
 *	kafka_queue [--records N] [--rounds R] [--size BYTES] [--partitions P]
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_stats.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "queue/kafka/consumer.h"
#include "queue/kafka/kafka.h"
#include "queue/queue.h"

struct opts {
	int records, rounds, size, partitions;
};

static const char *const topics[3] = {"sluice.critical", "sluice.normal", "sluice.low"};
static char bootstrap[512];
static char value[65536];

static rd_kafka_conf_t *conf_base(void)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();

	rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, NULL, 0);
	rd_kafka_conf_set(c, "log_level", "2", NULL, 0);
	return c;
}

/* ---- bare ------------------------------------------------------------------------------ */

static int bare_joined;

static void bare_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			   rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
		__atomic_store_n(&bare_joined, 1, __ATOMIC_RELEASE);
	} else {
		rd_kafka_commit(rk, NULL, 0);
		rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
	}
}

static double bare_round(const struct opts *o, int round)
{
	rd_kafka_conf_t *pc = conf_base(), *cc = conf_base();
	rd_kafka_t *p, *c;
	char group[64];
	int got = 0;
	uint64_t t0, last;

	rd_kafka_conf_set(pc, "enable.idempotence", "true", NULL, 0);
	rd_kafka_conf_set(pc, "acks", "all", NULL, 0);
	rd_kafka_conf_set(pc, "linger.ms", "2", NULL, 0);
	snprintf(group, sizeof(group), "bare-%d", round);
	rd_kafka_conf_set(cc, "group.id", group, NULL, 0);
	rd_kafka_conf_set(cc, "enable.auto.commit", "false", NULL, 0);
	rd_kafka_conf_set(cc, "auto.offset.reset", "latest", NULL, 0);
	rd_kafka_conf_set(cc, "partition.assignment.strategy", "cooperative-sticky", NULL, 0);
	rd_kafka_conf_set_rebalance_cb(cc, bare_rebalance);
	p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, NULL, 0);
	c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, NULL, 0);
	if (!p || !c) {
		fprintf(stderr, "kafka_queue: bare clients failed\n");
		exit(1);
	}
	rd_kafka_poll_set_consumer(c);
	{
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);

		for (int i = 0; i < 3; i++)
			rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
		rd_kafka_subscribe(c, l);
		rd_kafka_topic_partition_list_destroy(l);
	}
	__atomic_store_n(&bare_joined, 0, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&bare_joined, __ATOMIC_ACQUIRE)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);

		if (m)
			rd_kafka_message_destroy(m);
	}
	usleep(500000); /* positions fetched ("latest") before the first record */
	t0 = last = clock_mono_ns();
	for (int i = 0; i < o->records || got < o->records;) {
		rd_kafka_message_t *m;

		/* produce in slices so the consumer runs alongside */
		for (int k = 0; k < 256 && i < o->records; k++, i++) {
			char key[16];

			snprintf(key, sizeof(key), "tenant%d", i % 16);
			while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topics[i % 3]),
						 RD_KAFKA_V_KEY(key, strlen(key)),
						 RD_KAFKA_V_VALUE(value, (size_t)o->size),
						 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(p, 1);
		}
		rd_kafka_poll(p, 0);
		while ((m = rd_kafka_consumer_poll(c, i < o->records ? 0 : 100))) {
			got += !m->err;
			rd_kafka_message_destroy(m);
		}
		if (clock_mono_ns() - last >= 100000000ULL) {
			rd_kafka_commit(c, NULL, 1);
			last = clock_mono_ns();
		}
	}
	rd_kafka_flush(p, 10000);
	rd_kafka_commit(c, NULL, 0);
	t0 = clock_mono_ns() - t0;
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	rd_kafka_destroy(p);
	return (double)o->records / ((double)t0 / 1e9);
}

/* ---- sluice ---------------------------------------------------------------------------- */

struct sluice_run {
	struct queue *cq;
	int want, got;
	int produced;
};

static void on_delivered(void *arg, int err, uint64_t id)
{
	struct sluice_run *r = arg;

	if (err) {
		fprintf(stderr, "kafka_queue: a delivery failed: %s\n", strerror(-err));
		exit(1);
	}
	__atomic_add_fetch(&r->produced, 1, __ATOMIC_RELAXED);
}

static void *sluice_consume(void *arg)
{
	struct sluice_run *r = arg;
	struct queue_entry *batch[64];

	while (r->got < r->want) {
		int n = queue_next(r->cq, batch, 64, 100);

		for (int i = 0; i < n; i++)
			queue_ack(r->cq, batch[i]);
		r->got += n > 0 ? n : 0;
	}
	return NULL;
}

static double sluice_round(const struct opts *o, int round)
{
	struct kafka_opts ko;
	struct kafka_consumer_cfg cc = {0};
	struct sluice_run r = {.want = o->records};
	char err[512], group[64], tenant[16], ikey[32];
	struct queue *pq;
	pthread_t t;
	uint64_t t0;

	kafka_opts_default(&ko);
	snprintf(ko.brokers, sizeof(ko.brokers), "%s", bootstrap);
	kafka_opts_add_conf(&ko, "kafka.log_level=2", err, sizeof(err));
	kafka_opts_add_conf(&ko, "kafka.auto.offset.reset=latest", err, sizeof(err));
	snprintf(group, sizeof(group), "sluice-%d", round);
	cc.group = group;
	pq = kafka_producer_open(&ko, NULL, err, sizeof(err));
	r.cq = pq ? kafka_consumer_open(&ko, &cc, err, sizeof(err)) : NULL;
	if (!r.cq) {
		fprintf(stderr, "kafka_queue: %s\n", err);
		exit(1);
	}
	while (!kafka_consumer_joined(r.cq))
		usleep(20000);
	usleep(500000);
	pthread_create(&t, NULL, sluice_consume, &r);
	t0 = clock_mono_ns();
	for (int i = 0; i < o->records; i++) {
		struct kafka_event ev = {.cls = (unsigned)(i % 3),
					 .tenant = tenant,
					 .idem_key = ikey,
					 .value = value,
					 .len = (size_t)o->size};
		int ret;

		snprintf(tenant, sizeof(tenant), "tenant%d", i % 16);
		snprintf(ikey, sizeof(ikey), "r%d-%d", round, i);
		while ((ret = kafka_produce(pq, &ev, on_delivered, &r)) == -ENOSPC)
			usleep(200);
		if (ret) {
			fprintf(stderr, "kafka_queue: produce: %s\n", strerror(-ret));
			exit(1);
		}
	}
	pthread_join(t, NULL);
	kafka_consumer_commit_now(r.cq); /* the final synchronous commit, as the bare loop's */
	t0 = clock_mono_ns() - t0;
	queue_free(r.cq);
	queue_free(pq);
	return (double)o->records / ((double)t0 / 1e9);
}

int main(int argc, char **argv)
{
	struct opts o = {.records = 100000, .rounds = 3, .size = 200, .partitions = 6};
	static const struct option lo[] = {{"records", 1, 0, 'n'},
					   {"rounds", 1, 0, 'r'},
					   {"size", 1, 0, 's'},
					   {"partitions", 1, 0, 'p'},
					   {0, 0, 0, 0}};
	double bare[16], sl[16], ratio[16];
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *host;
	int opt;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o.records = atoi(optarg);
			break;
		case 'r':
			o.rounds = atoi(optarg);
			break;
		case 's':
			o.size = atoi(optarg);
			break;
		case 'p':
			o.partitions = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: kafka_queue [--records N] [--rounds R] [--size BYTES] "
				"[--partitions P]\n");
			return 2;
		}
	}
	if (o.records < 1 || o.rounds < 1 || o.rounds > 16 || o.size < 1 ||
	    o.size > (int)sizeof(value) || o.partitions < 1) {
		fprintf(stderr, "kafka_queue: --records >= 1, --rounds 1-16, --size 1-65536, "
				"--partitions >= 1\n");
		return 2;
	}
	log_set_level_name("warn");
	for (int i = 0; i < o.size; i++)
		value[i] = (char)('a' + i % 26);
	host = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), NULL, 0);
	mc = host ? rd_kafka_mock_cluster_new(host, 3) : NULL;
	if (!mc) {
		fprintf(stderr, "kafka_queue: cannot start the mock cluster\n");
		return 1;
	}
	for (int i = 0; i < 3; i++)
		rd_kafka_mock_topic_create(mc, topics[i], o.partitions, 3);
	snprintf(bootstrap, sizeof(bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(mc));
	printf("kafka_queue: records=%d size=%d partitions=%d x 3 topics rounds=%d (mock, 3 "
	       "brokers, RF 3)\n",
	       o.records, o.size, o.partitions, o.rounds);
	for (int r = 0; r < o.rounds; r++) {
		/* alternate which goes first: neither pays for the other's leftovers each time */
		if (r % 2) {
			bare[r] = bare_round(&o, r);
			sl[r] = sluice_round(&o, r);
		} else {
			sl[r] = sluice_round(&o, r);
			bare[r] = bare_round(&o, r);
		}
		ratio[r] = sl[r] / bare[r];
		printf("round %d: sluice %.0f msgs/s, bare %.0f msgs/s, ratio %.2f\n", r + 1, sl[r],
		       bare[r], ratio[r]);
		fflush(stdout);
	}
	printf("median: sluice %.0f msgs/s (produce -> consume -> ack -> commit), bare librdkafka "
	       "%.0f msgs/s\n",
	       bench_median(sl, (size_t)o.rounds), bench_median(bare, (size_t)o.rounds));
	printf("ratio sluice/bare (median of rounds): %.2f (target >= 0.70)\n",
	       bench_median(ratio, (size_t)o.rounds));
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(host);
	return 0;
}
