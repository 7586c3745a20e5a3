/* SPDX-License-Identifier: MIT */
/* cshed.h -- one overload controller for the cluster: a Redis lease lock, a published decision
 *
 * Every worker (role worker or all) with --cluster-redis is a candidate: each cluster period
 * (--lease-period-ms, on lib/cluster's thread) it holds or tries for the controller lease
 * (SET NX PX --controller-lease-ms, renewed by a script that checks its token). The
 * holder's controller decides from the cluster's class lag (the largest any candidate
 * reports, cshed_report_lag) as on one node and offers the decision
 * (cshed_offer); the tick publishes it in Redis with an expiry two periods past the lease,
 * so a standby that takes the lock over renews it before anyone falls back, and a decision
 * nobody renews disappears: every node returns to its own controller (NORMAL on an ingress
 * node). A dead controller never leaves the cluster shedding. Every node (ingress and
 * workers) reads the decision each period (cshed_get) and applies it like its own
 * controller's. An operator's cluster pin (`sluicectl shed set LEVEL --cluster-redis ADDR`,
 * cshed_pin_set) overrides the controller for every node; a local `sluicectl shed set`
 * overrides both on that node only (controller.c).
 *
 * The holder also keeps the cluster's alert: one incident per cluster emergency, opened and
 * closed inside the same script that publishes (claims under a per-incident key, SET NX),
 * so a takeover never triggers again and exactly one resolve is sent, whichever worker
 * holds the lease (docs/cluster.md, "Cluster-wide shedding", says what a holder dying
 * between the claim and the POST costs).
 *
 * Redis keys (lib/cluster.h's prefix, sluice:cluster:):
 * - shed:lock: the holder's token, PX lease;
 * - shed:decision: "seq decided_ms node level pm_crit pm_normal pm_low pinned", PX lease + 2
 *   periods;
 * - shed:seq: INCR per new decision (or new holder);
 * - shed:pin: "level pm_crit pm_normal pm_low", no expiry (the operator's);
 * - shed:incident: the open incident's id; shed:incident:seq: INCR per incident;
 * - shed:incident:ID:trigger and :resolve: the claims (the claiming node), kept 7 days;
 * - shed:lags: a hash, per candidate node "crit normal low at_ms" (its class lag in ms and
 *   when it reported it), read by the holder, entries older than the lease dropped.
 *
 * Threads: cshed_tick runs on the cluster thread (all the Redis I/O); cshed_offer, cshed_get
 * and cshed_stats on any thread (a mutex around a small snapshot).
 */
#ifndef SLUICE_CSHED_H
#define SLUICE_CSHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "sluice/abi.h"

struct cluster;
struct redis;

/* Whose shed level a node applies (sluice_overload_source, `sluicectl shed show`). */
enum cshed_source {
	/* this node's controller (no cluster decision in force) */
	CSHED_SRC_LOCAL = SLUICE_SHED_SRC_LOCAL,
	/* the cluster controller's published decision */
	CSHED_SRC_CLUSTER = SLUICE_SHED_SRC_CLUSTER,
	/* an operator's cluster-wide pin */
	CSHED_SRC_CLUSTER_PIN = SLUICE_SHED_SRC_CLUSTER_PIN,
	CSHED_SRC_LOCAL_PIN = 3, /* an operator's `shed set` on this node */
	CSHED_SRC_MAX = 4,
};

struct cshed_decision {
	uint32_t level;			     /* enum sluice_shed_level */
	uint32_t permille[SLUICE_CLASS_MAX]; /* XDP SYN drop share per class */
	bool pinned;			     /* an operator's cluster pin */
	uint64_t seq;			     /* moves with every new decision or holder */
	uint64_t decided_ms;		     /* wall clock, when the level was decided */
	char node[64];			     /* the holder that published it */
};

/* The holder opened (CSHED_TRIGGER) or closed (CSHED_RESOLVE) the cluster's incident. */
enum cshed_incident { CSHED_TRIGGER = 1, CSHED_RESOLVE = 2 };

