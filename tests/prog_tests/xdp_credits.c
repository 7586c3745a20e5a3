// SPDX-License-Identifier: MIT
/* xdp_credits.c -- SYN and PKT credits, emergency shedding, dry-run, per-CPU counters
 *
 * Credits are GCRA states; the expected number of passes is computed from the tat the
 * program left behind and from clock readings taken around the sends, never from assumed
 * timing (a tat the program stamps may lag those readings by xfx_clock_slack(): passes
 * are judged on the exact clock, but an idle limit's schedule starts on the tick clock): from idle
 * exactly `burst` pass as long as the sends take less than one interval (intervals here are 100 ms
 * or more, sends take microseconds; if the machine stalls longer the bound widens by the measured
 * elapsed time and says so). After the burst, k more pass at time now where k = floor((now - tat) /
 * interval) + burst.
 *
 * Shedding is sampled with bpf_get_prandom_u32(): over 10,000 SYNs at 500 permille the
 * standard deviation is 50, so the issue's +-5 % (250) is five sigmas (a class at 300
 * permille is sampled over 20,000 SYNs for the same margin).
 */
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/array_size.h"
#include "lib/clock.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define DST  "192.0.2.1"
#define DST6 "2001:db8::1"
#define PORT 443
#define MS   1000000ULL
#define SEC  1000000000ULL

static bool setup(struct xfx *x)
{
	return ASSERT_OK(xfx_port(x, PORT, SLUICE_PORT_TCP | SLUICE_PORT_UDP), "port") &&
	       ASSERT_OK(
		   xfx_tenant(x, SLUICE_SLOT_ANON, "(anonymous)", SLUICE_CLASS_LOW, 0, 0, 0, 0),
		   "anon unlimited") &&
	       ASSERT_OK(xfx_set_shed(x, SLUICE_SHED_NORMAL, 0, 0, 0), "no shedding");
}

/* Send n frames of kind (SYN, ACK or UDP) from src; returns how many got XDP_PASS, or -1
 * when a run failed. */
static int send_n(struct xfx *x, const char *src, int kind, int n)
{
	struct pkt_spec s;
	struct pkt p;
	int i, passed = 0, ret;

	const char *dst = strchr(src, ':') ? DST6 : DST;

	if (kind == IPPROTO_UDP)
		pkt_spec_udp(&s, src, dst, PORT);
	else
		pkt_spec_tcp(&s, src, dst, PORT, (__u8)kind);
	if (pkt_build(&p, &s))
		return -1;
	for (i = 0; i < n; i++) {
		ret = xfx_run(x, p.buf, p.len);
		if (ret != XDP_PASS && ret != XDP_DROP)
			return -1;
		passed += ret == XDP_PASS;
	}
	return passed;
}

/* Same, n runs in one BPF_PROG_TEST_RUN call (repeat): the verdicts are in the counters.
 * *run_ns (may be NULL) gets the kernel-measured time of the n runs themselves -- the call
 * around them also swaps the XDP dispatcher, which alone takes milliseconds. */
static int send_repeat(struct xfx *x, const char *src, __u8 flags, int n, __u64 *run_ns)
{
	struct pkt_spec s;
	struct pkt p;
	__u32 mean = 0;
	int ret;

	pkt_spec_tcp(&s, src, DST, PORT, flags);
	if (pkt_build(&p, &s))
		return -EINVAL;
	ret = sluice_bpf_test_run(x->b, p.buf, p.len, n, &mean);
	if (run_ns)
		*run_ns = (__u64)mean * (__u64)n + (__u64)n; /* mean is rounded down */
	return ret;
}

/* Passes a limit whose tat is `tat` allows at `now` (at most n): the whole burst when idle
 * (tat <= now), else burst minus the intervals tat is ahead of now, rounded up. */
static long long passes_at(__u64 tat, __u64 now, __u64 interval, __u64 burst, int n)
{
	long long k = (long long)burst;

	if (tat > now)
		k -= (long long)((tat - now + interval - 1) / interval);
	return k < 0 ? 0 : k > n ? n : k;
}

