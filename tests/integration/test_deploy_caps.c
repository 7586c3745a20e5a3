// SPDX-License-Identifier: MIT
/* test_deploy_caps.c -- sluiced attaches XDP with exactly CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON
 *
 * The capability set the DaemonSet and the systemd unit grant, proven on the real binary:
 * setpriv runs sluiced with that set as its bounding set (and as ambient capabilities for a
 * non-root user, the systemd way), no_new_privs on, on a veth in a private namespace. With
 * the set, XDP is loaded, attached and, on a restart, atomically replaced (which used to need
 * CAP_SYS_ADMIN), with the interface given as the DaemonSet does (--iface addr:NODE_IP); without
 * any one of the three, the program is not attached and sluiced says why and carries on with limits
 * in userspace. The non-root user runs as the unit runs it: /sys/fs/bpf is root's (mode 0700,
 * as systemd and sluiced mount it) and CAP_BPF does not bypass file permissions, so the pin
 * directory /sys/fs/bpf/... is bound to a path the user can reach in a private mount
 * namespace (the unit's BindPaths=) and sluiced pins there; without the bind it cannot.
 * Not covered: CAP_SYS_RESOURCE, needed only on kernels before 5.11 for RLIMIT_MEMLOCK (this
 * kernel charges BPF memory to the cgroup).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netns.h"
#include "test_progs.h"

#define CAPS "+bpf,+net_admin,+perfmon"

static const char *const each[] = {"bpf", "net_admin", "perfmon"};

struct caps_env {
	struct netns_pair np;
	char pin[128], dir[400], bind[420], tenants[500], bin[600];
};

/* How the non-root user reaches its pin directory. */
enum pin_way {
	PIN_DIRECT, /* --pin-dir /sys/fs/bpf/... (root: the container way) */
	PIN_BIND,   /* the unit's way: a private mount namespace where the pin directory is
		     * bound to e->bind (BindPaths=), --pin-dir e->bind */
	PIN_NO_BIND /* the unit without BindPaths=: a private mount namespace with a fresh bpffs
		     * at /sys/fs/bpf mounted mode=0700 as systemd does, the user's pin directory
		     * made in it (ExecStartPre=+install -d), --pin-dir that directory */
};

/* Run sluiced for 3 s under setpriv with capabilities caps ("-all,+x,...") as user (NULL:
 * root), reaching its pin directory the way way says; its log into out. Returns true when it
 * logged an XDP attach. */
static bool run_with(struct caps_env *e, const char *caps, const char *user, enum pin_way way,
		     char *out, size_t len)
{
	char ids[128] = "", ns[700] = "";
	const char *pin = way == PIN_BIND ? e->bind : e->pin;

	if (user)
		snprintf(ids, sizeof(ids), "--reuid=%s --regid=%s --clear-groups --ambient-caps=%s",
			 user, user, caps);
	if (way == PIN_BIND)
		snprintf(ns, sizeof(ns), "mount --bind %s %s &&", e->pin, e->bind);
	else if (way == PIN_NO_BIND)
		snprintf(ns, sizeof(ns),
			 "mount -t bpf -o mode=0700 bpf /sys/fs/bpf && install -d -o %s -g %s -m "
			 "0700 %s &&",
			 user, user, e->pin);
	netns_run(e->np.ns_b, out, len,
		  "timeout -s TERM 3 %s \"%s exec setpriv --no-new-privs %s --inh-caps=%s "
		  "--bounding-set=%s -- %s --listen 127.0.0.1:0 --threads 1 --tenants %s --iface "
		  "addr:%s --pin-dir %s --journal-dir %s/journal\" 2>&1",
		  way == PIN_DIRECT ? "sh -c" : "unshare -m --propagation private sh -c", ns, ids,
		  caps, caps, e->bin, e->tenants, e->np.ip4_b, pin, e->dir);
	return strstr(out, "msg=\"bpf: attached\"") != NULL;
}

static bool xdp_on(struct caps_env *e)
{
	char out[2048];

	netns_run(e->np.ns_b, out, sizeof(out), "ip link show %s", e->np.if_b);
	return strstr(out, "prog/xdp") != NULL;
}

static void xdp_off(struct caps_env *e)
{
	netns_run(e->np.ns_b, NULL, 0, "ip link set %s xdp off; ip link set %s xdpgeneric off",
		  e->np.if_b, e->np.if_b);
}

static int setup(struct caps_env *e, const char *name, const char *owner)
{
	FILE *f;

	if (access("/usr/bin/setpriv", X_OK)) {
		test__skip("setpriv missing (util-linux)");
		return -1;
	}
	if (netns_pair_create(&e->np))
		return -1;
	snprintf(e->pin, sizeof(e->pin), "/sys/fs/bpf/sluice-test-%d-%s", getpid(), name);
	snprintf(e->dir, sizeof(e->dir), "%s/%s", test__tmpdir(), name);
	snprintf(e->bind, sizeof(e->bind), "%s/run-sluice/bpf", e->dir);
	snprintf(e->tenants, sizeof(e->tenants), "%s/tenants.ini", e->dir);
	snprintf(e->bin, sizeof(e->bin), "%s/sluiced", test__outdir());
	if (netns_run(NULL, NULL, 0,
		      "mkdir -p %s/journal %s %s && chown -R %s %s %s && chmod 700 %s && chmod 755 "
		      "%s",
		      e->dir, e->bind, e->pin, owner, e->dir, e->pin, e->pin, test__tmpdir()))
		return -1;
	f = fopen(e->tenants, "w");
	if (!f)
		return -1;
	fputs("[acme]\nkey = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
	      f);
	fclose(f);
	return 0;
}

