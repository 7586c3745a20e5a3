// SPDX-License-Identifier: MIT
/* test_xdp_reattach.c -- detach leaves nothing on the interface; re-attach resumes state
 *
 * After traffic has moved a tenant's counters and credits: `sluicectl detach` (pins kept)
 * must leave no XDP program on the interface (ip link shows none, status lists no
 * attachment) and traffic sent meanwhile is not counted; `sluicectl attach` again with
 * the same pin dir must show exactly the same counters and GCRA state (tat) as before,
 * keep the service ports, and go on counting from there.
 */
#include "test_progs.h"
#include "xdp_env.h"

struct seen {
	long long pass, lim;
	long long tat;
};

static int look(struct xdp_env *e, struct seen *s)
{
	json_t *st = xdp_stats(e), *show = xdp_ctl_json(e, "tenant show keep");

	if (!st || !show) {
		json_decref(st);
		json_decref(show);
		return -1;
	}
	s->pass = xdp_count(st, "keep", "pass");
	s->lim = xdp_count(st, "keep", "syn_limit");
	s->tat = json_integer_value(
	    json_object_get(json_object_get(json_object_get(show, "limits"), "syn"), "tat_ns"));
	json_decref(st);
	json_decref(show);
	return 0;
}

void test_xdp_reattach(void)
{
	struct seen a, b, c, d;
	char src[48], out[4096];
	struct xdp_sent s;
	struct xdp_env e;
	json_t *status;

	if (xdp_env_setup(&e, "reattach", "8080"))
		return;
	xdp_addr(&e, false, 90, src, sizeof(src));
	if (!xdp_ctl_ok(&e, "tenant add keep --syn-rate 1/s --syn-burst 50") ||
	    !xdp_ctl_ok(&e, "source add keep %s", src) ||
	    !ASSERT_OK(xdp_send(&e, false, &s, "--src %s --count 1000 --rate 20000", src),
		       "pktgen") ||
	    !ASSERT_OK(look(&e, &a), "before detach"))
		goto out;
	ASSERT_GE(a.pass, 50, "burst passed");
	ASSERT_EQ(a.pass + a.lim, 1000, "all counted");

	netns_run(e.p.ns_b, out, sizeof(out), "ip -d link show dev %s", e.p.if_b);
	ASSERT_HAS_STR(out, "prog/xdp", "attached: ip link shows the program");
	if (!xdp_ctl_ok(&e, "detach --iface %s", e.p.if_b))
		goto out;
	netns_run(e.p.ns_b, out, sizeof(out), "ip -d link show dev %s", e.p.if_b);
	ASSERT_FALSE(strstr(out, "prog/xdp") || strstr(out, "xdpgeneric") || strstr(out, " xdp "),
		     "no XDP program left on the interface");
	status = xdp_ctl_json(&e, "status");
	ASSERT_EQ(json_array_size(json_object_get(status, "attached")), 0,
		  "status: attached nowhere");
	json_decref(status);
	if (!ASSERT_OK(xdp_send(&e, false, &s, "--src %s --count 300", src), "pktgen detached") ||
	    !ASSERT_OK(look(&e, &b), "while detached"))
		goto out;
	ASSERT_EQ(b.pass, a.pass, "nothing counted while detached");
	ASSERT_EQ(b.lim, a.lim, "nothing dropped while detached");

	/* attach again without --ports: ports, tenants, counters and credits come from pins */
	if (!xdp_ctl_ok(&e, "attach --iface %s", e.p.if_b) || !ASSERT_OK(look(&e, &c), "after"))
		goto out;
	status = xdp_ctl_json(&e, "status");
	ASSERT_EQ(json_array_size(json_object_get(status, "attached")), 1, "status: attached");
	ASSERT_STREQ(json_string_value(json_array_get(json_object_get(status, "ports"), 0)),
		     "8080/tcp", "service ports kept");
	json_decref(status);
	ASSERT_EQ(c.pass, a.pass, "counters resumed (pass)");
	ASSERT_EQ(c.lim, a.lim, "counters resumed (syn_limit)");
	ASSERT_EQ(c.tat, a.tat, "credit state resumed (same tat)");
	ASSERT_GT(c.tat, 0, "tat was moved by the traffic");

	if (!ASSERT_OK(xdp_send(&e, false, &s, "--src %s --count 500 --rate 20000", src),
		       "pktgen") ||
	    !ASSERT_OK(look(&e, &d), "after more traffic"))
		goto out;
	ASSERT_EQ(d.pass + d.lim, a.pass + a.lim + 500, "counting goes on from the kept totals");
	/* the credit was spent before detaching: at 1/s only a few came back since */
	ASSERT_LT(d.pass - c.pass, 50, "credits were not refilled by the re-attach");
out:
	xdp_env_teardown(&e);
}
