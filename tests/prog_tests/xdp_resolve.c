// SPDX-License-Identifier: MIT
/* xdp_resolve.c -- source resolution: deny list (exact, prefix, expiry) and tenant lookup
 *
 * Every tenant here is unlimited, so the only thing that decides a verdict is resolution:
 * deny entries drop (DENY, counted on the source's slot), tenants are found by exact
 * address, then by the longest matching prefix, else the source is anonymous. Each case
 * also checks the cached resolution in src_state (slot, deny deadline, generation) and that
 * the cache is dropped by a generation bump, as sluicectl will do after every change.
 */
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "lib/array_size.h"
#include "lib/clock.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define DST4 "192.0.2.1"
#define DST6 "2001:db8::1"
#define PORT 443
#define MS   1000000ULL

static bool setup(struct xfx *x)
{
	bool ok =
	    ASSERT_OK(xfx_port(x, PORT, SLUICE_PORT_TCP | SLUICE_PORT_UDP), "port") &&
	    ASSERT_OK(xfx_tenant(x, SLUICE_SLOT_ANON, "(anonymous)", SLUICE_CLASS_LOW, 0, 0, 0, 0),
		      "anon");
	__u32 slot;

	for (slot = 2; ok && slot < 10; slot++)
		ok = ASSERT_OK(xfx_tenant(x, slot, "t", SLUICE_CLASS_NORMAL, 0, 0, 0, 0), "tenant");
	return ok;
}

/* Send one TCP SYN from src (v4 or v6) to the service; returns the XDP action. */
static int syn_from(struct xfx *x, const char *src)
{
	struct pkt_spec s;

	pkt_spec_tcp(&s, src, strchr(src, ':') ? DST6 : DST4, PORT, PKT_SYN);
	return xfx_run_spec(x, &s);
}

/* Send from src and check the action and that exactly (slot, verdict) counted it. */
static void expect(struct xfx *x, const char *src, __u32 slot, __u32 verdict, const char *what)
{
	long long before = xfx_count(x, slot, verdict, NULL);
	long long all = xfx_count_all(x, 16);
	int act = verdict == SLUICE_V_PASS ? XDP_PASS : XDP_DROP;

	ASSERT_EQ(syn_from(x, src), act, what);
	ASSERT_EQ(xfx_count(x, slot, verdict, NULL) - before, 1, what);
	ASSERT_EQ(xfx_count_all(x, 16) - all, 1, "counted once");
}

static void check_state(struct xfx *x, const char *src, __u32 slot, __u64 deny_until,
			const char *what)
{
	struct sluice_config cfg;
	struct sluice_src st;

	if (!ASSERT_OK(xfx_src_state(x, src, &st), what) ||
	    !ASSERT_OK(xfx_config_get(x, &cfg), "cfg"))
		return;
	ASSERT_EQ(st.slot, slot, what);
	ASSERT_EQ(st.deny_until_ns, deny_until, what);
	ASSERT_EQ(st.generation, cfg.generation, what);
	ASSERT_LE(st.resolved_ns, clock_mono_ns(), what);
}

static void subtest_deny_exact(struct xfx *x)
{
	ASSERT_OK(xfx_deny_exact(x, "203.0.113.5", 0), "deny v4");
	ASSERT_OK(xfx_deny_exact(x, "2001:db8:bad::5", 0), "deny v6");
	ASSERT_OK(xfx_src_exact(x, "203.0.113.6", 3), "tenant neighbour");
	ASSERT_OK(xfx_src_exact(x, "2001:db8:bad::6", 3), "tenant denied too");
	ASSERT_OK(xfx_deny_exact(x, "2001:db8:bad::6", 0), "deny the tenant's address");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	expect(x, "203.0.113.5", SLUICE_SLOT_ANON, SLUICE_V_DENY, "v4 hit");
	check_state(x, "203.0.113.5", SLUICE_SLOT_ANON, ~0ULL, "v4 hit cached forever");
	expect(x, "203.0.113.5", SLUICE_SLOT_ANON, SLUICE_V_DENY, "v4 hit from cache");
	expect(x, "2001:db8:bad::5", SLUICE_SLOT_ANON, SLUICE_V_DENY, "v6 hit");
	expect(x, "2001:db8:bad::6", 3, SLUICE_V_DENY, "tenant source denied, counted on tenant");
	expect(x, "203.0.113.6", 3, SLUICE_V_PASS, "v4 miss next door");
	expect(x, "203.0.113.4", SLUICE_SLOT_ANON, SLUICE_V_PASS, "v4 miss anonymous");
	expect(x, "2001:db8:bad::4", SLUICE_SLOT_ANON, SLUICE_V_PASS, "v6 miss");
	/* an IPv6 source whose low 32 bits equal a denied IPv4 address is another address */
	expect(x, "64:ff9b::203.0.113.5", SLUICE_SLOT_ANON, SLUICE_V_PASS, "v6 not v4-mapped");
	/* the v4-mapped form of a denied v4 address is the same key */
	expect(x, "::ffff:203.0.113.5", SLUICE_SLOT_ANON, SLUICE_V_DENY, "v4-mapped v6 is v4");

	/* removal: the cached deny holds until the generation moves, then it is gone */
	{
		struct sluice_addr a = pkt_addr("203.0.113.5");

		ASSERT_OK(bpf_map_delete_elem(x->fd[SLUICE_M_DENY_EXACT], &a) ? -errno : 0, "del");
	}
	expect(x, "203.0.113.5", SLUICE_SLOT_ANON, SLUICE_V_DENY, "cache still denies");
	ASSERT_OK(xfx_bump_generation(x), "bump");
	expect(x, "203.0.113.5", SLUICE_SLOT_ANON, SLUICE_V_PASS, "removed after bump");
	check_state(x, "203.0.113.5", SLUICE_SLOT_ANON, 0, "state no longer denied");
}

