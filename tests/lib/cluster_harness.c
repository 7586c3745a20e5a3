// SPDX-License-Identifier: MIT
/* cluster_harness.c -- a Sluice cluster on one machine: N nodes in network namespaces, one Redis
 *
 * Every name and address is computed before anything is created, so the watcher (forked
 * first) knows all of them; its cleanup is the harness's only cleanup, run either when the
 * test process dies or when cluster_harness_stop() asks it to (SIGTERM), and it tolerates
 * what does not exist (yet, or any more).
 */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_harness.h"
#include "netns.h"
#include "redisharness.h"
#include "test_progs.h"

#define REDIS_SERVER "/usr/bin/redis-server"

static void names(struct cluster_harness *h)
{
	unsigned pid = (unsigned)getpid() % 10000000u, b = 224 + (pid / 256) % 32, c = pid % 256;

	for (int k = 0; k < h->n; k++) {
		struct cluster_node *nd = &h->nodes[k];
		unsigned i = (unsigned)k % CLUSTER_NODES_MAX;

		snprintf(nd->name, sizeof(nd->name), "n%u", i + 1);
		snprintf(nd->ns, sizeof(nd->ns), "slc%un%u", pid, i);
		snprintf(nd->if_host, sizeof(nd->if_host), "slc%uh%u", pid, i);
		snprintf(nd->if_node, sizeof(nd->if_node), "slc%uv%u", pid, i);
		snprintf(nd->ip_host, sizeof(nd->ip_host), "10.%u.%u.%u", b % 256, c, 4 * i + 1);
		snprintf(nd->ip_node, sizeof(nd->ip_node), "10.%u.%u.%u", b % 256, c, 4 * i + 2);
		snprintf(nd->mac_node, sizeof(nd->mac_node), "02:5c:%02x:%02x:%02x:%02x",
			 (pid >> 16) & 0xffu, (pid >> 8) & 0xffu, pid & 0xffu, i);
		snprintf(nd->pin_dir, sizeof(nd->pin_dir), "/sys/fs/bpf/sluice-test-%u-c%u", pid,
			 i);
	}
}

/* Kill what runs in the namespaces, delete them, their host links and the pins. */
static void cleanup(const struct cluster_harness *h)
{
	for (int i = 0; i < h->n; i++) {
		const struct cluster_node *nd = &h->nodes[i];

		netns_run(NULL, NULL, 0,
			  "if [ -e /run/netns/%s ]; then ip netns pids %s | xargs -r kill -9;"
			  " sleep 0.2; ip netns del %s; fi; ip link del %s 2>/dev/null;"
			  " rm -rf %s; true",
			  nd->ns, nd->ns, nd->ns, nd->if_host, nd->pin_dir);
	}
}

/* The watcher: cleans up when the test process dies (or when told to). */
static pid_t watcher_start(const struct cluster_harness *h)
{
	pid_t parent = getpid(), pid;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fflush(NULL);
	pid = fork();
	if (pid) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == parent)
		sigwait(&set, &sig);
	cleanup(h);
	_exit(0);
}

static bool redis_ping(uint16_t port)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r = NULL;
	bool ok = false;

	if (c && !c->err) {
		redisSetTimeout(c, tv);
		r = redisCommand(c, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
	}
	if (r)
		freeReplyObject(r);
	if (c)
		redisFree(c);
	return ok;
}

