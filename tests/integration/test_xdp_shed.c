// SPDX-License-Identifier: MIT
/* test_xdp_shed.c -- emergency shedding and the deny list on real traffic
 *
 * shed: at EMERGENCY with low=500 and critical=0, half (+-5 points) of a low-class
 * tenant's SYNs are dropped as "shed" while a critical tenant loses none; back at normal
 * nothing more is shed. deny: an entry with a 2 s TTL drops everything from the source,
 * `deny list` shows the time left, and after expiry the same source passes again; a
 * prefix entry drops its whole range until `deny del`. dry_run: with dry run on, a denied
 * source is counted as denied but its SYNs reach the receiving TCP stack.
 */
#include "lib/clock.h"
#include "test_progs.h"
#include "xdp_env.h"

void test_xdp_shed_emergency(void)
{
	char low[48], crit[48];
	struct xdp_env e;
	struct xdp_sent s;
	json_t *st;
	long long shed, lpass;

	if (xdp_env_setup(&e, "shed", "8080"))
		return;
	xdp_addr(&e, false, 50, low, sizeof(low));
	xdp_addr(&e, false, 51, crit, sizeof(crit));
	if (!xdp_ctl_ok(&e, "tenant add batch --class low") ||
	    !xdp_ctl_ok(&e, "tenant add pager --class critical") ||
	    !xdp_ctl_ok(&e, "source add batch %s", low) ||
	    !xdp_ctl_ok(&e, "source add pager %s", crit) ||
	    !xdp_ctl_ok(&e, "shed set emergency --permille low=500 --permille critical=0"))
		goto out;
	/* the two sources alternate: 4000 SYNs each */
	if (!ASSERT_OK(xdp_send(&e, false, &s, "--src %s,%s --count 8000 --rate 40000", low, crit),
		       "pktgen"))
		goto out;
	st = xdp_stats(&e);
	if (!ASSERT_OK_PTR(st, "stats"))
		goto out;
	shed = xdp_count(st, "batch", "shed");
	lpass = xdp_count(st, "batch", "pass");
	printf("low: %lld shed, %lld passed; critical: %lld shed, %lld passed\n", shed, lpass,
	       xdp_count(st, "pager", "shed"), xdp_count(st, "pager", "pass"));
	ASSERT_EQ(shed + lpass, 4000, "every low SYN counted");
	ASSERT_GE(shed, 4000 * 45 / 100, "low shed >= 45 %");
	ASSERT_LE(shed, 4000 * 55 / 100, "low shed <= 55 %");
	ASSERT_EQ(xdp_count(st, "pager", "shed"), 0, "critical: nothing shed");
	ASSERT_EQ(xdp_count(st, "pager", "pass"), 4000, "critical: everything passes");
	json_decref(st);

	if (!xdp_ctl_ok(&e, "shed set normal") ||
	    !ASSERT_OK(xdp_send(&e, false, &s, "--src %s --count 1000 --rate 40000", low),
		       "pktgen"))
		goto out;
	st = xdp_stats(&e);
	ASSERT_EQ(xdp_count(st, "batch", "shed"), shed, "nothing shed at normal");
	ASSERT_EQ(xdp_count(st, "batch", "pass"), lpass + 1000, "all pass at normal");
	json_decref(st);
out:
	xdp_env_teardown(&e);
}

