// SPDX-License-Identifier: MIT
/* test_kafka_consumer.c -- the Kafka consumer backend on an in-process librdkafka mock
 * cluster (3 brokers): records become journal-shaped entries (tenant line, class from the
 * topic, enq_ns from sluice-due, tenant from the key when headers are missing); commits
 * never pass an unacked record, also with out-of-order acks; the per-class window and the
 * per-partition prefetch bound what is held and pausing does not lose records; a second
 * group member takes partitions over: the revoke commits the finished prefix, acks of the
 * moved records are ignored and the new owner reads them again; attempts (a retry's note,
 * an unfinished delivery) reach the next owner through the commit metadata. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/clock.h"
#include "queue/kafka/consumer.h"
#include "queue/kafka/kafka.h"
#include "test_progs.h"

static const char *const topics[3] = {"kt.critical", "kt.normal", "kt.low"};

struct mock {
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	const char *bootstrap;
};

static rd_kafka_conf_t *quiet_conf(void)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();

	rd_kafka_conf_set(c, "log_level", "2", NULL, 0);
	return c;
}

static bool mock_start(struct mock *m, int partitions)
{
	char err[256];

	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, quiet_conf(), err, sizeof(err));
	if (!ASSERT_OK_PTR(m->rk, "mock host"))
		return false;
	m->mc = rd_kafka_mock_cluster_new(m->rk, 3);
	if (!ASSERT_OK_PTR(m->mc, "mock cluster"))
		return false;
	for (int c = 0; c < 3; c++)
		if (!ASSERT_OK(rd_kafka_mock_topic_create(m->mc, topics[c], partitions, 3),
			       "topic"))
			return false;
	m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->mc);
	return true;
}

static void mock_stop(struct mock *m)
{
	if (m->mc)
		rd_kafka_mock_cluster_destroy(m->mc);
	if (m->rk)
		rd_kafka_destroy(m->rk);
}

static rd_kafka_t *producer(const struct mock *m)
{
	rd_kafka_conf_t *c = quiet_conf();
	char err[256];

	rd_kafka_conf_set(c, "bootstrap.servers", m->bootstrap, err, sizeof(err));
	rd_kafka_conf_set(c, "linger.ms", "1", err, sizeof(err));
	return rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
}

/* One record with the producer's headers (due 0: no headers at all, key only). */
static int produce(rd_kafka_t *p, int c, int part, const char *key, const char *tenant,
		   const char *value, uint64_t due)
{
	char d[32];

	snprintf(d, sizeof(d), "%llu", (unsigned long long)due);
	if (!due)
		return -rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topics[c]),
					  RD_KAFKA_V_PARTITION(part),
					  RD_KAFKA_V_KEY(key, strlen(key)),
					  RD_KAFKA_V_VALUE((void *)value, strlen(value)),
					  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	return -rd_kafka_producev(
	    p, RD_KAFKA_V_TOPIC(topics[c]), RD_KAFKA_V_PARTITION(part),
	    RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADER("sluice-tenant", tenant, -1), RD_KAFKA_V_HEADER("sluice-due", d, -1),
	    RD_KAFKA_V_HEADER("sluice-received", d, -1),
	    RD_KAFKA_V_HEADER("sluice-attempts", "2", -1), RD_KAFKA_V_END);
}

/* n records per partition of every topic, value "c/p/i" */
static bool produce_all(const struct mock *m, int partitions, int n)
{
	rd_kafka_t *p = producer(m);
	char v[64];
	bool ok = true;

	if (!ASSERT_OK_PTR(p, "producer"))
		return false;
	for (int c = 0; c < 3 && ok; c++)
		for (int part = 0; part < partitions && ok; part++)
			for (int i = 0; i < n && ok; i++) {
				snprintf(v, sizeof(v), "{\"c\":%d,\"p\":%d,\"i\":%d}", c, part, i);
				ok = ASSERT_OK(produce(p, c, part, "acme", "acme", v,
						       1000000000ULL + (uint64_t)i),
					       "produce");
			}
	ok = ok && ASSERT_OK(rd_kafka_flush(p, 10000), "flush");
	rd_kafka_destroy(p);
	return ok;
}

