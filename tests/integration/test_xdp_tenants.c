// SPDX-License-Identifier: MIT
/* test_xdp_tenants.c -- tenant isolation and live rate changes on real traffic
 *
 * two_tenants: one tenant floods far above its SYN rate while another sends within its
 * own; the quiet tenant's packets must all pass (credits are per tenant, not shared).
 * rate_change: while a flood runs (everything passing), `tenant set` lowers the SYN rate to
 * 1/s; counters sampled from 100 ms after the command returned must show at most the new
 * allowance passing (at the old rate hundreds would), then raising it again must let
 * every SYN through from 100 ms on. Limits are read per packet, never cached.
 */
#include "lib/clock.h"
#include "test_progs.h"
#include "xdp_env.h"

void test_xdp_two_tenants(void)
{
	char flood[48], calm[48];
	struct xdp_sent fs, cs;
	struct xdp_env e;
	json_t *st;
	pid_t bg;

	if (xdp_env_setup(&e, "twotenants", "8080"))
		return;
	xdp_addr(&e, false, 20, flood, sizeof(flood));
	xdp_addr(&e, false, 30, calm, sizeof(calm));
	if (!xdp_ctl_ok(&e, "tenant add flood --syn-rate 100 --syn-burst 100") ||
	    !xdp_ctl_ok(&e, "tenant add calm --syn-rate 1000 --syn-burst 1000") ||
	    !xdp_ctl_ok(&e, "source add flood %s", flood) ||
	    !xdp_ctl_ok(&e, "source add calm %s", calm))
		goto out;
	bg = xdp_send_start(&e, false, "--src %s --rate 40000 --duration 2.5s", flood);
	if (!ASSERT_GT(bg, 0, "flood started"))
		goto out;
	xdp_sleep(0.3);
	ASSERT_OK(xdp_send(&e, false, &cs, "--src %s --rate 500 --count 800", calm), "calm send");
	ASSERT_OK(xdp_send_wait(bg, &fs), "flood finished");
	st = xdp_stats(&e);
	if (!ASSERT_OK_PTR(st, "stats"))
		goto out;
	printf("flood: sent %lld, passed %lld; calm: sent %lld, passed %lld\n", fs.sent,
	       xdp_count(st, "flood", "pass"), cs.sent, xdp_count(st, "calm", "pass"));
	ASSERT_EQ(xdp_count(st, "calm", "pass"), cs.sent, "the quiet tenant's SYNs all pass");
	ASSERT_EQ(xdp_count(st, "calm", "syn_limit"), 0, "none of them rate-limited");
	ASSERT_GT(xdp_count(st, "flood", "syn_limit"), fs.sent / 2, "the flood is dropped");
	ASSERT_LT(xdp_count(st, "flood", "pass"), 100 + 100 * fs.elapsed_s * 1.05 + 1,
		  "the flood gets no more than its own credit");
	json_decref(st);
out:
	xdp_env_teardown(&e);
}

/* One stats snapshot of a tenant: passed, all counted (passed + rate-limited), when. */
struct sample {
	long long pass, total;
	double t;
};

static int sample(struct xdp_env *e, const char *tenant, struct sample *sm)
{
	json_t *st = xdp_stats(e);

	if (!st)
		return -1;
	sm->pass = xdp_count(st, tenant, "pass");
	sm->total = sm->pass + xdp_count(st, tenant, "syn_limit");
	sm->t = json_integer_value(json_object_get(st, "time_ns")) / 1e9;
	json_decref(st);
	return 0;
}

/* Sample just before changing the tenant with sluicectl, then from 100 ms after the change
 * to 1.1 s after. */
static int window_after(struct xdp_env *e, const char *change, struct sample *pre, struct sample *a,
			struct sample *b)
{
	double set_at;

	if (sample(e, "tune", pre) || !xdp_ctl_ok(e, "%s", change))
		return -1;
	set_at = clock_mono_s();
	xdp_sleep(set_at + 0.1 - clock_mono_s());
	if (sample(e, "tune", a))
		return -1;
	xdp_sleep(1.0);
	if (sample(e, "tune", b))
		return -1;
	printf("%s: from %.3f s after, %lld of %lld passed in %.3f s\n", change, a->t - set_at,
	       b->pass - a->pass, b->total - a->total, b->t - a->t);
	return 0;
}

void test_xdp_rate_change(void)
{
	struct sample s0, pre, s1, s2, s3, s4;
	struct xdp_sent fs;
	struct xdp_env e;
	char src[48];
	pid_t bg = -1;

	if (xdp_env_setup(&e, "ratechange", "8080"))
		return;
	xdp_addr(&e, false, 40, src, sizeof(src));
	if (!xdp_ctl_ok(&e, "tenant add tune --syn-rate 100000 --syn-burst 1000") ||
	    !xdp_ctl_ok(&e, "source add tune %s", src))
		goto out;
	/* long enough to cover both windows when a loaded machine stretches every step */
	bg = xdp_send_start(&e, false, "--src %s --rate 5000 --duration 10s", src);
	if (!ASSERT_GT(bg, 0, "flood started") || !ASSERT_OK(sample(&e, "tune", &s0), "sample"))
		goto out;
	xdp_sleep(0.7);

	/* down to 1/s: from 100 ms after the change, at most burst + 1 s of rate pass */
	if (!ASSERT_OK(
		window_after(&e, "tenant set tune --syn-rate 1/s --syn-burst 1", &pre, &s1, &s2),
		"lower"))
		goto out;
	ASSERT_GT(pre.total - s0.total, 500, "the flood was running");
	ASSERT_EQ(pre.total - pre.pass, s0.total - s0.pass, "before the change everything passed");
	ASSERT_GT(s2.total - s1.total, 500, "the flood kept coming");
	ASSERT_LE(s2.pass - s1.pass, 1 + 1 + (long long)(s2.t - s1.t),
		  "lowered rate in force within 100 ms");

	/* and back up: from 100 ms on, every SYN of the flood passes again */
	if (!ASSERT_OK(window_after(&e, "tenant set tune --syn-rate unlimited", &pre, &s3, &s4),
		       "raise"))
		goto out;
	ASSERT_GT(s4.total - s3.total, 500, "the flood kept coming");
	ASSERT_EQ(s4.pass - s3.pass, s4.total - s3.total, "raised rate in force within 100 ms");
out:
	if (bg > 0)
		xdp_send_wait(bg, &fs);
	xdp_env_teardown(&e);
}
