// SPDX-License-Identifier: MIT
/* test_ingress_class.c -- a tenant's class is the ceiling of its events' classes
 *
 * issue 12: a tenant configured `class = low` got `class: critical` by asking for it in the
 * envelope. An event may lower its priority, never raise it above its tenant's class; a
 * tenant whose class is critical spends its critical credits as before (demoted to normal
 * beyond them). The route's class is held to the same ceiling (test_e2e, which needs the
 * worker that reads the routes).
 */
#include <stdio.h>

#include "ingress_harness.h"
#include "lib/sha256.h"
#include "test_progs.h"

static char resp[1 << 14];

/* POST one event of key's tenant asking for priority (NULL: none); the HTTP status. */
static int post(int port, const char *key, const char *ikey, const char *priority)
{
	char body[256], prio[48] = "", req[1024];

	if (priority)
		snprintf(prio, sizeof(prio), "\"priority\":\"%s\",", priority);
	snprintf(body, sizeof(body),
		 "{\"type\":\"lead.created\",\"idempotency_key\":\"%s\",%s\"payload\":{}}", ikey,
		 prio);
	http_event_request(req, sizeof(req), key, body);
	return http_once(port, req, resp, sizeof(resp));
}

struct ask {
	const char *key, *ikey, *priority, *answer, *name;
};

void test_ingress_class(void)
{
	static const struct ask asks[] = {
	    {"test", "l1", "critical", "\"class\":\"low\",\"demoted\":false", "low asks critical"},
	    {"test", "l2", "normal", "\"class\":\"low\"", "low asks normal"},
	    {"test", "l3", "low", "\"class\":\"low\"", "low asks low"},
	    {"test", "l4", NULL, "\"class\":\"low\"", "low asks nothing"},
	    {"hello", "n1", "critical", "\"class\":\"normal\",\"demoted\":false",
	     "normal asks critical"},
	    {"hello", "n2", "low", "\"class\":\"low\"", "normal may lower to low"},
	    {"hello", "n3", NULL, "\"class\":\"normal\"", "normal by default"},
	    {"crit-key", "c1", "critical", "\"class\":\"critical\",\"demoted\":false",
	     "critical tenant: critical with a credit"},
	    {"crit-key", "c2", "critical", "\"class\":\"normal\",\"demoted\":true",
	     "beyond its critical credits: demoted"},
	    {"crit-key", "c3", "low", "\"class\":\"low\"", "critical tenant may lower to low"},
	};
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", NULL};
	struct sluiced_proc p = {0};
	char tenants[1024], hex[SHA256_HEX_LEN + 1];
	uint8_t d[SHA256_LEN];

	sha256("crit-key", 8, d);
	sha256_hex(d, hex);
	snprintf(tenants, sizeof(tenants),
		 "[lowco]\nkey = " HARNESS_KEY_A_HEX "\nclass = low\n"
		 "[normco]\nkey = " HARNESS_KEY_B_HEX "\n"
		 "[critco]\nkey = %s\nclass = critical\ncrit_rate = 0.01\ncrit_burst = 1\n",
		 hex);
	if (!ASSERT_OK(sluiced_start(&p, tenants, args), "sluiced"))
		return;
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		ASSERT_EQ(post(p.port, asks[i].key, asks[i].ikey, asks[i].priority), 202,
			  asks[i].name);
		ASSERT_HAS_STR(resp, asks[i].answer, asks[i].name);
	}
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}