static struct queue *consumer(const struct mock *m, const struct kafka_consumer_cfg *cfg)
{
	/* fetch.wait.max.ms 20 (default 500): window_and_prefetch pauses and resumes its
	 * partitions dozens of times and took 17 s with the default, 6 s with this; it checks
	 * the bounds, not how fast a resumed partition refills. session.timeout.ms 3000: the
	 * mock's coordinator holds every rebalance of a group with members for the session
	 * timeout - 1 s however soon they rejoin (revoke_takeover has two); heartbeats every
	 * 100 ms keep a live member well inside it */
	static const char *const conf[] = {
	    "kafka.session.timeout.ms=3000", "kafka.heartbeat.interval.ms=100", "kafka.log_level=2",
	    "kafka.statistics.interval.ms=200", "kafka.fetch.wait.max.ms=20"};
	struct kafka_opts o;
	char err[512] = "";
	struct queue *q;

	kafka_opts_default(&o);
	snprintf(o.brokers, sizeof(o.brokers), "%s", m->bootstrap);
	snprintf(o.topic_prefix, sizeof(o.topic_prefix), "kt");
	for (size_t i = 0; i < sizeof(conf) / sizeof(conf[0]); i++)
		if (kafka_opts_add_conf(&o, conf[i], err, sizeof(err)))
			printf("%s: %s\n", conf[i], err);
	q = kafka_consumer_open(&o, cfg, err, sizeof(err));
	if (!q)
		printf("kafka_consumer_open: %s\n", err);
	return q;
}

/* The group's committed offset of one partition (-1 none, -2 query failed). */
static int64_t committed(const struct mock *m, const char *group, int c, int part)
{
	rd_kafka_conf_t *conf = quiet_conf();
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	char err[256];
	int64_t off = -2;
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstrap, err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	rd_kafka_topic_partition_list_add(l, topics[c], part);
	if (rk && !rd_kafka_committed(rk, l, 5000) && !l->elems[0].err)
		off = l->elems[0].offset < 0 ? -1 : l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	if (rk)
		rd_kafka_destroy(rk);
	return off;
}

/* Wait up to 20 s for the committed offset to reach want. */
static int64_t wait_committed(const struct mock *m, const char *group, int c, int part,
			      int64_t want)
{
	uint64_t end = clock_mono_ns() + 20 * CLOCK_NS_PER_SEC;
	int64_t off;

	while ((off = committed(m, group, c, part)) != want && clock_mono_ns() < end)
		usleep(100000);
	return off;
}

/* Parse "{"c":C,"p":P,"i":I}" out of an entry's data (after the tenant line). */
static bool entry_cpi(const struct queue_entry *e, int *c, int *p, int *i)
{
	const char *nl = memchr(e->data, '\n', e->len);

	return nl && sscanf(nl + 1, "{\"c\":%d,\"p\":%d,\"i\":%d}", c, p, i) == 3;
}

#define PARTS 2
#define PER   50

