// SPDX-License-Identifier: MIT
/* test_journal_faults.c -- group commit batching and ordering, EIO from fdatasync, a full
 * disk (a small tmpfs), and SIGKILL of a process in the middle of appending */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "queue/journal/journal.h"
#include "queue/journal/journal_int.h"
#include "test_progs.h"
#include "journal_util.h"

/* I/O hooks: note the highest entry id written and, after a slow fdatasync, the highest
 * one synced; optionally fail the nth fdatasync. */
struct hook {
	pthread_mutex_t lock;
	uint64_t written_id, synced_id;
	int syncs, fail_sync_at, fail_all_from, sync_sleep_us;
	int violations; /* completions that arrived before their fsync */
};

static struct hook H = {.lock = PTHREAD_MUTEX_INITIALIZER};

static ssize_t hook_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	struct hook *h = ctx;
	const uint8_t *p = buf;
	struct jrec_hdr hdr;
	ssize_t n = pwrite(fd, buf, len, off);

	for (size_t o = 0; n > 0 && o + sizeof(hdr) <= (size_t)n; o += sizeof(hdr) + hdr.len) {
		memcpy(&hdr, p + o, sizeof(hdr));
		pthread_mutex_lock(&h->lock);
		if (hdr.type == JREC_ENTRY && hdr.id > h->written_id)
			h->written_id = hdr.id;
		pthread_mutex_unlock(&h->lock);
	}
	return n;
}