static void subtest_deny_prefix(struct xfx *x)
{
	ASSERT_OK(xfx_deny_prefix(x, "10.66.0.0", 16, 0), "deny /16");
	ASSERT_OK(xfx_deny_prefix(x, "2001:db8:dead::", 48, 0), "deny /48");
	ASSERT_OK(xfx_src_prefix(x, "10.66.7.0", 24, 4), "tenant inside the denied range");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	expect(x, "10.66.1.1", SLUICE_SLOT_ANON, SLUICE_V_DENY, "v4 prefix hit");
	expect(x, "10.66.255.254", SLUICE_SLOT_ANON, SLUICE_V_DENY, "v4 prefix hit, far end");
	expect(x, "10.66.7.7", 4, SLUICE_V_DENY, "deny beats the tenant");
	expect(x, "10.67.0.1", SLUICE_SLOT_ANON, SLUICE_V_PASS, "v4 prefix miss");
	expect(x, "10.65.255.255", SLUICE_SLOT_ANON, SLUICE_V_PASS, "v4 prefix miss below");
	expect(x, "2001:db8:dead:1::1", SLUICE_SLOT_ANON, SLUICE_V_DENY, "v6 prefix hit");
	expect(x, "2001:db8:deaf::1", SLUICE_SLOT_ANON, SLUICE_V_PASS, "v6 prefix miss");
	check_state(x, "10.66.1.1", SLUICE_SLOT_ANON, ~0ULL, "prefix deny cached");
}

/* Expiry: a deny with a deadline drops until it passes, then the same (cached) source is
 * admitted without any generation bump; an entry already expired never drops. */
static void subtest_deny_expiry(struct xfx *x)
{
	__u64 now = clock_mono_ns(), until = now + 300 * MS;

	ASSERT_OK(xfx_deny_exact(x, "203.0.113.50", until), "deny exact 300ms");
	ASSERT_OK(xfx_deny_prefix(x, "10.77.0.0", 16, until), "deny prefix 300ms");
	ASSERT_OK(xfx_deny_exact(x, "203.0.113.51", now - 1), "deny exact expired");
	ASSERT_OK(xfx_deny_prefix(x, "10.78.0.0", 16, now - 1), "deny prefix expired");
	/* an expired exact entry does not hide a live prefix entry */
	ASSERT_OK(xfx_deny_exact(x, "10.77.1.2", now - 1), "expired exact inside live prefix");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	expect(x, "203.0.113.50", SLUICE_SLOT_ANON, SLUICE_V_DENY, "exact before expiry");
	check_state(x, "203.0.113.50", SLUICE_SLOT_ANON, until, "deadline cached");
	expect(x, "10.77.3.4", SLUICE_SLOT_ANON, SLUICE_V_DENY, "prefix before expiry");
	expect(x, "10.77.1.2", SLUICE_SLOT_ANON, SLUICE_V_DENY, "prefix behind expired exact");
	expect(x, "203.0.113.51", SLUICE_SLOT_ANON, SLUICE_V_PASS, "exact already expired");
	expect(x, "10.78.1.1", SLUICE_SLOT_ANON, SLUICE_V_PASS, "prefix already expired");
	if (!ASSERT_LT(clock_mono_ns(), until, "still before the deadline (machine very slow?)"))
		return;
	/* the program's clock may lag by a tick: expiry is seen up to that much later */
	while (clock_mono_ns() <= until + xfx_clock_slack())
		usleep(10000);
	expect(x, "203.0.113.50", SLUICE_SLOT_ANON, SLUICE_V_PASS, "exact after expiry");
	expect(x, "10.77.3.4", SLUICE_SLOT_ANON, SLUICE_V_PASS, "prefix after expiry");
	expect(x, "10.77.1.2", SLUICE_SLOT_ANON, SLUICE_V_PASS, "both expired");
}