static void records_and_commits(void)
{
	struct kafka_consumer_cfg cfg = {.group = "g-records", .commit_interval_ms = 50};
	struct queue_entry *batch[64], *held = NULL, *all[3 * PARTS * PER];
	static bool seen[3][PARTS][PER];
	struct mock m = {0};
	struct queue *q = NULL;
	int got = 0, n;
	uint64_t end;
	rd_kafka_t *p;

	memset(seen, 0, sizeof(seen));
	if (!mock_start(&m, PARTS) || !produce_all(&m, PARTS, PER))
		goto out;
	q = consumer(&m, &cfg);
	if (!ASSERT_OK_PTR(q, "consumer"))
		goto out;
	ASSERT_EQ(queue_append(q, &(struct queue_rec){0}, NULL, NULL), -ENOTSUP, "no append");
	end = clock_mono_ns() + 30 * CLOCK_NS_PER_SEC;
	while (got < 3 * PARTS * PER && clock_mono_ns() < end) {
		n = queue_next(q, batch, 64, 200);
		for (int k = 0; k < n; k++) {
			int c, pp, i;

			if (!ASSERT_TRUE(entry_cpi(batch[k], &c, &pp, &i), "entry layout") ||
			    !ASSERT_EQ(batch[k]->class, (uint32_t)c, "class from the topic"))
				goto out;
			ASSERT_FALSE(seen[c][pp][i], "each record once");
			seen[c][pp][i] = true;
			ASSERT_TRUE(!memcmp(batch[k]->data, "acme\n", 5), "tenant line");
			ASSERT_EQ(batch[k]->enq_ns, 1000000000ULL + (uint64_t)i, "enq_ns = due");
			ASSERT_EQ(kafka_entry_received_ns(batch[k]), 1000000000ULL + (uint64_t)i,
				  "received kept");
			ASSERT_EQ(batch[k]->attempts, 2u, "attempts header");
			all[got++] = batch[k];
		}
	}
	if (!ASSERT_EQ(got, 3 * PARTS * PER, "every record handed out"))
		goto out;
	ASSERT_TRUE(kafka_consumer_joined(q), "joined");
	/* ack in reverse order, except normal/1 record 7: that partition stops at 7 */
	for (int k = got - 1; k >= 0; k--) {
		int c, pp, i;

		entry_cpi(all[k], &c, &pp, &i);
		if (c == 1 && pp == 1 && i == 7)
			held = all[k];
		else
			ASSERT_OK(queue_ack(q, all[k]), "ack");
	}
	ASSERT_EQ(wait_committed(&m, "g-records", 0, 0, PER), (int64_t)PER, "critical/0 all");
	ASSERT_EQ(wait_committed(&m, "g-records", 1, 0, PER), (int64_t)PER, "normal/0 all");
	/* stays at the unacked record however long we wait */
	usleep(500000);
	ASSERT_EQ(committed(&m, "g-records", 1, 1), (int64_t)7, "normal/1 stops at the held one");
	ASSERT_EQ(kafka_consumer_oldest_ns(q, 1), 1000000000ULL + 7, "oldest unfinished = held");
	ASSERT_EQ(kafka_consumer_oldest_ns(q, 0), 0ULL, "critical: nothing unfinished");
	queue_ack(q, held);
	ASSERT_EQ(wait_committed(&m, "g-records", 1, 1, PER), (int64_t)PER, "normal/1 after ack");

	/* a record without headers: tenant from the key (hot-tenant salt cut), time from the
	 * broker timestamp */
	p = producer(&m);
	if (ASSERT_OK_PTR(p, "producer")) {
		uint64_t before = clock_real_ns() - CLOCK_NS_PER_SEC;

		produce(p, 2, 0, "hot#3", NULL, "{\"c\":2,\"p\":0,\"i\":99}", 0);
		rd_kafka_flush(p, 5000);
		rd_kafka_destroy(p);
		n = queue_next(q, batch, 64, 10000);
		if (ASSERT_EQ(n, 1, "the headerless record")) {
			ASSERT_TRUE(!memcmp(batch[0]->data, "hot\n", 4), "tenant from the key");
			ASSERT_GE(batch[0]->enq_ns, before, "enq_ns from the timestamp");
			queue_ack(q, batch[0]);
		}
	}
out:
	queue_free(q);
	mock_stop(&m);
}

static void window_and_prefetch(void)
{
	struct kafka_consumer_cfg cfg = {.group = "g-window", .window = 8, .prefetch = 16};
	struct queue_entry *batch[64];
	static bool seen[PARTS][400];
	struct kafka_consumer_stats ks;
	struct queue_stats st;
	struct mock m = {0};
	struct queue *q = NULL;
	rd_kafka_t *p = NULL;
	int got = 0, n;
	uint64_t end;
	char v[64];

	memset(seen, 0, sizeof(seen));
	if (!mock_start(&m, PARTS) || !ASSERT_OK_PTR(p = producer(&m), "producer"))
		goto out;
	for (int part = 0; part < PARTS; part++)
		for (int i = 0; i < 400; i++) {
			snprintf(v, sizeof(v), "{\"c\":1,\"p\":%d,\"i\":%d}", part, i);
			produce(p, 1, part, "acme", "acme", v, 1);
		}
	rd_kafka_flush(p, 10000);
	q = consumer(&m, &cfg);
	if (!ASSERT_OK_PTR(q, "consumer"))
		goto out;
	n = queue_next(q, batch, 64, 20000);
	usleep(1000000); /* let the poll thread fill what it may */
	n += queue_next(q, batch + n, 64 - n, 0);
	ASSERT_EQ(n, 8, "window: 8 out, no more until acked");
	queue_stats(q, &st);
	kafka_consumer_get_stats(q, &ks);
	/* a partition is paused at 16 ready, mid-batch: at most 2 x 16 each */
	ASSERT_LE(st.resident, (uint64_t)(8 + 2 * 16 * PARTS), "prefetch bounds what is held");
	ASSERT_GE(ks.pauses, 1u, "full partitions paused");
	for (int k = 0; k < n; k++) {
		int c, pp, i;

		entry_cpi(batch[k], &c, &pp, &i);
		seen[pp][i] = true;
		queue_ack(q, batch[k]);
	}
	got = n;
	end = clock_mono_ns() + 60 * CLOCK_NS_PER_SEC;
	while (got < PARTS * 400 && clock_mono_ns() < end) {
		n = queue_next(q, batch, 64, 200);
		ASSERT_LE(n, 8, "window");
		for (int k = 0; k < n; k++) {
			int c, pp, i;

			entry_cpi(batch[k], &c, &pp, &i);
			ASSERT_FALSE(seen[pp][i], "once");
			seen[pp][i] = true;
			queue_ack(q, batch[k]);
		}
		got += n > 0 ? n : 0;
	}
	ASSERT_EQ(got, PARTS * 400, "every record after pauses and resumes");
	for (int part = 0; part < PARTS; part++)
		ASSERT_EQ(wait_committed(&m, "g-window", 1, part, 400), (int64_t)400, "committed");
out:
	if (p)
		rd_kafka_destroy(p);
	queue_free(q);
	mock_stop(&m);
}

