/* SPDX-License-Identifier: MIT */
/* upstream.h -- HTTP/1.1 client for one upstream (AI scoring API, CRM) with its breaker,
 * bulkhead and retry budget
 *
 * An upstream is a named endpoint: a URL to POST to, a total timeout, a bulkhead (at most
 * max_concurrent calls in flight; one more is refused at once with BULKHEAD_FULL, nobody
 * waits), a request template that wraps the event payload, and a JSON field of the answer
 * to read (e.g. "score"). Calls run on libcurl's multi interface, driven by one thread per
 * upstream that owns every curl handle; connections are kept alive and reused (at most
 * max_concurrent). Each call has exactly one outcome:
 *	OK		2xx in time (and the score field, when one is configured)
 *	SLOW		2xx, but it took >= the breaker's slow-call duration
 *	FAILED		timeout, connection refused/reset, any non-2xx status, bad answer
 *	REJECTED	the breaker is open (or its half-open probes are all out): no I/O
 *	BULKHEAD_FULL	max_concurrent calls already in flight: no I/O
 *	BUDGET_WAIT	a retry (attempt > 1) and the retry budget is empty: no I/O
 * Statuses are classified per upstream (issue 18): `retryable` (default 408,425,429,5xx)
 * are retried, the others dead-letter; `breaker_failures` (default: the retryable set)
 * count against the breaker, the others as a success (the request's fault). A receiver
 * that registers its routes some seconds after it starts listening (n8n answers 404 for
 * ~5 s) is covered by `recovering`: within recovering_window_ms of the upstream being
 * unreachable (connect refused, reset), those statuses (default 404) are retryable and
 * breaker failures too. The reason keeps the status and the first bytes of the body.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink/upstream/breaker.h"
#include "sink/upstream/retry.h"
#include "sink/upstream/status.h"

#define UPSTREAM_MAX_HEADERS 8

enum upstream_outcome {
	UPSTREAM_OK,
	UPSTREAM_SLOW,
	UPSTREAM_FAILED,
	UPSTREAM_REJECTED,
	UPSTREAM_BULKHEAD_FULL,
	UPSTREAM_BUDGET_WAIT, /* a retry found the retry budget empty: no I/O, wait for it */
};

struct upstream_config {
	char name[32];
	char url[256];		     /* http://host:port/path, POSTed to */
	uint32_t timeout_ms;	     /* whole call, connect included (default 2000) */
	uint32_t connect_timeout_ms; /* default 500 */
	uint32_t max_concurrent;     /* bulkhead and keep-alive pool size (default 25) */
	char template[1024];	     /* body; {{payload}} {{idempotency_key}} {{tenant}} {{type}} */
	char score_field[64];	     /* dotted path of a number in the answer; "" = none */
	uint32_t max_body;	     /* largest answer accepted, bytes (default 1 MiB) */
	char method[8];		     /* POST (default), PUT or PATCH */
	uint32_t n_headers;	     /* extra request headers, e.g. "Authorization: Bearer ..." */
	char headers[UPSTREAM_MAX_HEADERS][256];
	struct breaker_config breaker;
	struct retry_policy retry;
	struct status_set retryable;	    /* statuses retried (default 408,425,429,5xx) */
	struct status_set breaker_failures; /* statuses the breaker counts as failures */
	bool breaker_failures_set;	    /* else breaker_failures follows retryable */
	struct status_set recovering;	    /* retryable + failures just after an outage */
	uint64_t recovering_window_ns;	    /* how long "just after" lasts (default 60 s) */
};

struct upstream_request {
	const char *payload;	     /* the event payload, JSON text */
	const char *idempotency_key; /* sent as Idempotency-Key, and {{idempotency_key}}; with
				      * the tenant it makes the Webhook-Id header (msg_ + 32 hex
				      * of sha256, stable across attempts) */
	const char *tenant, *type;   /* optional, for the template */
	uint32_t attempt;	     /* 1 for the first call of an event, 2.. for retries */
	bool budget_free;	     /* a retry paced by someone else (the parked releaser's
				      * ramp): takes no retry budget token */
	/* per-step overrides (`step = call n8n path=/webhook/lead`), NULL or "": the
	 * upstream's own. path replaces the path (and query) of the upstream's url. */
	const char *path, *method, *template;
};