static int redis_spawn(struct cluster_harness *h)
{
	char port[8], log[300], bind[256] = "127.0.0.1";
	int fd;

	for (int i = 0; i < h->n; i++)
		snprintf(bind + strlen(bind), sizeof(bind) - strlen(bind), " %s",
			 h->nodes[i].ip_host);
	snprintf(port, sizeof(port), "%u", h->redis_port);
	snprintf(log, sizeof(log), "%s/redis.log", h->redis_dir);
	fflush(NULL);
	h->redis_pid = fork();
	if (h->redis_pid < 0)
		return -errno;
	if (!h->redis_pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(REDIS_SERVER, "redis-server", "--port", port, "--bind", bind, "--save", "",
		      "--appendonly", "no", "--dir", h->redis_dir, "--daemonize", "no",
		      "--protected-mode", "no", "--loglevel", "warning", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		int status;

		if (redis_ping(h->redis_port))
			return 0;
		if (waitpid(h->redis_pid, &status, WNOHANG) == h->redis_pid) {
			h->redis_pid = 0;
			return -EADDRINUSE;
		}
		usleep(50000);
	}
	return -ETIMEDOUT;
}

static int make_links(struct cluster_harness *h)
{
	char out[2048];

	for (int i = 0; i < h->n; i++) {
		struct cluster_node *nd = &h->nodes[i];
		int ret = netns_run(NULL, out, sizeof(out),
				    "set -e; ip netns add %s; ip -n %s link set lo up;"
				    "ip link add %s type veth peer name %s address %s netns %s;"
				    "ip addr add %s/30 dev %s; ip link set %s up;"
				    "ip -n %s addr add %s/30 dev %s; ip -n %s link set %s up",
				    nd->ns, nd->ns, nd->if_host, nd->if_node, nd->mac_node, nd->ns,
				    nd->ip_host, nd->if_host, nd->if_host, nd->ns, nd->ip_node,
				    nd->if_node, nd->ns, nd->if_node);

		if (ret) {
			fprintf(stderr, "cluster_harness: node %d links: %s\n", i, out);
			return ret < 0 ? ret : -EIO;
		}
	}
	return 0;
}

int cluster_harness_setup(struct cluster_harness *h, int n, const char *tenants,
			  const char *const *args)
{
	int ret, k = 0;

	memset(h, 0, sizeof(*h));
	if (n < 1 || n > CLUSTER_NODES_MAX)
		return -EINVAL;
	if (access(REDIS_SERVER, X_OK))
		return -ENOENT;
	h->n = n;
	names(h);
	snprintf(h->tenants, sizeof(h->tenants), "%s", tenants);
	for (; args && args[k] && k < CLUSTER_ARGS_MAX - 1; k++) {
		snprintf(h->arg_buf[k], sizeof(h->arg_buf[k]), "%s", args[k]);
		h->args[k] = h->arg_buf[k];
	}
	h->args[k] = NULL;
	snprintf(h->redis_dir, sizeof(h->redis_dir), "%s/redis", test__tmpdir());
	mkdir(h->redis_dir, 0755);
	h->watcher = watcher_start(h);
	if (h->watcher < 0) {
		ret = -errno;
		h->watcher = 0;
		return ret;
	}
	ret = make_links(h);
	for (int attempt = 0; !ret && attempt < 3; attempt++) {
		int port = harness_free_port();

		if (port < 0) {
			ret = port;
			break;
		}
		h->redis_port = (uint16_t)port;
		ret = redis_spawn(h);
		if (ret != -EADDRINUSE)
			break;
		if (attempt < 2)
			ret = 0;
	}
	if (ret) {
		cluster_harness_stop(h);
		return ret;
	}
	for (int i = 0; i < n; i++) {
		char addr[sizeof(h->nodes[i].redis_addr)];

		snprintf(addr, sizeof(addr), "%s:%u", h->nodes[i].ip_host, h->redis_port);
		memcpy(h->nodes[i].redis_addr, addr, sizeof(addr));
	}
	return 0;
}

int cluster_node_start_args(struct cluster_harness *h, int i, const char *const *args)
{
	struct cluster_node *nd = &h->nodes[i];
	const char *argv[2 * CLUSTER_ARGS_MAX + 16];
	int n = 0;

	if (nd->proc.pid > 0)
		return -EBUSY;
	argv[n++] = "--threads";
	argv[n++] = "1";
	argv[n++] = "--journal-dir";
	argv[n++] = "@journal";
	argv[n++] = "--iface";
	argv[n++] = nd->if_node;
	argv[n++] = "--pin-dir";
	argv[n++] = nd->pin_dir;
	argv[n++] = "--node";
	argv[n++] = nd->name;
	argv[n++] = "--cluster-redis";
	argv[n++] = nd->redis_addr;
	for (; args && *args && n < 2 * CLUSTER_ARGS_MAX; args++)
		argv[n++] = *args;
	for (int k = 0; h->args[k]; k++)
		argv[n++] = h->args[k];
	argv[n] = NULL;
	/* a fixed port (each node has its namespace to itself): XDP learns its service port
	 * from --listen before the socket is bound, so port 0 would leave it unknown there */
	return sluiced_start_ns(&nd->proc, nd->ns, "0.0.0.0:" CLUSTER_NODE_PORT, h->tenants, argv);
}

int cluster_node_start(struct cluster_harness *h, int i)
{
	return cluster_node_start_args(h, i, NULL);
}

int cluster_start_all(struct cluster_harness *h)
{
	for (int i = 0; i < h->n; i++) {
		int ret = cluster_node_start(h, i);

		if (ret)
			return ret;
	}
	return 0;
}

void cluster_node_kill(struct cluster_harness *h, int i)
{
	struct cluster_node *nd = &h->nodes[i];

	if (nd->proc.pid <= 0)
		return;
	kill(nd->proc.pid, SIGKILL);
	waitpid(nd->proc.pid, NULL, 0);
	nd->proc.pid = 0;
	nd->exit_status = -1;
}

int cluster_node_stop(struct cluster_harness *h, int i, int timeout_ms)
{
	struct cluster_node *nd = &h->nodes[i];

	if (nd->proc.pid <= 0)
		return nd->exit_status;
	nd->exit_status = sluiced_stop(&nd->proc, timeout_ms);
	return nd->exit_status;
}

void cluster_redis_kill(struct cluster_harness *h)
{
	if (h->redis_pid <= 0)
		return;
	kill(h->redis_pid, SIGKILL);
	waitpid(h->redis_pid, NULL, 0);
	h->redis_pid = 0;
}

int cluster_redis_restart(struct cluster_harness *h)
{
	int ret = -EADDRINUSE;

	cluster_redis_kill(h);
	/* the port was ours a moment ago; a socket in TIME_WAIT does not stop a listener */
	for (int attempt = 0; attempt < 20 && ret == -EADDRINUSE; attempt++) {
		ret = redis_spawn(h);
		if (ret == -EADDRINUSE)
			usleep(100000);
	}
	return ret;
}

int cluster_redis_cli(struct cluster_harness *h, char *out, size_t len, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return netns_run(NULL, out, len, "redis-cli -h 127.0.0.1 -p %u %s", h->redis_port, cmd);
}

int cluster_admin(struct cluster_harness *h, int i, const char *path, char *out, size_t cap)
{
	int saved = netns_enter(h->nodes[i].ns), st;

	if (saved < 0)
		return -1;
	st = http_admin(&h->nodes[i].proc, path, out, cap);
	netns_leave(saved);
	return st;
}

double cluster_metric(struct cluster_harness *h, int i, const char *series)
{
	static char buf[1 << 20];
	size_t len = strlen(series);
	const char *p;

	if (cluster_admin(h, i, "/metrics", buf, sizeof(buf)) != 200)
		return -1;
	for (p = strstr(buf, series); p; p = strstr(p + 1, series))
		if ((p == buf || p[-1] == '\n') && p[len] == ' ')
			return strtod(p + len + 1, NULL);
	return -1;
}

void cluster_harness_stop(struct cluster_harness *h)
{
	for (int i = 0; i < h->n; i++)
		if (h->nodes[i].proc.pid > 0)
			cluster_node_stop(h, i, 3000);
	cluster_redis_kill(h);
	if (h->watcher > 0) {
		kill(h->watcher, SIGTERM);
		waitpid(h->watcher, NULL, 0);
		h->watcher = 0;
	}
}
