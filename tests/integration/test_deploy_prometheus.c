// SPDX-License-Identifier: MIT
/* test_deploy_prometheus.c -- the shipped rules, runbook and dashboard, proven with Prometheus
 *
 * Static: promtool checks the rules and runs tests/deploy/rules_test.yaml (series that make
 * every alert fire, and stay silent on an idle service, an unlimited queue); a doctored copy
 * of each fixed rule must fail those tests; every alert has a runbook_url whose anchor is a
 * section of docs/runbook.md.
 *
 * Live: a real Prometheus (Debian's) scrapes a real sluiced, with XDP attached, in a private
 * network namespace, evaluating the shipped rules with every `for:` shortened to 2 s. The
 * database is down at boot, so SluiceDatabaseUnreachable must fire (read from Prometheus's
 * HTTP API); the database comes up and it resolves; the database is taken away while
 * events arrive and it fires again; it comes back and resolves. Then every metric name the
 * Grafana dashboard queries must be in a live /metrics, every dashboard query must be
 * valid PromQL to that Prometheus, and prometheus-adapter's rule for the HPA must find the
 * lag series. The features whose metrics that single journal node does not have run as two
 * more sluiced in this namespace: a Kafka ingress on tools/kafka-mock (sluice_kafka_*), and
 * a journal node with --cluster-redis on a real Redis (sluice_lease_*, sluice_cluster_*);
 * idle, they must show the values on which the new alerts stay silent (Kafka up, no spill,
 * shares from the lease, no controller lease on a non-candidate).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ingress_harness.h"
#include "kafka_harness.h"
#include "netns.h"
#include "pgharness.h"
#include "redisharness.h"
#include "test_progs.h"

#define RULES	    "deploy/prometheus/rules.yaml"
#define RULES_TEST  "tests/deploy/rules_test.yaml"
#define RUNBOOK	    "docs/runbook.md"
#define DASHBOARD   "deploy/grafana/sluice-dashboard.json"
#define ADAPTER	    "deploy/prometheus/adapter-rules.yaml"
#define TENANTS	    "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define ALERT_DB    "SluiceDatabaseUnreachable"
#define PAGE_BUFLEN (1 << 18)

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool have_promtool(void)
{
	if (access("/usr/bin/promtool", X_OK)) {
		test__skip("promtool not installed (tools/setup installs prometheus)");
		return false;
	}
	return true;
}

/* The alert names of the rules file, in order; returns how many (at most max). */
static int alert_names(const char *rules, char names[][64], int max)
{
	int n = 0;

	for (const char *p = rules; n < max && (p = strstr(p, "- alert: ")); p++)
		if (sscanf(p, "- alert: %63s", names[n]) == 1)
			n++;
	return n;
}

/* ---- static ------------------------------------------------------------------------- */

static void subtest_rules_static(void)
{
	char out[8192], names[32][64], needle[256];
	char *test = slurp(RULES_TEST), *rules = slurp(RULES);
	int n;

	if (!ASSERT_OK_PTR(rules, RULES) || !ASSERT_OK_PTR(test, RULES_TEST))
		goto out;
	if (!ASSERT_OK(netns_run(NULL, out, sizeof(out), "promtool check rules " RULES),
		       "promtool check rules"))
		printf("%s\n", out);
	if (!ASSERT_OK(netns_run(NULL, out, sizeof(out), "promtool test rules " RULES_TEST),
		       "promtool test rules"))
		printf("%s\n", out);
	ASSERT_HAS_STR(out, "SUCCESS", "unit tests pass");
	n = alert_names(rules, names, 32);
	ASSERT_GE(n, 15, "alerts found");
	for (int i = 0; i < n; i++) {
		/* a case where it fires ... */
		snprintf(needle, sizeof(needle),
			 "alertname: %.63s\n        exp_alerts:\n          - ", names[i]);
		ASSERT_HAS_STR(test, needle, names[i]);
		/* ... and one where it must not */
		snprintf(needle, sizeof(needle), "alertname: %.63s, exp_alerts: []}", names[i]);
		ASSERT_HAS_STR(test, needle, names[i]);
	}
out:
	free(rules);
	free(test);
}

