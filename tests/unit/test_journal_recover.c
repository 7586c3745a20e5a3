// SPDX-License-Identifier: MIT
/* test_journal_recover.c -- recovery corners: a corrupt last segment, a torn segment that is
 * not the last, acks surviving SIGKILL, retry attempts and due times surviving a restart, the
 * notify hook and shutdown waking next() */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/journal/journal.h"
#include "queue/journal/journal_int.h"
#include "test_progs.h"
#include "journal_util.h"

/* Path of the nth (1-based; 0 = last) segment file in dir, and its record end offsets. */
static int nth_segment(const char *dir, int nth, char *path, size_t sz, size_t *ends, int max)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), k = 0, want = 0, nrec = 0;
	uint8_t buf[1 << 16];
	struct jrec_hdr h;
	ssize_t len;
	size_t off = 0;
	int fd;

	for (int i = 0; i < n; i++)
		want += !strncmp(names[i]->d_name, "seg-", 4) && strstr(names[i]->d_name, ".log") &&
			!strstr(names[i]->d_name, ".corrupt");
	want = nth ? nth : want;
	for (int i = 0; i < n; i++) {
		if (!strncmp(names[i]->d_name, "seg-", 4) &&
		    !strstr(names[i]->d_name, ".corrupt") && ++k == want)
			snprintf(path, sz, "%s/%s", dir, names[i]->d_name);
		free(names[i]);
	}
	free(names);
	fd = open(path, O_RDONLY);
	len = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	while (len > 0 && off + sizeof(h) <= (size_t)len && nrec < max) {
		memcpy(&h, buf + off, sizeof(h));
		off += sizeof(h) + h.len;
		ends[nrec++] = off;
	}
	return nrec;
}

/* Every replayed entry is a valid record, none twice; returns how many. */
static size_t replay_unique(struct queue *q, bool *seen, size_t nseen)
{
	struct jt_list got = {0};
	size_t n;

	queue_replay(q, jt_collect, &got);
	for (size_t i = 0; i < got.n; i++) {
		int w = jt_which(got.e[i]);

		if (!ASSERT_TRUE(w >= 0 && (size_t)w < nseen && !seen[w], "valid and unique"))
			break;
		seen[w] = true;
	}
	n = got.n;
	jt_list_free(&got);
	return n;
}

static void subtest_corrupt_last(void)
{
	const char *dir = jt_dir("corrupt_last");
	char path[600];
	size_t ends[64];
	bool seen[64] = {false};
	struct queue *q = jt_open(dir, 1024);
	int nrec, fd;

	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 30), "append"))
		goto out;
	queue_free(q);
	q = NULL;
	nrec = nth_segment(dir, 0, path, sizeof(path), ends, 64);
	if (!ASSERT_GE(nrec, 2, "records in the last segment"))
		goto out;
	/* damage record 2 of the last (active) segment: only record 2 is lost */
	fd = open(path, O_RDWR);
	ASSERT_EQ(pwrite(fd, "\xff", 1, ends[0] + 8), 1, "corrupt header byte");
	close(fd);
	q = jt_open(dir, 1024);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	ASSERT_EQ(jt_count_files(dir, ".corrupt"), 1, "its bytes kept aside");
	ASSERT_EQ(replay_unique(q, seen, 64), 29, "every record but the damaged one");
	ASSERT_OK(jt_fill(q, 40, 5), "appends go on");
	queue_free(q);
	q = jt_open(dir, 1024);
	if (!ASSERT_OK_PTR(q, "reopen 2"))
		goto out;
	memset(seen, 0, sizeof(seen));
	ASSERT_EQ(replay_unique(q, seen, 64), 34, "the same + new, once each");
	for (int i = 40; i < 45; i++)
		ASSERT_TRUE(seen[i], "new appends present");
out:
	queue_free(q);
}

