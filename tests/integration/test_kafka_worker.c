// SPDX-License-Identifier: MIT
/* test_kafka_worker.c -- ingress and worker roles scaled apart over Kafka: real sluiced
 * processes, tools/kafka-mock (3 brokers, RF 3, 6 partitions per class topic) and
 * PostgreSQL
 *
 *   fifty_k       50,000 events through 1 ingress and 3 workers: every 202'd key is stored
 *                 exactly once (rows counted per (tenant, key); events has no unique index,
 *                 the worker's key check is what keeps copies out);
 *   sigkill       one of 3 workers killed with SIGKILL mid-stream: the other two take its
 *                 partitions over (time printed), nothing lost, nothing stored twice;
 *   db_down       workers join and leave while PostgreSQL is down: with the workers stopped,
 *                 every record below the group's committed offset of its partition is a row
 *                 already (commits never pass unfinished work); then everything is stored
 *                 once;
 *   retire        a worker with --max-messages finishes, commits, leaves the group (exit 0)
 *                 and the other takes its partitions; every event stored once;
 *   readiness     a worker without --journal-dir is ready once it joined its group and the
 *                 database answers, unready while the database is down or while no broker
 *                 answers (not a member).
 *
 * The subtests share one mock cluster and one PostgreSQL server (started by the first that
 * runs, so any one can run alone with -t kafka_worker/NAME): each has its own class topics
 * (--kafka-topic-prefix kw-NAME) and consumer group, a freshly created database and its own
 * sluiced processes, so none sees another's records, offsets or rows. Starting a server for
 * each subtest was a third of the test's time.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "kafka_harness.h"
#include "lib/clock.h"
#include "mockharness.h"
#include "pgharness.h"
#include "test_progs.h"

#define KEY_C_HEX "be9d587defa1f0c09ef49eb17e206983a5f8f8289e4281860bd0ee5a19592c67"
#define TENANT(name, hex, cls)                                                                     \
	"[" name "]\nkey = " hex "\nclass = " cls "\nreq_rate = 1000000\nreq_burst = 1000000\n"
#define TENANTS                                                                                    \
	TENANT("acme", HARNESS_KEY_A_HEX, "critical")                                              \
	TENANT("beta", HARNESS_KEY_B_HEX, "normal") TENANT("gamma", KEY_C_HEX, "low")
#define PARTITIONS 6
#define WORKERS	   4

static const char *const api_keys[3] = {"test", "hello", "gamma"};

/* The subtests, in run order: each gets its own class topics and consumer group on the one
 * mock cluster, so none sees another's records or offsets. */
static const char *const subtests[] = {"readiness", "fifty_k",	  "sigkill",  "db_down",
				       "retire",    "dlq_replay", "role_all", "poison"};
static const char *const classes[3] = {"critical", "normal", "low"};

/* One mock cluster and one PostgreSQL server for all subtests (started by the first that
 * runs, stopped when the test ends): starting a server is most of a small subtest's time.
 * Per subtest: a fresh database, its own topics (prefix) and group, its own processes. */
struct rig {
	struct pgh_server pg;
	struct kafka_mock k;
	bool up;
	char prefix[64]; /* the subtest's class topics: prefix.critical, .normal, .low */
	char group[64];
	char topics[3][80];
	struct sluiced_proc in;
	struct sluiced_proc w[WORKERS];
};

static struct rig rig;

/* Mock cluster and server, once, with the class topics of every subtest. */
static bool rig_base(struct rig *r)
{
	char topics[2048] = "", dir[600];
	int err;

	if (r->up)
		return true;
	memset(r, 0, sizeof(*r));
	if (!test__require_root())
		return false;
	for (size_t i = 0; i < sizeof(subtests) / sizeof(subtests[0]); i++)
		for (int c = 0; c < 3; c++)
			snprintf(topics + strlen(topics), sizeof(topics) - strlen(topics),
				 "%skw-%s.%s", *topics ? "," : "", subtests[i], classes[c]);
	err = kafka_mock_start(&r->k, 3, topics, PARTITIONS, 3);
	if (err == -ENOENT) {
		test__skip("kafka-mock not built (make)");
		return false;
	}
	snprintf(dir, sizeof(dir), "%s/rig", test__tmpdir());
	if (!ASSERT_OK(err, "kafka-mock") ||
	    !ASSERT_OK(mkdir(dir, 0755) && errno != EEXIST ? -errno : 0, "rig directory") ||
	    !ASSERT_OK(pgh_server_start(&r->pg, dir, NULL), "postgres")) {
		kafka_mock_stop(&r->k);
		return false;
	}
	r->up = true;
	return true;
}

/* The shared cluster and server (brokers up, server running, database "sluice" empty) for
 * subtest name; with_ingress: and an ingress-only sluiced (r->in) on its topics. */