/* Replace the expression of recording rule `record` (the block after "expr: |") by expr. */
static char *replace_record(const char *rules, const char *record, const char *expr)
{
	char head[160], *out;
	const char *a, *b;

	snprintf(head, sizeof(head), "record: %s\n        expr: |\n", record);
	a = strstr(rules, head);
	if (!a)
		return NULL;
	a += strlen(head);
	b = strstr(a, "\n      - ");
	if (b)
		b++;
	if (!b || asprintf(&out, "%.*s          %s\n%s", (int)(a - rules), rules, expr, b) < 0)
		return NULL;
	return out;
}

/* Put back each bug the rules had: the unit tests must catch every one. */
static void subtest_rules_negative(void)
{
	static const char old_slow[] =
	    "1 - (sum(rate(sluice_http_request_duration_seconds_bucket{route=\"/v1/events\","
	    "le=\"0.5\"}[%s])) / clamp_min(sum(rate(sluice_http_request_duration_seconds_count{"
	    "route=\"/v1/events\"}[%s])), 1e-9))";
	const char *t = test__tmpdir();
	char *rules = slurp(RULES), *bad = NULL, *tmp, path[600], expr[400], out[16384];
	FILE *f;

	if (!ASSERT_OK_PTR(rules, RULES))
		return;
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "mkdir -p %s/neg/tests/deploy %s/neg/deploy/prometheus && cp %s "
			    "%s/neg/tests/deploy/",
			    t, t, RULES_TEST, t),
		  "scratch tree");
	snprintf(path, sizeof(path), "%s/neg/" RULES, t);

	/* 1. the latency ratio clamped to 1e-9: 1 - 0/1e-9 on an idle service */
	bad = strdup(rules);
	for (int i = 0; i < 2 && bad; i++) {
		const char *w = i ? "1h" : "5m";
		char rec[64];

		snprintf(rec, sizeof(rec), "sluice:events_slow_ratio:rate%s", w);
		snprintf(expr, sizeof(expr), old_slow, w, w);
		tmp = replace_record(bad, rec, expr);
		free(bad);
		bad = tmp;
	}
	if (ASSERT_OK_PTR(bad, "old latency ratio put back") &&
	    ASSERT_OK_PTR(f = fopen(path, "w"), path)) {
		fputs(bad, f);
		fclose(f);
		ASSERT_NEQ(
		    netns_run(NULL, out, sizeof(out), "promtool test rules %s/neg/" RULES_TEST, t),
		    0, "idle service paging is caught");
		ASSERT_HAS_STR(out, "alertname: SluiceLatencyBudgetFastBurn", "named");
	}
	free(bad);

	/* 2. an unlimited queue (max_bytes 0) counted as nearly full */
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "sed 's/(sluice_queue_max_bytes > 0)/clamp_min(sluice_queue_max_bytes, "
			    "1)/' " RULES " > %s",
			    path),
		  "old queue rule put back");
	ASSERT_NEQ(netns_run(NULL, out, sizeof(out), "promtool test rules %s/neg/" RULES_TEST, t),
		   0, "unlimited queue paging is caught");
	ASSERT_HAS_STR(out, "instance=\"unlimited\"", "named");

	/* 3. no controller without the candidates guard: journal ingress nodes only page */
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "sed '/and on() count(sluice_cluster_controller_leader and/d' " RULES
			    " > %s",
			    path),
		  "guard removed");
	ASSERT_NEQ(netns_run(NULL, out, sizeof(out), "promtool test rules %s/neg/" RULES_TEST, t),
		   0, "a cluster without candidates alerting is caught");
	ASSERT_HAS_STR(out, "alertname: SluiceNoClusterController", "named");

	/* 4. parked age summed over the workers that all report the one table */
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "sed 's/max by (upstream) (sluice_parked_oldest_seconds)/sum by "
			    "(upstream) (sluice_parked_oldest_seconds)/' " RULES " > %s",
			    path),
		  "sum put in");
	ASSERT_NEQ(netns_run(NULL, out, sizeof(out), "promtool test rules %s/neg/" RULES_TEST, t),
		   0, "parked age counted per worker is caught");
	ASSERT_HAS_STR(out, "alertname: SluiceParkedDeliveriesOld", "named");
	free(rules);
}

