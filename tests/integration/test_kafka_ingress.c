// SPDX-License-Identifier: MIT
/* test_kafka_ingress.c -- sluiced --queue kafka --role ingress against a mock cluster of 3
 * brokers with replication factor 3 (tools/kafka-mock)
 *
 *   delivered      a 202 comes only after the delivery report (with 1.5 s broker RTT the
 *                  answer takes that long), and the record read back carries the key,
 *                  the envelope as sent and every sluice-* header (id = the 202's id)
 *   all_down       no broker: every answer is 503 with Retry-After, none 202, /readyz
 *                  says why; brokers back: 202 again
 *   leader_down    the leader of every partition goes down and the mock moves leadership
 *                  (as a controller would; the mock does not replicate, so this proves
 *                  retries and idempotence, not replication): the 202s are delayed, none
 *                  fails, every 202'd key is in the topic exactly once
 *   slow_bounded   500 ms RTT and --kafka-queue-max 4: some 503 (counted as queue_full),
 *                  every 202'd key in the topic exactly once
 *   bad_conf       an unknown --kafka key, or one weakening acks, exits 2 naming the key
 *   hot_tenant     a tenant above --kafka-hot-share is keyed tenant#salt over several
 *                  salts, the true tenant in sluice-tenant; the others keep their key
 *   spill          --kafka-spill: with every broker down the 202s go on (from the
 *                  journal); brokers back, every event reaches the topic exactly once
 *   spill_restart  the same across a SIGKILL: the next sluiced on the journal forwards
 *                  what the first one answered 202
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "kafka_harness.h"
#include "lib/clock.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define TOPIC	"sluice.normal"
#define MAXKEYS 256

static char resp[1 << 14];

static void event_body(char *out, size_t cap, const char *ikey)
{
	snprintf(out, cap,
		 "{\"type\":\"lead.created\",\"idempotency_key\":\"%s\",\"payload\":{\"n\":7}}",
		 ikey);
}

/* POST one event and wait up to timeout_ms; the status (0/-errno when none). */
static int post(int port, const char *ikey, int timeout_ms, char *out, size_t cap)
{
	struct http_client *c = malloc(sizeof(*c));
	char body[256], req[1024];
	long n = -EIO;

	if (!c)
		return -ENOMEM;
	event_body(body, sizeof(body), ikey);
	http_event_request(req, sizeof(req), "test", body);
	if (!http_open(c, port)) {
		if (!http_send(c, req, strlen(req)))
			n = http_read(c, out, cap, timeout_ms);
		http_close(c);
	}
	free(c);
	return n > 0 ? http_status(out) : (int)n;
}

/* Answers of n events (keys prefix-from..), all sent at once on n connections. */
struct batch {
	int n;
	int status[MAXKEYS];
	bool retry_after[MAXKEYS];
	char keys[MAXKEYS][32];
};

static void post_batch_as(int port, const char *api_key, const char *prefix, int from, int n,
			  int timeout_ms, struct batch *b)
{
	struct http_client *c = calloc((size_t)n, sizeof(*c));
	char body[256], req[1024], v[32];

	b->n = n;
	for (int i = 0; i < n; i++) {
		snprintf(b->keys[i], sizeof(b->keys[i]), "%s-%d", prefix, from + i);
		event_body(body, sizeof(body), b->keys[i]);
		http_event_request(req, sizeof(req), api_key, body);
		b->status[i] = -EIO;
		if (c && !http_open(&c[i], port) && http_send(&c[i], req, strlen(req)))
			http_close(&c[i]);
	}
	for (int i = 0; c && i < n; i++) {
		long r = c[i].fd > 0 ? http_read(&c[i], resp, sizeof(resp), timeout_ms) : -EIO;

		b->status[i] = r > 0 ? http_status(resp) : (int)r;
		b->retry_after[i] = r > 0 && http_header(resp, "Retry-After", v, sizeof(v));
		if (c[i].fd > 0)
			http_close(&c[i]);
	}
	free(c);
}