static void subtest_tenant_exact(struct xfx *x)
{
	ASSERT_OK(xfx_src_exact(x, "198.51.100.10", 5), "v4 tenant");
	ASSERT_OK(xfx_src_exact(x, "2001:db8:10::10", 6), "v6 tenant");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	expect(x, "198.51.100.10", 5, SLUICE_V_PASS, "v4 by address");
	check_state(x, "198.51.100.10", 5, 0, "v4 cached");
	expect(x, "198.51.100.10", 5, SLUICE_V_PASS, "v4 from cache");
	expect(x, "2001:db8:10::10", 6, SLUICE_V_PASS, "v6 by address");
	check_state(x, "2001:db8:10::10", 6, 0, "v6 cached");
	expect(x, "198.51.100.11", SLUICE_SLOT_ANON, SLUICE_V_PASS, "neighbour is anonymous");

	/* moving the address to another tenant takes effect at the next generation */
	ASSERT_OK(xfx_src_exact(x, "198.51.100.10", 7), "move");
	expect(x, "198.51.100.10", 5, SLUICE_V_PASS, "cache answers until the bump");
	ASSERT_OK(xfx_bump_generation(x), "bump");
	expect(x, "198.51.100.10", 7, SLUICE_V_PASS, "new tenant after bump");
	check_state(x, "198.51.100.10", 7, 0, "re-resolved");
}

static void subtest_tenant_prefix(struct xfx *x)
{
	ASSERT_OK(xfx_src_prefix(x, "10.20.0.0", 16, 2), "/16");
	ASSERT_OK(xfx_src_prefix(x, "10.20.30.0", 24, 3), "/24");
	ASSERT_OK(xfx_src_prefix(x, "10.20.30.128", 25, 4), "/25");
	ASSERT_OK(xfx_src_exact(x, "10.20.30.129", 5), "exact inside /25");
	ASSERT_OK(xfx_src_prefix(x, "2001:db8:20::", 48, 6), "v6 /48");
	ASSERT_OK(xfx_src_prefix(x, "2001:db8:20:30::", 64, 7), "v6 /64");
	ASSERT_OK(xfx_src_prefix(x, "0.0.0.0", 0, 8), "v4 /0 (all of IPv4)");
	ASSERT_OK(xfx_bump_generation(x), "bump");

	expect(x, "10.20.1.1", 2, SLUICE_V_PASS, "/16 only");
	expect(x, "10.20.30.1", 3, SLUICE_V_PASS, "/24 beats /16");
	expect(x, "10.20.30.200", 4, SLUICE_V_PASS, "/25 beats /24");
	expect(x, "10.20.30.129", 5, SLUICE_V_PASS, "exact beats /25");
	check_state(x, "10.20.30.200", 4, 0, "prefix resolution cached");
	expect(x, "2001:db8:20:1::1", 6, SLUICE_V_PASS, "v6 /48");
	expect(x, "2001:db8:20:30::9", 7, SLUICE_V_PASS, "v6 /64 beats /48");
	expect(x, "9.9.9.9", 8, SLUICE_V_PASS, "v4 default route catches IPv4");
	expect(x, "2001:db8:21::1", SLUICE_SLOT_ANON, SLUICE_V_PASS, "v6 outside: anonymous");
}

/* Anonymous sources: slot ANON, a state entry each, and their own credits (tested with
 * limits in xdp_credits); a slot out of range in a source map is treated as anonymous. */
static void subtest_anonymous(struct xfx *x)
{
	ASSERT_OK(xfx_src_exact(x, "198.51.100.99", SLUICE_MAX_TENANTS + 5), "bad slot");
	ASSERT_OK(xfx_bump_generation(x), "bump");
	expect(x, "192.0.2.200", SLUICE_SLOT_ANON, SLUICE_V_PASS, "unknown v4");
	check_state(x, "192.0.2.200", SLUICE_SLOT_ANON, 0, "anon state");
	expect(x, "2001:db8:99::1", SLUICE_SLOT_ANON, SLUICE_V_PASS, "unknown v6");
	check_state(x, "2001:db8:99::1", SLUICE_SLOT_ANON, 0, "anon v6 state");
	expect(x, "198.51.100.99", SLUICE_SLOT_ANON, SLUICE_V_PASS, "slot out of range");
}