/* GitHub's anchor of "## Name" is the lower-cased name. */
static void subtest_runbook(void)
{
	char *rules = slurp(RULES), *book = slurp(RUNBOOK), names[32][64], needle[256];
	int n;

	if (!ASSERT_OK_PTR(rules, RULES) || !ASSERT_OK_PTR(book, RUNBOOK))
		goto out;
	n = alert_names(rules, names, 32);
	for (int i = 0; i < n; i++) {
		char anchor[64];
		const char *a = strstr(rules, names[i]), *next = strstr(a + 1, "- alert: ");
		const char *url = strstr(a, "runbook_url: ");

		for (int j = 0; j < 64; j++)
			anchor[j] = (char)(names[i][j] >= 'A' && names[i][j] <= 'Z'
					       ? names[i][j] - 'A' + 'a'
					       : names[i][j]);
		snprintf(needle, sizeof(needle), "runbook_url: " RUNBOOK "#%.63s\n", anchor);
		ASSERT_TRUE(url && (!next || url < next) && !strncmp(url, needle, strlen(needle)),
			    names[i]);
		snprintf(needle, sizeof(needle), "\n## %.63s\n", names[i]);
		ASSERT_HAS_STR(book, needle, "runbook section");
	}
out:
	free(rules);
	free(book);
}

/* ---- live ---------------------------------------------------------------------------- */

struct live {
	struct netns_pair np;
	struct pgh_server pg;
	struct sluiced_proc sl, kafka_node, cluster_node;
	struct kafka_mock km;
	struct redis_harness redis;
	pid_t prom;
	int prom_port, metrics_port;
	char pin[128], dir[400];
};

static pid_t spawn_in(const char *ns, const char *log, char *const argv[])
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	dup2(open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
	dup2(1, 2);
	if (netns_enter(ns) < 0)
		_exit(126);
	execv(argv[0], argv);
	_exit(127);
}

