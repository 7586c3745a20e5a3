// SPDX-License-Identifier: MIT
/* test_pkt.c -- the packet builder itself: checksum, lengths, header chains, boundaries
 *
 * The XDP tests, xdp_cost and pktgen trust tools/lib/pkt to build what its spec says, so it
 * is checked here: the one checksum function against known answers (RFC 1071's example, a
 * real IPv4 header), then every IPv4 header checksum and every TCP/UDP/ICMP checksum of
 * built packets verifies with it (the sum over the header, or pseudo-header plus segment,
 * folds to 0), length fields match the frame, IPv6 next-header chains link up, the recorded
 * boundaries ascend and end at the frame length, and the 16-byte address form gives the
 * same frame as the text form.
 */
#include <netinet/in.h>
#include <string.h>

#include "pkt.h"
#include "test_progs.h"

static unsigned get16(const __u8 *b)
{
	return (unsigned)b[0] << 8 | b[1];
}

/* The L4 checksum of p verifies: pseudo-header (v4 or v6) plus segment folds to 0. */
static unsigned l4_sum(const struct pkt *p, bool v4, __u8 proto)
{
	const __u8 *l3 = p->buf + p->l3_off;
	size_t len = p->len - p->l4_off;
	__u8 ph[8] = {0};
	__u32 sum = 0;

	if (!(v4 && proto == IPPROTO_ICMP)) {
		sum = pkt_csum_add(0, v4 ? l3 + 12 : l3 + 8, v4 ? 8 : 32);
		ph[2] = (__u8)(len >> 8);
		ph[3] = (__u8)len;
		ph[7] = proto;
		sum = pkt_csum_add(sum, ph, 8);
	}
	return pkt_csum_fold(pkt_csum_add(sum, p->buf + p->l4_off, len));
}

