// SPDX-License-Identifier: GPL-2.0 OR MIT
/* admission.bpf.c -- XDP admission: deny list, tenant credits and emergency shedding at the NIC
 *
 * Per packet, in order of cost: parse (bpf/parse.bpf.h); anything that is not TCP/UDP to a
 * configured service port passes untouched (verdict OTHER, slot NONE). Otherwise the source
 * is resolved to a tenant slot and a deny deadline -- exact address, then longest prefix,
 * else anonymous -- and the resolution is cached per source in the LRU src_state map (valid
 * while the config generation matches and younger than revalidate_ns), with a call-free
 * direct-mapped cache in front of it (bpf/src_cache.bpf.h), so the steady state of a named
 * tenant or a denied source costs no map call at all, and of an anonymous source one.
 * Then: deny -> DROP; PKT credit -> DROP; for SYNs, emergency shedding of the tenant's class
 * (sampled per permille) and the SYN credit -> DROP; else PASS.
 *
 * Credits are GCRA states (include/sluice/gcra.h) in the mmapable tenant_state array, shared
 * with the daemon; anonymous sources keep their own pair in their src_state entry, created
 * with the anonymous slot's limits -- except at EMERGENCY, when unknown sources get no new
 * state and all share the anonymous slot's own state instead (one source's allowance).
 *
 * Time is CLOCK_MONOTONIC, read exactly only once per jiffy (clock_tick_ns()) and whenever
 * a credit would be refused (admit()), so refusals are exact and passes never exceed the
 * configured rate by more than one tick's worth of credit (burst + rate x (window + tick));
 * SLUICE_CFG_EXACT_CLOCK reads it on every service packet instead (burst + rate x window).
 *
 * Every packet lands in exactly one per-CPU counter (slot x verdict). Never XDP_ABORTED.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sluice/abi.h"
#include "sluice/gcra.h"
#include "parse.bpf.h"
#include "src_cache.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* ABI version this object was built for; the loader checks it against its own. */
const volatile __u32 sluice_abi_version = SLUICE_ABI_VERSION;

#define DEFAULT_REVALIDATE_NS 1000000000ULL

/* mmapable: its writers store their own fields in place, never the entry whole (abi.h) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct sluice_config);
} sl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} sl_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_TENANTS);
	__type(key, __u32);
	__type(value, struct sluice_tenant_cfg);
} sl_tenant_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_TENANTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct sluice_tenant_state);
} sl_tenant_st SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_SOURCES);
	__type(key, struct sluice_addr);
	__type(value, __u32);
} sl_src_exact SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sluice_lpm_key);
	__type(value, __u32);
} sl_src_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_DENY);
	__type(key, struct sluice_addr);
	__type(value, struct sluice_deny);
} sl_deny_exact SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_DENY);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sluice_lpm_key);
	__type(value, struct sluice_deny);
} sl_deny_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_SRC_STATE);
	__type(key, struct sluice_addr);
	__type(value, struct sluice_src);
} sl_src_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_TENANTS);
	__type(key, __u32);
	__type(value, struct sluice_counters);
} sl_counters SEC(".maps");

/* mmapable: the lease agent stores each node's share in place (abi.h) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_TENANTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct sluice_tenant_share);
} sl_tenant_share SEC(".maps");

static __always_inline int count(__u32 slot, __u32 verdict, __u64 bytes, bool syn)
{
	struct sluice_counters *c = bpf_map_lookup_elem(&sl_counters, &slot);

	if (c && verdict < SLUICE_V_MAX) {
		c->packets[verdict]++;
		c->bytes[verdict] += bytes;
		if (syn && verdict == SLUICE_V_PASS)
			c->syn_passed++; /* with SYN_LIMIT drops: the SYN demand (lease agent) */
	}
	return verdict == SLUICE_V_PASS || verdict == SLUICE_V_OTHER ? XDP_PASS : XDP_DROP;
}

/* Deny deadline of an entry: 0 when absent or expired, ~0 when it never expires. */
static __always_inline __u64 deny_deadline(const struct sluice_deny *d, __u64 now)
{
	if (!d)
		return 0;
	if (!d->expires_ns)
		return GCRA_U64_MAX;
	return d->expires_ns > now ? d->expires_ns : 0;
}

