// SPDX-License-Identifier: MIT
/* xdp_cost.c -- ns/packet of the XDP admission program per path, against a bare XDP_PASS
 *
 * Loads a private instance of the admission program with a realistic table size (10,000
 * tenants, 10,000 exact source addresses, 10,000 source prefixes, 10,000 exact deny
 * entries and 10,000 deny prefixes) and the bare program bpf/bench_bare.bpf.c, then times
 * each path with BPF_PROG_TEST_RUN (kernel-measured mean ns per run over `repeat` runs):
 * known tenant SYN by exact address, known tenant SYN by prefix, anonymous data packet,
 * denied source, non-service packet, and the exact-address path of a tenant whose cluster
 * share is in force (leases on; the first row is the same path with leases off). Limits are huge
 * rather than unlimited, so the pass paths do their GCRA compare-and-swap like real traffic, yet
 * never run out of credit.
 *
 * Each path is run once first and must land on its intended (slot, verdict) counter, so
 * the table cannot silently time a different path. Rounds interleave the bare program
 * with the paths, and the median round is reported for three configurations: the default,
 * SLUICE_CFG_EXACT_CLOCK (the clock read on every packet rather than once per tick) and
 * SLUICE_CFG_NO_CACHE (every packet resolved from the maps: the cold path).
 *
 * Usage: xdp_cost [-r REPEAT] [-n ROUNDS] [-p PATH]   (defaults 1000000, 5, every path)
 * -p runs one path only (0-5, table order; cached), for `perf record` while profiling.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "lib/array_size.h"
#include "nic/bpf_loader.h"
#include "bench_stats.h"
#include "pkt.h"

#define N_ENTRIES     10000
#define TARGET_NS     60.0
#define MAX_ROUNDS    101
#define SVC_PORT      443
#define HUGE_INTERVAL 1ULL	    /* 1e9 cells/s ... */
#define HUGE_BURST    4000000000ULL /* ... with 4 s banked: never exhausted here */

enum path_id { P_EXACT, P_PREFIX, P_ANON, P_DENY, P_OTHER, P_SHARE, P_COUNT };

struct path {
	const char *name;
	const char *src;
	__u16 dport;
	__u8 flags;
	__u32 slot, verdict, action; /* where its one verification packet must land */
	struct pkt pkt;
};

static struct path paths[P_COUNT] = {
    [P_EXACT] = {"known tenant SYN, exact address", "10.0.7.1", SVC_PORT, PKT_SYN, 2 + 7,
		 SLUICE_V_PASS, XDP_PASS},
    [P_PREFIX] = {"known tenant SYN, by prefix", "100.64.9.77", SVC_PORT, PKT_SYN, 2 + 9,
		  SLUICE_V_PASS, XDP_PASS},
    [P_ANON] = {"anonymous data packet", "203.0.113.50", SVC_PORT, PKT_ACK, SLUICE_SLOT_ANON,
		SLUICE_V_PASS, XDP_PASS},
    [P_DENY] = {"denied source", "172.16.3.9", SVC_PORT, PKT_SYN, SLUICE_SLOT_ANON, SLUICE_V_DENY,
		XDP_DROP},
    [P_OTHER] = {"non-service packet", "10.0.7.1", 22, PKT_SYN, SLUICE_SLOT_NONE, SLUICE_V_OTHER,
		 XDP_PASS},
    /* the exact-address path again, for a tenant whose cluster share (issue 14) is in force */
    [P_SHARE] = {"same, cluster share in force", "10.0.8.1", SVC_PORT, PKT_SYN, 2 + 8,
		 SLUICE_V_PASS, XDP_PASS},
};