static void subtest_checksum(void)
{
	/* RFC 1071 section 3: the sum of these words is 0xddf2, so the checksum is 0x220d */
	static const __u8 rfc[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	/* an IPv4 header as captured (192.168.0.1 -> 192.168.0.199, UDP): checksum 0xb861 */
	__u8 ip[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		     0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	static const __u8 odd[] = {0x01, 0x02, 0x03};

	ASSERT_EQ(pkt_csum_fold(pkt_csum_add(0, rfc, sizeof(rfc))), 0x220d, "RFC 1071 example");
	ASSERT_EQ(pkt_csum_fold(pkt_csum_add(pkt_csum_add(0, rfc, 4), rfc + 4, 4)), 0x220d,
		  "summed in two pieces");
	ASSERT_EQ(pkt_csum_fold(pkt_csum_add(0, odd, 3)), 0xfbfd, "odd length: last byte padded");
	ASSERT_EQ(pkt_csum_fold(pkt_csum_add(0, ip, sizeof(ip))), 0, "a correct header folds to 0");
	ip[10] = ip[11] = 0;
	ASSERT_EQ(pkt_csum_fold(pkt_csum_add(0, ip, sizeof(ip))), 0xb861, "the header's checksum");
}

static void check_bounds(const struct pkt *p, const char *what)
{
	int i;

	ASSERT_GE(p->nbounds, 2, what);
	for (i = 1; i < p->nbounds; i++)
		ASSERT_LT(p->bounds[i - 1], p->bounds[i], what);
	ASSERT_EQ(p->bounds[p->nbounds - 1], p->len, what);
	ASSERT_EQ(p->bounds[0], 14, what);
}

static void subtest_ipv4(void)
{
	struct pkt_spec s;
	struct pkt p;

	pkt_spec_tcp(&s, "10.1.2.3", "192.0.2.1", 443, PKT_SYN);
	s.ip_opt_len = 12;
	s.payload_len = 33;
	s.nvlan = 2;
	s.vlan_tpid[0] = PKT_TPID_8021AD;
	if (!ASSERT_OK(pkt_build(&p, &s), "build"))
		return;
	ASSERT_EQ(p.l3_off, 22, "QinQ: 14 + 2 x 4");
	ASSERT_EQ(get16(p.buf + 12), 0x88a8, "outer TPID");
	ASSERT_EQ(get16(p.buf + 16), 0x8100, "inner TPID");
	ASSERT_EQ(get16(p.buf + 20), 0x0800, "IPv4 inside");
	ASSERT_EQ(p.buf[p.l3_off] & 0xf, 8, "IHL with 12 bytes of options");
	ASSERT_EQ(get16(p.buf + p.l3_off + 2), p.len - p.l3_off, "total length");
	ASSERT_EQ(pkt_csum_fold(pkt_csum_add(0, p.buf + p.l3_off, 32)), 0, "IPv4 header checksum");
	ASSERT_EQ(p.l4_end - p.l4_off, 20, "TCP header");
	ASSERT_EQ(p.buf[p.l4_off + 13], PKT_SYN, "flags");
	ASSERT_EQ(get16(p.buf + p.l4_off + 2), 443, "dport");
	ASSERT_EQ(l4_sum(&p, true, IPPROTO_TCP), 0, "TCP checksum");
	check_bounds(&p, "v4 bounds");

	pkt_spec_udp(&s, "10.1.2.3", "192.0.2.1", 53);
	s.payload_len = 5;
	s.more_frags = true;
	if (!ASSERT_OK(pkt_build(&p, &s), "udp"))
		return;
	ASSERT_EQ(get16(p.buf + p.l3_off + 6), 0x2000, "MF, offset 0");
	ASSERT_EQ(get16(p.buf + p.l4_off + 4), 13, "UDP length");
	ASSERT_EQ(l4_sum(&p, true, IPPROTO_UDP), 0, "UDP checksum");

	pkt_spec_icmp(&s, "10.1.2.3", "192.0.2.1");
	if (ASSERT_OK(pkt_build(&p, &s), "icmp"))
		ASSERT_EQ(l4_sum(&p, true, IPPROTO_ICMP), 0, "ICMP checksum");
	s.frag_offset = 0x2000;
	ASSERT_EQ(pkt_build(&p, &s), -EINVAL, "offset out of range refused");
	s.frag_offset = 0;
	s.ip_opt_len = 6;
	ASSERT_EQ(pkt_build(&p, &s), -EINVAL, "options not a multiple of 4 refused");
	pkt_spec_tcp(&s, "10.1.2.3", "2001:db8::1", 1, 0);
	ASSERT_EQ(pkt_build(&p, &s), -EINVAL, "mixed families refused");
}

static void subtest_ipv6(void)
{
	static const __u8 chain[] = {PKT_EXT_HOPOPTS, PKT_EXT_ROUTING, PKT_EXT_FRAGMENT,
				     PKT_EXT_AH,      PKT_EXT_DSTOPTS, IPPROTO_UDP};
	struct pkt_spec s;
	struct pkt p;
	size_t off;
	int i;

	pkt_spec_udp(&s, "2001:db8::7", "2001:db8::1", 4433);
	s.next = 5;
	s.ext[0] = (struct pkt_ext){.kind = PKT_EXT_HOPOPTS, .len_units = 1};
	s.ext[1] = (struct pkt_ext){.kind = PKT_EXT_ROUTING, .len_units = 0};
	s.ext[2] = (struct pkt_ext){.kind = PKT_EXT_FRAGMENT, .frag_offset = 7, .more_frags = 1};
	s.ext[3] = (struct pkt_ext){.kind = PKT_EXT_AH, .len_units = 4};
	s.ext[4] = (struct pkt_ext){.kind = PKT_EXT_DSTOPTS, .len_units = 2};
	s.payload_len = 9;
	if (!ASSERT_OK(pkt_build(&p, &s), "build"))
		return;
	ASSERT_EQ(get16(p.buf + 12), 0x86dd, "ethertype");
	ASSERT_EQ(get16(p.buf + p.l3_off + 4), p.len - p.l3_off - 40, "payload length");
	ASSERT_EQ(p.buf[p.l3_off + 6], chain[0], "first next header");
	/* walk the chain the way a parser would */
	off = p.l3_off + 40;
	for (i = 0; i < 5; i++) {
		__u8 next = p.buf[off];

		ASSERT_EQ(next, chain[i + 1], "chain");
		off += chain[i] == PKT_EXT_FRAGMENT ? 8
		       : chain[i] == PKT_EXT_AH	    ? (p.buf[off + 1] + 2) * 4
						    : (p.buf[off + 1] + 1) * 8;
	}
	ASSERT_EQ(off, p.l4_off, "chain ends at the UDP header");
	ASSERT_EQ(get16(p.buf + p.l3_off + 40 + 16 + 8 + 2), 7 << 3 | 1, "fragment offset, M");
	ASSERT_EQ(l4_sum(&p, false, IPPROTO_UDP), 0, "UDP checksum over v6 pseudo-header");
	ASSERT_EQ(p.nbounds, 1 + 1 + 5 + 1 + 1, "eth, ip6, 5 ext, udp, payload");
	check_bounds(&p, "v6 bounds");

	pkt_spec_icmp(&s, "2001:db8::7", "2001:db8::1");
	if (ASSERT_OK(pkt_build(&p, &s), "icmp6"))
		ASSERT_EQ(l4_sum(&p, false, IPPROTO_ICMPV6), 0, "ICMPv6 checksum");
}

static void subtest_arp_and_keys(void)
{
	struct sluice_lpm_key k;
	struct sluice_addr a;
	struct pkt_spec s;
	struct pkt p;

	pkt_spec_arp(&s, "10.0.0.1", "10.0.0.2");
	if (ASSERT_OK(pkt_build(&p, &s), "arp")) {
		ASSERT_EQ(p.len, 14 + 28, "ARP frame");
		ASSERT_EQ(get16(p.buf + 12), 0x0806, "ethertype");
		ASSERT_EQ(p.buf[14 + 14 + 3], 1, "sender address");
		ASSERT_EQ(p.buf[14 + 24 + 3], 2, "target address");
	}
	a = pkt_addr("192.0.2.9");
	ASSERT_EQ(a.a[10], 0xff, "IPv4-mapped");
	ASSERT_EQ(a.a[11], 0xff, "IPv4-mapped");
	ASSERT_EQ(a.a[15], 9, "IPv4 last byte");
	k = pkt_lpm_key("10.20.0.0", 16);
	ASSERT_EQ(k.prefixlen, 96 + 16, "IPv4 prefix on the mapped address");
	k = pkt_lpm_key("2001:db8::", 32);
	ASSERT_EQ(k.prefixlen, 32, "IPv6 prefix as is");
}

/* The 16-byte address form, own MACs, IP ID and TCP numbers: what pktgen builds with. */
static void subtest_raw_fields(void)
{
	static const __u8 smac[6] = {0x02, 0xaa, 0, 0, 0, 1}, dmac[6] = {0x02, 0xbb, 0, 0, 0, 2};
	struct sluice_addr sa = pkt_addr("10.9.8.7"), da = pkt_addr("192.0.2.1");
	struct sluice_addr s6 = pkt_addr("2001:db8::7"), d6 = pkt_addr("2001:db8::1");
	struct pkt_spec s;
	struct pkt text, raw;

	pkt_spec_tcp(&s, "10.9.8.7", "192.0.2.1", 8080, PKT_SYN);
	s.payload_len = 10;
	if (!ASSERT_OK(pkt_build(&text, &s), "text form"))
		return;
	s.src = s.dst = NULL;
	s.src_raw = sa.a;
	s.dst_raw = da.a;
	if (!ASSERT_OK(pkt_build(&raw, &s), "16-byte form"))
		return;
	ASSERT_EQ(raw.len, text.len, "same length");
	ASSERT_OK(memcmp(raw.buf, text.buf, text.len), "same bytes");

	s.mac_src = smac;
	s.mac_dst = dmac;
	s.ip_id = 0x1234;
	s.tcp_flags = PKT_PSH | PKT_ACK;
	s.tcp_seq = 0xdeadbeef;
	s.tcp_ack = 7;
	if (!ASSERT_OK(pkt_build(&raw, &s), "own fields"))
		return;
	ASSERT_OK(memcmp(raw.buf, dmac, 6), "destination MAC");
	ASSERT_OK(memcmp(raw.buf + 6, smac, 6), "source MAC");
	ASSERT_EQ(get16(raw.buf + raw.l3_off + 4), 0x1234, "IP ID");
	ASSERT_EQ(get16(raw.buf + raw.l4_off + 4), 0xdead, "seq high");
	ASSERT_EQ(get16(raw.buf + raw.l4_off + 6), 0xbeef, "seq low");
	ASSERT_EQ(get16(raw.buf + raw.l4_off + 10), 7, "ack with PKT_ACK");
	ASSERT_EQ(pkt_csum_fold(pkt_csum_add(0, raw.buf + raw.l3_off, 20)), 0, "IPv4 checksum");
	ASSERT_EQ(l4_sum(&raw, true, IPPROTO_TCP), 0, "TCP checksum");

	pkt_spec_udp(&s, NULL, NULL, 53);
	s.l3 = PKT_L3_IPV6;
	s.src_raw = s6.a;
	s.dst_raw = d6.a;
	if (ASSERT_OK(pkt_build(&raw, &s), "v6 16-byte form"))
		ASSERT_EQ(l4_sum(&raw, false, IPPROTO_UDP), 0, "UDP checksum over v6");
	s.dst_raw = da.a;
	ASSERT_EQ(pkt_build(&raw, &s), -EINVAL, "mixed families refused");
}

void test_pkt(void)
{
	if (test__start_subtest("checksum"))
		subtest_checksum();
	if (test__start_subtest("ipv4"))
		subtest_ipv4();
	if (test__start_subtest("ipv6"))
		subtest_ipv6();
	if (test__start_subtest("arp_and_keys"))
		subtest_arp_and_keys();
	if (test__start_subtest("raw_fields"))
		subtest_raw_fields();
}