/* GET url inside the namespace, parsed as JSON (NULL on failure). */
static json_t *get_json(struct live *l, const char *fmt, ...)
{
	static char out[PAGE_BUFLEN];
	char url[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(url, sizeof(url), fmt, ap);
	va_end(ap);
	if (netns_run(l->np.ns_b, out, sizeof(out), "curl -sf --max-time 5 '%s'", url))
		return NULL;
	return json_loads(out, 0, NULL);
}

/* Percent-encode a PromQL expression for a query string. */
static void urlencode(const char *in, char *out, size_t len)
{
	size_t o = 0;

	*out = 0;
	for (; *in && o + 4 < len; in++)
		o += snprintf(out + o, len - o,
			      strchr("abcdefghijklmnopqrstuvwxyz_", *in | 0x20) ? "%c" : "%%%02X",
			      (unsigned char)*in);
}

/* 1 when alert name is firing, 0 when not, -1 when Prometheus did not answer; the other
 * firing alerts are appended to others. */
static int firing(struct live *l, const char *name, char *others, size_t len)
{
	json_t *j = get_json(l, "http://127.0.0.1:%d/api/v1/alerts", l->prom_port), *a;
	int ret = 0;
	size_t i;

	if (!j)
		return -1;
	json_array_foreach(json_object_get(json_object_get(j, "data"), "alerts"), i, a)
	{
		const char *n =
		    json_string_value(json_object_get(json_object_get(a, "labels"), "alertname"));
		bool fire = !strcmp(json_string_value(json_object_get(a, "state")) ?: "", "firing");

		if (n && fire && !strcmp(n, name))
			ret = 1;
		else if (n && fire && others)
			snprintf(others + strlen(others), len - strlen(others), "%s ", n);
	}
	json_decref(j);
	return ret;
}

static bool wait_firing(struct live *l, const char *name, int want, int secs)
{
	for (int i = 0; i < secs * 2; i++) {
		if (firing(l, name, NULL, 0) == want)
			return true;
		usleep(500 * 1000);
	}
	printf("%s still %s after %d s\n", name, want ? "not firing" : "firing", secs);
	return false;
}

static int post_events(struct live *l, const char *prefix, int n)
{
	char out[256];
	int ok = 0, rc;

	for (int i = 0; i < n; i++) {
		rc = netns_run(
		    l->np.ns_b, out, sizeof(out),
		    "curl -s -o /dev/null -w '%%{http_code}' -H 'Content-Type: application/json' "
		    "-H 'Authorization: Bearer "
		    "test' -d '{\"type\":\"lead.created\",\"idempotency_key\":\"%s-%d\","
		    "\"payload\":{}}' http://127.0.0.1:%d/v1/events",
		    prefix, i, l->sl.port);
		if (rc || strcmp(out, "202"))
			printf("POST %s-%d: %d %s\n", prefix, i, rc, out);
		ok += !rc && !strcmp(out, "202");
	}
	return ok;
}

static int live_start(struct live *l)
{
	char conninfo[600], rules[600], cfg[600], log[600], listen[64], data[700];
	char tsdb[700], web[64];
	char help[16384];
	bool admin;
	FILE *f;

	if (netns_pair_create(&l->np))
		return -1;
	snprintf(l->dir, sizeof(l->dir), "%s/live", test__tmpdir());
	mkdir(l->dir, 0755);
	/* PostgreSQL reached over its unix socket: the filesystem crosses namespaces */
	if (pgh_server_start(&l->pg, test__tmpdir(), NULL) || pgh_server_stop(&l->pg, "fast"))
		return -1;
	snprintf(conninfo, sizeof(conninfo),
		 "host=%s port=%d dbname=sluice user=postgres connect_timeout=2", l->pg.dir,
		 l->pg.port);
	snprintf(l->pin, sizeof(l->pin), "/sys/fs/bpf/sluice-test-%d-prom", getpid());
	/* /metrics moves to --admin-listen (issue 12): scrape it there once it exists */
	snprintf(cfg, sizeof(cfg), "%s/sluiced", test__outdir());
	netns_run(NULL, help, sizeof(help), "%s --help", cfg);
	admin = strstr(help, "--admin-listen") != NULL;
	l->metrics_port = admin ? pgh_free_port() : 0;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", l->metrics_port);
	{
		const char *args[] = {"--threads",
				      "1",
				      "--journal-dir",
				      "@journal",
				      "--pg",
				      conninfo,
				      "--iface",
				      l->np.if_b,
				      "--pin-dir",
				      l->pin,
				      admin ? "--admin-listen" : NULL,
				      listen,
				      NULL};

		if (sluiced_start_ns(&l->sl, l->np.ns_b, "127.0.0.1:0", TENANTS, args))
			return -1;
	}
	if (!admin)
		l->metrics_port = l->sl.port;

	/* the shipped rules, with every `for:` and the recording interval shortened */
	snprintf(rules, sizeof(rules), "%s/rules.yaml", l->dir);
	if (netns_run(
		NULL, NULL, 0,
		"sed -E -e 's/for: [0-9]+[smh]/for: 2s/' -e 's/interval: 30s/interval: 1s/' " RULES
		" > %s",
		rules))
		return -1;
	snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", l->dir);
	f = fopen(cfg, "w");
	if (!f)
		return -1;
	fprintf(f,
		"global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
		"rule_files: [%s]\n"
		"scrape_configs:\n"
		"  - job_name: sluice\n"
		"    static_configs:\n"
		"      - targets: ['127.0.0.1:%d']\n"
		"        labels: {instance: n1}\n",
		rules, l->metrics_port);
	fclose(f);
	l->prom_port = pgh_free_port();
	snprintf(log, sizeof(log), "%s/prometheus.log", l->dir);
	snprintf(data, sizeof(data), "--config.file=%s", cfg);
	snprintf(tsdb, sizeof(tsdb), "--storage.tsdb.path=%s/tsdb", l->dir);
	snprintf(web, sizeof(web), "--web.listen-address=127.0.0.1:%d", l->prom_port);
	{
		char *argv[] = {"/usr/bin/prometheus", data, tsdb, web, NULL};

		l->prom = spawn_in(l->np.ns_b, log, argv);
	}
	for (int i = 0; i < 60; i++) {
		json_t *j =
		    get_json(l, "http://127.0.0.1:%d/api/v1/status/runtimeinfo", l->prom_port);

		json_decref(j);
		if (j)
			return 0;
		usleep(250 * 1000);
	}
	netns_run(NULL, help, sizeof(help), "tail -20 %s", log);
	printf("prometheus did not start:\n%s\n", help);
	return -1;
}

static void live_stop(struct live *l)
{
	if (l->prom > 0) {
		kill(l->prom, SIGTERM);
		waitpid(l->prom, NULL, 0);
	}
	if (l->sl.pid > 0)
		sluiced_stop(&l->sl, 5000);
	if (l->kafka_node.pid > 0)
		sluiced_stop(&l->kafka_node, 5000);
	if (l->cluster_node.pid > 0)
		sluiced_stop(&l->cluster_node, 5000);
	kafka_mock_stop(&l->km);
	if (l->redis.pid > 0)
		redis_harness_stop(&l->redis);
	if (*l->pin)
		netns_run(NULL, NULL, 0, "rm -rf %s", l->pin);
	pgh_server_destroy(&l->pg);
	netns_pair_destroy(&l->np);
}

/* The Kafka ingress and the cluster node (no XDP, this namespace); their /metrics pages are
 * appended to page (len bytes in all). 0 or -1. */
static int aux_metrics(struct live *l, char *page, size_t len)
{
	char redis[64];
	const char *kargs[] = {"--queue", "kafka",     "--role", "ingress", "--kafka-brokers",
			       NULL,	  "--threads", "1",	 NULL};
	const char *cargs[] = {
	    "--threads", "1",	   "--journal-dir", "@journal",	    "--cluster-redis",
	    redis,	 "--node", "aux",	    "--deny-after", "1000",
	    NULL};
	struct sluiced_proc *procs[] = {&l->kafka_node, &l->cluster_node};
	static const char *const healthy[][2] = {
	    {"\nsluice_kafka_up 1\n", "\nsluice_kafka_spill_depth 0\n"},
	    {"\nsluice_lease_source{source=\"lease\"} 1\n",
	     "\nsluice_cluster_controller_leader 0\n"}};

	if (!ASSERT_OK(kafka_mock_start(&l->km, 1, NULL, 1, 1), "kafka-mock") ||
	    !ASSERT_OK(redis_harness_start(&l->redis), "redis"))
		return -1;
	kargs[5] = l->km.bootstrap;
	snprintf(redis, sizeof(redis), "127.0.0.1:%u", l->redis.port);
	if (!ASSERT_OK(sluiced_start(&l->kafka_node, TENANTS, kargs), "kafka ingress sluiced") ||
	    !ASSERT_OK(sluiced_start(&l->cluster_node, TENANTS, cargs), "cluster sluiced"))
		return -1;
	/* idle and healthy, the values the new alerts read must be the silent ones: Kafka up
	 * with nothing spilled, the node on leases (after its first round trip), no candidate
	 * (no --pg) so no controller lease held and none expected */
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		size_t used = strlen(page);
		int status = 0;

		for (int t = 0; t < 40; t++) {
			page[used] = 0;
			status = http_admin(procs[i], "/metrics", page + used, len - used);
			if (status == 200 && strstr(page + used, healthy[i][0]) &&
			    strstr(page + used, healthy[i][1]))
				break;
			usleep(250 * 1000);
		}
		if (!ASSERT_EQ(status, 200, "aux /metrics"))
			return -1;
		ASSERT_HAS_STR(page + used, healthy[i][0], "healthy while idle");
		ASSERT_HAS_STR(page + used, healthy[i][1], "healthy while idle");
	}
	return 0;
}

