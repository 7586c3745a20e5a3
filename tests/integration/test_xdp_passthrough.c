// SPDX-License-Identifier: MIT
/* test_xdp_passthrough.c -- what is not service traffic passes untouched, even during a flood
 *
 * While a SYN flood to the service port is being dropped, ARP (a flushed neighbour table
 * must be re-resolved), ICMP echo over IPv4 and IPv6, and SYNs to a port that is not a
 * service port all get through: the pings are answered, and the receiving kernel's TCP
 * counters (ns_b's /proc/net/snmp InSegs) grow by every non-service SYN, which
 * sluicectl stats counts as "other" on the unattributed slot.
 */
#include "test_progs.h"
#include "xdp_env.h"

void test_xdp_passthrough(void)
{
	long long other0, other1, segs0, segs1;
	char flood[48], out[4096];
	struct xdp_sent fs, s;
	struct xdp_env e;
	json_t *st;
	pid_t bg = -1;

	if (xdp_env_setup(&e, "passthrough", "8080"))
		return;
	xdp_addr(&e, false, 80, flood, sizeof(flood));
	if (!xdp_ctl_ok(&e, "tenant add fl --syn-rate 10 --syn-burst 10") ||
	    !xdp_ctl_ok(&e, "source add fl %s", flood))
		goto out;
	st = xdp_stats(&e);
	other0 = xdp_count(st, "(none)", "other");
	json_decref(st);
	segs0 = xdp_tcp_in_segs(&e);
	bg = xdp_send_start(&e, false, "--src %s --rate 30000 --duration 3s", flood);
	if (!ASSERT_GT(bg, 0, "flood started"))
		goto out;
	xdp_sleep(0.3);

	ASSERT_EQ(
	    netns_run(e.p.ns_a, out, sizeof(out),
		      "ip neigh flush dev %s; ping -c 3 -i 0.2 -W 2 %s && ip neigh show dev %s",
		      e.p.if_a, e.p.ip4_b, e.p.if_a),
	    0, "ARP resolved and IPv4 ping answered during the flood");
	ASSERT_HAS_STR(out, e.p.mac_b, "neighbour entry learnt by ARP");
	ASSERT_EQ(netns_run(e.p.ns_a, out, sizeof(out), "ping -6 -c 3 -i 0.2 -W 2 %s", e.p.ip6_b),
		  0, "IPv6 ping (and neighbour discovery) answered during the flood");
	if (!ASSERT_OK(
		xdp_send(&e, false, &s, "--src %s --dport 9090 --count 500 --rate 5000", flood),
		"pktgen to a non-service port"))
		goto out;
	ASSERT_OK(xdp_send_wait(bg, &fs), "flood finished");
	bg = -1;

	st = xdp_stats(&e);
	other1 = xdp_count(st, "(none)", "other");
	segs1 = xdp_tcp_in_segs(&e);
	printf("other: %lld -> %lld; receiver TCP InSegs %lld -> %lld; flood passed %lld of %lld\n",
	       other0, other1, segs0, segs1, xdp_count(st, "fl", "pass"), fs.sent);
	ASSERT_GE(other1 - other0, 500 + 6, "non-service SYNs, ARP and ICMP counted as other");
	ASSERT_EQ(xdp_count(st, "fl", "pass") + xdp_count(st, "fl", "syn_limit"), fs.sent,
		  "the flood was counted against the tenant");
	/* the receiving stack saw every non-service SYN plus the few flood SYNs that passed */
	ASSERT_GE(segs1 - segs0, 500 + xdp_count(st, "fl", "pass"), "non-service SYNs reached TCP");
	ASSERT_LT(segs1 - segs0, 500 + xdp_count(st, "fl", "pass") + 50,
		  "dropped flood SYNs never reached TCP");
	json_decref(st);
out:
	if (bg > 0)
		xdp_send_wait(bg, &fs);
	xdp_env_teardown(&e);
}
