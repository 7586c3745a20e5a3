// SPDX-License-Identifier: MIT
/* test_deploy.c -- the shipped Prometheus rules and Grafana dashboard are valid */
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "netns.h"
#include "test_progs.h"

static void subtest_rules(void)
{
	char out[4096];
	int rc;

	if (access("/usr/bin/promtool", X_OK)) {
		test__skip("promtool not installed (tools/setup installs prometheus)");
		return;
	}
	rc = netns_run(NULL, out, sizeof(out), "promtool check rules deploy/prometheus/rules.yaml");
	if (!ASSERT_EQ(rc, 0, "promtool check rules"))
		printf("%s\n", out);
	ASSERT_HAS_STR(out, "SUCCESS", "rules found");
}

static void subtest_dashboard(void)
{
	json_error_t e;
	json_t *d = json_load_file("deploy/grafana/sluice-dashboard.json", 0, &e);
	size_t i;
	json_t *p;

	if (!ASSERT_OK_PTR(d, "dashboard parses")) {
		printf("%s:%d: %s\n", e.source, e.line, e.text);
		return;
	}
	ASSERT_GT(json_array_size(json_object_get(d, "panels")), 8, "has panels");
	json_array_foreach(json_object_get(d, "panels"), i, p)
	    ASSERT_GT(json_array_size(json_object_get(p, "targets")), 0, "every panel queries");
	json_decref(d);
}

void test_deploy(void)
{
	if (test__start_subtest("prometheus_rules"))
		subtest_rules();
	if (test__start_subtest("grafana_dashboard"))
		subtest_dashboard();
}