struct upstream_result {
	enum upstream_outcome outcome;
	int http_status;  /* 0: no HTTP answer */
	char reason[200]; /* why it failed or was refused, with the status and the first
			   * bytes of the body ("http 404: {\"message\":..."); "" when OK */
	bool retryable;
	uint64_t retry_after_ns; /* from Retry-After on 429/503, else 0 */
	bool has_score;
	double score;
	char *body; /* the answer (NUL-terminated), owned by the result */
	size_t body_len;
	uint64_t duration_ns;
};

struct upstream_stats {
	uint64_t calls, ok, slow, failed, rejected, bulkhead_full, budget_waits;
	uint32_t in_flight;
	struct breaker_stats breaker;
	struct retry_budget budget;
};

struct upstream;
/* Runs in the driver thread (or in the caller's thread for REJECTED/BULKHEAD_FULL); the
 * result and its body belong to the callee, which releases them with upstream_result_fini. */
typedef void upstream_done_fn(void *ctx, struct upstream_result *res);

/* Defaults for an upstream called name at url (see docs/upstreams.md). */
void upstream_config_default(struct upstream_config *cfg, const char *name, const char *url);
/* Set one field from text: url, method, header (appends "Name: value", at most 8),
 * timeout_ms, connect_timeout_ms, max_concurrent, template, score_field, max_body,
 * retryable, breaker_failures, recovering (status sets), recovering_window_ms,
 * breaker.KEY (breaker_config_set) or retry.KEY (retry_policy_set).
 * 0, -ENOENT (unknown key) or -EINVAL (err names the input and the fix). */
int upstream_config_set(struct upstream_config *cfg, const char *key, const char *value, char *err,
			size_t errlen);

/* Check cfg as a whole (URL scheme, bulkhead and timeout, template placeholders, breaker).
 * 0 or -EINVAL with err naming the upstream, the setting and the fix. */
int upstream_config_check(const struct upstream_config *cfg, char *err, size_t errlen);

/* Create the upstream and start its driver thread. on_transition (may be NULL) is called
 * on breaker transitions after they are logged, e.g. to update metrics. Returns NULL with
 * errno EINVAL (err says what is wrong with cfg) or ENOMEM. */
struct upstream *upstream_new(const struct upstream_config *cfg,
			      breaker_transition_fn *on_transition, void *cb_ctx, char *err,
			      size_t errlen);
/* Stop the driver (calls in flight finish as FAILED "shutting down") and free. NULL-safe. */
void upstream_free(struct upstream *u);

/* Start a call; done is called exactly once. Returns 0, or -ENOMEM (done not called). The
 * request is copied, so it need not outlive this call. */
int upstream_call_async(struct upstream *u, const struct upstream_request *req,
			upstream_done_fn *done, void *ctx);
/* Make a call and wait for its result (at most timeout_ms plus scheduling). Returns 0 with
 * *res filled (release it with upstream_result_fini), or -ENOMEM. */
int upstream_call(struct upstream *u, const struct upstream_request *req,
		  struct upstream_result *res);
void upstream_result_fini(struct upstream_result *res);

/* After a result other than OK/SLOW of attempt `attempt`: retry (when and why) or give up
 * (the reason for the dead letter). FAILED follows the retry policy (retry.h). REJECTED,
 * BULKHEAD_FULL and BUDGET_WAIT sent nothing upstream: they never give up (the caller does
 * not count them as attempts) and wait the breaker's remaining open wait, a short backoff,
 * or the time the budget needs for a token. */
void upstream_retry_decide(struct upstream *u, const struct upstream_result *res, uint32_t attempt,
			   struct retry_decision *d);

/* Whether status is retried / counts as a breaker failure for cfg, `recovering` telling
 * whether the upstream was unreachable within recovering_window_ns. */
bool upstream_status_retryable(const struct upstream_config *cfg, int status, bool recovering);
bool upstream_status_breaker_failure(const struct upstream_config *cfg, int status,
				     bool recovering);

/* url with its path (and query) replaced by path ("" or NULL: url as it is) into out. */
void upstream_url_with_path(const char *url, const char *path, char *out, size_t cap);

void upstream_stats(struct upstream *u, struct upstream_stats *st);
/* The upstream's settings (read-only, for the step runner: retry.max_age, park.*). */
const struct upstream_config *upstream_config_of(const struct upstream *u);
/* Breaker state now, and whether the breaker would let a call through (not OPEN, or OPEN
 * with its wait over). */
enum breaker_state upstream_breaker_state(struct upstream *u);
uint64_t upstream_breaker_open_remaining_ns(struct upstream *u);
const char *upstream_name(const struct upstream *u);
const char *upstream_outcome_name(enum upstream_outcome o);

#endif /* SLUICE_UPSTREAM_H */
