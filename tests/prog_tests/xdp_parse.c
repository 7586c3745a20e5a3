// SPDX-License-Identifier: MIT
/* xdp_parse.c -- every packet shape the admission parser knows, and every way it is cut short
 *
 * The program sees one source (an anonymous one, unlimited) and two service ports: TCP 443
 * and UDP 4433. A shape that parses to a service packet lands in slot ANON as PASS; anything
 * else (not TCP/UDP, not a service port, non-first fragment, unparseable, truncated) passes
 * untouched and lands in slot NONE as OTHER. Every case asserts the XDP action, which
 * counter moved (packets and bytes), that no other counter did, and whether a per-source
 * state entry was created (only service packets create one).
 *
 * Truncation: BPF_PROG_TEST_RUN refuses XDP frames shorter than an Ethernet header
 * (EINVAL), so lengths 0..13 are asserted refused; every length from 14 up to the end of
 * the L4 header -- which includes each header boundary and every byte in between -- must
 * be OTHER, and the first length that holds the whole L4 header must be a service packet.
 */
#include <netinet/in.h>

#include "lib/array_size.h"
#include "test_progs.h"
#include "xdp_fixture.h"

/* the shape table reads best one shape per line */
/* clang-format off */
#define SRC4 "198.51.100.7"
#define DST4 "192.0.2.1"
#define SRC6 "2001:db8:77::7"
#define DST6 "2001:db8::1"
#define TCP_PORT 443
#define UDP_PORT 4433

enum expect { OTHER, SERVICE };

struct shape {
	const char *name;
	struct pkt_spec spec;
	enum expect expect;
};

#define V4(...) { .l3 = PKT_L3_IPV4, .src = SRC4, .dst = DST4, .sport = 40000, __VA_ARGS__ }
#define V6(...) { .l3 = PKT_L3_IPV6, .src = SRC6, .dst = DST6, .sport = 40000, __VA_ARGS__ }
#define TCP .proto = IPPROTO_TCP, .dport = TCP_PORT
#define UDP .proto = IPPROTO_UDP, .dport = UDP_PORT
#define EXT(k, n) { .kind = (k), .len_units = (n) }
#define FRAG(off, m) { .kind = PKT_EXT_FRAGMENT, .frag_offset = (off), .more_frags = (m) }
#define QINQ .nvlan = 2, .vlan_tpid = { PKT_TPID_8021AD, PKT_TPID_8021Q }, .vlan_id = { 100, 200 }

