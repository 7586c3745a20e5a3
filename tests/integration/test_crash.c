// SPDX-License-Identifier: MIT
/* test_crash.c -- the daemon killed mid-stream, and a full disk: no 202 is ever lost
 *
 * crash_restart: four keep-alive clients post 50,000 events; sluiced is SIGKILLed at a
 * random moment and restarted on the same port; clients re-send whatever got no answer.
 * Every key ends up answered 202, and PostgreSQL holds each exactly once, nothing else.
 * full_disk: the journal lives on a 384 KiB tmpfs and the database is stopped, so nothing is
 * acked and the disk fills: intake answers 503 (never 202 for what it could not write);
 * once the database returns the backlog drains, and every 202'd key is stored.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "pgharness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define CLIENTS 4

struct client {
	int id, from, to;   /* keys [from, to) */
	volatile int *port; /* the daemon's port (same across restarts) */
	volatile int *stop;
	int accepted, refused; /* 202s, 503s */
	unsigned char *acked;  /* per key: 1 once answered 202 */
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct http_client h = {.fd = -1};
	static __thread char resp[4096];
	char body[256], req[1024];

	for (int k = c->from; k < c->to && !*c->stop;) {
		int n, st;

		if (h.fd < 0 && http_open(&h, *c->port)) {
			usleep(20000); /* down: wait for the restart */
			continue;
		}
		snprintf(body, sizeof(body),
			 "{\"type\":\"lead.created\",\"idempotency_key\":\"k%d\",\"payload\":{}}",
			 k);
		n = http_event_request(req, sizeof(req), "test", body);
		if (http_send(&h, req, (size_t)n) || http_read(&h, resp, sizeof(resp), 5000) <= 0) {
			http_close(&h); /* no answer: the same key goes again */
			continue;
		}
		st = http_status(resp);
		if (st == 202) {
			c->acked[k] = 1;
			c->accepted++;
			k++;
		} else if (st == 503) {
			c->refused++;
			usleep(5000); /* full: back off, same key again */
		} else {
			printf("client %d: key %d: unexpected status %d\n", c->id, k, st);
			k++;
		}
	}
	http_close(&h);
	return NULL;
}

static int start(struct sluiced_proc *p, const char *listen, const char *jdir, const char *conninfo)
{
	/* small segments: acknowledged ones are deleted, which is how a full disk recovers */
	const char *args[] = {
	    "--journal-dir",	       jdir,	"--pg", conninfo, "--threads", "1",
	    "--journal-segment-bytes", "65536", NULL};

	return sluiced_start_ns(p, NULL, listen, TENANTS, args);
}

/* One subtest's world: a database, a daemon on a fixed port, the clients and their keys. */
struct run {
	struct pgh_server pg;
	struct sluiced_proc p;
	struct client cl[CLIENTS];
	pthread_t th[CLIENTS];
	bool clients_started, mounted;
	unsigned char *acked;
	int total;
	char base[500], jdir[600], listen[64];
	volatile int port, stop;
};

static bool run_init(struct run *r, const char *name, int total)
{
	memset(r, 0, sizeof(*r));
	r->total = total;
	r->acked = calloc((size_t)total, 1);
	r->port = pgh_free_port();
	snprintf(r->base, sizeof(r->base), "%s/%s", test__tmpdir(), name);
	mkdir(r->base, 0755);
	snprintf(r->jdir, sizeof(r->jdir), "%s/journal", r->base);
	mkdir(r->jdir, 0755);
	snprintf(r->listen, sizeof(r->listen), "127.0.0.1:%d", r->port);
	return r->acked && ASSERT_OK(pgh_server_start(&r->pg, r->base, NULL), "postgres");
}

static void run_clients(struct run *r)
{
	for (int i = 0; i < CLIENTS; i++) {
		r->cl[i] = (struct client){.id = i,
					   .from = r->total * i / CLIENTS,
					   .to = r->total * (i + 1) / CLIENTS,
					   .port = &r->port,
					   .stop = &r->stop,
					   .acked = r->acked};
		pthread_create(&r->th[i], NULL, client_main, &r->cl[i]);
	}
	r->clients_started = true;
}

/* Wait for the clients to finish; returns how many keys were answered 202. */
static int run_join(struct run *r)
{
	int accepted = 0;

	for (int i = 0; r->clients_started && i < CLIENTS; i++)
		pthread_join(r->th[i], NULL);
	r->clients_started = false;
	for (int k = 0; k < r->total; k++)
		accepted += r->acked[k];
	return accepted;
}