static struct rig *rig_start_with(const char *name, bool with_ingress)
{
	struct rig *r = &rig;
	char out[1024];
	bool fresh = !r->up;

	if (!rig_base(r))
		return NULL;
	snprintf(r->prefix, sizeof(r->prefix), "kw-%s", name);
	snprintf(r->group, sizeof(r->group), "kw-%s", name);
	for (int c = 0; c < 3; c++)
		snprintf(r->topics[c], sizeof(r->topics[c]), "%.60s.%s", r->prefix, classes[c]);
	/* an earlier subtest may have failed with the brokers or the server down */
	if (!ASSERT_OK(kafka_mock_cmd(&r->k, "up all"), "brokers up") ||
	    (!r->pg.running && !ASSERT_OK(pgh_server_restart(&r->pg), "postgres back")))
		return NULL;
	if (!fresh && !ASSERT_OK(pgh_fresh_db(&r->pg, out, sizeof(out)), "a fresh database")) {
		printf("%s\n", out);
		return NULL;
	}
	if (!with_ingress)
		return r;
	{
		const char *args[] = {"--queue",
				      "kafka",
				      "--role",
				      "ingress",
				      "--kafka-brokers",
				      r->k.bootstrap,
				      "--kafka-topic-prefix",
				      r->prefix,
				      "--threads",
				      "2",
				      NULL};

		return ASSERT_OK(sluiced_start(&r->in, TENANTS, args), "ingress") ? r : NULL;
	}
}

static struct rig *rig_start(const char *name)
{
	return rig_start_with(name, true);
}

/* A consumer of the subtest's topics and group into p: role worker or all; threads (NULL:
 * the defaults, and the default group timings too); up to 4 extra arguments (later ones
 * win: --kafka kafka.session.timeout.ms=...). */
static int consumer_start(struct rig *r, struct sluiced_proc *p, const char *role,
			  const char *threads, const char *const *extra)
{
	/* a killed member is noticed after session.timeout.ms: 6 s, the brokers' minimum */
	const char *args[] = {"--queue",
			      "kafka",
			      "--role",
			      role,
			      "--kafka-brokers",
			      r->k.bootstrap,
			      "--kafka-topic-prefix",
			      r->prefix,
			      "--kafka-group",
			      r->group,
			      "--pg",
			      r->pg.conninfo,
			      "--threads",
			      threads,
			      "--kafka",
			      "kafka.session.timeout.ms=6000",
			      "--kafka",
			      "kafka.heartbeat.interval.ms=300",
			      NULL,
			      NULL,
			      NULL,
			      NULL,
			      NULL};
	size_t base = threads ? sizeof(args) / sizeof(args[0]) - 5 : 12, j = 0;

	for (; extra && extra[j] && j < 4; j++)
		args[base + j] = extra[j];
	args[base + j] = NULL;
	return sluiced_start(p, TENANTS, args);
}

static int worker_start_args(struct rig *r, int i, const char *const *extra)
{
	return consumer_start(r, &r->w[i], "worker", "1", extra);
}

static int worker_start(struct rig *r, int i)
{
	return worker_start_args(r, i, NULL);
}

/* The subtest's processes, all at once (each worker's leave and the ingress's drain overlap;
 * one by one they took seconds each); the cluster and server stay for the next subtest. */
static void rig_stop(struct rig *r)
{
	struct sluiced_proc *p[WORKERS + 1];
	uint64_t end = clock_mono_ns() + 20 * CLOCK_NS_PER_SEC;
	int n = 0, left;

	if (!r)
		return;
	for (int i = 0; i < WORKERS; i++)
		if (r->w[i].pid > 0)
			p[n++] = &r->w[i];
	if (r->in.pid > 0)
		p[n++] = &r->in;
	for (int i = 0; i < n; i++)
		kill(p[i]->pid, SIGTERM);
	do {
		left = 0;
		for (int i = 0; i < n; i++)
			if (p[i]->pid > 0 && waitpid(p[i]->pid, NULL, WNOHANG) == p[i]->pid)
				p[i]->pid = 0;
			else
				left += p[i]->pid > 0;
		if (left)
			usleep(5000);
	} while (left && clock_mono_ns() < end);
	for (int i = 0; i < n; i++)
		if (p[i]->pid > 0) {
			kill(p[i]->pid, SIGKILL);
			waitpid(p[i]->pid, NULL, 0);
			p[i]->pid = 0;
		}
}

/* The end of the test: the cluster and the server. */
static void rig_destroy(struct rig *r)
{
	if (!r->up)
		return;
	kafka_mock_stop(&r->k);
	pgh_server_destroy(&r->pg);
	r->up = false;
}

/* ---- sending: threads, each on one keep-alive connection, 16 requests pipelined -------- */

struct sender {
	int port, from, to, nthreads;
	short *status; /* per key index: the HTTP status, 0 not answered */
	pthread_t t[8];
	struct send_arg {
		struct sender *s;
		int idx;
	} arg[8];
};

