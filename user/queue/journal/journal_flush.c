// SPDX-License-Identifier: MIT
/* journal_flush.c -- the journal's flusher thread: group commit, rotation, failure undo
 *
 * The flusher swaps the pending buffer out under the lock, writes it (plus one ATTEMPT and one
 * ACK record carrying every note and ack since the last batch) with one pwrite at the active
 * segment's end, then one fdatasync, and only then, under the lock, makes the entries visible
 * to next(); the done callbacks run after that without the lock, in append order. Appends that
 * arrive during a commit form the next batch, so one fdatasync covers everything appended
 * since the previous one.
 *
 * Failure: the segment is cut back to where the batch began and synced, so nothing of a failed
 * batch can reappear after a restart; its appends complete with the error. If the cut fails
 * too, the journal is marked failed (appends refused with -EIO until restart). After a failed
 * batch the flusher waits 100 ms before retrying the acks it kept, so a full disk is not
 * hammered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "queue/journal/journal_int.h"

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
	j->reap = true; /* the old segment may already be fully acked */
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
	uint64_t off;	  /* where the batch went in the active segment */
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
	off = b->off = act->size; /* only this thread changes it */
	err = jio_write(j, act->fd, b->buf.p, b->buf.len, off);
	if (!err && b->ndone) {
		t0 = clock_mono_ns();
		err = jio_sync(j, act->fd);
		b->sync_ns = clock_mono_ns() - t0;
	}
	if (err) {
		log_warn("journal: write failed; batch refused", "dir=%s entries=%zu err=\"%s\"",
			 j->dir, b->ndone, strerror(-err));
		b->fatal = journal_undo(j, act->fd, off, err);
		return err;
	}
	return 0;
}

/* A refused batch: its appends fail, its acks wait for the next batch (a failed or stopping
 * journal drops them: the restart redelivers those entries, which is safe). Lock held. */
static void journal_settle_failed(struct journal *j, struct jbatch *b)
{
	uint64_t lo = b->ndone ? b->done[0].id : 0, hi = b->ndone ? b->done[b->ndone - 1].id : 0;

	for (size_t i = 0; i < b->nacks && !j->failed && !j->stop; i++) {
		/* the due-time note of an entry of this batch goes with it */
		if (b->acks[i].type == JREC_ATTEMPT && b->acks[i].id >= lo && b->acks[i].id <= hi &&
		    b->ndone)
			continue;
		if (!jarr_grow((void **)&j->acks, &j->acks_cap, j->nacks, sizeof(*j->acks)))
			j->acks[j->nacks++] = b->acks[i];
	}
	for (size_t i = 0; i < b->ndone; i++) {
		struct queue_entry *e = b->done[i].e;

		j->st.depth[e->class]--;
		j->st.entries--;
		j->st.bytes -= e->len;
		j->st.append_errors++;
		free(e);
	}
}

static void journal_count_batch(struct journal *j, const struct jbatch *b)
{
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
}

/* A durable entry joins its class's window, or (window full, or older entries of its class
 * still on disk) is freed and left to read-back, which starts at its record; its due time,
 * if any, waits in the notes for read-back (it is on disk too, but read-back only reads the
 * class's entry records). Lock held. */
static void journal_admit(struct journal *j, struct queue_entry *e, uint64_t seg, uint64_t off)
{
	struct jclass *k = &j->cls[e->class];
	struct jrec_attempt note = {
	    .id = e->id, .not_before_ns = e->not_before_ns, .attempts = e->attempts};

	e->backend = seg;
	if (!k->spilled && journal_window_room(j, e->class, e->len)) {
		if (k->tail)
			k->tail->next = e;
		else
			k->head = e;
		k->tail = e;
		k->held++;
		k->held_bytes += e->len;
		return;
	}
	if (!k->spilled) {
		k->spilled = true;
		k->cur_seg = seg;
		k->cur_off = off;
	}
	j->st.spilled++;
	if (e->not_before_ns) {
		pthread_mutex_lock(&j->notes_lock);
		if (jnotes_put(&j->notes, &note))
			log_warn("journal: out of memory for a due time; the entry's lag counts "
				 "from its receipt",
				 "id=%llu", (unsigned long long)e->id);
		pthread_mutex_unlock(&j->notes_lock);
	}
	free(e);
}

/* Account a written (err == 0) or refused batch. Lock held. */
static void journal_settle(struct journal *j, struct jbatch *b, int err)
{
	struct jseg *act = &j->segs[j->nsegs - 1];
	uint64_t off = b->off;

	if (b->fatal)
		j->failed = b->fatal;
	if (err) {
		journal_settle_failed(j, b);
		return;
	}
	for (size_t i = 0; i < b->nacks; i++)
		if (b->acks[i].type == JREC_ACK && b->acks[i].seg < act->ack_min)
			act->ack_min = b->acks[i].seg;
	/* the entries come first in the batch, in append order */
	for (size_t i = 0; i < b->ndone; i++) {
		struct queue_entry *e = b->done[i].e;
		uint64_t rec = sizeof(struct jrec_hdr) + e->len;

		journal_admit(j, e, act->base, off);
		off += rec;
	}
	act->size = b->off + b->buf.len; /* read-back may read up to here now */
	act->live += b->ndone;
	j->st.write_bytes += b->buf.len;
	if (b->ndone) {
		journal_count_batch(j, b);
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
	struct timespec dl = clock_deadline(CLOCK_REALTIME, 100 * 1000000ULL);

	while (!j->stop && !j->npend &&
	       pthread_cond_timedwait(&j->flush_cv, &j->lock, &dl) != ETIMEDOUT)
		;
}

/* See journal_int.h. */
void *journal_flusher(void *arg)
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
		if (j->reap) {
			j->reap = false;
			journal_reap(j);
		}
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
