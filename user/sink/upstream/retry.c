// SPDX-License-Identifier: MIT
/* retry.c -- capped exponential backoff with full jitter, retry budget, Retry-After
 *
 * The budget is lock-free: one int64 of milli-tokens updated with compare-and-swap, so
 * every pool thread of an upstream shares it without a lock. Backoff arithmetic saturates
 * instead of overflowing (base * 2^63 would wrap). Retry-After dates are parsed in the
 * three forms RFC 9110 obliges a recipient to accept, with strptime in the C locale.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/array_size.h"
#include "lib/clock.h"
#include "lib/confparse.h"
#include "sink/upstream/retry.h"

#define MS  1000000ULL
#define SEC 1000000000ULL

void retry_policy_default(struct retry_policy *p)
{
	*p = (struct retry_policy){
	    .max_attempts = 300,
	    .base_ns = 1 * SEC,
	    .cap_ns = 600 * SEC,
	    .budget_pct = 10,
	    .budget_burst = 10,
	    .retry_after_max_ns = 30 * SEC,
	    .max_age_ns = 24 * 3600 * SEC,
	    .budget_refill_per_s = 1,
	};
}

#define F(f) CONFPARSE_FIELD(struct retry_policy, f)

static const struct confparse_opt retry_opts[] = {
    {"max_attempts", NULL, NULL, CONFPARSE_INT, F(max_attempts), 1, 100000},
    {"max_age_ms", NULL, NULL, CONFPARSE_INT, F(max_age_ns), 1000, 30.0 * 24 * 3600 * 1000,
     .scale = MS},
    {"budget_refill_per_s", NULL, NULL, CONFPARSE_INT, F(budget_refill_per_s), 0, 100000},
    {"base_ms", NULL, NULL, CONFPARSE_INT, F(base_ns), 1, 3600000, .scale = MS},
    {"cap_ms", NULL, NULL, CONFPARSE_INT, F(cap_ns), 1, 3600000, .scale = MS},
    {"budget_pct", NULL, NULL, CONFPARSE_INT, F(budget_pct), 0, 100},
    {"budget_burst", NULL, NULL, CONFPARSE_INT, F(budget_burst), 0, 100000},
    {"retry_after_max_ms", NULL, NULL, CONFPARSE_INT, F(retry_after_max_ns), 0, 86400000,
     .scale = MS},
};

const struct confparse_table retry_policy_table = CONFPARSE_TABLE_OF(retry_opts);

int retry_policy_set(struct retry_policy *p, const char *key, const char *value, char *err,
		     size_t errlen)
{
	return confparse_set(&retry_policy_table, p, key, value, err, errlen);
}

uint64_t retry_backoff_ns(const struct retry_policy *p, uint32_t n, uint64_t rnd)
{
	uint64_t ceiling = p->base_ns;

	for (uint32_t i = 1; i < n && ceiling < p->cap_ns; i++)
		ceiling = ceiling > UINT64_MAX / 2 ? UINT64_MAX : ceiling * 2;
	if (ceiling > p->cap_ns)
		ceiling = p->cap_ns;
	return ceiling == UINT64_MAX ? rnd : rnd % (ceiling + 1);
}

uint64_t retry_rand(void)
{
	static __thread uint64_t s;
	uint64_t x;

	while (!s) {
		if (getrandom(&s, sizeof(s), 0) != sizeof(s))
			s = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&s;
	}
	/* xorshift64* */
	x = s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void retry_budget_init(struct retry_budget *b, const struct retry_policy *p)
{
	*b = (struct retry_budget){
	    .cap = (int64_t)p->budget_burst * 1000,
	    .milli = (int64_t)p->budget_burst * 1000,
	    .deposit = (int64_t)p->budget_pct * 10,
	    .refill_milli_per_s = (int64_t)p->budget_refill_per_s * 1000,
	    .refill_ns = clock_mono_ns(),
	};
}

