// SPDX-License-Identifier: MIT
/* probe.c -- the database reachability check on a thread of its own (probe.h)
 *
 * One attempt: PQconnectStartParams, then PQconnectPoll whenever poll(2) says the socket is
 * ready in the direction libpq asked for, until libpq is done, the host's deadline passes or
 * the stop eventfd fires. Only this thread writes the state; readers load it atomically.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "sink/pg/hosts.h"
#include "sink/pg/probe.h"

#define MS_NS 1000000ULL

struct pg_probe {
	struct pg_hosts hosts;
	int period_ms;
	int *state;
	int stop_fd; /* eventfd: readable once pg_probe_stop() wants the thread gone */
	pthread_t thread;
	int last; /* the published state; -1 before the first check */
	char why[300];
};

enum attempt { REACHED, NOT_REACHED, STOPPED };

/* "FATAL:  57P03: the database system..." -- with PQERRORS_VERBOSE libpq writes each server
 * error as severity, two spaces, SQLSTATE, ": ". The last one in msg into out (6 bytes), or
 * false when the message holds no server error (libpq's own: refused, timed out, reset). */
static bool last_sqlstate(const char *msg, char *out)
{
	bool found = false;

	for (const char *p = msg; (p = strstr(p, ":  ")); p++) {
		const char *s = p + 3;
		int n = 0;

		while (n < 5 && ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'Z')))
			n++;
		if (n == 5 && s[5] == ':' && s[6] == ' ') {
			memcpy(out, s, 5);
			out[5] = 0;
			found = true;
		}
	}
	return found;
}

/* PQping's reading of a failed connection (libpq's internal_ping): the server answered if it
 * asked for a password we do not have or sent an error other than 57P03. */
static enum attempt classify_failure(struct pg_probe *p, PGconn *c)
{
	const char *msg = PQerrorMessage(c);
	char state[6];

	snprintf(p->why, sizeof(p->why), "%s", msg);
	p->why[strcspn(p->why, "\n")] = 0;
	for (char *q = p->why; *q; q++)
		if (*q == '"')
			*q = '\'';
	if (PQconnectionNeedsPassword(c))
		return REACHED;
	if (!last_sqlstate(msg, state))
		return NOT_REACHED;
	return strcmp(state, "57P03") ? REACHED : NOT_REACHED;
}

/* One connection attempt to host i within its connect_timeout. */
static enum attempt attempt(struct pg_probe *p, int i)
{
	static const char *const kw[] = {"dbname", "target_session_attrs", NULL};
	const char *val[] = {p->hosts.conninfo[i], "any", NULL};
	uint64_t deadline = clock_mono_ns() + (uint64_t)p->hosts.connect_timeout_ms * MS_NS;
	PostgresPollingStatusType want = PGRES_POLLING_WRITING;
	enum attempt res = NOT_REACHED;
	PGconn *c = PQconnectStartParams(kw, val, 1);

	if (!c) {
		snprintf(p->why, sizeof(p->why), "out of memory");
		return NOT_REACHED;
	}
	PQsetErrorVerbosity(c, PQERRORS_VERBOSE); /* the SQLSTATE in the message */
	if (PQstatus(c) == CONNECTION_BAD)
		want = PGRES_POLLING_FAILED;
	for (;;) {
		struct pollfd fds[2] = {{.fd = PQsocket(c)}, {.fd = p->stop_fd, .events = POLLIN}};
		uint64_t now = clock_mono_ns();
		int n;

		if (want == PGRES_POLLING_OK) {
			res = REACHED;
			break;
		}
		if (want == PGRES_POLLING_FAILED || fds[0].fd < 0) {
			res = classify_failure(p, c);
			break;
		}
		if (now >= deadline) {
			snprintf(p->why, sizeof(p->why), "no answer within connect_timeout (%d ms)",
				 p->hosts.connect_timeout_ms);
			break;
		}
		fds[0].events = want == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		n = poll(fds, 2, (int)((deadline - now + MS_NS - 1) / MS_NS));
		if (n < 0 && errno != EINTR) {
			snprintf(p->why, sizeof(p->why), "poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && fds[1].revents) {
			res = STOPPED;
			break;
		}
		if (n > 0 && fds[0].revents)
			want = PQconnectPoll(c);
	}
	PQfinish(c);
	return res;
}

/* One check: the hosts in turn from the one that answered last; true when one answers. */
static enum attempt check(struct pg_probe *p, int *host)
{
	for (int k = 0; k < p->hosts.n; k++) {
		int i = (p->hosts.preferred + k) % p->hosts.n;
		enum attempt r = attempt(p, i);

		if (r == NOT_REACHED)
			continue;
		if (r == REACHED)
			p->hosts.preferred = i;
		*host = i;
		return r;
	}
	*host = p->hosts.preferred;
	return NOT_REACHED;
}

static void publish(struct pg_probe *p, bool up, int host)
{
	if (up == p->last)
		return;
	__atomic_store_n(p->state, up ? 1 : 0, __ATOMIC_RELEASE);
	if (up)
		log_info("postgres: probe: database reachable", "host=%s", p->hosts.label[host]);
	else
		log_warn("postgres: probe: database unreachable", "hosts=%d error=\"%s\"",
			 p->hosts.n, p->why);
	p->last = up;
}

/* Sleep period_ms unless stopped; true when stopped. */
static bool wait_stop(struct pg_probe *p, int ms)
{
	struct pollfd fd = {.fd = p->stop_fd, .events = POLLIN};
	uint64_t end = clock_mono_ns() + (uint64_t)ms * MS_NS;

	for (;;) {
		uint64_t now = clock_mono_ns();
		int n;

		if (now >= end)
			return false;
		n = poll(&fd, 1, (int)((end - now + MS_NS - 1) / MS_NS));
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

static void *probe_main(void *arg)
{
	struct pg_probe *p = arg;

	for (;;) {
		int host;
		enum attempt r = check(p, &host);

		if (r == STOPPED)
			break;
		publish(p, r == REACHED, host);
		if (wait_stop(p, p->period_ms))
			break;
	}
	return NULL;
}

struct pg_probe *pg_probe_start(const struct pg_probe_cfg *cfg, char *err, size_t errlen)
{
	struct pg_probe *p = calloc(1, sizeof(*p));
	int ret;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->period_ms = cfg->period_ms;
	p->state = cfg->state;
	p->last = -1;
	p->stop_fd = -1;
	__atomic_store_n(p->state, 0, __ATOMIC_RELEASE);
	ret = pg_hosts_parse(&p->hosts, cfg->conninfo, err, errlen);
	if (ret)
		goto fail;
	p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->stop_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	ret = -pthread_create(&p->thread, NULL, probe_main, p);
	if (ret) {
		snprintf(err, errlen, "start the database probe thread: %s", strerror(-ret));
		goto fail;
	}
	return p;
fail:
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	pg_hosts_free(&p->hosts);
	free(p);
	errno = -ret;
	return NULL;
}

void pg_probe_stop(struct pg_probe *p)
{
	uint64_t one = 1;

	if (!p)
		return;
	if (write(p->stop_fd, &one, sizeof(one)) != sizeof(one))
		log_error("postgres: probe: cannot signal its thread", "error=\"%s\"",
			  strerror(errno)); /* an eventfd write fails only on overflow */
	pthread_join(p->thread, NULL);
	close(p->stop_fd);
	pg_hosts_free(&p->hosts);
	free(p);
}
