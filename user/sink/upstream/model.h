/* SPDX-License-Identifier: MIT */
/* model.h -- the local lead-scoring model: logistic regression over payload features
 *
 * score = 1 / (1 + exp(-(bias + sum(weight_i * x_i)))), in (0, 1). Each feature reads one
 * field of the event payload (a dotted path into the JSON object) and turns it into a
 * number x_i with a transform:
 *	num		the number itself (bools 0/1, numeric strings parsed, else 0)
 *	log1p		log(1 + max(0, num)): sizes and budgets, where 10 -> 100 matters
 *			as much as 1,000 -> 10,000
 *	present		1 when the field exists and is not null, false or ""
 *	bool		1 when the field is true (or "true", "yes", "1")
 *	eq:A|B		1 when the string equals one of the alternatives (ASCII case-insensitive)
 *	suffix:A|B	1 when the string ends with one of them (e.g. free mail domains)
 * A missing field gives x = 0, so the model always answers. The same payload and weights
 * give the same score on every run: no state, no randomness. It is the fallback when the
 * AI scoring upstream cannot answer; docs/upstreams.md documents the default weights.
 */
#ifndef SLUICE_MODEL_H
#define SLUICE_MODEL_H

#include <jansson.h>
#include <stddef.h>

#define MODEL_MAX_FEATURES 32

enum model_transform {
	MODEL_NUM,
	MODEL_LOG1P,
	MODEL_PRESENT,
	MODEL_BOOL,
	MODEL_EQ,
	MODEL_SUFFIX,
};

struct model_feature {
	char path[64];
	enum model_transform transform;
	char arg[128]; /* EQ/SUFFIX alternatives, '|'-separated */
	double weight;
};

struct model {
	double bias;
	size_t n;
	struct model_feature f[MODEL_MAX_FEATURES];
};

/* The documented default lead-scoring weights (docs/upstreams.md). */
void model_init_default(struct model *m);
/* No features, bias 0 (score 0.5 for everything): start of a model read from config. */
void model_init_empty(struct model *m);
/* Apply one config line: `bias = -2.0` or `feature = PATH TRANSFORM WEIGHT` (appends).
 * Returns 0, -ENOENT for an unknown key, -EINVAL / -E2BIG with err naming the line. */
int model_config_set(struct model *m, const char *key, const char *value, char *err, size_t errlen);
/* Score a payload object. Returns the score in (0, 1); payload may be NULL (all x = 0). */
double model_score(const struct model *m, const json_t *payload);
/* The linear part only (bias + sum w*x): for explaining a score. */
double model_logit(const struct model *m, const json_t *payload);

#endif /* SLUICE_MODEL_H */
