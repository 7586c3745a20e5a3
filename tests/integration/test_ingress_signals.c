// SPDX-License-Identifier: MIT
/* test_ingress_signals.c -- the real sluiced: SIGHUP reload (good and broken files),
 * SIGTERM drain that loses nothing, deny list after persistent 429s */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "test_progs.h"

#define TENANT_A "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define TENANT_B "[beta]\nkey = " HARNESS_KEY_B_HEX "\n"
#define EVENT	 "{\"type\":\"t\",\"idempotency_key\":\"k\",\"payload\":{}}"

static char resp[1 << 16];

static int post(int port, const char *key)
{
	char req[1024];

	http_event_request(req, sizeof(req), key, EVENT);
	return http_once(port, req, resp, sizeof(resp));
}

static void subtest_sighup(void)
{
	const char *args[] = {"--threads", "2", "--journal-dir", "@journal", NULL};
	struct sluiced_proc p = {0};

	if (!ASSERT_OK(sluiced_start(&p, TENANT_A, args), "start"))
		return;
	ASSERT_EQ(post(p.port, "test"), 202, "acme before");
	ASSERT_EQ(post(p.port, "hello"), 401, "beta unknown before");
	/* good file: beta added, acme removed */
	sluiced_write_tenants(&p, TENANT_B);
	kill(p.pid, SIGHUP);
	ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"tenants: reloaded\"", 3000), "reload logged");
	ASSERT_EQ(post(p.port, "hello"), 202, "beta after reload");
	ASSERT_EQ(post(p.port, "test"), 401, "acme gone after reload");
	/* broken file: refused with file:line, beta keeps working */
	sluiced_write_tenants(&p, TENANT_A "class = sometimes\n");
	kill(p.pid, SIGHUP);
	ASSERT_TRUE(sluiced_log_wait(&p, "tenants.ini:3: class = sometimes", 3000),
		    "file:line logged");
	ASSERT_TRUE(sluiced_log_wait(&p, "reload refused, the running tenants stay", 100),
		    "refusal logged");
	ASSERT_EQ(post(p.port, "hello"), 202, "old config still serves");
	ASSERT_EQ(post(p.port, "test"), 401, "broken file not applied");
	http_admin(&p, "/metrics", resp, sizeof(resp));
	ASSERT_HAS_STR(resp, "sluice_tenants_reloads_total{result=\"refused\"} 1", "counted");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static int first_202; /* set by the first client answer: the drain starts mid-stream */

struct client_arg {
	int port, sent, accepted, other;
	char ids[64][20];
};

/* One keep-alive connection pipelining 16 events; reads every answer it gets. */
static void *drain_client(void *arg)
{
	struct client_arg *a = arg;
	static __thread struct http_client c;
	static __thread char r[4096];
	char req[1024], all[16 * 1024] = "";

	http_event_request(req, sizeof(req), "test", EVENT);
	if (http_open(&c, a->port))
		return NULL;
	for (int i = 0; i < 16; i++)
		strncat(all, req, sizeof(all) - strlen(all) - 1);
	if (!http_send(&c, all, strlen(all)))
		a->sent = 16;
	while (http_read(&c, r, sizeof(r), 5000) > 0) {
		char *id = strstr(r, "\"id\":\"");

		if (http_status(r) == 202 && id && a->accepted < 64) {
			snprintf(a->ids[a->accepted++], 20, "%.16s", id + 6);
			__atomic_store_n(&first_202, 1, __ATOMIC_RELEASE);
		} else
			a->other++;
	}
	http_close(&c);
	return NULL;
}

