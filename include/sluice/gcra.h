/* SPDX-License-Identifier: MIT */
/* gcra.h -- Generic Cell Rate Algorithm, shared verbatim by the XDP program, daemon and CLI
 *
 * One limit is one __u64 "theoretical arrival time" (tat, CLOCK_MONOTONIC ns) and a config
 * (interval_ns = 1e9/rate, burst). A request at `now` is admitted when, after charging it,
 * the tat is no further ahead of now than burst intervals:
 *
 *	base = max(tat, now); new = base + interval
 *	new - now > burst * interval  -> reject, retry after (new - now - burst * interval)
 *	else                           -> tat = new (compare-and-swap; retry on a race)
 *
 * From idle exactly `burst` requests pass at once, then one per interval. The clock going
 * backwards never creates credit (base stays at the old tat). Near the top of the range
 * nothing wraps: a tat that would pass 2^64-1 rejects, and the tolerance saturates.
 *
 * Requires __u64 (vmlinux.h in BPF, <linux/types.h> in userspace); no libc, no division
 * on the common path (burst and interval below 2^32). gcra_admit() is lock-free and exact
 * under concurrency: a pass is only counted by the CPU whose CAS installed its tat.
 */
#ifndef SLUICE_GCRA_H
#define SLUICE_GCRA_H

#ifndef GCRA_CAS_TRIES
#define GCRA_CAS_TRIES 8 /* bounded for the verifier; losing 8 races in a row rejects */
#endif

#define GCRA_U64_MAX (~(__u64)0)

enum gcra_result {
	GCRA_REJECT = 0,
	GCRA_PASS = 1,
};

/* Tolerance burst * interval, saturating; the common case has no division. */
static inline __u64 gcra_tolerance(__u64 interval_ns, __u64 burst)
{
	if (!((interval_ns | burst) >> 32))
		return interval_ns * burst;
	if (interval_ns) {
		__u64 iv = interval_ns, limit;

		/* the first barrier keeps the division inside this rare branch (it cannot trap,
		 * so clang would hoist it onto every packet's path); the second keeps clang from
		 * fusing it into a 128-bit multiply-overflow check, which the BPF backend cannot
		 * lower (__multi3) */
		__asm__ volatile("" : "+r"(iv));
		limit = GCRA_U64_MAX / iv;
		__asm__ volatile("" : "+r"(limit));
		if (burst > limit)
			return GCRA_U64_MAX;
	}
	return interval_ns * burst;
}

/* Pure decision: given the current tat, may one cell pass at `now`? On PASS stores the
 * tat to install in *new_tat; on REJECT stores in *retry_ns how long until one would pass.
 * interval_ns == 0 means unlimited (always PASS, tat unchanged). */
static inline int gcra_decide(__u64 tat, __u64 now, __u64 interval_ns, __u64 burst, __u64 *new_tat,
			      __u64 *retry_ns)
{
	__u64 base, next, ahead, tol;

	if (!interval_ns) {
		*new_tat = tat;
		return GCRA_PASS;
	}
	base = tat > now ? tat : now;
	next = base + interval_ns;
	if (next < base) {
		/* past the end of the clock: never pass, never wrap into credit */
		*retry_ns = GCRA_U64_MAX;
		return GCRA_REJECT;
	}
	ahead = next - now; /* next > base >= now */
	tol = gcra_tolerance(interval_ns, burst);
	if (ahead > tol) {
		*retry_ns = ahead - tol;
		return GCRA_REJECT;
	}
	*new_tat = next;
	return GCRA_PASS;
}

/* Admit one cell against the shared state *tat (lock-free). Returns GCRA_PASS or
 * GCRA_REJECT; on REJECT *retry_ns says when to retry (0 if rejected by contention). */
static inline int gcra_admit(__u64 *tat, __u64 now, __u64 interval_ns, __u64 burst, __u64 *retry_ns)
{
	__u64 old, new_tat = 0;
	int i;

	*retry_ns = 0;
	if (!interval_ns)
		return GCRA_PASS;
	old = *(volatile __u64 *)tat;
	for (i = 0; i < GCRA_CAS_TRIES; i++) {
		__u64 seen;

		if (gcra_decide(old, now, interval_ns, burst, &new_tat, retry_ns) == GCRA_REJECT)
			return GCRA_REJECT;
		seen = __sync_val_compare_and_swap(tat, old, new_tat);
		if (seen == old)
			return GCRA_PASS;
		old = seen;
	}
	return GCRA_REJECT;
}

/* Credits a limit has left at `now` (for display): how many cells would pass at once. */
static inline __u64 gcra_credits(__u64 tat, __u64 now, __u64 interval_ns, __u64 burst)
{
	__u64 ahead, used;

	if (!interval_ns)
		return GCRA_U64_MAX;
	if (tat <= now)
		return burst;
	/* each cell in flight moved tat one interval ahead of now */
	ahead = tat - now;
	used = ahead / interval_ns + (ahead % interval_ns != 0);
	return used >= burst ? 0 : burst - used;
}

#endif /* SLUICE_GCRA_H */
