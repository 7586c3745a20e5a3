/* SPDX-License-Identifier: MIT */
/* cluster_harness.h -- a Sluice cluster on one machine: N nodes in network namespaces, one Redis
 *
 * Node i is a namespace with one end of its own veth pair (XDP attached there by sluiced
 * --iface) and a /30: the root namespace holds the other end (.1) and the node .2, so load
 * from the root namespace reaches each node at its own address and nothing else. Redis runs
 * in the root namespace, bound to 127.0.0.1 and every host-side address only; node i reaches
 * it at its own gateway address. Each node runs the real sluiced with --node nI,
 * --cluster-redis, XDP on and its own pin directory.
 *
 * Names carry the test process's pid (namespaces slc<pid>n<i>, links slc<pid>h<i> and
 * slc<pid>v<i>, pins /sys/fs/bpf/sluice-test-<pid>-c<i>); the /30s are 10.(224+pid/256%32).
 * (pid%256).(4i). Cleanup does not depend on the test finishing: a watcher process, started
 * first, waits for the test process to die (PR_SET_PDEATHSIG) and then kills every process
 * in the namespaces, deletes them and the pins; cluster_harness_stop() does the same at once
 * and stops the watcher.
 */
#ifndef SLUICE_TEST_CLUSTER_HARNESS_H
#define SLUICE_TEST_CLUSTER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ingress_harness.h"

#define CLUSTER_NODES_MAX 4
#define CLUSTER_ARGS_MAX  24
#define CLUSTER_NODE_PORT "8080" /* every node's --listen port, in its own namespace */

struct cluster_node {
	char name[16];		  /* --node */
	char ns[32];		  /* namespace */
	char if_host[16];	  /* veth end in the root namespace */
	char if_node[16];	  /* veth end in the node (XDP) */
	char ip_host[16];	  /* gateway, Redis's address for this node */
	char ip_node[16];	  /* the node's address: load goes here */
	char mac_node[18];	  /* if_node's MAC (pktgen's destination) */
	char pin_dir[128];	  /* --pin-dir */
	char redis_addr[40];	  /* --cluster-redis */
	struct sluiced_proc proc; /* pid 0 while not running */
	int exit_status;	  /* of the last stop/kill (-1: by a signal) */
};

struct cluster_harness {
	int n;
	struct cluster_node nodes[CLUSTER_NODES_MAX];
	pid_t watcher;
	pid_t redis_pid;
	uint16_t redis_port;
	char redis_dir[256];
	char tenants[4096];		     /* every node's tenants file */
	const char *args[CLUSTER_ARGS_MAX];  /* extra sluiced args (NULL-terminated) */
	char arg_buf[CLUSTER_ARGS_MAX][160]; /* owned copies of them */
};

/* Create n namespaces and links, start Redis and the watcher (nodes are not started).
 * tenants: the tenants file text; args: extra sluiced arguments (NULL-terminated, copied).
 * 0; -ENOENT when redis-server is missing (caller skips); -errno with nothing left behind. */
int cluster_harness_setup(struct cluster_harness *h, int n, const char *tenants,
			  const char *const *args);
/* Start sluiced on node i (--iface, --pin-dir, --node, --cluster-redis, --journal-dir,
 * --threads 1 and the extra args). 0 or -errno (the log is printed). */
int cluster_node_start(struct cluster_harness *h, int i);
/* Start every node. 0 or the first error. */
int cluster_start_all(struct cluster_harness *h);
/* Same with extra arguments for this start only, before the harness's ones. */
int cluster_node_start_args(struct cluster_harness *h, int i, const char *const *args);
/* SIGKILL node i (a crash: nothing given back). */
void cluster_node_kill(struct cluster_harness *h, int i);
/* SIGTERM node i and wait up to timeout_ms; returns its exit status (-1: killed). */
int cluster_node_stop(struct cluster_harness *h, int i, int timeout_ms);
/* Kill Redis (SIGKILL) / start it again on the same port and addresses. */
void cluster_redis_kill(struct cluster_harness *h);
int cluster_redis_restart(struct cluster_harness *h);
/* A redis-cli command line against the cluster's Redis (root namespace), output in out.
 * Returns the exit status. */
int cluster_redis_cli(struct cluster_harness *h, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* GET path on node i's admin listener (from inside its namespace); status, body in out. */
int cluster_admin(struct cluster_harness *h, int i, const char *path, char *out, size_t cap);
/* The value of one metric series (exact text before the value, e.g.
 * "sluice_lease_share{tenant=\"acme\",limit=\"req\"}") on node i, or -1 when absent. */
double cluster_metric(struct cluster_harness *h, int i, const char *series);
/* Stop every node and Redis, delete namespaces and pins, stop the watcher. Idempotent. */
void cluster_harness_stop(struct cluster_harness *h);

#endif /* SLUICE_TEST_CLUSTER_HARNESS_H */
