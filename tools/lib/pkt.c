// SPDX-License-Identifier: MIT
/* pkt.c -- the packet builder of the XDP tests, the XDP benchmarks and pktgen
 *
 * Headers are written byte by byte in network order into a fixed buffer (no struct
 * packing to get wrong, no unaligned stores); each writer appends at p->len, zeroing what
 * it takes, and records a boundary. The L4 checksum is computed last, over the
 * pseudo-header, once the payload is in place.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"

static const __u8 mac_dst[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
static const __u8 mac_src[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

static void put16(__u8 *b, __u16 v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static void put32(__u8 *b, __u32 v)
{
	put16(b, v >> 16);
	put16(b + 2, v & 0xffff);
}

static void bound(struct pkt *p)
{
	if (p->nbounds < PKT_MAX_BOUNDS)
		p->bounds[p->nbounds++] = p->len;
}

/* Reserve n bytes at the end; NULL when the buffer would overflow. */
static __u8 *grow(struct pkt *p, size_t n)
{
	__u8 *at;

	if (p->len + n > PKT_MAX)
		return NULL;
	at = p->buf + p->len;
	memset(at, 0, n);
	p->len += n;
	return at;
}

__u32 pkt_csum_add(__u32 sum, const void *data, size_t n)
{
	const __u8 *b = data;
	size_t i;

	/* 32 bits hold the carries of 64 KiB of words; a frame is at most PKT_MAX */
	for (i = 0; i + 1 < n; i += 2)
		sum += (__u32)b[i] << 8 | b[i + 1];
	if (n & 1)
		sum += (__u32)b[n - 1] << 8;
	return sum;
}

__u16 pkt_csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static int parse_addr(const char *text, __u8 out[16], bool *v4)
{
	memset(out, 0, 16);
	if (text && inet_pton(AF_INET, text, out + 12) == 1) {
		out[10] = out[11] = 0xff;
		*v4 = true;
		return 0;
	}
	*v4 = false;
	return text && inet_pton(AF_INET6, text, out) == 1 ? 0 : -EINVAL;
}

/* The address of a spec: its 16-byte form when given, else its text parsed. */
static int spec_addr(const char *text, const __u8 *raw, __u8 out[16], bool *v4)
{
	static const __u8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (!raw)
		return parse_addr(text, out, v4);
	memcpy(out, raw, 16);
	*v4 = !memcmp(raw, mapped, sizeof(mapped));
	return 0;
}

static void spec_base(struct pkt_spec *s, const char *src, const char *dst, int proto)
{
	__u8 a[16];
	bool v4 = true;

	memset(s, 0, sizeof(*s));
	parse_addr(src, a, &v4);
	s->l3 = v4 ? PKT_L3_IPV4 : PKT_L3_IPV6;
	s->src = src;
	s->dst = dst;
	s->proto = proto;
	s->sport = 40000;
	s->ip_id = 0x5a5a;
	s->tcp_seq = 1000;
	s->tcp_ack = 2000;
}

void pkt_spec_tcp(struct pkt_spec *s, const char *src, const char *dst, __u16 dport, __u8 flags)
{
	spec_base(s, src, dst, IPPROTO_TCP);
	s->dport = dport;
	s->tcp_flags = flags;
}

void pkt_spec_udp(struct pkt_spec *s, const char *src, const char *dst, __u16 dport)
{
	spec_base(s, src, dst, IPPROTO_UDP);
	s->dport = dport;
}

void pkt_spec_icmp(struct pkt_spec *s, const char *src, const char *dst)
{
	spec_base(s, src, dst, IPPROTO_ICMP);
	if (s->l3 == PKT_L3_IPV6)
		s->proto = IPPROTO_ICMPV6;
	s->payload_len = 8;
}

void pkt_spec_arp(struct pkt_spec *s, const char *sender, const char *target)
{
	spec_base(s, sender, target, 0);
	s->l3 = PKT_L3_ARP;
}

static int put_eth(struct pkt *p, const struct pkt_spec *s, __u16 ethertype)
{
	__u8 *h = grow(p, 14);
	int i;

	if (s->nvlan < 0 || s->nvlan > 2)
		return -EINVAL;
	memcpy(h, s->mac_dst ? s->mac_dst : mac_dst, 6);
	memcpy(h + 6, s->mac_src ? s->mac_src : mac_src, 6);
	put16(h + 12, s->nvlan ? (s->vlan_tpid[0] ? s->vlan_tpid[0] : PKT_TPID_8021Q) : ethertype);
	bound(p);
	for (i = 0; i < s->nvlan; i++) {
		__u8 *t = grow(p, 4);
		__u16 next = i + 1 < s->nvlan
				 ? (s->vlan_tpid[i + 1] ? s->vlan_tpid[i + 1] : PKT_TPID_8021Q)
				 : ethertype;

		put16(t, s->vlan_id[i] & 0x0fff);
		put16(t + 2, next);
		bound(p);
	}
	return 0;
}

