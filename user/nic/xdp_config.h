/* SPDX-License-Identifier: MIT */
/* xdp_config.h -- the pinned config map's one entry, changed field by field by its owners
 *
 * The entry (struct sluice_config in include/sluice/abi.h) is read by the XDP program on
 * every packet and changed at once by sluicectl processes, the daemon's tenants reload, its
 * deny list and its overload controller. A read-modify-write of the whole entry (lookup,
 * change one field, update) loses what another writer stored in between: a generation bump
 * (cached source resolutions then ignore a new deny entry or source) or an operator's
 * manual shed level. So the map is mmapable and nobody writes the entry whole:
 *
 *	field				owner			how
 *	abi_version, revalidate_ns	loader (first load)	whole entry, before any use
 *	flags				operator (sluicectl)	atomic or / and-not
 *	shed_mode, shed_level, permille	operator (sluicectl)	stores: level and shares, then mode
 *	auto_level, auto_permille	overload controller	stores
 *	auto_source, auto_seq, auto_node	overload controller	stores (node, seq, then
 *source) generation			every writer		atomic add
 *
 * Stores are 32-bit and atomic, so the program sees each field old or new, never torn;
 * the mode is stored last with release order, so a reader that sees MANUAL also sees the
 * operator's level. Two operators racing each other is last-store-wins per field, as
 * with any setting.
 */
#ifndef SLUICE_XDP_CONFIG_H
#define SLUICE_XDP_CONFIG_H

#include <linux/types.h>
#include <stdbool.h>

#include "sluice/abi.h"

/* mmap the entry of the config map fd (read-write). NULL + errno. */
struct sluice_config *xdp_config_map(int fd);
/* munmap; NULL is a no-op. */
void xdp_config_unmap(struct sluice_config *c);
/* Bump the generation through fd (map, add, unmap): for rare writers. 0 or -errno. */
int xdp_config_bump_fd(int fd);

/* Every writer: cached source resolutions are redone on the next packet. */
static inline void xdp_config_bump(struct sluice_config *c)
{
	__atomic_add_fetch(&c->generation, 1, __ATOMIC_RELEASE);
}

/* Operator: set or clear flag bits. */
static inline void xdp_config_set_flag(struct sluice_config *c, __u32 flag, bool on)
{
	if (on)
		__atomic_fetch_or(&c->flags, flag, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&c->flags, ~flag, __ATOMIC_RELAXED);
}

/* Operator: the drop share of class (0..1000) at a manual EMERGENCY. */
static inline void xdp_config_set_permille(struct sluice_config *c, __u32 class, __u32 permille)
{
	if (class < SLUICE_CLASS_MAX)
		__atomic_store_n(&c->permille[class], permille, __ATOMIC_RELAXED);
}

/* Operator: pin the level by hand (manual), or hand it back to the controller (auto). */
static inline void xdp_config_set_manual(struct sluice_config *c, __u32 level)
{
	__atomic_store_n(&c->shed_level, level, __ATOMIC_RELAXED);
	__atomic_store_n(&c->shed_mode, SLUICE_SHED_MANUAL, __ATOMIC_RELEASE);
}

static inline void xdp_config_set_auto(struct sluice_config *c)
{
	__atomic_store_n(&c->shed_mode, SLUICE_SHED_AUTO, __ATOMIC_RELEASE);
}

/* Overload controller: its level and drop shares (in force while the mode is auto). */
static inline void xdp_config_publish_auto(struct sluice_config *c, __u32 level,
					   const __u32 permille[SLUICE_CLASS_MAX])
{
	for (int k = 0; k < SLUICE_CLASS_MAX; k++)
		__atomic_store_n(&c->auto_permille[k], permille[k], __ATOMIC_RELAXED);
	__atomic_store_n(&c->auto_level, level, __ATOMIC_RELEASE);
}

/* Overload controller: whose level its fields carry (enum sluice_shed_source), the cluster
 * decision's seq and the cluster controller's node ("" for none). The node's bytes are
 * stored one by one: a reader racing a change may see a mix, for display only. */
static inline void xdp_config_publish_source(struct sluice_config *c, __u32 source, __u32 seq,
					     const char *node)
{
	int k = 0;

	for (; node && node[k] && k < SLUICE_NAME_LEN - 1; k++)
		__atomic_store_n(&c->auto_node[k], node[k], __ATOMIC_RELAXED);
	for (; k < SLUICE_NAME_LEN; k++)
		__atomic_store_n(&c->auto_node[k], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->auto_seq, seq, __ATOMIC_RELAXED);
	__atomic_store_n(&c->auto_source, source, __ATOMIC_RELEASE);
}

/* A copy of the entry, field by field (for display and decisions). */
static inline void xdp_config_read(const struct sluice_config *c, struct sluice_config *out)
{
	out->abi_version = __atomic_load_n(&c->abi_version, __ATOMIC_RELAXED);
	out->shed_mode = __atomic_load_n(&c->shed_mode, __ATOMIC_ACQUIRE);
	out->flags = __atomic_load_n(&c->flags, __ATOMIC_RELAXED);
	out->shed_level = __atomic_load_n(&c->shed_level, __ATOMIC_RELAXED);
	out->auto_level = __atomic_load_n(&c->auto_level, __ATOMIC_ACQUIRE);
	for (int k = 0; k < SLUICE_CLASS_MAX; k++) {
		out->permille[k] = __atomic_load_n(&c->permille[k], __ATOMIC_RELAXED);
		out->auto_permille[k] = __atomic_load_n(&c->auto_permille[k], __ATOMIC_RELAXED);
	}
	out->generation = __atomic_load_n(&c->generation, __ATOMIC_ACQUIRE);
	out->revalidate_ns = __atomic_load_n(&c->revalidate_ns, __ATOMIC_RELAXED);
	out->auto_source = __atomic_load_n(&c->auto_source, __ATOMIC_ACQUIRE);
	out->auto_seq = __atomic_load_n(&c->auto_seq, __ATOMIC_RELAXED);
	for (int k = 0; k < SLUICE_NAME_LEN; k++)
		out->auto_node[k] = __atomic_load_n(&c->auto_node[k], __ATOMIC_RELAXED);
	out->auto_node[SLUICE_NAME_LEN - 1] = 0;
}

#endif /* SLUICE_XDP_CONFIG_H */
