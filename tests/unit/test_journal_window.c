// SPDX-License-Identifier: MIT
/* test_journal_window.c -- bounded memory: only a window of each class's unacked entries is
 * in RAM while many more wait in the segments, read-back hands out every one of them once and
 * in order per class, recovery streams (nothing loaded at open), attempt notes reach entries
 * read back after a restart, a producer racing a consumer across spill and catch-up, and the
 * automatic byte limit (half the free disk, never below the recovered backlog). */
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "queue/journal/journal.h"
#include "test_progs.h"
#include "journal_util.h"

#define WIN 32

/* Append records from .. from + n - 1 without waiting for each (group commit), then wait. */
static int fill_async(struct queue *q, unsigned from, unsigned n)
{
	struct jt_wait w = JT_WAIT_INIT;
	char buf[256];

	for (unsigned i = from; i < from + n; i++) {
		struct queue_rec r = {.class = i % 3, .tenant = 100 + i % 5, .attempts = i % 4};
		int err;

		r.len = jt_payload(buf, sizeof(buf), i);
		r.data = buf;
		while ((err = queue_append(q, &r, jt_done, &w)) == -ENOSPC)
			usleep(1000);
		if (err)
			return err;
	}
	jt_wait_for(&w, (int)n);
	return w.failed ? w.last_err : 0;
}

/* What a consumer saw: each record once, each class in increasing id order. */
struct seen {
	uint8_t *got;
	unsigned n, max, dup, bad, order;
	uint64_t last_id[3];
};

static void seen_add(struct seen *s, const struct queue_entry *e)
{
	int w = jt_which(e);

	if (w < 0 || (unsigned)w >= s->max) {
		s->bad++;
		return;
	}
	s->dup += s->got[w];
	s->got[w] = 1;
	s->order += e->id <= s->last_id[e->class];
	s->last_id[e->class] = e->id;
	s->n++;
}

/* Consume (and ack) until n entries were seen, checking the window on every step. */
static bool drain_acking(struct queue *q, struct seen *s, unsigned n, uint64_t window)
{
	struct queue_entry *out[16];
	struct queue_stats st;
	bool ok = true;

	while (s->n < n) {
		int k = queue_next(q, out, 16, 2000);

		if (!ASSERT_GT(k, 0, "read-back keeps handing out"))
			return false;
		queue_stats(q, &st);
		ok &= ASSERT_LE(st.resident, 3 * window, "resident within the windows");
		for (int i = 0; i < k; i++) {
			seen_add(s, out[i]);
			queue_ack(q, out[i]);
		}
	}
	return ok;
}

static struct queue *open_win(const char *dir)
{
	struct journal_cfg cfg = {.dir = dir, .segment_bytes = 16384, .window_entries = WIN};

	return journal_open(&cfg);
}

static void subtest_bound(void)
{
	struct seen s = {.got = calloc(3000, 1), .max = 3000};
	struct queue_entry *out[256];
	struct queue_stats st;
	struct queue *q = open_win(jt_dir("bound"));
	int n, held = 0;

	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(fill_async(q, 0, 3000), "3000 appends"))
		goto out;
	queue_stats(q, &st);
	ASSERT_EQ(st.entries, 3000, "all pending");
	ASSERT_LE(st.resident, 3 * WIN, "but at most a window per class in memory");
	ASSERT_GE(st.spilled, 3000 - 3 * WIN, "the rest left on disk");
	ASSERT_EQ(st.window_entries, WIN, "window exported");
	/* a consumer that does not ack gets one window per class, then nothing */
	while ((n = queue_next(q, out + held, 256 - held, 0)) > 0)
		held += n;
	ASSERT_EQ(held, 3 * WIN, "one window per class handed out");
	ASSERT_EQ(queue_next(q, out, 1, 50), 0, "nothing more until acks");
	for (int i = 0; i < held; i++) {
		seen_add(&s, out[i]);
		queue_ack(q, out[i]);
	}
	drain_acking(q, &s, 3000, WIN);
	ASSERT_EQ(s.n, 3000, "every entry handed out");
	ASSERT_EQ(s.dup + s.bad, 0, "once each, intact");
	ASSERT_EQ(s.order, 0, "in append order per class");
	queue_stats(q, &st);
	ASSERT_EQ(st.entries, 0, "all acked");
	ASSERT_EQ(st.resident, 0, "nothing left in memory");
out:
	free(s.got);
	queue_free(q);
}

