/* SPDX-License-Identifier: MIT */
/* lease.h -- cluster-wide tenant credits: this node's share of every tenant's limits
 *
 * Every lease period (the cluster thread, lib/cluster.h) the agent measures, per tenant and
 * limit, the demand this node saw (admitted + refused per second: XDP per-CPU counters for
 * SYN and PKT, admission's counters for REQ and CRIT; smoothed over two periods), reports
 * all of it to the ledger in ONE Redis script call and gets back this node's share of each
 * global rate: a max-min fair split across the nodes that reported in the last
 * LEASE_EXPIRE_PERIODS periods, after a floor of LEASE_FLOOR (a fraction of the fair share)
 * for every live node so an idle node can still see demand. The burst is split like the
 * rate (at least 1). The shares go to admission_share_set(), i.e. the pinned share map that
 * XDP and the daemon enforce; nothing here is on a request's path.
 *
 * Ledger: one hash per tenant, sluice:cluster:lease:<tenant>, field "<limit>|<node>" =
 * "<demand>,<Redis TIME ms>"; fields older than the expiry are deleted by whoever computes
 * next, the hash expires when every node has gone.
 *
 * Redis unreachable (or the node name held by another): the last shares stay for
 * grace_ms, then each limit falls back to global rate / nodes last seen (source
 * "fallback", one warning; recovery logged). Without a share, the tenant's own limit
 * applies (source "local").
 */
#ifndef SLUICE_LEASE_H
#define SLUICE_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "admit/admission.h"
#include "admit/tenants.h"
#include "lib/cluster.h"
#include "lib/metrics.h"

#define LEASE_EXPIRE_PERIODS 4	  /* a node silent this many periods loses its share */
#define LEASE_FLOOR	     0.03 /* of the fair share (rate / nodes), kept for each node */

/* One (tenant, limit) as the ledger sees it. */
struct lease_entry {
	const char *tenant;
	unsigned limit; /* enum sluice_limit_kind */
	double demand;	/* this node's, per second */
	double rate;	/* the global rate, per second (> 0) */
	double share;	/* out: this node's share of rate */
	unsigned nodes; /* out: nodes that share it */
};

/* One ledger exchange for this node (the cluster thread): entries grouped by tenant (equal
 * tenant pointers adjacent). 0 with every share filled, or -EIO (no answer) / -EPROTO. */
int lease_exchange(struct cluster *c, struct lease_entry *e, size_t n);

struct lease_opts {
	struct cluster *cluster;
	struct admission *adm;
	struct tenants_ref *tenants;
	int cfg_fd;	 /* SLUICE_M_TENANT_CFG (global rates as sluicectl sets them), or -1 */
	int counters_fd; /* SLUICE_M_COUNTERS (SYN/PKT demand), or -1 */
	struct metrics *metrics;
	uint32_t grace_ms;
};

struct lease;

/* Start the agent: initial shares at once (source fallback: the ledger's floor when other
 * nodes are live, else the whole rate), then a hook on the cluster thread. NULL with errno
 * set. */
struct lease *lease_new(const struct lease_opts *o);
/* After cluster_free (the hook no longer runs): forget the agent. The shares stay in the
 * map (the next start rewrites them). NULL-safe. */
void lease_free(struct lease *l);

const char *lease_limit_name(unsigned limit);

#endif /* SLUICE_LEASE_H */