static const struct shape shapes[] = {
	{ "v4_tcp_syn", V4(TCP, .tcp_flags = PKT_SYN), SERVICE },
	{ "v4_tcp_ack_payload", V4(TCP, .tcp_flags = PKT_ACK, .payload_len = 100), SERVICE },
	{ "v4_udp", V4(UDP, .payload_len = 32), SERVICE },
	{ "v6_tcp_syn", V6(TCP, .tcp_flags = PKT_SYN), SERVICE },
	{ "v6_udp", V6(UDP, .payload_len = 7), SERVICE },
	{ "vlan_v4_tcp", V4(TCP, .tcp_flags = PKT_SYN, .nvlan = 1, .vlan_id = { 42 }), SERVICE },
	{ "vlan_v6_udp", V6(UDP, .nvlan = 1, .vlan_id = { 42 }), SERVICE },
	{ "qinq_v4_tcp", V4(TCP, .tcp_flags = PKT_SYN, QINQ), SERVICE },
	{ "qinq_v6_tcp", V6(TCP, .tcp_flags = PKT_SYN, QINQ), SERVICE },
	{ "two_8021q_v4_udp", V4(UDP, .nvlan = 2, .vlan_id = { 1, 2 }), SERVICE },
	{ "v4_options_4", V4(TCP, .tcp_flags = PKT_SYN, .ip_opt_len = 4), SERVICE },
	{ "v4_options_40", V4(UDP, .ip_opt_len = 40), SERVICE },
	{ "qinq_v4_options_udp", V4(UDP, .ip_opt_len = 24, QINQ), SERVICE },
	{ "v4_first_fragment", V4(TCP, .tcp_flags = PKT_SYN, .more_frags = true), SERVICE },
	{ "v4_df", V4(TCP, .tcp_flags = PKT_SYN, .dont_frag = true), SERVICE },
	{ "v4_nonfirst_fragment", V4(TCP, .tcp_flags = PKT_SYN, .frag_offset = 185), OTHER },
	{ "v4_last_fragment", V4(UDP, .frag_offset = 1), OTHER },
	{ "v6_first_fragment", V6(TCP, .tcp_flags = PKT_SYN, .next = 1, .ext = { FRAG(0, true) }),
	  SERVICE },
	{ "v6_nonfirst_fragment", V6(UDP, .next = 1, .ext = { FRAG(185, true) }), OTHER },
	{ "v6_last_fragment", V6(UDP, .next = 1, .ext = { FRAG(3, false) }), OTHER },
	{ "v6_hop_dst_routing",
	  V6(TCP, .tcp_flags = PKT_SYN, .next = 3,
	     .ext = { EXT(PKT_EXT_HOPOPTS, 0), EXT(PKT_EXT_DSTOPTS, 1), EXT(PKT_EXT_ROUTING, 2) }),
	  SERVICE },
	{ "v6_hop_ah_frag_dst",
	  V6(UDP, .next = 4,
	     .ext = { EXT(PKT_EXT_HOPOPTS, 0), EXT(PKT_EXT_AH, 4), FRAG(0, true),
		      EXT(PKT_EXT_DSTOPTS, 0) }),
	  SERVICE },
	{ "v6_six_ext_headers",
	  V6(TCP, .tcp_flags = PKT_SYN, .next = 6,
	     .ext = { EXT(PKT_EXT_HOPOPTS, 0), EXT(PKT_EXT_DSTOPTS, 0), EXT(PKT_EXT_ROUTING, 0),
		      FRAG(0, false), EXT(PKT_EXT_AH, 1), EXT(PKT_EXT_DSTOPTS, 3) }),
	  SERVICE },
	/* the walk is bounded at 6 extension headers; a 7th means "not ours", not a loop */
	{ "v6_seven_ext_headers",
	  V6(TCP, .tcp_flags = PKT_SYN, .next = 7,
	     .ext = { EXT(PKT_EXT_HOPOPTS, 0), EXT(PKT_EXT_DSTOPTS, 0), EXT(PKT_EXT_ROUTING, 0),
		      FRAG(0, false), EXT(PKT_EXT_AH, 1), EXT(PKT_EXT_DSTOPTS, 0),
		      EXT(PKT_EXT_DSTOPTS, 0) }),
	  OTHER },
	{ "v6_ext_then_nonfirst_frag",
	  V6(TCP, .next = 2, .ext = { EXT(PKT_EXT_HOPOPTS, 0), FRAG(8, false) }), OTHER },
	{ "qinq_v6_ext_udp", V6(UDP, QINQ, .next = 2,
				.ext = { EXT(PKT_EXT_HOPOPTS, 1), EXT(PKT_EXT_DSTOPTS, 0) }),
	  SERVICE },
	{ "v4_tcp_other_port", V4(.proto = IPPROTO_TCP, .dport = 22, .tcp_flags = PKT_SYN),
	  OTHER },
	{ "v6_udp_other_port", V6(.proto = IPPROTO_UDP, .dport = 53), OTHER },
	{ "v4_udp_to_tcp_only_port", V4(.proto = IPPROTO_UDP, .dport = TCP_PORT), OTHER },
	{ "v4_tcp_to_udp_only_port", V4(.proto = IPPROTO_TCP, .dport = UDP_PORT), OTHER },
	{ "v4_icmp", V4(.proto = IPPROTO_ICMP, .payload_len = 56), OTHER },
	{ "v6_icmp", V6(.proto = IPPROTO_ICMPV6, .payload_len = 56), OTHER },
	{ "v4_gre", V4(.proto = 47, .payload_len = 20), OTHER },
	{ "v6_esp", V6(.proto = 50, .payload_len = 20), OTHER },
	{ "v6_no_next_header", V6(.proto = 59), OTHER },
	{ "vlan_icmp", V4(.proto = IPPROTO_ICMP, .nvlan = 1, .vlan_id = { 5 }, .payload_len = 8),
	  OTHER },
	{ "arp", { .l3 = PKT_L3_ARP, .src = SRC4, .dst = DST4 }, OTHER },
	{ "qinq_arp", { .l3 = PKT_L3_ARP, .src = SRC4, .dst = DST4, QINQ }, OTHER },
	{ "lldp", { .l3 = PKT_L3_RAW, .ethertype = 0x88cc }, OTHER },
};

