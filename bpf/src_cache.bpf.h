/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* src_cache.bpf.h -- a direct-mapped, call-free first-level cache of source resolutions
 *
 * The resolution of a source (tenant slot, deny deadline) is cached per source in the LRU
 * map sl_src_state, but any hash-map lookup is a chain of out-of-line kernel calls (hash,
 * bucket walk, memcmp); with return-thunk mitigations that was ~20 ns, the largest part
 * of the known-tenant path after the clock. This cache sits in front of it: a global array
 * in the program's .bss (an internal map, not pinned, not part of the ABI; it starts empty
 * on every load), indexed by a seeded hash of the address, so a hit is a few loads and
 * multiplies with no call at all.
 *
 * Entries are written without locks by whichever CPU missed. A reader could see an entry
 * half-written by two CPUs, so each entry carries a check word mixing every field with
 * the address hash; a torn entry fails it and is treated as a miss. A hit still requires
 * the exact 16-byte address, the current config generation and an age below
 * revalidate_ns -- the same validity rule as the LRU entry. The seed (set by the loader
 * from getrandom) keeps sources from being chosen to collide on purpose; a collision only
 * costs a miss.
 */
#ifndef SLUICE_SRC_CACHE_BPF_H
#define SLUICE_SRC_CACHE_BPF_H

#define SRC_CACHE_SLOTS 65536 /* power of two; 48 B each: 3 MiB */

/* Set by the loader before load (random); 0 still works, only predictably. */
const volatile __u64 src_cache_seed = 0;

struct src_cache_ent {
	__u64 lo, hi; /* the address, as two words */
	__u64 deny_until_ns;
	__u64 resolved_ns;
	__u64 slot_gen; /* slot << 32 | generation */
	__u64 check;	/* src_cache_check() of the fields above; 0 = empty */
};

static struct src_cache_ent src_cache[SRC_CACHE_SLOTS];

static __always_inline __u64 mix64(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static __always_inline __u64 rotl64(__u64 x, int r)
{
	return x << r | x >> (64 - r);
}

/* mix64 is a bijection, so a torn entry passes only if its fields' combination happens to
 * equal the writer's -- and h differs between any two addresses' writers. Never 0. */
static __always_inline __u64 src_cache_check(__u64 h, __u64 deny_until, __u64 resolved,
					     __u64 slot_gen)
{
	return mix64(h ^ deny_until ^ rotl64(resolved, 21) ^ rotl64(slot_gen, 43)) | 1;
}

/* The entry for src and its address hash *h. */
static __always_inline struct src_cache_ent *src_cache_entry(const struct sluice_addr *src,
							     __u64 *lo, __u64 *hi, __u64 *h)
{
	__builtin_memcpy(lo, &src->a[0], 8);
	__builtin_memcpy(hi, &src->a[8], 8);
	/* lo is 0 for every IPv4 source; an odd multiply keeps it a bijection for IPv6 */
	*h = mix64((*lo * 0x9e3779b97f4a7c15ULL) ^ *hi ^ src_cache_seed);
	return &src_cache[*h & (SRC_CACHE_SLOTS - 1)];
}

/* A valid hit for (lo, hi): fills *slot and *deny_until and returns true. */
static __always_inline bool src_cache_get(const struct src_cache_ent *e, __u64 lo, __u64 hi,
					  __u64 h, __u32 generation, __u64 now, __u64 max_age,
					  __u32 *slot, __u64 *deny_until)
{
	__u64 elo = *(volatile __u64 *)&e->lo, ehi = *(volatile __u64 *)&e->hi;
	__u64 deny = *(volatile __u64 *)&e->deny_until_ns;
	__u64 resolved = *(volatile __u64 *)&e->resolved_ns;
	__u64 slot_gen = *(volatile __u64 *)&e->slot_gen;
	__u64 check = *(volatile __u64 *)&e->check;

	if (elo != lo || ehi != hi || (__u32)slot_gen != generation || now - resolved >= max_age)
		return false;
	if (check != src_cache_check(h, deny, resolved, slot_gen))
		return false;
	*slot = slot_gen >> 32;
	*deny_until = deny;
	return true;
}

static __always_inline void src_cache_put(struct src_cache_ent *e, __u64 lo, __u64 hi, __u64 h,
					  __u32 slot, __u32 generation, __u64 resolved,
					  __u64 deny_until)
{
	__u64 slot_gen = (__u64)slot << 32 | generation;

	*(volatile __u64 *)&e->lo = lo;
	*(volatile __u64 *)&e->hi = hi;
	*(volatile __u64 *)&e->deny_until_ns = deny_until;
	*(volatile __u64 *)&e->resolved_ns = resolved;
	*(volatile __u64 *)&e->slot_gen = slot_gen;
	*(volatile __u64 *)&e->check = src_cache_check(h, deny_until, resolved, slot_gen);
}

#endif /* SLUICE_SRC_CACHE_BPF_H */