static void subtest_syn_burst_then_rate(struct xfx *x)
{
	const __u64 slack = xfx_clock_slack();
	const __u64 iv = 100 * MS, burst = 10;
	long long lo, hi, passed;
	__u64 t0, t1, tat;

	ASSERT_OK(xfx_tenant(x, 2, "syn", SLUICE_CLASS_NORMAL, iv, burst, 0, 0), "tenant");
	ASSERT_OK(xfx_src_exact(x, "10.0.0.2", 2), "src");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	t0 = clock_mono_ns();
	passed = send_n(x, "10.0.0.2", PKT_SYN, 25);
	t1 = clock_mono_ns();
	if (t1 - t0 < iv)
		ASSERT_EQ(passed, (long long)burst, "exactly burst from idle");
	else
		printf("sends took %llu ns > one interval: bound widened\n", t1 - t0);
	ASSERT_GE(passed, (long long)burst, "at least burst");
	ASSERT_LE(passed, (long long)(burst + (t1 - t0) / iv + 1), "no more than elapsed allows");
	ASSERT_EQ(xfx_count(x, 2, SLUICE_V_PASS, NULL), passed, "PASS counted");
	ASSERT_EQ(xfx_count(x, 2, SLUICE_V_SYN_LIMIT, NULL), 25 - passed, "SYN_LIMIT counted");
	tat = xfx_tat(x, 2, SLUICE_LIMIT_SYN);
	ASSERT_GE(tat, t0 - slack + passed * iv, "tat advanced one interval per pass");
	ASSERT_LE(tat, t1 + passed * iv, "tat not beyond");
	ASSERT_EQ(xfx_tat(x, 2, SLUICE_LIMIT_PKT), 0, "unlimited PKT leaves its tat alone");

	/* data packets use PKT credit only */
	ASSERT_EQ(send_n(x, "10.0.0.2", PKT_ACK, 5), 5, "ACKs pass");
	ASSERT_EQ(send_n(x, "10.0.0.2", PKT_SYN | PKT_ACK, 3), 3, "SYN-ACKs are not new conns");
	ASSERT_EQ(xfx_tat(x, 2, SLUICE_LIMIT_SYN), tat, "SYN tat untouched by non-SYNs");

	/* then the rate: after ~3.5 intervals, 3 more (computed from the tat and the clock) */
	usleep(350000);
	t0 = clock_mono_ns();
	passed = send_n(x, "10.0.0.2", PKT_SYN, 20);
	t1 = clock_mono_ns();
	lo = passes_at(tat, t0, iv, burst, 20);
	hi = passes_at(tat, t1, iv, burst, 20);
	printf("rate: %lld passed, expected %lld..%lld after %.1f ms\n", passed, lo, hi,
	       (t0 - (tat - burst * iv)) / 1e6);
	ASSERT_GE(passed, lo, "rate lower bound");
	ASSERT_LE(passed, hi, "rate upper bound");
	ASSERT_GE(passed, 1, "credit came back");
	ASSERT_EQ(xfx_tat(x, 2, SLUICE_LIMIT_SYN), tat + passed * iv, "tat moved by passes");
}

/* From idle at a rate faster than the tick (10,000/s, burst 50): 200 SYNs in one
 * BPF_PROG_TEST_RUN call (microseconds). With SLUICE_CFG_EXACT_CLOCK exactly the burst
 * passes; on the default tick clock the schedule may start up to one tick early, so up to
 * a tick's worth of credit more (the documented bound), never less than the burst. */
