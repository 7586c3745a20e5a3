// SPDX-License-Identifier: MIT
/* netns.c -- test hosts in network namespaces, and running commands on them */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"

static int pair_seq;

int netns_run(const char *ns, char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[4096], full[4400], *q;
	size_t used = 0;
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (ns && *ns) {
		/* single-quote the command for sh -c */
		char quoted[4200];
		size_t n = 0;

		for (q = cmd; *q && n < sizeof(quoted) - 5; q++) {
			if (*q == '\'') {
				memcpy(quoted + n, "'\\''", 4);
				n += 4;
			} else {
				quoted[n++] = *q;
			}
		}
		quoted[n] = 0;
		snprintf(full, sizeof(full), "nsenter --net=/run/netns/%s sh -c '%s' 2>&1", ns,
			 quoted);
	} else {
		snprintf(full, sizeof(full), "(%s) 2>&1", cmd);
	}
	f = popen(full, "r");
	if (!f)
		return -errno;
	if (out && outlen) {
		size_t n;

		while (used < outlen - 1 && (n = fread(out + used, 1, outlen - 1 - used, f)) > 0)
			used += n;
		out[used] = 0;
	}
	/* drain whatever did not fit */
	{
		char sink[512];

		while (fread(sink, 1, sizeof(sink), f) > 0)
			;
	}
	st = pclose(f);
	if (st < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int netns_pair_create(struct netns_pair *p)
{
	int id = getpid() % 200, seq = __atomic_fetch_add(&pair_seq, 1, __ATOMIC_RELAXED) % 250;
	char out[1024];
	int ret;

	memset(p, 0, sizeof(*p));
	snprintf(p->ns_a, sizeof(p->ns_a), "sl%da%d", (int)getpid(), seq);
	snprintf(p->ns_b, sizeof(p->ns_b), "sl%db%d", (int)getpid(), seq);
	snprintf(p->if_a, sizeof(p->if_a), "sla%d_%d", (int)getpid() % 100000, seq);
	snprintf(p->if_b, sizeof(p->if_b), "slb%d_%d", (int)getpid() % 100000, seq);
	snprintf(p->ip4_a, sizeof(p->ip4_a), "10.%d.%d.1", 20 + id, seq);
	snprintf(p->ip4_b, sizeof(p->ip4_b), "10.%d.%d.2", 20 + id, seq);
	snprintf(p->ip6_a, sizeof(p->ip6_a), "fd00:5:%x:%x::1", id, seq);
	snprintf(p->ip6_b, sizeof(p->ip6_b), "fd00:5:%x:%x::2", id, seq);
	snprintf(p->mac_a, sizeof(p->mac_a), "02:5a:%02x:%02x:00:01", id, seq);
	snprintf(p->mac_b, sizeof(p->mac_b), "02:5a:%02x:%02x:00:02", id, seq);

	ret = netns_run(
	    NULL, out, sizeof(out),
	    "set -e; ip netns add %s; ip netns add %s;"
	    "ip link add %s address %s netns %s type veth peer name %s address %s netns %s;"
	    "ip -n %s link set lo up; ip -n %s link set lo up;"
	    "ip -n %s addr add %s/24 dev %s; ip -n %s addr add %s/24 dev %s;"
	    "ip -n %s addr add %s/64 dev %s nodad; ip -n %s addr add %s/64 dev %s nodad;"
	    "ip -n %s link set %s up; ip -n %s link set %s up",
	    p->ns_a, p->ns_b, p->if_a, p->mac_a, p->ns_a, p->if_b, p->mac_b, p->ns_b, p->ns_a,
	    p->ns_b, p->ns_a, p->ip4_a, p->if_a, p->ns_b, p->ip4_b, p->if_b, p->ns_a, p->ip6_a,
	    p->if_a, p->ns_b, p->ip6_b, p->if_b, p->ns_a, p->if_a, p->ns_b, p->if_b);
	if (ret) {
		fprintf(stderr, "netns_pair_create: %s\n", out);
		netns_pair_destroy(p);
		return ret < 0 ? ret : -EIO;
	}
	return 0;
}

void netns_pair_destroy(struct netns_pair *p)
{
	if (!p || !p->ns_a[0])
		return;
	netns_run(NULL, NULL, 0, "ip netns del %s; ip netns del %s", p->ns_a, p->ns_b);
	p->ns_a[0] = 0;
	p->ns_b[0] = 0;
}

int netns_enter(const char *ns)
{
	char path[128];
	int saved = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd;

	if (saved < 0)
		return -errno;
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET)) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		close(saved);
		return -e;
	}
	close(fd);
	return saved;
}

void netns_leave(int saved_fd)
{
	if (saved_fd < 0)
		return;
	if (setns(saved_fd, CLONE_NEWNET))
		perror("netns_leave: setns");
	close(saved_fd);
}
