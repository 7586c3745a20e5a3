// SPDX-License-Identifier: MIT
/* test_ingress_conn.c -- the real sluiced: keep-alive, pipelining, byte-by-byte clients,
 * Expect: 100-continue, 408, first-byte and idle timeouts, --max-conns,
 * --max-conns-per-source, the descriptor limit (clamp, EMFILE back-off), 10,000 idle
 * connections */
#include <dirent.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/clock.h"
#include "ingress_harness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define EVENT	"{\"type\":\"t\",\"idempotency_key\":\"k\",\"payload\":{}}"

static char resp[1 << 16];

/* One GET /healthz on c: whether it was answered. */
static bool served(struct http_client *c)
{
	return !http_send(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34) &&
	       http_read(c, resp, sizeof(resp), 2000) > 0 && http_status(resp) == 200;
}

static void subtest_keepalive_pipelining(void)
{
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", NULL};
	static struct http_client c;
	struct sluiced_proc p = {0};
	char req[4096], ev[1024];
	size_t n;
	int st[3];

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	if (!ASSERT_OK(http_open(&c, p.port), "connect"))
		goto out;
	/* three requests in one write: an event (async, durable), a GET, another event */
	n = (size_t)http_event_request(ev, sizeof(ev), "test", EVENT);
	snprintf(req, sizeof(req), "%sGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n%s", ev, ev);
	ASSERT_OK(http_send(&c, req, strlen(req)), "send pipelined");
	for (int i = 0; i < 3; i++) {
		st[i] = http_read(&c, resp, sizeof(resp), 3000) > 0 ? http_status(resp) : -1;
		if (i == 2)
			ASSERT_HAS_STR(resp, "\"id\":\"0000000000000002\"", "second event id");
	}
	ASSERT_EQ(st[0], 202, "1st in order");
	ASSERT_EQ(st[1], 200, "2nd in order");
	ASSERT_EQ(st[2], 202, "3rd in order");
	/* the same connection, one byte per write */
	for (size_t i = 0; i < n; i++)
		if (!ASSERT_OK(http_send(&c, ev + i, 1), "byte"))
			goto out;
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "byte-by-byte answer");
	ASSERT_EQ(http_status(resp), 202, "byte-by-byte 202");
	/* HTTP/1.0 keep-alive is announced, so 1.0 clients reuse the connection */
	snprintf(req, sizeof(req), "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	http_send(&c, req, strlen(req));
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "1.0 answer");
	ASSERT_HAS_STR(resp, "Connection: keep-alive\r\n", "1.0 keep-alive announced");
	/* Connection: close is honoured */
	snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	http_send(&c, req, strlen(req));
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "close answer");
	ASSERT_HAS_STR(resp, "Connection: close", "close echoed");
	ASSERT_TRUE(http_closed(&c, 2000), "server closed");
out:
	http_close(&c);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_expect_continue(void)
{
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", NULL};
	static struct http_client c;
	struct sluiced_proc p = {0};
	char head[512];

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	if (!ASSERT_OK(http_open(&c, p.port), "connect"))
		goto out;
	snprintf(
	    head, sizeof(head),
	    "POST /v1/events HTTP/1.1\r\nHost: t\r\nX-Api-Key: test\r\nExpect: 100-continue\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    strlen(EVENT));
	http_send(&c, head, strlen(head));
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "interim");
	ASSERT_EQ(http_status(resp), 100, "100 Continue before the body");
	http_send(&c, EVENT, strlen(EVENT));
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "final");
	ASSERT_EQ(http_status(resp), 202, "202 after the body");
	/* a refused key gets its 401 instead of 100, before any body is sent */
	snprintf(
	    head, sizeof(head),
	    "POST /v1/events HTTP/1.1\r\nHost: t\r\nX-Api-Key: nope\r\nExpect: 100-continue\r\n"
	    "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n");
	http_send(&c, head, strlen(head));
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "refusal");
	ASSERT_EQ(http_status(resp), 401, "401 instead of 100");
