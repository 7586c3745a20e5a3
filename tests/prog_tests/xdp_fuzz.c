// SPDX-License-Identifier: MIT
/* xdp_fuzz.c -- 100,000 random and mutated frames: never XDP_ABORTED, every one counted
 *
 * A seeded PRNG (the seed is printed; set SLUICE_FUZZ_SEED to replay one) drives three
 * kinds of frames: random bytes behind a plausible Ethernet type, well-formed packets of
 * random shape (VLAN/QinQ, IPv4 options and fragments, IPv6 extension chains, TCP/UDP/ICMP,
 * service and other ports, sources that are tenants, prefixes, denied or anonymous), and
 * those same packets with bytes flipped and cut short. The configuration moves between
 * normal, emergency and dry-run as it goes and limits are tight, so every verdict occurs.
 *
 * Accounting: each frame returns XDP_PASS or XDP_DROP; the counters summed over all slots
 * and CPUs equal the frames and bytes sent, the PASS+OTHER counters equal the XDP_PASS
 * returns outside dry-run, and the drop verdicts equal the XDP_DROP returns.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/array_size.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define FRAMES 100000
#define PHASE  10000 /* frames between configuration changes */

static const char *const srcs4[] = {"10.1.2.3",	  "10.1.2.4",	  "10.9.9.9",	  "10.66.1.1",
				    "192.0.2.55", "198.51.100.1", "203.0.113.77", "10.200.0.1"};
static const char *const srcs6[] = {"2001:db8:1::1",	"2001:db8:1::2", "2001:db8:dead::9",
				    "2001:db8:ffff::1", "fe80::1",	 "::ffff:10.1.2.3"};
static const __u16 ports[] = {443, 80, 53, 4433, 22, 8080, 0, 65535};
static const __u16 ethertypes[] = {0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x88cc, 0x0000};
static const enum pkt_ext_kind ext_kinds[] = {PKT_EXT_HOPOPTS, PKT_EXT_ROUTING, PKT_EXT_FRAGMENT,
					      PKT_EXT_AH, PKT_EXT_DSTOPTS};

#define PICK(r, arr) (arr)[pkt_rng_below((r), sizeof(arr) / sizeof((arr)[0]))]

static bool setup(struct xfx *x)
{
	bool ok = ASSERT_OK(xfx_port(x, 443, SLUICE_PORT_TCP | SLUICE_PORT_UDP), "443") &&
		  ASSERT_OK(xfx_port(x, 80, SLUICE_PORT_TCP), "80") &&
		  ASSERT_OK(xfx_port(x, 53, SLUICE_PORT_UDP), "53") &&
		  ASSERT_OK(xfx_port(x, 65535, SLUICE_PORT_TCP), "65535");

	/* tight limits (ms intervals, tiny bursts) so PASS and both LIMITs all occur */
	ok = ok && ASSERT_OK(xfx_tenant(x, 1, "(anon)", SLUICE_CLASS_LOW, 5000000, 3, 1000000, 20),
			     "anon");
	ok = ok && ASSERT_OK(xfx_tenant(x, 2, "a", SLUICE_CLASS_NORMAL, 2000000, 5, 0, 0), "a");
	ok = ok && ASSERT_OK(xfx_tenant(x, 3, "b", SLUICE_CLASS_CRITICAL, 0, 0, 1000000, 4), "b");
	ok = ok && ASSERT_OK(xfx_tenant(x, 4, "c", SLUICE_CLASS_LOW, 0, 0, 0, 0), "c");
	ok = ok && ASSERT_OK(xfx_src_exact(x, "10.1.2.3", 2), "src a") &&
	     ASSERT_OK(xfx_src_prefix(x, "10.1.0.0", 16, 3), "prefix b") &&
	     ASSERT_OK(xfx_src_prefix(x, "2001:db8:1::", 48, 4), "prefix c") &&
	     ASSERT_OK(xfx_deny_exact(x, "10.9.9.9", 0), "deny") &&
	     ASSERT_OK(xfx_deny_prefix(x, "10.66.0.0", 16, 0), "deny prefix") &&
	     ASSERT_OK(xfx_deny_prefix(x, "2001:db8:dead::", 48, 0), "deny prefix v6") &&
	     ASSERT_OK(xfx_bump_generation(x), "bump");
	return ok;
}

