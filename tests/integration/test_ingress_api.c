// SPDX-License-Identifier: MIT
/* test_ingress_api.c -- the real sluiced over loopback: 202 end to end through the journal,
 * every refusal (400/401/404/405/413/415/429/431/501/503/505), Retry-After, demotion,
 * chunked bodies, absolute-form targets, Host, error answers to HEAD, and the admin
 * listener (/metrics and /readyz off the public port) */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "ingress/envelope.h"
#include "ingress_harness.h"
#include "test_progs.h"

#define TENANTS                                                                                    \
	"[acme]\nkey = " HARNESS_KEY_A_HEX "\nreq_rate = 1000\nreq_burst = 1000\n"                 \
	"class = critical\ncrit_rate = 0.1\ncrit_burst = 1\n"                                      \
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
	ASSERT_EQ(post(p.port, "test",
		       "{\"type\":\"lead.created\",\"idempotency_key\":\"lead-1\",\"priority\":"
		       "\"normal\",\"payload\":{\"a\":1}}"),
		  202, "202 (a critical tenant's event may lower its priority)");
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
	ASSERT_EQ(http_admin(&p, "/readyz", resp, sizeof(resp)), 200, "ready with journal");
	ASSERT_HAS_STR(resp, "\"queue\":{\"ok\":true", "queue check");
	ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "metrics");
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
	char big[2048], val[64], key[ENVELOPE_KEY_MAX + 2];

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
	/* one key limit everywhere: what is accepted here fits the database column */
	memset(key, 'k', sizeof(key));
	key[ENVELOPE_KEY_MAX + 1] = 0;
	snprintf(big, sizeof(big), "{\"type\":\"a\",\"idempotency_key\":\"%s\",\"payload\":{}}",
		 key);
	ASSERT_EQ(post(p.port, "test", big), 400, "400 key one byte over the limit");
	ASSERT_HAS_STR(resp, "1-200 bytes", "the limit named");
	key[ENVELOPE_KEY_MAX] = 0;
	snprintf(big, sizeof(big), "{\"type\":\"a\",\"idempotency_key\":\"%s\",\"payload\":{}}",
		 key);
	ASSERT_EQ(post(p.port, "test", big), 202, "202 at the limit");
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
	http_admin(&p, "/metrics", resp, sizeof(resp));
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
	ASSERT_EQ(http_admin(&p, "/readyz", resp, sizeof(resp)), 503, "not ready when full");
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
	ASSERT_EQ(http_admin(&p, "/readyz", resp, sizeof(resp)), 200, "ready while the queue accepts");
	ASSERT_HAS_STR(resp, "\"database\":{\"ok\":false,\"state\":\"unreachable\"}", "db check");
	ASSERT_HAS_STR(resp, "\"queue\":{\"ok\":true", "queue still fine");
	/* degrade, don't fail: events are still accepted while the queue has room */
	ASSERT_EQ(post(p.port, "test", EVENT("db-down")), 202, "accepting without the database");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* One chunk of data (with extension ext, "" for none) into out; its length. */
static size_t chunk(char *out, size_t cap, const char *ext, const char *data)
{
	return (size_t)snprintf(out, cap, "%zx%s\r\n%s\r\n", strlen(data), ext, data);
}

/* A chunked POST /v1/events head for key. */
static int chunked_head(char *out, size_t cap, const char *key)
{
	return snprintf(out, cap,
			"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
			key);
}