#define PIPE 16

static void *send_thread(void *arg)
{
	struct sender *s = ((struct send_arg *)arg)->s;
	int idx = ((struct send_arg *)arg)->idx;
	static __thread char req[PIPE * 512], resp[4096];
	struct http_client *c = malloc(sizeof(*c));

	if (!c || http_open(c, s->port)) {
		free(c);
		return NULL;
	}
	for (int base = s->from + idx * PIPE; base < s->to; base += s->nthreads * PIPE) {
		size_t len = 0;
		int n = base + PIPE <= s->to ? PIPE : s->to - base;

		for (int j = 0; j < n; j++) {
			int i = base + j;
			char body[256];

			snprintf(body, sizeof(body),
				 "{\"type\":\"lead.created\",\"idempotency_key\":\"k-%d\","
				 "\"payload\":{\"n\":%d}}",
				 i, i);
			len += (size_t)http_event_request(req + len, sizeof(req) - len,
							  api_keys[i % 3], body);
		}
		if (http_send(c, req, len))
			break;
		for (int j = 0; j < n; j++) {
			if (http_read(c, resp, sizeof(resp), 30000) <= 0)
				goto out;
			s->status[base + j] = (short)http_status(resp);
		}
	}
out:
	http_close(c);
	free(c);
	return NULL;
}

static void send_start(struct sender *s, int port, short *status, int from, int to, int threads)
{
	*s = (struct sender){.port = port, .from = from, .to = to, .nthreads = threads};
	s->status = status;
	for (int i = 0; i < threads; i++) {
		s->arg[i] = (struct send_arg){s, i};
		pthread_create(&s->t[i], NULL, send_thread, &s->arg[i]);
	}
}

static int send_wait(struct sender *s)
{
	int ok = 0;

	for (int i = 0; i < s->nthreads; i++)
		pthread_join(s->t[i], NULL);
	for (int i = s->from; i < s->to; i++)
		ok += s->status[i] == 202;
	return ok;
}

/* ---- checks ---------------------------------------------------------------------------- */

static long long rows(struct rig *r)
{
	return pgh_query_ll(&r->pg, "SELECT count(*) FROM events WHERE idempotency_key LIKE 'k-%'");
}

/* Every 202'd key stored exactly once, and nothing else. */
static bool stored_once(struct rig *r, const short *status, int n, int seconds)
{
	int want = 0;
	char sql[256];

	for (int i = 0; i < n; i++)
		want += status[i] == 202;
	if (!ASSERT_TRUE(pgh_wait_ll(&r->pg,
				     "SELECT count(DISTINCT (tenant, idempotency_key)) FROM events "
				     "WHERE idempotency_key LIKE 'k-%'",
				     want, seconds),
			 "every 202'd key stored"))
		return false;
	usleep(1000000); /* a late copy would land now */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE idempotency_key LIKE 'k-%%'");
	return ASSERT_EQ(pgh_query_ll(&r->pg, sql), (long long)want, "no key stored twice");
}

