// SPDX-License-Identifier: MIT
/* test_nic_iface.c -- --iface addr:IP finds the interface holding IP (the DaemonSet's form) */
#include <errno.h>
#include <unistd.h>

#include "netns.h"
#include "nic/iface.h"
#include "test_progs.h"

void test_nic_iface(void)
{
	struct netns_pair np = {0};
	char spec[80], name[64], err[256];
	int saved;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(netns_pair_create(&np), "netns"))
		return;
	saved = netns_enter(np.ns_b);
	if (!ASSERT_GE(saved, 0, "enter"))
		goto out;
	snprintf(spec, sizeof(spec), "addr:%s", np.ip4_b);
	ASSERT_OK(nic_iface_resolve(spec, name, sizeof(name), err, sizeof(err)), "IPv4");
	ASSERT_STREQ(name, np.if_b, "the veth holding it");
	snprintf(spec, sizeof(spec), "addr:%s", np.ip6_b);
	ASSERT_OK(nic_iface_resolve(spec, name, sizeof(name), err, sizeof(err)), "IPv6");
	ASSERT_STREQ(name, np.if_b, "the veth holding it");
	ASSERT_OK(nic_iface_resolve("addr:127.0.0.1", name, sizeof(name), err, sizeof(err)), "lo");
	ASSERT_STREQ(name, "lo", "loopback");
	ASSERT_EQ(nic_iface_resolve("addr:192.0.2.77", name, sizeof(name), err, sizeof(err)),
		  -ENODEV, "nobody holds it");
	ASSERT_HAS_STR(err, "addr:192.0.2.77: no interface holds this address", "names the input");
	ASSERT_EQ(nic_iface_resolve("addr:10.0.0.300", name, sizeof(name), err, sizeof(err)),
		  -EINVAL, "bad address");
	ASSERT_HAS_STR(err, "addr:10.0.0.300: not an IPv4 or IPv6 address", "names the input");
	ASSERT_OK(nic_iface_resolve("eth7", name, sizeof(name), err, sizeof(err)), "a name");
	ASSERT_STREQ(name, "eth7", "passes through");
	netns_leave(saved);
out:
	netns_pair_destroy(&np);
}