/* clang-format on */

/* Set up the one-source world described at the top. */
static bool setup(struct xfx *x)
{
	return ASSERT_OK(xfx_port(x, TCP_PORT, SLUICE_PORT_TCP), "port tcp") &&
	       ASSERT_OK(xfx_port(x, UDP_PORT, SLUICE_PORT_UDP), "port udp") &&
	       ASSERT_OK(
		   xfx_tenant(x, SLUICE_SLOT_ANON, "(anonymous)", SLUICE_CLASS_LOW, 0, 0, 0, 0),
		   "anon unlimited");
}

struct snap {
	long long pk[2], by[2]; /* [0]: NONE/OTHER, [1]: ANON/PASS */
};

static void snap_take(struct xfx *x, struct snap *s)
{
	s->pk[0] = xfx_count(x, SLUICE_SLOT_NONE, SLUICE_V_OTHER, &s->by[0]);
	s->pk[1] = xfx_count(x, SLUICE_SLOT_ANON, SLUICE_V_PASS, &s->by[1]);
}

/* Run frame p[0..len) and check action, counters and (optionally) src_state creation. */
static void check_frame(struct xfx *x, const struct pkt *p, size_t len, enum expect e,
			const char *src, const char *what)
{
	struct snap a, b;
	struct sluice_src st;
	int ret, i = e == SERVICE;

	snap_take(x, &a);
	ret = xfx_run(x, p->buf, len);
	snap_take(x, &b);
	if (!ASSERT_EQ(ret, XDP_PASS, what))
		printf("  frame length %zu of %zu\n", len, p->len);
	ASSERT_EQ(b.pk[i] - a.pk[i], 1, what);
	ASSERT_EQ(b.by[i] - a.by[i], (long long)len, what);
	ASSERT_EQ(b.pk[!i] - a.pk[!i], 0, what);
	ASSERT_EQ(xfx_count_all(x, 8), b.pk[0] + b.pk[1], "nothing else counted");
	if (src)
		ASSERT_EQ(xfx_src_state(x, src, &st), e == SERVICE ? 0 : -ENOENT, what);
}

static void subtest_shapes(struct xfx *x)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(shapes); i++) {
		const struct shape *sh = &shapes[i];
		struct pkt p;

		if (!ASSERT_OK(pkt_build(&p, &sh->spec), sh->name))
			continue;
		check_frame(x, &p, p.len, sh->expect, NULL, sh->name);
	}
}

/* Each shape, cut at every length: < 14 refused by the kernel, then OTHER until the L4
 * header is complete. */