/* A metric's value summed over its series ("name" or "name{"), -1 when absent. */
static double metric_sum(const struct sluiced_proc *p, const char *name)
{
	static char out[1 << 20];
	size_t nl = strlen(name);
	double sum = -1;

	if (http_admin(p, "/metrics", out, sizeof(out)) != 200)
		return -1;
	for (char *line = out; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (!strncmp(line, name, nl) && (line[nl] == ' ' || line[nl] == '{')) {
			char *sp = strchr(line, ' ');

			sum = (sum < 0 ? 0 : sum) + (sp ? strtod(sp + 1, NULL) : 0);
		}
	return sum;
}

static double assigned(struct rig *r, int i)
{
	return r->w[i].pid > 0 ? metric_sum(&r->w[i], "sluice_kafka_partitions_assigned") : 0;
}

static bool wait_assigned(struct rig *r, const int *which, int n, int total, int seconds)
{
	uint64_t end = clock_mono_ns() + (uint64_t)seconds * CLOCK_NS_PER_SEC;

	while (clock_mono_ns() < end) {
		double sum = 0;
		bool each = true;

		/* every member owns some: right after a join the total can be complete while
		 * the cooperative rebalance has not yet handed the newcomer its share */
		for (int i = 0; i < n; i++) {
			double a = assigned(r, which[i]);

			sum += a;
			each = each && a > 0;
		}
		if ((int)sum == total && each)
			return true;
		usleep(200000);
	}
	return false;
}

/* ---- (a) ------------------------------------------------------------------------------- */

#define FIFTY_K 50000

static void fifty_k(void)
{
	static short status[FIFTY_K];
	struct sender s;
	struct rig *r = NULL;
	uint64_t t0;
	int ok;

	memset(status, 0, sizeof(status));
	if (!(r = rig_start("fifty_k")))
		goto out;
	for (int i = 0; i < 3; i++)
		if (!ASSERT_OK(worker_start(r, i), "worker"))
			goto out;
	t0 = clock_mono_ns();
	send_start(&s, r->in.port, status, 0, FIFTY_K, 8);
	ok = send_wait(&s);
	printf("fifty_k: %d of %d answered 202 in %.1f s\n", ok, FIFTY_K,
	       (double)(clock_mono_ns() - t0) / 1e9);
	ASSERT_EQ(ok, FIFTY_K, "every event 202'd (Kafka up, no limits)");
	stored_once(r, status, FIFTY_K, 300);
	printf("fifty_k: stored %lld rows %.1f s after the first POST\n", rows(r),
	       (double)(clock_mono_ns() - t0) / 1e9);
	for (int i = 0; i < 3; i++)
		ASSERT_GT(metric_sum(&r->w[i], "sluice_kafka_consumer_events_total"), 0.0,
			  "every worker consumed");
out:
	rig_stop(r);
}

/* ---- (b) ------------------------------------------------------------------------------- */

#define KILL_N 12000

/* The floor on this cluster: bare librdkafka consumers (tools/kafka-group, another group, the
 * same session timeout and heartbeat) after one of three is killed. The mock's coordinator
 * notices a dead member within a second of its session timeout and then waits session
 * timeout - 1 s for the others to rejoin however soon they do (a broker ends the join phase
 * once every member rejoined), so both figures sit near 11 s, not 6 s. */
static FILE *bare_start(struct rig *r)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "%s/kafka-group --brokers %s --topics %s,%s,%s --group bare-takeover "
		 "--members 3 --session-ms 6000 --heartbeat-ms 300 2>/dev/null",
		 test__outdir(), r->k.bootstrap, r->topics[0], r->topics[1], r->topics[2]);
	fflush(NULL);
	return popen(cmd, "r");
}

/* Its one line; NULL-safe. */
static void bare_takeover(FILE *f)
{
	char line[256] = "";

	if (!f)
		return;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	pclose(f);
	printf("sigkill: bare librdkafka group on the same mock: %s", line[0] ? line : "n/a\n");
}

static void sigkill(void)
{
	static short status[KILL_N];
	const int rest[] = {0, 2};
	struct sender s;
	uint64_t t_kill, t_takeover = 0, t_done;
	struct rig *r = NULL;
	bool sending = false;
	FILE *bare = NULL;

	memset(status, 0, sizeof(status));
	if (!(r = rig_start("sigkill")))
		goto out;
	for (int i = 0; i < 3; i++)
		if (!ASSERT_OK(worker_start(r, i), "worker"))
			goto out;
	if (!ASSERT_TRUE(wait_assigned(r, (const int[]){0, 1, 2}, 3, 3 * PARTITIONS, 60),
			 "3 workers share the 18 partitions"))
		goto out;
	ASSERT_GT(assigned(r, 1), 0.0, "worker 1 owns partitions");
	send_start(&s, r->in.port, status, 0, KILL_N, 4);
	sending = true;
	if (!ASSERT_TRUE(pgh_wait_ll(&r->pg,
				     "SELECT least(count(*), 2000) FROM events WHERE "
				     "idempotency_key LIKE 'k-%'",
				     2000, 120),
			 "stream flowing"))
		goto out;
	kill(r->w[1].pid, SIGKILL);
	waitpid(r->w[1].pid, NULL, 0);
	r->w[1].pid = 0;
	t_kill = clock_mono_ns();
	/* the floor is measured meanwhile (both wait out the same coordinator timeouts, which
	 * is where the time goes; one after the other took 15 s more) */
	bare = bare_start(r);
	if (ASSERT_TRUE(wait_assigned(r, rest, 2, 3 * PARTITIONS, 90),
			"the other two own every partition"))
		t_takeover = clock_mono_ns();
	ASSERT_EQ(send_wait(&s), KILL_N, "every event 202'd");
	sending = false;
	/* the survivors rejoined and took the dead member's partitions in one rebalance: none
	 * of them had its own assignment declared lost (a commit racing the rejoin) */
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(
		    metric_sum(&r->w[rest[i]], "sluice_kafka_consumer_events_total{kind=\"lost\"}"),
		    0.0, "no survivor lost its assignment");
	stored_once(r, status, KILL_N, 300);
	t_done = clock_mono_ns();
	printf("sigkill: partitions taken over %.1f s after SIGKILL (session timeout 6 s); "
	       "all rows stored %.1f s after it\n",
	       t_takeover ? (double)(t_takeover - t_kill) / 1e9 : -1.0,
	       (double)(t_done - t_kill) / 1e9);
out:
	bare_takeover(bare);
	if (sending)
		send_wait(&s);
	rig_stop(r);
}

/* ---- (c) ------------------------------------------------------------------------------- */

#define DB_N 6000