static void subtest_burst_from_idle_fast_rate(struct xfx *x)
{
	const __u64 iv = 100000, burst = 50, slack = xfx_clock_slack();
	long long passed;
	__u64 runs;
	int mode;

	for (mode = 0; mode < 2; mode++) {
		ASSERT_OK(xfx_set_flags(x, mode ? SLUICE_CFG_EXACT_CLOCK : 0), "clock mode");
		ASSERT_OK(xfx_tenant(x, 2, "fast", SLUICE_CLASS_NORMAL, iv, burst, 0, 0), "idle");
		ASSERT_OK(xfx_src_exact(x, "10.0.0.2", 2), "src");
		ASSERT_OK(xfx_bump_generation(x), "bump");
		passed = xfx_count(x, 2, SLUICE_V_PASS, NULL);
		ASSERT_GE(send_repeat(x, "10.0.0.2", PKT_SYN, 200, &runs), 0, "send");
		passed = xfx_count(x, 2, SLUICE_V_PASS, NULL) - passed;
		printf("%s clock: %lld of 200 passed from idle, runs took %llu ns (burst %llu)\n",
		       mode ? "exact" : "tick", passed, (unsigned long long)runs,
		       (unsigned long long)burst);
		ASSERT_GE(passed, (long long)burst, "at least the burst");
		if (mode && runs < iv)
			ASSERT_EQ(passed, (long long)burst, "exact clock: exactly the burst");
		ASSERT_LE(passed, (long long)(burst + (runs + (mode ? 0 : slack)) / iv + 1),
			  "at most burst + rate x (elapsed [+ tick])");
	}
}

/* A rate finer than the program's tick clock: 1,000/s with a burst of 1, probed 50 times,
 * each probe sent at least 1.2 intervals after the previous one had returned. Every probe
 * must pass: with the tick clock a refusal is re-decided on the exact clock (a clock that
 * moved only once per 4 ms tick would refuse most of them). Waiting longer (a loaded
 * machine) only helps a probe, so this holds under any load. With the exact clock a
 * second packet right behind a probe must be refused whenever the two went out within
 * one interval (on the tick clock it may pass: up to a tick's credit early). */
static void subtest_rate_finer_than_tick(struct xfx *x)
{
	const __u64 iv = MS;
	int mode, probe, passed, second;
	__u64 t0, t1;

	for (mode = 0; mode < 2; mode++) {
		ASSERT_OK(xfx_set_flags(x, mode ? SLUICE_CFG_EXACT_CLOCK : 0), "clock mode");
		ASSERT_OK(xfx_tenant(x, 2, "fine", SLUICE_CLASS_NORMAL, 0, 0, iv, 1), "tenant");
		ASSERT_OK(xfx_src_exact(x, "10.0.0.2", 2), "src");
		ASSERT_OK(xfx_bump_generation(x), "bump");
		passed = 0;
		t1 = 0;
		for (probe = 0; probe < 50; probe++) {
			while (clock_mono_ns() < t1 + iv + iv / 5)
				;
			t0 = clock_mono_ns();
			passed += send_n(x, "10.0.0.2", IPPROTO_UDP, 1) == 1;
			second = send_n(x, "10.0.0.2", IPPROTO_UDP, 1);
			t1 = clock_mono_ns();
			if (mode && t1 - t0 < iv)
				ASSERT_EQ(second, 0,
					  "exact clock: nothing more within the interval");
		}
		printf("%s clock: %d of 50 probes passed\n", mode ? "exact" : "tick", passed);
		ASSERT_EQ(passed, 50, "every probe after an interval passes");
	}
}

static void subtest_pkt_credits(struct xfx *x)
{
	const __u64 slack = xfx_clock_slack();
	__u64 t0, t1, syn_tat;
	long long passed;

	ASSERT_OK(xfx_tenant(x, 3, "pkt", SLUICE_CLASS_NORMAL, SEC, 100, SEC, 20), "tenant");
	ASSERT_OK(xfx_src_prefix(x, "10.3.0.0", 16, 3), "src");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	t0 = clock_mono_ns();
	passed = send_n(x, "10.3.0.1", IPPROTO_UDP, 15);
	passed += send_n(x, "10.3.0.2", PKT_SYN, 3);
	syn_tat = xfx_tat(x, 3, SLUICE_LIMIT_SYN);
	passed += send_n(x, "10.3.0.3", PKT_ACK, 10);
	passed += send_n(x, "10.3.0.2", PKT_SYN, 10);
	t1 = clock_mono_ns();
	if (t1 - t0 < SEC)
		ASSERT_EQ(passed, 20,
			  "exactly burst of packets, any kind, any source of the tenant");
	ASSERT_EQ(xfx_count(x, 3, SLUICE_V_PASS, NULL), passed, "PASS counted");
	ASSERT_EQ(xfx_count(x, 3, SLUICE_V_PKT_LIMIT, NULL), 38 - passed, "PKT_LIMIT counted");
	ASSERT_EQ(xfx_count(x, 3, SLUICE_V_SYN_LIMIT, NULL), 0, "no SYN_LIMIT");
	ASSERT_EQ(xfx_tat(x, 3, SLUICE_LIMIT_SYN), syn_tat, "PKT-limited SYNs use no SYN credit");
	ASSERT_GE(xfx_tat(x, 3, SLUICE_LIMIT_PKT), t0 - slack + passed * SEC, "PKT tat");
	ASSERT_LE(xfx_tat(x, 3, SLUICE_LIMIT_PKT), t1 + passed * SEC, "PKT tat");
}

