// SPDX-License-Identifier: MIT
/* test_kafka_mock.c -- tools/kafka-mock and tests/lib/kafka_harness: the cluster takes
 * records on the topics it created, answers fault commands (and refuses bad ones), and a
 * broker set down really stops taking writes until it is set up again.
 */
#include <librdkafka/rdkafka.h>
#include <stdlib.h>

#include "kafka_harness.h"
#include "test_progs.h"

static rd_kafka_resp_err_t last_dr;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	last_dr = m->err;
}

static rd_kafka_t *producer(const char *bootstrap, int timeout_ms)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char err[256], t[32];

	rd_kafka_conf_set_dr_msg_cb(c, on_dr);
	snprintf(t, sizeof(t), "%d", timeout_ms);
	rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
	rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err));
	rd_kafka_conf_set(c, "message.timeout.ms", t, err, sizeof(err));
	rd_kafka_conf_set(c, "reconnect.backoff.max.ms", "500", err, sizeof(err));
	rd_kafka_conf_set(c, "log_level", "2", err, sizeof(err));
	return rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
}

/* Produce one record and wait for its delivery report; the report's error. */
static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, const char *topic, const char *key)
{
	rd_kafka_resp_err_t e = rd_kafka_producev(
	    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
	    RD_KAFKA_V_VALUE((void *)"v", 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADER("h", "x", 1), RD_KAFKA_V_END);

	if (e)
		return e;
	last_dr = RD_KAFKA_RESP_ERR__IN_PROGRESS;
	rd_kafka_flush(rk, 30000);
	return last_dr;
}

struct seen {
	int n;
	char keys[8][32];
	char hdr[32];
};

static int on_record(void *arg, const struct kafka_record *r)
{
	struct seen *s = arg;

	fprintf(stdout, "record %d/%lld key %.*s\n", r->partition, (long long)r->offset,
		(int)r->key_len, r->key);
	if (s->n < 8)
		snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%.*s", (int)r->key_len, r->key);
	kafka_record_header(r, "h", s->hdr, sizeof(s->hdr));
	return 0;
}

void test_kafka_mock(void)
{
	struct kafka_mock k;
	struct seen s = {0};
	rd_kafka_t *rk = NULL;
	int err = kafka_mock_start(&k, 3, NULL, 2, 3);

	if (err == -ENOENT) {
		test__skip("kafka-mock not built (make)");
		return;
	}
	if (!ASSERT_OK(err, "start kafka-mock"))
		return;
	ASSERT_HAS_STR(k.bootstrap, "127.0.0.1:", "bootstrap");
	ASSERT_EQ(kafka_mock_cmd(&k, "rtt 2 10"), 0, "rtt");
	ASSERT_EQ(kafka_mock_cmd(&k, "leader sluice.normal 1 3"), 0, "leader");
	ASSERT_EQ(kafka_mock_cmd(&k, "error * Produce NOT_LEADER_FOR_PARTITION 1"), 0, "error");
	ASSERT_EQ(kafka_mock_cmd(&k, "leader nosuch.topic 0 1"), -EINVAL, "bad leader refused");
	ASSERT_EQ(kafka_mock_cmd(&k, "down 4"), -EINVAL, "no broker 4");
	ASSERT_EQ(kafka_mock_cmd(&k, "frobnicate"), -EINVAL, "unknown command");
	rk = producer(k.bootstrap, 3000);
	if (!ASSERT_TRUE(rk, "producer"))
		goto out;
	/* the pushed NOT_LEADER error is retried by the producer, the record lands once */
	ASSERT_EQ(produce_one(rk, "sluice.normal", "a"), 0, "produce a");
	ASSERT_EQ(kafka_mock_cmd(&k, "down all"), 0, "down all");
	ASSERT_NEQ(produce_one(rk, "sluice.normal", "b"), 0, "no broker takes b");
	ASSERT_EQ(kafka_mock_cmd(&k, "up all"), 0, "up all");
	ASSERT_EQ(produce_one(rk, "sluice.normal", "c"), 0, "produce c");
	ASSERT_EQ(kafka_read_topic(k.bootstrap, "sluice.normal", 20000, on_record, &s), 2,
		  "two records");
	ASSERT_TRUE((!strcmp(s.keys[0], "a") || !strcmp(s.keys[1], "a")) &&
			(!strcmp(s.keys[0], "c") || !strcmp(s.keys[1], "c")),
		    "keys a and c");
	ASSERT_STREQ(s.hdr, "x", "header");
out:
	if (rk)
		rd_kafka_destroy(rk);
	kafka_mock_stop(&k);
}