/* Resolve a source from the maps: tenant slot and deny deadline. */
static __always_inline void resolve(const struct sluice_addr *src, __u64 now, __u32 *slot,
				    __u64 *deny_until)
{
	struct sluice_lpm_key key = {.prefixlen = 128};
	__u32 *s;

	*deny_until = deny_deadline(bpf_map_lookup_elem(&sl_deny_exact, src), now);
	__builtin_memcpy(key.a, src->a, 16);
	if (!*deny_until)
		*deny_until = deny_deadline(bpf_map_lookup_elem(&sl_deny_prefix, &key), now);
	s = bpf_map_lookup_elem(&sl_src_exact, src);
	if (!s)
		s = bpf_map_lookup_elem(&sl_src_prefix, &key);
	*slot = s && *s < SLUICE_MAX_TENANTS ? *s : SLUICE_SLOT_ANON;
}

/* The cached src_state entry for src, refreshed if stale or created; NULL when there is
 * none and none may be created (unknown source at EMERGENCY), with *slot and *deny_until set. */
static __always_inline struct sluice_src *source_state_lru(const struct sluice_config *cfg,
							   const struct sluice_addr *src, __u64 now,
							   __u64 max_age, __u32 *slot,
							   __u64 *deny_until)
{
	struct sluice_src *st = NULL, fresh = {};

	if (!(cfg->flags & SLUICE_CFG_NO_CACHE)) {
		st = bpf_map_lookup_elem(&sl_src_state, src);
		if (st && st->generation == cfg->generation && now - st->resolved_ns < max_age) {
			*slot = st->slot;
			*deny_until = st->deny_until_ns;
			return st;
		}
	}
	resolve(src, now, slot, deny_until);
	if (st) {
		if (st->slot != *slot) {
			st->tat[0] = 0;
			st->tat[1] = 0;
		}
		st->slot = *slot;
		st->deny_until_ns = *deny_until;
		st->generation = cfg->generation;
		st->resolved_ns = now;
		return st;
	}
	if (cfg->flags & SLUICE_CFG_NO_CACHE) {
		/* benchmark mode: anonymous credits still need a home */
		if (*slot != SLUICE_SLOT_ANON)
			return NULL;
		st = bpf_map_lookup_elem(&sl_src_state, src);
		if (st)
			return st;
	}
	if (*slot == SLUICE_SLOT_ANON && sluice_config_level(cfg) >= SLUICE_SHED_EMERGENCY)
		return NULL;
	fresh.slot = *slot;
	fresh.generation = cfg->generation;
	fresh.resolved_ns = now;
	fresh.deny_until_ns = *deny_until;
	bpf_map_update_elem(&sl_src_state, src, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sl_src_state, src);
}

/* Resolve src: *slot and *deny_until, and the src_state entry when the source needs one
 * (anonymous: its credits live there). A hit in the first-level cache answers named
 * tenants and denied sources without any map call; everything else takes the LRU path
 * above, and its answer refills the first-level entry. */
static __always_inline struct sluice_src *source_state(const struct sluice_config *cfg,
						       const struct sluice_addr *src, __u64 now,
						       __u32 *slot, __u64 *deny_until)
{
	__u64 max_age = cfg->revalidate_ns ? cfg->revalidate_ns : DEFAULT_REVALIDATE_NS;
	struct src_cache_ent *e;
	struct sluice_src *st;
	__u64 lo, hi, h;
	bool hit;

	if (cfg->flags & SLUICE_CFG_NO_CACHE)
		return source_state_lru(cfg, src, now, max_age, slot, deny_until);
	e = src_cache_entry(src, &lo, &hi, &h);
	hit = src_cache_get(e, lo, hi, h, cfg->generation, now, max_age, slot, deny_until);
	if (hit && (*slot != SLUICE_SLOT_ANON || *deny_until > now))
		return NULL;
	st = source_state_lru(cfg, src, now, max_age, slot, deny_until);
	if (!hit)
		src_cache_put(e, lo, hi, h, *slot, cfg->generation, st ? st->resolved_ns : now,
			      *deny_until);
	return st;
}

/* The clock. bpf_ktime_get_ns() is a chain of out-of-line calls ending in a clocksource
 * read, by far the most expensive step of the common path (measured ~25 of ~100 ns, with
 * return-thunk mitigations on), so most packets use the CLOCK_MONOTONIC value read when
 * jiffies last moved (bpf_jiffies64() is inlined by the verifier): at most one tick old,
 * never ahead. Both fields are written by whichever CPU first sees a new jiffy; a reader
 * racing with that gets the previous tick's value, older still but valid. */
struct tick_clock {
	__u64 jiffies;
	__u64 ns;
};
static struct tick_clock tick_clock;

