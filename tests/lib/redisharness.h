/* SPDX-License-Identifier: MIT */
/* redisharness.h -- a private redis-server per test: start, pause (SIGSTOP), resume, stop
 *
 * The server listens on 127.0.0.1 on a port found free (bind to 0, read it back), keeps
 * its files in test__tmpdir(), persists nothing, and dies with the test process
 * (PR_SET_PDEATHSIG) even if the test crashes before calling redis_harness_stop.
 */
#ifndef SLUICE_TEST_REDISHARNESS_H
#define SLUICE_TEST_REDISHARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct redis_harness {
	pid_t pid;
	uint16_t port;
	bool paused;
	char dir[256];
};

/* Start redis-server and wait until it answers PING (up to 5 s). Returns 0, -ENOENT when
 * redis-server is not installed (skip the test), or -errno. */
int redis_harness_start(struct redis_harness *h);
/* SIGSTOP the server: connections are accepted by the kernel but nothing is answered. */
int redis_harness_pause(struct redis_harness *h);
int redis_harness_resume(struct redis_harness *h);
/* Stop the server (resuming it first if paused) and reap it. NULL-safe, idempotent. */
void redis_harness_stop(struct redis_harness *h);
/* A TCP port on 127.0.0.1 that was free a moment ago, or -errno. */
int harness_free_port(void);

#endif /* SLUICE_TEST_REDISHARNESS_H */