static void subtest_chunked(void)
{
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", "--max-body",
			      "512",	   NULL};
	static struct http_client c;
	struct sluiced_proc p = {0};
	char req[4096], big[1024];
	size_t n, len;
	char *j = NULL;

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	/* the envelope in three chunks, one with an extension, and a trailer */
	n = (size_t)chunked_head(req, sizeof(req), "test");
	n += chunk(req + n, sizeof(req) - n, ";sig=\"a;b\"", "{\"type\":\"chunk.x\",");
	n += chunk(req + n, sizeof(req) - n, "", "\"idempotency_key\":\"ck-1\",\"payloa");
	n += chunk(req + n, sizeof(req) - n, "", "d\":{}}\n");
	snprintf(req + n, sizeof(req) - n, "0\r\nX-Checksum: 1\r\n\r\n");
	ASSERT_EQ(http_once(p.port, req, resp, sizeof(resp)), 202, "chunked 202");
	j = journal_bytes(p.journal, &len);
	ASSERT_TRUE(
	    contains(j, len, "{\"type\":\"chunk.x\",\"idempotency_key\":\"ck-1\",\"payload\":{}}"),
	    "decoded envelope in the journal");
	/* byte by byte on a keep-alive connection, then a pipelined GET right behind it */
	if (!ASSERT_OK(http_open(&c, p.port), "connect"))
		goto out;
	n = (size_t)chunked_head(req, sizeof(req), "test");
	n += chunk(req + n, sizeof(req) - n, "", EVENT("ck-2"));
	n += (size_t)snprintf(req + n, sizeof(req) - n,
			      "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
	for (size_t i = 0; i < n; i++)
		if (!ASSERT_OK(http_send(&c, req + i, 1), "byte"))
			goto out;
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "byte-by-byte answer");
	ASSERT_EQ(http_status(resp), 202, "byte-by-byte chunked 202");
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "pipelined answer");
	ASSERT_EQ(http_status(resp), 200, "the request after a chunked body");
	/* over --max-body: 413 at the chunk-size line, and the connection closes */
	n = (size_t)chunked_head(req, sizeof(req), "test");
	memset(big, 'x', 300);
	snprintf(req + n, sizeof(req) - n, "12c\r\n%.300s\r\n12c\r\n", big);
	http_send(&c, req, strlen(req));
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "413 answer");
	ASSERT_EQ(http_status(resp), 413, "chunks over --max-body");
	ASSERT_HAS_STR(resp, "Connection: close", "413 closes");
	ASSERT_TRUE(http_closed(&c, 3000), "closed after 413");
	/* framing errors: 400 and close */
	n = (size_t)chunked_head(req, sizeof(req), "test");
	snprintf(req + n, sizeof(req) - n, "2\nab\r\n0\r\n\r\n");
	expect(p.port, req, 400, "line ends in LF without CR in chunked body", "bare LF");
	ASSERT_HAS_STR(resp, "Connection: close", "bare LF closes");
	snprintf(req + n, sizeof(req) - n, "10000000000000000\r\n");
	expect(p.port, req, 400, "chunk size longer than 16 hex digits", "overflow");
	snprintf(req + n, sizeof(req) - n, "2;=x\r\nab\r\n0\r\n\r\n");
	expect(p.port, req, 400, "malformed chunk extension", "bad extension");
	snprintf(req + n, sizeof(req) - n, "0\r\n bad: trailer\r\n\r\n");
	expect(p.port, req, 400, "malformed trailer field", "bad trailer");
	/* transfer codings: the final one must be chunked (400, close); others before it 501 */
	expect(p.port, "POST /v1/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxx",
	       400, "must end in chunked", "TE gzip");
	ASSERT_HAS_STR(resp, "Connection: close", "TE gzip closes");
	expect(p.port,
	       "POST /v1/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	       "0\r\n\r\n",
	       501, "not_implemented", "TE gzip, chunked");
	ASSERT_HAS_STR(resp, "Connection: close", "501 closes");
	expect(p.port,
	       "POST /v1/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
	       "Content-Length: 5\r\n\r\n0\r\n\r\n",
	       400, "Content-Length and Transfer-Encoding", "TE + CL");
	/* refused at the head (no key): the unread chunked body must not be parsed as a request */
	expect(p.port,
	       "POST /v1/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	       "5\r\nhello\r\n0\r\n\r\n",
	       401, "missing_api_key", "401 on a chunked request");
	ASSERT_HAS_STR(resp, "Connection: close", "401 with an unread chunked body closes");