static void subtest_torn_middle(void)
{
	const char *dir = jt_dir("torn_middle");
	char path[600];
	size_t ends[64];
	bool seen[64] = {false};
	struct queue *q = jt_open(dir, 1024);
	int nrec;

	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 40), "append"))
		goto out;
	queue_free(q);
	q = NULL;
	nrec = nth_segment(dir, 1, path, sizeof(path), ends, 64);
	if (!ASSERT_GE(nrec, 3, "records in segment 1"))
		goto out;
	/* a synced, rotated segment cut short is damage, not a crash: loud, moved aside */
	ASSERT_OK(truncate(path, (off_t)ends[1] + 10), "cut inside record 3");
	q = jt_open(dir, 1024);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	ASSERT_EQ(jt_count_files(dir, ".corrupt"), 1, "kept aside, not silently truncated");
	ASSERT_EQ(replay_unique(q, seen, 64), 40 - (size_t)(nrec - 2), "whole records rescued");
	ASSERT_TRUE(seen[0] && seen[1] && !seen[2], "records 1-2 of segment 1 kept, 3 lost");
out:
	queue_free(q);
}

/* Child: 100 appends, ack the even ones, one more append (its batch carries the ack
 * record), tell the parent, wait to be killed. */
static void ack_child(const char *dir, int fd)
{
	struct queue *q = jt_open(dir, 0);
	struct jt_list got = {0};

	if (!q || jt_fill(q, 0, 100))
		_exit(2);
	jt_drain(q, &got, 100);
	for (size_t i = 0; i < got.n; i += 2)
		queue_ack(q, got.e[i]);
	if (jt_fill(q, 100, 1) || write(fd, "x", 1) != 1)
		_exit(3);
	pause();
	_exit(0);
}

static void subtest_acks_survive_sigkill(void)
{
	const char *dir = jt_dir("acks_kill");
	bool seen[128] = {false};
	struct queue *q;
	int fds[2], status;
	char c;
	pid_t pid;

	if (!ASSERT_OK(pipe(fds), "pipe"))
		return;
	pid = fork();
	if (pid == 0)
		ack_child(dir, fds[1]);
	close(fds[1]);
	ASSERT_EQ(read(fds[0], &c, 1), 1, "child acked and appended");
	close(fds[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	q = jt_open(dir, 0);
	if (!ASSERT_OK_PTR(q, "reopen"))
		return;
	ASSERT_EQ(replay_unique(q, seen, 128), 51, "the 50 unacked + the last append");
	for (int i = 0; i < 100; i++)
		if (!ASSERT_EQ(seen[i], i % 2 == 1, "exactly the unacked ones"))
			break;
	ASSERT_TRUE(seen[100], "last append");
	queue_free(q);
}

static void subtest_attempts_survive(void)
{
	const char *dir = jt_dir("attempts");
	struct jt_list got = {0}, back = {0};
	struct queue_stats st;
	struct queue *q = jt_open(dir, 0);

	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 3), "append"))
		goto out;
	jt_drain(q, &got, 3);
	if (!ASSERT_EQ(got.n, 3, "next"))
		goto out;
	/* record 1 failed twice more and must wait; record 2 was noted, then finished */
	got.e[1]->attempts = 3;
	got.e[1]->not_before_ns = 123456789;
	ASSERT_OK(queue_note_attempt(q, got.e[1]), "note 1");
	got.e[2]->attempts = 7;
	ASSERT_OK(queue_note_attempt(q, got.e[2]), "note 2");
	ASSERT_OK(queue_ack(q, got.e[2]), "ack 2");
	ASSERT_OK(queue_ack(q, got.e[0]), "ack 0");
	got.e[0] = got.e[2] = NULL;
	queue_stats(q, &st);
	ASSERT_EQ(st.attempt_notes, 2, "notes counted");
	queue_free(q);
	q = jt_open(dir, 0);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	ASSERT_EQ(queue_replay(q, jt_collect, &back), 1, "only record 1 is left");
	if (back.n == 1) {
		ASSERT_EQ(back.e[0]->attempts, 3, "attempt count survived the restart");
		ASSERT_EQ(back.e[0]->not_before_ns, 123456789, "and its not-before time");
	}
out:
	for (size_t i = 0; i < got.n; i++)
		free(got.e[i]);
	free(got.e);
	jt_list_free(&back);
	queue_free(q);
}

#define DUE_RECV 1600000000000000000ull /* the original receipt, long ago */
#define DUE_BASE 1700000000000000000ull /* the replay */
#define DUE_N	 8

/* The due time of record k of the due-time test: odd ones have one, even ones none. */
static uint64_t due_of(unsigned k)
{
	return k % 2 ? DUE_BASE + k : 0;
}

