// SPDX-License-Identifier: MIT
/* journal.c -- the journal queue backend: append, group commit, next/ack, segment reaping
 *
 * append() serializes the record into the pending buffer under the lock and returns; the
 * flusher thread swaps the pending buffer out, writes it (plus one ACK record carrying every
 * id acked since the last batch) with one pwrite at the active segment's end, then one
 * fdatasync, and only then makes the entries visible to next() and runs their done callbacks
 * (err == 0). Appends arriving while a commit is in progress form the next batch, so one
 * fdatasync covers everything appended since the previous one (group commit).
 *
 * Failure: if the write or the fdatasync fails (ENOSPC, EIO), the segment is truncated back to
 * where the batch began and synced again, so nothing of it can reappear after a restart; the
 * whole batch completes with the error (the ingress answers 503). If even that fails, the
 * journal is marked failed and refuses appends with -EIO until restarted (recovery then
 * decides from what is really on disk). Ack-only batches are written without fdatasync: a
 * lost ack only means a redelivery after a power cut (every effect is idempotent); after a
 * process crash the page cache still holds them.
 *
 * Segments: rotation happens between batches when the active segment would pass
 * segment_bytes. A non-active segment is deleted once every entry in it is acked and no older
 * segment that its ack records refer to still exists (else deleting it would resurrect those
 * older entries at replay).
 *
 * Lock order: only j->lock. Callbacks and notify run on the flusher thread without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "queue/journal_int.h"

#define JOURNAL_SEGMENT_DEFAULT (64ull << 20)
#define JOURNAL_RECORD_DEFAULT	(1u << 20)

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int journal_append(struct queue *q, const struct queue_rec *rec, queue_done_fn *done,
			  void *arg)
{
	struct journal *j = (struct journal *)q;
	struct queue_entry *e;
	int err = 0;

	if (!rec || !done || rec->class >= QUEUE_CLASS_MAX || (rec->len && !rec->data))
		return -EINVAL;
	if (rec->len > j->cfg.max_record)
		return -EMSGSIZE;
	e = malloc(sizeof(*e) + rec->len);
	if (!e)
		return -ENOMEM;
	*e = (struct queue_entry){.class = rec->class,
				  .tenant = rec->tenant,
				  .enq_ns = rec->enq_ns ? rec->enq_ns : clock_ns(CLOCK_REALTIME),
				  .attempts = rec->attempts,
				  .len = rec->len};
	memcpy(e->data, rec->data, rec->len);

	pthread_mutex_lock(&j->lock);
	if (j->shut)
		err = -ESHUTDOWN;
	else if (j->failed)
		err = j->failed;
	else if ((j->cfg.max_entries && j->st.entries + 1 > j->cfg.max_entries) ||
		 (j->cfg.max_bytes && j->st.bytes + rec->len > j->cfg.max_bytes)) {
		j->st.refused_full++;
		err = -ENOSPC;
	}
	if (!err)
		err = jarr_grow((void **)&j->pend_done, &j->pend_cap, j->npend,
				sizeof(*j->pend_done));
	if (!err)
		err = jbuf_reserve(&j->pend, sizeof(struct jrec_hdr) + rec->len);
	if (err)
		goto out;
	e->id = j->next_id++;
	jrec_put_entry(&j->pend, e);
	j->pend_done[j->npend++] = (struct jdone){.done = done, .arg = arg, .e = e, .id = e->id};
	j->st.depth[e->class]++;
	j->st.entries++;
	j->st.bytes += e->len;
	j->st.appends++;
	if (j->npend == 1)
		pthread_cond_signal(&j->flush_cv);
out:
	pthread_mutex_unlock(&j->lock);
	if (err)
		free(e);
	return err;
}

static int journal_rotate(struct journal *j, uint64_t base)
{
	struct jseg *old = &j->segs[j->nsegs - 1];
	int fd = old->fd, err;

	/* acks written since the last commit go to disk before their segment is closed */
	err = jio_sync(j, fd);
	if (!err)
		err = jseg_create(j, base);
	if (err)
		return err;
	pthread_mutex_lock(&j->lock);
	j->segs[j->nsegs - 2].fd = -1;
	pthread_mutex_unlock(&j->lock);
	close(fd);
	return 0;
}

/* Undo a failed batch: cut the segment back to off and make the cut durable. */
static int journal_undo(struct journal *j, int fd, uint64_t off, int why)
{
	if (ftruncate(fd, (off_t)off) < 0 || jio_sync(j, fd) < 0) {
		log_error("journal: cannot undo a failed write; refusing appends until restart",
			  "dir=%s seg_offset=%llu err=\"%s\"", j->dir, (unsigned long long)off,
			  strerror(-why));
		return -EIO;
	}
	return 0;
}