static int put_arp(struct pkt *p, const struct pkt_spec *s)
{
	__u8 sa[16], ta[16], *h;
	bool v4s, v4t;

	if (spec_addr(s->src, s->src_raw, sa, &v4s) || spec_addr(s->dst, s->dst_raw, ta, &v4t) ||
	    !v4s || !v4t)
		return -EINVAL;
	h = grow(p, 28);
	put16(h, 1);	      /* Ethernet */
	put16(h + 2, 0x0800); /* IPv4 */
	h[4] = 6;
	h[5] = 4;
	put16(h + 6, 1); /* request */
	memcpy(h + 8, s->mac_src ? s->mac_src : mac_src, 6);
	memcpy(h + 14, sa + 12, 4);
	memcpy(h + 24, ta + 12, 4);
	bound(p);
	return 0;
}

static int put_ipv4(struct pkt *p, const struct pkt_spec *s, const __u8 *sa, const __u8 *da)
{
	size_t hl = 20 + s->ip_opt_len;
	__u8 *h;

	if (s->ip_opt_len % 4 || s->ip_opt_len > 40 || s->frag_offset > 0x1fff)
		return -EINVAL;
	h = grow(p, hl);
	if (!h)
		return -EINVAL;
	h[0] = 0x40 | (hl / 4);
	h[8] = 64;
	h[9] = (__u8)s->proto;
	put16(h + 4, s->ip_id);
	put16(h + 6, (s->dont_frag ? 0x4000 : 0) | (s->more_frags ? 0x2000 : 0) | s->frag_offset);
	memcpy(h + 12, sa + 12, 4);
	memcpy(h + 16, da + 12, 4);
	if (s->ip_opt_len) {
		memset(h + 20, 1, s->ip_opt_len - 1); /* NOPs */
		h[hl - 1] = 0;			      /* EOL */
	}
	bound(p);
	return 0;
}

static int put_ext(struct pkt *p, const struct pkt_ext *e, __u8 next)
{
	size_t n = e->kind == PKT_EXT_FRAGMENT ? 8
		   : e->kind == PKT_EXT_AH     ? (e->len_units + 2) * 4
					       : (e->len_units + 1) * 8;
	__u8 *h = grow(p, n);

	if (!h || e->frag_offset > 0x1fff)
		return -EINVAL;
	h[0] = next;
	if (e->kind == PKT_EXT_FRAGMENT) {
		put16(h + 2, (__u16)(e->frag_offset << 3 | (e->more_frags ? 1 : 0)));
		put32(h + 4, 0x12345678);
	} else {
		h[1] = (__u8)e->len_units;
		if (e->kind != PKT_EXT_AH && n > 2) {
			h[2] = 1; /* PadN option covering the rest */
			h[3] = (__u8)(n - 4);
		}
	}
	bound(p);
	return 0;
}

static int put_ipv6(struct pkt *p, const struct pkt_spec *s, const __u8 *sa, const __u8 *da)
{
	__u8 *h = grow(p, 40);
	int i;

	if (s->next < 0 || s->next > PKT_MAX_EXT)
		return -EINVAL;
	h[0] = 0x60;
	h[6] = s->next ? (__u8)s->ext[0].kind : (__u8)s->proto;
	h[7] = 64;
	memcpy(h + 8, sa, 16);
	memcpy(h + 24, da, 16);
	bound(p);
	for (i = 0; i < s->next; i++) {
		__u8 next = i + 1 < s->next ? (__u8)s->ext[i + 1].kind : (__u8)s->proto;

		if (put_ext(p, &s->ext[i], next))
			return -EINVAL;
	}
	return 0;
}

static int put_l4(struct pkt *p, const struct pkt_spec *s)
{
	size_t n = s->proto == IPPROTO_TCP				    ? 20
		   : s->proto == IPPROTO_UDP				    ? 8
		   : s->proto == IPPROTO_ICMP || s->proto == IPPROTO_ICMPV6 ? 4
									    : 0;
	__u8 *h = grow(p, n);

	if (!h)
		return -EINVAL;
	if (s->proto == IPPROTO_TCP) {
		put16(h, s->sport);
		put16(h + 2, s->dport);
		put32(h + 4, s->tcp_seq);
		put32(h + 8, s->tcp_flags & PKT_ACK ? s->tcp_ack : 0);
		h[12] = 5 << 4;
		h[13] = s->tcp_flags;
		put16(h + 14, 65535);
	} else if (s->proto == IPPROTO_UDP) {
		put16(h, s->sport);
		put16(h + 2, s->dport);
	} else if (n) {
		h[0] = s->proto == IPPROTO_ICMP ? 8 : 128; /* echo request */
	}
	if (n)
		bound(p);
	return 0;
}

