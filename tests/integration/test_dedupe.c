// SPDX-License-Identifier: MIT
/* test_dedupe.c -- the Redis fast path for duplicates at intake, and life without Redis
 *
 * A repeated (tenant, idempotency key) is answered 200 with the original event id without
 * touching the queue; a key is remembered only after its event was durable; with Redis
 * gone (killed mid-run) intake keeps answering 202 and PostgreSQL still stores one row
 * per key. Keys of different tenants never meet, however their names and keys split, and
 * no upstream's fallback cache (an upstream named "dedupe") can answer for them.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingress/dedupe.h"
#include "ingress_harness.h"
#include "mockharness.h"
#include "pgharness.h"
#include "redisharness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"

static char resp[1 << 14];

static int post(int port, const char *ikey)
{
	char body[256], req[1024];

	snprintf(body, sizeof(body),
		 "{\"type\":\"lead.created\",\"idempotency_key\":\"%s\",\"payload\":{}}", ikey);
	http_event_request(req, sizeof(req), "test", body);
	return http_once(port, req, resp, sizeof(resp));
}

static bool json_id(const char *r, char *id, size_t cap)
{
	const char *p = strstr(r, "\"id\":\"");

	if (!p)
		return false;
	snprintf(id, cap, "%.16s", p + 6);
	return true;
}

static void subtest_daemon(void)
{
	struct pgh_server pg = {0};
	struct redis_harness rh = {0};
	struct sluiced_proc p = {0};
	char redis[64], id1[32] = "", id2[32] = "";

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&pg, test__tmpdir(), NULL), "postgres") ||
	    !ASSERT_OK(redis_harness_start(&rh), "redis"))
		goto out;
	snprintf(redis, sizeof(redis), "127.0.0.1:%u", rh.port);
	{
		const char *args[] = {"--journal-dir", "@journal", "--pg", pg.conninfo,
				      "--redis",       redis,	   NULL};

		if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "sluiced"))
			goto out;
	}
	ASSERT_EQ(post(p.port, "k1"), 202, "first copy accepted");
	ASSERT_TRUE(json_id(resp, id1, sizeof(id1)), "id in the answer");
	usleep(200000); /* remembered after durable, on the dedupe thread */
	ASSERT_EQ(post(p.port, "k1"), 200, "second copy answered from Redis");
	ASSERT_HAS_STR(resp, "\"duplicate\":true", "marked duplicate");
	ASSERT_TRUE(json_id(resp, id2, sizeof(id2)), "id in the duplicate answer");
	ASSERT_STREQ(id2, id1, "the original event's id");

	/* Redis killed mid-run: no errors to clients, Postgres dedupes */
	redis_harness_stop(&rh);
	ASSERT_EQ(post(p.port, "k2"), 202, "accepted with Redis gone");
	ASSERT_EQ(post(p.port, "k2"), 202, "a duplicate is accepted too (Redis cannot tell)");
	ASSERT_TRUE(pgh_wait_ll(&pg, "SELECT count(*) FROM events", 2, 10),
		    "one row per key in PostgreSQL");
	usleep(300000);
	ASSERT_EQ(pgh_query_ll(&pg, "SELECT count(*) FROM events"), 2, "and no more");
	ASSERT_EQ(sluiced_stop(&p, 15000), 0, "clean exit");
out:
	if (p.pid > 0)
		sluiced_stop(&p, 5000);
	redis_harness_stop(&rh);
	pgh_server_destroy(&pg);
}

/* The queue behind dedupe: every event durable at once, with ids 1, 2, ... */
struct fake_q {
	uint64_t ids;
};

static int fake_append(void *qv, const struct ingress_event *ev, ingress_durable_fn *done,
		       void *arg)
{
	struct fake_q *q = qv;

	done(arg, 0, __atomic_add_fetch(&q->ids, 1, __ATOMIC_RELAXED));
	return 0;
}

struct answer {
	int done, err;
	uint64_t id;
};

static void on_answer(void *arg, int err, uint64_t id)
{
	struct answer *a = arg;

	a->err = err;
	a->id = id;
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
}

