// SPDX-License-Identifier: MIT
/* test_pool.c -- worker pools on a real journal: isolation (a blocked pool does not delay
 * another), in-flight limit with held entries, retry with not-before without blocking a
 * worker, pause/resume per class, retirement by --max-messages (exit 0) and --max-age, and
 * the done hook a pool's owner counts with (once per entry, may drain, waits on unhook), and
 * class weights swapped at run time (the overload controller's shares) */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "work/pool.h"
#include "test_progs.h"
#include "journal_util.h"

/* Shared state of one test's handlers. */
struct pt {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int gate_open;
	int ran[8]; /* handler calls per tenant */
	int done_total;
	struct queue_entry *held[64]; /* POOL_HELD entries */
	int nheld, max_held;
	int order[64], norder; /* tenant 5 retry test: order of runs */
	uint64_t retry_at, rerun_at, rerun_attempts;
};

static struct pt S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Wait (max 10 s) until *counter >= n; returns whether it got there. */
static bool pt_wait(int *counter, int n)
{
	struct timespec dl = clock_deadline(CLOCK_REALTIME, 10 * CLOCK_NS_PER_SEC);
	bool ok = true;

	pthread_mutex_lock(&S.lock);
	while (*counter < n && ok)
		ok = !pthread_cond_timedwait(&S.cv, &S.lock, &dl);
	ok = *counter >= n;
	pthread_mutex_unlock(&S.lock);
	return ok;
}

static void pt_bump(int *counter)
{
	pthread_mutex_lock(&S.lock);
	(*counter)++;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
}

/* Append n entries of tenant/class and wait until all are durable. */
static int pt_append(struct queue *q, uint32_t tenant, uint32_t class, int n)
{
	struct jt_wait w = JT_WAIT_INIT;
	struct queue_rec r = {.class = class, .tenant = tenant, .len = 4, .data = "evnt"};

	for (int i = 0; i < n; i++) {
		int err = queue_append(q, &r, jt_done, &w);

		if (err)
			return err;
	}
	jt_wait_for(&w, n);
	return w.failed ? w.last_err : 0;
}

static uint32_t route_by_tenant(void *arg, const struct queue_entry *e)
{
	return e->tenant % 2;
}

static enum pool_verdict h_count(void *arg, struct pool *p, struct queue_entry *e)
{
	pt_bump(&S.ran[e->tenant % 8]);
	return POOL_ACK;
}

static enum pool_verdict h_gated(void *arg, struct pool *p, struct queue_entry *e)
{
	pthread_mutex_lock(&S.lock);
	S.ran[e->tenant % 8]++;
	pthread_cond_broadcast(&S.cv);
	while (!S.gate_open)
		pthread_cond_wait(&S.cv, &S.lock);
	S.done_total++;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
	return POOL_ACK;
}

struct rig {
	struct queue *q;
	struct pool *pools[2];
	struct pool_set *set;
};

static bool rig_up(struct rig *r, const char *name, const struct pool_cfg *a,
		   const struct pool_cfg *b, const struct pool_set_cfg *extra)
{
	struct journal_cfg jc = {.dir = jt_dir(name)};
	struct pool_set_cfg sc = extra ? *extra : (struct pool_set_cfg){0};

	memset(r, 0, sizeof(*r));
	r->q = journal_open(&jc);
	if (!ASSERT_OK_PTR(r->q, "journal"))
		return false;
	r->pools[0] = pool_new(a, r->q);
	r->pools[1] = b ? pool_new(b, r->q) : NULL;
	if (!ASSERT_OK_PTR(r->pools[0], "pool a") || (b && !ASSERT_OK_PTR(r->pools[1], "pool b")))
		return false;
	sc.queue = r->q;
	sc.pools = r->pools;
	sc.npools = b ? 2 : 1;
	sc.route = route_by_tenant;
	r->set = pool_set_new(&sc);
	return ASSERT_OK_PTR(r->set, "pool set");
}

static void rig_down(struct rig *r)
{
	pthread_mutex_lock(&S.lock);
	S.gate_open = 1;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
	pool_set_free(r->set);
	pool_free(r->pools[0]);
	pool_free(r->pools[1]);
	queue_free(r->q);
}

