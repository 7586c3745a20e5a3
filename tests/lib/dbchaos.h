/* SPDX-License-Identifier: MIT */
/* dbchaos.h -- a network namespace for a database, and partitions of it (packets dropped)
 *
 * dbchaos_create() makes a namespace joined to the test's own (root) namespace by a veth,
 * with a /30 of its own: ip_host on the root side, ip_ns inside. A server started in the
 * namespace (pgh_options.netns, listen_addr = ip_ns) is reached over that link; its unix
 * socket stays reachable, so the test can still look at it during a partition.
 * dbchaos_partition() loads an nftables table in the namespace that drops every packet in
 * and out of the veth: connections hang (no RST, no ICMP) as when a network or a host goes
 * silent; dbchaos_heal() deletes it. Everything created is removed by dbchaos_destroy(),
 * by an atexit handler if the test forgot or failed, and namespaces left by a killed test
 * process (named after its pid) by the next dbchaos_create().
 */
#ifndef SLUICE_TEST_DBCHAOS_H
#define SLUICE_TEST_DBCHAOS_H

#include <stdbool.h>

struct dbchaos {
	char ns[32];		     /* namespace name (under /run/netns) */
	char if_host[16], if_ns[16]; /* veth ends */
	char ip_host[16], ip_ns[16]; /* their IPv4 addresses (/30) */
	bool created, partitioned;
};

/* Create the namespace and the link. 0 or -errno (nothing left behind on failure). */
int dbchaos_create(struct dbchaos *c);
/* Drop every packet to and from the namespace (nft). 0 or -errno. */
int dbchaos_partition(struct dbchaos *c);
/* Let packets through again. 0 or -errno. */
int dbchaos_heal(struct dbchaos *c);
/* Delete the namespace (the veth goes with it). NULL-safe, idempotent. */
void dbchaos_destroy(struct dbchaos *c);

#endif /* SLUICE_TEST_DBCHAOS_H */