struct offsets_map {
	int n;
	struct {
		int cls, part;
		long long off;
		int key;
	} * rec;
};

static int map_record(void *arg, const struct kafka_record *rec)
{
	struct offsets_map *m = arg;
	char k[64];

	if (kafka_record_header(rec, "sluice-key", k, sizeof(k)) || strncmp(k, "k-", 2))
		return 0;
	m->rec[m->n].part = rec->partition;
	m->rec[m->n].off = rec->offset;
	m->rec[m->n].key = atoi(k + 2);
	m->n++;
	return 0;
}

/* The group's committed offsets of every class partition into off[3][PARTITIONS]. */
static bool group_committed(struct rig *r, long long off[3][PARTITIONS])
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3 * PARTITIONS);
	char err[256];
	rd_kafka_t *rk;
	bool ok = false;

	rd_kafka_conf_set(conf, "bootstrap.servers", r->k.bootstrap, err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", r->group, err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	for (int c = 0; c < 3; c++)
		for (int p = 0; p < PARTITIONS; p++)
			rd_kafka_topic_partition_list_add(l, r->topics[c], p);
	if (rk && !rd_kafka_committed(rk, l, 10000)) {
		ok = true;
		for (int i = 0; i < l->cnt; i++)
			off[i / PARTITIONS][i % PARTITIONS] =
			    l->elems[i].err ? -2 : l->elems[i].offset;
	}
	rd_kafka_topic_partition_list_destroy(l);
	if (rk)
		rd_kafka_destroy(rk);
	return ok;
}

/* Which keys k-0..k-(n-1) are rows now (one query). */
static bool stored_keys(struct rig *r, bool *stored, int n)
{
	size_t cap = (size_t)n * 8 + 64;
	char *out = malloc(cap), *p, *end;
	bool ok;

	memset(stored, 0, (size_t)n * sizeof(*stored));
	ok = out && !pgh_psql(&r->pg, out, cap,
			      "SELECT substr(idempotency_key, 3) FROM events WHERE "
			      "idempotency_key LIKE 'k-%%'");
	for (p = out; ok && *p; p = end) {
		long k = strtol(p, &end, 10);

		if (end == p)
			break;
		if (k >= 0 && k < n)
			stored[k] = true;
	}
	free(out);
	return ok;
}

static void db_down(void)
{
	static short status[DB_N];
	long long off[3][PARTITIONS];
	struct offsets_map m[3] = {0};
	static bool stored[DB_N];
	int below = 0, missing = 0;
	struct sender s;
	struct rig *r = NULL;

	memset(status, 0, sizeof(status));
	if (!(r = rig_start("db_down")))
		goto out;
	for (int i = 0; i < 2; i++)
		if (!ASSERT_OK(worker_start(r, i), "worker"))
			goto out;
	if (!ASSERT_TRUE(wait_assigned(r, (const int[]){0, 1}, 2, 3 * PARTITIONS, 60), "joined"))
		goto out;
	/* the database goes mid-stream: some records finished, some in the writer's batches,
	 * the rest arriving (Kafka still takes them) */
	send_start(&s, r->in.port, status, 0, DB_N, 4);
	pgh_wait_ll(&r->pg,
		    "SELECT least(count(*), 1500) FROM events WHERE idempotency_key LIKE 'k-%'",
		    1500, 120);
	if (!ASSERT_OK(pgh_server_stop(&r->pg, "immediate"), "database down")) {
		send_wait(&s);
		goto out;
	}
	ASSERT_EQ(send_wait(&s), DB_N, "every event 202'd (Kafka takes them)");
	/* rebalances while nothing can finish: one joins, one leaves (SIGTERM: clean) */
	if (!ASSERT_OK(worker_start(r, 2), "worker joins"))
		goto out;
	ASSERT_TRUE(wait_assigned(r, (const int[]){0, 1, 2}, 3, 3 * PARTITIONS, 60),
		    "rebalanced to 3");
	ASSERT_EQ(sluiced_stop(&r->w[0], 30000), 0, "a worker leaves cleanly (exit 0)");
	r->w[0].pid = 0;
	ASSERT_TRUE(wait_assigned(r, (const int[]){1, 2}, 2, 3 * PARTITIONS, 60),
		    "rebalanced to 2");
	/* freeze the workers, then bring the database back: what it holds now is exactly what
	 * was finished before it went down */
	kill(r->w[1].pid, SIGSTOP);
	kill(r->w[2].pid, SIGSTOP);
	if (!ASSERT_TRUE(group_committed(r, off), "committed offsets") ||
	    !ASSERT_OK(pgh_server_restart(&r->pg), "database back"))
		goto cont;
	for (int c = 0; c < 3; c++) {
		m[c].rec = calloc(DB_N, sizeof(*m[c].rec));
		if (m[c].rec)
			kafka_read_topic(r->k.bootstrap, r->topics[c], 20000, map_record, &m[c]);
	}
	if (!ASSERT_TRUE(stored_keys(r, stored, DB_N), "stored keys"))
		goto cont;
	for (int c = 0; c < 3; c++)
		for (int i = 0; m[c].rec && i < m[c].n; i++) {
			if (m[c].rec[i].off >= off[c][m[c].rec[i].part])
				continue;
			below++;
			if (!stored[m[c].rec[i].key] && missing++ < 5)
				printf("k-%d (%s/%d offset %lld) below the committed %lld but not "
				       "stored\n",
				       m[c].rec[i].key, r->topics[c], m[c].rec[i].part,
				       m[c].rec[i].off, off[c][m[c].rec[i].part]);
		}
	printf("db_down: %d records below the committed offsets, %d of them not stored\n", below,
	       missing);
	ASSERT_EQ(m[0].n + m[1].n + m[2].n, DB_N, "every event in the topics");
	ASSERT_GT(below, 0, "some work was committed before the outage");
	ASSERT_LT(below, DB_N, "not everything was (the outage held some back)");
	ASSERT_EQ(missing, 0, "no commit passed unfinished work");
cont:
	kill(r->w[1].pid, SIGCONT);
	kill(r->w[2].pid, SIGCONT);
	stored_once(r, status, DB_N, 300);
out:
	for (int c = 0; c < 3; c++)
		free(m[c].rec);
	rig_stop(r);
}