static void subtest_restart(void)
{
	const char *dir = jt_dir("restart");
	struct seen s = {.got = calloc(3000, 1), .max = 3000};
	struct queue_entry *out[16], *kept[2] = {NULL, NULL};
	uint32_t orig[2] = {0, 0};
	struct jt_list got = {0};
	struct queue_stats st;
	struct queue *q = open_win(dir);
	int k;

	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(fill_async(q, 0, 3000), "3000 appends"))
		goto out;
	/* ack 1000 of them; keep two, retried, never acked */
	while (s.n < 1000 && (k = queue_next(q, out, 16, 2000)) > 0)
		for (int i = 0; i < k; i++) {
			if (!kept[0] || !kept[1]) {
				int x = kept[0] ? 1 : 0;

				kept[x] = out[i];
				orig[x] = out[i]->attempts;
				out[i]->attempts = 9;
				out[i]->not_before_ns = 777;
				queue_note_attempt(q, out[i]);
				continue;
			}
			if (s.n < 1000) {
				seen_add(&s, out[i]);
				queue_ack(q, out[i]);
			} else {
				free(out[i]); /* handed out, never acked: it comes back */
			}
		}
	queue_free(q);
	q = open_win(dir);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	queue_stats(q, &st);
	ASSERT_EQ(st.entries, 2000, "the unacked are pending");
	ASSERT_EQ(st.replayed, 2000, "and counted as recovered");
	ASSERT_EQ(st.resident, 0, "recovery loaded none of them");
	ASSERT_LE(queue_replay(q, jt_collect, &got), 3 * WIN, "replay hands out a window");
	for (size_t i = 0; i < got.n; i++) {
		for (int x = 0; x < 2; x++) {
			if (got.e[i]->id != kept[x]->id)
				continue;
			ASSERT_EQ(got.e[i]->attempts, 9, "attempt note applied");
			ASSERT_EQ(got.e[i]->not_before_ns, 777, "with its time");
			got.e[i]->attempts = orig[x]; /* what jt_which expects */
		}
		seen_add(&s, got.e[i]);
		queue_ack(q, got.e[i]);
	}
	got.n = 0;
	drain_acking(q, &s, 3000, WIN);
	ASSERT_EQ(s.n, 3000, "every unacked entry came back");
	ASSERT_EQ(s.dup + s.bad, 0, "once each: acked ones stay gone");
out:
	free(kept[0]);
	free(kept[1]);
	jt_list_free(&got);
	free(s.got);
	queue_free(q);
}

struct producer {
	struct queue *q;
	int err;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (unsigned i = 0; i < 6000 && !p->err; i += 200)
		p->err = fill_async(p->q, i, 200);
	return NULL;
}

/* The consumer keeps up some of the time and falls behind some of the time, so classes spill
 * and catch up again while appends go on. */
static void subtest_race(void)
{
	struct seen s = {.got = calloc(6000, 1), .max = 6000};
	struct producer p = {.q = open_win(jt_dir("race"))};
	struct queue_entry *out[8];
	pthread_t th;
	int k;

	if (!ASSERT_OK_PTR(p.q, "open"))
		goto out;
	pthread_create(&th, NULL, produce, &p);
	while (s.n < 6000 && (k = queue_next(p.q, out, 8, 2000)) > 0) {
		for (int i = 0; i < k; i++) {
			seen_add(&s, out[i]);
			queue_ack(p.q, out[i]);
		}
		if (s.n % 512 < 8)
			usleep(20000); /* fall behind */
	}
	pthread_join(th, NULL);
	ASSERT_OK(p.err, "appends");
	ASSERT_EQ(s.n, 6000, "every entry handed out");
	ASSERT_EQ(s.dup + s.bad, 0, "once each, intact");
	ASSERT_EQ(s.order, 0, "in append order per class");
out:
	free(s.got);
	queue_free(p.q);
}

static uint64_t half_free(const char *dir)
{
	struct statvfs sv;

	return statvfs(dir, &sv) ? 0 : (uint64_t)sv.f_bavail * sv.f_frsize / 2;
}

static void subtest_auto_bytes(void)
{
	const char *dir = jt_dir("auto");
	struct journal_cfg cfg = {.dir = dir, .max_bytes = JOURNAL_MAX_BYTES_AUTO};
	struct queue_stats st;
	struct queue *q = journal_open(&cfg);
	uint64_t want;

	if (!ASSERT_OK_PTR(q, "open"))
		return;
	queue_stats(q, &st);
	want = half_free(dir);
	want = want < JOURNAL_AUTO_CAP ? want : JOURNAL_AUTO_CAP;
	ASSERT_NEAR_PCT(st.max_bytes, want, 2, "half of the free space");
	queue_free(q);
	/* a nearly full disk: the limit never falls below what is already waiting */
	if (geteuid() != 0) {
		test__skip("needs root to mount a small tmpfs");
		return;
	}
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=1m")) {
		test__skip("cannot mount a tmpfs: %s", strerror(errno));
		return;
	}
	cfg.max_bytes = 0;
	q = journal_open(&cfg);
	if (!ASSERT_OK_PTR(q, "open on the small disk") ||
	    !ASSERT_OK(fill_async(q, 0, 6000), "fill"))
		goto out;
	queue_free(q);
	cfg.max_bytes = JOURNAL_MAX_BYTES_AUTO;
	q = journal_open(&cfg);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	queue_stats(q, &st);
	ASSERT_LT(half_free(dir), st.bytes, "half the free space is less than the backlog");
	ASSERT_EQ(st.max_bytes, st.bytes, "so the limit is the backlog");
out:
	queue_free(q);
	umount(dir);
}

void test_journal_window(void)
{
	if (test__start_subtest("window_bound"))
		subtest_bound();
	if (test__start_subtest("restart_streams"))
		subtest_restart();
	if (test__start_subtest("producer_consumer_race"))
		subtest_race();
	if (test__start_subtest("auto_max_bytes"))
		subtest_auto_bytes();
}
