// SPDX-License-Identifier: MIT
/* journal.c -- the journal queue backend: the ops table (append, next, ack, replay, stats)
 *
 * append() serializes the record into the pending buffer under the lock and returns; the
 * flusher thread (journal_flush.c) commits every pending record with one write and one
 * fdatasync and only then makes the entries visible to next() and runs their done callbacks
 * (err == 0), or fails the whole batch (the ingress answers 503) after cutting it off the
 * segment again. ack() and note_attempt() queue small records the flusher writes with its
 * next batch; an append with a due time (rec.not_before_ns) queues an attempt note with its
 * entry, so both go out in the same write and fdatasync. Ack-only batches are written
 * without fdatasync: a lost ack only means a redelivery after a power cut (every effect is
 * idempotent); after a process crash the page cache still holds them.
 *
 * Memory: each class keeps at most window_entries / window_bytes entries in RAM (ready to
 * hand out, or handed out and not acked). A committed entry that does not fit is freed at
 * once and stays in its segment only; next() reads it back (journal_read.c) when acks make
 * room, so a backlog of any length costs disk, not memory, and each class still comes out
 * in append order. Recovery streams the same way (journal_recover.c).
 *
 * Segments: rotation happens between batches when the active segment would pass
 * segment_bytes. A non-active segment is deleted once every entry in it is acked and no older
 * segment that its ack records refer to still exists (else deleting it would resurrect those
 * older entries at replay).
 *
 * Lock order: rd_lock (read-back, taken by next()) before lock before notes_lock. Callbacks and
 * notify run on the flusher thread without either.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "queue/journal/journal_int.h"

#define JOURNAL_SEGMENT_DEFAULT (64ull << 20)
#define JOURNAL_RECORD_DEFAULT	(1u << 20)
#define JOURNAL_WINDOW_ENTRIES	8192
#define JOURNAL_WINDOW_BYTES	(16ull << 20)

/* May an append of len envelope bytes go in? Lock held. */
static int journal_room(struct journal *j, uint32_t len)
{
	if (j->shut)
		return -ESHUTDOWN;
	if (j->failed)
		return j->failed;
	if ((j->cfg.max_entries && j->st.entries + 1 > j->cfg.max_entries) ||
	    (j->cfg.max_bytes && j->st.bytes + len > j->cfg.max_bytes)) {
		j->st.refused_full++;
		return -ENOSPC;
	}
	return 0;
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
				  .not_before_ns = rec->not_before_ns,
				  .attempts = rec->attempts,
				  .len = rec->len};
	memcpy(e->data, rec->data, rec->len);

	pthread_mutex_lock(&j->lock);
	err = journal_room(j, rec->len);
	if (!err)
		err = jarr_grow((void **)&j->pend_done, &j->pend_cap, j->npend,
				sizeof(*j->pend_done));
	if (!err)
		err = jbuf_reserve(&j->pend, sizeof(struct jrec_hdr) + rec->len);
	if (!err && e->not_before_ns)
		err = jarr_grow((void **)&j->acks, &j->acks_cap, j->nacks, sizeof(*j->acks));
	if (err)
		goto out;
	e->id = j->next_id++;
	jrec_put_entry(&j->pend, e);
	/* the due time travels as an attempt note in the same batch as the entry (the flusher
	 * takes pend and acks together), so the fdatasync that makes the entry durable covers
	 * it and recovery applies it; the entry record's format stays as it is */
	if (e->not_before_ns)
		j->acks[j->nacks++] = (struct jack){.id = e->id,
						    .not_before_ns = e->not_before_ns,
						    .attempts = e->attempts,
						    .type = JREC_ATTEMPT};
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

/* Move up to max ready entries to out[], the lowest id first across classes. Lock held. */
static int journal_pop(struct journal *j, struct queue_entry **out, int max)
{
	int n = 0;

	while (n < max) {
		struct jclass *k = NULL;

		for (unsigned c = 0; c < QUEUE_CLASS_MAX; c++)
			if (j->cls[c].head && (!k || j->cls[c].head->id < k->head->id))
				k = &j->cls[c];
		if (!k)
			break;
		out[n] = k->head;
		k->head = k->head->next;
		if (!k->head)
			k->tail = NULL;
		out[n++]->next = NULL;
	}
	return n;
}

/* Read back every class that waits on disk and has room. false when a read failed. */
static bool journal_refill_all(struct journal *j)
{
	bool ok = true;

	for (unsigned c = 0; c < QUEUE_CLASS_MAX; c++) {
		bool want;

		pthread_mutex_lock(&j->lock);
		want = journal_refill_due(j, c);
		pthread_mutex_unlock(&j->lock);
		if (want && journal_refill(j, c) < 0)
			ok = false;
	}
	return ok;
}

