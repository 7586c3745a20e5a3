// SPDX-License-Identifier: MIT
/* test_dedupe.c -- the Redis fast path for duplicates at intake, and life without Redis
 *
 * A repeated (tenant, idempotency key) is answered 200 with the original event id without
 * touching the queue; a key is remembered only after its event was durable; with Redis
 * gone (killed mid-run) intake keeps answering 202 and PostgreSQL still stores one row
 * per key.
 */
#include <stdio.h>
#include <unistd.h>

#include "ingress_harness.h"
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

void test_dedupe(void)
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