static int hook_sync(void *ctx, int fd)
{
	struct hook *h = ctx;
	uint64_t upto;
	int n;

	pthread_mutex_lock(&h->lock);
	upto = h->written_id;
	n = ++h->syncs;
	pthread_mutex_unlock(&h->lock);
	if (h->sync_sleep_us)
		usleep(h->sync_sleep_us);
	if (n == h->fail_sync_at || (h->fail_all_from && n >= h->fail_all_from)) {
		errno = EIO;
		return -1;
	}
	if (fdatasync(fd) < 0)
		return -1;
	pthread_mutex_lock(&h->lock);
	if (upto > h->synced_id)
		h->synced_id = upto;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static void checked_done(void *arg, int err, uint64_t id)
{
	pthread_mutex_lock(&H.lock);
	if (!err && id > H.synced_id)
		H.violations++;
	pthread_mutex_unlock(&H.lock);
	jt_done(arg, err, id);
}

struct appender {
	struct queue *q;
	struct jt_wait w;
	int n, base, refused;
	bool sync;
};

static void *append_many(void *arg)
{
	struct appender *a = arg;
	char buf[256];

	for (int i = 0; i < a->n; i++) {
		struct queue_rec r = {.class = (a->base + i) % 3,
				      .tenant = 100 + (a->base + i) % 5,
				      .attempts = (a->base + i) % 4,
				      .data = buf};

		r.len = jt_payload(buf, sizeof(buf), a->base + i);
		if (queue_append(a->q, &r, checked_done, &a->w))
			a->refused++;
		else if (a->sync)
			jt_wait_for(&a->w,
				    i + 1 - a->refused); /* like one HTTP client: wait for 202 */
	}
	jt_wait_for(&a->w, a->n - a->refused);
	return NULL;
}

static struct queue *open_hooked(const char *dir)
{
	struct journal_cfg cfg = {.dir = dir,
				  .io = {.pwrite = hook_pwrite, .fdatasync = hook_sync, .ctx = &H}};

	return journal_open(&cfg);
}

/* 8 clients each waiting for every completion (like HTTP clients waiting for their 202),
 * against a disk whose fdatasync takes 2 ms: while one commit runs, the other clients'
 * appends gather into the next, so there are far fewer fsyncs than appends. */
static void subtest_group_commit(void)
{
	struct appender a[8];
	pthread_t th[8];
	struct queue_stats st;
	struct queue *q;
	uint64_t hist = 0;
	int ok = 0;

	H.sync_sleep_us = 2000;
	q = open_hooked(jt_dir("group"));
	if (!ASSERT_OK_PTR(q, "open"))
		return;
	for (int t = 0; t < 8; t++) {
		a[t] = (struct appender){
		    .q = q, .w = JT_WAIT_INIT, .n = 100, .base = t * 100, .sync = true};
		pthread_create(&th[t], NULL, append_many, &a[t]);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		ok += a[t].w.ok;
		ASSERT_EQ(a[t].refused, 0, "none refused");
	}
	queue_stats(q, &st);
	ASSERT_EQ(ok, 800, "every append completed ok");
	ASSERT_EQ(H.violations, 0, "no completion before the fdatasync covering it");
	ASSERT_EQ(st.durable, 800, "durable count");
	ASSERT_LT(st.fsyncs, 800 / 3, "one fdatasync covers several clients' appends");
	ASSERT_GE(st.batch_max, 4, "batches formed");
	for (int i = 0; i < 8; i++)
		hist += st.batch_hist[i];
	ASSERT_EQ(hist, st.fsyncs, "batch histogram sums to fsyncs");
	printf("group commit: 800 appends by 8 waiting clients, %llu fsyncs, largest batch %llu\n",
	       (unsigned long long)st.fsyncs, (unsigned long long)st.batch_max);
	queue_free(q);
	H.sync_sleep_us = 0;
}

/* group_delay_us: the flusher lingers before each commit, so even on a fast disk the
 * waiting clients' appends share fdatasyncs. */
static void subtest_group_delay(void)
{
	struct journal_cfg cfg = {.dir = jt_dir("linger"), .group_delay_us = 3000};
	struct appender a[4];
	pthread_t th[4];
	struct queue_stats st;
	struct queue *q = journal_open(&cfg);

	if (!ASSERT_OK_PTR(q, "open"))
		return;
	for (int t = 0; t < 4; t++) {
		a[t] = (struct appender){
		    .q = q, .w = JT_WAIT_INIT, .n = 25, .base = t * 25, .sync = true};
		pthread_create(&th[t], NULL, append_many, &a[t]);
	}
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	queue_stats(q, &st);
	ASSERT_EQ(st.durable, 100, "all durable");
	ASSERT_LT(st.fsyncs, 100, "fewer fdatasyncs than appends");
	ASSERT_GE(st.batch_max, 2, "batches formed during the linger");
	queue_free(q);
}

/* Many appends with no waiting: completions still never precede their fsync. */
static void subtest_completion_order(void)
{
	struct appender a[4];
	pthread_t th[4];
	struct queue *q;
	int ok = 0;

	H.violations = 0;
	H.sync_sleep_us = 500;
	q = open_hooked(jt_dir("order"));
	if (!ASSERT_OK_PTR(q, "open"))
		return;
	for (int t = 0; t < 4; t++) {
		a[t] = (struct appender){.q = q, .w = JT_WAIT_INIT, .n = 5000, .base = t * 5000};
		pthread_create(&th[t], NULL, append_many, &a[t]);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		ok += a[t].w.ok;
	}
	ASSERT_EQ(ok, 20000, "all completed");
	ASSERT_EQ(H.violations, 0, "no completion before the fdatasync covering it");
	queue_free(q);
	H.sync_sleep_us = 0;
}

static void subtest_eio(void)
{
	const char *dir = jt_dir("eio");
	struct jt_list got = {0};
	struct queue_stats st;
	struct queue *q;
	bool seen[20] = {false};
	uint64_t w0;
	char buf[256];

	H.syncs = 0;
	H.fail_sync_at = H.fail_all_from = 0;
	q = open_hooked(dir);
	if (!ASSERT_OK_PTR(q, "open"))
		return;
	for (unsigned i = 0; i < 5; i++)
		ASSERT_OK(jt_append_sync(q, i), "before");
	H.fail_sync_at = H.syncs + 1;
	/* with a due time: its note must not outlive the failed entry */
	ASSERT_EQ(jt_append_at(q, 5, 0, 12345), -EIO, "fdatasync EIO fails the append");
	queue_stats(q, &st);
	w0 = st.write_bytes;
	ASSERT_OK(jt_append_sync(q, 6), "after: the journal recovered by cutting the batch");
	queue_stats(q, &st);
	ASSERT_EQ(st.write_bytes - w0, sizeof(struct jrec_hdr) + jt_payload(buf, sizeof(buf), 6),
		  "the next batch is the entry alone (the failed entry's due-time note dropped)");
	for (unsigned i = 7; i < 10; i++)
		ASSERT_OK(jt_append_sync(q, i),
			  "after: the journal recovered by cutting the batch");
	queue_stats(q, &st);
	ASSERT_EQ(st.append_errors, 1, "error counted");
	/* the undo's own sync fails too: the journal stops accepting */
	H.fail_all_from = H.syncs + 1;
	ASSERT_EQ(jt_append_sync(q, 10), -EIO, "fails");
	ASSERT_EQ(jt_append_sync(q, 11), -EIO, "refused from now on");
	queue_free(q);
	H.fail_all_from = H.fail_sync_at = 0;
	q = open_hooked(dir);
	if (!ASSERT_OK_PTR(q, "reopen"))
		return;
	queue_replay(q, jt_collect, &got);
	for (size_t i = 0; i < got.n; i++) {
		int w = jt_which(got.e[i]);

		if (ASSERT_TRUE(w >= 0 && w < 20 && !seen[w], "valid, once"))
			seen[w] = true;
	}
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(seen[i], i != 5, "exactly the appends that completed ok");
	jt_list_free(&got);
	queue_free(q);
}

/* A private mount namespace with a 128 KiB tmpfs: the mount dies with this test process. */
static bool small_disk(const char *dir)
{
	if (geteuid() != 0) {
		test__skip("needs root to mount a small tmpfs");
		return false;
	}
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=128k")) {
		test__skip("cannot mount a tmpfs: %s", strerror(errno));
		return false;
	}
	return true;
}