/* One batch as the flusher sees it. */
struct jbatch {
	struct jbuf buf;
	struct jdone *done;
	size_t ndone, done_cap;
	struct jack *acks;
	size_t nacks, acks_cap;
	uint64_t sync_ns; /* time in fdatasync */
	int fatal;	  /* the undo failed too */
};

/* Write one batch (entries in buf, plus an ACK record) and commit it. Flusher only. */
static int journal_write_batch(struct journal *j, struct jbatch *b)
{
	struct jseg *act = &j->segs[j->nsegs - 1];
	uint64_t off, t0;
	int err;

	if (b->nacks && (err = jrec_put_acks(&b->buf, b->acks, b->nacks)))
		return err;
	if (b->ndone && act->size && act->size + b->buf.len > j->cfg.segment_bytes) {
		err = journal_rotate(j, b->done[0].id);
		if (err)
			return err;
		act = &j->segs[j->nsegs - 1];
	}
	off = act->size;
	err = jio_write(j, act->fd, b->buf.p, b->buf.len, off);
	if (!err && b->ndone) {
		t0 = clock_ns(CLOCK_MONOTONIC);
		err = jio_sync(j, act->fd);
		b->sync_ns = clock_ns(CLOCK_MONOTONIC) - t0;
	}
	if (err) {
		log_warn("journal: write failed; batch refused", "dir=%s entries=%zu err=\"%s\"",
			 j->dir, b->ndone, strerror(-err));
		b->fatal = journal_undo(j, act->fd, off, err);
		return err;
	}
	act->size += b->buf.len;
	return 0;
}

/* Account a written (err == 0) or refused batch. Lock held. */
static void journal_settle(struct journal *j, struct jbatch *b, int err)
{
	struct jseg *act = &j->segs[j->nsegs - 1];

	if (b->fatal)
		j->failed = b->fatal;
	if (err) {
		/* the acks were not written: keep them for the next batch (a failed or stopping
		 * journal drops them: the restart redelivers those entries, which is safe) */
		for (size_t i = 0; i < b->nacks && !j->failed && !j->stop; i++)
			if (!jarr_grow((void **)&j->acks, &j->acks_cap, j->nacks, sizeof(*j->acks)))
				j->acks[j->nacks++] = b->acks[i];
		for (size_t i = 0; i < b->ndone; i++) {
			struct queue_entry *e = b->done[i].e;

			j->st.depth[e->class]--;
			j->st.entries--;
			j->st.bytes -= e->len;
			j->st.append_errors++;
			free(e);
		}
		return;
	}
	for (size_t i = 0; i < b->nacks; i++)
		if (b->acks[i].type == JREC_ACK && b->acks[i].seg < act->ack_min)
			act->ack_min = b->acks[i].seg;
	for (size_t i = 0; i < b->ndone; i++) {
		struct queue_entry *e = b->done[i].e;

		e->backend = act->base;
		if (j->ready_tail)
			j->ready_tail->next = e;
		else
			j->ready_head = e;
		j->ready_tail = e;
	}
	act->live += b->ndone;
	j->st.write_bytes += b->buf.len;
	if (b->ndone) {
		unsigned bucket = 0;

		while (bucket < 7 && (2ull << bucket) <= b->ndone)
			bucket++;
		j->st.batch_hist[bucket]++;
		j->st.durable += b->ndone;
		j->st.fsyncs++;
		j->st.fsync_ns += b->sync_ns;
		j->st.batch_last = b->ndone;
		if (b->ndone > j->st.batch_max)
			j->st.batch_max = b->ndone;
		pthread_cond_broadcast(&j->ready_cv);
	}
}

#define JSWAP(x, y)                                                                                \
	do {                                                                                       \
		__typeof__(x) _t = (x);                                                            \
		(x) = (y);                                                                         \
		(y) = _t;                                                                          \
	} while (0)

/* Swap the pending batch into b (lock held); b's old buffers become the new pending ones,
 * so steady state allocates nothing. */
static void journal_take(struct journal *j, struct jbatch *b)
{
	b->buf.len = 0;
	JSWAP(j->pend, b->buf);
	JSWAP(j->pend_done, b->done);
	JSWAP(j->pend_cap, b->done_cap);
	b->ndone = j->npend;
	j->npend = 0;
	JSWAP(j->acks, b->acks);
	JSWAP(j->acks_cap, b->acks_cap);
	b->nacks = j->nacks;
	j->nacks = 0;
	b->sync_ns = 0;
	b->fatal = 0;
}

/* After a failed write, wait a little (or for stop) before retrying re-queued acks, so a
 * full disk is not hammered in a loop. Lock held. */
static void journal_backoff(struct journal *j)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_nsec += 100 * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	while (!j->stop && !j->npend &&
	       pthread_cond_timedwait(&j->flush_cv, &j->lock, &dl) != ETIMEDOUT)
		;
}