/* Every sluice_* name the dashboard queries is a family in the live /metrics (a histogram's
 * _bucket/_count/_sum count as the family), and each query is valid to Prometheus. */
static void check_dashboard(struct live *l, const char *page)
{
	json_t *d = json_load_file(DASHBOARD, 0, NULL), *p, *t;
	size_t i, j;
	int queries = 0;

	if (!ASSERT_OK_PTR(d, DASHBOARD))
		return;
	json_array_foreach(json_object_get(d, "panels"), i, p)
	    json_array_foreach(json_object_get(p, "targets"), j, t)
	{
		const char *expr = json_string_value(json_object_get(t, "expr"));
		char enc[2048], name[128], type[200];
		json_t *r;

		if (!ASSERT_OK_PTR(expr, "target has an expr"))
			continue;
		queries++;
		for (const char *s = expr; (s = strstr(s, "sluice_")); s += strlen(name)) {
			size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");
			char *suffix;
			bool found;

			snprintf(name, sizeof(name), "%.*s", (int)n, s);
			snprintf(type, sizeof(type), "# TYPE %s ", name);
			found = strstr(page, type);
			suffix = strrchr(name, '_');
			if (!found && suffix &&
			    (!strcmp(suffix, "_bucket") || !strcmp(suffix, "_count") ||
			     !strcmp(suffix, "_sum"))) {
				snprintf(type, sizeof(type), "# TYPE %.*s histogram",
					 (int)(suffix - name), name);
				found = strstr(page, type);
			}
			if (!found)
				printf("dashboard queries %s, not in /metrics\n", name);
			ASSERT_TRUE(found, "dashboard metric exists");
		}
		urlencode(expr, enc, sizeof(enc));
		r = get_json(l, "http://127.0.0.1:%d/api/v1/query?query=%s", l->prom_port, enc);
		ASSERT_STREQ(json_string_value(json_object_get(r, "status")), "success",
			     "dashboard query valid PromQL");
		json_decref(r);
	}
	ASSERT_GT(queries, 8, "dashboard queries checked");
	json_decref(d);
}