struct slot {
	struct jt_wait *w;
	int err, done;
};

static void slot_done(void *arg, int err, uint64_t id)
{
	struct slot *s = arg;

	s->err = err;
	s->done = 1;
	jt_done(s->w, err, id);
}

static void subtest_full_disk(void)
{
	static struct slot slots[8000];
	const char *dir = jt_dir("tmpfs");
	struct journal_cfg cfg = {.dir = dir, .segment_bytes = 32 * 1024};
	struct jt_wait w = JT_WAIT_INIT;
	struct jt_list got = {0};
	struct queue *q;
	int n = 0, ok = 0, nospc = 0;
	char buf[256];

	if (!small_disk(dir))
		return;
	q = journal_open(&cfg);
	if (!ASSERT_OK_PTR(q, "open"))
		return;
	/* ~100-byte records, 8 at a time, until the disk has said ENOSPC 20 times */
	while (nospc < 20 && n < 8000) {
		int start = n;

		for (int k = 0; k < 8; k++, n++) {
			struct queue_rec r = {
			    .class = n % 3, .tenant = 100 + n % 5, .attempts = n % 4, .data = buf};

			r.len = jt_payload(buf, sizeof(buf), n);
			slots[n].w = &w;
			ASSERT_OK(queue_append(q, &r, slot_done, &slots[n]),
				  "accepted for writing");
		}
		jt_wait_for(&w, n);
		for (int i = start; i < n; i++) {
			ok += !slots[i].err;
			nospc += slots[i].err == -ENOSPC;
			ASSERT_TRUE(!slots[i].err || slots[i].err == -ENOSPC, "only ENOSPC");
		}
	}
	ASSERT_GE(nospc, 20, "the disk filled up");
	ASSERT_GT(ok, 50, "appends succeeded before that");
	queue_free(q);
	q = journal_open(&cfg);
	if (!ASSERT_OK_PTR(q, "reopen on the full disk"))
		return;
	queue_replay(q, jt_collect, &got);
	ASSERT_EQ(got.n, (size_t)ok, "exactly the appends that completed ok came back");
	for (size_t i = 0; i < got.n; i++) {
		int k = jt_which(got.e[i]);

		if (!ASSERT_TRUE(k >= 0 && k < n && !slots[k].err,
				 "an ok append, never a failed one"))
			break;
	}
	/* ack everything: the segments go, the space comes back */
	for (size_t i = 0; i < got.n; i++)
		queue_ack(q, got.e[i]);
	got.n = 0;
	usleep(300000); /* acks themselves may wait out one ENOSPC backoff */
	ASSERT_OK(jt_append_sync(q, 9999), "appends work again once space is freed");
	free(got.e);
	queue_free(q);
}