out:
	http_close(&c);
	free(j);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_targets_and_host(void)
{
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", NULL};
	static struct http_client c;
	struct sluiced_proc p = {0};
	char req[1024], val[32];

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	/* absolute-form (RFC 9112 §3.2.2): routed by its path */
	expect(p.port, "GET http://t/healthz HTTP/1.1\r\nHost: t\r\n\r\n", 200, "\"ok\"",
	       "absolute-form GET");
	snprintf(req, sizeof(req),
		 "POST http://sluice.example:8080/v1/events HTTP/1.1\r\nHost: sluice.example\r\n"
		 "X-Api-Key: test\r\nContent-Type: application/json\r\nContent-Length: %zu"
		 "\r\n\r\n%s",
		 strlen(EVENT("abs-1")), EVENT("abs-1"));
	expect(p.port, req, 202, "\"class\"", "absolute-form POST");
	expect(p.port, "GET ftp://t/healthz HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request",
	       "other scheme");
	/* Host: required in 1.1, once, and well formed (§3.2) */
	expect(p.port, "GET /healthz HTTP/1.1\r\n\r\n", 400, "without Host", "no Host");
	expect(p.port, "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
	       "more than one Host", "two Hosts");
	expect(p.port, "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "Host is not",
	       "bad Host");
	/* visible ASCII only in the target (this was answered 200) */
	expect(p.port, "GET /healthz?q=\xce\xb4 HTTP/1.1\r\nHost: t\r\n\r\n", 400, "visible ASCII",
	       "UTF-8 in the target");
	ASSERT_HAS_STR(resp, "Connection: close", "bad target closes");
	/* an error answer to HEAD has no body (RFC 9110 §9.3.2): the next response on the same
	 * connection starts right after its head */
	if (!ASSERT_OK(http_open(&c, p.port), "connect"))
		goto out;
	snprintf(req, sizeof(req),
		 "HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\nHEAD /v1/events HTTP/1.1\r\nHost: t"
		 "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
	http_send(&c, req, strlen(req));
	ASSERT_GT(http_read_head(&c, resp, sizeof(resp), 3000), 0, "404 head");
	ASSERT_EQ(http_status(resp), 404, "HEAD of an unknown path");
	if (ASSERT_TRUE(http_header(resp, "Content-Length", val, sizeof(val)), "length"))
		ASSERT_GT(atoi(val), 0, "Content-Length of the body a GET would get");
	ASSERT_GT(http_read_head(&c, resp, sizeof(resp), 3000), 0, "405 head");
	ASSERT_EQ(http_status(resp), 405, "HEAD of a POST route");
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 3000), 0, "GET after the HEADs");
	ASSERT_EQ(http_status(resp), 200, "no error body in front of the next response");
out:
	http_close(&c);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_admin_listener(void)
{
	const char *args[] = {"--threads", "2", NULL};
	const char *off[] = {"--threads", "1", "--admin-listen", "off", NULL};
	struct sluiced_proc p = {0}, q = {0};
	char taken[32];
	const char *clash[] = {"--threads", "1", "--admin-listen", taken, NULL};

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	if (!ASSERT_GT(p.admin_port, 0, "admin port logged") ||
	    !ASSERT_NEQ(p.admin_port, p.port, "its own port"))
		goto out;
	/* the public port: the API and liveness only; tenant names and traffic are not shown */
	expect(p.port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 404, "not_found",
	       "public /metrics");
	ASSERT_FALSE(strstr(resp, "sluice_"), "no metrics on the public port");
	expect(p.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", 404, "not_found",
	       "public /readyz");
	expect(p.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 200, "\"ok\"",
	       "public /healthz");
	ASSERT_EQ(post(p.port, "test", EVENT("adm-1")), 503, "public API (no journal: 503)");
	/* the admin port: metrics, readiness, liveness; not the API */
	ASSERT_EQ(http_admin(&p, "/metrics", resp, sizeof(resp)), 200, "admin /metrics");
	ASSERT_HAS_STR(resp,
		       "sluice_http_requests_total{route=\"other\",status=\"404\",tenant=\"\"} 2",
		       "the public 404s counted");
	ASSERT_EQ(http_admin(&p, "/readyz", resp, sizeof(resp)), 503, "admin /readyz (no journal)");
	ASSERT_HAS_STR(resp, "\"ready\":false", "readiness document");
	ASSERT_EQ(http_admin(&p, "/healthz", resp, sizeof(resp)), 200, "admin /healthz");
	ASSERT_EQ(http_admin(&p, "/v1/events", resp, sizeof(resp)), 404,
		  "no API on the admin port");
	/* a second daemon on the same admin address fails to start, naming the flag */
	snprintf(taken, sizeof(taken), "127.0.0.1:%d", p.admin_port);
	ASSERT_ERR(sluiced_start(&q, TENANTS, clash), "second daemon on the admin port");
	if (q.pid)
		sluiced_stop(&q, 2000);
	/* off: no admin listener at all */
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
	if (!ASSERT_OK(sluiced_start(&p, TENANTS, off), "start with --admin-listen off"))
		return;
	ASSERT_EQ(p.admin_port, 0, "no admin listener");
	expect(p.port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 404, "not_found",
	       "still not on the public port");
out:
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
	if (test__start_subtest("chunked"))
		subtest_chunked();
	if (test__start_subtest("targets_and_host"))
		subtest_targets_and_host();
	if (test__start_subtest("admin_listener"))
		subtest_admin_listener();
}