/* Take one entry (waiting up to 2 s) and check it is record 3 * k with its due time. */
static struct queue_entry *take_due(struct queue *q, unsigned k, const char *when)
{
	struct queue_entry *e = NULL;
	char what[96];

	snprintf(what, sizeof(what), "%s: record %u", when, k);
	if (!ASSERT_EQ(queue_next(q, &e, 1, 2000), 1, what))
		return NULL;
	ASSERT_EQ(jt_which(e), (int)(3 * k), what);
	ASSERT_EQ(e->not_before_ns, due_of(k), what);
	ASSERT_EQ(e->enq_ns, DUE_RECV + 3 * k, "its received time is kept");
	return e;
}

/* A due time given at append (a dead-letter replay) comes back from next() -- from memory
 * and from read-back of entries the window left on disk -- and after a restart. */
static void subtest_due_time(void)
{
	const char *dir = jt_dir("due");
	/* one class (records 3k), a window of 2: records 2.. spill and are read back */
	struct journal_cfg cfg = {.dir = dir, .window_entries = 2};
	struct queue *q = journal_open(&cfg);
	struct queue_entry *e;
	struct queue_stats st;

	if (!ASSERT_OK_PTR(q, "open"))
		return;
	for (unsigned k = 0; k < DUE_N; k++)
		if (!ASSERT_OK(jt_append_at(q, 3 * k, DUE_RECV + 3 * k, due_of(k)), "append"))
			goto out;
	queue_stats(q, &st);
	ASSERT_GE(st.spilled, DUE_N - 2, "entries past the window stayed on disk");
	/* 0, 1 from memory, 2, 3 read back; ack them, leave 4.. for the restart */
	for (unsigned k = 0; k < DUE_N / 2; k++) {
		e = take_due(q, k, "before restart");
		if (!e)
			goto out;
		ASSERT_OK(queue_ack(q, e), "ack");
	}
	queue_free(q);
	cfg.window_entries = 0;
	q = journal_open(&cfg);
	if (!ASSERT_OK_PTR(q, "reopen"))
		return;
	for (unsigned k = DUE_N / 2; k < DUE_N; k++) {
		e = take_due(q, k, "after restart");
		if (!e)
			goto out;
		ASSERT_OK(queue_ack(q, e), "ack");
	}
out:
	queue_free(q);
}

static int notified;

static void on_notify(void *arg)
{
	__atomic_add_fetch(&notified, 1, __ATOMIC_RELAXED);
}

static void *blocked_next(void *arg)
{
	struct queue_entry *e;
	long n = queue_next(arg, &e, 1, -1);

	return (void *)n;
}

static void subtest_notify_shutdown(void)
{
	struct queue *q = jt_open(jt_dir("notify"), 0);
	struct jt_list got = {0};
	pthread_t th;
	void *ret;

	if (!ASSERT_OK_PTR(q, "open"))
		return;
	queue_set_notify(q, on_notify, NULL);
	ASSERT_OK(jt_fill(q, 0, 3), "append");
	ASSERT_GE(__atomic_load_n(&notified, __ATOMIC_RELAXED), 1, "notify hook ran");
	jt_drain(q, &got, 3);
	ASSERT_EQ(got.n, 3, "next");
	pthread_create(&th, NULL, blocked_next, q);
	usleep(50000);
	queue_shutdown(q);
	pthread_join(th, &ret);
	ASSERT_EQ((long)ret, 0, "shutdown wakes a blocked next() with 0");
	ASSERT_EQ(jt_append_sync(q, 9), -ESHUTDOWN, "appends refused after shutdown");
	for (size_t i = 0; i < got.n; i++)
		ASSERT_OK(queue_ack(q, got.e[i]), "acks still accepted after shutdown");
	got.n = 0;
	jt_list_free(&got);
	queue_free(q);
}

void test_journal_recover(void)
{
	if (test__start_subtest("corrupt_last_segment"))
		subtest_corrupt_last();
	if (test__start_subtest("torn_middle_segment"))
		subtest_torn_middle();
	if (test__start_subtest("acks_survive_sigkill"))
		subtest_acks_survive_sigkill();
	if (test__start_subtest("attempts_survive_restart"))
		subtest_attempts_survive();
	if (test__start_subtest("due_time_survives"))
		subtest_due_time();
	if (test__start_subtest("notify_shutdown"))
		subtest_notify_shutdown();
}