static void *journal_flusher(void *arg)
{
	struct journal *j = arg;
	struct jbatch b = {0};
	queue_notify_fn *notify;
	void *notify_arg;
	int err;

	pthread_mutex_lock(&j->lock);
	for (;;) {
		while (!j->npend && !j->nacks && !j->stop)
			pthread_cond_wait(&j->flush_cv, &j->lock);
		if (!j->npend && !j->nacks)
			break;
		if (j->cfg.group_delay_us && !j->stop) {
			pthread_mutex_unlock(&j->lock);
			usleep(j->cfg.group_delay_us);
			pthread_mutex_lock(&j->lock);
		}
		journal_take(j, &b);
		pthread_mutex_unlock(&j->lock);
		err = j->failed ? j->failed : journal_write_batch(j, &b);
		pthread_mutex_lock(&j->lock);
		journal_settle(j, &b, err);
		notify = j->notify;
		notify_arg = j->notify_arg;
		pthread_mutex_unlock(&j->lock);
		/* done callbacks in append order, no lock: they may ack other entries */
		for (size_t i = 0; i < b.ndone; i++)
			b.done[i].done(b.done[i].arg, err, b.done[i].id);
		if (!err && b.ndone && notify)
			notify(notify_arg);
		pthread_mutex_lock(&j->lock);
		journal_reap(j);
		if (err && !j->stop)
			journal_backoff(j);
	}
	pthread_mutex_unlock(&j->lock);
	/* clean stop: make the last ack records durable too */
	if (j->nsegs && !j->failed)
		jio_sync(j, j->segs[j->nsegs - 1].fd);
	free(b.buf.p);
	free(b.done);
	free(b.acks);
	return NULL;
}

static int journal_next(struct queue *q, struct queue_entry **out, int max, int timeout_ms)
{
	struct journal *j = (struct journal *)q;
	struct timespec dl;
	int n = 0;

	if (max <= 0 || !out)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout_ms > 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&j->lock);
	while (!j->ready_head && !j->shut && timeout_ms != 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&j->ready_cv, &j->lock);
		else if (pthread_cond_timedwait(&j->ready_cv, &j->lock, &dl) == ETIMEDOUT)
			break;
	}
	while (n < max && j->ready_head) {
		struct queue_entry *e = j->ready_head;

		j->ready_head = e->next;
		if (!j->ready_head)
			j->ready_tail = NULL;
		e->next = NULL;
		out[n++] = e;
	}
	pthread_mutex_unlock(&j->lock);
	return n;
}

static int journal_ack(struct queue *q, struct queue_entry *e)
{
	struct journal *j = (struct journal *)q;
	struct jseg *s;
	int err;

	pthread_mutex_lock(&j->lock);
	s = jseg_find(j, e->backend);
	if (!s || !s->live) {
		pthread_mutex_unlock(&j->lock);
		log_error("journal: ack of an entry the journal does not hold", "id=%llu seg=%llx",
			  (unsigned long long)e->id, (unsigned long long)e->backend);
		return -ENOENT;
	}
	err = jarr_grow((void **)&j->acks, &j->acks_cap, j->nacks, sizeof(*j->acks));
	if (err) {
		pthread_mutex_unlock(&j->lock);
		return err;
	}
	j->acks[j->nacks++] = (struct jack){.id = e->id, .seg = e->backend, .type = JREC_ACK};
	s->live--;
	j->st.depth[e->class]--;
	j->st.entries--;
	j->st.bytes -= e->len;
	j->st.acks++;
	if (j->nacks == 1 && !j->npend)
		pthread_cond_signal(&j->flush_cv);
	pthread_mutex_unlock(&j->lock);
	free(e);
	return 0;
}

static int journal_note_attempt(struct queue *q, const struct queue_entry *e)
{
	struct journal *j = (struct journal *)q;
	int err;

	pthread_mutex_lock(&j->lock);
	err = jarr_grow((void **)&j->acks, &j->acks_cap, j->nacks, sizeof(*j->acks));
	if (!err) {
		j->acks[j->nacks++] = (struct jack){.id = e->id,
						    .seg = e->backend,
						    .not_before_ns = e->not_before_ns,
						    .attempts = e->attempts,
						    .type = JREC_ATTEMPT};
		j->st.attempt_notes++;
		if (j->nacks == 1 && !j->npend)
			pthread_cond_signal(&j->flush_cv);
	}
	pthread_mutex_unlock(&j->lock);
	return err;
}

static int journal_replay(struct queue *q, queue_replay_fn *fn, void *arg)
{
	struct journal *j = (struct journal *)q;
	struct queue_entry **list;
	size_t n;

	pthread_mutex_lock(&j->lock);
	list = j->replay;
	n = j->nreplay;
	j->replay = NULL;
	j->nreplay = 0;
	j->st.replayed += n;
	pthread_mutex_unlock(&j->lock);
	for (size_t i = 0; i < n; i++)
		fn(arg, list[i]);
	free(list);
	return (int)n;
}

