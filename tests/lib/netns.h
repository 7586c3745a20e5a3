/* SPDX-License-Identifier: MIT */
/* netns.h -- test hosts in network namespaces, and running commands on them
 *
 * A pair is two fresh namespaces joined by a veth: A (the client/sender) and B (the
 * server, where XDP is attached to if_b). Names and addresses are unique per process
 * and pair, so tests can run side by side; nothing touches the root namespace's links.
 * Commands run through `nsenter --net=` (network namespace only), so the BPF filesystem
 * and the build directory stay visible to them.
 */
#ifndef SLUICE_TEST_NETNS_H
#define SLUICE_TEST_NETNS_H

#include <stddef.h>

struct netns_pair {
	char ns_a[32], ns_b[32];   /* namespace names (under /run/netns) */
	char if_a[16], if_b[16];   /* veth ends, in ns_a and ns_b */
	char ip4_a[16], ip4_b[16]; /* 10.X.Y.1 and .2, /24 */
	char ip6_a[48], ip6_b[48]; /* fd00:5:X:Y::1 and ::2, /64 */
	char mac_a[18], mac_b[18];
};

/* Create both namespaces, the veth, addresses (IPv6 without DAD) and bring all up.
 * Returns 0 or -errno; on failure nothing is left behind. */
int netns_pair_create(struct netns_pair *p);
/* Remove both namespaces (the veth goes with them). NULL-safe, idempotent. */
void netns_pair_destroy(struct netns_pair *p);

/* Run a shell command (printf-style) inside namespace ns ("" or NULL: the current one),
 * capturing stdout+stderr into out (NUL-terminated, may be NULL). Returns the exit status
 * (0..255) or -errno when it could not run. */
int netns_run(const char *ns, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Switch the calling thread into ns; returns an fd for netns_leave(), or -errno. */
int netns_enter(const char *ns);
void netns_leave(int saved_fd);

#endif /* SLUICE_TEST_NETNS_H */
