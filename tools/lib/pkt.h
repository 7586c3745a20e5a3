/* SPDX-License-Identifier: MIT */
/* pkt.h -- the packet builder of the XDP tests, the XDP benchmarks and pktgen
 *
 * A packet is described by a struct pkt_spec (start from pkt_spec_tcp()/pkt_spec_udp()/...,
 * then change fields) and built into a struct pkt: Ethernet, 0-2 VLAN tags (802.1Q or
 * 802.1ad for QinQ), then IPv4 (options, fragment fields) or IPv6 (a list of extension
 * headers: hop-by-hop, routing, destination options, fragment, AH), then TCP, UDP, ICMP or
 * ICMPv6 and a payload; or an ARP request. Lengths are right and the IPv4 header, TCP, UDP
 * and ICMP checksums are computed. The builder records every header boundary (offsets
 * where one header ends and the next begins), so truncation tests can cut at each one.
 *
 * Addresses are text ("10.1.2.3", "2001:db8::1"); pkt_addr() turns one into the 16-byte
 * IPv4-mapped form the XDP maps use. A sender that rotates through many sources (pktgen)
 * gives that 16-byte form instead (src_raw, dst_raw), so no text is parsed per packet, and
 * its own MAC addresses, IP ID and TCP sequence numbers.
 *
 * The Internet checksum (RFC 1071) is here once, pkt_csum_add/pkt_csum_fold, for the builder
 * and for whoever verifies a packet. No libraries: pktgen links this object alone.
 */
#ifndef SLUICE_PKT_H
#define SLUICE_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "sluice/abi.h"

#define PKT_MAX	       2048
#define PKT_MAX_BOUNDS 24
#define PKT_MAX_EXT    8

/* TCP flag bits */
#define PKT_FIN 0x01
#define PKT_SYN 0x02
#define PKT_RST 0x04
#define PKT_PSH 0x08
#define PKT_ACK 0x10

#define PKT_TPID_8021Q	0x8100
#define PKT_TPID_8021AD 0x88a8

enum pkt_l3 {
	PKT_L3_IPV4,
	PKT_L3_IPV6,
	PKT_L3_ARP,
	PKT_L3_RAW, /* Ethernet header only, with spec.ethertype */
};

/* IPv6 extension header kinds (their next-header numbers). */
enum pkt_ext_kind {
	PKT_EXT_HOPOPTS = 0,
	PKT_EXT_ROUTING = 43,
	PKT_EXT_FRAGMENT = 44,
	PKT_EXT_AH = 51,
	PKT_EXT_DSTOPTS = 60,
};

struct pkt_ext {
	enum pkt_ext_kind kind;
	unsigned len_units;   /* hop/routing/dst: (len_units+1)*8 bytes; AH: (len_units+2)*4 */
	unsigned frag_offset; /* fragment: offset in 8-byte units */
	bool more_frags;      /* fragment: M flag */
};

struct pkt_spec {
	enum pkt_l3 l3;
	__u16 ethertype;    /* PKT_L3_RAW only */
	int nvlan;	    /* 0..2 */
	__u16 vlan_tpid[2]; /* outer first; 0 = 802.1Q */
	__u16 vlan_id[2];
	const char *src, *dst; /* addresses as text; family must match l3 */
	const __u8 *src_raw;   /* when set: src as 16 bytes, IPv4 mapped (::ffff:a.b.c.d) */
	const __u8 *dst_raw;   /* likewise for dst */
	const __u8 *mac_src;   /* 6 bytes; NULL: 02:00:00:00:00:01 */
	const __u8 *mac_dst;   /* 6 bytes; NULL: 02:00:00:00:00:02 */
	__u16 ip_id;	       /* IPv4 identification */
	int proto;	       /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, other */
	unsigned ip_opt_len;   /* IPv4 options bytes, multiple of 4, <= 40 (NOPs + EOL) */
	unsigned frag_offset;  /* IPv4: fragment offset in 8-byte units */
	bool more_frags;       /* IPv4: MF */
	bool dont_frag;	       /* IPv4: DF */
	int next;	       /* IPv6: number of extension headers in ext[] */
	struct pkt_ext ext[PKT_MAX_EXT];
	__u16 sport, dport;
	__u8 tcp_flags;
	__u32 tcp_seq, tcp_ack; /* the ack number is written only with PKT_ACK */
	size_t payload_len;	/* bytes after the L4 header (pattern-filled) */
};

struct pkt {
	__u8 buf[PKT_MAX];
	size_t len;
	size_t l3_off, l4_off; /* where the IP (or ARP) and L4 headers begin */
	size_t l4_end;	       /* end of the L4 header: shortest frame that parses */
	int nbounds;
	size_t bounds[PKT_MAX_BOUNDS]; /* every header boundary, ascending, ending at len */
};

/* Defaults: TCP (or UDP) from src to dst (text addresses, v4 or v6 chosen by src's form),
 * sport 40000, IP ID 0x5a5a, TCP seq 1000 and ack 2000, no VLAN, no payload. */
void pkt_spec_tcp(struct pkt_spec *s, const char *src, const char *dst, __u16 dport, __u8 flags);
void pkt_spec_udp(struct pkt_spec *s, const char *src, const char *dst, __u16 dport);
void pkt_spec_icmp(struct pkt_spec *s, const char *src, const char *dst);
void pkt_spec_arp(struct pkt_spec *s, const char *sender, const char *target);

/* Build s into p. Returns 0, or -EINVAL when the spec is inconsistent (bad address, too
 * long, option length not a multiple of 4, too many headers); p is undefined then. Only
 * the bytes of the packet are written, not the whole buffer, so building is cheap enough
 * for a sender's hot loop. */
int pkt_build(struct pkt *p, const struct pkt_spec *s);

/* The Internet checksum (RFC 1071): add n bytes at b (big-endian 16-bit words, an odd last
 * byte padded with zero) to the running sum, then fold it to the 16-bit one's complement
 * that goes on the wire (host order; store it big-endian). Over data that includes its own
 * correct checksum, the folded sum is 0 (pkt_csum_fold(pkt_csum_add(0, ...)) == 0). */
__u32 pkt_csum_add(__u32 sum, const void *b, size_t n);
__u16 pkt_csum_fold(__u32 sum);

/* An address in text form as the 16-byte key the maps use (IPv4 mapped). Aborts the
 * test process on a malformed literal: these are test constants. */
struct sluice_addr pkt_addr(const char *text);

/* LPM key for text/len where len counts bits of the address as written (an IPv4 /24 is 24;
 * it is stored as 96 + 24). */
struct sluice_lpm_key pkt_lpm_key(const char *text, unsigned len);

/* Deterministic PRNG (xorshift64*) for reproducible random tests; never returns 0 state. */
struct pkt_rng {
	__u64 s;
};
void pkt_rng_seed(struct pkt_rng *r, __u64 seed);
__u64 pkt_rng_next(struct pkt_rng *r);
/* uniform-ish in [0, n) */
__u32 pkt_rng_below(struct pkt_rng *r, __u32 n);

#endif /* SLUICE_PKT_H */