static bool wait_joined(struct queue *q)
{
	uint64_t end = clock_mono_ns() + 40 * CLOCK_NS_PER_SEC;

	while (!kafka_consumer_joined(q) && clock_mono_ns() < end)
		usleep(50000);
	return kafka_consumer_joined(q);
}

static bool wait_owns(struct queue *q)
{
	uint64_t end = clock_mono_ns() + 40 * CLOCK_NS_PER_SEC;
	struct kafka_consumer_stats ks = {0};

	while (clock_mono_ns() < end) {
		kafka_consumer_get_stats(q, &ks);
		if (ks.assigned)
			return true;
		usleep(50000);
	}
	return false;
}

static bool all_committed(const struct mock *m, const char *group)
{
	for (int c = 0; c < 3; c++)
		for (int p = 0; p < PARTS; p++)
			if (committed(m, group, c, p) != PER)
				return false;
	return true;
}

/* Take what q has (acking none) until it stops coming for quiet_ms. */
static int drain_hold(struct queue *q, struct queue_entry **out, int cap, int quiet_ms)
{
	int got = 0, n;

	while (got < cap &&
	       (n = queue_next(q, out + got, cap - got > 64 ? 64 : cap - got, quiet_ms)) > 0)
		got += n;
	return got;
}

static void revoke_takeover(void)
{
	struct kafka_consumer_cfg ca = {.group = "g-revoke", .commit_interval_ms = 60000},
				  cb = {.group = "g-revoke", .commit_interval_ms = 50};
	enum { N = 3 * PARTS * PER };
	struct queue_entry *a_held[N], *b_got[N];
	struct kafka_consumer_stats ks;
	static int count[3][PARTS][PER];
	struct mock m = {0};
	struct queue *a = NULL, *b = NULL;
	int na, nb = 0, moved = 0;
	uint64_t end;

	memset(count, 0, sizeof(count));
	if (!mock_start(&m, PARTS) || !produce_all(&m, PARTS, PER))
		goto out;
	a = consumer(&m, &ca);
	if (!ASSERT_OK_PTR(a, "consumer a"))
		goto out;
	if (!ASSERT_TRUE(wait_joined(a), "a joined"))
		goto out;
	na = drain_hold(a, a_held, N, 3000);
	if (!ASSERT_EQ(na, N, "a holds everything"))
		goto out;
	/* a finishes the first 10 records of every partition; its periodic commit is off
	 * (60 s), so only the revoke can commit them */
	for (int k = 0; k < na; k++) {
		int c, p, i;

		entry_cpi(a_held[k], &c, &p, &i);
		count[c][p][i]++;
		if (i < 10) {
			queue_ack(a, a_held[k]);
			a_held[k] = NULL;
		}
	}
	b = consumer(&m, &cb);
	if (!ASSERT_OK_PTR(b, "consumer b") || !ASSERT_TRUE(wait_owns(b), "b owns partitions"))
		goto out;
	nb = drain_hold(b, b_got, N, 3000);
	ASSERT_GT(nb, 0, "b got records of the moved partitions");
	for (int k = 0; k < nb; k++) {
		int c, p, i;

		entry_cpi(b_got[k], &c, &p, &i);
		ASSERT_GE(i, 10, "b starts at a's finished prefix (the revoke committed it)");
		moved += i == 10;
		count[c][p][i]++;
	}
	ASSERT_GT(moved, 0, "partitions moved");
	/* a finishes everything it held: the moved partitions' acks are stale */
	for (int k = 0; k < na; k++)
		if (a_held[k])
			queue_ack(a, a_held[k]);
	kafka_consumer_get_stats(a, &ks);
	ASSERT_EQ(ks.acks_stale, (uint64_t)(moved * (PER - 10)), "acks of moved records ignored");
	queue_free(a); /* commits the rest of its partitions and leaves: b gets them */
	a = NULL;
	for (int k = 0; k < nb; k++)
		queue_ack(b, b_got[k]);
	/* b finishes whatever comes back (a's last commit may have met a rebalance) */
	end = clock_mono_ns() + 40 * CLOCK_NS_PER_SEC;
	while (!all_committed(&m, "g-revoke") && clock_mono_ns() < end) {
		int n = queue_next(b, b_got, 64, 500);

		for (int k = 0; k < n; k++) {
			int c, p, i;

			entry_cpi(b_got[k], &c, &p, &i);
			count[c][p][i]++;
			queue_ack(b, b_got[k]);
		}
	}
	ASSERT_TRUE(all_committed(&m, "g-revoke"), "committed to the end everywhere");
	for (int c = 0; c < 3; c++)
		for (int p = 0; p < PARTS; p++)
			for (int i = 0; i < PER; i++)
				ASSERT_GE(count[c][p][i], 1, "nothing lost");
out:
	queue_free(b);
	queue_free(a);
	mock_stop(&m);
}