static void post_batch(int port, const char *prefix, int from, int n, int timeout_ms,
		       struct batch *b)
{
	post_batch_as(port, "test", prefix, from, n, timeout_ms, b);
}

/* Append b's keys and answers to all. */
static void add_batch(struct batch *all, const struct batch *b)
{
	for (int i = 0; i < b->n && all->n < MAXKEYS; i++, all->n++) {
		all->status[all->n] = b->status[i];
		memcpy(all->keys[all->n], b->keys[i], sizeof(all->keys[0]));
	}
}

static int count_status(const struct batch *b, int status)
{
	int n = 0;

	for (int i = 0; i < b->n; i++)
		n += b->status[i] == status;
	return n;
}

/* Records of the topic by sluice-key. */
struct tally {
	int n;
	char keys[4 * MAXKEYS][64];
	int times[4 * MAXKEYS];
};

static int tally_record(void *arg, const struct kafka_record *r)
{
	struct tally *t = arg;
	char k[64];

	kafka_record_header(r, "sluice-key", k, sizeof(k));
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->keys[i], k))
			return t->times[i]++, 0;
	if (t->n < 4 * MAXKEYS) {
		snprintf(t->keys[t->n], sizeof(t->keys[0]), "%s", k);
		t->times[t->n++] = 1;
	}
	return 0;
}

static int times_of(const struct tally *t, const char *key)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->keys[i], key))
			return t->times[i];
	return 0;
}

/* Every 202'd key of b in the topic exactly once. */
static bool check_once(const struct kafka_mock *k, const struct batch *b, const char *what)
{
	static struct tally t;
	bool ok = true;
	long n;

	memset(&t, 0, sizeof(t));
	n = kafka_read_topic(k->bootstrap, TOPIC, 30000, tally_record, &t);
	if (!ASSERT_GE(n, 0, what))
		return false;
	for (int i = 0; i < b->n; i++)
		if (b->status[i] == 202 && times_of(&t, b->keys[i]) != 1) {
			fprintf(stdout, "%s: key %s 202'd, in the topic %d times\n", what,
				b->keys[i], times_of(&t, b->keys[i]));
			ok = false;
		}
	return ASSERT_TRUE(ok, what);
}

static const char *tenants = TENANTS;