struct cshed_config {
	bool candidate;	   /* a worker: may hold the controller lease */
	uint32_t lease_ms; /* --controller-lease-ms, default 2000 */
	/* the tick saw a new decision, or the one in force expired: wake the controller */
	void (*on_change)(void *arg);
	void *on_change_arg;
	/* the holder claimed the incident's trigger or resolve: send it (dedup_key is the
	 * cluster's, the same on every node) */
	void (*on_incident)(void *arg, enum cshed_incident what, const char *dedup_key,
			    const struct cshed_decision *d);
	void *on_incident_arg;
};

struct cshed_stats {
	bool leader;
	uint64_t takeovers;   /* times this node took the lease */
	uint64_t unreachable; /* ticks that did not reach Redis */
	uint64_t seq;	      /* the last decision seen */
	uint64_t incidents;   /* triggers and resolves this node claimed */
};

#define CSHED_LEASE_MS_DEFAULT 2000

/* cl is borrowed: the cluster's connection, its node name and period (lib/cluster.h). NULL +
 * errno (EINVAL: node name empty or with a space, lease_ms under two cluster periods). */
struct cshed *cshed_new(struct cluster *cl, const struct cshed_config *cfg);
/* Stand for the lease no more and give it back if held (at the next tick, waited for up to
 * two periods), before the cluster thread stops. Any thread but the cluster's. NULL-safe. */
void cshed_leave(struct cshed *c);
/* No Redis I/O (cshed_leave did it). NULL-safe. */
void cshed_free(struct cshed *c);

/* One round on the cluster thread: hold or try for the lease (candidates), publish
 * (holder), read the decision. Returns 0, or -EIO when Redis did not answer (the last
 * decision stays in force until it would have expired). cshed_hook is the same as a
 * cluster hook (arg: the cshed; up false counts as unreachable). */
int cshed_tick(struct cshed *c);
void cshed_hook(struct cluster *cl, bool up, void *arg);

/* The controller, every period: its own decision. Published at the next tick while this
 * node holds the lease; ignored otherwise. A candidate stands for the lease only after an
 * offer made once a tick has read the cluster's decision (which a standby's controller
 * adopts first, overload_adopt), so a worker joining during an emergency goes on from it. */
void cshed_offer(struct cshed *c, uint32_t level, const uint32_t permille[SLUICE_CLASS_MAX]);
/* A worker's controller, every period: its class lag (the age of its oldest waiting
 * entry per class). Candidates report it to the cluster at each tick (a hash field per node,
 * kept for a lease). */
void cshed_report_lag(struct cshed *c, const uint64_t lag_ns[SLUICE_CLASS_MAX]);
/* The holder: the largest lag per class that any candidate reported within the lease (its
 * own included, a period old), so the one controller decides on the cluster's lag, not
 * only its worker's. False when not the holder or not fresh (two periods). */
bool cshed_cluster_lag(struct cshed *c, uint64_t lag_ns[SLUICE_CLASS_MAX]);
/* The cluster decision in force now (pin or controller), or false when there is none (no
 * holder, or Redis unreachable past the decision's expiry): the node's own controller
 * decides then. */
bool cshed_get(struct cshed *c, struct cshed_decision *out);
bool cshed_leader(struct cshed *c);
void cshed_stats(struct cshed *c, struct cshed_stats *out);

/* The operator's cluster pin (sluicectl): set it, or clear it (the controller decides
 * again). 0 or -errno. */
int cshed_pin_set(struct redis *r, uint32_t level, const uint32_t permille[SLUICE_CLASS_MAX]);
int cshed_pin_clear(struct redis *r);
/* The pin in force: 1 with *out filled (seq, node, decided_ms 0), 0 for none, -errno. */
int cshed_pin_get(struct redis *r, struct cshed_decision *out);

/* The cluster controller's published decision: 1 with *out filled, 0 for none (no holder,
 * or it expired), -errno. */
int cshed_decision_read(struct redis *r, struct cshed_decision *out);

const char *cshed_source_name(enum cshed_source s);

#endif /* SLUICE_CSHED_H */