/* prometheus-adapter's external rule: its seriesQuery finds the lag series, and its
 * metricsQuery, expanded as the adapter does for the HPA's selector class=normal, answers. */
static void check_adapter_rule(struct live *l)
{
	char *rule = slurp(ADAPTER), series[200], query[512], enc[1024];
	json_t *r;
	const char *s;

	if (!ASSERT_OK_PTR(rule, ADAPTER))
		return;
	ASSERT_OK(sscanf(strstr(rule, "seriesQuery: '") ?: "", "seriesQuery: '%199[^']'", series) !=
		      1,
		  "seriesQuery");
	s = strstr(rule, "metricsQuery: '");
	ASSERT_OK(!s || sscanf(s, "metricsQuery: '%299[^']'", query) != 1, "metricsQuery");
	free(rule);
	urlencode(series, enc, sizeof(enc));
	r = get_json(l, "http://127.0.0.1:%d/api/v1/series?match%%5B%%5D=%s", l->prom_port, enc);
	ASSERT_EQ(json_array_size(json_object_get(r, "data")), 3,
		  "adapter's seriesQuery finds the lag of each class");
	json_decref(r);
	/* "max by (class) (<<.Series>>{<<.LabelMatchers>>})" */
	{
		char expanded[512], *a = strstr(query, "<<.Series>>{<<.LabelMatchers>>}");

		if (!ASSERT_OK_PTR(a, "template placeholders"))
			return;
		snprintf(expanded, sizeof(expanded),
			 "%.*ssluice_queue_lag_seconds{class=\"normal\"}%s", (int)(a - query),
			 query, a + strlen("<<.Series>>{<<.LabelMatchers>>}"));
		snprintf(query, sizeof(query), "%s", expanded);
	}
	urlencode(query, enc, sizeof(enc));
	r = get_json(l, "http://127.0.0.1:%d/api/v1/query?query=%s", l->prom_port, enc);
	ASSERT_EQ(json_array_size(json_object_get(json_object_get(r, "data"), "result")), 1,
		  "adapter's metricsQuery: one value for class normal");
	ASSERT_STREQ(
	    json_string_value(json_object_get(
		json_object_get(
		    json_array_get(json_object_get(json_object_get(r, "data"), "result"), 0),
		    "metric"),
		"class")),
	    "normal", "labelled with the class");
	json_decref(r);
}

