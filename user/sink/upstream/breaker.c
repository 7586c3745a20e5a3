// SPDX-License-Identifier: MIT
/* breaker.c -- per-upstream circuit breaker with resilience4j semantics
 *
 * The sliding window keeps running totals (calls, failed, slow) next to its slots, so a
 * record and a decision are O(1): the count window is a ring of outcome bytes, the time
 * window a ring of one-second buckets that are cleared as the clock passes them (at most
 * window_size buckets per step, whatever the gap). Rates are compared exactly in integers
 * (failed * 100 >= pct * calls). Transitions are collected under the lock and reported
 * after it is dropped, in the order they happened for this breaker.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "sink/upstream/breaker.h"
#include "lib/confparse.h"

#define NS_PER_SEC 1000000000ULL
#define OUT_FAILED 1
#define OUT_SLOW   2

struct tw_bucket {
	uint64_t sec;
	uint32_t calls, failed, slow;
};

struct breaker {
	pthread_mutex_t lock;
	char name[64];
	struct breaker_config cfg;
	breaker_clock_fn *clock;
	void *clock_ctx;
	breaker_transition_fn *on_transition;
	void *cb_ctx;

	enum breaker_state state;
	uint64_t epoch, opened_at;
	/* CLOSED window: totals plus either the ring of outcomes or the ring of buckets */
	uint32_t calls, failed, slow;
	uint8_t *ring;
	uint32_t head, filled;
	struct tw_bucket *buckets;
	uint64_t last_sec;
	/* HALF_OPEN probes */
	uint32_t probes_taken, probes_done, probes_failed, probes_slow;

	struct breaker_stats st;
};

struct transition {
	bool happened;
	enum breaker_state from, to;
	struct breaker_snapshot why;
};

static uint64_t clock_monotonic(void *ctx)
{
	(void)ctx;
	return clock_mono_ns();
}

void breaker_config_default(struct breaker_config *cfg)
{
	*cfg = (struct breaker_config){
	    .window = BREAKER_WINDOW_COUNT,
	    .window_size = 100,
	    .minimum_calls = 50,
	    .failure_rate_pct = 50,
	    .slow_call_ns = 1 * NS_PER_SEC,
	    .slow_rate_pct = 80,
	    .open_wait_ns = 10 * NS_PER_SEC,
	    .half_open_calls = 3,
	};
}

int breaker_config_check(const struct breaker_config *cfg, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (cfg->window != BREAKER_WINDOW_COUNT && cfg->window != BREAKER_WINDOW_TIME)
		bad = "window: must be count or time";
	else if (cfg->window_size < 1 || cfg->window_size > BREAKER_MAX_WINDOW)
		bad = "window_size: out of range (1-1024)";
	else if (cfg->minimum_calls < 1)
		bad = "minimum_calls: must be at least 1";
	else if (cfg->failure_rate_pct < 1 || cfg->failure_rate_pct > 100)
		bad = "failure_rate: out of range (1-100)";
	else if (cfg->slow_rate_pct < 1 || cfg->slow_rate_pct > 100)
		bad = "slow_rate: out of range (1-100)";
	else if (cfg->slow_call_ns == 0)
		bad = "slow_call_ms: must be at least 1";
	else if (cfg->half_open_calls < 1 || cfg->half_open_calls > 1000)
		bad = "half_open_calls: out of range (1-1000)";
	if (!bad)
		return 0;
	if (err)
		snprintf(err, errlen, "breaker %s", bad);
	return -EINVAL;
}

static const char *const window_names[] = {"count", "time", NULL}; /* enum breaker_window */

#define F(f) CONFPARSE_FIELD(struct breaker_config, f)

static const struct confparse_opt breaker_opts[] = {
    {"window", NULL, NULL, CONFPARSE_ENUM, F(window), .choices = window_names},
    {"window_size", NULL, NULL, CONFPARSE_INT, F(window_size), 1, BREAKER_MAX_WINDOW},
    {"minimum_calls", NULL, NULL, CONFPARSE_INT, F(minimum_calls), 1, 100000},
    {"failure_rate", NULL, NULL, CONFPARSE_INT, F(failure_rate_pct), 1, 100},
    {"slow_call_ms", NULL, NULL, CONFPARSE_INT, F(slow_call_ns), 1, 3600000, .scale = 1000000},
    {"slow_rate", NULL, NULL, CONFPARSE_INT, F(slow_rate_pct), 1, 100},
    {"open_wait_ms", NULL, NULL, CONFPARSE_INT, F(open_wait_ns), 0, 86400000, .scale = 1000000},
    {"half_open_calls", NULL, NULL, CONFPARSE_INT, F(half_open_calls), 1, 1000},
};

const struct confparse_table breaker_config_table = CONFPARSE_TABLE_OF(breaker_opts);

int breaker_config_set(struct breaker_config *cfg, const char *key, const char *value, char *err,
		       size_t errlen)
{
	return confparse_set(&breaker_config_table, cfg, key, value, err, errlen);
}

