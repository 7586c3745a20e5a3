/* SPDX-License-Identifier: MIT */
/* addr_hash.h -- one hash of a source address for the userspace tables keyed by it
 *
 * FNV-1a over the 16 address bytes, folded so the low bits (what a power-of-two table masks)
 * depend on every byte. Sources are chosen by clients: the tables that use it bound their
 * probing (a window, or only open connections), so a crafted set of addresses can only
 * lengthen probes, never grow memory.
 */
#ifndef SLUICE_LIB_ADDR_HASH_H
#define SLUICE_LIB_ADDR_HASH_H

#include <stdint.h>

#include "sluice/abi.h"

static inline uint32_t addr_hash(const struct sluice_addr *a)
{
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < sizeof(a->a); i++)
		h = (h ^ a->a[i]) * 16777619u;
	return h ^ h >> 16;
}

#endif /* SLUICE_LIB_ADDR_HASH_H */
