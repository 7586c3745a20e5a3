// SPDX-License-Identifier: MIT
/* test_cluster_shed.c -- issue 14: one overload decision for a cluster in network namespaces
 *
 * Three ingress nodes (namespaces, veth, XDP, sluiced --cluster-redis: lib/cluster_harness)
 * and two worker processes (role all with --pg, in the root namespace) whose route calls a
 * mock upstream that answers slowly through a pool of one. First the operator's pins: a
 * cluster pin reaches every node, a local pin wins on its node only, `shed show` says which
 * applies. Then an auto-deny on one node must reach the others' deny maps. Then a burst of
 * critical events into the standby worker builds critical lag past --emergency-lag-ms
 * there; the worker holding the controller lease, idle itself, decides EMERGENCY from the
 * lag the standby reports and publishes it. The test measures, from the decision's own
 * time (decided_ms in the published value), when each node's pinned sl_config shows it,
 * and requires every node within 1 s. Then it SIGKILLs the holder and measures until the
 * other worker holds the lease; the survivor drains its backlog and the cluster returns to
 * NORMAL. A small HTTP receiver in the test stands for PagerDuty: over the whole run it
 * must get exactly one trigger and one resolve, with the same cluster dedup_key, although
 * the incident spans a takeover.
 *
 * The namespaces, pins and processes go with cluster_harness_stop (and its watcher if the
 * test dies); the workers, the mock and PostgreSQL are stopped on every path.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_harness.h"
#include "lib/clock.h"
#include "netns.h"
#include "scenario.h"
#include "sluice/abi.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define LEASE_MS   2000
#define PERIOD_MS  250 /* --lease-period-ms, the default */
#define EVENTS	   24  /* per worker */
#define LATENCY_MS 300 /* per upstream call, one at a time: 7 s of backlog per worker */
#define ADOPT_MS   1000
#define STR_(x)	   #x
#define STR(x)	   STR_(x)

/* acme is not used on the nodes; beta (key "hello") is limited to be denied (--deny-after) */
#define TENANTS                                                                                    \
	"[acme]\nkey = " HARNESS_KEY_A_HEX "\nreq_rate = 1000\nreq_burst = 100\n"                  \
	"[beta]\nkey = " HARNESS_KEY_B_HEX "\nreq_rate = 1\nreq_burst = 1\n"

/* ---- the alert receiver: counts PagerDuty Events v2 actions ---- */
struct receiver {
	int fd, port;
	pthread_t thread;
	volatile bool stop;
	pthread_mutex_t lock;
	int triggers, resolves;
	char trigger_key[96], resolve_key[96];
};

static void key_of(const char *body, char *out, size_t cap)
{
	const char *k = strstr(body, "\"dedup_key\":\"");
	size_t n;

	out[0] = 0;
	if (!k)
		return;
	k += strlen("\"dedup_key\":\"");
	n = strcspn(k, "\"");
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), k);
}

/* One request: read head and Content-Length body, count it, answer 202. */
static void serve_one(struct receiver *r, int c)
{
	char buf[8192];
	size_t len = 0;
	const char *body = NULL;
	long want = -1;

	while (len < sizeof(buf) - 1) {
		struct pollfd p = {.fd = c, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 2000) <= 0)
			break;
		n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		if (!body && (body = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strcasestr(buf, "Content-Length:");

			body += 4;
			want = cl ? atol(cl + 15) : 0;
		}
		if (body && (long)(buf + len - body) >= want)
			break;
	}
	if (body) {
		pthread_mutex_lock(&r->lock);
		if (strstr(body, "\"event_action\":\"trigger\"")) {
			r->triggers++;
			key_of(body, r->trigger_key, sizeof(r->trigger_key));
		} else if (strstr(body, "\"event_action\":\"resolve\"")) {
			r->resolves++;
			key_of(body, r->resolve_key, sizeof(r->resolve_key));
		}
		pthread_mutex_unlock(&r->lock);
		printf("alert receiver: %s\n", body);
	}
	static const char ok[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n"
				 "Connection: close\r\n\r\n";
	if (write(c, ok, sizeof(ok) - 1) < 0)
		perror("receiver write");
	close(c);
}

static void *receiver_thread(void *arg)
{
	struct receiver *r = arg;

	while (!r->stop) {
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept(r->fd, NULL, NULL);
		if (c >= 0)
			serve_one(r, c);
	}
	return NULL;
}

static int receiver_start(struct receiver *r)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);

	pthread_mutex_init(&r->lock, NULL);
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&a, sizeof(a)) || listen(r->fd, 16) ||
	    getsockname(r->fd, (struct sockaddr *)&a, &al))
		return -errno;
	r->port = ntohs(a.sin_port);
	if (pthread_create(&r->thread, NULL, receiver_thread, r))
		return -EAGAIN;
	return 0;
}