static int journal_records(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char path[1024], *buf;
		FILE *f;
		long len;

		if (strncmp(e->d_name, "seg-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		rewind(f);
		buf = malloc((size_t)len + 1);
		len = (long)fread(buf, 1, (size_t)len, f);
		for (char *s = buf;
		     (s = memmem(s, (size_t)(buf + len - s), "\"idempotency_key\"", 17)); s++)
			n++;
		free(buf);
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static void subtest_drain(void)
{
	const char *args[] = {"--threads", "2", "--journal-dir", "@journal", "--drain-timeout-ms",
			      "5000",	   NULL};
	struct client_arg a[4] = {0};
	pthread_t th[4];
	struct sluiced_proc p = {0};
	int accepted = 0, status;

	if (!ASSERT_OK(sluiced_start(&p, TENANT_A, args), "start"))
		return;
	for (int i = 0; i < 4; i++) {
		a[i].port = p.port;
		pthread_create(&th[i], NULL, drain_client, &a[i]);
	}
	/* ask to stop while requests are in flight: right after the first 202 */
	for (int i = 0; i < 3000 && !__atomic_load_n(&first_202, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	kill(p.pid, SIGTERM);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		accepted += a[i].accepted;
	}
	status = sluiced_stop(&p, 8000); /* already exiting: just reaps */
	ASSERT_EQ(status, 0, "drained and exited 0");
	/* every 202 the clients got is in the journal: nothing acknowledged was lost */
	ASSERT_GE(journal_records(p.journal), accepted, "journal holds every 202");
	ASSERT_GT(accepted, 0, "some events accepted before the drain");
	printf("drain: %d events answered 202, %d in the journal\n", accepted,
	       journal_records(p.journal));
	for (int i = 0; i < 4; i++) {
		printf("drain client %d: sent %d, 202 %d, other answers %d\n", i, a[i].sent,
		       a[i].accepted, a[i].other);
		/* a connection being served when the drain began gets every request it had
		 * sent answered (they arrived in one segment); one not yet read gets none */
		ASSERT_TRUE(a[i].accepted == 0 || a[i].accepted == a[i].sent,
			    "in-flight pipelined requests all answered");
	}
	ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"sluiced: stopped\"", 100), "stopped logged");
}

static void subtest_deny(void)
{
	const char *args[] = {
	    "--threads", "1", "--journal-dir", "@journal", "--deny-after", "3", "--deny-secs",
	    "60",	 NULL};
	static struct http_client c;
	struct sluiced_proc p = {0};
	int r429 = 0;

	if (!ASSERT_OK(sluiced_start(&p,
				     "[beta]\nkey = " HARNESS_KEY_B_HEX
				     "\nreq_rate = 0.1\nreq_burst = 1\n",
				     args),
		       "start"))
		return;
	ASSERT_EQ(post(p.port, "hello"), 202, "credit");
	for (int i = 0; i < 3; i++)
		r429 += post(p.port, "hello") == 429;
	ASSERT_EQ(r429, 3, "three 429s");
	ASSERT_TRUE(sluiced_log_wait(&p, "source denied", 2000), "deny logged");
	/* 127.0.0.1 is now refused at accept */
	if (ASSERT_OK(http_open(&c, p.port), "tcp connect"))
		ASSERT_TRUE(http_closed(&c, 3000), "refused at accept");
	http_close(&c);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* issue 12: behind a NAT or load balancer several tenants share an address; one tenant's
 * 429s must not deny it for all of them. Here acme and beta both send from 127.0.0.1. */
static void subtest_deny_shared(void)
{
	const char *args[] = {
	    "--threads", "1", "--journal-dir", "@journal", "--deny-after", "3", "--deny-secs",
	    "60",	 NULL};
	struct sluiced_proc p = {0};
	int r429 = 0;

	if (!ASSERT_OK(sluiced_start(&p,
				     "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
				     "[beta]\nkey = " HARNESS_KEY_B_HEX
				     "\nreq_rate = 0.1\nreq_burst = 1\n",
				     args),
		       "start"))
		return;
	ASSERT_EQ(post(p.port, "test"), 202, "acme sends from 127.0.0.1");
	ASSERT_EQ(post(p.port, "hello"), 202, "beta's credit");
	for (int i = 0; i < 3; i++)
		r429 += post(p.port, "hello") == 429;
	ASSERT_EQ(r429, 3, "three 429s for beta");
	ASSERT_TRUE(sluiced_log_wait(&p, "from a source it shares: not denied", 2000),
		    "spared, and logged");
	ASSERT_EQ(post(p.port, "test"), 202, "acme still gets in from the shared address");
	ASSERT_EQ(post(p.port, "hello"), 429, "beta is still held to its credits");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

void test_ingress_signals(void)
{
	if (test__start_subtest("sighup"))
		subtest_sighup();
	if (test__start_subtest("drain"))
		subtest_drain();
	if (test__start_subtest("deny"))
		subtest_deny();
	if (test__start_subtest("deny_shared"))
		subtest_deny_shared();
}
