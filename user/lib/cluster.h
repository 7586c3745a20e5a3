/* SPDX-License-Identifier: MIT */
/* cluster.h -- this node's membership in a Sluice cluster, over one Redis (--cluster-redis)
 *
 * One connection of its own, used only on one thread (a ticker, every lease period), so a
 * slow or dead Redis never touches a request path. Each period the node renews its
 * registration, then runs the hooks added before cluster_run() (the lease agent, cluster
 * shedding, ...) in order on that thread; a hook talks to Redis with cluster_command*().
 *
 * Node names are unique cluster-wide: the key sluice:cluster:node:<name> holds a random
 * per-process token, set with SET NX PX at start and renewed (PX) every period. At start a
 * name held by another token is waited for up to one TTL plus two periods (a node that just
 * died frees it by then; a live one keeps renewing it): cluster_register() then fails with
 * -EEXIST and sluiced exits with status 2. The sorted set sluice:cluster:nodes (score: the
 * last renewal, Redis TIME in ms) says which nodes are alive; entries older than the TTL
 * are dropped by every renewal. A clean stop deletes the node's key and entry, so a node
 * restarted at once keeps its name.
 *
 * A transport error drops the connection; the next period reconnects (connect_timeout_ms)
 * and re-authenticates. Hooks are told whether Redis answered this period's renewal.
 */
#ifndef SLUICE_CLUSTER_H
#define SLUICE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/redis.h"

#define CLUSTER_PREFIX	  "sluice:cluster:"
#define CLUSTER_HOOKS_MAX 8

struct cluster;
struct redisReply;

struct cluster_config {
	struct redis_config redis; /* host, port, user, password, connect/op timeouts */
	char node[64];		   /* --node */
	uint32_t period_ms;	   /* --lease-period-ms: renewal and hook period */
};

struct cluster_status {
	bool up;	      /* the last renewal was answered */
	bool registered;      /* the name is ours (false while another live node holds it) */
	uint32_t nodes;	      /* live nodes at the last answered renewal (>= 1) */
	uint64_t errors;      /* commands without an answer (transport errors, timeouts) */
	uint64_t renewals;    /* answered renewals */
	uint64_t last_rtt_ns; /* round trip of the last answered renewal */
};

/* The cluster thread calls each hook once a period: up says whether Redis answered this
 * period's renewal (and the name is ours); when it is false, cluster_command* return NULL. */
typedef void cluster_hook_fn(struct cluster *c, bool up, void *arg);

/* A client for cfg (nothing connects yet). NULL with errno set. */
struct cluster *cluster_new(const struct cluster_config *cfg);
/* Claim the node name (blocks up to TTL + 2 periods while another token holds it). 0;
 * -EEXIST when a live node holds it (err names the node); -errno when Redis did not answer
 * (err says why; the caller may go on: every period retries and logs a conflict found then). */
int cluster_register(struct cluster *c, char *err, size_t errlen);
/* Add a hook (before cluster_run). 0 or -ENOSPC. */
int cluster_add_hook(struct cluster *c, cluster_hook_fn *fn, void *arg);
/* Start the period thread. 0 or -errno. */
int cluster_run(struct cluster *c);
/* Stop the thread, give the name back (when Redis answers), close. NULL-safe. */
void cluster_free(struct cluster *c);

/* One command on the cluster connection; only from a hook (the cluster thread) or before
 * cluster_run. The reply (freeReplyObject) or NULL after a transport error (the connection
 * is dropped and reopened next period). An ERROR reply is returned as a reply. */
struct redisReply *cluster_command(struct cluster *c, const char *fmt, ...);
struct redisReply *cluster_command_argv(struct cluster *c, int argc, const char **argv,
					const size_t *argvlen);

/* A snapshot of the state (any thread). */
void cluster_status(struct cluster *c, struct cluster_status *st);
/* The node name and the configuration it runs with. */
const struct cluster_config *cluster_config(const struct cluster *c);
/* A key under the cluster prefix: CLUSTER_PREFIX + what, in buf. Returns buf. */
char *cluster_key(char *buf, size_t len, const char *what);
/* Registration TTL in ms: four periods, at least one second. */
uint32_t cluster_ttl_ms(const struct cluster_config *cfg);

#endif /* SLUICE_CLUSTER_H */