/* Each anonymous source has its own SYN and PKT credits (slot ANON's limits) in its
 * src_state entry; the slot's shared state is not touched. */
static void subtest_anonymous_credits(struct xfx *x)
{
	const __u64 slack = xfx_clock_slack();
	struct sluice_src a, b;
	__u64 t0, t1;

	ASSERT_OK(xfx_tenant(x, SLUICE_SLOT_ANON, "(anonymous)", SLUICE_CLASS_LOW, SEC, 3, SEC, 8),
		  "anon limits");
	t0 = clock_mono_ns();
	ASSERT_EQ(send_n(x, "192.0.2.10", PKT_SYN, 5), 3, "source A: its SYN burst");
	ASSERT_EQ(send_n(x, "192.0.2.11", PKT_SYN, 5), 3, "source B: its own burst");
	ASSERT_EQ(send_n(x, "192.0.2.10", IPPROTO_UDP, 5), 3, "A: PKT burst 8, 5 used");
	t1 = clock_mono_ns();
	ASSERT_EQ(xfx_count(x, SLUICE_SLOT_ANON, SLUICE_V_PASS, NULL), 9, "PASS");
	ASSERT_EQ(xfx_count(x, SLUICE_SLOT_ANON, SLUICE_V_SYN_LIMIT, NULL), 4, "SYN_LIMIT");
	ASSERT_EQ(xfx_count(x, SLUICE_SLOT_ANON, SLUICE_V_PKT_LIMIT, NULL), 2, "PKT_LIMIT");
	if (!ASSERT_OK(xfx_src_state(x, "192.0.2.10", &a), "A state") ||
	    !ASSERT_OK(xfx_src_state(x, "192.0.2.11", &b), "B state"))
		return;
	ASSERT_GE(a.tat[0], t0 - slack + 3 * SEC, "A SYN tat: 3 passes");
	ASSERT_LE(a.tat[0], t1 + 3 * SEC, "A SYN tat");
	ASSERT_GE(a.tat[1], t0 - slack + 8 * SEC, "A PKT tat: 8 passes");
	ASSERT_LE(a.tat[1], t1 + 8 * SEC, "A PKT tat");
	ASSERT_GE(b.tat[1], t0 - slack + 5 * SEC, "B PKT tat: 5 passes");
	ASSERT_LE(b.tat[1], t1 + 5 * SEC, "B PKT tat");
	ASSERT_EQ(xfx_tat(x, SLUICE_SLOT_ANON, SLUICE_LIMIT_SYN), 0, "shared SYN untouched");
	ASSERT_EQ(xfx_tat(x, SLUICE_SLOT_ANON, SLUICE_LIMIT_PKT), 0, "shared PKT untouched");

	/* a source that becomes a tenant starts afresh on the tenant's state */
	ASSERT_OK(xfx_tenant(x, 4, "t", SLUICE_CLASS_NORMAL, 0, 0, 0, 0), "tenant");
	ASSERT_OK(xfx_src_exact(x, "192.0.2.10", 4), "A becomes tenant 4");
	ASSERT_OK(xfx_bump_generation(x), "bump");
	ASSERT_EQ(send_n(x, "192.0.2.10", PKT_SYN, 5), 5, "A as tenant: unlimited");
	ASSERT_OK(xfx_src_state(x, "192.0.2.10", &a), "A state");
	ASSERT_EQ(a.slot, 4, "A re-resolved");
	ASSERT_EQ(a.tat[0], 0, "anonymous SYN credit reset on slot change");
	ASSERT_EQ(a.tat[1], 0, "anonymous PKT credit reset on slot change");
}

