// SPDX-License-Identifier: MIT
/* test_queue_crash.c -- the whole consumer path under SIGKILL: 4 producer threads append up
 * to 50,000 keyed events while a pool processes them (writes the key to an output file, then
 * acks); the process is killed at a pseudo-random point, a second process replays and
 * finishes. Every event whose append completed ok must be in the output (at least once: the
 * store's unique key makes that exactly once), and nothing that was never appended. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "work/pool.h"
#include "test_progs.h"
#include "journal_util.h"

#define EVENTS	  50000
#define PRODUCERS 4

static int out_fd = -1;	   /* processed keys, u32 each, O_APPEND */
static int report_fd = -1; /* keys whose append completed ok */

static enum pool_verdict h_store(void *arg, struct pool *p, struct queue_entry *e)
{
	unsigned key;

	if (e->len < 5 || sscanf((const char *)e->data, "key-%u", &key) != 1)
		return POOL_ACK; /* cannot happen: the parent checks every key it reads */
	if (write(out_fd, &key, sizeof(key)) != sizeof(key))
		_exit(5); /* the effect failed: never ack it */
	return POOL_ACK;
}

static void on_appended(void *arg, int err, uint64_t id)
{
	unsigned key = (unsigned)(uintptr_t)arg;

	if (!err && write(report_fd, &key, sizeof(key)) != sizeof(key))
		_exit(6);
}

static void *produce(void *arg)
{
	struct queue *q = arg;
	static unsigned next_key;
	char buf[64];

	for (;;) {
		unsigned key = __atomic_fetch_add(&next_key, 1, __ATOMIC_RELAXED);
		struct queue_rec r = {.class = key % 3, .tenant = key % 17, .data = buf};

		if (key >= EVENTS)
			return NULL;
		r.len = (uint32_t)snprintf(buf, sizeof(buf), "key-%u", key) + 1;
		while (queue_append(q, &r, on_appended, (void *)(uintptr_t)key))
			usleep(1000); /* queue full: the client would retry after a 503 */
	}
}

/* A worker process: serve the journal in dir; with producers, also append the events. */
static void worker_main(const char *dir, const char *out, bool producers)
{
	struct journal_cfg jc = {.dir = dir, .max_entries = 20000};
	struct pool_cfg pc = {.name = "db", .threads = 2, .max_inflight = 64, .handler = h_store};
	struct pool_set_cfg sc = {.npools = 1};
	struct queue_stats st;
	struct queue *q = journal_open(&jc);
	struct pool *pool = q ? pool_new(&pc, q) : NULL;
	struct pool_set *set;
	pthread_t th[PRODUCERS];

	out_fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (!pool || out_fd < 0)
		_exit(2);
	sc.queue = q;
	sc.pools = &pool;
	set = pool_set_new(&sc);
	if (!set)
		_exit(3);
	for (int i = 0; producers && i < PRODUCERS; i++)
		pthread_create(&th[i], NULL, produce, q);
	for (int i = 0; producers && i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	/* serve until everything is acked (the parent kills the first worker long before) */
	for (int waited = 0; waited < 20000; waited += 10) {
		queue_stats(q, &st);
		if (!st.entries)
			break;
		usleep(10000);
	}
	pool_set_free(set);
	pool_free(pool);
	queue_free(q);
	_exit(st.entries ? 4 : 0);
}

static pid_t spawn(const char *dir, const char *out, bool producers, int *pipe_rd)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return -1;
	fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		report_fd = fds[1];
		worker_main(dir, out, producers);
	}
	close(fds[1]);
	*pipe_rd = fds[0];
	return pid;
}

void test_queue_crash(void)
{
	static uint8_t reported[EVENTS], processed[EVENTS];
	const char *dir = jt_dir("journal");
	char out[512];
	unsigned key, target, nrep = 0, nproc = 0, dups = 0, missing = 0;
	int rd, status = -1, fd;
	pid_t pid;

	snprintf(out, sizeof(out), "%s/processed.bin", test__tmpdir());
	srand((unsigned)getpid());
	target = 2000 + (unsigned)rand() % 30000;
	pid = spawn(dir, out, true, &rd);
	if (!ASSERT_GT(pid, 0, "fork"))
		return;
	/* SIGKILL once `target` appends were reported durable: mid-append, mid-processing */
	while (nrep < target && read(rd, &key, sizeof(key)) == sizeof(key) && key < EVENTS)
		reported[key] = 1, nrep++;
	kill(pid, SIGKILL);
	while (read(rd, &key, sizeof(key)) == sizeof(key) && key < EVENTS)
		reported[key] = 1, nrep++;
	close(rd);
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFSIGNALED(status), "first worker was killed");
	/* the restarted worker replays and finishes the backlog */
	pid = spawn(dir, out, false, &rd);
	close(rd);
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "second worker drained and exited 0");
	fd = open(out, O_RDONLY);
	while (fd >= 0 && read(fd, &key, sizeof(key)) == sizeof(key)) {
		if (!ASSERT_LT(key, EVENTS, "only keys that were appended"))
			break;
		dups += processed[key];
		processed[key] = 1;
		nproc++;
	}
	if (fd >= 0)
		close(fd);
	for (key = 0; key < EVENTS; key++)
		missing += reported[key] && !processed[key];
	ASSERT_EQ(missing, 0, "every event reported durable was processed");
	ASSERT_GT(nrep, 0, "events got through before the kill");
	printf("killed after %u durable (target %u); processed %u, %u of them again after the "
	       "restart (at-least-once; the store's unique key dedupes)\n",
	       nrep, target, nproc, dups);
}
