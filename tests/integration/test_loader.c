// SPDX-License-Identifier: MIT
/* test_loader.c -- the loader for real: attach to a veth, pins that survive a reload, ABI check
 *
 * Two fresh network namespaces joined by a veth (tests/lib/netns); the program is attached
 * from inside ns B to if_b, so nothing outside the test's namespaces is touched. Maps are
 * pinned under a directory unique to this process. When /sys/fs/bpf is not a BPF
 * filesystem on this machine, the body runs in a child with a private mount namespace and
 * its own bpffs mounted there: the pins vanish with it and no one else sees them.
 *
 * Order (one flow, each step a subtest): attach (mode reported = mode the kernel shows,
 * traffic counted), reload with pins kept (config, tat, counters survive; the new program
 * replaces the old one on the interface), ABI mismatch refused with a clear message,
 * detach (nothing left), unpin (directory gone), and errors that name their input.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "lib/array_size.h"
#include "netns.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define BPF_FS_MAGIC_ 0xcafe4a11
#define SVC_PORT      9

struct ctx {
	struct netns_pair np;
	char pin_dir[128];
	char err[4096];
	struct sluice_bpf *b;
	int ifindex;
};

static __u32 prog_id(struct sluice_bpf *b)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(sluice_bpf_prog_fd(b), &info, &len) ? 0 : info.id;
}

/* The Sluice attachment on if_b (ns B), or NULL. */
static bool find_attachment(struct ctx *c, struct sluice_attachment *out)
{
	struct sluice_attachment at[16];
	int n = sluice_bpf_attachments(at, 16), i;

	for (i = 0; i < n; i++) {
		if (at[i].ifindex == c->ifindex) {
			*out = at[i];
			return true;
		}
	}
	return false;
}

static long long counted(struct sluice_bpf *b, __u32 slot, __u32 verdict)
{
	struct sluice_counters sum;

	if (sluice_bpf_counters_sum(sluice_bpf_map_fd(b, SLUICE_M_COUNTERS), slot, &sum))
		return -1;
	return (long long)sum.packets[verdict];
}

static void subtest_attach(struct ctx *c)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct sluice_attachment at;
	enum sluice_xdp_mode mode = SLUICE_XDP_AUTO;
	const char *how = "";
	char out[2048];
	long long before;

	c->b = sluice_bpf_load(c->pin_dir, c->err, sizeof(c->err));
	if (!ASSERT_OK_PTR(c->b, c->err))
		return;
	if (!ASSERT_OK(sluice_bpf_attach(c->b, c->np.if_b, SLUICE_XDP_AUTO, &mode, &how, c->err,
					 sizeof(c->err)),
		       c->err))
		return;
	printf("attached to %s: mode %s via %s\n", c->np.if_b, sluice_xdp_mode_name(mode), how);
	ASSERT_EQ(mode, SLUICE_XDP_NATIVE, "veth takes native XDP");
	if (!ASSERT_OK(bpf_xdp_query(c->ifindex, 0, &q), "bpf_xdp_query"))
		return;
	ASSERT_NEQ(q.prog_id, 0, "something attached");
	ASSERT_EQ(q.attach_mode, mode == SLUICE_XDP_NATIVE ? XDP_ATTACHED_DRV : XDP_ATTACHED_SKB,
		  "kernel shows the reported mode");
	if (ASSERT_TRUE(find_attachment(c, &at), "listed by sluice_bpf_attachments")) {
		ASSERT_EQ(at.prog_id, prog_id(c->b), "our program");
		ASSERT_EQ(at.mode, mode, "listed mode");
	}

	/* real traffic goes through it: ICMP and ARP are OTHER, a denied SYN is dropped */
	before = counted(c->b, SLUICE_SLOT_NONE, SLUICE_V_OTHER);
	ASSERT_EQ(netns_run(c->np.ns_a, out, sizeof(out), "ping -c 2 -i 0.2 -W 2 %s", c->np.ip4_b),
		  0, "ping through XDP");
	ASSERT_GE(counted(c->b, SLUICE_SLOT_NONE, SLUICE_V_OTHER) - before, 2, "pings counted");
	{
		struct xfx x = {.b = c->b};
		int i;

		for (i = 0; i < SLUICE_M_COUNT; i++)
			x.fd[i] = sluice_bpf_map_fd(c->b, i);
		ASSERT_OK(xfx_port(&x, SVC_PORT, SLUICE_PORT_TCP), "service port");
		ASSERT_OK(xfx_deny_exact(&x, c->np.ip4_a, 0), "deny A");
		ASSERT_OK(xfx_bump_generation(&x), "bump");
	}
	/* the SYN is dropped, so the connect only ends by timeout: run it in the background and
	 * wait for the count (under emulation, starting bash alone has taken over 2 s) */
	netns_run(c->np.ns_a, out, sizeof(out),
		  "timeout 10 bash -c 'echo > /dev/tcp/%s/%d' >/dev/null 2>&1 &", c->np.ip4_b,
		  SVC_PORT);
	for (int i = 0; i < 200 && counted(c->b, SLUICE_SLOT_ANON, SLUICE_V_DENY) < 1; i++)
		usleep(50000);
	ASSERT_GE(counted(c->b, SLUICE_SLOT_ANON, SLUICE_V_DENY), 1, "denied SYN counted");

	/* generic mode on request */
	ASSERT_OK(sluice_bpf_detach(c->np.if_b, c->err, sizeof(c->err)), c->err);
	if (!ASSERT_OK(sluice_bpf_attach(c->b, c->np.if_b, SLUICE_XDP_GENERIC, &mode, &how, c->err,
					 sizeof(c->err)),
		       c->err))
		return;
	ASSERT_EQ(mode, SLUICE_XDP_GENERIC, "generic on request");
	LIBBPF_OPTS(bpf_xdp_query_opts, q2);
	ASSERT_OK(bpf_xdp_query(c->ifindex, 0, &q2), "query");
	ASSERT_EQ(q2.attach_mode, XDP_ATTACHED_SKB, "kernel shows generic");
}

