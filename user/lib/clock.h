/* SPDX-License-Identifier: MIT */
/* clock.h -- nanosecond clock readings and absolute deadlines, one copy for the whole tree
 *
 * CLOCK_MONOTONIC is the clock of bpf_ktime_get_ns() and of every interval, lag and timeout
 * Sluice measures. CLOCK_REALTIME is for wall-clock stamps and for the deadlines of condition
 * variables that keep their default clock. Readings are unsigned 64-bit nanoseconds (good
 * for 584 years); clock_gettime cannot fail for these two clocks, so there is no error path.
 * Header-only, so tools and tests use it without linking anything.
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CLOCK_NS_PER_SEC 1000000000ULL

/* Now on clock id, in ns. */
static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * CLOCK_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC now, in ns. */
static inline uint64_t clock_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* CLOCK_REALTIME now, in ns since the epoch. */
static inline uint64_t clock_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* CLOCK_MONOTONIC now in seconds and in milliseconds, as doubles: for measuring and
 * reporting durations (benchmarks, test timeouts), where a double's 53 bits are plenty. */
static inline double clock_mono_s(void)
{
	return (double)clock_mono_ns() / 1e9;
}

static inline double clock_mono_ms(void)
{
	return (double)clock_mono_ns() / 1e6;
}

/* ns as a timespec (for clock_nanosleep and the *_timedwait calls). */
static inline struct timespec clock_ts(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / CLOCK_NS_PER_SEC),
				 .tv_nsec = (long)(ns % CLOCK_NS_PER_SEC)};
}

/* The absolute time after_ns from now on clock id: a deadline for pthread_cond_timedwait
 * (which must wait on the clock its condition variable was made with). */
static inline struct timespec clock_deadline(clockid_t id, uint64_t after_ns)
{
	return clock_ts(clock_ns(id) + after_ns);
}

#endif /* SLUICE_CLOCK_H */