static void subtest_isolation(void)
{
	struct pool_cfg slow = {.name = "crm", .threads = 1, .max_inflight = 1, .handler = h_gated};
	struct pool_cfg fast = {.name = "db", .threads = 2, .handler = h_count};
	struct pool_stats st;
	struct rig r;

	memset(&S.ran, 0, sizeof(S.ran));
	S.gate_open = 0;
	if (!rig_up(&r, "iso", &slow, &fast, NULL))
		goto out;
	/* tenant 0 -> the slow pool, whose handler blocks; tenant 1 -> the fast pool */
	ASSERT_OK(pt_append(r.q, 0, 1, 5), "append slow");
	ASSERT_TRUE(pt_wait(&S.ran[0], 1), "slow pool blocked in its handler");
	ASSERT_OK(pt_append(r.q, 1, 1, 200), "append fast");
	ASSERT_TRUE(pt_wait(&S.ran[1], 200), "fast pool ran everything meanwhile");
	pool_stats(r.pools[0], &st);
	ASSERT_EQ(st.in_flight, 1, "slow pool full");
	ASSERT_EQ(st.queued, 4, "its entries wait in its own dispatcher");
	ASSERT_EQ(S.done_total, 0, "slow pool still blocked");
	pthread_mutex_lock(&S.lock);
	S.gate_open = 1;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
	ASSERT_TRUE(pt_wait(&S.done_total, 5), "slow pool drains after release");
out:
	rig_down(&r);
}

static enum pool_verdict h_hold(void *arg, struct pool *p, struct queue_entry *e)
{
	pthread_mutex_lock(&S.lock);
	S.held[S.nheld++] = e;
	if (S.nheld > S.max_held)
		S.max_held = S.nheld;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
	return POOL_HELD;
}

static void subtest_inflight_limit(void)
{
	struct pool_cfg c = {.name = "ai", .threads = 4, .max_inflight = 3, .handler = h_hold};
	struct pool_stats st;
	struct rig r;
	int done = 0;

	S.nheld = S.max_held = 0;
	if (!rig_up(&r, "inflight", &c, NULL, NULL))
		goto out;
	ASSERT_OK(pt_append(r.q, 0, 0, 20), "append");
	while (done < 20) {
		struct queue_entry *e;

		if (!ASSERT_TRUE(pt_wait(&S.nheld, done + 3 > 20 ? 20 - done : 3),
				 "held up to limit"))
			goto out;
		usleep(20000); /* give a 4th thread the chance to break the limit */
		pool_stats(r.pools[0], &st);
		ASSERT_LE(st.in_flight, 3, "in-flight within the limit");
		pthread_mutex_lock(&S.lock);
		e = S.held[--S.nheld];
		pthread_mutex_unlock(&S.lock);
		/* the Postgres writer's role: ack after its COMMIT, from its own thread */
		ASSERT_OK(pool_done(r.pools[0], e), "pool_done acks");
		done++;
	}
	ASSERT_EQ(S.max_held, 3, "exactly max_inflight held at once");
	pool_stats(r.pools[0], &st);
	ASSERT_EQ(st.done, 20, "all done");
	ASSERT_GT(st.full_waits, 0, "dispatch waited for slots");
out:
	rig_down(&r);
}

static enum pool_verdict h_retry(void *arg, struct pool *p, struct queue_entry *e)
{
	pthread_mutex_lock(&S.lock);
	S.order[S.norder++] = (int)e->tenant;
	if (e->tenant == 4 && e->attempts == 0) {
		S.retry_at = clock_real_ns();
		pthread_mutex_unlock(&S.lock);
		pool_retry(p, e, 300 * 1000000ull);
		return POOL_HELD;
	}
	if (e->tenant == 4) {
		S.rerun_at = clock_real_ns();
		S.rerun_attempts = e->attempts;
	}
	S.done_total++;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
	return POOL_ACK;
}