/* One event through dedupe; false when it was not answered within 5 s. */
static bool send(struct dedupe *d, const char *tenant, const char *key, struct answer *a)
{
	struct ingress_event ev = {
	    .tenant = tenant, .type = "t", .idempotency_key = key, .body = "{}", .body_len = 2};

	*a = (struct answer){0};
	if (dedupe_append(d, &ev, on_answer, a))
		return false;
	for (int i = 0; i < 500 && !__atomic_load_n(&a->done, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	return a->done;
}

/* issue 12: tenant "acme" key "eu:123" was remembered as dedupe:acme:eu:123, which is also
 * tenant "acme:eu" key "123": the second got 200 with acme's id and was never stored. The
 * tenants file refuses such names now; the keys stay apart even if one got through. */
static void subtest_split(void)
{
	struct redis_harness rh = {0};
	struct redis_config rc;
	struct redis *r = NULL;
	struct dedupe *d = NULL;
	struct fake_q q = {0};
	struct dedupe_stats st;
	struct answer a;
	int err = redis_harness_start(&rh);

	if (err == -ENOENT) {
		test__skip("redis-server not installed (tools/setup installs it)");
		return;
	}
	if (!ASSERT_OK(err, "redis"))
		return;
	redis_config_default(&rc);
	rc.port = rh.port;
	rc.op_timeout_ms = 250;
	r = redis_new(&rc);
	d = dedupe_new(r, 2, 60000, fake_append, &q);
	if (!ASSERT_OK_PTR(d, "dedupe"))
		goto out;
	ASSERT_TRUE(send(d, "acme", "eu:123", &a) && a.err == 0, "acme eu:123 durable");
	ASSERT_EQ(a.id, 1, "id 1");
	for (int i = 0; i < 500; i++, usleep(10000)) {
		dedupe_get_stats(d, &st);
		if (st.remembered)
			break;
	}
	ASSERT_EQ(st.remembered, 1, "remembered");
	ASSERT_TRUE(send(d, "acme", "eu:123", &a), "answered");
	ASSERT_EQ(a.err, -EEXIST, "the same tenant and key: a duplicate");
	ASSERT_EQ(a.id, 1, "with its id");
	ASSERT_TRUE(send(d, "acme:eu", "123", &a), "answered");
	ASSERT_EQ(a.err, 0, "acme:eu 123 is another event: durable");
	ASSERT_EQ(a.id, 2, "with its own id, not acme's");
	ASSERT_TRUE(send(d, "acme", "eu:1234", &a), "answered");
	ASSERT_EQ(a.err, 0, "a longer key is another key");
out:
	dedupe_free(d);
	redis_free(r);
	redis_harness_stop(&rh);
}

/* An upstream named "dedupe" with its fallback cache keyed by email: the lead it scores has
 * email "acme:k1". Before, its cache entry was cache:dedupe:acme:k1, the very key of
 * tenant acme's idempotency key k1, and acme's k1 was then answered 200 with the id 0 and
 * never stored. */
static void subtest_upstream_named_dedupe(void)
{
	struct pgh_server pg = {0};
	struct redis_harness rh = {0};
	struct mock_upstream mock = {0};
	struct sluiced_proc p = {0};
	char redis[64], routes[600], text[1024], body[256], req[1024], base[512];
	FILE *f;

	if (!test__require_root())
		return;
	snprintf(base, sizeof(base), "%s/named", test__tmpdir());
	mkdir(base, 0755);
	if (!ASSERT_OK(pgh_server_start(&pg, base, NULL), "postgres") ||
	    !ASSERT_OK(redis_harness_start(&rh), "redis") ||
	    !ASSERT_OK(mock_upstream_start(&mock, NULL), "mock upstream"))
		goto out;
	snprintf(redis, sizeof(redis), "127.0.0.1:%u", rh.port);
	snprintf(routes, sizeof(routes), "%s/routes.ini", test__tmpdir());
	snprintf(text, sizeof(text),
		 "[pool ai]\nthreads = 2\n[upstream dedupe]\nurl = %s\nscore_field = score\n"
		 "fallback.key_field = email\n"
		 "[route lead.created]\nstep = store pool=db\nstep = call dedupe pool=ai\n",
		 mock.url);
	f = fopen(routes, "w");
	fputs(text, f);
	fclose(f);
	{
		const char *args[] = {"--journal-dir", "@journal", "--pg", pg.conninfo, "--redis",
				      redis,	       "--routes", routes, NULL};

		if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "sluiced"))
			goto out;
	}
	snprintf(body, sizeof(body),
		 "{\"type\":\"lead.created\",\"idempotency_key\":\"lead-9\","
		 "\"payload\":{\"email\":\"acme:k1\"}}");
	http_event_request(req, sizeof(req), "test", body);
	ASSERT_EQ(http_once(p.port, req, resp, sizeof(resp)), 202, "the lead");
	ASSERT_TRUE(pgh_wait_ll(&pg,
				"SELECT count(*) FROM step_results WHERE step = 'call:dedupe' "
				"AND status = 'done'",
				1, 30),
		    "scored by the upstream (its answer cached)");
	usleep(200000);
	ASSERT_EQ(post(p.port, "k1"), 202, "acme's k1 is a new event, not the cache's entry");
	ASSERT_HAS_STR(resp, "\"class\"", "a 202 body");
	ASSERT_TRUE(
	    pgh_wait_ll(&pg, "SELECT count(*) FROM events WHERE idempotency_key = 'k1'", 1, 30),
	    "and it is stored");
	ASSERT_EQ(sluiced_stop(&p, 15000), 0, "clean exit");
out:
	if (p.pid > 0)
		sluiced_stop(&p, 5000);
	mock_upstream_stop(&mock);
	redis_harness_stop(&rh);
	pgh_server_destroy(&pg);
}

void test_dedupe(void)
{
	if (test__start_subtest("daemon"))
		subtest_daemon();
	if (test__start_subtest("split"))
		subtest_split();
	if (test__start_subtest("upstream_named_dedupe"))
		subtest_upstream_named_dedupe();
}
