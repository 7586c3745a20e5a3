// SPDX-License-Identifier: MIT
/* test_status.c -- status sets: parse "408,425,429,5xx", classes, errors, format back */
#include <errno.h>

#include "sink/upstream/status.h"
#include "sink/upstream/upstream.h"
#include "test_progs.h"

void test_status(void)
{
	struct status_set s;
	struct upstream_config cfg;
	char why[160] = "", out[80];

	ASSERT_OK(status_set_parse(&s, "408, 425,429,5xx", why, sizeof(why)), "parse");
	ASSERT_TRUE(status_set_has(&s, 408) && status_set_has(&s, 425), "codes");
	ASSERT_TRUE(status_set_has(&s, 500) && status_set_has(&s, 599), "class ends");
	ASSERT_FALSE(status_set_has(&s, 404) || status_set_has(&s, 499), "others not");
	ASSERT_FALSE(status_set_has(&s, 600) || status_set_has(&s, 99), "out of range");
	status_set_format(&s, out, sizeof(out));
	ASSERT_STREQ(out, "408,425,429,5xx", "formatted back");
	ASSERT_EQ(status_set_parse(&s, "404,6xx", why, sizeof(why)), -EINVAL, "6xx");
	ASSERT_HAS_STR(why, "\"6xx\"", "names the item");
	ASSERT_TRUE(status_set_has(&s, 408) && !status_set_has(&s, 404), "unchanged on failure");
	ASSERT_EQ(status_set_parse(&s, " , ", why, sizeof(why)), -EINVAL, "empty");
	ASSERT_OK(status_set_parse(&s, "none", why, sizeof(why)), "none");
	ASSERT_TRUE(status_set_empty(&s), "empty set");

	upstream_config_default(&cfg, "n8n", "http://127.0.0.1:5678");
	ASSERT_FALSE(upstream_status_retryable(&cfg, 404, false), "404: request's fault");
	ASSERT_TRUE(upstream_status_retryable(&cfg, 404, true), "404 while recovering");
	ASSERT_TRUE(upstream_status_retryable(&cfg, 503, false), "503");
	ASSERT_FALSE(upstream_status_breaker_failure(&cfg, 422, false), "422: breaker success");
	ASSERT_TRUE(upstream_status_breaker_failure(&cfg, 502, false), "502: failure");
	ASSERT_OK(upstream_config_set(&cfg, "retryable", "404,5xx", why, sizeof(why)), "set");
	ASSERT_TRUE(upstream_status_breaker_failure(&cfg, 404, false), "follows retryable");
	ASSERT_OK(upstream_config_set(&cfg, "breaker_failures", "none", why, sizeof(why)), "bf");
	ASSERT_FALSE(upstream_status_breaker_failure(&cfg, 502, false), "explicit set wins");
}