static void subtest_retry_not_before(void)
{
	struct pool_cfg c = {.name = "crm", .threads = 1, .handler = h_retry};
	struct queue_stats qs;
	struct pool_stats st;
	struct rig r;

	S.norder = S.done_total = 0;
	S.rerun_at = 0;
	if (!rig_up(&r, "retry", &c, NULL, NULL))
		goto out;
	/* all 21 wait in the pool (normal paused) so slow appends cannot race the delay */
	ASSERT_OK(pool_pause_class(r.pools[0], 1), "pause normal");
	ASSERT_OK(pt_append(r.q, 4, 1, 1), "append the failing one");
	ASSERT_OK(pt_append(r.q, 2, 1, 20), "append 20 others");
	for (int i = 0; i < 1000; i++) {
		pool_stats(r.pools[0], &st);
		if (st.queued == 21)
			break;
		usleep(10000);
	}
	ASSERT_EQ(st.queued, 21, "all queued in the pool");
	ASSERT_OK(pool_resume_class(r.pools[0], 1), "resume");
	if (!ASSERT_TRUE(pt_wait(&S.done_total, 21), "all ran"))
		goto out;
	ASSERT_EQ(S.order[0], 4, "the failing one ran first");
	ASSERT_EQ(S.order[S.norder - 1], 4, "its retry ran last: the one worker was not blocked");
	ASSERT_EQ(S.norder, 22, "22 runs");
	ASSERT_GE(S.rerun_at, S.retry_at + 300 * 1000000ull, "not before the retry delay");
	ASSERT_EQ(S.rerun_attempts, 1, "attempts incremented");
	pool_stats(r.pools[0], &st);
	ASSERT_EQ(st.retried, 1, "retry counted");
	queue_stats(r.q, &qs);
	ASSERT_EQ(qs.attempt_notes, 1, "the retry's attempt count was given to the journal");
out:
	rig_down(&r);
}

static void subtest_pause_resume(void)
{
	struct pool_cfg c = {.name = "report", .threads = 1, .handler = h_count};
	struct dispatch_stats ds;
	struct pool_stats st;
	struct rig r;

	memset(&S.ran, 0, sizeof(S.ran));
	if (!rig_up(&r, "pause", &c, NULL, NULL))
		goto out;
	ASSERT_OK(pool_set_pause_class(r.set, 2, true), "pause low in every pool");
	ASSERT_EQ(pool_pause_class(r.pools[0], 3), -EINVAL, "bad class");
	ASSERT_OK(pt_append(r.q, 2, 2, 5), "append low");    /* tenant 2: low */
	ASSERT_OK(pt_append(r.q, 4, 1, 5), "append normal"); /* tenant 4: normal */
	ASSERT_TRUE(pt_wait(&S.ran[4], 5), "normal runs while low is paused");
	usleep(50000);
	pool_stats(r.pools[0], &st);
	ASSERT_EQ(S.ran[2], 0, "low did not run");
	ASSERT_EQ(st.dispatch.cls[2].depth, 5, "low still queued (and counted in lag)");
	ASSERT_GT(st.dispatch.cls[2].lag_ns, 0, "low lag grows while paused");
	pool_set_class_stats(r.set, 0, &ds);
	ASSERT_EQ(ds.cls[2].depth, 5, "set-wide low depth");
	ASSERT_GE(ds.cls[2].lag_ns, 50 * 1000000ull, "set-wide low lag >= the time paused");
	ASSERT_EQ(ds.cls[1].depth, 0, "normal drained");
	ASSERT_EQ(ds.cls[1].dispatched, 5, "normal dispatched");
	ASSERT_OK(pool_resume_class(r.pools[0], 2), "resume low");
	ASSERT_TRUE(pt_wait(&S.ran[2], 5), "low runs after resume");
out:
	rig_down(&r);
}

/* Gated like h_gated, and records the class of every entry in run order. */
static enum pool_verdict h_gated_order(void *arg, struct pool *p, struct queue_entry *e)
{
	pthread_mutex_lock(&S.lock);
	if (S.norder < 64)
		S.order[S.norder++] = (int)e->class;
	pthread_mutex_unlock(&S.lock);
	return h_gated(arg, p, e);
}