static void window_reset(struct breaker *b, uint64_t now)
{
	b->calls = b->failed = b->slow = 0;
	b->head = b->filled = 0;
	if (b->buckets)
		memset(b->buckets, 0, sizeof(*b->buckets) * b->cfg.window_size);
	b->last_sec = now / NS_PER_SEC;
}

static void totals_sub(struct breaker *b, uint32_t calls, uint32_t failed, uint32_t slow)
{
	b->calls -= calls;
	b->failed -= failed;
	b->slow -= slow;
}

/* Clear the buckets of every second between the last record and now (time window). */
static void window_advance(struct breaker *b, uint64_t now)
{
	uint64_t sec = now / NS_PER_SEC, steps;
	uint32_t n = b->cfg.window_size;

	if (sec <= b->last_sec)
		return;
	steps = sec - b->last_sec < n ? sec - b->last_sec : n;
	for (uint64_t i = 1; i <= steps; i++) {
		struct tw_bucket *k = &b->buckets[(sec - steps + i) % n];

		totals_sub(b, k->calls, k->failed, k->slow);
		*k = (struct tw_bucket){.sec = sec - steps + i};
	}
	b->last_sec = sec;
}

static void window_add(struct breaker *b, uint8_t out, uint64_t now)
{
	uint32_t n = b->cfg.window_size;
	bool failed = out & OUT_FAILED, slow = out & OUT_SLOW;

	if (b->cfg.window == BREAKER_WINDOW_COUNT) {
		if (b->filled == n) {
			uint8_t old = b->ring[b->head];

			totals_sub(b, 1, !!(old & OUT_FAILED), !!(old & OUT_SLOW));
		} else {
			b->filled++;
		}
		b->ring[b->head] = out;
		b->head = (b->head + 1) % n;
	} else {
		struct tw_bucket *k;

		window_advance(b, now);
		k = &b->buckets[b->last_sec % n];
		k->calls++;
		k->failed += failed;
		k->slow += slow;
	}
	b->calls++;
	b->failed += failed;
	b->slow += slow;
}

static struct breaker_snapshot snapshot(uint32_t calls, uint32_t failed, uint32_t slow,
					uint64_t epoch)
{
	return (struct breaker_snapshot){
	    .calls = calls,
	    .failed = failed,
	    .slow = slow,
	    .failure_rate_pct = calls ? failed * 100 / calls : 0,
	    .slow_rate_pct = calls ? slow * 100 / calls : 0,
	    .epoch = epoch,
	};
}

static bool over_threshold(const struct breaker *b, uint32_t calls, uint32_t failed, uint32_t slow)
{
	return (uint64_t)failed * 100 >= (uint64_t)b->cfg.failure_rate_pct * calls ||
	       (uint64_t)slow * 100 >= (uint64_t)b->cfg.slow_rate_pct * calls;
}

static void set_state(struct breaker *b, enum breaker_state to, struct breaker_snapshot why,
		      uint64_t now, struct transition *t)
{
	t->happened = true;
	t->from = b->state;
	t->to = to;
	b->state = to;
	b->epoch++;
	why.epoch = b->epoch;
	t->why = why;
	if (to == BREAKER_OPEN) {
		b->opened_at = now;
		b->st.opened++;
	} else if (to == BREAKER_HALF_OPEN) {
		b->probes_taken = b->probes_done = b->probes_failed = b->probes_slow = 0;
		b->st.half_opened++;
	} else {
		window_reset(b, now);
		b->st.closed++;
	}
}

static void report(struct breaker *b, const struct transition *t)
{
	if (t->happened && b->on_transition)
		b->on_transition(b->cb_ctx, b->name, t->from, t->to, &t->why);
}

struct breaker *breaker_new(const char *name, const struct breaker_config *cfg,
			    breaker_clock_fn *clock, void *clock_ctx,
			    breaker_transition_fn *on_transition, void *cb_ctx)
{
	struct breaker *b;

	if (breaker_config_check(cfg, NULL, 0)) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->cfg = *cfg;
	/* as in resilience4j, a count window never waits for more calls than it holds */
	if (cfg->window == BREAKER_WINDOW_COUNT && b->cfg.minimum_calls > cfg->window_size)
		b->cfg.minimum_calls = cfg->window_size;
	b->clock = clock ? clock : clock_monotonic;
	b->clock_ctx = clock_ctx;
	b->on_transition = on_transition;
	b->cb_ctx = cb_ctx;
	if (cfg->window == BREAKER_WINDOW_COUNT)
		b->ring = calloc(cfg->window_size, 1);
	else
		b->buckets = calloc(cfg->window_size, sizeof(*b->buckets));
	if (!b->ring && !b->buckets) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	window_reset(b, b->clock(b->clock_ctx));
	return b;
}

void breaker_free(struct breaker *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b->ring);
	free(b->buckets);
	free(b);
}

