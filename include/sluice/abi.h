/* SPDX-License-Identifier: MIT */
/* abi.h -- the kernel/user contract: every map, key, value and enum XDP and userspace share
 *
 * Included by bpf/ (after vmlinux.h) and by user/ and tools/ (after <linux/types.h>).
 * No includes of its own, fixed-width __u32/__u64 only, no pointers, no bool in the structs
 * (two static inline readers of sluice_config are shared by both sides).
 * Any change to a layout or a meaning bumps SLUICE_ABI_VERSION; the loader refuses to
 * reuse pinned maps written by a different version, and user code pins every size with
 * _Static_assert (see user/nic/abi_check.c), so drift breaks the build, never silently.
 *
 * Tenant slots: index into the tenant_* arrays. Slot 0 collects traffic that is not
 * attributed to anyone (not for a service port, unparseable); slot 1 is the anonymous
 * class (sources matching no tenant); named tenants start at SLUICE_SLOT_FIRST.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#define SLUICE_ABI_VERSION 4u

/* Map names: the pin file names under the pin directory (default /sys/fs/bpf/sluice). */
#define SLUICE_MAP_CONFIG	"sl_config" /* mmapable array[1]: struct sluice_config */
#define SLUICE_MAP_PORTS	"sl_ports"  /* array[65536] by dst port: __u32 SLUICE_PORT_* mask */
#define SLUICE_MAP_TENANT_CFG	"sl_tenant_cfg"	 /* array[SLUICE_MAX_TENANTS]: sluice_tenant_cfg */
#define SLUICE_MAP_TENANT_STATE "sl_tenant_st"	 /* mmapable array: struct sluice_tenant_state */
#define SLUICE_MAP_SRC_EXACT	"sl_src_exact"	 /* hash sluice_addr -> __u32 slot */
#define SLUICE_MAP_SRC_PREFIX	"sl_src_prefix"	 /* LPM sluice_lpm_key -> __u32 slot */
#define SLUICE_MAP_DENY_EXACT	"sl_deny_exact"	 /* hash sluice_addr -> struct sluice_deny */
#define SLUICE_MAP_DENY_PREFIX	"sl_deny_prefix" /* LPM sluice_lpm_key -> struct sluice_deny */
#define SLUICE_MAP_SRC_STATE	"sl_src_state"	 /* LRU hash sluice_addr -> struct sluice_src */
#define SLUICE_MAP_COUNTERS	"sl_counters"	 /* per-CPU array by slot: struct sluice_counters */
#define SLUICE_MAP_TENANT_SHARE "sl_tenant_share" /* mmapable array: sluice_tenant_share */

#define SLUICE_MAX_TENANTS   16384  /* slots, including the two reserved ones */
#define SLUICE_MAX_SOURCES   65536  /* exact source addresses */
#define SLUICE_MAX_PREFIXES  65536  /* source prefixes */
#define SLUICE_MAX_DENY	     65536  /* deny entries, each of exact and prefix */
#define SLUICE_MAX_SRC_STATE 131072 /* LRU per-source state (cache + anonymous credits) */
#define SLUICE_NAME_LEN	     32	    /* tenant name, NUL-terminated */

#define SLUICE_SLOT_NONE  0 /* unattributed: not for a service port or unparsed */
#define SLUICE_SLOT_ANON  1 /* anonymous sources (their limits: per source) */
#define SLUICE_SLOT_FIRST 2 /* first named tenant */

/* Service-port mask values in SLUICE_MAP_PORTS. */
#define SLUICE_PORT_TCP 1u
#define SLUICE_PORT_UDP 2u

enum sluice_class {
	SLUICE_CLASS_CRITICAL = 0,
	SLUICE_CLASS_NORMAL = 1,
	SLUICE_CLASS_LOW = 2,
	SLUICE_CLASS_MAX = 3,
};

/* Index of a limit in sluice_tenant_cfg.limit[] and sluice_tenant_state.tat[]. */
enum sluice_limit_kind {
	SLUICE_LIMIT_SYN = 0,  /* new TCP connections/s (XDP) */
	SLUICE_LIMIT_PKT = 1,  /* packets/s to service ports (XDP) */
	SLUICE_LIMIT_REQ = 2,  /* HTTP requests/s (daemon, 429) */
	SLUICE_LIMIT_CRIT = 3, /* critical events/s (daemon, demotes to normal) */
	SLUICE_LIMIT_MAX = 4,
};