/* One member's pass: take everything; the first record of each partition must come with
 * want_att attempts; ack all others; note att_note on the first ones (0: none); leave
 * without finishing them. Returns how many first records had want_att. */
static int attempts_pass(const struct mock *m, int want_att, uint32_t att_note,
			 uint64_t *redelivered)
{
	struct kafka_consumer_cfg cfg = {.group = "g-attempts", .commit_interval_ms = 50};
	enum { N = 3 * PARTS * PER };
	struct queue_entry *got[N], *heads[3 * PARTS];
	struct kafka_consumer_stats ks;
	struct queue *q = consumer(m, &cfg);
	int n, nheads = 0, ok = 0;

	if (!ASSERT_OK_PTR(q, "consumer") || !ASSERT_TRUE(wait_joined(q), "joined")) {
		queue_free(q);
		return -1;
	}
	n = drain_hold(q, got, N, 3000);
	ASSERT_EQ(n, N, "every record delivered (the first ones were never finished)");
	for (int k = 0; k < n; k++) {
		int c, p, i;

		entry_cpi(got[k], &c, &p, &i);
		if (i) {
			ASSERT_EQ(got[k]->attempts, 2u,
				  "a record finished before: its header's count");
			queue_ack(q, got[k]);
			continue;
		}
		ok += got[k]->attempts == (uint32_t)want_att;
		if (att_note) { /* a failed call parked for a retry, as pool_retry does */
			got[k]->attempts = att_note;
			queue_note_attempt(q, got[k]);
		}
		heads[nheads++] = got[k];
	}
	kafka_consumer_get_stats(q, &ks);
	*redelivered = ks.redelivered;
	kafka_consumer_commit_now(q);
	queue_free(q); /* leaves with the first records unfinished: they come back */
	for (int k = 0; k < nheads; k++)
		free(heads[k]);
	return ok;
}

/* Attempts survive a change of owner in the commit metadata: a retry's count noted by the
 * first member, and each unfinished delivery after it, reach the next member. */
static void attempts_kept(void)
{
	struct mock m = {0};
	uint64_t red = 0;

	if (!mock_start(&m, PARTS) || !produce_all(&m, PARTS, PER))
		goto out;
	/* the records carry sluice-attempts: 2 (a producer's count is a floor) */
	ASSERT_EQ(attempts_pass(&m, 2, 5, &red), 3 * PARTS, "first delivery: the header's count");
	ASSERT_EQ(red, 0ull, "nothing redelivered yet");
	ASSERT_EQ(attempts_pass(&m, 5, 0, &red), 3 * PARTS,
		  "second owner: the retry count noted by the first");
	ASSERT_EQ(red, (uint64_t)(3 * PARTS), "each first record counted as redelivered");
	ASSERT_EQ(attempts_pass(&m, 6, 0, &red), 3 * PARTS,
		  "third owner: plus the second owner's unfinished delivery");
	for (int c = 0; c < 3; c++)
		for (int p = 0; p < PARTS; p++)
			ASSERT_EQ(committed(&m, "g-attempts", c, p), (int64_t)0,
				  "the committed offset never passed the unfinished record");
out:
	mock_stop(&m);
}

void test_kafka_consumer(void)
{
	if (test__start_subtest("records_and_commits"))
		records_and_commits();
	if (test__start_subtest("window_and_prefetch"))
		window_and_prefetch();
	if (test__start_subtest("revoke_takeover"))
		revoke_takeover();
	if (test__start_subtest("attempts_kept"))
		attempts_kept();
}
