// SPDX-License-Identifier: MIT
/* abi_check.c -- the kernel/user contract's layouts, pinned at compile time
 *
 * Every struct in include/sluice/abi.h crosses the kernel/user boundary through a BPF map
 * (and, for sluice_tenant_state, an mmap). A change in size or field offset would make the
 * XDP program and the daemon disagree silently, so each is asserted here; changing one
 * means changing the numbers below and bumping SLUICE_ABI_VERSION in the same commit.
 */
#include <linux/types.h>
#include <stddef.h>

#include "sluice/abi.h"

_Static_assert(SLUICE_ABI_VERSION == 4u, "bump the sizes below together with the ABI version");
_Static_assert(sizeof(struct sluice_config) == 96, "sluice_config is 96 bytes");
_Static_assert(offsetof(struct sluice_config, auto_source) == 56, "sluice_config.auto_source");
_Static_assert(offsetof(struct sluice_config, auto_node) == 64, "sluice_config.auto_node");
_Static_assert(offsetof(struct sluice_config, flags) == 4, "sluice_config.flags");
_Static_assert(offsetof(struct sluice_config, shed_level) == 12, "sluice_config.shed_level");
_Static_assert(offsetof(struct sluice_config, permille) == 16, "sluice_config.permille");
_Static_assert(offsetof(struct sluice_config, auto_level) == 28, "sluice_config.auto_level");
_Static_assert(offsetof(struct sluice_config, auto_permille) == 32, "sluice_config.auto_permille");
_Static_assert(offsetof(struct sluice_config, generation) == 44, "sluice_config.generation");
_Static_assert(offsetof(struct sluice_config, revalidate_ns) == 48, "sluice_config.revalidate");
_Static_assert(offsetof(struct sluice_config, generation) % 4 == 0,
	       "the generation is bumped with 4-byte atomics");
_Static_assert(sizeof(struct sluice_limit) == 16, "sluice_limit is 16 bytes");
_Static_assert(sizeof(struct sluice_tenant_cfg) == 104, "sluice_tenant_cfg is 104 bytes");
_Static_assert(offsetof(struct sluice_tenant_cfg, limit) == SLUICE_NAME_LEN,
	       "sluice_tenant_cfg.limit follows the name");
_Static_assert(offsetof(struct sluice_tenant_cfg, class) == 96, "sluice_tenant_cfg.class");
_Static_assert(sizeof(struct sluice_tenant_state) == 64, "one cache line per tenant");
_Static_assert(_Alignof(struct sluice_tenant_state) == 64, "tenant state cache-line aligned");
_Static_assert(sizeof(struct sluice_addr) == 16, "addresses are 16 bytes (IPv4-mapped)");
_Static_assert(sizeof(struct sluice_lpm_key) == 20, "LPM key: prefixlen + 16 bytes");
_Static_assert(sizeof(struct sluice_deny) == 16, "sluice_deny is 16 bytes");
_Static_assert(sizeof(struct sluice_src) == 40, "sluice_src is 40 bytes");
_Static_assert(sizeof(struct sluice_counters) == 16 * SLUICE_V_MAX + 8,
	       "counters: 2 x u64 x verdicts, then the SYNs passed");
_Static_assert(SLUICE_LIMIT_MAX == 4 && SLUICE_CLASS_MAX == 3 && SLUICE_V_MAX == 6,
	       "enum sizes are part of the map layouts");
_Static_assert(sizeof(struct sluice_tenant_share) == 80, "sluice_tenant_share is 80 bytes");
_Static_assert(offsetof(struct sluice_tenant_share, mask) == 64, "sluice_tenant_share.mask");
_Static_assert(offsetof(struct sluice_tenant_share, source) == 68, "sluice_tenant_share.source");
_Static_assert(offsetof(struct sluice_tenant_share, updated_ns) == 72,
	       "sluice_tenant_share.updated_ns");
_Static_assert(SLUICE_SHARE_MAX == 3, "share sources are part of the map layout");