static void shed_one(struct xfx *x, __u32 slot, const char *src, __u8 flags, int n,
		     long long expect_shed, long long tol, const char *what)
{
	long long shed0 = xfx_count(x, slot, SLUICE_V_SHED, NULL);
	long long pass0 = xfx_count(x, slot, SLUICE_V_PASS, NULL), shed, pass;

	ASSERT_GE(send_repeat(x, src, flags, n, NULL), 0, what);
	shed = xfx_count(x, slot, SLUICE_V_SHED, NULL) - shed0;
	pass = xfx_count(x, slot, SLUICE_V_PASS, NULL) - pass0;
	printf("%s: %lld of %d shed (expected %lld +- %lld)\n", what, shed, n, expect_shed, tol);
	ASSERT_LE(shed > expect_shed ? shed - expect_shed : expect_shed - shed, tol, what);
	ASSERT_EQ(shed + pass, n, "every SYN either shed or passed");
}

static void subtest_emergency_shed(struct xfx *x)
{
	const __u64 slack = xfx_clock_slack();
	__u64 t0, t1, tat;
	long long passed;

	ASSERT_OK(xfx_tenant(x, 2, "low", SLUICE_CLASS_LOW, SEC, 100000, 0, 0), "low");
	ASSERT_OK(xfx_tenant(x, 3, "crit", SLUICE_CLASS_CRITICAL, 0, 0, 0, 0), "crit");
	ASSERT_OK(xfx_tenant(x, 4, "normal", SLUICE_CLASS_NORMAL, 0, 0, 0, 0), "normal");
	ASSERT_OK(xfx_src_exact(x, "10.2.0.1", 2), "src low");
	ASSERT_OK(xfx_src_exact(x, "10.3.0.1", 3), "src crit");
	ASSERT_OK(xfx_src_exact(x, "10.4.0.1", 4), "src normal");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	/* permilles set but level below EMERGENCY: nothing is shed */
	ASSERT_OK(xfx_set_shed(x, SLUICE_SHED_THIN, 0, 300, 500), "thin");
	shed_one(x, 2, "10.2.0.1", PKT_SYN, 1000, 0, 0, "thin: low class");
	ASSERT_OK(xfx_tenant(x, 2, "low", SLUICE_CLASS_LOW, SEC, 100000, 0, 0), "reset tat");

	ASSERT_OK(xfx_set_shed(x, SLUICE_SHED_EMERGENCY, 0, 300, 500), "emergency");
	t0 = clock_mono_ns();
	shed_one(x, 2, "10.2.0.1", PKT_SYN, 10000, 5000, 250, "low class at 500 permille");
	t1 = clock_mono_ns();
	passed = xfx_count(x, 2, SLUICE_V_PASS, NULL) - 1000;
	tat = xfx_tat(x, 2, SLUICE_LIMIT_SYN);
	ASSERT_GE(tat, t0 - slack + passed * SEC, "shed SYNs used no SYN credit");
	ASSERT_LE(tat, t1 + passed * SEC, "shed SYNs used no SYN credit");
	/* at 300 permille 10,000 SYNs put +-5 % at only 3.3 sigmas; 20,000 give 4.6 */
	shed_one(x, 4, "10.4.0.1", PKT_SYN, 20000, 6000, 300, "normal class at 300 permille");
	shed_one(x, 3, "10.3.0.1", PKT_SYN, 10000, 0, 0, "critical class at 0 permille");
	shed_one(x, 2, "10.2.0.1", PKT_ACK, 2000, 0, 0, "data packets are never shed");

	ASSERT_OK(xfx_set_shed(x, SLUICE_SHED_EMERGENCY, 0, 1000, 0), "normal all, low none");
	shed_one(x, 4, "10.4.0.1", PKT_SYN, 1000, 1000, 0, "1000 permille sheds all");
	shed_one(x, 2, "10.2.0.1", PKT_SYN, 1000, 0, 0, "low at 0 permille");
}

/* At EMERGENCY unknown sources get no state of their own: they share slot ANON's state
 * (one source's allowance); sources that already have state keep it. */