/* Child: append forever (64 in flight), report every id whose done said ok on the pipe. */
static void kill_child(const char *dir, int fd)
{
	struct journal_cfg cfg = {.dir = dir};
	struct queue *q = journal_open(&cfg);
	struct jt_wait w = JT_WAIT_INIT;
	char buf[256];

	if (!q)
		_exit(2);
	for (unsigned i = 0;; i++) {
		struct queue_rec r = {
		    .class = i % 3, .tenant = 100 + i % 5, .attempts = i % 4, .data = buf};

		r.len = jt_payload(buf, sizeof(buf), i);
		while (queue_append(q, &r, jt_done, &w))
			usleep(1000);
		if (i % 64 == 63) {
			jt_wait_for(&w, (int)i + 1);
			/* done callbacks already ran for [i-63, i]: report them (ids = i + 1) */
			for (unsigned k = i - 63; k <= i; k++)
				if (write(fd, &k, sizeof(k)) != sizeof(k))
					_exit(3);
		}
	}
}

static void subtest_sigkill(void)
{
	for (int round = 0; round < 3; round++) {
		char name[32];
		const char *dir;
		struct jt_list got = {0};
		static uint8_t seen[1 << 20];
		unsigned k, reported = 0, max_rep = 0;
		unsigned target =
		    200 + (unsigned)(getpid() * 7919u + round * 104729u) % (3000 * (round + 1));
		int fds[2], status;
		struct queue *q;
		pid_t pid;

		snprintf(name, sizeof(name), "kill%d", round);
		dir = jt_dir(name);
		if (!ASSERT_OK(pipe(fds), "pipe"))
			return;
		/* room for every report, so the child never blocks on the pipe before the kill */
		fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			kill_child(dir, fds[1]);
		}
		close(fds[1]);
		memset(seen, 0, sizeof(seen));
		/* kill at a pseudo-random point once `target` appends were reported durable */
		while (reported < target && read(fds[0], &k, sizeof(k)) == sizeof(k) &&
		       k < sizeof(seen)) {
			seen[k] = 1;
			reported++;
			max_rep = k > max_rep ? k : max_rep;
		}
		kill(pid, SIGKILL);
		while (read(fds[0], &k, sizeof(k)) == sizeof(k) && k < sizeof(seen)) {
			seen[k] = 1;
			reported++;
			max_rep = k > max_rep ? k : max_rep;
		}
		close(fds[0]);
		waitpid(pid, &status, 0);
		q = journal_open(&(struct journal_cfg){.dir = dir});
		if (!ASSERT_OK_PTR(q, "reopen after SIGKILL"))
			return;
		queue_replay(q, jt_collect, &got);
		for (size_t i = 0; i < got.n; i++) {
			int w = jt_which(got.e[i]);

			if (!ASSERT_TRUE(w >= 0 && (size_t)w < sizeof(seen) && seen[w] != 2,
					 "a real append, once"))
				break;
			seen[w] = 2;
		}
		for (k = 0; k <= max_rep && reported; k++)
			if (!ASSERT_NEQ(seen[k], 1, "every reported-durable append came back"))
				break;
		printf("round %d: %u reported durable, %zu replayed\n", round, reported, got.n);
		ASSERT_GT(reported, 0, "the child got some appends through");
		jt_list_free(&got);
		queue_free(q);
	}
}

void test_journal_faults(void)
{
	if (test__start_subtest("group_commit"))
		subtest_group_commit();
	if (test__start_subtest("group_delay"))
		subtest_group_delay();
	if (test__start_subtest("completion_order"))
		subtest_completion_order();
	if (test__start_subtest("eio"))
		subtest_eio();
	if (test__start_subtest("full_disk_tmpfs"))
		subtest_full_disk();
	if (test__start_subtest("sigkill"))
		subtest_sigkill();
}
