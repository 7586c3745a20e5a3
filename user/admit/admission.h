/* SPDX-License-Identifier: MIT */
/* admission.h -- stage-2 admission: request credits and critical credits per tenant
 *
 * The same GCRA state the XDP program updates: with BPF, the tenant-state map is mmapped
 * and gcra_admit() runs its compare-and-swap on that memory (SLUICE_LIMIT_REQ and
 * SLUICE_LIMIT_CRIT; XDP owns SYN and PKT of the same cache line). Without BPF privileges
 * or without --iface, the same limits run on a private copy of the state, and one warning
 * says why. Outcomes are explicit, each with a dry-run twin (nginx limit_req style): with
 * --dry-run-limits the would-be decision is counted and nothing is enforced.
 *
 * A tenant rejected deny_after times in a row has the offending source address put on the
 * deny list for deny_secs (the XDP deny map when BPF is on, and always the userspace list
 * that accept() consults) -- when that source is the tenant's alone: a source of its own as
 * XDP resolves it, or a source no tenant lists that carried none of another tenant's
 * requests in the last 10 minutes. A shared address (NAT, a load balancer) is spared.
 */
#ifndef SLUICE_ADMISSION_H
#define SLUICE_ADMISSION_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/abi.h"
#include "admit/tenants.h"

enum admission_outcome {
	ADMISSION_PASSED = 0,
	ADMISSION_DEMOTED,
	ADMISSION_REJECTED,
	ADMISSION_PASSED_DRY_RUN,
	ADMISSION_DEMOTED_DRY_RUN,
	ADMISSION_REJECTED_DRY_RUN,
	ADMISSION_MAX,
};

struct admission_opts {
	bool dry_run;
	unsigned deny_after; /* 0 = never deny */
	unsigned deny_secs;
};

struct admission;

/* With fds (indexed by enum sluice_map_id, from the loader) the state is the mmapped BPF
 * tenant-state map; with fds NULL it is a private array and why_userspace (one line) is
 * logged once as a warning. Returns NULL + errno (mmap failure: the message is logged). */
struct admission *admission_new(const struct admission_opts *o, const int *fds,
				const char *why_userspace);
/* Unmap or free the state; NULL is a no-op. */
void admission_free(struct admission *a);

/* One HTTP request of tenant t from peer at now (CLOCK_MONOTONIC ns). PASSED or REJECTED
 * (or their dry-run twins); on REJECTED *retry_ns says when one would pass. all is the
 * tenants table t came from: who else owns peer (NULL: only t's own sources are known). */
enum admission_outcome admission_request(struct admission *a, const struct tenant *t,
					 const struct tenants *all, const struct sluice_addr *peer,
					 uint64_t now, uint64_t *retry_ns);
/* A critical event of t: PASSED while the tenant has critical credits, DEMOTED (to
 * normal) beyond them; dry-run twins when dry-running (the event stays critical). */
enum admission_outcome admission_critical(struct admission *a, const struct tenant *t,
					  uint64_t now);
/* Switch dry-run mode at run time (a config reload). */
void admission_set_dry_run(struct admission *a, bool dry_run);
/* Whether peer is on the deny list at now. */
bool admission_denied(struct admission *a, const struct sluice_addr *peer, uint64_t now);
/* Put peer on the deny list until now + secs (userspace list, and BPF map when on). */
int admission_deny(struct admission *a, const struct sluice_addr *peer, uint64_t now,
		   unsigned secs);
/* Told of every auto-deny (deny_after reached) right after it is in place, on the request's
 * thread, so it must not block: admit/cdeny.c queues it for the cluster, whose other nodes
 * then deny the source too. Set once, before requests flow. */
typedef void admission_deny_fn(void *arg, const struct sluice_addr *peer, unsigned secs);
void admission_on_auto_deny(struct admission *a, admission_deny_fn *fn, void *arg);
/* Start slot's credits from idle (a tenant new in this slot after a reload). */
void admission_reset_slot(struct admission *a, uint32_t slot);
/* Sources put on the deny list so far. */
uint64_t admission_denials(const struct admission *a);
/* Times a tenant crossed deny_after from a source it shares, which was therefore not denied. */
uint64_t admission_spared(const struct admission *a);
/* The lease agent's writes of this node's cluster share (the share's only writer): limit
 * kind of slot enforced at *l from now on (l NULL: back to the tenant's own limit), source
 * recorded for `sluicectl tenant show`. now: CLOCK_MONOTONIC ns. */
void admission_share_set(struct admission *a, uint32_t slot, unsigned kind,
			 const struct sluice_limit *l, enum sluice_share_source source,
			 uint64_t now);
/* Every share off (no cluster: a pinned map from a clustered run must not linger). */
void admission_share_clear(struct admission *a);
/* A snapshot of slot's share. */
void admission_share_get(const struct admission *a, uint32_t slot, struct sluice_tenant_share *out);
/* REQ or CRIT decisions (passed, refused, demoted, dry runs) of slot since start. */
uint64_t admission_demand(const struct admission *a, uint32_t slot, unsigned kind);
/* Whether the state is the shared BPF map (true) or the userspace copy. */
bool admission_shared(const struct admission *a);

const char *admission_outcome_name(enum admission_outcome o);

#endif /* SLUICE_ADMISSION_H */