static void subtest_emergency_no_new_state(struct xfx *x)
{
	struct sluice_src st;

	ASSERT_OK(xfx_tenant(x, SLUICE_SLOT_ANON, "(anonymous)", SLUICE_CLASS_LOW, SEC, 4, 0, 0),
		  "anon");
	ASSERT_OK(xfx_tenant(x, 2, "t", SLUICE_CLASS_NORMAL, 0, 0, 0, 0), "tenant");
	ASSERT_OK(xfx_src_exact(x, "10.2.0.9", 2), "tenant src");
	ASSERT_OK(xfx_bump_generation(x), "bump");
	ASSERT_EQ(send_n(x, "192.0.2.1", PKT_SYN, 1), 1, "known anon source before");
	ASSERT_OK(xfx_src_state(x, "192.0.2.1", &st), "has state");

	ASSERT_OK(xfx_set_shed(x, SLUICE_SHED_EMERGENCY, 0, 0, 0), "emergency, nothing shed");
	ASSERT_EQ(send_n(x, "192.0.2.2", PKT_SYN, 3), 3, "unknown source B");
	ASSERT_EQ(xfx_src_state(x, "192.0.2.2", &st), -ENOENT, "no state for B");
	ASSERT_NEQ(xfx_tat(x, SLUICE_SLOT_ANON, SLUICE_LIMIT_SYN), 0, "charged to shared state");
	ASSERT_EQ(send_n(x, "2001:db8::3", PKT_SYN, 3), 1, "unknown C shares what B left");
	ASSERT_EQ(xfx_src_state(x, "2001:db8::3", &st), -ENOENT, "no state for C");
	ASSERT_EQ(send_n(x, "192.0.2.1", PKT_SYN, 3), 3, "known source keeps its own credit");
	ASSERT_EQ(send_n(x, "10.2.0.9", PKT_SYN, 2), 2, "tenant source");
	ASSERT_OK(xfx_src_state(x, "10.2.0.9", &st), "tenant sources still get state");
	ASSERT_EQ(xfx_count(x, SLUICE_SLOT_ANON, SLUICE_V_SYN_LIMIT, NULL), 2, "shared limit hit");

	ASSERT_OK(xfx_set_shed(x, SLUICE_SHED_NORMAL, 0, 0, 0), "back to normal");
	ASSERT_EQ(send_n(x, "192.0.2.2", PKT_SYN, 1), 1, "B");
	ASSERT_OK(xfx_src_state(x, "192.0.2.2", &st), "state again below emergency");
}

/* DRY_RUN: the verdict is counted, the packet passes. */
static void subtest_dry_run(struct xfx *x)
{
	ASSERT_OK(xfx_tenant(x, 2, "t", SLUICE_CLASS_LOW, SEC, 1, SEC, 3), "tenant");
	ASSERT_OK(xfx_src_exact(x, "10.2.0.1", 2), "src");
	ASSERT_OK(xfx_deny_exact(x, "10.9.9.9", 0), "deny");
	ASSERT_OK(xfx_bump_generation(x), "bump");
	ASSERT_OK(xfx_set_flags(x, SLUICE_CFG_DRY_RUN), "dry run");

	ASSERT_EQ(send_n(x, "10.9.9.9", PKT_SYN, 2), 2, "denied source passes");
	ASSERT_EQ(xfx_count(x, SLUICE_SLOT_ANON, SLUICE_V_DENY, NULL), 2, "DENY counted");
	ASSERT_EQ(send_n(x, "10.2.0.1", PKT_SYN, 2), 2, "over SYN limit passes");
	ASSERT_EQ(xfx_count(x, 2, SLUICE_V_PASS, NULL), 1, "one real pass");
	ASSERT_EQ(xfx_count(x, 2, SLUICE_V_SYN_LIMIT, NULL), 1, "SYN_LIMIT counted");
	ASSERT_EQ(send_n(x, "10.2.0.1", IPPROTO_UDP, 3), 3, "over PKT limit passes");
	ASSERT_EQ(xfx_count(x, 2, SLUICE_V_PKT_LIMIT, NULL), 2, "PKT_LIMIT counted");
	ASSERT_OK(xfx_set_shed(x, SLUICE_SHED_EMERGENCY, 0, 0, 1000), "shed all low");
	ASSERT_OK(xfx_set_flags(x, SLUICE_CFG_DRY_RUN), "dry run still");
	ASSERT_OK(xfx_tenant(x, 2, "t", SLUICE_CLASS_LOW, 0, 0, 0, 0), "unlimited");
	ASSERT_EQ(send_n(x, "10.2.0.1", PKT_SYN, 4), 4, "shed SYNs pass");
	ASSERT_EQ(xfx_count(x, 2, SLUICE_V_SHED, NULL), 4, "SHED counted");

	ASSERT_OK(xfx_set_flags(x, 0), "enforce");
	ASSERT_EQ(send_n(x, "10.9.9.9", PKT_SYN, 1), 0, "enforced: denied");
	ASSERT_EQ(send_n(x, "10.2.0.1", PKT_SYN, 1), 0, "enforced: shed");
}

