// SPDX-License-Identifier: MIT
/* fallback.c -- the answer chain for an upstream call that cannot be made or failed
 *
 * The cache value is a small JSON object {"score":S}, so other fields can be added
 * without breaking readers; a value that does not parse counts as a miss. The cache key is
 * (upstream, tenant, field value) in Redis's "cache" space, each field length-prefixed
 * (sluice:cache:2:ai:4:acme:10:jo@acme.io): an answer is only ever served to the tenant whose
 * event earned it, and no field value can reach another upstream's or tenant's entry.
 * Numbers are printed as integers or %.17g, so the same lead finds its entry whether the
 * field arrived as 42 or 42.0. Counters are atomics: one
 * chain is shared by all workers of an upstream.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/confparse.h"
#include "sink/upstream/fallback.h"
#include "lib/jsonpath.h"

#define COUNT(f, field) __atomic_fetch_add(&(f)->st.field, 1, __ATOMIC_RELAXED)

struct fallback {
	char name[32];
	struct fallback_config cfg;
	struct redis *redis;
	const struct model *model;
	struct fallback_stats st;
};

void fallback_config_default(struct fallback_config *cfg)
{
	/* opt-in: no cache key, no model. A failed call is then retried or dead-lettered,
	 * never answered by something the upstream did not say (issue 18). */
	*cfg = (struct fallback_config){.cache_ttl_ms = 24ULL * 3600 * 1000};
}

#define F(f) CONFPARSE_FIELD(struct fallback_config, f)

static const struct confparse_opt fallback_opts[] = {
    {"key_field", NULL, NULL, CONFPARSE_STR, F(key_field)},
    {"cache_ttl_ms", NULL, NULL, CONFPARSE_INT, F(cache_ttl_ms), 1, 30.0 * 24 * 3600 * 1000},
    {"model", NULL, NULL, CONFPARSE_BOOL, F(use_model)},
};

static const struct confparse_table fallback_table = CONFPARSE_TABLE_OF(fallback_opts);

int fallback_config_set(struct fallback_config *cfg, const char *key, const char *value, char *err,
			size_t errlen)
{
	return confparse_set(&fallback_table, cfg, key, value, err, errlen);
}

struct fallback *fallback_new(const char *name, const struct fallback_config *cfg,
			      struct redis *redis, const struct model *model)
{
	struct fallback *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->cfg = *cfg;
	f->redis = redis;
	f->model = model;
	return f;
}

void fallback_free(struct fallback *f)
{
	free(f);
}

/* The key field's value in payload as text, or -ENOENT when there is none to make. */
static int cache_value(const struct fallback *f, const json_t *payload, char *out, size_t len)
{
	const json_t *v = f->cfg.key_field[0] ? json_path_get(payload, f->cfg.key_field) : NULL;
	double d = json_is_number(v) ? json_number_value(v) : 0;
	int n;

	if (!f->redis || !v)
		return -ENOENT;
	if (json_is_string(v) && json_string_length(v))
		n = snprintf(out, len, "%s", json_string_value(v));
	else if (json_is_number(v) && d == floor(d) && fabs(d) < 1e15)
		n = snprintf(out, len, "%.0f", d);
	else if (json_is_number(v))
		n = snprintf(out, len, "%.17g", d);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < len ? 0 : -ENOENT;
}

int fallback_remember(struct fallback *f, const char *tenant, const char *payload, double score)
{
	json_t *p = json_loads(payload ? payload : "null", JSON_DECODE_ANY, NULL);
	char value[320], val[64];
	int err = cache_value(f, p, value, sizeof(value));

	json_decref(p);
	if (err)
		return err;
	snprintf(val, sizeof(val), "{\"score\":%.17g}", score);
	err = redis_kv_set(f->redis, REDIS_CACHE, (const char *const[]){f->name, tenant, value}, 3,
			   val, f->cfg.cache_ttl_ms);
	if (!err)
		COUNT(f, remembered);
	return err;
}

/* 1: answered from the cache; 0: not; the reason says why. */
static int from_cache(struct fallback *f, const char *tenant, const json_t *payload,
		      struct fallback_answer *a)
{
	char value[320], *val = NULL;
	json_t *j, *s;
	int ret;

	if (cache_value(f, payload, value, sizeof(value))) {
		snprintf(a->reason, sizeof(a->reason), "cache: %s",
			 !f->redis		? "no redis"
			 : !f->cfg.key_field[0] ? "no key_field"
						: "payload lacks key_field");
		return 0;
	}
	ret = redis_kv_get(f->redis, REDIS_CACHE, (const char *const[]){f->name, tenant, value}, 3,
			   &val);
	if (ret < 0) {
		COUNT(f, cache_errors);
		snprintf(a->reason, sizeof(a->reason), "cache: redis %s", strerror(-ret));
		return 0;
	}
	j = ret ? json_loads(val, 0, NULL) : NULL;
	s = json_object_get(j, "score");
	free(val);
	if (!json_is_number(s)) {
		COUNT(f, cache_misses);
		snprintf(a->reason, sizeof(a->reason), "cache: miss");
		json_decref(j);
		return 0;
	}
	a->source = FALLBACK_CACHE;
	a->has_score = true;
	a->score = json_number_value(s);
	json_decref(j);
	COUNT(f, cache_hits);
	return 1;
}

void fallback_answer(struct fallback *f, const char *tenant, const char *payload,
		     struct fallback_answer *a)
{
	json_t *p = json_loads(payload ? payload : "null", JSON_DECODE_ANY, NULL);
	size_t n;

	memset(a, 0, sizeof(*a));
	if (from_cache(f, tenant, p, a))
		goto out;
	n = strlen(a->reason);
	if (f->model && f->cfg.use_model) {
		a->source = FALLBACK_MODEL;
		a->has_score = true;
		a->score = model_score(f->model, json_is_object(p) ? p : NULL);
		COUNT(f, model);
		goto out;
	}
	a->source = FALLBACK_DEFER;
	snprintf(a->reason + n, sizeof(a->reason) - n, "; model: %s",
		 f->model ? "switched off" : "not configured");
	COUNT(f, deferred);
out:
	json_decref(p);
}

void fallback_after_call(struct fallback *f, const char *tenant, const char *payload,
			 const struct upstream_result *r, struct fallback_answer *a)
{
	/* A success without a score is an upstream that returns none (a CRM sync: no
	 * score_field; with one, a 2xx lacking it is already a failure): its answer stands. */
	if (r->outcome == UPSTREAM_OK || r->outcome == UPSTREAM_SLOW) {
		memset(a, 0, sizeof(*a));
		a->source = FALLBACK_UPSTREAM;
		a->has_score = r->has_score;
		a->score = r->score;
		COUNT(f, upstream);
		if (r->has_score)
			fallback_remember(f, tenant, payload, r->score);
		return;
	}
	fallback_answer(f, tenant, payload, a);
}

void fallback_stats(struct fallback *f, struct fallback_stats *st)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	*st = f->st;
}

const char *fallback_source_name(enum fallback_source s)
{
	static const char *const names[] = {"upstream", "cache", "model", "defer"};

	return s <= FALLBACK_DEFER ? names[s] : "unknown";
}