static __always_inline __u64 clock_tick_ns(void)
{
	__u64 j = bpf_jiffies64(), ns;

	if (*(volatile __u64 *)&tick_clock.jiffies == j)
		return *(volatile __u64 *)&tick_clock.ns;
	ns = bpf_ktime_get_ns();
	*(volatile __u64 *)&tick_clock.ns = ns;
	*(volatile __u64 *)&tick_clock.jiffies = j;
	return ns;
}

/* A pass at a time no later than the true now is also a pass at the true now (a GCRA
 * decision only gets easier as time moves on), so a pass on the tick clock stands; a
 * rejection is decided again on the exact clock, which *now then holds (*exact set).
 * Rejections are therefore exact, and a pass can start an idle limit's schedule at most
 * one tick early: passes over a window W stay <= burst + rate * (W + one tick). */
static __always_inline int admit(__u64 *tat, __u64 *now, bool *exact,
				 const struct sluice_limit *lim)
{
	__u64 retry;

	if (gcra_admit(tat, *now, lim->interval_ns, lim->burst, &retry) == GCRA_PASS)
		return 1;
	if (*exact)
		return 0;
	*now = bpf_ktime_get_ns();
	*exact = true;
	return gcra_admit(tat, *now, lim->interval_ns, lim->burst, &retry) == GCRA_PASS;
}

/* Verdict for a service packet from p->src. */
static __always_inline __u32 decide(const struct sluice_config *cfg, const struct parsed *p,
				    __u64 now, bool exact, __u32 *slot)
{
	struct sluice_tenant_cfg *tc;
	struct sluice_tenant_state *ts;
	struct sluice_tenant_share *sh = NULL;
	struct sluice_src *st;
	__u64 deny_until, *syn_tat, *pkt_tat;
	__u32 class;

	st = source_state(cfg, &p->src, now, slot, &deny_until);
	if (deny_until > now)
		return SLUICE_V_DENY;
	tc = bpf_map_lookup_elem(&sl_tenant_cfg, slot);
	ts = bpf_map_lookup_elem(&sl_tenant_st, slot);
	if (!tc || !ts)
		return SLUICE_V_PASS;
	if (*slot == SLUICE_SLOT_ANON && st) {
		syn_tat = &st->tat[0];
		pkt_tat = &st->tat[1];
	} else {
		syn_tat = &ts->tat[SLUICE_LIMIT_SYN];
		pkt_tat = &ts->tat[SLUICE_LIMIT_PKT];
		sh = bpf_map_lookup_elem(&sl_tenant_share, slot); /* cluster: this node's share */
	}
	if (!admit(pkt_tat, &now, &exact, sluice_limit_in_force(tc, sh, SLUICE_LIMIT_PKT)))
		return SLUICE_V_PKT_LIMIT;
	if (!p->syn)
		return SLUICE_V_PASS;
	class = tc->class;
	if (sluice_config_level(cfg) >= SLUICE_SHED_EMERGENCY && class < SLUICE_CLASS_MAX &&
	    bpf_get_prandom_u32() % 1000 < sluice_config_permille(cfg, class))
		return SLUICE_V_SHED;
	if (!admit(syn_tat, &now, &exact, sluice_limit_in_force(tc, sh, SLUICE_LIMIT_SYN)))
		return SLUICE_V_SYN_LIMIT;
	return SLUICE_V_PASS;
}

SEC("xdp")
int sluice_admission(struct xdp_md *ctx)
{
	__u64 bytes = ctx->data_end - ctx->data;
	struct sluice_config *cfg;
	struct parsed p = {};
	__u32 zero = 0, slot = SLUICE_SLOT_NONE, verdict, *port;
	bool exact;
	int action;

	if (parse_packet(ctx, &p))
		return count(SLUICE_SLOT_NONE, SLUICE_V_OTHER, bytes, false);
	port = bpf_map_lookup_elem(&sl_ports, &(__u32){p.dport});
	if (!port || !(*port & (p.proto == IPPROTO_TCP_ ? SLUICE_PORT_TCP : SLUICE_PORT_UDP)))
		return count(SLUICE_SLOT_NONE, SLUICE_V_OTHER, bytes, false);
	cfg = bpf_map_lookup_elem(&sl_config, &zero);
	if (!cfg)
		return count(SLUICE_SLOT_NONE, SLUICE_V_OTHER, bytes, false);

	exact = cfg->flags & SLUICE_CFG_EXACT_CLOCK;
	verdict = decide(cfg, &p, exact ? bpf_ktime_get_ns() : clock_tick_ns(), exact, &slot);
	action = count(slot, verdict, bytes, p.syn);
	return cfg->flags & SLUICE_CFG_DRY_RUN ? XDP_PASS : action;
}