static int die(const char *what, int err)
{
	fprintf(stderr, "xdp_cost: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void put_addr(char *buf, size_t len, const char *fmt, int i)
{
	snprintf(buf, len, fmt, i / 256, i % 256);
}

static int update(int fd, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

/* 10,000 tenants (slots 2..), each with one exact source 10.a.b.1 and one prefix
 * 100.(64+a).b.0/24; deny 172.(16+a).b.9 exactly and 11.a.b.0/24 by prefix. */
static int populate(struct sluice_bpf *b)
{
	struct sluice_tenant_cfg tc = {.class = SLUICE_CLASS_NORMAL};
	struct sluice_deny forever = {0};
	__u32 slot, port = SVC_PORT, tcp = SLUICE_PORT_TCP;
	char a[64];
	int i, ret = 0, k;

	for (k = SLUICE_LIMIT_SYN; k <= SLUICE_LIMIT_PKT; k++) {
		tc.limit[k].interval_ns = HUGE_INTERVAL;
		tc.limit[k].burst = HUGE_BURST;
	}
	ret = update(sluice_bpf_map_fd(b, SLUICE_M_PORTS), &port, &tcp);
	slot = SLUICE_SLOT_ANON;
	snprintf(tc.name, sizeof(tc.name), "(anonymous)");
	ret = ret ? ret : update(sluice_bpf_map_fd(b, SLUICE_M_TENANT_CFG), &slot, &tc);
	for (i = 0; i < N_ENTRIES && !ret; i++) {
		struct sluice_addr sa;
		struct sluice_lpm_key lk;

		slot = SLUICE_SLOT_FIRST + i;
		snprintf(tc.name, sizeof(tc.name), "tenant-%d", i);
		ret = update(sluice_bpf_map_fd(b, SLUICE_M_TENANT_CFG), &slot, &tc);
		put_addr(a, sizeof(a), "10.%d.%d.1", i);
		sa = pkt_addr(a);
		ret = ret ? ret : update(sluice_bpf_map_fd(b, SLUICE_M_SRC_EXACT), &sa, &slot);
		put_addr(a, sizeof(a), "100.%d.%d.0", i + 64 * 256);
		lk = pkt_lpm_key(a, 24);
		ret = ret ? ret : update(sluice_bpf_map_fd(b, SLUICE_M_SRC_PREFIX), &lk, &slot);
		put_addr(a, sizeof(a), "172.%d.%d.9", i + 16 * 256);
		sa = pkt_addr(a);
		ret = ret ? ret : update(sluice_bpf_map_fd(b, SLUICE_M_DENY_EXACT), &sa, &forever);
		put_addr(a, sizeof(a), "11.%d.%d.0", i);
		lk = pkt_lpm_key(a, 24);
		ret = ret ? ret : update(sluice_bpf_map_fd(b, SLUICE_M_DENY_PREFIX), &lk, &forever);
	}
	/* tenant 8 enforces a lease share (as huge as its own limits) instead of its limits */
	if (!ret) {
		struct sluice_tenant_share sh = {.mask = (1u << SLUICE_LIMIT_SYN) |
							 (1u << SLUICE_LIMIT_PKT),
						 .source = SLUICE_SHARE_LEASE};

		slot = SLUICE_SLOT_FIRST + 8;
		sh.limit[SLUICE_LIMIT_SYN] = tc.limit[SLUICE_LIMIT_SYN];
		sh.limit[SLUICE_LIMIT_PKT] = tc.limit[SLUICE_LIMIT_PKT];
		ret = update(sluice_bpf_map_fd(b, SLUICE_M_TENANT_SHARE), &slot, &sh);
	}
	return ret;
}

static int set_flags(struct sluice_bpf *b, __u32 flags)
{
	int fd = sluice_bpf_map_fd(b, SLUICE_M_CONFIG);
	struct sluice_config cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return -errno;
	cfg.flags = flags;
	cfg.generation++;
	cfg.revalidate_ns = 3600ULL * 1000000000ULL; /* the cache answers for the whole run */
	return update(fd, &zero, &cfg);
}

/* Run each path once and check it lands where intended. */
static void verify_paths(struct sluice_bpf *b, const char *mode)
{
	int fd = sluice_bpf_map_fd(b, SLUICE_M_COUNTERS), i, act;
	struct sluice_counters c0, c1;

	for (i = 0; i < P_COUNT; i++) {
		struct path *p = &paths[i];

		if (sluice_bpf_counters_sum(fd, p->slot, &c0))
			die("read counters", errno);
		act = sluice_bpf_test_run(b, p->pkt.buf, p->pkt.len, 1, NULL);
		if (sluice_bpf_counters_sum(fd, p->slot, &c1))
			die("read counters", errno);
		if (act != (int)p->action || c1.packets[p->verdict] != c0.packets[p->verdict] + 1) {
			fprintf(stderr,
				"xdp_cost: %s (%s): action %d, not the intended path "
				"(slot %u verdict %u)\n",
				p->name, mode, act, p->slot, p->verdict);
			exit(1);
		}
	}
}

static int time_prog(int prog_fd, const struct pkt *p, int repeat, double *ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	*ns = opts.duration;
	return 0;
}

/* The bare program, from the build directory next to this binary. */
static int load_bare(struct bpf_object **obj)
{
	char path[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	struct bpf_program *prog;

	if (n <= 0)
		return -errno;
	path[n] = 0;
	slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, 32, "bench_bare.bpf.o");
	*obj = bpf_object__open_file(path, NULL);
	if (!*obj) {
		fprintf(stderr, "xdp_cost: %s: cannot open (run `make` first)\n", path);
		return -errno;
	}
	if (bpf_object__load(*obj))
		return -errno;
	prog = bpf_object__find_program_by_name(*obj, "bench_bare");
	return prog ? bpf_program__fd(prog) : -ENOENT;
}

/* Profiling aid: run path i (cached) rounds x repeat times, print nothing but its median. */
static void run_one(struct sluice_bpf *b, int i, int repeat, int rounds)
{
	double v[MAX_ROUNDS];
	int r, ret = set_flags(b, 0);

	if (ret)
		die("write config", ret);
	verify_paths(b, "cached");
	for (r = 0; r < rounds; r++) {
		ret = time_prog(sluice_bpf_prog_fd(b), &paths[i].pkt, repeat, &v[r]);
		if (ret)
			die("BPF_PROG_TEST_RUN", ret);
	}
	printf("%s: %.1f ns/pkt (cached, median of %d)\n", paths[i].name, bench_median(v, rounds),
	       rounds);
}

/* Configurations measured, one table column each. */
static const struct mode {
	const char *name;
	__u32 flags;
} modes[] = {
    {"default", 0},
    {"exact clock", SLUICE_CFG_EXACT_CLOCK},
    {"no cache", SLUICE_CFG_NO_CACHE},
};
#define N_MODES ((int)(ARRAY_SIZE(modes)))

/* results[mode][path] medians; index P_COUNT is the bare program. */
static void measure(struct sluice_bpf *b, int bare_fd, int repeat, int rounds,
		    double med[N_MODES][P_COUNT + 1])
{
	static double samples[N_MODES][P_COUNT + 1][MAX_ROUNDS];
	int mode, r, i;

	for (mode = 0; mode < N_MODES; mode++) {
		int ret = set_flags(b, modes[mode].flags);

		if (ret)
			die("write config", ret);
		verify_paths(b, modes[mode].name);
		for (r = 0; r < rounds; r++) {
			ret = time_prog(bare_fd, &paths[P_EXACT].pkt, repeat,
					&samples[mode][P_COUNT][r]);
			for (i = 0; i < P_COUNT && !ret; i++)
				ret = time_prog(sluice_bpf_prog_fd(b), &paths[i].pkt, repeat,
						&samples[mode][i][r]);
			if (ret)
				die("BPF_PROG_TEST_RUN", ret);
		}
		for (i = 0; i <= P_COUNT; i++)
			med[mode][i] = bench_median(samples[mode][i], rounds);
	}
}

static void print_row(const char *name, double med[N_MODES][P_COUNT + 1], int i)
{
	int mode;

	printf("%-34s", name);
	for (mode = 0; mode < N_MODES; mode++)
		printf(" %8.1f %6.2f", med[mode][i], med[mode][i] / med[mode][P_COUNT]);
	printf("\n");
}

static void print_table(double med[N_MODES][P_COUNT + 1], int repeat, int rounds)
{
	int i, mode;

	printf("xdp_cost: BPF_PROG_TEST_RUN, repeat %d, median of %d rounds; loaded: %d tenants, "
	       "%d exact sources, %d prefixes, %d exact deny + %d deny prefixes\n",
	       repeat, rounds, N_ENTRIES, N_ENTRIES, N_ENTRIES, N_ENTRIES, N_ENTRIES);
	printf("%-34s", "ns/packet and ratio to bare");
	for (mode = 0; mode < N_MODES; mode++)
		printf(" %15s", modes[mode].name);
	printf("\n");
	print_row("bare XDP_PASS (anchor)", med, P_COUNT);
	for (i = 0; i < P_COUNT; i++)
		print_row(paths[i].name, med, i);
	printf("target: exact-address path <= %.0f ns/packet: %s (%.1f ns, %.2f x bare %.1f ns)\n",
	       TARGET_NS, med[0][P_EXACT] <= TARGET_NS ? "met" : "MISSED", med[0][P_EXACT],
	       med[0][P_EXACT] / med[0][P_COUNT], med[0][P_COUNT]);
}

int main(int argc, char **argv)
{
	double med[N_MODES][P_COUNT + 1];
	int repeat = 1000000, rounds = 5, only = -1, opt, i, ret, bare_fd;
	struct bpf_object *bare = NULL;
	struct sluice_bpf *b;
	char err[4096];

	while ((opt = getopt(argc, argv, "r:n:p:h")) != -1) {
		if (opt == 'r' && (repeat = atoi(optarg)) > 0)
			continue;
		if (opt == 'n' && (rounds = atoi(optarg)) > 0 && rounds <= MAX_ROUNDS)
			continue;
		if (opt == 'p' && (only = atoi(optarg)) >= 0 && only < P_COUNT)
			continue;
		fprintf(stderr,
			"usage: xdp_cost [-r REPEAT (>0, default 1000000)] "
			"[-n ROUNDS (1-%d, default 5)] [-p PATH (0-%d, one path only)]\n",
			MAX_ROUNDS, P_COUNT - 1);
		return opt == 'h' ? 0 : 2;
	}
	b = sluice_bpf_load(NULL, err, sizeof(err));
	if (!b) {
		fprintf(stderr, "xdp_cost: %s\n", err);
		return 1;
	}
	ret = populate(b);
	if (ret)
		die("fill maps", ret);
	for (i = 0; i < P_COUNT; i++) {
		struct pkt_spec s;

		pkt_spec_tcp(&s, paths[i].src, "192.0.2.1", paths[i].dport, paths[i].flags);
		s.payload_len = 64;
		if (pkt_build(&paths[i].pkt, &s))
			die("build packet", EINVAL);
	}
	if (only >= 0) {
		run_one(b, only, repeat, rounds);
		sluice_bpf_free(b);
		return 0;
	}
	bare_fd = load_bare(&bare);
	if (bare_fd < 0)
		die("load bench_bare.bpf.o", bare_fd);
	measure(b, bare_fd, repeat, rounds, med);
	print_table(med, repeat, rounds);
	bpf_object__close(bare);
	sluice_bpf_free(b);
	return 0;
}
