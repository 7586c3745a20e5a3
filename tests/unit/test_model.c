// SPDX-License-Identifier: MIT
/* test_model.c -- the lead-scoring model gives the documented scores for documented inputs */
#include <errno.h>
#include <jansson.h>
#include <math.h>

#include "sink/upstream/model.h"
#include "test_progs.h"

static double score_of(const struct model *m, const char *json)
{
	json_t *p = json_loads(json, 0, NULL);
	double s = p ? model_score(m, p) : -1;

	json_decref(p);
	return s;
}

#define ASSERT_SCORE(got, want, name) ASSERT_LT(fabs((got) - (want)), 1e-12, name)

/* The three examples of docs/upstreams.md, computed by hand from the default weights. */
static void subtest_documented(void)
{
	struct model m;

	model_init_default(&m);
	/* hot: -4 + 0.35 ln 251 + 0.12 ln 50001 + 0.6 + 1.4 + 1.1 = 2.3323 */
	ASSERT_SCORE(score_of(&m, "{\"company_size\":250,\"budget\":50000,\"phone\":\"+49 30 1\","
				  "\"demo_requested\":true,\"source\":\"Referral\","
				  "\"email\":\"ceo@acme.example\"}"),
		     0.9115157515885907, "hot lead");
	/* cold: -4 + 0.35 ln 4 - 0.9 (free mail; an empty phone is absent) = -4.4148 */
	ASSERT_SCORE(score_of(&m, "{\"company_size\":3,\"email\":\"jo@GMAIL.com\",\"phone\":\"\"}"),
		     0.011952421329044569, "cold lead");
	/* nothing known: sigmoid(bias) */
	ASSERT_SCORE(score_of(&m, "{}"), 0.01798620996209156, "empty payload");
	ASSERT_SCORE(model_score(&m, NULL), 0.01798620996209156, "no payload");
}

static void subtest_deterministic(void)
{
	const char *lead = "{\"company_size\":\"40\",\"budget\":1200.5,\"source\":\"partner\"}";
	struct model m;
	double a, b;

	model_init_default(&m);
	a = score_of(&m, lead);
	for (int i = 0; i < 100; i++) {
		b = score_of(&m, lead);
		if (!ASSERT_TRUE(a == b, "same bits every time"))
			return;
	}
	/* a numeric string reads as the number */
	ASSERT_TRUE(a == score_of(&m, "{\"company_size\":40,\"budget\":1200.5,"
				      "\"source\":\"partner\"}"),
		    "\"40\" == 40");
}

static void subtest_transforms(void)
{
	char err[160] = "";
	struct model m;

	model_init_empty(&m);
	ASSERT_OK(model_config_set(&m, "feature", "company.size num 1.0", err, sizeof(err)),
		  "nested path");
	ASSERT_OK(model_config_set(&m, "feature", "vip bool 2", err, sizeof(err)), "bool");
	ASSERT_SCORE(score_of(&m, "{\"company\":{\"size\":2}}"), 1 / (1 + exp(-2.0)), "nested");
	ASSERT_SCORE(score_of(&m, "{\"company\":{\"size\":2},\"vip\":\"yes\"}"),
		     1 / (1 + exp(-4.0)), "bool from \"yes\"");
	ASSERT_SCORE(score_of(&m, "{\"company\":7}"), 0.5, "path through a non-object is 0");
	ASSERT_OK(model_config_set(&m, "bias", "-1000", err, sizeof(err)), "bias");
	ASSERT_TRUE(score_of(&m, "{}") >= 0 && score_of(&m, "{}") < 1e-300, "no overflow low");
	ASSERT_OK(model_config_set(&m, "bias", "1000", err, sizeof(err)), "bias");
	ASSERT_SCORE(score_of(&m, "{}"), 1.0, "no overflow high");
}

static void subtest_config_errors(void)
{
	char err[200] = "";
	struct model m;

	model_init_empty(&m);
	ASSERT_EQ(model_config_set(&m, "feature", "size cube 1", err, sizeof(err)), -EINVAL,
		  "unknown transform");
	ASSERT_HAS_STR(err, "feature = size cube 1", "names the line");
	ASSERT_EQ(model_config_set(&m, "feature", "size log1p", err, sizeof(err)), -EINVAL,
		  "missing weight");
	ASSERT_EQ(model_config_set(&m, "feature", "size log1p heavy", err, sizeof(err)), -EINVAL,
		  "weight not a number");
	ASSERT_EQ(model_config_set(&m, "bias", "nan", err, sizeof(err)), -EINVAL, "nan bias");
	ASSERT_EQ(model_config_set(&m, "weights", "1", err, sizeof(err)), -ENOENT, "unknown");
	for (int i = 0; i < MODEL_MAX_FEATURES; i++)
		model_config_set(&m, "feature", "x num 1", err, sizeof(err));
	ASSERT_EQ(model_config_set(&m, "feature", "x num 1", err, sizeof(err)), -E2BIG, "33rd");
	ASSERT_EQ(m.n, MODEL_MAX_FEATURES, "32 kept");
}

void test_model(void)
{
	if (test__start_subtest("documented"))
		subtest_documented();
	if (test__start_subtest("deterministic"))
		subtest_deterministic();
	if (test__start_subtest("transforms"))
		subtest_transforms();
	if (test__start_subtest("config_errors"))
		subtest_config_errors();
}