/* ---- retirement ------------------------------------------------------------------------ */

#define RETIRE_N 3000

static void retire(void)
{
	static short status[RETIRE_N];
	const char *const max[] = {"--max-messages", "300", NULL};
	struct sender s;
	struct rig *r = NULL;
	char *log;
	int wst = -1;

	memset(status, 0, sizeof(status));
	if (!(r = rig_start("retire")) ||
	    !ASSERT_OK(worker_start_args(r, 0, max), "retiring worker") ||
	    !ASSERT_OK(worker_start(r, 1), "worker") ||
	    !ASSERT_TRUE(wait_assigned(r, (const int[]){0, 1}, 2, 3 * PARTITIONS, 60), "joined"))
		goto out;
	send_start(&s, r->in.port, status, 0, RETIRE_N, 4);
	for (int i = 0; i < 1200 && waitpid(r->w[0].pid, &wst, WNOHANG) == 0; i++)
		usleep(100000);
	ASSERT_EQ(send_wait(&s), RETIRE_N, "every event 202'd");
	if (ASSERT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "retired with exit 0"))
		r->w[0].pid = 0;
	log = sluiced_log(&r->w[0]);
	ASSERT_HAS_STR(log, "consumer closed; left the group", "left the group cleanly");
	free(log);
	ASSERT_TRUE(wait_assigned(r, (const int[]){1}, 1, 3 * PARTITIONS, 60),
		    "the other worker owns every partition");
	stored_once(r, status, RETIRE_N, 300);
out:
	rig_stop(r);
}

/* ---- one process, both roles ----------------------------------------------------------- */

#define ALL_N 6000

/* --role all --queue kafka: the intake produces to the class topics and the same process's
 * consumer takes them back to its pools and PostgreSQL (the single-node setup of the Kafka
 * backend). Every 202'd key stored once; SIGTERM drains, commits and leaves (exit 0); a
 * second start on the same group stores nothing again (everything was committed). */
static void role_all(void)
{
	static short status[ALL_N];
	struct sluiced_proc *a;
	struct sender s;
	struct rig *r = NULL;
	char *log;

	memset(status, 0, sizeof(status));
	if (!(r = rig_start_with("role_all", false)))
		goto out;
	a = &r->in; /* the one process: stopped by rig_stop as the ingress is */
	if (!ASSERT_OK(consumer_start(r, a, "all", "2", NULL), "sluiced --role all"))
		goto out;
	send_start(&s, a->port, status, 0, ALL_N, 4);
	ASSERT_EQ(send_wait(&s), ALL_N, "every event 202'd");
	if (!stored_once(r, status, ALL_N, 300))
		goto out;
	ASSERT_GT(metric_sum(a, "sluice_kafka_consumer_events_total{kind=\"records\"}"),
		  (double)ALL_N - 1, "the process's own consumer took them");
	ASSERT_EQ(sluiced_stop(a, 30000), 0, "SIGTERM: exit 0");
	log = sluiced_log(a);
	ASSERT_HAS_STR(log, "consumer closed; left the group", "left the group cleanly");
	free(log);
	a->pid = 0;
	if (!ASSERT_OK(consumer_start(r, a, "all", NULL, NULL), "restart"))
		goto out;
	/* restarted on the committed offsets: nothing polled again */
	{
		uint64_t end = clock_mono_ns() + 60 * CLOCK_NS_PER_SEC;

		while (clock_mono_ns() < end &&
		       metric_sum(a, "sluice_kafka_partitions_assigned") < 3 * PARTITIONS)
			usleep(200000);
		ASSERT_EQ(metric_sum(a, "sluice_kafka_partitions_assigned"), 3.0 * PARTITIONS,
			  "restarted process owns every partition");
		usleep(2000000);
		ASSERT_EQ(metric_sum(a, "sluice_kafka_consumer_events_total{kind=\"records\"}"),
			  0.0, "nothing redelivered after a clean stop");
	}
	ASSERT_EQ(rows(r), (long long)ALL_N, "still every key once");
out:
	rig_stop(r);
}