/* One thread held at the gate by a first entry while 10 critical and 10 normal queue up; with
 * the EMERGENCY weights 100/0/0 set meanwhile, every critical runs before any normal. */
static void subtest_class_weights(void)
{
	struct pool_cfg c = {.name = "ai", .threads = 1, .handler = h_gated_order};
	const uint32_t emergency[3] = {100, 0, 0};
	struct pool_stats st = {0};
	struct rig r;

	memset(&S.ran, 0, sizeof(S.ran));
	S.gate_open = 0;
	S.norder = 0;
	S.done_total = 0;
	if (!rig_up(&r, "weights", &c, NULL, NULL))
		goto out;
	pool_stats(r.pools[0], &st);
	ASSERT_EQ(st.weight[0] * 10000 + st.weight[1] * 100 + st.weight[2], 702505,
		  "starts at 70/25/5");
	ASSERT_OK(pt_append(r.q, 4, 1, 1), "first entry");
	ASSERT_TRUE(pt_wait(&S.ran[4], 1), "it holds the only thread");
	ASSERT_OK(pt_append(r.q, 2, 1, 10), "append normal");
	ASSERT_OK(pt_append(r.q, 0, 0, 10), "append critical");
	for (int i = 0; i < 200 && st.queued < 20; i++, usleep(10000))
		pool_stats(r.pools[0], &st);
	ASSERT_EQ(st.queued, 20, "all queued behind the gate");
	ASSERT_EQ(pool_set_class_weights(r.pools[0], (uint32_t[3]){0, 0, 0}), -EINVAL,
		  "zero weights refused");
	ASSERT_OK(pool_set_class_weights(r.pools[0], emergency), "100/0/0");
	pool_stats(r.pools[0], &st);
	ASSERT_EQ(st.weight[0], 100, "stats show the weights in force");
	pthread_mutex_lock(&S.lock);
	S.gate_open = 1;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
	ASSERT_TRUE(pt_wait(&S.done_total, 21), "all ran");
	for (int i = 1; i <= 10; i++)
		ASSERT_EQ(S.order[i], 0, "critical first");
	for (int i = 11; i <= 20; i++)
		ASSERT_EQ(S.order[i], 1, "then normal");
out:
	rig_down(&r);
}

static int retired_flag, done_at_retire;

static void on_retire(void *arg)
{
	pthread_mutex_lock(&S.lock);
	done_at_retire = S.done_total;
	pthread_mutex_unlock(&S.lock);
	pt_bump(&retired_flag);
}

/* In a child process: serve with max_messages 10 until retired, then exit 0 like sluiced. */
static void retire_child(const char *dir, int fd)
{
	struct pool_cfg c = {.name = "db", .threads = 2, .handler = h_count};
	struct journal_cfg jc = {.dir = dir};
	struct pool_set_cfg sc = {.max_messages = 10, .retire = on_retire};
	struct queue *q = journal_open(&jc);
	struct pool *p;
	struct pool_set *s;
	uint64_t done;

	if (!q || pt_append(q, 0, 1, 30))
		_exit(2);
	p = pool_new(&c, q);
	sc.queue = q;
	sc.pools = &p;
	sc.npools = 1;
	s = p ? pool_set_new(&sc) : NULL;
	if (!s || !pt_wait(&retired_flag, 1))
		_exit(3);
	done = pool_set_done(s);
	pool_set_free(s);
	pool_free(p);
	queue_free(q); /* the acks become durable here */
	if (write(fd, &done, sizeof(done)) != sizeof(done))
		_exit(4);
	_exit(0);
}

static void subtest_retire_max_messages(void)
{
	const char *dir = jt_dir("retire");
	struct journal_cfg jc = {.dir = dir};
	struct jt_list got = {0};
	uint64_t done = 0;
	struct queue *q;
	int fds[2], status = -1;
	pid_t pid;

	if (!ASSERT_OK(pipe(fds), "pipe"))
		return;
	pid = fork();
	if (pid == 0)
		retire_child(dir, fds[1]);
	close(fds[1]);
	ASSERT_EQ(read(fds[0], &done, sizeof(done)), sizeof(done), "child reported");
	close(fds[0]);
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker exited 0");
	ASSERT_GE(done, 10, "retired after at least max_messages");
	ASSERT_LT(done, 30, "and stopped taking work");
	q = journal_open(&jc);
	if (!ASSERT_OK_PTR(q, "reopen"))
		return;
	queue_replay(q, jt_collect, &got);
	ASSERT_EQ(got.n + done, 30, "the next process gets exactly the rest");
	jt_list_free(&got);
	queue_free(q);
}