static void teardown(struct caps_env *e)
{
	xdp_off(e);
	if (*e->pin)
		netns_run(NULL, NULL, 0, "rm -rf %s", e->pin);
	netns_pair_destroy(&e->np);
}

/* The container way: uid 0, the bounding set is everything there is (Kubernetes'
 * capabilities.drop ALL + add), no_new_privs (allowPrivilegeEscalation: false). */
static void subtest_container(void)
{
	static char out[65536];
	struct caps_env e = {0};
	char caps[128];

	if (!ASSERT_OK(setup(&e, "root", "root"), "netns and pin dir"))
		goto out;
	if (!ASSERT_TRUE(run_with(&e, "-all," CAPS, NULL, PIN_DIRECT, out, sizeof(out)),
			 "attached with the set"))
		printf("%s\n", out);
	ASSERT_TRUE(xdp_on(&e), "XDP on the interface");
	/* a pod restart: our program is still attached and must be replaced in place */
	if (!ASSERT_TRUE(run_with(&e, "-all," CAPS, NULL, PIN_DIRECT, out, sizeof(out)),
			 "restart replaces its own program without CAP_SYS_ADMIN"))
		printf("%s\n", out);
	ASSERT_FALSE(strstr(out, "another XDP program is attached"), "not mistaken for another's");
	xdp_off(&e);
	for (int i = 0; i < 3; i++) {
		char tag[96];

		snprintf(caps, sizeof(caps), "-all," CAPS ",-%s", each[i]);
		snprintf(tag, sizeof(tag), "without CAP_%s: not attached", each[i]);
		ASSERT_FALSE(run_with(&e, caps, NULL, PIN_DIRECT, out, sizeof(out)), tag);
		ASSERT_FALSE(xdp_on(&e), tag);
		ASSERT_HAS_STR(out, "request limits enforced in userspace only",
			       "says so, goes on");
		ASSERT_HAS_STR(out, "sluiced: listening", "and serves");
		xdp_off(&e);
	}
out:
	teardown(&e);
}

/* The systemd way: a non-root user (here uid 65534) with the set as ambient capabilities, owning
 * its pin directory and journal, the pin directory bound where the user can reach it
 * (deploy/systemd/sluiced.service). */
static void subtest_ambient_user(void)
{
	static char out[65536];
	struct caps_env e = {0};
	char caps[128], denied[200];

	if (!ASSERT_OK(setup(&e, "user", "65534:65534"), "netns and pin dir"))
		goto out;
	if (!ASSERT_TRUE(run_with(&e, "-all," CAPS, "65534", PIN_BIND, out, sizeof(out)),
			 "non-root with ambient caps attaches"))
		printf("%s\n", out);
	ASSERT_TRUE(xdp_on(&e), "XDP on the interface");
	if (!ASSERT_TRUE(run_with(&e, "-all," CAPS, "65534", PIN_BIND, out, sizeof(out)),
			 "and restarts"))
		printf("%s\n", out);
	ASSERT_FALSE(strstr(out, "another XDP program is attached"), "its own program, found");
	/* the pins are the ones root sees under /sys/fs/bpf (sluicectl, bpftool) */
	ASSERT_OK(netns_run(NULL, NULL, 0, "test -e %s/sl_config", e.pin),
		  "pinned under /sys/fs/bpf for root");
	xdp_off(&e);
	snprintf(caps, sizeof(caps), "-all," CAPS ",-perfmon");
	ASSERT_FALSE(run_with(&e, caps, "65534", PIN_BIND, out, sizeof(out)),
		     "not without CAP_PERFMON");
	xdp_off(&e);
	/* without the bind, /sys/fs/bpf (mode 0700, root's) stops the user: why the unit binds */
	ASSERT_FALSE(run_with(&e, "-all," CAPS, "65534", PIN_NO_BIND, out, sizeof(out)),
		     "pin dir under a 0700 bpffs: not attached");
	snprintf(denied, sizeof(denied), "pin dir %s: Permission denied", e.pin);
	ASSERT_HAS_STR(out, denied, "says the pin dir is denied");
	ASSERT_HAS_STR(out, "request limits enforced in userspace only", "says so, goes on");
	ASSERT_FALSE(xdp_on(&e), "no XDP without the bind");
out:
	teardown(&e);
}

void test_deploy_caps(void)
{
	if (!test__require_root())
		return;
	if (test__start_subtest("container_bounding_set"))
		subtest_container();
	if (test__start_subtest("ambient_non_root"))
		subtest_ambient_user();
}
