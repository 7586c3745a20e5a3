// SPDX-License-Identifier: MIT
/* test_xdp_rate.c -- a tenant's SYN credit on real traffic: burst + rate x time, IPv4 and IPv6
 *
 * A tenant sends SYNs at 10x its rate; the passes must be burst + rate x (measured send
 * time) within 5 %, and every other packet must be counted as SYN-rate-limited, so
 * passes + drops equals what pktgen sent. The IPv6 test attributes sources by a /64
 * prefix (the IPv4 one by exact address) and also checks IPv6 deny and anonymous
 * sources, so IPv6 behaves the same as IPv4 end to end.
 */
#include "test_progs.h"
#include "xdp_env.h"

/* Flood tenant name from src at 10x rate for seconds and check the GCRA outcome. */
static void check_rate(struct xdp_env *e, bool v6, const char *name, const char *src, double rate,
		       long burst, const char *seconds)
{
	struct xdp_sent s;
	json_t *st;
	long long pass, lim;
	double expect;

	if (!ASSERT_OK(
		xdp_send(e, v6, &s, "--src %s --rate %.0f --duration %s", src, rate * 10, seconds),
		"pktgen"))
		return;
	st = xdp_stats(e);
	if (!ASSERT_OK_PTR(st, "stats"))
		return;
	pass = xdp_count(st, name, "pass");
	lim = xdp_count(st, name, "syn_limit");
	expect = burst + rate * s.elapsed_s;
	printf("%s: sent %lld in %.3f s, passed %lld (expected %.0f), syn_limit %lld\n", name,
	       s.sent, s.elapsed_s, pass, expect, lim);
	ASSERT_NEAR_PCT(pass, expect, 5, "passes = burst + rate x time");
	ASSERT_EQ(pass + lim, s.sent, "every other SYN counted as rate-limited");
	ASSERT_EQ(xdp_count(st, name, "deny") + xdp_count(st, name, "shed") +
		      xdp_count(st, name, "pkt_limit"),
		  0, "no other verdict");
	json_decref(st);
}

void test_xdp_syn_rate(void)
{
	struct xdp_env e;
	char src[48];

	if (xdp_env_setup(&e, "synrate", "8080"))
		return;
	xdp_addr(&e, false, 10, src, sizeof(src));
	if (!xdp_ctl_ok(&e, "tenant add acme --syn-rate 1000/s --syn-burst 1000") ||
	    !xdp_ctl_ok(&e, "source add acme %s", src))
		goto out;
	check_rate(&e, false, "acme", src, 1000, 1000, "5s");
out:
	xdp_env_teardown(&e);
}

void test_xdp_ipv6(void)
{
	char src[100], first[48], last[48], prefix[64], other[48];
	struct xdp_env e;
	struct xdp_sent s;
	json_t *st;

	if (xdp_env_setup(&e, "ipv6", "8080"))
		return;
	xdp_addr(&e, true, 0, prefix, sizeof(prefix));
	strcat(prefix, "/64");
	xdp_addr(&e, true, 0x10, first, sizeof(first));
	xdp_addr(&e, true, 0x19, last, sizeof(last));
	snprintf(src, sizeof(src), "%s-%s", first, last);
	if (!xdp_ctl_ok(&e, "tenant add six --syn-rate 60000/min --syn-burst 500") ||
	    !xdp_ctl_ok(&e, "prefix add six %s", prefix))
		goto out;
	if (test__start_subtest("rate"))
		check_rate(&e, true, "six", src, 1000, 500, "3s");
	if (test__start_subtest("deny")) {
		xdp_addr(&e, true, 0x20, other, sizeof(other));
		if (!xdp_ctl_ok(&e, "deny add %s", other) ||
		    !ASSERT_OK(xdp_send(&e, true, &s, "--src %s --count 300", other), "pktgen"))
			goto out;
		st = xdp_stats(&e);
		ASSERT_EQ(xdp_count(st, "six", "deny"), 300, "IPv6 exact deny");
		json_decref(st);
	}
	if (test__start_subtest("anonymous")) {
		/* outside the tenant's prefix: the anonymous slot, 100/s burst 200 per source */
		if (!ASSERT_OK(xdp_send(&e, true, &s, "--src fd00:77::1 --count 1000 --rate 20000"),
			       "pktgen"))
			goto out;
		st = xdp_stats(&e);
		ASSERT_NEAR_PCT(xdp_count(st, "(anonymous)", "pass"), 200 + 100 * s.elapsed_s, 5,
				"anonymous IPv6 source gets the anonymous per-source credit");
		ASSERT_EQ(xdp_count(st, "(anonymous)", "pass") +
			      xdp_count(st, "(anonymous)", "syn_limit"),
			  1000, "all anonymous packets counted");
		json_decref(st);
	}
out:
	xdp_env_teardown(&e);
}