static void random_spec(struct pkt_rng *r, struct pkt_spec *s)
{
	bool v6 = pkt_rng_below(r, 2);
	int i, protos[] = {IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 47};

	memset(s, 0, sizeof(*s));
	s->l3 = v6 ? PKT_L3_IPV6 : PKT_L3_IPV4;
	s->src = v6 ? PICK(r, srcs6) : PICK(r, srcs4);
	s->dst = v6 ? "2001:db8::1" : "192.0.2.1";
	s->proto = PICK(r, protos);
	if (v6 && s->proto == IPPROTO_ICMP)
		s->proto = IPPROTO_ICMPV6;
	s->sport = (__u16)pkt_rng_next(r);
	s->dport = pkt_rng_below(r, 2)	 ? 443
		   : pkt_rng_below(r, 8) ? PICK(r, ports)
					 : (__u16)pkt_rng_next(r);
	s->tcp_flags = pkt_rng_below(r, 2) ? PKT_SYN : (__u8)pkt_rng_next(r);
	s->payload_len = pkt_rng_below(r, 4) ? pkt_rng_below(r, 64) : pkt_rng_below(r, 1400);
	s->nvlan = pkt_rng_below(r, 4) ? 0 : 1 + pkt_rng_below(r, 2);
	for (i = 0; i < s->nvlan; i++) {
		s->vlan_tpid[i] = pkt_rng_below(r, 2) ? PKT_TPID_8021Q : PKT_TPID_8021AD;
		s->vlan_id[i] = (__u16)pkt_rng_below(r, 4096);
	}
	if (!v6) {
		s->ip_opt_len = pkt_rng_below(r, 3) ? 0 : 4 * pkt_rng_below(r, 11);
		s->more_frags = !pkt_rng_below(r, 8);
		s->frag_offset = pkt_rng_below(r, 8) ? 0 : pkt_rng_below(r, 0x2000);
		return;
	}
	s->next = pkt_rng_below(r, 2) ? 0 : pkt_rng_below(r, PKT_MAX_EXT + 1);
	for (i = 0; i < s->next; i++) {
		s->ext[i].kind = PICK(r, ext_kinds);
		s->ext[i].len_units = pkt_rng_below(r, 4);
		s->ext[i].frag_offset = pkt_rng_below(r, 4) ? 0 : pkt_rng_below(r, 0x2000);
		s->ext[i].more_frags = pkt_rng_below(r, 2);
	}
}

/* Build frame number i into p: random bytes, a random packet, or a mutated one. */
static void make_frame(struct pkt_rng *r, struct pkt *p)
{
	unsigned kind = pkt_rng_below(r, 8), flips, j;
	struct pkt_spec s;

	if (kind < 2) { /* 1/4 random bytes */
		memset(p, 0, sizeof(*p));
		p->len = 14 + pkt_rng_below(r, 300);
		for (j = 0; j < p->len; j++)
			p->buf[j] = (__u8)pkt_rng_next(r);
		p->buf[12] = PICK(r, ethertypes) >> 8;
		p->buf[13] = PICK(r, ethertypes) & 0xff;
		return;
	}
	random_spec(r, &s);
	if (pkt_build(p, &s)) {
		pkt_spec_arp(&s, "10.0.0.1", "10.0.0.2");
		pkt_build(p, &s);
	}
	if (kind < 6) /* 1/2 well-formed */
		return;
	/* mutate: flip bytes, mostly in the headers, and maybe cut the frame short */
	flips = 1 + pkt_rng_below(r, 4);
	for (j = 0; j < flips; j++) {
		size_t at =
		    pkt_rng_below(r, (__u32)(p->l4_end + 8 < p->len ? p->l4_end + 8 : p->len));

		p->buf[at] ^= (__u8)(1 + pkt_rng_below(r, 255));
	}
	if (pkt_rng_below(r, 3) == 0)
		p->len = 14 + pkt_rng_below(r, (__u32)(p->len - 14 + 1));
}

/* Move the configuration on at each phase: normal, emergency, dry-run, emergency+dry-run,
 * no-cache, and generation bumps in between. */
static bool next_phase(struct xfx *x, int phase)
{
	__u32 level = phase % 4 == 1 || phase % 4 == 3 ? SLUICE_SHED_EMERGENCY : SLUICE_SHED_NORMAL;
	__u32 flags = (phase % 4 >= 2 ? SLUICE_CFG_DRY_RUN : 0) |
		      (phase == 4 || phase == 9 ? SLUICE_CFG_NO_CACHE : 0);

	return !xfx_set_shed(x, level, 0, 400, 700) && !xfx_set_flags(x, flags) &&
	       !xfx_bump_generation(x);
}