/* ---- a record that kills its worker each time ------------------------------------------ */

#define POISON_MAX 3 /* retry.max_attempts of the upstream */

/* The upstream never answers (600 s latency); each worker that calls it for the event is
 * SIGKILLed while the call is in flight, as if the record crashed it. Every delivery counts
 * in the group's commit metadata before the record is handed out, so after POISON_MAX
 * deliveries the next worker dead-letters the event without calling: POISON_MAX calls in all,
 * not an endless loop. */
static void poison(void)
{
	struct mock_upstream mock = {0};
	char routes[700], text[1024], dlq[256];
	/* a killed member holds the next one's join up for its session timeout and then the
	 * coordinator's rebalance wait (11 s a round at the 6 s the others use); nothing here
	 * measures that, and heartbeats every 300 ms keep a live member well inside 3 s */
	const char *const extra[] = {"--routes", routes, "--kafka", "kafka.session.timeout.ms=3000",
				     NULL};
	struct rig *r = NULL;
	long long calls = 0;
	int kills = 0;

	if (!(r = rig_start("poison")))
		goto out;
	if (!ASSERT_OK(mock_upstream_start(&mock, "latency_ms=600000"), "mock upstream"))
		goto out;
	snprintf(routes, sizeof(routes), "%s/poison-routes.ini", test__tmpdir());
	snprintf(text, sizeof(text),
		 "[pool ai]\nthreads = 1\n[upstream crm]\nurl = %s\nfallback.model = off\n"
		 "timeout_ms = 600000\nretry.max_attempts = %d\n"
		 "[route lead.created]\nstep = store pool=db\nstep = call crm pool=ai\n",
		 mock.url, POISON_MAX);
	{
		FILE *f = fopen(routes, "w");

		if (!ASSERT_OK_PTR(f, "routes file"))
			goto out;
		fputs(text, f);
		fclose(f);
	}
	{
		char req[1024], resp[4096];

		http_event_request(req, sizeof(req), "test",
				   "{\"type\":\"lead.created\",\"idempotency_key\":\"poison-1\","
				   "\"payload\":{}}");
		if (!ASSERT_EQ(http_once(r->in.port, req, resp, sizeof(resp)), 202, "accepted"))
			goto out;
	}
	for (int round = 0; round <= POISON_MAX + 2; round++) {
		uint64_t end = clock_mono_ns() + 90 * CLOCK_NS_PER_SEC;

		if (!ASSERT_OK(worker_start_args(r, 0, extra), "worker"))
			goto out;
		/* it calls (and is killed) or dead-letters without calling */
		while (clock_mono_ns() < end &&
		       (calls = mock_upstream_key_count(&mock, "poison-1", "received")) <= kills &&
		       pgh_query_ll(&r->pg, "SELECT count(*) FROM dead_letters") < 1)
			usleep(100000);
		if (calls <= kills)
			break;
		kill(r->w[0].pid, SIGKILL);
		waitpid(r->w[0].pid, NULL, 0);
		r->w[0].pid = 0;
		kills++;
	}
	printf("poison: %d workers killed mid-call, %lld calls made\n", kills, calls);
	ASSERT_EQ(pgh_query_ll(&r->pg, "SELECT count(*) FROM dead_letters WHERE "
				       "idempotency_key = 'poison-1' AND step = 'call:crm'"),
		  1LL, "dead-lettered once its attempts ran out");
	ASSERT_EQ(calls, (long long)POISON_MAX, "one call per attempt, none after");
	ASSERT_EQ(kills, POISON_MAX, "each delivery counted");
	dlq[0] = 0;
	if (!pgh_psql(&r->pg, dlq, sizeof(dlq),
		      "SELECT reason || ' ' || attempts FROM dead_letters WHERE "
		      "idempotency_key = 'poison-1'"))
		printf("poison: dead letter (reason, attempts): %s\n", dlq);
	ASSERT_GT(metric_sum(&r->w[0], "sluice_kafka_consumer_events_total{kind=\"redelivered\"}"),
		  0.0, "counted as a redelivery");
out:
	mock_upstream_stop(&mock);
	rig_stop(r);
}

/* ---- (d) ------------------------------------------------------------------------------- */