static int start(struct sluiced_proc *p, const struct kafka_mock *k, const char *const *extra)
{
	const char *args[32] = {"--queue",	   "kafka",	 "--role",    "ingress",
				"--kafka-brokers", k->bootstrap, "--threads", "1"};
	int n = 8;

	for (; extra && *extra && n < 31; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	return sluiced_start(p, tenants, args);
}

/* The mock and a sluiced on it; false (skipped or failed) when either cannot start. */
static bool setup(struct kafka_mock *k, struct sluiced_proc *p, const char *const *extra)
{
	int err = kafka_mock_start(k, 3, NULL, 6, 3);

	if (err == -ENOENT) {
		test__skip("kafka-mock not built (make)");
		return false;
	}
	return ASSERT_OK(err, "kafka-mock") && ASSERT_OK(start(p, k, extra), "sluiced");
}

struct found {
	char key[64], tenant[64], cls[16], id[32], ikey[64], received[32], due[32], att[8];
	char value[512];
	int n;
};

static int find_record(void *arg, const struct kafka_record *r)
{
	struct found *f = arg;

	f->n++;
	snprintf(f->key, sizeof(f->key), "%.*s", (int)r->key_len, r->key);
	snprintf(f->value, sizeof(f->value), "%.*s", (int)r->value_len, r->value);
	kafka_record_header(r, "sluice-tenant", f->tenant, sizeof(f->tenant));
	kafka_record_header(r, "sluice-class", f->cls, sizeof(f->cls));
	kafka_record_header(r, "sluice-id", f->id, sizeof(f->id));
	kafka_record_header(r, "sluice-key", f->ikey, sizeof(f->ikey));
	kafka_record_header(r, "sluice-received", f->received, sizeof(f->received));
	kafka_record_header(r, "sluice-due", f->due, sizeof(f->due));
	kafka_record_header(r, "sluice-attempts", f->att, sizeof(f->att));
	return 0;
}

static void subtest_delivered(void)
{
	struct kafka_mock k = {0};
	struct sluiced_proc p = {0};
	struct found f = {0};
	char body[256], id[32] = "";
	uint64_t t0, before = clock_real_ns();
	unsigned long long rec;
	int st;

	if (!setup(&k, &p, NULL))
		goto out;
	/* warm: metadata and producer id in place, so the next answer waits only for acks */
	ASSERT_EQ(post(p.port, "warm", 20000, resp, sizeof(resp)), 202, "warm-up 202");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "rtt all 1500"), "rtt"))
		goto out;
	t0 = clock_mono_ns();
	st = post(p.port, "k1", 30000, resp, sizeof(resp));
	ASSERT_EQ(st, 202, "202");
	/* the produce request and its acks=all answer each took the RTT */
	ASSERT_GE(clock_mono_ns() - t0, 1400000000ULL, "202 waited for the delivery report");
	{
		const char *q = strstr(resp, "\"id\":\"");

		if (q)
			snprintf(id, sizeof(id), "%.16s", q + 6);
	}
	ASSERT_OK(kafka_mock_cmd(&k, "rtt all 0"), "rtt off");
	ASSERT_EQ(kafka_read_topic(k.bootstrap, TOPIC, 30000, NULL, NULL), 2, "two records");
	kafka_read_topic(k.bootstrap, TOPIC, 30000, find_record, &f);
	/* both records share the partition of key "acme": k1 is the later one */
	ASSERT_STREQ(f.key, "acme", "key = tenant");
	ASSERT_STREQ(f.tenant, "acme", "sluice-tenant");
	ASSERT_STREQ(f.cls, "normal", "sluice-class");
	ASSERT_STREQ(f.id, id, "sluice-id = the 202's id");
	ASSERT_STREQ(f.ikey, "k1", "sluice-key");
	event_body(body, sizeof(body), "k1");
	ASSERT_STREQ(f.value, body, "value = envelope as sent");
	rec = strtoull(f.received, NULL, 10);
	ASSERT_GE(rec, before, "received after the test began");
	ASSERT_LE(rec, clock_real_ns(), "received not in the future");
	ASSERT_STREQ(f.due, f.received, "due = received");
	ASSERT_STREQ(f.att, "0", "attempts 0");
out:
	sluiced_stop(&p, 15000);
	kafka_mock_stop(&k);
}

/* The sample line of series (name with its labels) is above min. */
static bool metric_above(const struct sluiced_proc *p, const char *series, double min)
{
	static char m[1 << 17];
	char line[256];
	const char *s;

	snprintf(line, sizeof(line), "\n%s ", series); /* not the # HELP line */
	if (http_admin(p, "/metrics", m, sizeof(m)) != 200 || !(s = strstr(m, line)))
		return false;
	return strtod(s + strlen(line), NULL) > min;
}

static void subtest_all_down(void)
{
	const char *extra[] = {"--kafka", "kafka.message.timeout.ms=3000", NULL};
	struct kafka_mock k = {0};
	struct sluiced_proc p = {0};
	static struct batch b;
	int st = 0;

	if (!setup(&k, &p, extra))
		goto out;
	ASSERT_EQ(post(p.port, "warm", 20000, resp, sizeof(resp)), 202, "warm-up 202");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "down all"), "down all"))
		goto out;
	post_batch(p.port, "down", 0, 20, 30000, &b);
	ASSERT_EQ(count_status(&b, 202), 0, "no 202 without a broker");
	ASSERT_EQ(count_status(&b, 503), 20, "every answer 503");
	for (int i = 0; i < b.n; i++)
		if (!ASSERT_TRUE(b.retry_after[i], "503 with Retry-After"))
			break;
	/* librdkafka has seen every broker go by now: intake refuses at once */
	ASSERT_EQ(post(p.port, "down-late", 30000, resp, sizeof(resp)), 503, "503 later");
	/* at once: one goes through as the probe, the others are refused without producing */
	post_batch(p.port, "down-more", 0, 5, 30000, &b);
	ASSERT_EQ(count_status(&b, 503), 5, "503 while down");
	ASSERT_EQ(http_admin(&p, "/readyz", resp, sizeof(resp)), 503, "/readyz unready");
	ASSERT_HAS_STR(resp, "no broker", "/readyz says why");
	ASSERT_TRUE(metric_above(&p, "sluice_kafka_produce_refused_total{reason=\"no_broker\"}", 0),
		    "refusals counted");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "up all"), "up all"))
		goto out;
	for (int i = 0; i < 60 && st != 202; i++) {
		char key[32];

		snprintf(key, sizeof(key), "back-%d", i);
		st = post(p.port, key, 30000, resp, sizeof(resp));
		if (st != 202)
			usleep(500 * 1000);
	}
	ASSERT_EQ(st, 202, "202 once a broker is back");