static void subtest_reload_keeps_state(struct ctx *c)
{
	struct sluice_tenant_cfg tc = {}, tc2;
	struct sluice_tenant_state ts = {}, ts2;
	struct sluice_bpf *b2;
	struct sluice_attachment at;
	enum sluice_xdp_mode mode;
	struct sluice_config cfg;
	const char *how;
	__u32 slot = 5, zero = 0;
	long long passes;
	struct pkt_spec s;
	struct pkt p;

	if (!ASSERT_OK_PTR(c->b, "loaded by attach"))
		return;
	snprintf(tc.name, sizeof(tc.name), "acme");
	tc.class = SLUICE_CLASS_NORMAL;
	tc.limit[SLUICE_LIMIT_SYN].interval_ns = 1000000;
	tc.limit[SLUICE_LIMIT_SYN].burst = 777;
	ts.tat[SLUICE_LIMIT_REQ] = 123456789;
	ASSERT_OK(bpf_map_update_elem(sluice_bpf_map_fd(c->b, SLUICE_M_TENANT_CFG), &slot, &tc, 0),
		  "write tenant");
	ASSERT_OK(
	    bpf_map_update_elem(sluice_bpf_map_fd(c->b, SLUICE_M_TENANT_STATE), &slot, &ts, 0),
	    "write tat");
	pkt_spec_tcp(&s, "198.51.100.1", "192.0.2.1", SVC_PORT, PKT_ACK);
	ASSERT_OK(pkt_build(&p, &s), "build");
	ASSERT_EQ(sluice_bpf_test_run(c->b, p.buf, p.len, 3, NULL), XDP_PASS, "count 3 passes");
	passes = counted(c->b, SLUICE_SLOT_ANON, SLUICE_V_PASS);
	ASSERT_GE(passes, 3, "passes counted");

	/* a second instance while the first is still loaded and attached (a restart) */
	b2 = sluice_bpf_load(c->pin_dir, c->err, sizeof(c->err));
	sluice_bpf_free(c->b);
	c->b = b2;
	if (!ASSERT_OK_PTR(b2, c->err))
		return;
	ASSERT_OK(bpf_map_lookup_elem(sluice_bpf_map_fd(b2, SLUICE_M_TENANT_CFG), &slot, &tc2),
		  "read tenant");
	ASSERT_STREQ(tc2.name, "acme", "tenant survived");
	ASSERT_EQ(tc2.limit[SLUICE_LIMIT_SYN].burst, 777, "limit survived");
	ASSERT_OK(bpf_map_lookup_elem(sluice_bpf_map_fd(b2, SLUICE_M_TENANT_STATE), &slot, &ts2),
		  "read tat");
	ASSERT_EQ(ts2.tat[SLUICE_LIMIT_REQ], 123456789, "tat survived");
	ASSERT_EQ(counted(b2, SLUICE_SLOT_ANON, SLUICE_V_PASS), passes, "counters survived");
	ASSERT_OK(bpf_map_lookup_elem(sluice_bpf_map_fd(b2, SLUICE_M_CONFIG), &zero, &cfg), "cfg");
	ASSERT_EQ(cfg.abi_version, SLUICE_ABI_VERSION, "config kept");
	ASSERT_GE(cfg.generation, 2, "generation kept (bumped in attach)");
	ASSERT_EQ(sluice_bpf_test_run(b2, p.buf, p.len, 2, NULL), XDP_PASS, "new program runs");
	ASSERT_EQ(counted(b2, SLUICE_SLOT_ANON, SLUICE_V_PASS), passes + 2, "on the same maps");

	/* the new program replaces the old one on the interface */
	ASSERT_OK(sluice_bpf_attach(b2, c->np.if_b, SLUICE_XDP_GENERIC, &mode, &how, c->err,
				    sizeof(c->err)),
		  c->err);
	if (ASSERT_TRUE(find_attachment(c, &at), "still attached"))
		ASSERT_EQ(at.prog_id, prog_id(b2), "the new program is the one attached");
}

