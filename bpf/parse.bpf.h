/* SPDX-License-Identifier: MIT */
/* parse.bpf.h -- bounded packet parser for the XDP admission program
 *
 * Ethernet, up to two VLAN tags (802.1Q / 802.1ad, QinQ), IPv4 with options and
 * fragments, IPv6 with a bounded walk over extension headers, then the TCP or UDP
 * ports. Every read is preceded by a bounds check against data_end; the result is
 * either "a TCP/UDP packet with these ports and this source" or "not ours", never an
 * error path that could abort. Non-first fragments carry no ports and are "not ours".
 */
#ifndef SLUICE_PARSE_BPF_H
#define SLUICE_PARSE_BPF_H

#define ETH_P_IP     0x0800
#define ETH_P_IPV6   0x86DD
#define ETH_P_8021Q  0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_HOPOPTS_  0
#define IPPROTO_TCP_	  6
#define IPPROTO_UDP_	  17
#define IPPROTO_ROUTING_  43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_	  51
#define IPPROTO_DSTOPTS_  60

#define PARSE_MAX_VLAN	 2
#define PARSE_MAX_EXTHDR 6 /* IPv6 extension headers walked before giving up */

#define IP_MF_OFFSET_MASK 0x1fff /* IPv4 fragment offset bits (host order) */
#define IP6_OFFSET_MASK	  0xfff8 /* IPv6 fragment offset bits (host order) */

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

struct parsed {
	struct sluice_addr src;
	__u16 dport; /* host order */
	__u8 proto;  /* IPPROTO_TCP_ or IPPROTO_UDP_ */
	__u8 syn;    /* TCP SYN without ACK: a new connection */
};

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct ip6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ip6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

/* Ports of the L4 header at l4; 0 on success, -1 when truncated or not TCP/UDP. */
static __always_inline int parse_l4(void *l4, void *data_end, __u8 proto, struct parsed *p)
{
	if (proto == IPPROTO_TCP_) {
		struct tcphdr *th = l4;
		__u8 flags;

		if ((void *)(th + 1) > data_end)
			return -1;
		flags = ((__u8 *)th)[13];
		p->syn = (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
		p->dport = bpf_ntohs(th->dest);
	} else if (proto == IPPROTO_UDP_) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return -1;
		p->syn = 0;
		p->dport = bpf_ntohs(uh->dest);
	} else {
		return -1;
	}
	p->proto = proto;
	return 0;
}

static __always_inline int parse_ipv4(void *l3, void *data_end, struct parsed *p)
{
	struct iphdr *iph = l3;
	__u32 ihl;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4)
		return -1;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return -1;
	if (bpf_ntohs(iph->frag_off) & IP_MF_OFFSET_MASK)
		return -1; /* non-first fragment: no ports */
	__builtin_memset(&p->src, 0, 10);
	p->src.a[10] = 0xff;
	p->src.a[11] = 0xff;
	__builtin_memcpy(&p->src.a[12], &iph->saddr, 4);
	return parse_l4(l3 + ihl, data_end, iph->protocol, p);
}

static __always_inline int parse_ipv6(void *l3, void *data_end, struct parsed *p)
{
	struct ipv6hdr *ip6 = l3;
	void *cur = ip6 + 1;
	__u8 next;
	int i;

	if (cur > data_end)
		return -1;
	if (ip6->version != 6)
		return -1;
	__builtin_memcpy(&p->src, &ip6->saddr, 16);
	next = ip6->nexthdr;

#pragma unroll
	for (i = 0; i < PARSE_MAX_EXTHDR; i++) {
		struct ip6_ext *ext = cur;

		if (next == IPPROTO_TCP_ || next == IPPROTO_UDP_)
			return parse_l4(cur, data_end, next, p);
		if ((void *)(ext + 1) > data_end)
			return -1;
		switch (next) {
		case IPPROTO_HOPOPTS_:
		case IPPROTO_ROUTING_:
		case IPPROTO_DSTOPTS_:
			next = ext->nexthdr;
			cur += ((__u32)ext->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH_:
			next = ext->nexthdr;
			cur += ((__u32)ext->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT_: {
			struct ip6_frag *fh = cur;

			if ((void *)(fh + 1) > data_end)
				return -1;
			if (bpf_ntohs(fh->frag_off) & IP6_OFFSET_MASK)
				return -1; /* non-first fragment */
			next = fh->nexthdr;
			cur += sizeof(*fh);
			break;
		}
		default:
			return -1; /* ESP, no-next-header, unknown */
		}
	}
	if (next == IPPROTO_TCP_ || next == IPPROTO_UDP_)
		return parse_l4(cur, data_end, next, p);
	return -1;
}

/* Parse the frame in ctx; 0 and *p filled for a TCP/UDP packet, -1 for anything else. */
static __always_inline int parse_packet(struct xdp_md *ctx, struct parsed *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur = eth + 1;
	__u16 proto;
	int i;

	if (cur > data_end)
		return -1;
	proto = bpf_ntohs(eth->h_proto);

#pragma unroll
	for (i = 0; i < PARSE_MAX_VLAN; i++) {
		struct vlan_tag *tag = cur;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if ((void *)(tag + 1) > data_end)
			return -1;
		proto = bpf_ntohs(tag->proto);
		cur = tag + 1;
	}
	if (proto == ETH_P_IP)
		return parse_ipv4(cur, data_end, p);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(cur, data_end, p);
	return -1;
}

#endif /* SLUICE_PARSE_BPF_H */