static int journal_stats(struct queue *q, struct queue_stats *st)
{
	struct journal *j = (struct journal *)q;

	pthread_mutex_lock(&j->lock);
	*st = j->st;
	st->segments = j->nsegs;
	st->max_bytes = j->cfg.max_bytes;
	st->max_entries = j->cfg.max_entries;
	pthread_mutex_unlock(&j->lock);
	return 0;
}

static void journal_set_notify(struct queue *q, queue_notify_fn *fn, void *arg)
{
	struct journal *j = (struct journal *)q;

	pthread_mutex_lock(&j->lock);
	j->notify = fn;
	j->notify_arg = arg;
	pthread_mutex_unlock(&j->lock);
}

static void journal_shutdown(struct queue *q)
{
	struct journal *j = (struct journal *)q;

	pthread_mutex_lock(&j->lock);
	j->shut = true;
	pthread_cond_broadcast(&j->ready_cv);
	pthread_mutex_unlock(&j->lock);
}

static void journal_free(struct queue *q)
{
	struct journal *j = (struct journal *)q;

	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->stop = j->shut = true;
	pthread_cond_signal(&j->flush_cv);
	pthread_cond_broadcast(&j->ready_cv);
	pthread_mutex_unlock(&j->lock);
	if (j->flusher_started)
		pthread_join(j->flusher, NULL);
	while (j->ready_head) {
		struct queue_entry *e = j->ready_head;

		j->ready_head = e->next;
		free(e);
	}
	for (size_t i = 0; i < j->nreplay; i++)
		free(j->replay[i]);
	for (size_t i = 0; i < j->nsegs; i++)
		if (j->segs[i].fd >= 0)
			close(j->segs[i].fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_cond_destroy(&j->ready_cv);
	pthread_cond_destroy(&j->flush_cv);
	pthread_mutex_destroy(&j->lock);
	free(j->replay);
	free(j->segs);
	free(j->pend.p);
	free(j->pend_done);
	free(j->acks);
	free(j->dir);
	free(j);
}

static const struct queue_ops journal_ops = {
    .name = "journal",
    .append = journal_append,
    .next = journal_next,
    .ack = journal_ack,
    .replay = journal_replay,
    .stats = journal_stats,
    .set_notify = journal_set_notify,
    .shutdown = journal_shutdown,
    .note_attempt = journal_note_attempt,
    .free = journal_free,
};

static int journal_cfg_check(struct journal_cfg *c)
{
	if (!c->dir || !*c->dir) {
		log_error("journal: --journal-dir is empty; give a directory for the segments",
			  "%s", "");
		return -EINVAL;
	}
	if (!c->segment_bytes)
		c->segment_bytes = JOURNAL_SEGMENT_DEFAULT;
	if (!c->max_record)
		c->max_record = JOURNAL_RECORD_DEFAULT;
	if (c->segment_bytes < 1024) {
		log_error("journal: segment size too small (minimum 1024 bytes)",
			  "segment_bytes=%llu", (unsigned long long)c->segment_bytes);
		return -EINVAL;
	}
	return 0;
}

static int journal_init(struct journal *j, const struct journal_cfg *cfg)
{
	pthread_condattr_t ca;

	j->q.ops = &journal_ops;
	j->cfg = *cfg;
	j->dirfd = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->ready_cv, &ca);
	pthread_cond_init(&j->flush_cv, NULL);
	pthread_condattr_destroy(&ca);
	j->dir = strdup(cfg->dir ? cfg->dir : "");
	if (!j->dir)
		return -ENOMEM;
	j->cfg.dir = j->dir;
	return journal_cfg_check(&j->cfg);
}

struct queue *journal_open(const struct journal_cfg *cfg)
{
	struct journal *j = calloc(1, sizeof(*j));
	int err;

	if (!j || !cfg) {
		free(j);
		errno = j ? EINVAL : ENOMEM;
		return NULL;
	}
	err = journal_init(j, cfg);
	if (!err && mkdir(j->dir, 0755) < 0 && errno != EEXIST) {
		err = -errno;
		log_error("journal: cannot create --journal-dir", "dir=%s err=\"%s\"", j->dir,
			  strerror(errno));
	}
	if (!err && (j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		err = -errno;
		log_error("journal: cannot open --journal-dir", "dir=%s err=\"%s\"", j->dir,
			  strerror(errno));
	}
	if (!err)
		err = journal_recover(j);
	if (!err) {
		err = -pthread_create(&j->flusher, NULL, journal_flusher, j);
		j->flusher_started = !err;
	}
	if (err) {
		journal_free(&j->q);
		errno = -err;
		return NULL;
	}
	return &j->q;
}
