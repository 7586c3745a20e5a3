// SPDX-License-Identifier: MIT
/* kafka-group.c -- a bare librdkafka consumer group: how long a SIGKILLed member's partitions
 * take to move, with nothing of Sluice in the way
 *
 *	kafka-group --brokers LIST [--topics T1,T2,...] [--members 3] [--group NAME]
 *		    [--session-ms 6000] [--heartbeat-ms 300] [--strategy cooperative-sticky]
 *
 * Forks --members processes, each an ordinary consumer of the topics (poll loop, the
 * rebalance callback assigns what it is given, no commits), waits until every member owns
 * partitions, kills member 1 with SIGKILL and prints
 *
 *	members=3 partitions=18 joined_s=3.2 takeover_s=11.0
 *
 * takeover_s: from the kill until the other members own every partition. This is the floor
 * any consumer can reach on that cluster with those settings (the worker's sigkill test
 * prints it next to the worker's own figure). Exit 0, 1 when the group did not settle within
 * 120 s. Members are forked before any librdkafka handle exists and die with this process.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MEMBERS 16
#define KILLED	    1

struct opts {
	const char *brokers, *topics, *group, *strategy, *session_ms, *heartbeat_ms;
	int members;
};

static int *owned; /* shared: partitions each member owns now */
static int self;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	rd_kafka_error_t *e = NULL;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
		__atomic_add_fetch(&owned[self], parts->cnt, __ATOMIC_SEQ_CST);
	} else {
		if (coop)
			e = rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
		if (coop)
			__atomic_sub_fetch(&owned[self], parts->cnt, __ATOMIC_SEQ_CST);
		else
			__atomic_store_n(&owned[self], 0, __ATOMIC_SEQ_CST);
	}
	rd_kafka_error_destroy(e);
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char err[256];

	if (rd_kafka_conf_set(c, k, v, err, sizeof(err))) {
		fprintf(stderr, "kafka-group: %s=%s: %s\n", k, v, err);
		_exit(2);
	}
}

static void member(const struct opts *o)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
	char err[256], *topics = strdup(o->topics), *save = NULL;
	rd_kafka_t *rk;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	set(c, "bootstrap.servers", o->brokers);
	set(c, "group.id", o->group);
	set(c, "partition.assignment.strategy", o->strategy);
	set(c, "session.timeout.ms", o->session_ms);
	set(c, "heartbeat.interval.ms", o->heartbeat_ms);
	set(c, "enable.auto.commit", "false");
	rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
	if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err)))) {
		fprintf(stderr, "kafka-group: %s\n", err);
		_exit(2);
	}
	rd_kafka_poll_set_consumer(rk);
	for (char *t = strtok_r(topics, ",", &save); t; t = strtok_r(NULL, ",", &save))
		rd_kafka_topic_partition_list_add(l, t, RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(rk, l)) {
		fprintf(stderr, "kafka-group: subscribe %s failed\n", o->topics);
		_exit(2);
	}
	for (;;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);

		if (m)
			rd_kafka_message_destroy(m);
	}
}

/* Partitions of the topics, from the cluster's metadata (a throwaway producer handle). */
static int count_partitions(const struct opts *o)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md;
	char err[256];
	rd_kafka_t *rk;
	int n = -1;

	set(c, "bootstrap.servers", o->brokers);
	if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err))))
		return -1;
	if (!rd_kafka_metadata(rk, 1, NULL, &md, 10000)) {
		n = 0;
		for (int i = 0; i < md->topic_cnt; i++) {
			size_t tl = strlen(md->topics[i].topic);
			const char *p = o->topics;

			for (; (p = strstr(p, md->topics[i].topic)); p += tl)
				if ((p == o->topics || p[-1] == ',') && (!p[tl] || p[tl] == ',')) {
					n += md->topics[i].partition_cnt;
					break;
				}
		}
		rd_kafka_metadata_destroy(md);
	}
	rd_kafka_destroy(rk);
	return n;
}

