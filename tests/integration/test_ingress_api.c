// SPDX-License-Identifier: MIT
/* test_ingress_api.c -- the real sluiced over loopback: 202 end to end through the journal,
 * every refusal (400/401/404/405/413/415/429/431/501/503/505), Retry-After, demotion */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "test_progs.h"

#define TENANTS                                                                                    \
	"[acme]\nkey = " HARNESS_KEY_A_HEX "\nreq_rate = 1000\nreq_burst = 1000\n"                 \
	"crit_rate = 0.1\ncrit_burst = 1\n"                                                        \
	"[beta]\nkey = " HARNESS_KEY_B_HEX "\nclass = low\nreq_rate = 0.2\nreq_burst = 2\n"

#define EVENT(key)                                                                                 \
	"{\"type\":\"lead.created\",\"idempotency_key\":\"" key "\",\"payload\":{\"a\":1}}"

static char resp[1 << 16];

/* Bytes of every journal segment, concatenated (to look for what was made durable). */
static char *journal_bytes(const char *dir, size_t *len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *all = calloc(1, 1), path[1024];

	*len = 0;
	while (d && (e = readdir(d))) {
		FILE *f;
		long n;

		if (strncmp(e->d_name, "seg-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		char *grown = realloc(all, *len + (size_t)n + 1);

		if (grown) {
			all = grown;
			*len += fread(all + *len, 1, (size_t)n, f);
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return all;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
	return memmem(hay, len, needle, strlen(needle)) != NULL;
}

static int post(int port, const char *key, const char *body)
{
	char req[4096];

	http_event_request(req, sizeof(req), key, body);
	return http_once(port, req, resp, sizeof(resp));
}

/* The live /metrics body must pass `promtool check metrics` (skipped without promtool). */
static void promtool_check(const char *response)
{
	const char *body = strstr(response, "\r\n\r\n");
	char path[600], cmd[700];
	FILE *f;

	if (access("/usr/bin/promtool", X_OK)) {
		printf("promtool not installed (apt package prometheus): not checked\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/metrics.txt", test__tmpdir());
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "metrics file") || !ASSERT_OK_PTR(body, "metrics body")) {
		if (f)
			fclose(f);
		return;
	}
	fputs(body + 4, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	ASSERT_OK(system(cmd), "promtool check metrics on the live /metrics");
}

static void subtest_accepted(void)
{
	const char *args[] = {"--threads", "2", "--journal-dir", "@journal", NULL};
	struct sluiced_proc p = {0};
	size_t len;
	char *j = NULL;

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	ASSERT_EQ(post(p.port, "test", EVENT("lead-1")), 202, "202");
	ASSERT_HAS_STR(resp, "\"class\":\"normal\",\"demoted\":false", "class in body");
	ASSERT_HAS_STR(resp, "\"id\":\"0000000000000001\"", "queue id");
	/* 202 means durable: the envelope is in a journal segment already */
	j = journal_bytes(p.journal, &len);
	ASSERT_TRUE(contains(j, len, "\"idempotency_key\":\"lead-1\""), "envelope in journal");
	ASSERT_EQ(post(p.port, "test",
		       "{\"type\":\"x\",\"idempotency_key\":\"c1\",\"priority\":"
		       "\"critical\",\"payload\":{}}"),
		  202, "critical");
	ASSERT_HAS_STR(resp, "\"class\":\"critical\",\"demoted\":false", "critical credit");
	ASSERT_EQ(post(p.port, "test",
		       "{\"type\":\"x\",\"idempotency_key\":\"c2\",\"priority\":"
		       "\"critical\",\"payload\":{}}"),
		  202, "critical beyond credits");
	ASSERT_HAS_STR(resp, "\"class\":\"normal\",\"demoted\":true", "demoted");
	ASSERT_EQ(http_once(p.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", resp, sizeof(resp)),
		  200, "ready with journal");
	ASSERT_HAS_STR(resp, "\"queue\":{\"ok\":true", "queue check");
	ASSERT_EQ(http_once(p.port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", resp, sizeof(resp)),
		  200, "metrics");
	ASSERT_HAS_STR(resp, "sluice_events_accepted_total{tenant=\"acme\",class=\"normal\"} 2",
		       "accepted counter");
	ASSERT_HAS_STR(
	    resp, "sluice_admission_total{limit=\"crit\",outcome=\"demoted\",tenant=\"acme\"} 1",
	    "demotion counted");
	ASSERT_HAS_STR(resp, "sluice_queue_depth 3", "queue depth");
	promtool_check(resp);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
	free(j);
}

static void expect(int port, const char *req, int status, const char *body_part, const char *name)
{
	ASSERT_EQ(http_once(port, req, resp, sizeof(resp)), status, name);
	if (body_part)
		/* cppcheck-suppress AssignmentAddressToInteger ; statement-expression scopes */
		ASSERT_HAS_STR(resp, body_part, name);
}

static void subtest_refusals(void)
{
	const char *args[] = {"--threads",	    "1",	  "--journal-dir",
			      "@journal",	    "--max-body", "512",
			      "--max-header-bytes", "1024",	  NULL};
	struct sluiced_proc p = {0};
	char big[2048], val[64];

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	expect(p.port, "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}", 401,
	       "\"error\":\"missing_api_key\"", "401 missing");
	ASSERT_TRUE(http_header(resp, "WWW-Authenticate", val, sizeof(val)), "www-authenticate");
	ASSERT_EQ(post(p.port, "wrong", EVENT("x")), 401, "401 unknown");
	ASSERT_HAS_STR(resp, "unknown_api_key", "401 code");
	expect(p.port,
	       "POST /v1/events HTTP/1.1\r\nHost: t\r\nX-Api-Key: test\r\n"
	       "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
	       415, "unsupported_media_type", "415");
	ASSERT_EQ(post(p.port, "test", "{\"type\":"), 400, "400 invalid json");
	ASSERT_HAS_STR(resp, "\"error\":\"invalid_json\"", "invalid_json");
	ASSERT_EQ(post(p.port, "test", "{\"type\":\"a\",\"payload\":{}}"), 400, "400 missing");
	ASSERT_HAS_STR(resp,
		       "\"error\":\"missing_field\",\"detail\":\"missing field 'idempotency_key'\"",
		       "missing_field");
	ASSERT_EQ(
	    post(p.port, "test", "{\"type\":\"a b\",\"idempotency_key\":\"k\",\"payload\":{}}"),
	    400, "400 invalid type");
	ASSERT_EQ(post(p.port, "test", "{\"type\":\"a\",\"idempotency_key\":\"k\",\"payload\":1}"),
		  400, "400 payload");
	ASSERT_EQ(post(p.port, "test",
		       "{\"type\":\"a\",\"idempotency_key\":\"k\",\"payload\":{},"
		       "\"priority\":\"urgent\"}"),
		  400, "400 priority");
	ASSERT_EQ(
	    post(p.port, "test", "{\"type\":\"a\",\"idempotency_key\":\"\\u0000\",\"payload\":{}}"),
	    400, "400 NUL");
	memset(big, 'x', sizeof(big));
	snprintf(big, sizeof(big),
		 "{\"type\":\"a\",\"idempotency_key\":\"k\",\"payload\":{\"p\":\"%0600d\"}}", 0);
	ASSERT_EQ(post(p.port, "test", big), 413, "413 body");
	ASSERT_HAS_STR(resp, "Connection: close", "413 closes");
	snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %01100d\r\n\r\n", 0);
	expect(p.port, big, 431, "header_too_large", "431");
	expect(p.port, "GET /v1/events HTTP/1.1\r\nHost: t\r\n\r\n", 405, "method_not_allowed",
	       "405");
	ASSERT_TRUE(http_header(resp, "Allow", val, sizeof(val)), "Allow header");
	ASSERT_STREQ(val, "POST", "Allow: POST");
	expect(p.port, "DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 405, NULL, "405 healthz");
	expect(p.port, "BREW /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 501, "not_implemented", "501");
	expect(p.port, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404, "not_found", "404");
	expect(p.port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "http2_not_supported", "h2");
	expect(p.port, "GET /healthz\r\n", 400, "http09_not_supported", "0.9");
	expect(p.port,
	       "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	       400, "Content-Length and Transfer-Encoding", "CL+TE");
	ASSERT_HAS_STR(resp, "Connection: close", "smuggling closes");
	expect(p.port, "GET /healthz HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400,
	       "obsolete line folding", "obs-fold");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_rate_limit(void)
{
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", NULL};
	struct sluiced_proc p = {0};
	char val[32] = "";

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	/* beta: 0.2/s, burst 2 -> two pass, the third waits 5 s minus the time spent */
	ASSERT_EQ(post(p.port, "hello", EVENT("b1")), 202, "first");
	ASSERT_EQ(post(p.port, "hello", EVENT("b2")), 202, "second");
	ASSERT_EQ(post(p.port, "hello", EVENT("b3")), 429, "third 429");
	ASSERT_HAS_STR(resp, "\"error\":\"rate_limited\"", "429 code");
	if (ASSERT_TRUE(http_header(resp, "Retry-After", val, sizeof(val)), "Retry-After"))
		ASSERT_EQ(atoi(val), 5, "Retry-After from GCRA (ceil of 5 s minus elapsed)");
	ASSERT_EQ(post(p.port, "test", EVENT("a1")), 202, "other tenant unaffected");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_dry_run(void)
{
	const char *args[] = {"--threads",	  "1", "--journal-dir", "@journal",
			      "--dry-run-limits", NULL};
	struct sluiced_proc p = {0};
	int ok = 0;

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	for (int i = 0; i < 4; i++)
		ok += post(p.port, "hello", EVENT("d")) == 202;
	ASSERT_EQ(ok, 4, "dry run enforces nothing");
	http_once(p.port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", resp, sizeof(resp));
	ASSERT_HAS_STR(resp, "outcome=\"passed_dry_run\",tenant=\"beta\"} 4", "dry-run counted");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_queue_refusals(void)
{
	const char *full[] = {"--threads",
			      "1",
			      "--journal-dir",
			      "@journal",
			      "--queue-max-entries",
			      "2",
			      "--retry-after-503",
			      "7",
			      NULL};
	const char *none[] = {"--threads", "1", NULL};
	struct sluiced_proc p = {0};
	char val[32] = "";

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, full), "start full"))
		return;
	ASSERT_EQ(post(p.port, "test", EVENT("q1")), 202, "1");
	ASSERT_EQ(post(p.port, "test", EVENT("q2")), 202, "2");
	ASSERT_EQ(post(p.port, "test", EVENT("q3")), 503, "full -> 503");
	ASSERT_HAS_STR(resp, "\"error\":\"queue_full\"", "queue_full");
	if (ASSERT_TRUE(http_header(resp, "Retry-After", val, sizeof(val)), "Retry-After"))
		ASSERT_STREQ(val, "7", "configured Retry-After");
	ASSERT_EQ(http_once(p.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", resp, sizeof(resp)),
		  503, "not ready when full");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
	if (!ASSERT_OK(sluiced_start(&p, TENANTS, none), "start without journal"))
		return;
	ASSERT_EQ(post(p.port, "test", EVENT("n1")), 503, "no queue -> 503");
	ASSERT_HAS_STR(resp, "queue_unavailable", "queue_unavailable");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_readyz_db(void)
{
	/* nothing listens on port 1: the database check fails and /readyz says so, but the node
	 * stays ready: the queue accepts, and a load balancer must not drop every node during a
	 * database outage */
	const char *args[] = {
	    "--threads", "1",	    "--journal-dir", "@journal",
	    "--role",	 "ingress", "--pg",	     "host=127.0.0.1 port=1 connect_timeout=1",
	    NULL};
	struct sluiced_proc p = {0};

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	ASSERT_EQ(http_once(p.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", resp, sizeof(resp)),
		  200, "ready while the queue accepts");
	ASSERT_HAS_STR(resp, "\"database\":{\"ok\":false,\"state\":\"unreachable\"}", "db check");
	ASSERT_HAS_STR(resp, "\"queue\":{\"ok\":true", "queue still fine");
	/* degrade, don't fail: events are still accepted while the queue has room */
	ASSERT_EQ(post(p.port, "test", EVENT("db-down")), 202, "accepting without the database");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

void test_ingress_api(void)
{
	if (test__start_subtest("accepted"))
		subtest_accepted();
	if (test__start_subtest("refusals"))
		subtest_refusals();
	if (test__start_subtest("rate_limit"))
		subtest_rate_limit();
	if (test__start_subtest("dry_run"))
		subtest_dry_run();
	if (test__start_subtest("queue_refusals"))
		subtest_queue_refusals();
	if (test__start_subtest("readyz_db"))
		subtest_readyz_db();
}
