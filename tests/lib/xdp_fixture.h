/* SPDX-License-Identifier: MIT */
/* xdp_fixture.h -- a private instance of the admission program and its maps, for tests
 *
 * Each test loads its own program with private (unpinned) maps, so tests never see each
 * other's state. The helpers write configuration the way sluicectl will (tenant slots,
 * sources, prefixes, deny entries, then a generation bump so cached resolutions are
 * dropped) and read back side effects: counters summed over CPUs, per-source state,
 * tenant tats. Every helper returns 0 or -errno and leaves the maps as they were on error.
 */
#ifndef SLUICE_TEST_XDP_FIXTURE_H
#define SLUICE_TEST_XDP_FIXTURE_H

#include <stdbool.h>
#include <linux/bpf.h> /* XDP_PASS, XDP_DROP */
#include <linux/types.h>

#include "nic/bpf_loader.h"
#include "pkt.h"

struct xfx {
	struct sluice_bpf *b;
	int fd[SLUICE_M_COUNT];
};

/* Whether the test can load the program: root, and a kernel with every BPF feature it uses
 * (sluice_bpf_probe). Otherwise marks the test skipped, naming what is missing. */
bool xfx_require_kernel(void);

/* Load a private instance; skips the test (returns false) without root/BPF or on a kernel
 * too old for the program, fails it (returns false) when loading fails. */
bool xfx_open(struct xfx *x);
void xfx_close(struct xfx *x);

int xfx_config_get(struct xfx *x, struct sluice_config *cfg);
int xfx_config_set(struct xfx *x, const struct sluice_config *cfg);
/* Increment config.generation, as sluicectl does after changing sources or deny entries. */
int xfx_bump_generation(struct xfx *x);
int xfx_set_flags(struct xfx *x, __u32 flags);
int xfx_set_shed(struct xfx *x, __u32 level, __u32 crit, __u32 normal, __u32 low);

/* Mark port as a service port for mask (SLUICE_PORT_TCP | SLUICE_PORT_UDP). */
int xfx_port(struct xfx *x, __u16 port, __u32 mask);
/* Configure slot: name, class and SYN / PKT limits (interval 0 = unlimited); tats reset. */
int xfx_tenant(struct xfx *x, __u32 slot, const char *name, __u32 class, __u64 syn_interval,
	       __u64 syn_burst, __u64 pkt_interval, __u64 pkt_burst);
int xfx_src_exact(struct xfx *x, const char *addr, __u32 slot);
int xfx_src_prefix(struct xfx *x, const char *addr, unsigned len, __u32 slot);
int xfx_deny_exact(struct xfx *x, const char *addr, __u64 expires_ns);
int xfx_deny_prefix(struct xfx *x, const char *addr, unsigned len, __u64 expires_ns);

/* Run one frame; returns the XDP action or -errno. */
int xfx_run(struct xfx *x, const void *buf, size_t len);
/* Build spec and run it; returns the XDP action, or -errno (build or run failure). */
int xfx_run_spec(struct xfx *x, const struct pkt_spec *s);

/* Packets (and bytes when non-NULL) counted for slot x verdict, summed over CPUs; -1 on
 * error. */
long long xfx_count(struct xfx *x, __u32 slot, __u32 verdict, long long *bytes);
/* Packets over every slot 0..max_slot and verdict. */
long long xfx_count_all(struct xfx *x, __u32 max_slot);
/* The src_state entry for addr: 0, or -ENOENT when there is none. */
int xfx_src_state(struct xfx *x, const char *addr, struct sluice_src *out);
/* tat[kind] of slot's shared state. */
__u64 xfx_tat(struct xfx *x, __u32 slot, __u32 kind);

/* A subtest on its own private instance; setup (may be NULL) prepares the maps first. */
struct xfx_subtest {
	const char *name;
	void (*fn)(struct xfx *x);
};
void xfx_run_subtests(const struct xfx_subtest *subs, size_t n, bool (*setup)(struct xfx *x));

/* How far behind CLOCK_MONOTONIC the program's clock may be: it uses the value read when
 * jiffies last moved (one tick, CLOCK_MONOTONIC_COARSE's resolution), doubled for the
 * jiffies update's own latency. A time the program stamped is >= clock_mono_ns() - this. */
__u64 xfx_clock_slack(void);

#endif /* SLUICE_TEST_XDP_FIXTURE_H */