/* L4 checksum over the pseudo-header, and the IPv4 header checksum / UDP length. */
static void finish(struct pkt *p, const struct pkt_spec *s, const __u8 *sa, const __u8 *da)
{
	size_t l4len = p->len - p->l4_off;
	__u8 *l4 = p->buf + p->l4_off, *l3 = p->buf + p->l3_off;
	bool v4 = s->l3 == PKT_L3_IPV4;
	int csum_at = s->proto == IPPROTO_TCP ? 16 : s->proto == IPPROTO_UDP ? 6 : 2;
	__u32 sum = 0;

	if (v4) {
		put16(l3 + 2, (__u16)(p->len - p->l3_off));
		put16(l3 + 10, pkt_csum_fold(pkt_csum_add(0, l3, (l3[0] & 0xf) * 4)));
	} else {
		put16(l3 + 4, (__u16)(p->len - p->l3_off - 40));
	}
	if (s->proto == IPPROTO_UDP)
		put16(l4 + 4, (__u16)l4len);
	if (p->l4_end == p->l4_off || (s->l3 == PKT_L3_IPV4 && s->frag_offset))
		return; /* unknown L4 or non-first fragment: no checksum to fill */
	if (s->proto != IPPROTO_ICMP) {
		__u8 ph[8] = {0};

		sum = pkt_csum_add(0, v4 ? sa + 12 : sa, v4 ? 4 : 16);
		sum = pkt_csum_add(sum, v4 ? da + 12 : da, v4 ? 4 : 16);
		put32(ph, (__u32)l4len);
		ph[7] = (__u8)s->proto;
		sum = pkt_csum_add(sum, ph, 8);
	}
	put16(l4 + csum_at, pkt_csum_fold(pkt_csum_add(sum, l4, l4len)));
}

int pkt_build(struct pkt *p, const struct pkt_spec *s)
{
	__u8 sa[16], da[16], *pay;
	bool v4s = false, v4d = false;
	__u16 et = s->l3 == PKT_L3_IPV4	  ? 0x0800
		   : s->l3 == PKT_L3_IPV6 ? 0x86dd
		   : s->l3 == PKT_L3_ARP  ? 0x0806
					  : s->ethertype;
	size_t i;

	p->len = p->l3_off = p->l4_off = p->l4_end = 0;
	p->nbounds = 0;
	if (put_eth(p, s, et))
		return -EINVAL;
	p->l3_off = p->len;
	if (s->l3 == PKT_L3_RAW) {
		p->l4_off = p->l4_end = p->len;
		return 0;
	}
	if (s->l3 == PKT_L3_ARP) {
		p->l4_off = p->l4_end = p->len;
		return put_arp(p, s);
	}
	if (spec_addr(s->src, s->src_raw, sa, &v4s) || spec_addr(s->dst, s->dst_raw, da, &v4d) ||
	    v4s != v4d || v4s != (s->l3 == PKT_L3_IPV4))
		return -EINVAL;
	if (v4s ? put_ipv4(p, s, sa, da) : put_ipv6(p, s, sa, da))
		return -EINVAL;
	p->l4_off = p->len;
	if (put_l4(p, s))
		return -EINVAL;
	p->l4_end = p->len;
	pay = grow(p, s->payload_len);
	if (!pay)
		return -EINVAL;
	for (i = 0; i < s->payload_len; i++)
		pay[i] = (__u8)('a' + i % 26);
	if (s->payload_len)
		bound(p);
	finish(p, s, sa, da);
	return 0;
}

struct sluice_addr pkt_addr(const char *text)
{
	struct sluice_addr a = {0};
	bool v4;

	if (parse_addr(text, a.a, &v4)) {
		fprintf(stderr, "pkt_addr: \"%s\" is not an IPv4 or IPv6 address\n", text);
		abort();
	}
	return a;
}

struct sluice_lpm_key pkt_lpm_key(const char *text, unsigned len)
{
	struct sluice_lpm_key k = {0};
	bool v4;

	if (parse_addr(text, k.a, &v4) || len > (v4 ? 32u : 128u)) {
		fprintf(stderr, "pkt_lpm_key: \"%s/%u\" is not a prefix\n", text, len);
		abort();
	}
	k.prefixlen = v4 ? 96 + len : len;
	return k;
}

void pkt_rng_seed(struct pkt_rng *r, __u64 seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

__u64 pkt_rng_next(struct pkt_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

__u32 pkt_rng_below(struct pkt_rng *r, __u32 n)
{
	return n ? (__u32)((pkt_rng_next(r) >> 32) % n) : 0;
}