/* Counter index in sluice_counters; one verdict per packet, every packet counted once. */
enum sluice_verdict {
	SLUICE_V_OTHER = 0,	/* passed untouched: not a service packet (slot NONE) */
	SLUICE_V_PASS = 1,	/* service packet admitted */
	SLUICE_V_DENY = 2,	/* dropped: source on the deny list */
	SLUICE_V_SHED = 3,	/* dropped: emergency shedding of the source's class */
	SLUICE_V_SYN_LIMIT = 4, /* dropped: SYN credit exhausted */
	SLUICE_V_PKT_LIMIT = 5, /* dropped: packet credit exhausted */
	SLUICE_V_MAX = 6,
};

enum sluice_shed_level {
	SLUICE_SHED_NORMAL = 0,
	SLUICE_SHED_THIN = 1,
	SLUICE_SHED_EMERGENCY = 2, /* permille[] applied to SYNs, no new anonymous state */
};

/* sluice_config.shed_mode: whose level is in force. */
enum sluice_shed_mode {
	SLUICE_SHED_AUTO = 0,	/* the daemon's overload controller: auto_level, auto_permille */
	SLUICE_SHED_MANUAL = 1, /* an operator: shed_level, permille; the controller follows */
};

/* sluice_config.auto_source: whose level the overload controller's fields carry. */
enum sluice_shed_source {
	SLUICE_SHED_SRC_LOCAL = 0,	 /* this node's own controller */
	SLUICE_SHED_SRC_CLUSTER = 1,	 /* the cluster controller (auto_node), decision auto_seq */
	SLUICE_SHED_SRC_CLUSTER_PIN = 2, /* an operator's cluster-wide pin, decision auto_seq */
};

/* sluice_config.flags */
#define SLUICE_CFG_DRY_RUN     1u /* count verdicts, drop nothing */
#define SLUICE_CFG_NO_CACHE    2u /* resolve every packet from the maps (benchmarks) */
#define SLUICE_CFG_EXACT_CLOCK 4u /* read the clock per packet, not per tick (see bpf/) */

/* Global run-time configuration, the single entry of SLUICE_MAP_CONFIG (BPF_F_MMAPABLE).
 *
 * Several processes and threads change it at once -- sluicectl, the daemon's tenants
 * reload, its deny list, its overload controller -- so nobody ever writes the entry whole
 * (a read-modify-write of it loses whatever another writer stored in between). Each field
 * has one owner, who stores it in the mmapped entry on its own; the generation, which all
 * of them bump, only ever moves by an atomic add (user/nic/xdp_config.h does both). */
struct sluice_config {
	__u32 abi_version;		       /* loader: SLUICE_ABI_VERSION, at first load */
	__u32 flags;			       /* operator: SLUICE_CFG_* (atomic or/and) */
	__u32 shed_mode;		       /* operator: enum sluice_shed_mode */
	__u32 shed_level;		       /* operator: the level at SLUICE_SHED_MANUAL */
	__u32 permille[SLUICE_CLASS_MAX];      /* operator: SYN drop share per class, 0..1000 */
	__u32 auto_level;		       /* overload controller: the level at SHED_AUTO */
	__u32 auto_permille[SLUICE_CLASS_MAX]; /* overload controller: its drop shares */
	__u32 generation;		       /* all: atomic +1 per source/deny change */
	__u64 revalidate_ns;		       /* loader: cached resolution max age (0: 1 s) */
	/* v4 (cluster shedding): whose level auto_level is, for `sluicectl shed show` */
	__u32 auto_source; /* overload controller: enum sluice_shed_source */
	__u32 auto_seq;	   /* overload controller: cluster decision seq (low 32 bits) */
	char auto_node[SLUICE_NAME_LEN]; /* overload controller: the cluster controller's node */
};

/* The shed level in force and its SYN drop share for a class: the operator's while the
 * mode is manual, else the overload controller's. */
static inline __u32 sluice_config_level(const struct sluice_config *c)
{
	return c->shed_mode == SLUICE_SHED_MANUAL ? c->shed_level : c->auto_level;
}

static inline __u32 sluice_config_permille(const struct sluice_config *c, __u32 class)
{
	if (class >= SLUICE_CLASS_MAX)
		return 0;
	return c->shed_mode == SLUICE_SHED_MANUAL ? c->permille[class] : c->auto_permille[class];
}

