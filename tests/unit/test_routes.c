// SPDX-License-Identifier: MIT
/* test_routes.c -- routes file parsing, matching and file:line errors */
#include <stdio.h>

#include "sink/upstream/upstream.h"
#include "work/routes.h"
#include "test_progs.h"

static const char *good = "; lead pipeline\n"
			  "[pool db]\n"
			  "threads = 4\n"
			  "inflight = 64\n"
			  "[pool ai]\n"
			  "threads = 2\n"
			  "[route lead.created]\n"
			  "class = critical\n"
			  "step = store pool=db\n"
			  "step = call ai pool=ai optional\n"
			  "step = call crm pool=ai\n"
			  "[route analytics.*]\n"
			  "class = low\n"
			  "sheddable = yes\n"
			  "step = store\n"
			  "[route analytics.page.*]\n"
			  "class = normal\n"
			  "step = store\n"
			  "[upstream ai]\n"
			  "url = http://127.0.0.1:9/score\n"
			  "timeout = 2s\n"
			  "[upstream crm]\n"
			  "url = http://127.0.0.1:9/crm\n";

static void subtest_parse_and_match(void)
{
	char err[256] = "";
	struct routes *r = routes_parse(good, "routes.ini", err, sizeof(err));
	const struct route *rt;

	if (!ASSERT_OK_PTR(r, err))
		return;
	ASSERT_EQ(r->nroutes, 3, "routes");
	ASSERT_EQ(r->npools, 2, "pools");
	ASSERT_EQ(r->pools[routes_pool_index(r, "db")].threads, 4, "db threads");
	ASSERT_EQ(r->pools[routes_pool_index(r, "db")].inflight, 64, "db inflight");
	ASSERT_EQ(r->pools[routes_pool_index(r, "ai")].inflight, 32, "ai inflight default");
	rt = routes_match(r, "lead.created");
	ASSERT_STREQ(rt->type, "lead.created", "exact");
	ASSERT_EQ(rt->class, 0, "critical");
	ASSERT_EQ(rt->nsteps, 3, "3 steps");
	ASSERT_EQ(rt->steps[0].kind, STEP_STORE, "store first");
	ASSERT_EQ(rt->steps[1].kind, STEP_CALL, "then call");
	ASSERT_STREQ(rt->steps[1].upstream, "ai", "upstream");
	ASSERT_TRUE(rt->steps[1].optional, "optional");
	ASSERT_FALSE(rt->steps[2].optional, "essential by default");
	ASSERT_STREQ(r->pools[rt->steps[2].pool_idx].name, "ai", "pool index");
	ASSERT_STREQ(routes_match(r, "analytics.click")->type, "analytics.*", "prefix");
	ASSERT_STREQ(routes_match(r, "analytics.page.view")->type, "analytics.page.*",
		     "longest prefix wins");
	ASSERT_TRUE(routes_match(r, "analytics.click")->sheddable, "sheddable");
	rt = routes_match(r, "unknown.type");
	ASSERT_STREQ(rt->type, "default", "built-in default");
	ASSERT_EQ(rt->steps[0].kind, STEP_STORE, "default stores");
	ASSERT_EQ(r->nupstreams, 2, "upstreams");
	ASSERT_EQ(r->nupstream_kv, 3, "upstream settings");
	ASSERT_STREQ(r->upstream_kv[1].key, "timeout", "kv key");
	ASSERT_EQ(r->upstream_kv[1].line, 21, "kv line");
	routes_free(r);
}

static void expect_error(const char *text, const char *want)
{
	char err[256] = "";
	struct routes *r = routes_parse(text, "r.ini", err, sizeof(err));

	ASSERT_TRUE(r == NULL, want);
	ASSERT_HAS_STR(err, want, "message");
	routes_free(r);
}