static void deny_ttl(struct xdp_env *e)
{
	char src[48];
	struct xdp_sent s;
	json_t *st, *list;
	double added;
	long long left;

	xdp_addr(e, false, 60, src, sizeof(src));
	if (!xdp_ctl_ok(e, "source add dt %s", src) || !xdp_ctl_ok(e, "deny add %s --ttl 2s", src))
		return;
	added = clock_mono_s();
	list = xdp_ctl_json(e, "deny list");
	left = json_integer_value(json_object_get(json_array_get(list, 0), "left_ns"));
	ASSERT_STREQ(json_string_value(json_object_get(json_array_get(list, 0), "address")), src,
		     "deny list shows the entry");
	ASSERT_GT(left, 1500000000LL, "time left > 1.5 s");
	ASSERT_LE(left, 2000000000LL, "time left <= 2 s");
	json_decref(list);
	if (!ASSERT_OK(xdp_send(e, false, &s, "--src %s --count 200 --rate 5000", src), "pktgen"))
		return;
	st = xdp_stats(e);
	ASSERT_EQ(xdp_count(st, "dt", "deny"), 200, "denied while the entry lives");
	ASSERT_EQ(xdp_count(st, "dt", "pass"), 0, "nothing passes");
	json_decref(st);

	xdp_sleep(added + 2.2 - clock_mono_s());
	if (!ASSERT_OK(xdp_send(e, false, &s, "--src %s --count 200 --rate 5000", src), "pktgen"))
		return;
	st = xdp_stats(e);
	ASSERT_EQ(xdp_count(st, "dt", "deny"), 200, "no more denies after expiry");
	ASSERT_EQ(xdp_count(st, "dt", "pass"), 200, "passes after expiry");
	json_decref(st);
	list = xdp_ctl_json(e, "deny list");
	ASSERT_TRUE(json_is_true(json_object_get(json_array_get(list, 0), "expired")),
		    "deny list shows it expired");
	json_decref(list);
}

static void deny_prefix(struct xdp_env *e)
{
	char src[48], net[64];
	struct xdp_sent s;
	json_t *st;

	xdp_addr(e, false, 70, src, sizeof(src));
	xdp_addr(e, false, 64, net, sizeof(net));
	strcat(net, "/26");
	if (!xdp_ctl_ok(e, "source add dt %s", src) || !xdp_ctl_ok(e, "deny add %s", net) ||
	    !ASSERT_OK(xdp_send(e, false, &s, "--src %s --count 100", src), "pktgen"))
		return;
	st = xdp_stats(e);
	ASSERT_EQ(xdp_count(st, "dt", "deny"), 100, "prefix deny drops the range");
	json_decref(st);
	if (!xdp_ctl_ok(e, "deny del %s", net) ||
	    !ASSERT_OK(xdp_send(e, false, &s, "--src %s --count 100", src), "pktgen"))
		return;
	st = xdp_stats(e);
	ASSERT_EQ(xdp_count(st, "dt", "deny"), 100, "deny del: no more denies");
	ASSERT_EQ(xdp_count(st, "dt", "pass"), 100, "deny del: passes on the next packet");
	json_decref(st);
}

static void deny_dry_run(struct xdp_env *e)
{
	long long segs0, segs1;
	struct xdp_sent s;
	char src[48];
	json_t *st;

	xdp_addr(e, false, 71, src, sizeof(src));
	if (!xdp_ctl_ok(e, "source add dt %s", src) || !xdp_ctl_ok(e, "deny add %s", src) ||
	    !xdp_ctl_ok(e, "dry-run on"))
		return;
	segs0 = xdp_tcp_in_segs(e);
	if (!ASSERT_OK(xdp_send(e, false, &s, "--src %s --count 100 --rate 5000", src), "pktgen"))
		return;
	segs1 = xdp_tcp_in_segs(e);
	st = xdp_stats(e);
	ASSERT_EQ(xdp_count(st, "dt", "deny"), 100, "dry run: still counted as denied");
	ASSERT_GE(segs1 - segs0, 100, "dry run: the SYNs reached TCP");
	json_decref(st);
	xdp_ctl_ok(e, "dry-run off");
}

void test_xdp_deny(void)
{
	struct xdp_env e;

	if (xdp_env_setup(&e, "deny", "8080"))
		return;
	if (!xdp_ctl_ok(&e, "tenant add dt"))
		goto out;
	if (test__start_subtest("ttl"))
		deny_ttl(&e);
	if (test__start_subtest("prefix")) {
		/* a fresh tenant keeps the counts of this subtest apart */
		if (xdp_ctl_ok(&e, "tenant del dt") && xdp_ctl_ok(&e, "tenant add dt"))
			deny_prefix(&e);
	}
	if (test__start_subtest("dry_run")) {
		if (xdp_ctl_ok(&e, "tenant del dt") && xdp_ctl_ok(&e, "tenant add dt"))
			deny_dry_run(&e);
	}
out:
	xdp_env_teardown(&e);
}
