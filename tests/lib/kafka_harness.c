// SPDX-License-Identifier: MIT
/* kafka_harness.c -- run tools/kafka-mock for a test, send it fault commands, read topics
 *
 * The command channel is the mock's stdin/stdout: one line out, one `ok`/`err` line back,
 * so a test knows a fault is in place before it goes on. Topics are read with an ordinary
 * librdkafka consumer (assign, no group, no commits), bounded by the high watermarks found
 * at the start of the read.
 */
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kafka_harness.h"
#include "test_progs.h"

int kafka_mock_start(struct kafka_mock *k, int brokers, const char *topics, int partitions, int rf)
{
	char bin[512], nb[16], np[16], nrf[16], line[600] = "";
	int in[2], out[2];

	memset(k, 0, sizeof(*k));
	snprintf(bin, sizeof(bin), "%s/kafka-mock", test__outdir());
	if (access(bin, X_OK))
		return -ENOENT;
	if (pipe2(in, O_CLOEXEC))
		return -errno;
	if (pipe2(out, O_CLOEXEC)) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	snprintf(nb, sizeof(nb), "%d", brokers);
	snprintf(np, sizeof(np), "%d", partitions);
	snprintf(nrf, sizeof(nrf), "%d", rf);
	k->pid = fork();
	if (k->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(bin, "kafka-mock", "--brokers", nb, "--topics",
		      topics ? topics : KAFKA_MOCK_TOPICS, "--partitions", np, "--rf", nrf,
		      (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (k->pid < 0) {
		close(in[1]);
		close(out[0]);
		return -errno;
	}
	k->brokers = brokers;
	k->in = fdopen(in[1], "w");
	k->out = fdopen(out[0], "r");
	if (!k->in || !k->out || !fgets(line, sizeof(line), k->out) ||
	    strncmp(line, "bootstrap=", 10)) {
		if (!k->in)
			close(in[1]);
		if (!k->out)
			close(out[0]);
		kafka_mock_stop(k);
		return -EIO;
	}
	line[strcspn(line, "\r\n")] = 0;
	snprintf(k->bootstrap, sizeof(k->bootstrap), "%s", line + 10);
	return 0;
}

int kafka_mock_cmd(struct kafka_mock *k, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!k->in || !k->out)
		return -EIO;
	va_start(ap, fmt);
	vfprintf(k->in, fmt, ap);
	va_end(ap);
	fputc('\n', k->in);
	if (fflush(k->in) || !fgets(line, sizeof(line), k->out))
		return -EIO;
	if (!strncmp(line, "ok", 2))
		return 0;
	fprintf(stdout, "kafka-mock: %s", line);
	return -EINVAL;
}

void kafka_mock_stop(struct kafka_mock *k)
{
	if (!k)
		return;
	if (k->in)
		fclose(k->in);
	if (k->out)
		fclose(k->out);
	k->in = k->out = NULL;
	if (k->pid > 0) {
		kill(k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
	}
	k->pid = 0;
}

int kafka_record_header(const struct kafka_record *r, const char *name, char *buf, size_t len)
{
	rd_kafka_headers_t *h = NULL;
	const void *v;
	size_t n;

	buf[0] = 0;
	if (rd_kafka_message_headers(r->msg, &h) || rd_kafka_header_get_last(h, name, &v, &n))
		return -ENOENT;
	snprintf(buf, len, "%.*s", (int)n, (const char *)v);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static rd_kafka_t *reader_new(const char *bootstrap)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", "sluice-test-reader", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err))) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stdout, "kafka reader: %s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

/* Assign every partition of topic that holds records; hi[p] gets its high watermark. */
static int assign_all(rd_kafka_t *rk, const char *topic, int timeout_ms, int64_t **hi, int *np)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_topic_partition_list_t *l = NULL;
	int ret = -ETIMEDOUT;

	if (!t || rd_kafka_metadata(rk, 0, t, &md, timeout_ms) || md->topic_cnt != 1 ||
	    md->topics[0].err)
		goto out;
	*np = md->topics[0].partition_cnt;
	*hi = calloc((size_t)*np, sizeof(**hi));
	l = rd_kafka_topic_partition_list_new(*np);
	if (!*hi || !l) {
		ret = -ENOMEM;
		goto out;
	}
	for (int p = 0; p < *np; p++) {
		int64_t lo;

		if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &(*hi)[p], timeout_ms))
			goto out;
		if ((*hi)[p] > lo)
			rd_kafka_topic_partition_list_add(l, topic, p)->offset = lo;
	}
	ret = l->cnt && rd_kafka_assign(rk, l) ? -EIO : 0;
out:
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
	if (md)
		rd_kafka_metadata_destroy(md);
	if (t)
		rd_kafka_topic_destroy(t);
	return ret;
}

long kafka_read_topic(const char *bootstrap, const char *topic, int timeout_ms, kafka_record_fn *fn,
		      void *arg)
{
	rd_kafka_t *rk = reader_new(bootstrap);
	long long deadline = now_ms() + timeout_ms;
	int64_t *hi = NULL;
	long count = 0;
	int np = 0, left = 0, ret;

	if (!rk)
		return -ENOMEM;
	ret = assign_all(rk, topic, timeout_ms, &hi, &np);
	for (int p = 0; !ret && p < np; p++)
		left += hi[p] > 0;
	/* partitions done: their last record read (hi[p] set to -1) */
	while (!ret && left > 0) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		struct kafka_record r;

		if (now_ms() > deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		r = (struct kafka_record){.partition = m->partition,
					  .offset = m->offset,
					  .key = m->key,
					  .key_len = m->key_len,
					  .value = m->payload,
					  .value_len = m->len,
					  .timestamp = rd_kafka_message_timestamp(m, NULL),
					  .msg = m};
		if (m->partition < np && hi[m->partition] >= 0 && m->offset < hi[m->partition]) {
			count++;
			ret = fn ? fn(arg, &r) : 0;
			if (m->offset + 1 >= hi[m->partition]) {
				hi[m->partition] = -1;
				left--;
			}
		}
		rd_kafka_message_destroy(m);
	}
	free(hi);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return ret ? ret : count;
}