out:
	sluiced_stop(&p, 15000);
	kafka_mock_stop(&k);
}

static void leaders(struct kafka_mock *k, int broker)
{
	for (int part = 0; part < 6; part++)
		ASSERT_OK(kafka_mock_cmd(k, "leader %s %d %d", TOPIC, part, broker), "leader");
}

static void subtest_leader_down(void)
{
	struct kafka_mock k = {0};
	struct sluiced_proc p = {0};
	static struct batch b1, b2, all;
	pid_t mover = -1;

	if (!setup(&k, &p, NULL))
		goto out;
	leaders(&k, 2);
	post_batch(p.port, "before", 0, 40, 30000, &b1);
	ASSERT_EQ(count_status(&b1, 202), 40, "202 with leader 2");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "down 2"), "down 2"))
		goto out;
	/* the leader is gone while these are produced; a second later the "controller" moves
	 * leadership (a child process, so the batch's answers are read meanwhile) */
	mover = fork();
	if (mover == 0) {
		usleep(1500 * 1000);
		leaders(&k, 3);
		_exit(0);
	}
	post_batch(p.port, "after", 0, 40, 60000, &b2);
	waitpid(mover, NULL, 0);
	ASSERT_EQ(count_status(&b2, 202), 40, "202s delayed, none failed");
	ASSERT_OK(kafka_mock_cmd(&k, "up 2"), "up 2");
	all = b1;
	add_batch(&all, &b2);
	check_once(&k, &all, "every 202'd key once");
out:
	sluiced_stop(&p, 15000);
	kafka_mock_stop(&k);
}

static void subtest_slow_bounded(void)
{
	const char *extra[] = {"--kafka-queue-max", "4", NULL};
	struct kafka_mock k = {0};
	struct sluiced_proc p = {0};
	static struct batch b;

	if (!setup(&k, &p, extra))
		goto out;
	ASSERT_EQ(post(p.port, "warm", 20000, resp, sizeof(resp)), 202, "warm-up 202");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "rtt all 500"), "rtt 500"))
		goto out;
	post_batch(p.port, "slow", 0, 40, 60000, &b);
	fprintf(stdout, "slow: %d x 202, %d x 503\n", count_status(&b, 202), count_status(&b, 503));
	ASSERT_GT(count_status(&b, 503), 0, "the bound answers 503");
	ASSERT_GT(count_status(&b, 202), 0, "some 202");
	ASSERT_EQ(count_status(&b, 202) + count_status(&b, 503), 40, "only 202 or 503");
	ASSERT_TRUE(
	    metric_above(&p, "sluice_kafka_produce_refused_total{reason=\"queue_full\"}", 0),
	    "queue_full counted");
	ASSERT_OK(kafka_mock_cmd(&k, "rtt all 0"), "rtt off");
	check_once(&k, &b, "every 202'd key once");
out:
	sluiced_stop(&p, 15000);
	kafka_mock_stop(&k);
}

