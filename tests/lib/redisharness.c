// SPDX-License-Identifier: MIT
/* redisharness.c -- a private redis-server per test: start, pause (SIGSTOP), resume, stop
 *
 * Readiness is a real round trip (PING -> +PONG over a raw socket), not a sleep. If the
 * port was taken between finding it and redis binding it (other helpers run tests at the
 * same time), the server exits and start tries again on a new port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redisharness.h"
#include "test_progs.h"

#define REDIS_SERVER "/usr/bin/redis-server"

int harness_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -errno;

	if (fd < 0)
		return port;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	else
		port = -errno;
	close(fd);
	return port;
}

static bool ping(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
	char buf[16] = "";
	bool ok = false;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a)) && write(fd, "PING\r\n", 6) == 6)
		ok = read(fd, buf, sizeof(buf) - 1) > 0 && !strncmp(buf, "+PONG", 5);
	close(fd);
	return ok;
}

static pid_t spawn(const char *dir, uint16_t port)
{
	char portstr[8], log[300];
	pid_t pid = fork();
	int fd;

	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(portstr, sizeof(portstr), "%u", port);
	snprintf(log, sizeof(log), "%s/redis.log", dir);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execl(REDIS_SERVER, "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--save", "",
	      "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "no",
	      "--loglevel", "warning", (char *)NULL);
	_exit(127);
}

static int wait_ready(struct redis_harness *h)
{
	for (int i = 0; i < 100; i++) {
		int status;

		if (ping(h->port))
			return 0;
		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			h->pid = 0;
			return -EADDRINUSE;
		}
		usleep(50000);
	}
	return -ETIMEDOUT;
}

int redis_harness_start(struct redis_harness *h)
{
	int port, err = -EADDRINUSE;

	memset(h, 0, sizeof(*h));
	if (access(REDIS_SERVER, X_OK))
		return -ENOENT;
	snprintf(h->dir, sizeof(h->dir), "%s", test__tmpdir());
	for (int attempt = 0; attempt < 3 && err == -EADDRINUSE; attempt++) {
		port = harness_free_port();
		if (port < 0)
			return port;
		h->port = (uint16_t)port;
		h->pid = spawn(h->dir, h->port);
		if (h->pid < 0)
			return -errno;
		err = wait_ready(h);
	}
	if (err)
		redis_harness_stop(h);
	return err;
}

int redis_harness_pause(struct redis_harness *h)
{
	if (!h->pid || kill(h->pid, SIGSTOP))
		return -ESRCH;
	h->paused = true;
	return 0;
}

int redis_harness_resume(struct redis_harness *h)
{
	if (!h->pid || kill(h->pid, SIGCONT))
		return -ESRCH;
	h->paused = false;
	return 0;
}

void redis_harness_stop(struct redis_harness *h)
{
	if (!h || h->pid <= 0)
		return;
	kill(h->pid, SIGCONT);
	kill(h->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(h->pid, NULL, WNOHANG) == h->pid)
			goto reaped;
		usleep(20000);
	}
	kill(h->pid, SIGKILL);
	waitpid(h->pid, NULL, 0);
reaped:
	h->pid = 0;
	h->paused = false;
}