/* Pinned maps of another ABI are refused by name, with the fix: one from the future, and the
 * previous ABI (v2, before the tenant share map) as an upgrade leaves them. */
static void subtest_abi_mismatch(struct ctx *c)
{
	const __u32 others[] = {SLUICE_ABI_VERSION + 1, SLUICE_ABI_VERSION - 1};
	struct sluice_config cfg;
	struct sluice_bpf *b;
	__u32 zero = 0;
	char want[64];
	int fd = sluice_bpf_open_pinned(c->pin_dir, SLUICE_M_CONFIG);

	if (!ASSERT_GE(fd, 0, "open pinned config"))
		return;
	ASSERT_OK(bpf_map_lookup_elem(fd, &zero, &cfg), "read");
	for (unsigned i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		cfg.abi_version = others[i];
		ASSERT_OK(bpf_map_update_elem(fd, &zero, &cfg, 0), "write another ABI");
		b = sluice_bpf_load(c->pin_dir, c->err, sizeof(c->err));
		ASSERT_FALSE(b, "refused");
		ASSERT_EQ(errno, EPROTO, "EPROTO");
		printf("refusal: %s\n", c->err);
		snprintf(want, sizeof(want), "ABI v%u, this build is v%u", others[i],
			 SLUICE_ABI_VERSION);
		ASSERT_HAS_STR(c->err, want, "names both versions");
		ASSERT_HAS_STR(c->err, c->pin_dir, "names the pin dir");
		ASSERT_HAS_STR(c->err, "sluicectl detach --unpin", "says how to fix it");
		sluice_bpf_free(b);
	}
	cfg.abi_version = SLUICE_ABI_VERSION;
	ASSERT_OK(bpf_map_update_elem(fd, &zero, &cfg, 0), "restore");
	close(fd);
	b = sluice_bpf_load(c->pin_dir, c->err, sizeof(c->err));
	ASSERT_OK_PTR(b, "loads again once the versions agree");
	sluice_bpf_free(b);
}

static void subtest_detach_unpin(struct ctx *c)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct sluice_attachment at;
	struct stat st;

	ASSERT_OK(sluice_bpf_detach(c->np.if_b, c->err, sizeof(c->err)), c->err);
	ASSERT_OK(bpf_xdp_query(c->ifindex, 0, &q), "query");
	ASSERT_EQ(q.prog_id, 0, "nothing attached");
	ASSERT_FALSE(find_attachment(c, &at), "not listed");
	ASSERT_EQ(sluice_bpf_detach(c->np.if_b, c->err, sizeof(c->err)), -ENOENT, "twice");
	ASSERT_HAS_STR(c->err, c->np.if_b, "names the interface");
	sluice_bpf_free(c->b);
	c->b = NULL;
	ASSERT_OK(sluice_bpf_unpin(c->pin_dir), "unpin");
	ASSERT_EQ(stat(c->pin_dir, &st), -1, "pin dir gone");
	ASSERT_EQ(sluice_bpf_open_pinned(c->pin_dir, SLUICE_M_CONFIG), -ENOENT, "no pins");
}

/* Someone else's XDP program on the interface (the bench's bare XDP_PASS): Sluice neither
 * replaces nor detaches it, and says so naming the interface. */
static void subtest_foreign_program(struct ctx *c)
{
	enum sluice_xdp_mode mode;
	struct bpf_object *obj;
	struct sluice_bpf *b;
	char path[512];
	const char *how;
	int fd;

	snprintf(path, sizeof(path), "%s/bench_bare.bpf.o", test__outdir());
	obj = bpf_object__open_file(path, NULL);
	if (!ASSERT_OK_PTR(obj, path))
		return;
	if (!ASSERT_OK(bpf_object__load(obj), "load bare program"))
		goto out;
	fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "bench_bare"));
	if (!ASSERT_OK(bpf_xdp_attach(c->ifindex, fd, XDP_FLAGS_SKB_MODE, NULL), "attach it"))
		goto out;
	b = sluice_bpf_load(NULL, c->err, sizeof(c->err));
	if (ASSERT_OK_PTR(b, c->err)) {
		ASSERT_EQ(sluice_bpf_attach(b, c->np.if_b, SLUICE_XDP_AUTO, &mode, &how, c->err,
					    sizeof(c->err)),
			  -EBUSY, "will not replace a foreign program");
		ASSERT_HAS_STR(c->err, c->np.if_b, "names the interface");
		ASSERT_HAS_STR(c->err, "another XDP program", "says why");
		sluice_bpf_free(b);
	}
	ASSERT_EQ(sluice_bpf_detach(c->np.if_b, c->err, sizeof(c->err)), -EBUSY,
		  "will not detach a foreign program");
	ASSERT_HAS_STR(c->err, "is not Sluice's", "says why");
	bpf_xdp_detach(c->ifindex, XDP_FLAGS_SKB_MODE, NULL);