/* A cached resolution older than revalidate_ns is re-resolved even without a bump. */
static void subtest_revalidate(struct xfx *x)
{
	struct sluice_config cfg;
	__u64 t0;

	if (!ASSERT_OK(xfx_config_get(x, &cfg), "cfg"))
		return;
	cfg.revalidate_ns = 100 * MS;
	ASSERT_OK(xfx_config_set(x, &cfg), "revalidate 100ms");
	ASSERT_OK(xfx_src_exact(x, "198.51.100.88", 5), "tenant");
	ASSERT_OK(xfx_bump_generation(x), "bump");
	t0 = clock_mono_ns();
	expect(x, "198.51.100.88", 5, SLUICE_V_PASS, "resolved");
	ASSERT_OK(xfx_src_exact(x, "198.51.100.88", 6), "moved, no bump");
	if (clock_mono_ns() - t0 < 100 * MS)
		expect(x, "198.51.100.88", 5, SLUICE_V_PASS, "cache answers while young");
	usleep(120000);
	expect(x, "198.51.100.88", 6, SLUICE_V_PASS, "re-resolved when old");
	check_state(x, "198.51.100.88", 6, 0, "state refreshed");
}

/* Many sources at once: 4,000 tenant sources over 8 slots (every 7th also denied) and
 * 2,000 anonymous ones, three rounds in a scrambled order. The program's first-level
 * cache is direct-mapped, so hundreds of them share an entry; every packet must still be
 * counted on its own source's slot and verdict. */
static void subtest_many_sources(struct xfx *x)
{
	enum { TENANT_SRCS = 4000, ANON_SRCS = 2000, ALL = TENANT_SRCS + ANON_SRCS, ROUNDS = 3 };
	long long want_pass[10] = {0}, want_deny[10] = {0};
	struct pkt_rng r;
	char a[32];
	int i, round;
	__u32 slot;

	for (i = 0; i < TENANT_SRCS; i++) {
		snprintf(a, sizeof(a), "10.100.%d.%d", i / 250, i % 250 + 1);
		ASSERT_OK(xfx_src_exact(x, a, 2 + i % 8), "tenant source");
		if (i % 7 == 0)
			ASSERT_OK(xfx_deny_exact(x, a, 0), "denied tenant source");
	}
	ASSERT_OK(xfx_bump_generation(x), "bump");
	pkt_rng_seed(&r, 42);
	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < ALL; i++) {
			int n = (int)pkt_rng_below(&r, ALL), act;
			bool tenant = n < TENANT_SRCS, denied = tenant && n % 7 == 0;

			if (tenant)
				snprintf(a, sizeof(a), "10.100.%d.%d", n / 250, n % 250 + 1);
			else
				snprintf(a, sizeof(a), "2001:db8:101::%x", n);
			slot = tenant ? 2 + n % 8 : SLUICE_SLOT_ANON;
			act = syn_from(x, a);
			if (!ASSERT_EQ(act, denied ? XDP_DROP : XDP_PASS, "action"))
				return;
			if (denied)
				want_deny[slot]++;
			else
				want_pass[slot]++;
		}
	}
	for (slot = 1; slot < 10; slot++) {
		ASSERT_EQ(xfx_count(x, slot, SLUICE_V_PASS, NULL), want_pass[slot],
			  "PASS per slot");
		ASSERT_EQ(xfx_count(x, slot, SLUICE_V_DENY, NULL), want_deny[slot],
			  "DENY per slot");
	}
	ASSERT_EQ(xfx_count_all(x, 16), (long long)ALL * ROUNDS, "every packet counted once");
}

/* NO_CACHE: every packet resolved from the maps, so changes apply without a bump. */
static void subtest_no_cache(struct xfx *x)
{
	ASSERT_OK(xfx_set_flags(x, SLUICE_CFG_NO_CACHE), "no cache");
	ASSERT_OK(xfx_src_exact(x, "198.51.100.77", 5), "tenant");
	expect(x, "198.51.100.77", 5, SLUICE_V_PASS, "resolved without bump");
	ASSERT_OK(xfx_src_exact(x, "198.51.100.77", 6), "moved");
	expect(x, "198.51.100.77", 6, SLUICE_V_PASS, "moved without bump");
	ASSERT_OK(xfx_deny_exact(x, "198.51.100.77", 0), "denied");
	expect(x, "198.51.100.77", 6, SLUICE_V_DENY, "denied without bump");
	ASSERT_OK(xfx_set_flags(x, 0), "cache back on");
}

void test_xdp_resolve(void)
{
	static const struct xfx_subtest subs[] = {
	    {"deny_exact", subtest_deny_exact},	      {"deny_prefix", subtest_deny_prefix},
	    {"deny_expiry", subtest_deny_expiry},     {"tenant_exact", subtest_tenant_exact},
	    {"tenant_prefix", subtest_tenant_prefix}, {"anonymous", subtest_anonymous},
	    {"revalidate", subtest_revalidate},	      {"no_cache", subtest_no_cache},
	    {"many_sources", subtest_many_sources},
	};

	xfx_run_subtests(subs, ARRAY_SIZE(subs), setup);
}