out:
	http_close(&c);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_timeouts(void)
{
	const char *args[] = {"--threads", "1", "--header-timeout-ms", "300", "--idle-timeout-ms",
			      "400",	   NULL};
	static struct http_client a, b;
	struct sluiced_proc p = {0};

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	if (!ASSERT_OK(http_open(&a, p.port), "a") || !ASSERT_OK(http_open(&b, p.port), "b"))
		goto out;
	http_send(&a, "GET /healthz HTTP/1.1\r\nHo", 25); /* slowloris */
	ASSERT_GT(http_read(&a, resp, sizeof(resp), 3000), 0, "408 answer");
	ASSERT_EQ(http_status(resp), 408, "header timeout -> 408");
	ASSERT_HAS_STR(resp, "Connection: close", "408 closes");
	ASSERT_TRUE(http_closed(&a, 3000), "closed after 408");
	/* idle keep-alive connection: closed quietly */
	ASSERT_TRUE(http_closed(&b, 3000), "idle closed");
	ASSERT_EQ(b.len, 0, "no answer to an idle connection");
out:
	http_close(&a);
	http_close(&b);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_first_byte_timeout(void)
{
	const char *args[] = {"--threads", "1", "--header-timeout-ms", "300", "--idle-timeout-ms",
			      "60000",	   NULL};
	static struct http_client a, b;
	struct sluiced_proc p = {0};

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	if (!ASSERT_OK(http_open(&a, p.port), "a") || !ASSERT_OK(http_open(&b, p.port), "b"))
		goto out;
	/* b earns the keep-alive timeout with a request */
	http_send(&b, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34);
	ASSERT_GT(http_read(&b, resp, sizeof(resp), 3000), 0, "b served");
	/* a never sends a byte: closed quietly on the header timeout, not kept for 60 s */
	ASSERT_TRUE(http_closed(&a, 3000), "silent new connection closed");
	ASSERT_EQ(a.len, 0, "no answer to a connection that asked nothing");
	ASSERT_FALSE(http_closed(&b, 500), "keep-alive connection still open");
	http_send(&b, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34);
	ASSERT_GT(http_read(&b, resp, sizeof(resp), 3000), 0, "b still served");
out:
	http_close(&a);
	http_close(&b);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_max_conns(void)
{
	const char *args[] = {"--threads", "2", "--max-conns", "5", NULL};
	static struct http_client c[6];
	struct sluiced_proc p = {0};
	int i;

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	for (i = 0; i < 5; i++)
		if (!ASSERT_OK(http_open(&c[i], p.port), "within limit"))
			goto out;
	/* make sure all five are accepted (answered) before the sixth arrives */
	for (i = 0; i < 5; i++) {
		http_send(&c[i], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34);
		ASSERT_GT(http_read(&c[i], resp, sizeof(resp), 3000), 0, "served");
	}
	ASSERT_OK(http_open(&c[5], p.port), "tcp connect (kernel backlog)");
	ASSERT_TRUE(http_closed(&c[5], 3000), "sixth refused at accept");
	/* the admin listener does not count against --max-conns: the scrape gets through */
	ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "metrics");
	ASSERT_HAS_STR(resp, "sluice_http_connections_refused_total{reason=\"max_conns\"} 1",
		       "refusal counted");
	ASSERT_HAS_STR(resp, "sluice_http_connections 5", "open gauge");
out:
	for (i = 0; i < 6; i++)
		http_close(&c[i]);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_max_conns_per_source(void)
{
	const char *args[] = {"--threads", "2", "--max-conns-per-source", "2", NULL};
	static struct http_client c[5];
	struct sluiced_proc p = {0};
	/* 127.0.0.2 belongs to acme: a load balancer, say, exempt from the per-source cap */
	const char *tenants = TENANTS "source = 127.0.0.2\n";
	int i;

	if (!ASSERT_OK(sluiced_start(&p, tenants, args), "start"))
		return;
	for (i = 0; i < 2; i++) {
		if (!ASSERT_OK(http_open(&c[i], p.port), "within the per-source limit"))
			goto out;
		http_send(&c[i], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34);
		ASSERT_GT(http_read(&c[i], resp, sizeof(resp), 3000), 0, "served");
	}
	ASSERT_OK(http_open(&c[2], p.port), "tcp connect (kernel backlog)");
	ASSERT_TRUE(http_closed(&c[2], 3000), "third from 127.0.0.1 refused at accept");
	/* the tenant's configured source is not capped */
	for (i = 2; i < 5; i++) {
		http_close(&c[i]);
		if (!ASSERT_OK(http_open_from(&c[i], "127.0.0.2", "127.0.0.1", p.port), "from .2"))
			goto out;
		http_send(&c[i], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34);
		ASSERT_GT(http_read(&c[i], resp, sizeof(resp), 3000), 0, "tenant source served");
	}
	/* a closed connection gives its source room again */
	http_close(&c[0]);
	usleep(200000);
	ASSERT_OK(http_open(&c[0], p.port), "connect again");
	ASSERT_TRUE(served(&c[0]), "room after a close");
	ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "metrics");
	ASSERT_HAS_STR(resp,
		       "sluice_http_connections_refused_total{reason=\"max_conns_per_source\"} 1",
		       "refusal counted with its reason");
out:
	for (i = 0; i < 5; i++)
		http_close(&c[i]);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_send_timeout(void)
{
	const char *args[] = {"--threads", "1", "--send-timeout-ms", "300", NULL};
	static struct http_client c, d;
	static char flood[64 * 1024];
	struct sluiced_proc p = {0};
	size_t n = 0;

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	if (!ASSERT_OK(http_open(&c, p.admin_port), "connect"))
		goto out;
	/* ~1,800 pipelined /metrics requests (admin port), never read: megabytes of answers
	 * fill the socket buffers, the daemon's send stalls and must give up after 300 ms */
	while (n + 34 < sizeof(flood)) {
		memcpy(flood + n, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 34);
		n += 34;
	}
	ASSERT_OK(http_send(&c, flood, n), "flood");
	usleep(1500000);
	ASSERT_TRUE(http_closed(&c, 5000), "stalled reader closed by the send deadline");
	/* the daemon is fine */
	ASSERT_OK(http_open(&d, p.port), "connect again");
	http_send(&d, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34);
	ASSERT_GT(http_read(&d, resp, sizeof(resp), 3000), 0, "still serving");
out:
	http_close(&c);
	http_close(&d);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* Lines of the log containing needle. */
static int log_lines(const struct sluiced_proc *p, const char *needle)
{
	char *log = sluiced_log(p), *s = log;
	int n = 0;

	while ((s = strstr(s, needle))) {
		n++;
		s += strlen(needle);
	}
	free(log);
	return n;
}

/* max_conns= of the "sluiced: listening" line, 0 when absent. */
static int logged_max_conns(const struct sluiced_proc *p)
{
	char *log = sluiced_log(p), *s = strstr(log, "msg=\"sluiced: listening\"");
	int max = 0;

	if (s && (s = strstr(s, " max_conns=")))
		max = atoi(s + 11);
	free(log);
	return max;
}

static void subtest_fd_limit(void)
{
	const char *args[] = {"--threads", "1", "--max-conns-per-source", "0", NULL};
	enum { EXTRA = 20 };
	static struct http_client c[64 + EXTRA];
	struct sluiced_proc p = {0};
	int max, ok = 0, i;

	if (!ASSERT_OK(sluiced_start_nofile(&p, TENANTS, args, 64), "start with 64 descriptors"))
		return;
	/* --max-conns (65536) is clamped to what 64 descriptors leave, and says so */
	ASSERT_EQ(log_lines(&p, "--max-conns clamped to the file-descriptor limit"), 1, "clamp");
	max = logged_max_conns(&p);
	if (!ASSERT_GT(max, 0, "max_conns") || !ASSERT_LT(max, 64, "under the fd limit"))
		goto out;
	/* more than allowed: the extra ones are refused at accept, quietly (this spun) */
	for (i = 0; i < max + EXTRA; i++)
		if (!http_open(&c[i], p.port))
			ok += served(&c[i]);
	ASSERT_EQ(ok, max, "as many served as max_conns");
	ASSERT_EQ(log_lines(&p, "msg=\"loop: accept failed\""), 0, "no accept failures");
	/* and room again once connections close */
	for (i = 0; i < max + EXTRA; i++)
		http_close(&c[i]);
	usleep(200000);
	ok = 0;
	for (i = 0; i < max; i++)
		if (!http_open(&c[i], p.port))
			ok += served(&c[i]);
	ASSERT_EQ(ok, max, "served again after the first ones closed");
out:
	for (i = 0; i < max + EXTRA; i++)
		http_close(&c[i]);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* A descriptor limit that leaves pid exactly one descriptor to open: RLIMIT_NOFILE bounds
 * descriptor numbers (the lowest free one is taken), so the second lowest free number. */
static unsigned one_fd_free(pid_t pid)
{
	bool used[1024] = {false};
	char path[64];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) < 1024)
			used[atoi(e->d_name)] = true;
	if (d)
		closedir(d);
	while (n < 1024 && used[n])
		n++;
	for (n++; n < 1024 && used[n]; n++)
		;
	return n;
}

static void subtest_accept_backoff(void)
{
	const char *args[] = {"--threads", "1", "--max-conns-per-source", "0", NULL};
	enum { LATE = 5 };
	static struct http_client a, late[LATE];
	struct sluiced_proc p = {0};
	unsigned lim;
	int ok = 0, fails = -1, i, lines;
	double t0;
	char *s;

	/* what the daemon holds once it listens, measured on a first run */
	if (!ASSERT_OK(sluiced_start_nofile(&p, TENANTS, args, 64), "measuring run"))
		return;
	ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"loop: io_uring ready\"", 3000), "ring ready");
	usleep(100000);
	lim = one_fd_free(p.pid);
	sluiced_stop(&p, 5000);
	/* room for exactly one connection: the next accept fails with EMFILE */
	if (!ASSERT_OK(sluiced_start_nofile(&p, TENANTS, args, lim), "start"))
		return;
	if (!ASSERT_OK(http_open(&a, p.port), "a") || !ASSERT_TRUE(served(&a), "a served"))
		goto out;
	t0 = clock_mono_ms();
	for (i = 0; i < LATE; i++)
		ASSERT_OK(http_open(&late[i], p.port), "connect (kernel backlog)");
	usleep(1000000);
	/* accepts pause 100 ms after each EMFILE: one rate-limited line a second, a few
	 * failures, where re-arming at once spun a core and logged ~200,000 lines a second.
	 * The bound follows the seconds that really passed (a slow, sanitized build under load
	 * takes longer than the 1 s slept to get here). */
	lines = log_lines(&p, "msg=\"loop: accept failed\"");
	ASSERT_LE(lines, 1 + (int)((clock_mono_ms() - t0) / 1000),
		  "log stays small: a line a second");
	/* recovery: a closes, its descriptor is free, the waiting ones are served in turn */
	http_close(&a);
	for (i = 0; i < LATE; i++) {
		ok += served(&late[i]);
		http_close(&late[i]);
	}
	ASSERT_EQ(ok, LATE, "every waiting connection served once descriptors are free");
	usleep(100000);
	if (ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "metrics") &&
	    (s = strstr(resp, "sluice_http_accept_failures_total{errno=\"EMFILE\"} ")))
		fails = atoi(strchr(s, '}') + 2);
	ASSERT_GE(fails, 1, "EMFILE counted");
	ASSERT_LE(fails, 60, "one accept per pause, not a spin");