/* sluiced with args; its exit status, output in out. */
static int run_sluiced(const char *args, char *out, size_t cap)
{
	char cmd[1024];
	size_t n = 0;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/sluiced --listen 127.0.0.1:0 --admin-listen off %s 2>&1",
		 test__outdir(), args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void subtest_bad_conf(void)
{
	char out[4096];

	ASSERT_EQ(run_sluiced("--queue kafka --kafka-brokers 127.0.0.1:1 --kafka "
			      "kafka.no.such.property=1",
			      out, sizeof(out)),
		  2, "unknown key: exit 2");
	ASSERT_HAS_STR(out, "kafka.no.such.property", "message names the key");
	ASSERT_EQ(run_sluiced("--queue kafka --kafka-brokers 127.0.0.1:1 --kafka kafka.acks=1", out,
			      sizeof(out)),
		  2, "acks=1: exit 2");
	ASSERT_HAS_STR(out, "kafka.acks=1", "message names acks");
	ASSERT_EQ(run_sluiced("--queue kafka", out, sizeof(out)), 2, "no brokers: exit 2");
	ASSERT_HAS_STR(out, "--kafka-brokers", "message names --kafka-brokers");
}

static void subtest_spill(void)
{
	const char *extra[] = {"--kafka-spill",
			       "--journal-dir",
			       "@journal",
			       "--kafka",
			       "kafka.message.timeout.ms=3000",
			       NULL};
	struct kafka_mock k = {0};
	struct sluiced_proc p = {0};
	static struct batch b1, b2, b3, all;

	if (!setup(&k, &p, extra))
		goto out;
	post_batch(p.port, "up", 0, 20, 30000, &b1);
	ASSERT_EQ(count_status(&b1, 202), 20, "202 with brokers");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "down all"), "down all"))
		goto out;
	post_batch(p.port, "down", 0, 30, 30000, &b2);
	ASSERT_EQ(count_status(&b2, 202), 30, "202s go on from the journal");
	post_batch(p.port, "down2", 0, 30, 30000, &b3);
	ASSERT_EQ(count_status(&b3, 202), 30, "and on");
	ASSERT_TRUE(metric_above(&p, "sluice_kafka_spilled_total", 0), "spilled counted");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "up all"), "up all"))
		goto out;
	/* forwarded in order, each acked after its report: the spill empties */
	for (int i = 0; i < 120 && metric_above(&p, "sluice_kafka_spill_depth", 0); i++)
		usleep(250 * 1000);
	ASSERT_FALSE(metric_above(&p, "sluice_kafka_spill_depth", 0), "spill forwarded");
	all = b1;
	add_batch(&all, &b2);
	add_batch(&all, &b3);
	check_once(&k, &all, "every 202'd key once");
out:
	sluiced_stop(&p, 15000);
	kafka_mock_stop(&k);
}

/* Spilled events survive a crash: SIGKILL while every broker is down, brokers back, a new
 * sluiced on the same journal forwards what the first one answered 202. */
static void subtest_spill_restart(void)
{
	char dir[600];
	const char *extra[] = {"--kafka-spill",
			       "--journal-dir",
			       dir,
			       "--kafka",
			       "kafka.message.timeout.ms=3000",
			       NULL};
	struct kafka_mock k = {0};
	struct sluiced_proc p = {0};
	static struct batch b;

	snprintf(dir, sizeof(dir), "%s/spill-journal", test__tmpdir());
	if (!setup(&k, &p, extra))
		goto out;
	ASSERT_EQ(post(p.port, "warm", 20000, resp, sizeof(resp)), 202, "warm-up 202");
	if (!ASSERT_OK(kafka_mock_cmd(&k, "down all"), "down all"))
		goto out;
	post_batch(p.port, "crash", 0, 20, 30000, &b);
	ASSERT_EQ(count_status(&b, 202), 20, "202s from the journal");
	kill(p.pid, SIGKILL);
	waitpid(p.pid, NULL, 0);
	p.pid = 0;
	if (!ASSERT_OK(kafka_mock_cmd(&k, "up all"), "up all") ||
	    !ASSERT_OK(start(&p, &k, extra), "sluiced again"))
		goto out;
	for (int i = 0; i < 120 && !metric_above(&p, "sluice_kafka_forwarded_total", 19); i++)
		usleep(250 * 1000);
	ASSERT_TRUE(metric_above(&p, "sluice_kafka_forwarded_total", 19), "replayed, forwarded");
	check_once(&k, &b, "every 202'd key once");
out:
	sluiced_stop(&p, 15000);
	kafka_mock_stop(&k);
}

