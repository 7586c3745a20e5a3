// SPDX-License-Identifier: MIT
/* test_db_probe.c -- the /readyz database check never holds up SIGTERM or SIGHUP
 *
 * silent_signals: --pg names a host that takes the TCP connection and then never says a
 * word (a listener in this process that accepts and stays silent: what a database behind
 * a dropping firewall, or a hung one, looks like), with connect_timeout=10. While the
 * check's connection attempt hangs, SIGHUP must reload the tenants at once and SIGTERM must
 * end sluiced well within the 10 s (3 s here). With the check on the signal thread (a
 * blocking PQping, before sink/pg/probe.c) both waited out the connect_timeout: checked by
 * running this test against that sluiced, where the reload is logged only after the 3 s
 * and the exit takes ~10 s.
 *
 * role_all_silent: the same silent host with --role all. The worker cannot start (its
 * migration connect hangs for connect_timeout at start, once); the controller thread then
 * retries only when the probe says the database answers, so SIGTERM is not held by a
 * blocking migration connect. Checked against the controller that retried every second
 * regardless: SIGTERM 2.5 s after start-up then waited ~4 s for that connect.
 *
 * reachable: the other answers, against a real PostgreSQL. A multi-host conninfo whose
 * first host is silent becomes "reachable" through the second within its per-host
 * connect_timeout; stopping the server turns it "unreachable"; a database that does not
 * exist still counts as reachable (the server answered, as for PQping), which needs the
 * server's SQLSTATE told from libpq's own errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "lib/clock.h"
#include "pgharness.h"
#include "test_progs.h"

#define TENANT_A "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define TENANT_B "[beta]\nkey = " HARNESS_KEY_B_HEX "\n"

static char resp[1 << 16];

/* A TCP listener on 127.0.0.1 that accepts connections and never answers them. */
struct silent {
	int fd, port, n;
	int held[64];
	char conninfo[200]; /* a --pg naming it */
};

static int silent_open(struct silent *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) || listen(s->fd, 64) ||
	    getsockname(s->fd, (struct sockaddr *)&a, &len))
		return -errno;
	s->port = ntohs(a.sin_port);
	return 0;
}

/* Whether the client on c is still there: what it sent is read away (libpq's startup
 * packet), and a client that gave up has closed its end (EOF). */
static bool client_alive(int c)
{
	char buf[512];

	for (;;) {
		ssize_t n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

/* Wait up to ms for a connection attempt in progress (one a client gave up on while it
 * waited in the backlog does not count); take it and keep it open, silent. */
static bool silent_take(struct silent *s, int ms)
{
	double end = clock_mono_ms() + ms;

	while (clock_mono_ms() < end) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		int c;

		if (poll(&p, 1, (int)(end - clock_mono_ms()) + 1) != 1)
			return false;
		c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return false;
		usleep(20000); /* its startup packet (sslmode=disable: sent on connect) */
		if (!client_alive(c)) {
			close(c);
			continue;
		}
		if (s->n < (int)(sizeof(s->held) / sizeof(s->held[0])))
			s->held[s->n++] = c;
		else
			close(c);
		return true;
	}
	return false;
}

static void silent_close(struct silent *s)
{
	for (int i = 0; i < s->n; i++)
		close(s->held[i]);
	if (s->fd > 0)
		close(s->fd);
	s->fd = -1;
	s->n = 0;
}

/* Open the silent listener and start sluiced --role role with --pg naming it (and the given
 * connect_timeout); 0, or the failed step asserted. */
static int silent_sluiced(struct silent *s, struct sluiced_proc *p, const char *role,
			  int connect_timeout_s)
{
	const char *args[] = {"--threads", "1",	   "--journal-dir", "@journal", "--role",
			      role,	   "--pg", s->conninfo,	    NULL};

	if (!ASSERT_OK(silent_open(s), "silent listener"))
		return -1;
	snprintf(s->conninfo, sizeof(s->conninfo),
		 "host=127.0.0.1 port=%d dbname=sluice user=postgres connect_timeout=%d "
		 "sslmode=disable",
		 s->port, connect_timeout_s);
	return ASSERT_OK(sluiced_start(p, TENANT_A, args), "start") ? 0 : -1;
}

/* Poll /readyz until its body has needle; false after timeout_ms. */
static bool readyz_wait(const struct sluiced_proc *p, const char *needle, int timeout_ms)
{
	double end = clock_mono_ms() + timeout_ms;

	do {
		if (http_admin(p, "/readyz", resp, sizeof(resp)) > 0 && strstr(resp, needle))
			return true;
		usleep(50000);
	} while (clock_mono_ms() < end);
	printf("/readyz: %s\n", resp);
	return false;
}

/* SIGTERM and wait for the exit; its time in ms into *ms, the exit status returned. */
static int stop_timed(struct sluiced_proc *p, double *ms)
{
	double t0 = clock_mono_ms();
	int ret = sluiced_stop(p, 20000);

	*ms = clock_mono_ms() - t0;
	return ret;
}

static void silent_signals(void)
{
	struct silent s = {.fd = -1};
	struct sluiced_proc p = {0};
	double t_attempt, t, reload_ms, exit_ms;

	if (silent_sluiced(&s, &p, "ingress", 10))
		goto out;
	if (!ASSERT_TRUE(silent_take(&s, 5000), "the database check connects to the silent host"))
		goto out;
	t_attempt = clock_mono_ms();
	ASSERT_EQ(http_admin(&p, "/readyz", resp, sizeof(resp)), 200,
		  "ready: the journal takes events");
	ASSERT_HAS_STR(resp, "\"database\":{\"ok\":false,\"state\":\"unreachable\"}",
		       "no answer yet: unreachable");

	sluiced_write_tenants(&p, TENANT_B);
	t = clock_mono_ms();
	kill(p.pid, SIGHUP);
	ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"tenants: reloaded\"", 3000),
		    "SIGHUP reloads while the check's connect hangs");
	reload_ms = clock_mono_ms() - t;

	/* the attempt taken above hangs for connect_timeout (10 s): SIGTERM lands inside it */
	ASSERT_LT(clock_mono_ms() - t_attempt, 9000, "the connect still hangs at SIGTERM");
	ASSERT_EQ(stop_timed(&p, &exit_ms), 0, "clean exit");
	ASSERT_LT(exit_ms, 3000, "SIGTERM ends sluiced well within connect_timeout (10 s)");
	printf("figure: sighup_reload_ms=%.0f\nfigure: sigterm_exit_ms=%.0f\n", reload_ms, exit_ms);
