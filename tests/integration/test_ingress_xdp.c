// SPDX-License-Identifier: MIT
/* test_ingress_xdp.c -- sluiced with --iface: XDP attached on a veth in a namespace, the
 * tenants in the BPF maps, request credits charged in the map XDP shares, XDP counters in
 * /metrics
 *
 * It runs as on a freshly booted machine, whatever this one has mounted: in a mount
 * namespace of its own with an empty tmpfs over /sys/fs/bpf, so sluiced must mount a BPF
 * filesystem itself (as bpftool does) before it can pin. */
#include <bpf/bpf.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "nic/bpf_loader.h"
#include "ingress_harness.h"
#include "netns.h"
#include "test_progs.h"
#include "xdp_fixture.h"

static char resp[1 << 16];

static int request(const struct netns_pair *np, int port, const char *req)
{
	static struct http_client c;
	int saved = netns_enter(np->ns_a), st = -1;

	if (saved < 0)
		return -1;
	if (!http_open_ip(&c, np->ip4_b, port)) {
		if (!http_send(&c, req, strlen(req)) && http_read(&c, resp, sizeof(resp), 3000) > 0)
			st = http_status(resp);
		http_close(&c);
	}
	netns_leave(saved);
	return st;
}

/* GET path on the daemon's admin listener: loopback inside its namespace (ns_b). */
static int request_admin(const struct netns_pair *np, const struct sluiced_proc *p,
			 const char *path)
{
	int saved = netns_enter(np->ns_b), st;

	if (saved < 0)
		return -1;
	st = http_admin(p, path, resp, sizeof(resp));
	netns_leave(saved);
	return st;
}

/* This test process (a child of the runner) and what it starts see /sys/fs/bpf as a fresh
 * boot leaves it: not a BPF filesystem. */
static bool fresh_boot_bpffs(void)
{
	return ASSERT_OK(unshare(CLONE_NEWNS), "private mount namespace") &&
	       ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "mounts private") &&
	       ASSERT_OK(mount("tmpfs", "/sys/fs/bpf", "tmpfs", 0, "size=64k"),
			 "no bpffs at /sys/fs/bpf");
}

void test_ingress_xdp(void)
{
	struct netns_pair np = {0};
	struct sluiced_proc p = {0};
	struct sluice_tenant_state st;
	char pin[128], tenants[512], req[1024], path[256];
	const char *args[] = {
	    "--threads", "1", "--journal-dir", "@journal", "--iface", NULL, "--pin-dir", pin, NULL};
	__u32 slot = SLUICE_SLOT_FIRST;
	int fd;

	if (!test__require_root() || !xfx_require_kernel() || !fresh_boot_bpffs())
		return;
	if (!ASSERT_OK(netns_pair_create(&np), "netns"))
		return;
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/sluice-test-%d-ingress", getpid());
	args[5] = np.if_b;
	snprintf(tenants, sizeof(tenants),
		 "[acme]\nkey = %s\nsource = %s\nreq_rate = 100\nreq_burst = 100\n",
		 HARNESS_KEY_A_HEX, np.ip4_a);
	if (!ASSERT_OK(sluiced_start_ns(&p, np.ns_b, "0.0.0.0:0", tenants, args), "start"))
		goto out;
	ASSERT_TRUE(
	    sluiced_log_wait(&p, "msg=\"bpf: no BPF filesystem was mounted; mounted one\"", 100),
	    "bpffs mounted by sluiced");
	ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"bpf: attached\"", 100), "attach logged");
	ASSERT_EQ(request_admin(&np, &p, "/readyz"), 200, "ready");
	ASSERT_HAS_STR(resp, "\"xdp\":{\"ok\":true,\"state\":\"attached to", "xdp attached");
	http_event_request(req, sizeof(req), "test",
			   "{\"type\":\"t\",\"idempotency_key\":\"x1\",\"payload\":{}}");
	ASSERT_EQ(request(&np, p.port, req), 202, "event through XDP");
	/* the daemon charged the REQ credit in the pinned map XDP and sluicectl see */
	snprintf(path, sizeof(path), "%s/%s", pin, SLUICE_MAP_TENANT_STATE);
	fd = bpf_obj_get(path);
	if (ASSERT_GE(fd, 0, "pinned tenant state")) {
		ASSERT_OK(bpf_map_lookup_elem(fd, &slot, &st), "lookup");
		ASSERT_GT(st.tat[SLUICE_LIMIT_REQ], 0, "REQ tat charged in the shared map");
		close(fd);
	}
	ASSERT_EQ(request_admin(&np, &p, "/metrics"), 200, "metrics");
	ASSERT_HAS_STR(resp, "sluice_xdp_packets_total{tenant=\"acme\",verdict=\"pass\"}",
		       "XDP counters by tenant");
	/* SIGHUP with BPF: a new tenant lands in the pinned config map, acme keeps its slot */
	snprintf(tenants + strlen(tenants), sizeof(tenants) - strlen(tenants),
		 "[beta]\nkey = %s\nclass = low\n", HARNESS_KEY_B_HEX);
	sluiced_write_tenants(&p, tenants);
	kill(p.pid, SIGHUP);
	ASSERT_TRUE(sluiced_log_wait(&p, "msg=\"tenants: reloaded\"", 3000), "reloaded");
	snprintf(path, sizeof(path), "%s/%s", pin, SLUICE_MAP_TENANT_CFG);
	fd = bpf_obj_get(path);
	if (ASSERT_GE(fd, 0, "pinned tenant cfg")) {
		struct sluice_tenant_cfg cfg;
		__u32 next = SLUICE_SLOT_FIRST + 1;

		ASSERT_OK(bpf_map_lookup_elem(fd, &slot, &cfg), "acme cfg");
		ASSERT_STREQ(cfg.name, "acme", "acme kept its slot");
		ASSERT_OK(bpf_map_lookup_elem(fd, &next, &cfg), "beta cfg");
		ASSERT_STREQ(cfg.name, "beta", "beta in the next slot");
		ASSERT_EQ(cfg.class, SLUICE_CLASS_LOW, "beta class");
		close(fd);
	}
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
out:
	if (p.pid)
		sluiced_stop(&p, 2000);
	netns_pair_destroy(&np);
	sluice_bpf_unpin(pin);
}