struct keys {
	int acme_plain, acme_salted, beta_plain, other, salts;
	bool salt_seen[10];
	bool tenant_header_ok;
};

static int key_record(void *arg, const struct kafka_record *r)
{
	struct keys *k = arg;
	char tenant[64];

	kafka_record_header(r, "sluice-tenant", tenant, sizeof(tenant));
	if (r->key_len == 4 && !memcmp(r->key, "acme", 4))
		k->acme_plain++;
	else if (r->key_len == 6 && !memcmp(r->key, "acme#", 5) && r->key[5] >= '0' &&
		 r->key[5] <= '9') {
		k->acme_salted++;
		k->salts += !k->salt_seen[r->key[5] - '0'];
		k->salt_seen[r->key[5] - '0'] = true;
		k->tenant_header_ok &= !strcmp(tenant, "acme");
	} else if (r->key_len == 4 && !memcmp(r->key, "beta", 4))
		k->beta_plain++;
	else
		k->other++;
	return 0;
}

/* acme sends most of the normal topic's records: after its first window its keys are
 * salted over --kafka-hot-salts partitions, beta keeps its plain key */
static void subtest_hot_tenant(void)
{
	const char *extra[] = {"--kafka-hot-share", "500", "--kafka-hot-salts", "4", NULL};
	struct kafka_mock k = {0};
	struct sluiced_proc p = {0};
	struct keys keys = {.tenant_header_ok = true};
	static struct batch a, b;

	tenants = TENANTS "[beta]\nkey = " HARNESS_KEY_B_HEX "\n";
	if (!setup(&k, &p, extra))
		goto out;
	for (int round = 0; round < 4; round++) {
		post_batch_as(p.port, "test", "hot", round * 60, 60, 30000, &a);
		post_batch_as(p.port, "hello", "cold", round * 4, 4, 30000, &b);
		ASSERT_EQ(count_status(&a, 202) + count_status(&b, 202), 64, "202s");
		usleep(1100 * 1000); /* the next round falls in the next window */
	}
	ASSERT_TRUE(metric_above(&p, "sluice_kafka_hot_tenants", 0), "hot tenant gauge");
	ASSERT_GE(kafka_read_topic(k.bootstrap, TOPIC, 30000, key_record, &keys), 256, "records");
	fprintf(stdout, "acme plain %d salted %d (%d salts), beta %d, other %d\n", keys.acme_plain,
		keys.acme_salted, keys.salts, keys.beta_plain, keys.other);
	ASSERT_GE(keys.acme_salted, 60, "acme spread after its first window");
	ASSERT_GE(keys.salts, 3, "over several salts");
	ASSERT_TRUE(keys.tenant_header_ok, "the true tenant in sluice-tenant");
	ASSERT_EQ(keys.beta_plain, 16, "beta keeps its key");
	ASSERT_EQ(keys.other, 0, "no other keys");
out:
	tenants = TENANTS;
	sluiced_stop(&p, 15000);
	kafka_mock_stop(&k);
}

void test_kafka_ingress(void)
{
	if (test__start_subtest("delivered"))
		subtest_delivered();
	if (test__start_subtest("all_down"))
		subtest_all_down();
	if (test__start_subtest("leader_down"))
		subtest_leader_down();
	if (test__start_subtest("slow_bounded"))
		subtest_slow_bounded();
	if (test__start_subtest("bad_conf"))
		subtest_bad_conf();
	if (test__start_subtest("spill"))
		subtest_spill();
	if (test__start_subtest("spill_restart"))
		subtest_spill_restart();
	if (test__start_subtest("hot_tenant"))
		subtest_hot_tenant();
}
