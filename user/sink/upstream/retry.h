/* SPDX-License-Identifier: MIT */
/* retry.h -- retry policy: capped exponential backoff with full jitter, a retry budget per
 * upstream, and Retry-After
 *
 * Outage-tolerant by default (issue 18): an essential call is retried until retry.max_age
 * (24 h after the event was received) or retry.max_attempts (300: with the default 1 s base
 * and 10 min cap full jitter averages ~5 min a retry once capped, so the two limits meet
 * near 24 h, like Svix's schedule of retries over a day). Dead letters are only for answers
 * a retry cannot fix and events past either limit. The budget limits the *rate* of
 * retries: a retry that finds the bucket empty waits for a token (no call, no attempt
 * spent), it is never given up for it.
 *
 * Retry n (n = 1 for the first retry) waits a uniform random time in
 * [0, min(cap, base * 2^(n-1))] ("full jitter", AWS architecture blog), so synchronised
 * clients spread out instead of retrying in waves. At most max_attempts calls are made in
 * total. The budget is a token bucket in thousandths of a retry: every first attempt
 * deposits budget_pct/100 of a retry, every retry withdraws one, and the bucket holds at
 * most budget_burst retries (it starts full so a quiet upstream may still retry); it also
 * refills at budget_refill_per_s so retries of an upstream that gets no new events still
 * move. Over any interval T, retries <= budget_pct % of calls + budget_burst +
 * budget_refill_per_s * T. A 429 or 503 with Retry-After waits at least that long (a wait
 * beyond retry_after_max is still waited, parked rather than in memory).
 */
#ifndef SLUICE_RETRY_H
#define SLUICE_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct retry_policy {
	uint32_t max_attempts;	      /* calls in total, first one included (>= 1) */
	uint64_t base_ns, cap_ns;     /* backoff ceiling of retry n: min(cap, base * 2^(n-1)) */
	uint32_t budget_pct;	      /* retries earned per 100 calls */
	uint32_t budget_burst;	      /* bucket size (and initial fill), in retries */
	uint64_t retry_after_max_ns;  /* longest Retry-After waited for in memory */
	uint64_t max_age_ns;	      /* no retry this long after the event was received */
	uint32_t budget_refill_per_s; /* retries earned per second whatever the traffic */
};

struct retry_budget {
	int64_t milli; /* tokens in 1/1000 retry, 0..burst*1000 */
	int64_t deposit, cap;
	int64_t refill_milli_per_s;
	uint64_t refill_ns; /* monotonic time the time refill was last added */
	uint64_t calls, retries, denied;
};

enum retry_verdict { RETRY_GIVE_UP, RETRY_AFTER_DELAY };

struct retry_decision {
	enum retry_verdict verdict;
	uint64_t delay_ns;  /* RETRY_AFTER_DELAY: wait this long; GIVE_UP: earliest sensible
			     * time to try again later (Retry-After), else 0 */
	const char *reason; /* static string: why we gave up or why this delay */
};

/* Sluice's defaults: 300 attempts or 24 h, 1 s base, 10 min cap, 10 % budget, burst 10,
 * refill 1 retry/s, Retry-After up to 30 s in memory. */
void retry_policy_default(struct retry_policy *p);
/* Set one field from text (keys: max_attempts, base_ms, cap_ms, budget_pct, budget_burst,
 * budget_refill_per_s, retry_after_max_ms, max_age_ms). 0, -ENOENT (unknown key) or -EINVAL (err
 * names key and value). */
int retry_policy_set(struct retry_policy *p, const char *key, const char *value, char *err,
		     size_t errlen);
/* Those keys as a lib/confparse table over struct retry_policy (an upstream section's
 * retry.* keys). */
struct confparse_table;
extern const struct confparse_table retry_policy_table;

/* Full-jitter delay of retry number n (>= 1) for a random value rnd. */
uint64_t retry_backoff_ns(const struct retry_policy *p, uint32_t n, uint64_t rnd);
/* A random 64-bit value from a per-thread generator seeded by getrandom(2). */
uint64_t retry_rand(void);

/* Initialise an embedded budget for p (full bucket). Thread-safe operations below. */
void retry_budget_init(struct retry_budget *b, const struct retry_policy *p);
/* Count one first attempt (deposits budget_pct/100 of a retry). */
void retry_budget_on_call(struct retry_budget *b);
/* Take one retry from the bucket (after adding the time refill); false (and counted as
 * denied) when it is empty. */
bool retry_budget_withdraw(struct retry_budget *b);

/* Parse a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime
 * form), relative to now (wall clock). A date in the past gives 0. Returns 0 or -EINVAL. */
int retry_after_parse(const char *value, time_t now, uint64_t *delay_ns);

/* Decide what follows a failed attempt. attempts = calls made so far (>= 1); retryable is
 * false for answers a retry cannot fix (statuses outside the upstream's retryable set);
 * retry_after_ns is the parsed Retry-After or 0. Gives up only for "not retryable" and
 * "attempts exhausted" (the caller checks max_age); the budget is not touched here, the
 * retry call takes its token (upstream_call_async) and waits when there is none. b may be
 * NULL. */
void retry_decide(const struct retry_policy *p, struct retry_budget *b, uint32_t attempts,
		  bool retryable, int http_status, uint64_t retry_after_ns, uint64_t rnd,
		  struct retry_decision *d);

#endif /* SLUICE_RETRY_H */