static void *late_done(void *arg)
{
	struct pool *p = arg;

	usleep(300000);
	pthread_mutex_lock(&S.lock);
	while (S.nheld) {
		struct queue_entry *e = S.held[--S.nheld];

		S.done_total++; /* before pool_done: retirement must see all of them counted */
		pthread_mutex_unlock(&S.lock);
		pool_done(p, e);
		pthread_mutex_lock(&S.lock);
	}
	pthread_mutex_unlock(&S.lock);
	return NULL;
}

static void subtest_retire_max_age(void)
{
	struct pool_cfg c = {.name = "ai", .threads = 2, .max_inflight = 4, .handler = h_hold};
	struct pool_set_cfg sc = {.max_age_ns = 50 * 1000000ull, .retire = on_retire};
	struct pool_stats st;
	struct rig r;
	pthread_t th;

	S.nheld = S.max_held = S.done_total = 0;
	retired_flag = 0;
	if (!rig_up(&r, "maxage", &c, NULL, &sc))
		goto out;
	ASSERT_OK(pt_append(r.q, 0, 1, 10), "append");
	ASSERT_TRUE(pt_wait(&S.nheld, 4), "four held in flight");
	pthread_create(&th, NULL, late_done, r.pools[0]);
	ASSERT_TRUE(pt_wait(&retired_flag, 1), "retired by age");
	pthread_join(th, NULL);
	ASSERT_EQ(done_at_retire, 4, "only after the held work was done");
	pool_stats(r.pools[0], &st);
	ASSERT_EQ(st.in_flight, 0, "nothing in flight at retirement");
	ASSERT_TRUE(pool_set_retired(r.set), "set reports retired");
out:
	rig_down(&r);
}

/* A pool with its own done hook and no pool_set: the hook runs once per finished entry. */
struct hook_rec {
	struct pool *p; /* the pool the hook was called for */
	int calls;
	int drain_at;  /* at this call, the hook runs pool_drain(p, 0) */
	int drain_ret; /* and what it returned */
	bool block;    /* the first call waits for S.gate_open */
};

static void on_done_hook(void *arg, struct pool *p)
{
	struct hook_rec *h = arg;
	bool drain;

	pthread_mutex_lock(&S.lock);
	h->p = p;
	drain = ++h->calls == h->drain_at;
	pthread_cond_broadcast(&S.cv);
	while (h->block && h->calls == 1 && !S.gate_open)
		pthread_cond_wait(&S.cv, &S.lock);
	pthread_mutex_unlock(&S.lock);
	if (drain) {
		int ret = pool_drain(p, 0);

		pthread_mutex_lock(&S.lock);
		h->drain_ret = ret;
		pthread_mutex_unlock(&S.lock);
	}
}

/* One thread (so entries finish one by one), n durable entries submitted straight to it. */
static struct pool *hook_pool_up(const char *name, struct queue **q, struct hook_rec *h, int n)
{
	struct pool_cfg c = {.name = "db", .threads = 1, .handler = h_count};
	struct journal_cfg jc = {.dir = jt_dir(name)};
	struct queue_entry *batch[16];
	struct pool *p;
	int got = 0;

	memset(&S.ran, 0, sizeof(S.ran));
	*q = journal_open(&jc);
	if (!ASSERT_OK_PTR(*q, "journal") || !ASSERT_OK(pt_append(*q, 0, 1, n), "append"))
		return NULL;
	p = pool_new(&c, *q);
	if (!ASSERT_OK_PTR(p, "pool"))
		return NULL;
	pool_on_done(p, on_done_hook, h);
	while (got < n) {
		int k = queue_next(*q, batch, 16, 1000);

		if (!ASSERT_GT(k, 0, "durable entries to submit"))
			break;
		for (int i = 0; i < k; i++)
			ASSERT_OK(pool_submit(p, batch[i]), "submit");
		got += k;
	}
	return p;
}

