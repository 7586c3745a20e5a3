// SPDX-License-Identifier: MIT
/* lease_cost.c -- ns per request of the daemon's REQ admission with a cluster share in force
 * (leases on) vs the tenant's own limit (leases off), against a bare GCRA anchor
 *
 * The only per-request work leases add is in admission_request(): read the share bit and,
 * when set, the share's interval and burst (atomic loads from the share array), and count
 * the demand (one relaxed increment). Everything else -- the Redis exchange, the split --
 * runs on the cluster thread once a period. This times admission_request() for one tenant
 * in a tight loop, rounds interleaving: share set (on), share cleared (off), and a bare
 * gcra_admit() on the same kind of state (the anchor: the arithmetic alone). Limits are huge,
 * so every request passes and does its compare-and-swap like real traffic. Prints medians of
 * ns/request and the ratios on/off and on/anchor.
 *
 * Usage: lease_cost [-n REQUESTS] [-r ROUNDS]   (defaults 5000000, 7)
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit/admission.h"
#include "bench_stats.h"
#include "lib/clock.h"
#include "sluice/gcra.h"

#define MAX_ROUNDS 101

static volatile unsigned sink;

static double time_admission(struct admission *a, const struct tenant *t, long n)
{
	struct sluice_addr peer = {.a = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 1}};
	uint64_t retry, now = clock_mono_ns(), t0 = now;

	for (long i = 0; i < n; i++)
		sink += admission_request(a, t, NULL, &peer, now + (uint64_t)i, &retry);
	return (double)(clock_mono_ns() - t0) / (double)n;
}

static double time_anchor(const struct sluice_limit *l, long n)
{
	static __u64 tat __attribute__((aligned(64)));
	__u64 retry;
	uint64_t now = clock_mono_ns(), t0 = now;

	for (long i = 0; i < n; i++)
		sink +=
		    (unsigned)gcra_admit(&tat, now + (uint64_t)i, l->interval_ns, l->burst, &retry);
	return (double)(clock_mono_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
	long n = 5000000;
	int rounds = 7, opt;
	double on[MAX_ROUNDS], off[MAX_ROUNDS], anchor[MAX_ROUNDS], mon, moff, manc;
	struct admission_opts ao = {0};
	struct tenant t = {.name = "bench", .slot = SLUICE_SLOT_FIRST};
	struct sluice_limit huge = {.interval_ns = 1, .burst = 4000000000ULL};
	struct admission *a;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n')
			n = atol(optarg);
		else if (opt == 'r')
			rounds = atoi(optarg);
		else {
			fprintf(stderr, "usage: lease_cost [-n REQUESTS] [-r ROUNDS]\n");
			return 2;
		}
	}
	if (n < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "lease_cost: -n >= 1, 1 <= -r <= %d\n", MAX_ROUNDS);
		return 2;
	}
	t.limit[SLUICE_LIMIT_REQ] = huge;
	a = admission_new(&ao, NULL, "benchmark: userspace state");
	if (!a) {
		perror("lease_cost: admission_new");
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		admission_share_set(a, t.slot, SLUICE_LIMIT_REQ, &huge, SLUICE_SHARE_LEASE,
				    clock_mono_ns());
		on[r] = time_admission(a, &t, n);
		admission_share_clear(a);
		off[r] = time_admission(a, &t, n);
		anchor[r] = time_anchor(&huge, n);
	}
	mon = bench_median(on, (size_t)rounds);
	moff = bench_median(off, (size_t)rounds);
	manc = bench_median(anchor, (size_t)rounds);
	printf("REQ admission per request, %ld requests x %d rounds (medians):\n", n, rounds);
	printf("  leases on  (share in force): %6.1f ns\n", mon);
	printf("  leases off (tenant's limit): %6.1f ns\n", moff);
	printf("  anchor (bare gcra_admit):    %6.1f ns\n", manc);
	printf("  ratio on/off: %.3f   on/anchor: %.2f\n", mon / moff, mon / manc);
	admission_free(a);
	return 0;
}