/* Counters are per CPU: send from each online CPU in turn and check each CPU's own value,
 * and that the sums over CPUs equal the packets and bytes sent. */
static void subtest_percpu_sum(struct xfx *x)
{
	int ncpu = libbpf_num_possible_cpus(), cpu, used = 0, i;
	struct sluice_counters *per = NULL, sum;
	long long sent = 0, bytes = 0;
	cpu_set_t orig, one;
	struct pkt_spec s;
	struct pkt p;

	if (!ASSERT_GT(ncpu, 0, "cpus") ||
	    !ASSERT_OK(sched_getaffinity(0, sizeof(orig), &orig), "aff"))
		return;
	per = calloc(ncpu, sizeof(*per));
	pkt_spec_tcp(&s, "10.5.0.1", DST, PORT, PKT_ACK);
	for (cpu = 0; cpu < ncpu && cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &orig))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		s.payload_len = 10 * (cpu + 1);
		if (!ASSERT_OK(pkt_build(&p, &s), "build"))
			break;
		for (i = 0; i < 100 + cpu; i++)
			ASSERT_EQ(xfx_run(x, p.buf, p.len), XDP_PASS, "pass");
		sent += 100 + cpu;
		bytes += (long long)(100 + cpu) * (long long)p.len;
		used++;
	}
	sched_setaffinity(0, sizeof(orig), &orig);
	ASSERT_GE(used, 1, "ran on at least one CPU");
	if (!per ||
	    !ASSERT_OK(bpf_map_lookup_elem(x->fd[SLUICE_M_COUNTERS], &(__u32){1}, per) ? -errno : 0,
		       "per-cpu lookup"))
		goto out;
	for (cpu = 0; cpu < ncpu && cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &orig))
			ASSERT_EQ(per[cpu].packets[SLUICE_V_PASS], 100 + cpu,
				  "this CPU's own count");
	ASSERT_OK(sluice_bpf_counters_sum(x->fd[SLUICE_M_COUNTERS], SLUICE_SLOT_ANON, &sum), "sum");
	ASSERT_EQ(sum.packets[SLUICE_V_PASS], sent, "sum of packets over CPUs");
	ASSERT_EQ(sum.bytes[SLUICE_V_PASS], bytes, "sum of bytes over CPUs");
	ASSERT_EQ(xfx_count_all(x, 16), sent, "nothing else counted");
out:
	free(per);
}

void test_xdp_credits(void)
{
	static const struct xfx_subtest subs[] = {
	    {"syn_burst_then_rate", subtest_syn_burst_then_rate},
	    {"burst_from_idle_fast_rate", subtest_burst_from_idle_fast_rate},
	    {"rate_finer_than_tick", subtest_rate_finer_than_tick},
	    {"pkt_credits", subtest_pkt_credits},
	    {"anonymous_credits", subtest_anonymous_credits},
	    {"emergency_shed", subtest_emergency_shed},
	    {"emergency_no_new_state", subtest_emergency_no_new_state},
	    {"dry_run", subtest_dry_run},
	    {"percpu_sum", subtest_percpu_sum},
	};

	xfx_run_subtests(subs, ARRAY_SIZE(subs), setup);
}