static void subtest_truncated(struct xfx *x)
{
	size_t i, len;
	char what[128];

	for (i = 0; i < ARRAY_SIZE(shapes); i++) {
		const struct shape *sh = &shapes[i];
		struct pkt p;

		if (sh->expect != SERVICE || !ASSERT_OK(pkt_build(&p, &sh->spec), sh->name))
			continue;
		for (len = 0; len < 14; len++) {
			snprintf(what, sizeof(what), "%s cut at %zu refused", sh->name, len);
			ASSERT_EQ(xfx_run(x, p.buf, len), -EINVAL, what);
		}
		for (len = 14; len < p.l4_end; len++) {
			snprintf(what, sizeof(what), "%s cut at %zu", sh->name, len);
			check_frame(x, &p, len, OTHER, NULL, what);
		}
		snprintf(what, sizeof(what), "%s whole L4 header (%zu)", sh->name, p.l4_end);
		check_frame(x, &p, p.l4_end, SERVICE, NULL, what);
		ASSERT_GE(p.nbounds, 3, "boundaries recorded");
	}
}

/* Three VLAN tags are one more than the parser walks: a service SYN behind them is OTHER. */
static void subtest_three_tags(struct xfx *x)
{
	struct pkt_spec s = V4(TCP, .tcp_flags = PKT_SYN, QINQ);
	struct pkt p;

	if (!ASSERT_OK(pkt_build(&p, &s), "build"))
		return;
	check_frame(x, &p, p.len, SERVICE, NULL, "two tags parse");
	/* insert a third 802.1Q tag after the second: 14 + 4 + 4 */
	memmove(p.buf + 26, p.buf + 22, p.len - 22);
	p.buf[20] = 0x81;
	p.buf[21] = 0x00;
	p.buf[22] = 0x00;
	p.buf[23] = 0x03;
	p.buf[24] = 0x08;
	p.buf[25] = 0x00;
	p.len += 4;
	check_frame(x, &p, p.len, OTHER, NULL, "three tags are not parsed");
}

/* Only service packets create per-source state: a source seen only on ICMP, ARP, a
 * non-service port or a non-first fragment leaves no entry. */
static void subtest_src_state(struct xfx *x)
{
	struct pkt_spec s;
	struct pkt p;

	pkt_spec_icmp(&s, "203.0.113.9", DST4);
	if (ASSERT_OK(pkt_build(&p, &s), "icmp"))
		check_frame(x, &p, p.len, OTHER, "203.0.113.9", "icmp leaves no state");
	pkt_spec_tcp(&s, "203.0.113.9", DST4, 22, PKT_SYN);
	if (ASSERT_OK(pkt_build(&p, &s), "ssh"))
		check_frame(x, &p, p.len, OTHER, "203.0.113.9", "port 22 leaves no state");
	pkt_spec_udp(&s, "2001:db8:9::9", DST6, UDP_PORT);
	s.next = 1;
	s.ext[0] = (struct pkt_ext){.kind = PKT_EXT_FRAGMENT, .frag_offset = 100};
	if (ASSERT_OK(pkt_build(&p, &s), "frag"))
		check_frame(x, &p, p.len, OTHER, "2001:db8:9::9", "fragment leaves no state");
	pkt_spec_tcp(&s, "203.0.113.9", DST4, TCP_PORT, PKT_SYN);
	if (ASSERT_OK(pkt_build(&p, &s), "syn"))
		check_frame(x, &p, p.len, SERVICE, "203.0.113.9", "service SYN creates state");
	pkt_spec_udp(&s, "2001:db8:9::9", DST6, UDP_PORT);
	if (ASSERT_OK(pkt_build(&p, &s), "udp6"))
		check_frame(x, &p, p.len, SERVICE, "2001:db8:9::9", "service UDP creates state");
}

void test_xdp_parse(void)
{
	struct xfx x;

	if (!xfx_open(&x))
		return;
	if (!setup(&x))
		goto out;
	if (test__start_subtest("shapes"))
		subtest_shapes(&x);
	if (test__start_subtest("truncated"))
		subtest_truncated(&x);
	if (test__start_subtest("three_tags"))
		subtest_three_tags(&x);
	if (test__start_subtest("src_state"))
		subtest_src_state(&x);
out:
	xfx_close(&x);
}
