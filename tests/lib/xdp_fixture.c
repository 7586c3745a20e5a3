// SPDX-License-Identifier: MIT
/* xdp_fixture.c -- a private instance of the admission program and its maps, for tests
 *
 * Thin wrappers over bpf_map_{lookup,update}_elem on the loader's fds; the only logic is
 * what sluicectl will also have to do (IPv4-mapped keys, prefix lengths counted on the
 * 16-byte address, generation bumps). Per-CPU counters are summed by sluice_bpf_counters_sum().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "lib/clock.h"
#include "test_progs.h"
#include "xdp_fixture.h"

bool xfx_require_kernel(void)
{
	char err[512];
	int ret;

	if (geteuid() != 0) {
		test__skip("needs root (BPF)");
		return false;
	}
	ret = sluice_bpf_probe(err, sizeof(err));
	if (ret == -EOPNOTSUPP || ret == -EPERM || ret == -EACCES) {
		test__skip("%s", err);
		return false;
	}
	return ASSERT_OK(ret, err);
}

bool xfx_open(struct xfx *x)
{
	char err[4096];
	int i;

	memset(x, 0, sizeof(*x));
	if (!xfx_require_kernel())
		return false;
	/* private maps: no BPF filesystem needed, only bpf(2) */
	x->b = sluice_bpf_load(NULL, err, sizeof(err));
	if (!x->b && (errno == EPERM || errno == EACCES)) {
		test__skip("%s", err);
		return false;
	}
	if (!ASSERT_OK_PTR(x->b, "sluice_bpf_load")) {
		printf("%s\n", err);
		return false;
	}
	for (i = 0; i < SLUICE_M_COUNT; i++)
		x->fd[i] = sluice_bpf_map_fd(x->b, i);
	return true;
}

void xfx_close(struct xfx *x)
{
	sluice_bpf_free(x->b);
	x->b = NULL;
}

static int upd(int fd, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

int xfx_config_get(struct xfx *x, struct sluice_config *cfg)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(x->fd[SLUICE_M_CONFIG], &zero, cfg) ? -errno : 0;
}

int xfx_config_set(struct xfx *x, const struct sluice_config *cfg)
{
	__u32 zero = 0;

	return upd(x->fd[SLUICE_M_CONFIG], &zero, cfg);
}

int xfx_bump_generation(struct xfx *x)
{
	struct sluice_config cfg;
	int ret = xfx_config_get(x, &cfg);

	if (ret)
		return ret;
	cfg.generation++;
	return xfx_config_set(x, &cfg);
}

int xfx_set_flags(struct xfx *x, __u32 flags)
{
	struct sluice_config cfg;
	int ret = xfx_config_get(x, &cfg);

	if (ret)
		return ret;
	cfg.flags = flags;
	return xfx_config_set(x, &cfg);
}

int xfx_set_shed(struct xfx *x, __u32 level, __u32 crit, __u32 normal, __u32 low)
{
	struct sluice_config cfg;
	int ret = xfx_config_get(x, &cfg);

	if (ret)
		return ret;
	cfg.shed_level = level;
	cfg.shed_mode = SLUICE_SHED_MANUAL;
	cfg.permille[SLUICE_CLASS_CRITICAL] = crit;
	cfg.permille[SLUICE_CLASS_NORMAL] = normal;
	cfg.permille[SLUICE_CLASS_LOW] = low;
	return xfx_config_set(x, &cfg);
}

int xfx_port(struct xfx *x, __u16 port, __u32 mask)
{
	__u32 k = port;

	return upd(x->fd[SLUICE_M_PORTS], &k, &mask);
}

int xfx_tenant(struct xfx *x, __u32 slot, const char *name, __u32 class, __u64 syn_interval,
	       __u64 syn_burst, __u64 pkt_interval, __u64 pkt_burst)
{
	struct sluice_tenant_cfg tc = {};
	struct sluice_tenant_state ts = {};
	int ret;

	snprintf(tc.name, sizeof(tc.name), "%s", name);
	tc.class = class;
	tc.limit[SLUICE_LIMIT_SYN].interval_ns = syn_interval;
	tc.limit[SLUICE_LIMIT_SYN].burst = syn_burst;
	tc.limit[SLUICE_LIMIT_PKT].interval_ns = pkt_interval;
	tc.limit[SLUICE_LIMIT_PKT].burst = pkt_burst;
	ret = upd(x->fd[SLUICE_M_TENANT_CFG], &slot, &tc);
	return ret ? ret : upd(x->fd[SLUICE_M_TENANT_STATE], &slot, &ts);
}