static void receiver_stop(struct receiver *r)
{
	if (r->fd <= 0)
		return;
	r->stop = true;
	if (r->thread)
		pthread_join(r->thread, NULL);
	close(r->fd);
	r->fd = -1;
}

static void receiver_counts(struct receiver *r, int *t, int *res)
{
	pthread_mutex_lock(&r->lock);
	*t = r->triggers;
	*res = r->resolves;
	pthread_mutex_unlock(&r->lock);
}

/* ---- the cluster's state, as the nodes and Redis hold it ---- */

/* The shed level in force in node i's pinned sl_config, -1 when unreadable. */
static int node_level(struct cluster_harness *h, int i)
{
	char path[256];
	struct sluice_config cfg;
	__u32 zero = 0;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", h->nodes[i].pin_dir, SLUICE_MAP_CONFIG);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	ret = bpf_map_lookup_elem(fd, &zero, &cfg);
	close(fd);
	return ret ? -1 : (int)sluice_config_level(&cfg);
}

struct decision {
	unsigned long long seq, decided_ms;
	char node[64];
	unsigned level;
};

/* The published decision; false when there is none. */
static bool decision(struct cluster_harness *h, struct decision *d)
{
	char out[256];

	if (cluster_redis_cli(h, out, sizeof(out), "GET sluice:cluster:shed:decision"))
		return false;
	return sscanf(out, "%llu %llu %63s %u", &d->seq, &d->decided_ms, d->node, &d->level) == 4;
}

/* The node holding the controller lease ("" for none). */
static void holder(struct cluster_harness *h, char *node, size_t cap)
{
	char out[256];

	node[0] = 0;
	if (!cluster_redis_cli(h, out, sizeof(out), "GET sluice:cluster:shed:lock"))
		snprintf(node, cap, "%.*s", (int)strcspn(out, "/\n"), out);
}

static uint64_t wall_ms(void)
{
	return clock_real_ns() / 1000000;
}

/* ---- the workers ---- */
struct workers {
	struct scn s; /* PostgreSQL and the slow upstream */
	struct sluiced_proc w[2];
	char redis[40], alert[64];
};

static int worker_start(struct workers *ws, int i)
{
	const char *name = i ? "w2" : "w1";
	const char *args[] = {"--journal-dir",
			      "@journal",
			      "--pg",
			      ws->s.pg.conninfo,
			      "--routes",
			      ws->s.routes,
			      "--threads",
			      "1",
			      "--node",
			      name,
			      "--cluster-redis",
			      ws->redis,
			      "--controller-lease-ms",
			      "2000",
			      "--overload-period-ms",
			      "100",
			      "--thin-lag-ms",
			      "400",
			      "--emergency-lag-ms",
			      "800",
			      "--overload-hold-ms",
			      "1500",
			      "--alert-url",
			      ws->alert,
			      NULL};

	return sluiced_start(&ws->w[i], SCN_TENANT_ACME, args);
}

/* A burst of critical events into worker i: each waits its turn at the one-call pool. */
static int burst(struct workers *ws, int i)
{
	char body[256], req[2048], resp[2048];
	int ok = 0;

	for (int k = 0; k < EVENTS; k++) {
		snprintf(
		    body, sizeof(body),
		    "{\"type\":\"lead.created\",\"idempotency_key\":\"w%d-%d\",\"payload\":{}}", i,
		    k);
		http_event_request(req, sizeof(req), "test", body);
		ok += http_once(ws->w[i].port, req, resp, sizeof(resp)) == 202;
	}
	return ok;
}