static bool wait_ready(struct sluiced_proc *p, int want, const char *needle, int seconds)
{
	static char out[4096];
	uint64_t end = clock_mono_ns() + (uint64_t)seconds * CLOCK_NS_PER_SEC;
	int st = 0;

	while (clock_mono_ns() < end) {
		st = http_admin(p, "/readyz", out, sizeof(out));
		if (st == want && (!needle || strstr(out, needle)))
			return true;
		usleep(200000);
	}
	printf("readyz: %d, wanted %d (%s): %s\n", st, want, needle ? needle : "", out);
	return false;
}

static void readiness(void)
{
	struct rig *r = NULL;

	if (!(r = rig_start("readiness")))
		goto out;
	/* no broker answers: the worker cannot join */
	if (!ASSERT_OK(kafka_mock_cmd(&r->k, "down all"), "brokers down") ||
	    !ASSERT_OK(worker_start(r, 0), "worker"))
		goto out;
	ASSERT_TRUE(wait_ready(&r->w[0], 503, "not a member of the consumer group", 10),
		    "unready before joining");
	ASSERT_TRUE(wait_ready(&r->w[0], 503, "\"queue\":{\"ok\":true", 1),
		    "no --journal-dir is not a reason");
	ASSERT_OK(kafka_mock_cmd(&r->k, "up all"), "brokers up");
	ASSERT_TRUE(wait_ready(&r->w[0], 200, "joined the consumer group", 60),
		    "ready: joined, database up");
	ASSERT_OK(pgh_server_stop(&r->pg, "fast"), "database down");
	ASSERT_TRUE(wait_ready(&r->w[0], 503, "database unreachable", 20),
		    "unready while the database is down");
	ASSERT_OK(pgh_server_restart(&r->pg), "database back");
	ASSERT_TRUE(wait_ready(&r->w[0], 200, NULL, 20), "ready again");
out:
	rig_stop(r);
}

/* ---- (e) a dead-letter replay from a Kafka worker ---------------------------------------- */

struct replayed {
	char due[32], received[32];
	int n;
};

static int find_replayed(void *arg, const struct kafka_record *rec)
{
	struct replayed *f = arg;
	char key[64];

	kafka_record_header(rec, "sluice-key", key, sizeof(key));
	if (strcmp(key, "replayed-1"))
		return 0;
	f->n++;
	kafka_record_header(rec, "sluice-due", f->due, sizeof(f->due));
	kafka_record_header(rec, "sluice-received", f->received, sizeof(f->received));
	return 0;
}

/* A worker consumes from one handle: `sluicectl dlq replay` must still reach the class topic
 * (through the worker's own producer), due now, with its received time kept. */
static void dlq_replay(void)
{
	struct replayed f = {0};
	char out[4096];
	struct rig *r = NULL;

	if (!(r = rig_start("dlq_replay")) || !ASSERT_OK(worker_start(r, 0), "worker") ||
	    !ASSERT_TRUE(wait_ready(&r->w[0], 200, NULL, 60), "worker ready"))
		goto out;
	if (!ASSERT_OK(pgh_psql(&r->pg, out, sizeof(out),
				"INSERT INTO dead_letters (tenant, idempotency_key, step, reason, "
				"attempts, last_error, payload, received_at, class, tenant_slot, "
				"replay_requested_at) VALUES ('beta', 'replayed-1', 'call:crm', "
				"'not retryable', 1, 'http 400', convert_to(E'beta\\n{\"type\":"
				"\"t\",\"idempotency_key\":\"replayed-1\",\"payload\":{}}', "
				"'UTF8'), now() - interval '1 hour', 'normal', 3, now())"),
		       "a dead letter asked to be replayed")) {
		printf("%s\n", out);
		goto out;
	}
	ASSERT_TRUE(pgh_wait_ll(&r->pg,
				"SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL",
				1, 30),
		    "replayed (appended and durable)");
	kafka_read_topic(r->k.bootstrap, r->topics[1], 10000, find_replayed, &f);
	if (!ASSERT_EQ(f.n, 1, "the replay is in the class topic once"))
		goto out;
	printf("replay: received %s, due %s\n", f.received, f.due);
	ASSERT_GT(strtoull(f.due, NULL, 10), strtoull(f.received, NULL, 10) + 3000000000000ULL,
		  "due at the replay, an hour after its received time");
out:
	rig_stop(r);
}

void test_kafka_worker(void)
{
	if (test__start_subtest("readiness"))
		readiness();
	if (test__start_subtest("fifty_k"))
		fifty_k();
	if (test__start_subtest("sigkill"))
		sigkill();
	if (test__start_subtest("db_down"))
		db_down();
	if (test__start_subtest("retire"))
		retire();
	if (test__start_subtest("dlq_replay"))
		dlq_replay();
	if (test__start_subtest("role_all"))
		role_all();
	if (test__start_subtest("poison"))
		poison();
	rig_destroy(&rig);
}