out:
	bpf_object__close(obj);
}

static void subtest_errors(struct ctx *c)
{
	enum sluice_xdp_mode mode;
	struct sluice_bpf *b;
	const char *how;

	b = sluice_bpf_load(NULL, c->err, sizeof(c->err));
	if (!ASSERT_OK_PTR(b, c->err))
		return;
	ASSERT_EQ(
	    sluice_bpf_attach(b, "nosuch0", SLUICE_XDP_AUTO, &mode, &how, c->err, sizeof(c->err)),
	    -ENODEV, "attach to a missing interface");
	sluice_bpf_free(b);
	ASSERT_HAS_STR(c->err, "nosuch0", "names it");
	ASSERT_HAS_STR(c->err, "no such interface", "says why");
	ASSERT_EQ(sluice_bpf_detach("nosuch0", c->err, sizeof(c->err)), -ENODEV, "detach");
	ASSERT_HAS_STR(c->err, "nosuch0", "names it");
	ASSERT_EQ(sluice_bpf_detach(c->np.if_b, c->err, sizeof(c->err)), -ENOENT, "none attached");
	ASSERT_HAS_STR(c->err, "no XDP program attached", "says so");

	subtest_foreign_program(c);

	b = sluice_bpf_load(test__tmpdir(), c->err, sizeof(c->err));
	ASSERT_FALSE(b, "pin dir off bpffs refused");
	ASSERT_HAS_STR(c->err, test__tmpdir(), "names the dir");
	ASSERT_HAS_STR(c->err, "not on a BPF filesystem", "says why");
	sluice_bpf_free(b);
}

/* /sys/fs/bpf must be a bpffs for pins; if the machine has none, mount a private one. */
static bool ensure_bpffs(void)
{
	struct statfs fs;

	if (!statfs("/sys/fs/bpf", &fs) && (unsigned long)fs.f_type == BPF_FS_MAGIC_)
		return true;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL)) {
		test__skip("no bpffs at /sys/fs/bpf and cannot mount a private one: %s",
			   strerror(errno));
		return false;
	}
	return true;
}

static void run_body(struct ctx *c)
{
	static const struct {
		const char *name;
		void (*fn)(struct ctx *c);
	} steps[] = {
	    {"attach", subtest_attach},
	    {"reload_keeps_state", subtest_reload_keeps_state},
	    {"abi_mismatch", subtest_abi_mismatch},
	    {"detach_unpin", subtest_detach_unpin},
	    {"errors", subtest_errors},
	};
	int saved, i;

	if (!ensure_bpffs())
		return;
	saved = netns_enter(c->np.ns_b);
	if (!ASSERT_GE(saved, 0, "enter ns B"))
		return;
	c->ifindex = (int)if_nametoindex(c->np.if_b);
	for (i = 0; i < (int)(ARRAY_SIZE(steps)); i++)
		if (test__start_subtest(steps[i].name))
			steps[i].fn(c);
	/* whatever a failed step left behind */
	if (c->b)
		sluice_bpf_detach(c->np.if_b, c->err, sizeof(c->err));
	sluice_bpf_free(c->b);
	sluice_bpf_unpin(c->pin_dir);
	netns_leave(saved);
}

void test_loader(void)
{
	struct ctx c = {};
	int status = 0;
	pid_t pid;

	if (!test__require_root() || !xfx_require_kernel())
		return;
	if (!ASSERT_OK(netns_pair_create(&c.np), "netns pair"))
		return;
	snprintf(c.pin_dir, sizeof(c.pin_dir), "/sys/fs/bpf/sluice-test-%d-loader", (int)getpid());
	fflush(stdout);
	/* the body may switch mount namespace: keep that out of this process, which still has
	 * to remove the network namespaces from the original one */
	pid = fork();
	if (pid == 0) {
		run_body(&c);
		fflush(stdout);
		_exit(0);
	}
	if (!ASSERT_GT(pid, 0, "fork") || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		test__fail();
	netns_pair_destroy(&c.np);
}
