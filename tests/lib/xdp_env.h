/* SPDX-License-Identifier: MIT */
/* xdp_env.h -- real-traffic XDP test hosts: a namespace pair, sluicectl in B, pktgen in A
 *
 * xdp_env_setup() makes a fresh netns pair (tests/lib/netns.h), mounts bpffs if the
 * machine has none, and attaches the admission program with `sluicectl attach` to if_b
 * with a pin dir unique to the process and test (/sys/fs/bpf/sluice-test-<pid>-<name>).
 * Traffic is sent by `pktgen` from ns_a to if_b's MAC and address; results are read back
 * only through `sluicectl stats --json`, as an operator would. Teardown detaches, removes
 * the pins and both namespaces, also after a failed assertion.
 */
#ifndef SLUICE_TEST_XDP_ENV_H
#define SLUICE_TEST_XDP_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "netns.h"

struct xdp_env {
	struct netns_pair p;
	char pin_dir[128];
	char ctl[512]; /* path of sluicectl */
	char gen[512]; /* path of pktgen */
	bool attached;
};

/* What pktgen reported. */
struct xdp_sent {
	long long sent;
	double elapsed_s, rate_pps, first_s, last_s;
};

/* Set up namespaces and attach with `--ports ports`. Returns 0; on failure marks the test
 * skipped (no root, no BPF) or failed and returns -1 with nothing left behind. */
int xdp_env_setup(struct xdp_env *e, const char *name, const char *ports);
void xdp_env_teardown(struct xdp_env *e);

/* Run `sluicectl --pin-dir DIR ARGS` in ns_b; output (stdout+stderr) into out. Returns
 * the exit status. */
int xdp_ctl(struct xdp_env *e, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* xdp_ctl that must succeed: returns false (and prints the output) when it does not. */
bool xdp_ctl_ok(struct xdp_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Run pktgen in ns_a towards if_b (--iface, --dst-mac, --dst are filled in; v6 picks the
 * IPv6 destination) with extra ARGS; fills *r. Returns 0 or -1. */
int xdp_send(struct xdp_env *e, bool v6, struct xdp_sent *r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same in a child process; collect with xdp_send_wait(). Returns the pid or -1. */
pid_t xdp_send_start(struct xdp_env *e, bool v6, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int xdp_send_wait(pid_t pid, struct xdp_sent *r);

/* `sluicectl stats --json`, parsed (caller json_decref()s), NULL on failure. */
json_t *xdp_stats(struct xdp_env *e);
/* Packets of tenant (by name) with verdict in a stats object; 0 when absent. */
long long xdp_count(json_t *stats, const char *tenant, const char *verdict);
/* `sluicectl --json CMD...` parsed, NULL on failure. */
json_t *xdp_ctl_json(struct xdp_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An address in ns_a's /24 (or /64) other than the veth's own: 10.X.Y.host / PREFIX::host. */
void xdp_addr(const struct xdp_env *e, bool v6, int host, char *buf, size_t len);

/* TCP segments received by ns_b's stack (InSegs of /proc/net/snmp), or -1. */
long long xdp_tcp_in_segs(struct xdp_env *e);

/* Sleep s seconds (clock_mono_s() of lib/clock.h measures). */
void xdp_sleep(double s);

#endif /* SLUICE_TEST_XDP_ENV_H */
