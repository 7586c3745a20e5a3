// SPDX-License-Identifier: MIT
/* dbchaos.c -- a network namespace for a database, and partitions of it (dbchaos.h) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbchaos.h"
#include "netns.h"

#define MAX_LIVE 4
#define PREFIX	 "sldb"

static struct dbchaos *live[MAX_LIVE];
static bool atexit_set;
static int seq;

static void destroy_all_at_exit(void)
{
	for (int i = 0; i < MAX_LIVE; i++)
		dbchaos_destroy(live[i]);
}

static void track(struct dbchaos *c, bool add)
{
	if (!atexit_set) {
		atexit(destroy_all_at_exit);
		atexit_set = true;
	}
	for (int i = 0; i < MAX_LIVE; i++) {
		if (add ? !live[i] : live[i] == c) {
			live[i] = add ? c : NULL;
			return;
		}
	}
}

/* Namespaces "sldb<pid>_<n>" whose process is gone were left by a killed test: remove. */
static void sweep_stale(void)
{
	char out[4096], *save = NULL;

	if (netns_run(NULL, out, sizeof(out), "ip netns list") != 0)
		return;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long pid;
		char name[64];

		if (sscanf(line, "%63s", name) != 1 || strncmp(name, PREFIX, strlen(PREFIX)))
			continue;
		pid = strtol(name + strlen(PREFIX), NULL, 10);
		if (pid > 0 && kill((pid_t)pid, 0) && errno == ESRCH)
			netns_run(NULL, NULL, 0, "ip netns del %s", name);
	}
}

/* A /30 in 172.30.0.0/16 that no link in this namespace uses yet. */
static int pick_subnet(struct dbchaos *c)
{
	unsigned int idx = ((unsigned int)getpid() * 4 + (unsigned int)seq) % 16384;
	char out[512];

	for (int tries = 0; tries < 64; tries++, idx = (idx + 1) % 16384) {
		unsigned int b = idx >> 6, d = (idx & 63) * 4;

		snprintf(c->ip_host, sizeof(c->ip_host), "172.30.%u.%u", b, d + 1);
		snprintf(c->ip_ns, sizeof(c->ip_ns), "172.30.%u.%u", b, d + 2);
		if (netns_run(NULL, out, sizeof(out), "ip -4 -o addr show to 172.30.%u.%u/30", b,
			      d) == 0 &&
		    !*out)
			return 0;
	}
	return -EADDRINUSE;
}

int dbchaos_create(struct dbchaos *c)
{
	int n = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED) % 100, ret;
	char out[2048];

	memset(c, 0, sizeof(*c));
	sweep_stale();
	snprintf(c->ns, sizeof(c->ns), PREFIX "%d_%d", (int)getpid(), n);
	snprintf(c->if_host, sizeof(c->if_host), "sdh%d_%d", (int)getpid() % 100000, n);
	snprintf(c->if_ns, sizeof(c->if_ns), "sdn%d_%d", (int)getpid() % 100000, n);
	ret = pick_subnet(c);
	if (ret)
		return ret;
	ret = netns_run(NULL, out, sizeof(out),
			"set -e; ip netns add %s; ip link add %s type veth peer name %s netns %s; "
			"ip addr add %s/30 dev %s; ip link set %s up; "
			"ip -n %s addr add %s/30 dev %s; ip -n %s link set %s up; "
			"ip -n %s link set lo up",
			c->ns, c->if_host, c->if_ns, c->ns, c->ip_host, c->if_host, c->if_host,
			c->ns, c->ip_ns, c->if_ns, c->ns, c->if_ns, c->ns);
	if (ret) {
		fprintf(stderr, "dbchaos: create %s failed: %s\n", c->ns, out);
		netns_run(NULL, NULL, 0, "ip netns del %s; ip link del %s", c->ns, c->if_host);
		return ret < 0 ? ret : -EIO;
	}
	c->created = true;
	track(c, true);
	return 0;
}

int dbchaos_partition(struct dbchaos *c)
{
	char out[2048];
	int ret;

	if (!c->created)
		return -EINVAL;
	ret = netns_run(
	    NULL, out, sizeof(out),
	    "ip netns exec %s nft 'add table inet dbchaos; "
	    "add chain inet dbchaos in { type filter hook input priority 0; policy accept; }; "
	    "add chain inet dbchaos out { type filter hook output priority 0; policy accept; }; "
	    "add rule inet dbchaos in iifname \"%s\" drop; "
	    "add rule inet dbchaos out oifname \"%s\" drop'",
	    c->ns, c->if_ns, c->if_ns);
	if (ret) {
		fprintf(stderr, "dbchaos: nft partition in %s failed: %s\n", c->ns, out);
		return ret < 0 ? ret : -EIO;
	}
	c->partitioned = true;
	return 0;
}

int dbchaos_heal(struct dbchaos *c)
{
	char out[1024];
	int ret;

	if (!c->partitioned)
		return 0;
	ret = netns_run(NULL, out, sizeof(out), "ip netns exec %s nft delete table inet dbchaos",
			c->ns);
	if (ret) {
		fprintf(stderr, "dbchaos: nft heal in %s failed: %s\n", c->ns, out);
		return ret < 0 ? ret : -EIO;
	}
	c->partitioned = false;
	return 0;
}

void dbchaos_destroy(struct dbchaos *c)
{
	if (!c || !c->created)
		return;
	/* a server still running in it keeps the namespace alive until it stops; the root end
	 * of the veth goes when the namespace does, so remove it explicitly too */
	netns_run(NULL, NULL, 0, "ip link del %s 2>/dev/null; ip netns del %s", c->if_host, c->ns);
	c->created = c->partitioned = false;
	track(c, false);
}
