// SPDX-License-Identifier: MIT
/* test_upstream_body.c -- request template rendering (escaping) and reading the answer */
#include <errno.h>
#include <stdlib.h>

#include "test_progs.h"
#include "sink/upstream/upstream.h"
#include "sink/upstream/upstream_body.h"

static void subtest_render(void)
{
	struct upstream_request req = {
	    .payload = "{\"email\":\"jo@acme.example\"}",
	    .idempotency_key = "k\"1\\\n",
	    .tenant = "acme",
	};
	size_t len = 0;
	char *s;

	s = upstream_template_render("{\"lead\":{{payload}},\"key\":\"{{idempotency_key}}\","
				     "\"t\":\"{{tenant}}\",\"ty\":\"{{type}}\"}",
				     &req, &len);
	if (!ASSERT_OK_PTR(s, "render"))
		return;
	ASSERT_STREQ(s,
		     "{\"lead\":{\"email\":\"jo@acme.example\"},\"key\":\"k\\\"1\\\\\\u000a\","
		     "\"t\":\"acme\",\"ty\":\"\"}",
		     "escaped, missing type empty");
	ASSERT_EQ(len, strlen(s), "length");
	free(s);
	req.payload = NULL;
	s = upstream_template_render("{{payload}}", &req, &len);
	ASSERT_STREQ(s, "null", "no payload renders null");
	free(s);
	s = upstream_template_render("{ {payload}} {{", &req, &len);
	ASSERT_STREQ(s, "{ {payload}} {{", "no placeholder, no change");
	free(s);
}

static void subtest_check(void)
{
	char err[200] = "";

	ASSERT_OK(upstream_template_check("{\"a\":{{payload}}}", err, sizeof(err)), "ok");
	ASSERT_EQ(upstream_template_check("{{payload}} {{tenant_id}}", err, sizeof(err)), -EINVAL,
		  "unknown");
	ASSERT_HAS_STR(err, "{{tenant_id}}", "names it");
}

static void subtest_answer(void)
{
	const char *a = "{\"result\":{\"score\":0.73,\"label\":\"hot\"}}";
	double v = -1;

	ASSERT_OK(upstream_answer_number(a, strlen(a), "result.score", &v), "nested");
	ASSERT_TRUE(v == 0.73, "value");
	ASSERT_EQ(upstream_answer_number(a, strlen(a), "result.label", &v), -EDOM, "string");
	ASSERT_EQ(upstream_answer_number(a, strlen(a), "score", &v), -ENOENT, "missing");
	ASSERT_EQ(upstream_answer_number("<html>", 6, "score", &v), -EINVAL, "not json");
}

void test_upstream_body(void)
{
	if (test__start_subtest("render"))
		subtest_render();
	if (test__start_subtest("check"))
		subtest_check();
	if (test__start_subtest("answer"))
		subtest_answer();
}