int xfx_src_exact(struct xfx *x, const char *addr, __u32 slot)
{
	struct sluice_addr a = pkt_addr(addr);

	return upd(x->fd[SLUICE_M_SRC_EXACT], &a, &slot);
}

int xfx_src_prefix(struct xfx *x, const char *addr, unsigned len, __u32 slot)
{
	struct sluice_lpm_key k = pkt_lpm_key(addr, len);

	return upd(x->fd[SLUICE_M_SRC_PREFIX], &k, &slot);
}

int xfx_deny_exact(struct xfx *x, const char *addr, __u64 expires_ns)
{
	struct sluice_deny d = {.expires_ns = expires_ns, .added_ns = clock_mono_ns()};
	struct sluice_addr a = pkt_addr(addr);

	return upd(x->fd[SLUICE_M_DENY_EXACT], &a, &d);
}

int xfx_deny_prefix(struct xfx *x, const char *addr, unsigned len, __u64 expires_ns)
{
	struct sluice_deny d = {.expires_ns = expires_ns, .added_ns = clock_mono_ns()};
	struct sluice_lpm_key k = pkt_lpm_key(addr, len);

	return upd(x->fd[SLUICE_M_DENY_PREFIX], &k, &d);
}

int xfx_run(struct xfx *x, const void *buf, size_t len)
{
	return sluice_bpf_test_run(x->b, buf, len, 1, NULL);
}

int xfx_run_spec(struct xfx *x, const struct pkt_spec *s)
{
	struct pkt p;
	int ret = pkt_build(&p, s);

	return ret ? ret : xfx_run(x, p.buf, p.len);
}

long long xfx_count(struct xfx *x, __u32 slot, __u32 verdict, long long *bytes)
{
	struct sluice_counters c;

	if (verdict >= SLUICE_V_MAX || sluice_bpf_counters_sum(x->fd[SLUICE_M_COUNTERS], slot, &c))
		return -1;
	if (bytes)
		*bytes = (long long)c.bytes[verdict];
	return (long long)c.packets[verdict];
}

long long xfx_count_all(struct xfx *x, __u32 max_slot)
{
	struct sluice_counters c;
	long long n = 0;
	__u32 s;
	int v;

	for (s = 0; s <= max_slot; s++) {
		if (sluice_bpf_counters_sum(x->fd[SLUICE_M_COUNTERS], s, &c))
			return -1;
		for (v = 0; v < SLUICE_V_MAX; v++)
			n += (long long)c.packets[v];
	}
	return n;
}

int xfx_src_state(struct xfx *x, const char *addr, struct sluice_src *out)
{
	struct sluice_addr a = pkt_addr(addr);

	return bpf_map_lookup_elem(x->fd[SLUICE_M_SRC_STATE], &a, out) ? -errno : 0;
}

__u64 xfx_tat(struct xfx *x, __u32 slot, __u32 kind)
{
	struct sluice_tenant_state ts;

	if (kind >= SLUICE_LIMIT_MAX ||
	    bpf_map_lookup_elem(x->fd[SLUICE_M_TENANT_STATE], &slot, &ts))
		return 0;
	return ts.tat[kind];
}

void xfx_run_subtests(const struct xfx_subtest *subs, size_t n, bool (*setup)(struct xfx *x))
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct xfx x;

		if (!test__start_subtest(subs[i].name))
			continue;
		/* a private instance per subtest: no entry of one case can answer another */
		if (!xfx_open(&x))
			continue;
		if (!setup || setup(&x))
			subs[i].fn(&x);
		xfx_close(&x);
	}
}

__u64 xfx_clock_slack(void)
{
	struct timespec res;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res))
		return 20000000ULL; /* 20 ms: HZ=100's tick, doubled */
	return 2 * ((__u64)res.tv_sec * 1000000000ULL + (__u64)res.tv_nsec);
}