out:
	http_close(&a);
	for (i = 0; i < LATE; i++)
		http_close(&late[i]);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

static void subtest_idle_10k(void)
{
	/* every client is 127.0.0.1: no per-source cap here */
	const char *args[] = {"--threads", "2", "--max-conns-per-source", "0", NULL};
	struct rlimit rl;
	struct sluiced_proc p = {0};
	struct http_client *c = calloc(10000, sizeof(*c));
	int opened = 0;
	char want[64];

	/* each side (this process, the daemon) needs 10,000 descriptors and a few more */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_max < 10100 || setrlimit(RLIMIT_NOFILE, &rl)) {
		test__skip("RLIMIT_NOFILE hard limit %llu is below 10100",
			   (unsigned long long)rl.rlim_max);
		free(c);
		return;
	}
	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		goto out_free;
	for (; opened < 10000; opened++)
		if (!ASSERT_OK(http_open(&c[opened], p.port), "connect"))
			break;
	/* wait for the daemon to have accepted them all, then check they are all held */
	snprintf(want, sizeof(want), "sluice_http_connections %d\n", opened); /* admin apart */
	for (int tries = 0; tries < 100; tries++) {
		http_admin(&p, "/metrics", resp, sizeof(resp));
		if (strstr(resp, want))
			break;
		usleep(50000);
	}
	ASSERT_HAS_STR(resp, want, "10,000 idle connections open");
	/* and they still work */
	http_send(&c[opened - 1], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34);
	ASSERT_GT(http_read(&c[opened - 1], resp, sizeof(resp), 3000), 0, "last one served");
	printf("sluiced RSS with %d idle connections: %ld KiB\n", opened, rss_kb(p.pid));
	for (int i = 0; i < opened; i++)
		http_close(&c[i]);
	ASSERT_EQ(sluiced_stop(&p, 10000), 0, "exit 0");
out_free:
	free(c);
}

void test_ingress_conn(void)
{
	if (test__start_subtest("keepalive_pipelining"))
		subtest_keepalive_pipelining();
	if (test__start_subtest("expect_continue"))
		subtest_expect_continue();
	if (test__start_subtest("timeouts"))
		subtest_timeouts();
	if (test__start_subtest("first_byte_timeout"))
		subtest_first_byte_timeout();
	if (test__start_subtest("send_timeout"))
		subtest_send_timeout();
	if (test__start_subtest("max_conns"))
		subtest_max_conns();
	if (test__start_subtest("max_conns_per_source"))
		subtest_max_conns_per_source();
	if (test__start_subtest("fd_limit"))
		subtest_fd_limit();
	if (test__start_subtest("accept_backoff"))
		subtest_accept_backoff();
	if (test__start_subtest("idle_10k"))
		subtest_idle_10k();
}
