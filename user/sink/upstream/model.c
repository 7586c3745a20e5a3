// SPDX-License-Identifier: MIT
/* model.c -- the local lead-scoring model: logistic regression over payload features
 *
 * Features are evaluated in config order and summed left to right, so the result is
 * bit-for-bit reproducible for a given build. The sigmoid is written in the form that
 * cannot overflow exp() for large negative or positive logits.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/array_size.h"
#include "lib/confparse.h"
#include "lib/jsonpath.h"
#include "sink/upstream/model.h"

static const char *const default_features[] = {
    "company_size log1p 0.35",
    "budget log1p 0.12",
    "phone present 0.6",
    "demo_requested bool 1.4",
    "source eq:referral|partner 1.1",
    "email suffix:@gmail.com|@yahoo.com|@hotmail.com|@outlook.com|@web.de -0.9",
};

void model_init_empty(struct model *m)
{
	memset(m, 0, sizeof(*m));
}

void model_init_default(struct model *m)
{
	model_init_empty(m);
	m->bias = -4.0;
	for (size_t i = 0; i < ARRAY_SIZE(default_features); i++)
		model_config_set(m, "feature", default_features[i], NULL, 0);
}

static int parse_transform(struct model_feature *f, const char *t)
{
	static const char *const plain[] = {"num", "log1p", "present", "bool"};
	const char *colon = strchr(t, ':');

	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		if (!strcmp(t, plain[i])) {
			f->transform = (enum model_transform)i;
			return 0;
		}
	}
	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(f->arg))
		return -EINVAL;
	if (!strncmp(t, "eq:", 3))
		f->transform = MODEL_EQ;
	else if (!strncmp(t, "suffix:", 7))
		f->transform = MODEL_SUFFIX;
	else
		return -EINVAL;
	snprintf(f->arg, sizeof(f->arg), "%s", colon + 1);
	return 0;
}

/* "PATH TRANSFORM WEIGHT", appended to the model's features. */
static int add_feature(void *obj, const char *value, char *why, size_t whylen)
{
	static const struct confparse_opt weight_opt = {
	    "weight",	  NULL,	      NULL, CONFPARSE_DOUBLE, .size = sizeof(double),
	    .min = -1000, .max = 1000};
	char path[64], transform[160], weight[64], extra[2], sub[96];
	struct model *m = obj;
	struct model_feature f = {0};

	if (sscanf(value, "%63s %159s %63s %1s", path, transform, weight, extra) != 3) {
		snprintf(why, whylen,
			 "expected PATH TRANSFORM WEIGHT, e.g. company_size log1p 0.35");
		return -EINVAL;
	}
	if (parse_transform(&f, transform)) {
		snprintf(why, whylen,
			 "transform must be num, log1p, present, bool, eq:A|B or suffix:A|B "
			 "(alternatives under 128 characters)");
		return -EINVAL;
	}
	if (confparse_apply(&weight_opt, &f.weight, weight, sub, sizeof(sub))) {
		snprintf(why, whylen, "weight %s: %s", weight, sub);
		return -EINVAL;
	}
	if (m->n >= MODEL_MAX_FEATURES) {
		snprintf(why, whylen, "too many features (at most %d)", MODEL_MAX_FEATURES);
		return -E2BIG;
	}
	snprintf(f.path, sizeof(f.path), "%s", path);
	m->f[m->n++] = f;
	return 0;
}

static const struct confparse_opt model_opts[] = {
    {"bias", NULL, NULL, CONFPARSE_DOUBLE, CONFPARSE_FIELD(struct model, bias), -1000, 1000},
    {"feature", NULL, NULL, CONFPARSE_FUNC, .set = add_feature},
};

static const struct confparse_table model_table = CONFPARSE_TABLE_OF(model_opts);

int model_config_set(struct model *m, const char *key, const char *value, char *err, size_t errlen)
{
	return confparse_set(&model_table, m, key, value, err, errlen);
}

static double as_number(const json_t *v)
{
	char *end;
	double d;

	if (json_is_number(v))
		return json_number_value(v);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v)) {
		d = strtod(json_string_value(v), &end);
		if (end != json_string_value(v) && !*end && isfinite(d))
			return d;
	}
	return 0;
}

/* Does s match one of the '|'-separated alternatives (whole string, or its end)? */
static bool matches(const char *s, const char *alts, bool suffix)
{
	size_t slen = strlen(s);

	while (*alts) {
		size_t len = strcspn(alts, "|");

		if (suffix ? len <= slen && !strncasecmp(s + slen - len, alts, len)
			   : len == slen && !strncasecmp(s, alts, len))
			return true;
		alts += len + (alts[len] == '|');
	}
	return false;
}

static double feature_value(const struct model_feature *f, const json_t *payload)
{
	const json_t *v = json_path_get(payload, f->path);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	double x;

	switch (f->transform) {
	case MODEL_NUM:
		return as_number(v);
	case MODEL_LOG1P:
		x = as_number(v);
		return log1p(x > 0 ? x : 0);
	case MODEL_PRESENT:
		return v && !json_is_null(v) && !json_is_false(v) && !(s && !*s);
	case MODEL_BOOL:
		return json_is_true(v) || (s && matches(s, "true|yes|1", false));
	case MODEL_EQ:
	case MODEL_SUFFIX:
		return s && matches(s, f->arg, f->transform == MODEL_SUFFIX);
	}
	return 0;
}

double model_logit(const struct model *m, const json_t *payload)
{
	double z = m->bias;

	for (size_t i = 0; i < m->n; i++)
		z += m->f[i].weight * feature_value(&m->f[i], payload);
	return z;
}

double model_score(const struct model *m, const json_t *payload)
{
	double z = model_logit(m, payload);

	if (z >= 0)
		return 1.0 / (1.0 + exp(-z));
	return exp(z) / (1.0 + exp(z));
}
