/* SPDX-License-Identifier: MIT */
/* fallback.h -- the answer chain for an upstream call that cannot be made or failed
 *
 * Both fallbacks are opt-in (an upstream configures them): without a cache key and a model
 * a failed call always defers, so it is retried or dead-lettered, never marked done with
 * an answer the upstream did not give. When the breaker is open or the call failed, an
 * answer is looked for in order:
 *	1. cache	the upstream's last good answer for this lead, from Redis; the key is
 *			the value of a configured payload field (e.g. "email") under the
 *			upstream's and the tenant's names (one tenant's answers are never
 *			served to another), written on every good answer with a TTL
 *	2. model	the local deterministic lead-scoring model (model.h)
 *	3. defer	no answer now: the caller retries the step later
 * Every answer says which source gave it (recorded in step_results). Redis down or slow
 * costs one short timeout and falls through to the model; it never fails the chain.
 */
#ifndef SLUICE_FALLBACK_H
#define SLUICE_FALLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink/upstream/model.h"
#include "lib/redis.h"
#include "sink/upstream/upstream.h"

enum fallback_source { FALLBACK_UPSTREAM, FALLBACK_CACHE, FALLBACK_MODEL, FALLBACK_DEFER };

struct fallback_config {
	char key_field[64];    /* payload path whose value keys the cache; "" = no cache */
	uint64_t cache_ttl_ms; /* default 24 h */
	bool use_model;	       /* default false; `model = on` or any model.* key sets it */
	bool model_given;      /* `model = on|off` was written (wins over model.* keys) */
};

struct fallback_answer {
	enum fallback_source source;
	bool has_score;
	double score;
	char reason[192]; /* what was tried and why it did not answer */
};

struct fallback_stats {
	uint64_t upstream, cache_hits, cache_misses, cache_errors, model, deferred, remembered;
};

struct fallback;

void fallback_config_default(struct fallback_config *cfg);
/* Set one field from text (keys: key_field, cache_ttl_ms, model = on|off; the caller
 * sets model_given when it applies `model`). 0, -ENOENT or
 * -EINVAL (err names the input). */
int fallback_config_set(struct fallback_config *cfg, const char *key, const char *value, char *err,
			size_t errlen);

/* A chain for upstream `name`. redis and model are borrowed (either may be NULL) and must
 * outlive the chain. Returns NULL with errno ENOMEM. */
struct fallback *fallback_new(const char *name, const struct fallback_config *cfg,
			      struct redis *redis, const struct model *model);
void fallback_free(struct fallback *f);

/* Remember a good upstream score for tenant's payload in the cache (best effort): 0, or
 * -ENOENT (payload lacks the key field / no cache configured) or a Redis -errno. */
int fallback_remember(struct fallback *f, const char *tenant, const char *payload, double score);
/* Walk cache (tenant's own entries only) -> model -> defer for this payload (JSON text) and
 * fill *a. */
void fallback_answer(struct fallback *f, const char *tenant, const char *payload,
		     struct fallback_answer *a);
/* The whole step: a good upstream result (OK/SLOW) answers, and its score, if any, is
 * remembered; anything else goes down the chain. (A 2xx missing a configured score_field
 * is already UPSTREAM_FAILED, so OK without a score means an upstream that gives none.) */
void fallback_after_call(struct fallback *f, const char *tenant, const char *payload,
			 const struct upstream_result *r, struct fallback_answer *a);

void fallback_stats(struct fallback *f, struct fallback_stats *st);
const char *fallback_source_name(enum fallback_source s);

#endif /* SLUICE_FALLBACK_H */