int breaker_acquire(struct breaker *b, struct breaker_permit *p)
{
	struct transition t = {0};
	uint64_t now = b->clock(b->clock_ctx);
	int ret = 0;

	pthread_mutex_lock(&b->lock);
	if (b->state == BREAKER_OPEN && now - b->opened_at >= b->cfg.open_wait_ns)
		set_state(b, BREAKER_HALF_OPEN, snapshot(0, 0, 0, 0), now, &t);
	if (b->state == BREAKER_OPEN ||
	    (b->state == BREAKER_HALF_OPEN && b->probes_taken >= b->cfg.half_open_calls)) {
		b->st.rejected++;
		ret = -EBUSY;
	} else {
		p->epoch = b->epoch;
		p->probe = b->state == BREAKER_HALF_OPEN;
		b->probes_taken += p->probe;
		b->st.permitted++;
	}
	pthread_mutex_unlock(&b->lock);
	report(b, &t);
	return ret;
}

/* A probe finished: once all of them have, they decide CLOSED or OPEN. */
static void probe_done(struct breaker *b, uint8_t out, uint64_t now, struct transition *t)
{
	uint32_t n = b->cfg.half_open_calls;
	struct breaker_snapshot why;

	b->probes_done++;
	b->probes_failed += !!(out & OUT_FAILED);
	b->probes_slow += !!(out & OUT_SLOW);
	if (b->probes_done < n)
		return;
	why = snapshot(n, b->probes_failed, b->probes_slow, 0);
	if (over_threshold(b, n, b->probes_failed, b->probes_slow))
		set_state(b, BREAKER_OPEN, why, now, t);
	else
		set_state(b, BREAKER_CLOSED, why, now, t);
}

bool breaker_record(struct breaker *b, const struct breaker_permit *p, bool failed,
		    uint64_t duration_ns)
{
	struct transition t = {0};
	uint64_t now = b->clock(b->clock_ctx);
	bool slow = duration_ns >= b->cfg.slow_call_ns;
	uint8_t out = (failed ? OUT_FAILED : 0) | (slow ? OUT_SLOW : 0);

	pthread_mutex_lock(&b->lock);
	if (failed)
		b->st.failures++;
	else
		b->st.successes++;
	b->st.slow_calls += slow;
	if (p->epoch != b->epoch) {
		/* acquired in an earlier state: counted, but it decides nothing now */
	} else if (b->state == BREAKER_HALF_OPEN && p->probe) {
		probe_done(b, out, now, &t);
	} else if (b->state == BREAKER_CLOSED) {
		window_add(b, out, now);
		if (b->calls >= b->cfg.minimum_calls &&
		    over_threshold(b, b->calls, b->failed, b->slow))
			set_state(b, BREAKER_OPEN, snapshot(b->calls, b->failed, b->slow, 0), now,
				  &t);
	}
	pthread_mutex_unlock(&b->lock);
	report(b, &t);
	return slow;
}

void breaker_release(struct breaker *b, const struct breaker_permit *p)
{
	pthread_mutex_lock(&b->lock);
	if (p->probe && p->epoch == b->epoch && b->probes_taken > 0)
		b->probes_taken--;
	b->st.permitted--;
	pthread_mutex_unlock(&b->lock);
}

enum breaker_state breaker_state(struct breaker *b)
{
	enum breaker_state s;

	pthread_mutex_lock(&b->lock);
	s = b->state;
	pthread_mutex_unlock(&b->lock);
	return s;
}

void breaker_stats(struct breaker *b, struct breaker_stats *st)
{
	uint64_t now = b->clock(b->clock_ctx);

	pthread_mutex_lock(&b->lock);
	if (b->state == BREAKER_CLOSED && b->buckets)
		window_advance(b, now);
	*st = b->st;
	st->state = b->state;
	if (b->state == BREAKER_HALF_OPEN)
		st->window = snapshot(b->probes_done, b->probes_failed, b->probes_slow, b->epoch);
	else
		st->window = snapshot(b->calls, b->failed, b->slow, b->epoch);
	pthread_mutex_unlock(&b->lock);
}

uint64_t breaker_open_remaining_ns(struct breaker *b)
{
	uint64_t now = b->clock(b->clock_ctx), left = 0;

	pthread_mutex_lock(&b->lock);
	if (b->state == BREAKER_OPEN && now - b->opened_at < b->cfg.open_wait_ns)
		left = b->cfg.open_wait_ns - (now - b->opened_at);
	pthread_mutex_unlock(&b->lock);
	return left;
}

const char *breaker_name(const struct breaker *b)
{
	return b->name;
}

const char *breaker_state_name(enum breaker_state s)
{
	switch (s) {
	case BREAKER_CLOSED:
		return "closed";
	case BREAKER_OPEN:
		return "open";
	case BREAKER_HALF_OPEN:
		return "half_open";
	}
	return "unknown";
}
