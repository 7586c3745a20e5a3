/* SPDX-License-Identifier: MIT */
/* kafka_harness.h -- run tools/kafka-mock for a test, send it fault commands, read topics
 *
 * kafka_mock_start runs the mock cluster as a child (dies with the test: PR_SET_PDEATHSIG),
 * reads its `bootstrap=` line and keeps its stdin/stdout as the command channel;
 * kafka_mock_cmd sends one command and waits for its `ok`/`err` answer. kafka_mock_stop
 * kills and reaps it (safe on a zeroed or stopped struct). kafka_read_topic reads a whole
 * topic (every partition, from the start to the high watermark it finds) with a plain
 * librdkafka consumer without a group, the way an outside reader (kcat) would.
 */
#ifndef SLUICE_TEST_KAFKA_HARNESS_H
#define SLUICE_TEST_KAFKA_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define KAFKA_MOCK_TOPICS "sluice.critical,sluice.normal,sluice.low"

struct kafka_mock {
	pid_t pid;
	FILE *in, *out; /* the mock's stdin (commands) and stdout (answers) */
	char bootstrap[600];
	int brokers;
};

/* Start kafka-mock (binary in test__outdir()) with brokers, topics (NULL: the three sluice
 * class topics), partitions and replication factor. 0, -ENOENT when the binary was not
 * built, or -errno. */
int kafka_mock_start(struct kafka_mock *k, int brokers, const char *topics, int partitions, int rf);
/* Send one command (printf format: "down 2", "leader sluice.normal 0 3"); 0 on `ok`,
 * -EINVAL on `err ...` (printed), -EIO when the mock is gone. */
int kafka_mock_cmd(struct kafka_mock *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kafka_mock_stop(struct kafka_mock *k);

/* One record of a topic, as kafka_read_topic hands it out (pointers valid in the call). */
struct kafka_record {
	int32_t partition;
	int64_t offset;
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
	int64_t timestamp; /* ms */
	void *msg;	   /* rd_kafka_message_t *, for kafka_record_header */
};

/* The value of header name as a string into buf ("" and -ENOENT when absent). */
int kafka_record_header(const struct kafka_record *r, const char *name, char *buf, size_t len);

typedef int kafka_record_fn(void *arg, const struct kafka_record *r);

/* Every record of topic (all partitions, offset 0 to the high watermark at the call),
 * to fn (a non-zero return stops early and is returned). Returns the count of records or
 * -errno (-ETIMEDOUT when the cluster did not answer within timeout_ms). */
long kafka_read_topic(const char *bootstrap, const char *topic, int timeout_ms, kafka_record_fn *fn,
		      void *arg);

#endif /* SLUICE_TEST_KAFKA_HARNESS_H */