static int owned_sum(int n, int skip, bool *each)
{
	int sum = 0;

	*each = true;
	for (int i = 0; i < n; i++)
		if (i != skip) {
			int v = __atomic_load_n(&owned[i], __ATOMIC_SEQ_CST);

			sum += v;
			*each = *each && v > 0;
		}
	return sum;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: kafka-group --brokers LIST [--topics T1,T2,...] [--members N]\n"
		   "                   [--group NAME] [--session-ms MS] [--heartbeat-ms MS]\n"
		   "                   [--strategy NAME]\n"
		   "A bare consumer group: SIGKILL member 1, print the time until the others own\n"
		   "every partition (takeover_s).\n");
}

int main(int argc, char **argv)
{
	struct opts o = {.topics = "sluice.critical,sluice.normal,sluice.low",
			 .group = "kafka-group",
			 .strategy = "cooperative-sticky",
			 .session_ms = "6000",
			 .heartbeat_ms = "300",
			 .members = 3};
	pid_t pid[MAX_MEMBERS] = {0};
	double t0, tk, joined;
	int total, rc = 1;
	bool each;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "kafka-group: %s: missing value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--brokers"))
			o.brokers = v;
		else if (!strcmp(a, "--topics"))
			o.topics = v;
		else if (!strcmp(a, "--group"))
			o.group = v;
		else if (!strcmp(a, "--strategy"))
			o.strategy = v;
		else if (!strcmp(a, "--session-ms"))
			o.session_ms = v;
		else if (!strcmp(a, "--heartbeat-ms"))
			o.heartbeat_ms = v;
		else if (!strcmp(a, "--members")) {
			o.members = atoi(v);
			if (o.members < 2 || o.members > MAX_MEMBERS) {
				fprintf(stderr, "kafka-group: --members %s: 2..%d\n", v,
					MAX_MEMBERS);
				return 2;
			}
		} else {
			fprintf(stderr, "kafka-group: %s: unknown option\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!o.brokers) {
		fprintf(stderr, "kafka-group: --brokers is required\n");
		return 2;
	}
	owned = mmap(NULL, MAX_MEMBERS * sizeof(*owned), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (owned == MAP_FAILED) {
		perror("kafka-group: mmap");
		return 2;
	}
	fflush(stdout);
	for (int i = 0; i < o.members; i++) {
		if ((pid[i] = fork()) == 0) {
			self = i;
			member(&o);
		}
		if (pid[i] < 0) {
			perror("kafka-group: fork");
			goto out;
		}
	}
	if ((total = count_partitions(&o)) <= 0) {
		fprintf(stderr, "kafka-group: no partitions of %s found\n", o.topics);
		goto out;
	}
	t0 = now_s();
	while (owned_sum(o.members, -1, &each) != total || !each)
		if (now_s() - t0 > 120) {
			fprintf(stderr, "kafka-group: the group did not settle in 120 s\n");
			goto out;
		} else
			usleep(20000);
	joined = now_s() - t0;
	sleep(2); /* steady: heartbeats flowing */
	kill(pid[KILLED], SIGKILL);
	waitpid(pid[KILLED], NULL, 0);
	pid[KILLED] = 0;
	tk = now_s();
	while (owned_sum(o.members, KILLED, &each) != total)
		if (now_s() - tk > 120) {
			fprintf(stderr, "kafka-group: no takeover in 120 s\n");
			goto out;
		} else
			usleep(20000);
	printf("members=%d partitions=%d joined_s=%.1f takeover_s=%.1f\n", o.members, total, joined,
	       now_s() - tk);
	rc = 0;
out:
	for (int i = 0; i < o.members; i++)
		if (pid[i] > 0) {
			kill(pid[i], SIGKILL);
			waitpid(pid[i], NULL, 0);
		}
	return rc;
}