/* Add the tokens earned by time since the last refill (whoever moves refill_ns adds them). */
static void budget_refill(struct retry_budget *b)
{
	uint64_t last = __atomic_load_n(&b->refill_ns, __ATOMIC_RELAXED), now = clock_mono_ns();
	int64_t add, cur, next;

	if (!b->refill_milli_per_s || now <= last)
		return;
	add = (int64_t)((now - last) / 1000000) * b->refill_milli_per_s / 1000;
	if (add <= 0) /* less than a milli-token so far: leave the time for the next caller */
		return;
	if (!__atomic_compare_exchange_n(&b->refill_ns, &last, now, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return;
	cur = __atomic_load_n(&b->milli, __ATOMIC_RELAXED);
	do {
		next = cur + add > b->cap ? b->cap : cur + add;
	} while (!__atomic_compare_exchange_n(&b->milli, &cur, next, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

void retry_budget_on_call(struct retry_budget *b)
{
	int64_t cur = __atomic_load_n(&b->milli, __ATOMIC_RELAXED), next;

	__atomic_fetch_add(&b->calls, 1, __ATOMIC_RELAXED);
	do {
		next = cur + b->deposit > b->cap ? b->cap : cur + b->deposit;
		if (next == cur)
			return;
	} while (!__atomic_compare_exchange_n(&b->milli, &cur, next, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

bool retry_budget_withdraw(struct retry_budget *b)
{
	int64_t cur;

	budget_refill(b);
	cur = __atomic_load_n(&b->milli, __ATOMIC_RELAXED);
	do {
		if (cur < 1000) {
			__atomic_fetch_add(&b->denied, 1, __ATOMIC_RELAXED);
			return false;
		}
	} while (!__atomic_compare_exchange_n(&b->milli, &cur, cur - 1000, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	__atomic_fetch_add(&b->retries, 1, __ATOMIC_RELAXED);
	return true;
}

static int parse_http_date(const char *value, time_t *t)
{
	static const char *const formats[] = {
	    "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
	    "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
	    "%a %b %e %H:%M:%S %Y",	 /* asctime: Sun Nov  6 08:49:37 1994 */
	};

	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		struct tm tm = {0};
		const char *end = strptime(value, formats[i], &tm);

		while (end && (*end == ' ' || *end == '\t'))
			end++;
		if (end && !*end) {
			*t = timegm(&tm);
			return *t == (time_t)-1 ? -EINVAL : 0;
		}
	}
	return -EINVAL;
}

int retry_after_parse(const char *value, time_t now, uint64_t *delay_ns)
{
	const char *s = value;
	uint64_t secs = 0;
	time_t t;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s >= '0' && *s <= '9') {
		for (; *s >= '0' && *s <= '9'; s++)
			secs = secs > UINT32_MAX ? secs : secs * 10 + (uint64_t)(*s - '0');
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s)
			return -EINVAL;
		*delay_ns = (secs > UINT32_MAX ? UINT32_MAX : secs) * SEC;
		return 0;
	}
	if (parse_http_date(s, &t))
		return -EINVAL;
	*delay_ns = t > now ? (uint64_t)(t - now) * SEC : 0;
	return 0;
}

static void give_up(struct retry_decision *d, const char *reason, uint64_t later_ns)
{
	d->verdict = RETRY_GIVE_UP;
	d->reason = reason;
	d->delay_ns = later_ns;
}

void retry_decide(const struct retry_policy *p, struct retry_budget *b, uint32_t attempts,
		  bool retryable, int http_status, uint64_t retry_after_ns, uint64_t rnd,
		  struct retry_decision *d)
{
	bool honour = retry_after_ns && (http_status == 429 || http_status == 503);
	uint64_t delay;

	(void)b;
	if (!retryable)
		return give_up(d, "not retryable", 0);
	if (attempts >= p->max_attempts)
		return give_up(d, "attempts exhausted", honour ? retry_after_ns : 0);
	delay = retry_backoff_ns(p, attempts, rnd);
	d->verdict = RETRY_AFTER_DELAY;
	d->reason = "backoff";
	if (honour && retry_after_ns > delay) {
		delay = retry_after_ns;
		d->reason = retry_after_ns > p->retry_after_max_ns ? "retry-after (long: parked)"
								   : "retry-after";
	}
	d->delay_ns = delay;
}