static void subtest_done_hook_drain(void)
{
	struct hook_rec h = {.drain_at = 3, .drain_ret = 1}, seen;
	struct pool_stats st;
	struct queue *q = NULL;
	struct pool *p = hook_pool_up("hookdrain", &q, &h, 10);

	if (!p)
		goto out;
	ASSERT_TRUE(pt_wait(&h.calls, 3), "one hook call per finished entry");
	usleep(100000); /* give the worker the chance to take a fourth entry */
	pool_stats(p, &st);
	pthread_mutex_lock(&S.lock);
	seen = h;
	pthread_mutex_unlock(&S.lock);
	ASSERT_EQ(seen.calls, 3, "no entry finished after the hook's pool_drain");
	ASSERT_EQ(st.done, 3, "the pool stopped taking work");
	ASSERT_EQ(st.queued, 7, "the rest stays queued, un-acked");
	ASSERT_EQ(st.in_flight, 0, "the hook's entry freed its slot after the hook");
	ASSERT_EQ(seen.drain_ret, -ETIMEDOUT, "the slot is still taken while the hook runs");
	ASSERT_TRUE(seen.p == p, "the hook is told its pool");
out:
	pool_free(p);
	queue_free(q);
}

static int unhooked; /* pool_on_done(p, NULL) returned */

static void *unhook(void *arg)
{
	struct pool *p = arg;

	pool_on_done(p, NULL, NULL);
	__atomic_store_n(&unhooked, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void subtest_done_hook_unhook(void)
{
	struct hook_rec h = {.block = true};
	struct queue *q = NULL;
	struct pool *p;
	pthread_t th;
	bool started = false;
	int calls;

	S.gate_open = 0;
	unhooked = 0;
	p = hook_pool_up("hookunhook", &q, &h, 5);
	if (!p || !ASSERT_TRUE(pt_wait(&h.calls, 1), "the first hook call is running"))
		goto out;
	started = !pthread_create(&th, NULL, unhook, p);
	if (!ASSERT_TRUE(started, "unhook thread"))
		goto out;
	usleep(50000); /* give pool_on_done the chance to return too early */
	ASSERT_FALSE(__atomic_load_n(&unhooked, __ATOMIC_ACQUIRE),
		     "pool_on_done waits while the old hook runs");
	pthread_mutex_lock(&S.lock);
	S.gate_open = 1;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
	pthread_join(th, NULL);
	started = false;
	ASSERT_TRUE(unhooked, "and returns once it did");
	ASSERT_TRUE(pt_wait(&S.ran[0], 5), "the pool goes on without a hook");
	pthread_mutex_lock(&S.lock);
	calls = h.calls;
	pthread_mutex_unlock(&S.lock);
	ASSERT_EQ(calls, 1, "the hook is not called once cleared");
out:
	if (started) {
		pthread_mutex_lock(&S.lock);
		S.gate_open = 1;
		pthread_cond_broadcast(&S.cv);
		pthread_mutex_unlock(&S.lock);
		pthread_join(th, NULL);
	}
	pool_free(p);
	queue_free(q);
}

void test_pool(void)
{
	if (test__start_subtest("isolation"))
		subtest_isolation();
	if (test__start_subtest("inflight_limit"))
		subtest_inflight_limit();
	if (test__start_subtest("retry_not_before"))
		subtest_retry_not_before();
	if (test__start_subtest("class_weights"))
		subtest_class_weights();
	if (test__start_subtest("pause_resume"))
		subtest_pause_resume();
	if (test__start_subtest("retire_max_messages"))
		subtest_retire_max_messages();
	if (test__start_subtest("retire_max_age"))
		subtest_retire_max_age();
	if (test__start_subtest("done_hook_drain"))
		subtest_done_hook_drain();
	if (test__start_subtest("done_hook_unhook"))
		subtest_done_hook_unhook();
}