static void subtest_errors(void)
{
	expect_error("[route a]\nclass = urgent\nstep = store\n",
		     "r.ini:2: class = urgent: want critical, normal or low");
	expect_error("[route a]\nstep = call nowhere\n",
		     "r.ini:2: step = call nowhere: no [upstream nowhere] section");
	expect_error("[route a]\nstep = store pool=gpu\n",
		     "r.ini:2: step = store pool=gpu: no [pool gpu] section");
	expect_error("[route a]\nstep = fly\n",
		     "r.ini:2: step = fly: want `store` or `call UPSTREAM`");
	expect_error("[route a]\nclass = low\n", "r.ini:1: [route a]: no steps");
	expect_error("[router a]\nx = 1\n", "r.ini:2: [router a]: unknown section");
	expect_error("[pool db]\nthreads = 0\n", "r.ini:2: threads = 0: want a whole number");
	expect_error("[route a]\nstep = store\n[route a]\nstep = store\n",
		     "r.ini:3: [route a]: defined twice (first at line 1)");
	expect_error("[route a]\nstep = store\nthis is not ini\n", "r.ini:3: syntax error");
	expect_error("[route a]\nstep = store bogus\n", "unknown word `bogus`");
}

/* Issue 18: one upstream, many webhooks: a call step names its path, method, template. */
static void subtest_step_path(void)
{
	static const char *text =
	    "[upstream n8n]\nurl = http://127.0.0.1:5678/\n"
	    "template.lead = {\"lead\":{{payload}},\"id\":\"{{idempotency_key}}\"}\n"
	    "[route lead.created]\nstep = call n8n path=/webhook/lead template=lead\n"
	    "[route deal.won]\nstep = call n8n path=/webhook/deal?x=1 method=PUT\n";
	char err[256] = "", url[256];
	struct routes *r = routes_parse(text, "r.ini", err, sizeof(err));
	const struct route *rt;

	if (!ASSERT_OK_PTR(r, err))
		return;
	rt = routes_match(r, "lead.created");
	ASSERT_STREQ(rt->steps[0].path, "/webhook/lead", "path");
	ASSERT_STREQ(rt->steps[0].method, "", "method: the upstream's");
	ASSERT_HAS_STR(rt->steps[0].template, "\"lead\":{{payload}}", "named template");
	rt = routes_match(r, "deal.won");
	ASSERT_STREQ(rt->steps[0].path, "/webhook/deal?x=1", "path with query");
	ASSERT_STREQ(rt->steps[0].method, "PUT", "method");
	ASSERT_STREQ(rt->steps[0].template, "", "template: the upstream's");
	routes_free(r);
	upstream_url_with_path("http://h:5678/base?q", "/webhook/lead", url, sizeof(url));
	ASSERT_STREQ(url, "http://h:5678/webhook/lead", "path replaces path and query");
	upstream_url_with_path("https://h", "/w", url, sizeof(url));
	ASSERT_STREQ(url, "https://h/w", "url without a path");
	upstream_url_with_path("http://h:1/x", "", url, sizeof(url));
	ASSERT_STREQ(url, "http://h:1/x", "no path: the url");
	expect_error("[upstream n]\nurl = http://h/\n[route a]\nstep = call n path=webhook\n",
		     "r.ini:4: step = call n path=webhook: path must start with /");
	expect_error("[upstream n]\nurl = http://h/\n[route a]\nstep = call n method=GET\n",
		     "method must be POST, PUT or PATCH");
	expect_error("[upstream n]\nurl = http://h/\n[route a]\nstep = call n template=x\n",
		     "[upstream n] has no `template.x = ...` line");
	expect_error("[upstream n]\nurl = http://h/\ntemplate.x = {{body}}\n[route a]\n"
		     "step = call n template=x\n",
		     "template.x: ");
}

static void subtest_load_file(void)
{
	char path[512], err[256];
	struct routes *r;
	FILE *f;

	snprintf(path, sizeof(path), "%s/routes.ini", test__tmpdir());
	r = routes_load(path, err, sizeof(err));
	ASSERT_TRUE(!r && strstr(err, "No such file"), "missing file named");
	f = fopen(path, "w");
	fputs(good, f);
	fclose(f);
	r = routes_load(path, err, sizeof(err));
	ASSERT_OK_PTR(r, "loads from file");
	routes_free(r);
}

void test_routes(void)
{
	if (test__start_subtest("parse_and_match"))
		subtest_parse_and_match();
	if (test__start_subtest("errors"))
		subtest_errors();
	if (test__start_subtest("step_path"))
		subtest_step_path();
	if (test__start_subtest("load_file"))
		subtest_load_file();
}