/* One GCRA limit: interval_ns = 1e9 / rate; burst = credits banked when idle.
 * interval_ns == 0 means unlimited. See include/sluice/gcra.h. */
struct sluice_limit {
	__u64 interval_ns;
	__u64 burst;
};

/* Per-tenant configuration, SLUICE_MAP_TENANT_CFG[slot]. */
struct sluice_tenant_cfg {
	char name[SLUICE_NAME_LEN]; /* "" = free slot */
	struct sluice_limit limit[SLUICE_LIMIT_MAX];
	__u32 class; /* enum sluice_class */
	__u32 flags; /* reserved, 0 */
};

/* Where a node's share of a tenant's limits comes from (sluice_tenant_share.source). */
enum sluice_share_source {
	SLUICE_SHARE_LOCAL = 0,	   /* no cluster: the tenant's own limits are in force */
	SLUICE_SHARE_LEASE = 1,	   /* this node's lease from the cluster ledger */
	SLUICE_SHARE_FALLBACK = 2, /* ledger unreachable past the grace: rate / nodes last seen */
	SLUICE_SHARE_MAX = 3,
};

/* This node's effective share of a tenant's cluster-wide limits, SLUICE_MAP_TENANT_SHARE[slot]
 * (mmapable). Its only writer is the daemon's lease agent; sluice_tenant_cfg.limit (the global
 * rate and burst) stays owned by the tenants file, SIGHUP and `sluicectl tenant set`. XDP and
 * the daemon enforce limit[k] instead of the tenant's when bit k of mask is set, against the
 * same GCRA state (sluice_tenant_state.tat). The writer stores limit[k] before setting its
 * bit and clears the bit before anything else, each with a single aligned store. */
struct sluice_tenant_share {
	struct sluice_limit limit[SLUICE_LIMIT_MAX];
	__u32 mask;	  /* bit (1 << enum sluice_limit_kind): limit[kind] in force */
	__u32 source;	  /* enum sluice_share_source */
	__u64 updated_ns; /* CLOCK_MONOTONIC of the last write */
};

/* The limit in force for kind: the node's share when there is one, else the tenant's. */
static inline const struct sluice_limit *sluice_limit_in_force(const struct sluice_tenant_cfg *tc,
							       const struct sluice_tenant_share *sh,
							       __u32 kind)
{
	if (kind >= SLUICE_LIMIT_MAX)
		return &tc->limit[0];
	if (sh && (sh->mask & (1u << kind)))
		return &sh->limit[kind];
	return &tc->limit[kind];
}

/* Per-tenant GCRA state, SLUICE_MAP_TENANT_STATE[slot]: one cache line, updated with
 * compare-and-swap by the XDP program (SYN, PKT) and the daemon (REQ, CRIT) alike. */
struct sluice_tenant_state {
	__u64 tat[SLUICE_LIMIT_MAX]; /* theoretical arrival time, CLOCK_MONOTONIC ns */
	__u64 _pad[4];
} __attribute__((aligned(64)));

/* An address, IPv4 stored IPv4-mapped (::ffff:a.b.c.d), network byte order. */
struct sluice_addr {
	__u8 a[16];
};

/* LPM trie key: prefixlen counts bits of the 16-byte (IPv4-mapped) address, so an
 * IPv4 /24 is prefixlen 96 + 24 = 120. */
struct sluice_lpm_key {
	__u32 prefixlen;
	__u8 a[16];
};

/* Deny entry: drop until expires_ns (CLOCK_MONOTONIC); 0 = never expires. */
struct sluice_deny {
	__u64 expires_ns;
	__u64 added_ns;
};

/* Per-source state in SLUICE_MAP_SRC_STATE: the cached resolution of a source (tenant slot
 * and deny deadline, valid while generation matches the config and it is younger than
 * revalidate_ns) and, for anonymous sources, their own SYN and PKT credits. */
struct sluice_src {
	__u32 slot;
	__u32 generation;
	__u64 resolved_ns;
	__u64 deny_until_ns; /* 0: not denied; ~0: denied forever */
	__u64 tat[2];	     /* SYN, PKT: anonymous sources only */
};

/* Per-CPU counters of one slot, indexed by enum sluice_verdict. */
struct sluice_counters {
	__u64 packets[SLUICE_V_MAX];
	__u64 bytes[SLUICE_V_MAX];
	__u64 syn_passed; /* SYNs among packets[SLUICE_V_PASS]: with SYN_LIMIT, the SYN demand */
};

#endif /* SLUICE_ABI_H */