out:
	if (p.pid > 0)
		sluiced_stop(&p, 20000);
	silent_close(&s);
}

static void reachable(void)
{
	struct pgh_server pg = {0};
	struct silent s = {.fd = -1};
	struct sluiced_proc p = {0}, q = {0};
	char conninfo[300], nodb[300], needle[100];
	double exit_ms;
	const char *args[] = {"--threads", "1",	   "--journal-dir", "@journal", "--role",
			      "ingress",   "--pg", conninfo,	    NULL};
	const char *args_nodb[] = {
	    "--threads", "1", "--journal-dir", "@journal", "--role", "ingress", "--pg", nodb, NULL};

	if (!test__require_root())
		return;
	if (!ASSERT_OK(silent_open(&s), "silent listener") ||
	    !ASSERT_OK(pgh_server_start(&pg, test__tmpdir(), NULL), "postgres"))
		goto out;
	/* the silent host first: the check gives it connect_timeout (2 s), then the next one */
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1,%s port=%d,%d dbname=sluice user=postgres connect_timeout=2 "
		 "sslmode=disable target_session_attrs=read-write",
		 pg.host, s.port, pg.port);
	if (!ASSERT_OK(sluiced_start(&p, TENANT_A, args), "start"))
		goto out;
	ASSERT_TRUE(readyz_wait(&p, "\"database\":{\"ok\":true,\"state\":\"reachable\"}", 10000),
		    "reachable through the second host");
	snprintf(needle, sizeof(needle), "msg=\"postgres: probe: database reachable\" host=%s:%d",
		 pg.host, pg.port);
	ASSERT_TRUE(sluiced_log_wait(&p, needle, 1000), "the change logged, with the host");

	if (!ASSERT_OK(pgh_server_stop(&pg, "fast"), "stop postgres"))
		goto out;
	ASSERT_TRUE(readyz_wait(&p, "\"database\":{\"ok\":false,\"state\":\"unreachable\"}", 10000),
		    "unreachable once the server is gone");
	ASSERT_TRUE(
	    sluiced_log_wait(&p, "msg=\"postgres: probe: database unreachable\" hosts=2", 1000),
	    "that change logged");
	ASSERT_EQ(stop_timed(&p, &exit_ms), 0, "clean exit");
	ASSERT_LT(exit_ms, 3000, "no wait for the silent host's connect_timeout");

	/* the server refuses a database it does not have: up, for the check as for PQping */
	if (!ASSERT_OK(pgh_server_restart(&pg), "postgres again"))
		goto out;
	snprintf(nodb, sizeof(nodb),
		 "host=%s port=%d dbname=no_such_db user=postgres connect_timeout=2", pg.host,
		 pg.port);
	if (!ASSERT_OK(sluiced_start(&q, TENANT_A, args_nodb), "start on a missing database"))
		goto out;
	ASSERT_TRUE(readyz_wait(&q, "\"database\":{\"ok\":true,\"state\":\"reachable\"}", 10000),
		    "a server that refuses the database is reachable");
	ASSERT_EQ(sluiced_stop(&q, 20000), 0, "clean exit");
out:
	if (p.pid > 0)
		sluiced_stop(&p, 20000);
	if (q.pid > 0)
		sluiced_stop(&q, 20000);
	pgh_server_destroy(&pg);
	silent_close(&s);
}

static void role_all_silent(void)
{
	struct silent s = {.fd = -1};
	struct sluiced_proc p = {0};
	double exit_ms;

	if (silent_sluiced(&s, &p, "all", 6)) /* starts after one connect_timeout */
		goto out;
	ASSERT_TRUE(
	    sluiced_log_wait(&p, "controller: database unreachable, the worker starts", 1000),
	    "the worker waits for the database");
	/* the controller thread has had two chances to retry, each a 6 s connect before */
	usleep(2500 * 1000);
	ASSERT_EQ(stop_timed(&p, &exit_ms), 0, "clean exit");
	ASSERT_LT(exit_ms, 2000, "SIGTERM is not held by a migration connect");
	printf("figure: role_all_sigterm_exit_ms=%.0f\n", exit_ms);
out:
	if (p.pid > 0)
		sluiced_stop(&p, 20000);
	silent_close(&s);
}

void test_db_probe(void)
{
	if (test__start_subtest("silent_signals"))
		silent_signals();
	if (test__start_subtest("role_all_silent"))
		role_all_silent();
	if (test__start_subtest("reachable"))
		reachable();
}