/* Counters of slots [0, nslots) summed over CPUs: packets per verdict, and all bytes. */
static int sum_slots(struct xfx *x, __u32 nslots, long long pk[SLUICE_V_MAX], long long *bytes)
{
	struct sluice_counters c;
	__u32 slot;
	int v, ret;

	memset(pk, 0, sizeof(long long) * SLUICE_V_MAX);
	*bytes = 0;
	for (slot = 0; slot < nslots; slot++) {
		ret = sluice_bpf_counters_sum(x->fd[SLUICE_M_COUNTERS], slot, &c);
		if (ret)
			return ret;
		for (v = 0; v < SLUICE_V_MAX; v++) {
			pk[v] += (long long)c.packets[v];
			*bytes += (long long)c.bytes[v];
		}
	}
	return 0;
}

static long long pass_verdicts(const long long pk[SLUICE_V_MAX])
{
	return pk[SLUICE_V_PASS] + pk[SLUICE_V_OTHER];
}

static long long all_verdicts(const long long pk[SLUICE_V_MAX])
{
	long long n = 0;
	int v;

	for (v = 0; v < SLUICE_V_MAX; v++)
		n += pk[v];
	return n;
}

/* Run one phase of PHASE frames; returns false when a run failed or aborted. Checks the
 * verdict counters moved exactly as the actions say (dry-run: everything passes). */
static bool run_phase(struct xfx *x, struct pkt_rng *r, int phase, long long *frames,
		      long long *bytes)
{
	long long before[SLUICE_V_MAX], after[SLUICE_V_MAX], b0, b1, passes = 0, drops = 0;
	bool dry = phase % 4 >= 2;
	struct pkt p;
	int i, ret;

	if (!ASSERT_TRUE(next_phase(x, phase), "phase") ||
	    !ASSERT_OK(sum_slots(x, 8, before, &b0), "counters"))
		return false;
	for (i = 0; i < PHASE; i++) {
		make_frame(r, &p);
		ret = xfx_run(x, p.buf, p.len);
		if (ret != XDP_PASS && ret != XDP_DROP) {
			printf("phase %d frame %d (len %zu): action %d\n", phase, i, p.len, ret);
			ASSERT_TRUE(false, "never anything but XDP_PASS or XDP_DROP");
			return false;
		}
		passes += ret == XDP_PASS;
		drops += ret == XDP_DROP;
		*bytes += (long long)p.len;
	}
	*frames += PHASE;
	if (!ASSERT_OK(sum_slots(x, 8, after, &b1), "counters"))
		return false;
	for (i = 0; i < SLUICE_V_MAX; i++)
		after[i] -= before[i];
	ASSERT_EQ(all_verdicts(after), PHASE, "each frame of the phase counted once");
	if (dry) {
		ASSERT_EQ(drops, 0, "dry-run never drops");
	} else {
		ASSERT_EQ(pass_verdicts(after), passes, "PASS+OTHER verdicts = XDP_PASS actions");
		ASSERT_EQ(all_verdicts(after) - pass_verdicts(after), drops,
			  "drop verdicts = XDP_DROP actions");
	}
	return true;
}

static void subtest_random(struct xfx *x)
{
	const char *env = getenv("SLUICE_FUZZ_SEED");
	__u64 seed = env ? strtoull(env, NULL, 0) : (__u64)time(NULL) ^ ((__u64)getpid() << 32);
	long long frames = 0, bytes = 0, pk[SLUICE_V_MAX], pk8[SLUICE_V_MAX], by, by8;
	struct pkt_rng r;
	int phase, v;

	printf("xdp_fuzz: seed %llu (replay: SLUICE_FUZZ_SEED=%llu)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	pkt_rng_seed(&r, seed);
	for (phase = 0; phase < FRAMES / PHASE; phase++)
		if (!run_phase(x, &r, phase, &frames, &bytes))
			return;
	if (!ASSERT_OK(sum_slots(x, SLUICE_MAX_TENANTS, pk, &by), "all slots") ||
	    !ASSERT_OK(sum_slots(x, 8, pk8, &by8), "used slots"))
		return;
	for (v = 0; v < SLUICE_V_MAX; v++) {
		printf("verdict %d: %lld packets\n", v, pk[v]);
		ASSERT_GT(pk[v], 0, "every verdict occurred");
	}
	ASSERT_EQ(frames, FRAMES, "every frame ran");
	ASSERT_EQ(all_verdicts(pk), frames, "counters over all slots and CPUs = frames sent");
	ASSERT_EQ(by, bytes, "bytes over all slots and CPUs = bytes sent");
	ASSERT_EQ(all_verdicts(pk8), frames, "nothing counted on a slot no source maps to");
}

void test_xdp_fuzz(void)
{
	static const struct xfx_subtest subs[] = {
	    {"random", subtest_random},
	};

	xfx_run_subtests(subs, ARRAY_SIZE(subs), setup);
}