static int run_count(const struct run *r, bool refused)
{
	int n = 0;

	for (int i = 0; i < CLIENTS; i++)
		n += refused ? r->cl[i].refused : r->cl[i].accepted;
	return n;
}

static void run_fini(struct run *r)
{
	r->stop = 1;
	run_join(r);
	if (r->p.pid > 0)
		sluiced_stop(&r->p, 5000);
	pgh_server_destroy(&r->pg);
	if (r->mounted)
		umount2(r->jdir, MNT_DETACH);
	free(r->acked);
}

static void subtest_crash_restart(void)
{
	enum { TOTAL = 50000 };
	struct run r;
	int kill_at;

	if (!run_init(&r, "crash", TOTAL) ||
	    !ASSERT_OK(start(&r.p, r.listen, r.jdir, r.pg.conninfo), "sluiced"))
		goto out;
	srand((unsigned)time(NULL));
	kill_at = 5000 + rand() % 20000;
	printf("SIGKILL after %d accepted events\n", kill_at);
	run_clients(&r);
	while (run_count(&r, false) < kill_at)
		usleep(2000);
	kill(r.p.pid, SIGKILL);
	waitpid(r.p.pid, NULL, 0);
	r.p.pid = 0;
	usleep(200000);
	if (!ASSERT_OK(start(&r.p, r.listen, r.jdir, r.pg.conninfo),
		       "restarted on the same journal"))
		goto out;
	ASSERT_EQ(run_join(&r), TOTAL, "every key answered 202 in the end");
	ASSERT_TRUE(pgh_wait_ll(&r.pg, "SELECT count(*) FROM events", TOTAL, 120),
		    "one row per key");
	ASSERT_EQ(pgh_query_ll(&r.pg, "SELECT count(DISTINCT idempotency_key) FROM events"), TOTAL,
		  "each key exactly once");
	ASSERT_EQ(pgh_query_ll(&r.pg, "SELECT count(*) FROM events WHERE NOT idempotency_key ~ "
				      "'^k[0-9]+$' OR substr(idempotency_key, 2)::int >= 50000"),
		  0, "nothing invented");
	ASSERT_EQ(sluiced_stop(&r.p, 15000), 0, "clean exit after the restart");
out:
	run_fini(&r);
}

static void subtest_full_disk(void)
{
	enum { TOTAL = 6000 };
	struct run r;
	int refused = 0;

	if (!run_init(&r, "full", TOTAL))
		goto out;
	if (mount("tmpfs", r.jdir, "tmpfs", 0, "size=384k")) {
		test__skip("cannot mount a tmpfs for the journal: %s", strerror(errno));
		goto out;
	}
	r.mounted = true;
	/* the database is down: nothing gets acked, so the journal only grows */
	if (!ASSERT_OK(pgh_server_stop(&r.pg, "fast"), "database down") ||
	    !ASSERT_OK(start(&r.p, r.listen, r.jdir, r.pg.conninfo), "sluiced"))
		goto out;
	run_clients(&r);
	for (int i = 0; i < 300 && refused <= 50; i++) {
		usleep(20000);
		refused = run_count(&r, true);
	}
	ASSERT_GT(refused, 50, "a full disk answers 503");
	if (!ASSERT_OK(pgh_server_restart(&r.pg), "database back"))
		goto out;
	ASSERT_EQ(run_join(&r), TOTAL, "all accepted once the backlog drained");
	ASSERT_TRUE(pgh_wait_ll(&r.pg, "SELECT count(*) FROM events", TOTAL, 120),
		    "every 202'd key stored, once");
	ASSERT_TRUE(sluiced_log_wait(&r.p, "No space left on device", 100) ||
			sluiced_log_wait(&r.p, "ENOSPC", 100) ||
			sluiced_log_wait(&r.p, "full", 100),
		    "the daemon said why it refused");
	ASSERT_EQ(sluiced_stop(&r.p, 15000), 0, "clean exit");
out:
	run_fini(&r);
}

void test_crash(void)
{
	if (!test__require_root())
		return;
	if (test__start_subtest("crash_restart"))
		subtest_crash_restart();
	if (test__start_subtest("full_disk"))
		subtest_full_disk();
}