static void workers_stop(struct workers *ws)
{
	for (int i = 0; i < 2; i++)
		if (ws->w[i].pid > 0)
			sluiced_stop(&ws->w[i], 5000);
	mock_upstream_stop(&ws->s.ai);
	pgh_server_destroy(&ws->s.pg);
}

/* A metric of worker i, -1 when absent. */
static double worker_metric(struct workers *ws, int i, const char *series)
{
	static char buf[1 << 20];

	if (scn_metrics(ws->w[i].admin_port, buf, sizeof(buf)))
		return -1;
	return scn_metric(buf, series);
}

/* At the cluster's EMERGENCY: the holder says so in its metrics, and the standby applies the
 * cluster decision to its own pools (critical first) as the cluster controller's. */
static void workers_check(struct workers *ws, const char *holder_node)
{
	int lead = strcmp(holder_node, "w1") ? 1 : 0;

	/* the standby reads the decision on its own period, not in step with the nodes */
	for (int t = 0; t < 40; t++) {
		if (worker_metric(ws, !lead, "sluice_overload_state") == SLUICE_SHED_EMERGENCY)
			break;
		usleep(50000);
	}

	ASSERT_EQ(worker_metric(ws, lead, "sluice_cluster_controller_leader"), 1,
		  "the holder's leader gauge");
	ASSERT_EQ(worker_metric(ws, !lead, "sluice_cluster_controller_leader"), 0, "the standby's");
	ASSERT_EQ(worker_metric(ws, !lead, "sluice_overload_source"), 1,
		  "the standby applies the cluster controller's level");
	ASSERT_EQ(worker_metric(ws, !lead, "sluice_overload_state"), SLUICE_SHED_EMERGENCY,
		  "EMERGENCY on the standby");
	ASSERT_EQ(
	    worker_metric(ws, !lead, "sluice_pool_class_share{pool=\"ai\",class=\"critical\"}"), 1,
	    "its pools serve critical first");
}

/* Every node's sl_config at level: the delay of each from decided_ms, or false after
 * timeout_ms. */
static bool wait_nodes_level(struct cluster_harness *h, int level, uint64_t decided_ms,
			     long long delay_ms[3], int timeout_ms)
{
	uint64_t until = clock_mono_ns() + (uint64_t)timeout_ms * 1000000;
	int seen = 0;

	for (int i = 0; i < 3; i++)
		delay_ms[i] = -1;
	while (seen < 3 && clock_mono_ns() < until) {
		for (int i = 0; i < 3; i++) {
			if (delay_ms[i] < 0 && node_level(h, i) == level) {
				delay_ms[i] = (long long)(wall_ms() - decided_ms);
				seen++;
			}
		}
		usleep(5000);
	}
	return seen == 3;
}