static void subtest_live(void)
{
	static char page[PAGE_BUFLEN];
	struct live l = {0};
	char others[512] = "";
	json_t *r;

	if (!test__require_root())
		return;
	if (access("/usr/bin/prometheus", X_OK)) {
		test__skip("prometheus not installed (tools/setup installs it)");
		return;
	}
	if (!ASSERT_OK(live_start(&l), "netns, sluiced with XDP, database down, prometheus"))
		goto out;

	/* down at boot: sluice_db_up 0 from the first scrape */
	ASSERT_TRUE(wait_firing(&l, ALERT_DB, 1, 40), "database down at boot fires");
	firing(&l, ALERT_DB, others, sizeof(others));
	ASSERT_STREQ(others, "", "nothing else fires on an idle service");
	ASSERT_EQ(post_events(&l, "boot", 5), 5, "202 while the database is away");
	if (!ASSERT_OK(pgh_server_restart(&l.pg), "database up"))
		goto out;
	ASSERT_TRUE(wait_firing(&l, ALERT_DB, 0, 40), "resolves when it answers");
	ASSERT_TRUE(pgh_wait_ll(&l.pg, "SELECT count(*) FROM events", 5, 20), "backlog stored");

	/* taken away while events arrive */
	if (!ASSERT_OK(pgh_server_stop(&l.pg, "fast"), "database stopped"))
		goto out;
	ASSERT_EQ(post_events(&l, "outage", 5), 5, "202 during the outage");
	ASSERT_TRUE(wait_firing(&l, ALERT_DB, 1, 40), "outage fires");
	if (!ASSERT_OK(pgh_server_restart(&l.pg), "database back"))
		goto out;
	ASSERT_TRUE(wait_firing(&l, ALERT_DB, 0, 40), "and resolves");
	ASSERT_TRUE(pgh_wait_ll(&l.pg, "SELECT count(*) FROM events", 10, 20), "outage stored");

	/* the DB latency panel has data in Prometheus */
	sleep(2);
	r = get_json(
	    &l, "http://127.0.0.1:%d/api/v1/query?query=sluice_db_batch_duration_seconds_count",
	    l.prom_port);
	ASSERT_GT(
	    atof(json_string_value(json_array_get(
		     json_object_get(
			 json_array_get(json_object_get(json_object_get(r, "data"), "result"), 0),
			 "value"),
		     1))
		     ?: "0"),
	    0, "batch latency histogram scraped");
	json_decref(r);

	if (ASSERT_OK(netns_run(l.np.ns_b, page, sizeof(page),
				"curl -sf http://127.0.0.1:%d/metrics", l.metrics_port),
		      "live /metrics") &&
	    !aux_metrics(&l, page, sizeof(page)))
		check_dashboard(&l, page);
	check_adapter_rule(&l);
out:
	live_stop(&l);
}

static void subtest_dashboard_json(void)
{
	json_error_t e;
	json_t *d = json_load_file(DASHBOARD, 0, &e), *p;
	size_t i;

	if (!ASSERT_OK_PTR(d, "dashboard parses")) {
		printf("%s:%d: %s\n", e.source, e.line, e.text);
		return;
	}
	ASSERT_GT(json_array_size(json_object_get(d, "panels")), 8, "has panels");
	json_array_foreach(json_object_get(d, "panels"), i, p)
	    ASSERT_GT(json_array_size(json_object_get(p, "targets")), 0, "every panel queries");
	json_decref(d);
}

void test_deploy_prometheus(void)
{
	if (test__start_subtest("dashboard_json"))
		subtest_dashboard_json();
	if (!have_promtool())
		return;
	if (test__start_subtest("rules_static"))
		subtest_rules_static();
	if (test__start_subtest("rules_negative_control"))
		subtest_rules_negative();
	if (test__start_subtest("runbook"))
		subtest_runbook();
	if (test__start_subtest("live_prometheus"))
		subtest_live();
}
