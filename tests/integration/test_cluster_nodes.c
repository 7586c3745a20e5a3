// SPDX-License-Identifier: MIT
/* test_cluster_nodes.c -- three sluiced nodes in network namespaces (XDP on) sharing one Redis:
 * every node registers, a second live node with a taken --node name exits 2 naming it, a
 * crashed node's name is free again for its restart, and the nodes ride out a Redis restart.
 * The harness's namespaces and pins are gone afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_harness.h"
#include "netns.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\nreq_rate = 300\nreq_burst = 30\n"

static long long live_nodes(struct cluster_harness *h)
{
	char out[256];

	if (cluster_redis_cli(h, out, sizeof(out), "ZCARD sluice:cluster:nodes"))
		return -1;
	return atoll(out);
}

static bool wait_nodes(struct cluster_harness *h, long long want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (live_nodes(h) == want)
			return true;
		usleep(100000);
	}
	return false;
}

void test_cluster_nodes(void)
{
	static struct cluster_harness h;
	char out[4096], ns[32];
	int ret;

	if (!test__require_root() || !xfx_require_kernel())
		return;
	ret = cluster_harness_setup(&h, 3, TENANTS, NULL);
	if (ret == -ENOENT) {
		test__skip("redis-server not installed");
		return;
	}
	if (!ASSERT_OK(ret, "cluster setup"))
		return;
	snprintf(ns, sizeof(ns), "%s", h.nodes[0].ns);
	if (!ASSERT_OK(cluster_start_all(&h), "three nodes"))
		goto out;
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(sluiced_log_wait(&h.nodes[i].proc, "msg=\"bpf: attached\"", 100),
			    "XDP attached on the node's veth");
	ASSERT_TRUE(wait_nodes(&h, 3, 3000), "three live nodes in Redis");

	/* a second live n1 (in n2's namespace, no XDP): exit 2, the message names the node */
	ret = netns_run(h.nodes[1].ns, out, sizeof(out),
			"timeout 30 %s/sluiced --listen 127.0.0.1:0 --admin-listen off --node n1 "
			"--cluster-redis %s --lease-period-ms 100",
			test__outdir(), h.nodes[1].redis_addr);
	ASSERT_EQ(ret, 2, "duplicate node name: exit 2");
	ASSERT_HAS_STR(out, "--node n1: node name 'n1' is already used by another live sluiced",
		       "message names the node");
	ASSERT_EQ(live_nodes(&h), 3, "the duplicate never joined");

	/* a crash leaves the name taken until its TTL; the restart waits for that and joins */
	cluster_node_kill(&h, 0);
	if (ASSERT_OK(cluster_node_start(&h, 0), "n1 restarted after a crash"))
		ASSERT_TRUE(
		    sluiced_log_wait(&h.nodes[0].proc, "msg=\"cluster: node registered\"", 100),
		    "n1 registered again");

	/* Redis restarted empty: every node re-registers within a few periods */
	if (ASSERT_OK(cluster_redis_restart(&h), "redis restarted")) {
		ASSERT_TRUE(wait_nodes(&h, 3, 5000), "three live nodes again");
		for (int i = 0; i < 3; i++) {
			ASSERT_TRUE(sluiced_log_wait(&h.nodes[i].proc,
						     "msg=\"cluster: Redis unavailable\"", 100),
				    "outage logged");
			ASSERT_TRUE(sluiced_log_wait(&h.nodes[i].proc,
						     "msg=\"cluster: Redis available again\"",
						     3000),
				    "recovery logged");
		}
	}
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(cluster_node_stop(&h, i, 5000), 0, "clean exit");
	ASSERT_TRUE(wait_nodes(&h, 0, 1000), "a clean stop gives the names back");
out:
	cluster_harness_stop(&h);
	snprintf(out, sizeof(out), "/run/netns/%s", ns);
	ASSERT_NEQ(access(out, F_OK), 0, "namespaces removed");
}