/* sluicectl ARGS (printf-style) from the root namespace; exit status, output in out. */
static int ctl(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ctl(char *out, size_t cap, const char *fmt, ...)
{
	char args[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return netns_run(NULL, out, cap, "%s/sluicectl %s 2>&1", test__outdir(), args);
}

/* Wait until node i's `shed show` names source (and its level is level). */
static bool wait_source(struct cluster_harness *h, int i, int level, const char *source)
{
	char out[2048], want[64];

	snprintf(want, sizeof(want), "\"source\": \"%s\"", source);
	for (int t = 0; t < 3000; t += 50) {
		if (node_level(h, i) == level &&
		    !ctl(out, sizeof(out), "--pin-dir %s --json shed show", h->nodes[i].pin_dir) &&
		    strstr(out, want))
			return true;
		usleep(50000);
	}
	printf("node %d: level %d, shed show: %s\n", i, node_level(h, i), out);
	return false;
}

/* The operator's pins: a cluster pin reaches every node; a local pin wins on its node only;
 * `shed show` says which applies; unpinning hands the level back. */
static void precedence(struct cluster_harness *h, const char *redis)
{
	char out[2048];

	ASSERT_OK(ctl(out, sizeof(out), "shed set thin --cluster-redis %s", redis),
		  "cluster pin thin");
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(wait_source(h, i, SLUICE_SHED_THIN, "cluster pin"),
			    "every node at the cluster pin");
	ASSERT_OK(ctl(out, sizeof(out), "--pin-dir %s shed set normal", h->nodes[1].pin_dir),
		  "local pin on n2");
	ASSERT_TRUE(wait_source(h, 1, SLUICE_SHED_NORMAL, "local pin"), "n2: its local pin wins");
	ASSERT_HAS_STR(out, "local pin: set by an operator on this node", "and says so");
	ASSERT_TRUE(wait_source(h, 0, SLUICE_SHED_THIN, "cluster pin"), "n1 keeps the cluster pin");
	ASSERT_TRUE(wait_source(h, 2, SLUICE_SHED_THIN, "cluster pin"), "n3 too");
	ASSERT_OK(ctl(out, sizeof(out), "shed set auto --cluster-redis %s", redis), "unpin");
	ASSERT_TRUE(wait_source(h, 0, SLUICE_SHED_NORMAL, "cluster controller"),
		    "n1 back to the cluster controller");
	ASSERT_TRUE(wait_source(h, 1, SLUICE_SHED_NORMAL, "local pin"), "n2 still pinned locally");
	ASSERT_OK(ctl(out, sizeof(out), "--pin-dir %s shed set auto", h->nodes[1].pin_dir),
		  "local unpin");
	ASSERT_TRUE(wait_source(h, 1, SLUICE_SHED_NORMAL, "cluster controller"),
		    "n2 back to the cluster controller");
	ASSERT_OK(ctl(out, sizeof(out), "--pin-dir %s shed show", h->nodes[1].pin_dir), "show");
	ASSERT_HAS_STR(out, "cluster controller w", "shed show names the controller's node");
}

/* beta exceeds its credits on n1 from the root namespace's address on n1's link: n1 denies
 * that source (--deny-after), and n2's and n3's deny maps get it through the stream. */
static void deny_everywhere(struct cluster_harness *h)
{
	char req[1024], resp[2048], out[4096];
	const char *src = h->nodes[0].ip_host;
	int refused = 0, i;

	http_event_request(req, sizeof(req), "hello",
			   "{\"type\":\"t\",\"idempotency_key\":\"d\",\"payload\":{}}");
	for (i = 0; i < 40 && !sluiced_log_wait(&h->nodes[0].proc, "source denied", 0); i++) {
		struct http_client c;

		if (http_open_ip(&c, h->nodes[0].ip_node, h->nodes[0].proc.port))
			break; /* dropped at XDP: denied */
		if (!http_send(&c, req, strlen(req)) && http_read(&c, resp, sizeof(resp), 2000) > 0)
			refused += http_status(resp) == 429;
		http_close(&c);
	}
	ASSERT_GT(refused, 0, "beta refused on n1");
	ASSERT_TRUE(sluiced_log_wait(&h->nodes[0].proc, "source denied", 2000), "n1 denied it");
	for (i = 1; i < 3; i++) {
		bool found = false;

		for (int t = 0; t < 40 && !found; t++) {
			found = !ctl(out, sizeof(out), "--pin-dir %s --json deny list",
				     h->nodes[i].pin_dir) &&
				strstr(out, src);
			if (!found)
				usleep(50000);
		}
		if (!ASSERT_TRUE(found, "the deny reached the node's deny map"))
			printf("node %d deny list: %s\n", i, out);
	}
	ASSERT_TRUE(sluiced_log_wait(&h->nodes[1].proc, "denied by another node", 1000),
		    "and n2 says where it came from");
}

/* Watch the nodes' sl_config every few ms and note the wall time each first shows
 * EMERGENCY; read the decision (a redis-cli run) now and then. Delays from decided_ms, -1
 * for a node that never showed it. False when no EMERGENCY decision came within 20 s. */
static bool wait_emergency(struct cluster_harness *h, struct decision *d, long long delay[3])
{
	uint64_t seen[3] = {0}, t0 = clock_mono_ns(), last_read = 0;
	bool have = false;

	while (clock_mono_ns() - t0 < 20000000000ULL) {
		int n = 0;

		for (int i = 0; i < 3; i++) {
			if (!seen[i] && node_level(h, i) == SLUICE_SHED_EMERGENCY)
				seen[i] = wall_ms();
			n += seen[i] != 0;
		}
		if (!have && clock_mono_ns() - last_read > 50000000) {
			have = decision(h, d) && d->level == SLUICE_SHED_EMERGENCY;
			last_read = clock_mono_ns();
		}
		if (have && (n == 3 || clock_mono_ns() - t0 > 20000000000ULL))
			break;
		usleep(2000);
	}
	for (int i = 0; i < 3; i++)
		delay[i] = have && seen[i] ? (long long)(seen[i] - d->decided_ms) : -1;
	return have;
}

static void run(struct cluster_harness *h, struct workers *ws, struct receiver *rcv)
{
	struct decision d = {0};
	long long delay[3];
	char before[64], now[64];
	uint64_t t0, killed, took = 0;
	int victim, standby, t, r;

	for (int i = 0; i < 2; i++)
		if (!ASSERT_OK(worker_start(ws, i), "worker"))
			return;
	/* w1 started first and holds the lease; w2 stands by */
	if (!ASSERT_TRUE(sluiced_log_wait(&ws->w[0], "took the controller lease", 5000),
			 "a worker holds the controller lease"))
		return;
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(node_level(h, i), SLUICE_SHED_NORMAL, "nodes start NORMAL");
	precedence(h, ws->redis);
	deny_everywhere(h);
	/* the backlog builds on the standby only: the holder, idle itself, decides on the lag
	 * the standby reports (the cluster's lag) */
	holder(h, before, sizeof(before));
	if (!ASSERT_TRUE(!strcmp(before, "w1") || !strcmp(before, "w2"), "a worker holds it"))
		return;
	standby = !strcmp(before, "w1");
	ASSERT_EQ(burst(ws, standby), EVENTS, "burst into the standby accepted");

	/* every node's XDP config, watched on its own (a map lookup), and the decision */
	if (!ASSERT_TRUE(wait_emergency(h, &d, delay), "the holder published EMERGENCY"))
		return;
	ASSERT_STREQ(d.node, before, "decided by the idle holder from the standby's lag");
	ASSERT_TRUE(delay[0] >= 0 && delay[1] >= 0 && delay[2] >= 0,
		    "every node's XDP config at EMERGENCY");
	printf("decision seq %llu by %s; XDP EMERGENCY after %lld / %lld / %lld ms on n1 / n2 / "
	       "n3 (bound %d ms)\n",
	       d.seq, d.node, delay[0], delay[1], delay[2], ADOPT_MS);
	for (int i = 0; i < 3; i++) {
		ASSERT_LT(delay[i], ADOPT_MS, "node adopted the decision within 1 s");
		ASSERT_EQ(cluster_metric(h, i, "sluice_overload_source"), 1,
			  "the node's metrics name the cluster controller as the source");
	}
	workers_check(ws, d.node);

	/* kill the holder: the other worker takes the lease over */
	holder(h, before, sizeof(before));
	victim = !strcmp(before, "w2");
	if (!ASSERT_TRUE(!strcmp(before, "w1") || !strcmp(before, "w2"), "a worker holds it"))
		return;
	kill(ws->w[victim].pid, SIGKILL);
	waitpid(ws->w[victim].pid, NULL, 0);
	ws->w[victim].pid = 0;
	killed = clock_mono_ns();
	while (clock_mono_ns() - killed < 3ULL * LEASE_MS * 1000000) {
		holder(h, now, sizeof(now));
		if (now[0] && strcmp(now, before)) {
			took = clock_mono_ns() - killed;
			break;
		}
		usleep(10000);
	}
	printf("holder %s killed; %s took over after %.0f ms (lease %d ms, period %d ms)\n", before,
	       now, took / 1e6, LEASE_MS, PERIOD_MS);
	ASSERT_GT(took, 0, "the standby took over");
	ASSERT_LT(took, (uint64_t)(LEASE_MS + 4 * PERIOD_MS + 1000) * 1000000,
		  "within the lease (plus the standby's periods, with room for a loaded machine)");
	ASSERT_STREQ(now, victim ? "w1" : "w2", "the surviving worker");
	ASSERT_GE(worker_metric(ws, !victim, "sluice_cluster_controller_takeovers_total"), 1,
		  "the survivor counted its takeover");

	/* the survivor drains and steps the cluster down: one resolve */
	t0 = clock_mono_ns();
	while (!(decision(h, &d) && d.level == SLUICE_SHED_NORMAL) &&
	       clock_mono_ns() - t0 < 60000000000ULL)
		usleep(50000);
	ASSERT_EQ(d.level, SLUICE_SHED_NORMAL, "the cluster back to NORMAL");
	ASSERT_TRUE(wait_nodes_level(h, SLUICE_SHED_NORMAL, d.decided_ms, delay, 5000),
		    "every node's XDP config back to NORMAL");
	/* the alert thread posts within a few ms; leave room for a stray duplicate to show */
	for (int i = 0; i < 30; i++) {
		receiver_counts(rcv, &t, &r);
		if (r)
			break;
		usleep(100000);
	}
	usleep(2 * LEASE_MS * 1000);
	receiver_counts(rcv, &t, &r);
	printf("alert receiver: %d trigger(s), %d resolve(s), dedup_key %s / %s\n", t, r,
	       rcv->trigger_key, rcv->resolve_key);
	ASSERT_EQ(t, 1, "exactly one trigger");
	ASSERT_EQ(r, 1, "exactly one resolve");
	ASSERT_STREQ(rcv->resolve_key, rcv->trigger_key, "of the same incident");
	ASSERT_HAS_STR(rcv->trigger_key, "sluice-overload-cluster-", "a cluster-wide dedup_key");

	/* a clean stop of everything still running (the holder gives its lease back) */
	ASSERT_EQ(sluiced_stop(&ws->w[!victim], 10000), 0, "the surviving worker exits cleanly");
	ws->w[!victim].pid = 0;
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(cluster_node_stop(h, i, 10000), 0, "the node exits cleanly");
}

void test_cluster_shed(void)
{
	static const char *const node_args[] = {"--deny-after", "3", "--deny-secs", "60", NULL};
	static struct cluster_harness h;
	static struct workers ws;
	struct receiver rcv = {.fd = -1};
	char routes[600], ns[32], path[300];
	int ret;

	if (!test__require_root() || !xfx_require_kernel())
		return;
	memset(&ws, 0, sizeof(ws));
	ret = cluster_harness_setup(&h, 3, TENANTS, node_args);
	if (ret == -ENOENT) {
		test__skip("redis-server not installed");
		return;
	}
	if (!ASSERT_OK(ret, "cluster setup"))
		return;
	snprintf(ns, sizeof(ns), "%s", h.nodes[0].ns);
	if (!ASSERT_OK(cluster_start_all(&h), "three ingress nodes") ||
	    !ASSERT_OK(receiver_start(&rcv), "alert receiver") ||
	    !ASSERT_OK(scn_start_pg(&ws.s), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&ws.s.ai, "latency_ms=" STR(LATENCY_MS)), "mock"))
		goto out;
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(
		    sluiced_log_wait(&h.nodes[i].proc, "one decision for the cluster", 3000),
		    "node follows the cluster's decision");
	snprintf(routes, sizeof(routes),
		 "[pool ai]\nthreads = 1\ninflight = 1\n[upstream ai]\nurl = %s\n"
		 "score_field = score\ntimeout_ms = 5000\n[route lead.created]\n"
		 "class = critical\nstep = call ai pool=ai\n",
		 ws.s.ai.url);
	if (!ASSERT_OK(scn_write("routes.ini", routes, ws.s.routes, sizeof(ws.s.routes)), "routes"))
		goto out;
	snprintf(ws.redis, sizeof(ws.redis), "127.0.0.1:%u", h.redis_port);
	snprintf(ws.alert, sizeof(ws.alert), "http://127.0.0.1:%d/v2/enqueue", rcv.port);
	run(&h, &ws, &rcv);
out:
	workers_stop(&ws);
	receiver_stop(&rcv);
	cluster_harness_stop(&h);
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	ASSERT_NEQ(access(path, F_OK), 0, "namespaces removed");
}
