// SPDX-License-Identifier: MIT
/* test_teardown.c -- shutdown waits for queue completions (issue 12)
 *
 * A queue completion runs on the journal's flusher thread and points at the producer that
 * appended: the Redis duplicate fast path (dedupe.c) and the dead-letter replayer (dlq.c).
 * Freeing either while one of its appends is still waiting for its fdatasync let the
 * completion write into freed memory (seen under ASan with a slow disk). Here the journal's
 * fdatasync hook holds the first commit for 300 ms, the producer is freed while its append
 * is inside that commit, and the free must not return before the completion ran: the
 * caller's callback has been called (dedupe), or the completion's own effect -- the replayed
 * row stamped -- is there (dlq). No timing is asserted; the slow sync only makes the old
 * ordering fail every time.
 */
#include <libpq-fe.h>
#include <string.h>
#include <unistd.h>

#include "control/dlq.h"
#include "ingress/dedupe.h"
#include "lib/redis.h"
#include "queue/journal/journal.h"
#include "queue/journal/journal_int.h"
#include "sink/pg/migrate.h"
#include "pgharness.h"
#include "test_progs.h"

/* Journal I/O hooks: note when an ENTRY record was written; hold that commit's fdatasync. */
struct slow_disk {
	int written; /* atomic */
	int syncs_done;
	int hold_ms;
};

static ssize_t slow_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	struct slow_disk *s = ctx;
	struct jrec_hdr h;
	ssize_t n = pwrite(fd, buf, len, off);

	if (n <= 0 || len < sizeof(h))
		return n;
	memcpy(&h, buf, sizeof(h));
	if (h.type == JREC_ENTRY)
		__atomic_store_n(&s->written, 1, __ATOMIC_RELEASE);
	return n;
}

static int slow_sync(void *ctx, int fd)
{
	struct slow_disk *s = ctx;

	if (__atomic_load_n(&s->written, __ATOMIC_ACQUIRE) && !s->syncs_done)
		usleep((useconds_t)s->hold_ms * 1000);
	__atomic_add_fetch(&s->syncs_done, 1, __ATOMIC_RELEASE);
	return fdatasync(fd);
}

static struct queue *open_slow(const char *name, struct slow_disk *s)
{
	char dir[400];
	struct journal_cfg cfg = {.dir = dir, .io = {slow_pwrite, slow_sync, s}};

	snprintf(dir, sizeof(dir), "%s/%s", test__tmpdir(), name);
	return journal_open(&cfg);
}

/* Wait (bounded) until the append is inside the held commit. */
static bool wait_written(struct slow_disk *s)
{
	for (int i = 0; i < 5000 && !__atomic_load_n(&s->written, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	return __atomic_load_n(&s->written, __ATOMIC_ACQUIRE);
}

/* dedupe's next hop, as sluiced.c's journal adapter: the body goes to the queue. */
static int to_queue(void *q, const struct ingress_event *ev, ingress_durable_fn *done, void *arg)
{
	struct queue_rec r = {.class = ev->class, .len = (uint32_t)ev->body_len, .data = ev->body};

	return queue_append(q, &r, done, arg);
}

static void on_answer(void *arg, int err, uint64_t id)
{
	__atomic_store_n((int *)arg, err ? -1 : 1, __ATOMIC_RELEASE);
}

static void subtest_dedupe(void)
{
	struct slow_disk disk = {.hold_ms = 300};
	struct queue *q = open_slow("dedupe", &disk);
	struct redis_config rc;
	struct redis *redis = NULL;
	struct dedupe *d = NULL;
	const char *body = "{\"type\":\"t\",\"idempotency_key\":\"k\",\"payload\":{}}";
	struct ingress_event ev = {.tenant = "acme",
				   .class = SLUICE_CLASS_NORMAL,
				   .type = "t",
				   .idempotency_key = "k",
				   .body = body,
				   .body_len = strlen(body)};
	char err[128];
	int answered = 0;

	if (!ASSERT_OK_PTR(q, "journal"))
		return;
	/* Redis is down (nothing listens on port 1): the check is skipped, the event appended */
	redis_config_default(&rc);
	redis_config_set(&rc, "addr", "127.0.0.1:1", err, sizeof(err));
	redis = redis_new(&rc);
	d = redis ? dedupe_new(redis, 1, 60000, to_queue, q) : NULL;
	if (!ASSERT_OK_PTR(d, "dedupe"))
		goto out;
	if (!ASSERT_OK(dedupe_append(d, &ev, on_answer, &answered), "append") ||
	    !ASSERT_TRUE(wait_written(&disk), "the append reached the disk"))
		goto out;
	dedupe_free(d);
	d = NULL;
	ASSERT_EQ(__atomic_load_n(&answered, __ATOMIC_ACQUIRE), 1,
		  "dedupe_free returned only after the completion ran");
out:
	dedupe_free(d);
	queue_free(q);
	redis_free(redis);
}

static void subtest_dlq(void)
{
	struct slow_disk disk = {.hold_ms = 300};
	struct pgh_server pg = {0};
	struct dlq_replayer *r = NULL;
	struct queue *q = NULL;
	char err[256];

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&pg, test__tmpdir(), NULL), "postgres") ||
	    !ASSERT_GE(pg_migrate_conninfo(pg.conninfo, err, sizeof(err)), 0, "schema"))
		goto out;
	ASSERT_OK(
	    pgh_psql(&pg, NULL, 0,
		     "INSERT INTO dead_letters (tenant, idempotency_key, step, reason, attempts, "
		     "last_error, payload, received_at, replay_requested_at) VALUES ('acme', "
		     "'k1', 'call:crm', 'retries exhausted', 3, 'down', convert_to('acme' || "
		     "chr(10) || '{\"type\":\"t\",\"idempotency_key\":\"k1\",\"payload\":{}}', "
		     "'UTF8'), now(), now())"),
	    "a dead letter asked to be replayed");
	q = open_slow("dlq", &disk);
	r = q ? dlq_replayer_new(pg.conninfo, q, 10) : NULL;
	if (!ASSERT_OK_PTR(r, "replayer") ||
	    !ASSERT_TRUE(wait_written(&disk), "the replay reached the disk"))
		goto out;
	dlq_replayer_free(r);
	r = NULL;
	ASSERT_EQ(
	    pgh_query_ll(&pg, "SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL"), 1,
	    "dlq_replayer_free returned only after the completion ran (and stamped it)");
out:
	dlq_replayer_free(r);
	queue_free(q);
	pgh_server_destroy(&pg);
}

void test_teardown(void)
{
	if (test__start_subtest("dedupe_waits_for_completions"))
		subtest_dedupe();
	if (test__start_subtest("dlq_waits_for_completions"))
		subtest_dlq();
}