static int journal_next(struct queue *q, struct queue_entry **out, int max, int timeout_ms)
{
	struct journal *j = (struct journal *)q;
	struct timespec dl, retry;
	int n = 0;

	if (max <= 0 || !out)
		return -EINVAL;
	dl =
	    clock_deadline(CLOCK_MONOTONIC, timeout_ms > 0 ? (uint64_t)timeout_ms * 1000000ULL : 0);
	for (;;) {
		bool read_ok = journal_refill_all(j), again = false;

		pthread_mutex_lock(&j->lock);
		n = journal_pop(j, out, max);
		if (n || j->shut || !timeout_ms) {
			pthread_mutex_unlock(&j->lock);
			return n;
		}
		for (unsigned c = 0; c < QUEUE_CLASS_MAX && read_ok; c++)
			again |= journal_refill_due(j, c);
		if (again) { /* acks made room since the read-back: read again */
			pthread_mutex_unlock(&j->lock);
			continue;
		}
		/* wait for a commit, an ack that makes room, or shutdown (after a failed read,
		 * at most 100 ms before trying again) */
		retry = clock_deadline(CLOCK_MONOTONIC, 100 * 1000000ULL);
		if (timeout_ms < 0 && read_ok)
			pthread_cond_wait(&j->ready_cv, &j->lock);
		else if (pthread_cond_timedwait(&j->ready_cv, &j->lock,
						timeout_ms < 0 ? &retry : &dl) == ETIMEDOUT &&
			 timeout_ms > 0) {
			n = journal_pop(j, out, max);
			pthread_mutex_unlock(&j->lock);
			return n;
		}
		pthread_mutex_unlock(&j->lock);
	}
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
	if (!--s->live)
		j->reap = true;
	j->cls[e->class].held--;
	j->cls[e->class].held_bytes -= e->len;
	if (journal_refill_due(j, e->class)) /* room for a read-back batch */
		pthread_cond_broadcast(&j->ready_cv);
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

/* At start: what next() hands out now (the recovered entries that fit the windows), in
 * append order; the rest of the backlog follows through next(). */
static int journal_replay(struct queue *q, queue_replay_fn *fn, void *arg)
{
	struct queue_entry *batch[64];
	int n, total = 0;

	while ((n = journal_next(q, batch, 64, 0)) > 0) {
		for (int i = 0; i < n; i++)
			fn(arg, batch[i]);
		total += n;
	}
	return total;
}

static int journal_stats(struct queue *q, struct queue_stats *st)
{
	struct journal *j = (struct journal *)q;

	pthread_mutex_lock(&j->lock);
	*st = j->st;
	st->segments = j->nsegs;
	st->resident = 0;
	for (unsigned c = 0; c < QUEUE_CLASS_MAX; c++)
		st->resident += j->cls[c].held;
	st->window_entries = j->cfg.window_entries;
	st->window_bytes = j->cfg.window_bytes;
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
	for (unsigned c = 0; c < QUEUE_CLASS_MAX; c++)
		while (j->cls[c].head) {
			struct queue_entry *e = j->cls[c].head;

			j->cls[c].head = e->next;
			free(e);
		}
	for (size_t i = 0; i < j->nsegs; i++)
		jseg_fini(&j->segs[i]);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_cond_destroy(&j->ready_cv);
	pthread_cond_destroy(&j->flush_cv);
	pthread_mutex_destroy(&j->rd_lock);
	pthread_mutex_destroy(&j->notes_lock);
	pthread_mutex_destroy(&j->lock);
	jnotes_fini(&j->notes);
	free(j->rd_buf);
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
	if (!c->window_entries)
		c->window_entries = JOURNAL_WINDOW_ENTRIES;
	if (!c->window_bytes)
		c->window_bytes = JOURNAL_WINDOW_BYTES;
	if (c->max_record > JREC_LEN_MAX) {
		log_error("journal: record size limit too large", "max_record=%u limit=%u",
			  c->max_record, JREC_LEN_MAX);
		return -EINVAL;
	}
	if (c->segment_bytes < 1024) {
		log_error("journal: segment size too small (minimum 1024 bytes)",
			  "segment_bytes=%llu", (unsigned long long)c->segment_bytes);
		return -EINVAL;
	}
	return 0;
}

/* JOURNAL_MAX_BYTES_AUTO: half the free space of the journal's filesystem now, at most
 * JOURNAL_AUTO_CAP, and never less than the unacked bytes just recovered (or the backlog
 * could never be taken back after a restart on a fuller disk). */
static void journal_auto_max_bytes(struct journal *j)
{
	struct statvfs sv;
	uint64_t half = 0;

	if (j->cfg.max_bytes != JOURNAL_MAX_BYTES_AUTO)
		return;
	if (fstatvfs(j->dirfd, &sv) == 0)
		half = (uint64_t)sv.f_bavail * sv.f_frsize / 2;
	else
		log_warn("journal: cannot read the filesystem's free space", "dir=%s err=\"%s\"",
			 j->dir, strerror(errno));
	j->cfg.max_bytes = half < JOURNAL_AUTO_CAP ? half : JOURNAL_AUTO_CAP;
	if (j->cfg.max_bytes < j->st.bytes)
		j->cfg.max_bytes = j->st.bytes;
	log_info("journal: queue byte limit set from the free disk space",
		 "dir=%s max_bytes=%llu "
		 "free_bytes=%llu recovered_bytes=%llu",
		 j->dir, (unsigned long long)j->cfg.max_bytes, (unsigned long long)(half * 2),
		 (unsigned long long)j->st.bytes);
}

static int journal_init(struct journal *j, const struct journal_cfg *cfg)
{
	pthread_condattr_t ca;

	j->q.ops = &journal_ops;
	j->cfg = *cfg;
	j->dirfd = -1;
	j->rd_pin = UINT64_MAX;
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->rd_lock, NULL);
	pthread_mutex_init(&j->notes_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->ready_cv, &ca);
	pthread_cond_init(&j->flush_cv, NULL);
	pthread_condattr_destroy(&ca);
	j->dir = strdup(cfg->dir ? cfg->dir : "");
	j->rd_buf = malloc(JRD_BUF);
	if (!j->dir || !j->rd_buf)
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
	if (!err)
		journal_auto_max_bytes(j);
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
