/* SPDX-License-Identifier: MIT */
/* breaker.h -- per-upstream circuit breaker with resilience4j semantics
 *
 * States CLOSED -> OPEN -> HALF_OPEN -> CLOSED|OPEN. In CLOSED every finished call is
 * recorded in a sliding window (the last N calls, or the calls of the last N seconds).
 * Once the window holds at least minimum_calls, the breaker opens when the failure rate
 * or the slow-call rate reaches its threshold. OPEN rejects every call for open_wait_ns,
 * then the next acquire moves to HALF_OPEN, which permits exactly half_open_calls probes;
 * when all of them have finished, their failure and slow rates decide CLOSED (fresh window)
 * or OPEN again. Rejected calls are never recorded. Results of calls acquired in an
 * earlier state (a different epoch) are counted in the stats but change no state: a call
 * started while CLOSED that ends during HALF_OPEN is not a probe.
 *
 * Thread-safe (one mutex). The clock is injectable so tests step time by hand; the
 * transition callback runs after the lock is dropped, so it may call back into the breaker.
 */
#ifndef SLUICE_BREAKER_H
#define SLUICE_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };
enum breaker_window { BREAKER_WINDOW_COUNT, BREAKER_WINDOW_TIME };

#define BREAKER_MAX_WINDOW 1024 /* calls (count window) or seconds (time window) */

struct breaker_config {
	enum breaker_window window; /* COUNT: last window_size calls; TIME: last window_size s */
	uint32_t window_size;
	uint32_t minimum_calls;	   /* no decision before the window holds this many */
	uint32_t failure_rate_pct; /* open at failed/calls >= this (1-100) */
	uint64_t slow_call_ns;	   /* a call lasting >= this is slow (success or not) */
	uint32_t slow_rate_pct;	   /* open at slow/calls >= this (1-100) */
	uint64_t open_wait_ns;	   /* time spent OPEN before probing */
	uint32_t half_open_calls;  /* probes permitted in HALF_OPEN, all must finish */
};

/* What a decision looked at: the window (CLOSED) or the probes (HALF_OPEN). */
struct breaker_snapshot {
	uint32_t calls, failed, slow;
	uint32_t failure_rate_pct, slow_rate_pct; /* 0 when calls == 0 */
	uint64_t epoch;				  /* increments on every transition */
};

struct breaker_stats {
	enum breaker_state state;
	uint64_t permitted, rejected, successes, failures, slow_calls;
	uint64_t opened, half_opened, closed; /* transitions into each state */
	struct breaker_snapshot window;
};

/* A permission to make one call; hand it back with breaker_record or breaker_release. */
struct breaker_permit {
	uint64_t epoch;
	bool probe;
};

struct breaker;
typedef uint64_t breaker_clock_fn(void *ctx); /* monotonic ns */
typedef void breaker_transition_fn(void *ctx, const char *name, enum breaker_state from,
				   enum breaker_state to, const struct breaker_snapshot *why);

/* Sluice's defaults (see docs/upstreams.md): count window 100, minimum 50 calls, 50 %
 * failures, slow >= 1 s at 80 %, 10 s open, 3 probes. */
void breaker_config_default(struct breaker_config *cfg);
/* Check a config; on error returns -EINVAL and writes a message naming the field into err. */
int breaker_config_check(const struct breaker_config *cfg, char *err, size_t errlen);
/* Set one field from text (keys: window=count|time, window_size, minimum_calls,
 * failure_rate, slow_call_ms, slow_rate, open_wait_ms, half_open_calls). Returns 0,
 * -ENOENT for an unknown key, -EINVAL for a bad value (err says which and why). */
int breaker_config_set(struct breaker_config *cfg, const char *key, const char *value, char *err,
		       size_t errlen);
/* Those keys as a lib/confparse table over struct breaker_config (an upstream section's
 * breaker.* keys). */
struct confparse_table;
extern const struct confparse_table breaker_config_table;

/* Create a breaker named name (copied). clock NULL: CLOCK_MONOTONIC. on_transition may be
 * NULL. Returns NULL with errno EINVAL (bad config) or ENOMEM. */
struct breaker *breaker_new(const char *name, const struct breaker_config *cfg,
			    breaker_clock_fn *clock, void *clock_ctx,
			    breaker_transition_fn *on_transition, void *cb_ctx);
void breaker_free(struct breaker *b);

/* Ask to make a call. Returns 0 and fills *p, or -EBUSY when OPEN (or every HALF_OPEN probe
 * slot is taken). May move OPEN -> HALF_OPEN when the wait is over. */
int breaker_acquire(struct breaker *b, struct breaker_permit *p);
/* Record the outcome of a permitted call; returns true when it counted as slow. */
bool breaker_record(struct breaker *b, const struct breaker_permit *p, bool failed,
		    uint64_t duration_ns);
/* Give back a permit whose call was never made (e.g. the bulkhead was full). */
void breaker_release(struct breaker *b, const struct breaker_permit *p);

/* Current state; an OPEN breaker whose wait is over still reads OPEN until acquired. */
enum breaker_state breaker_state(struct breaker *b);
void breaker_stats(struct breaker *b, struct breaker_stats *st);
/* Time until an OPEN breaker lets a probe through (0 when not OPEN or already due). */
uint64_t breaker_open_remaining_ns(struct breaker *b);
const char *breaker_name(const struct breaker *b);
const char *breaker_state_name(enum breaker_state s);

#endif /* SLUICE_BREAKER_H */
