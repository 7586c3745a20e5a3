// SPDX-License-Identifier: MIT
/* journal.c -- the journal queue backend: the ops table (append, next, ack, replay, stats)
 *
 * append() serializes the record into the pending buffer under the lock and returns; the
 * flusher thread (journal_flush.c) commits every pending record with one write and one
 * fdatasync and only then makes the entries visible to next() and runs their done callbacks
 * (err == 0), or fails the whole batch (the ingress answers 503) after cutting it off the
 * segment again. ack() and note_attempt() queue small records the flusher writes with its
 * next batch. Ack-only batches are written without fdatasync: a lost ack only means a
 * redelivery after a power cut (every effect is idempotent); after a process crash the page
 * cache still holds them.
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

#include "lib/clock.h"
#include "lib/log.h"
#include "queue/journal/journal_int.h"

#define JOURNAL_SEGMENT_DEFAULT (64ull << 20)
#define JOURNAL_RECORD_DEFAULT	(1u << 20)

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

static int journal_next(struct queue *q, struct queue_entry **out, int max, int timeout_ms)
{
	struct journal *j = (struct journal *)q;
	struct timespec dl;
	int n = 0;

	if (max <= 0 || !out)
		return -EINVAL;
	dl =
	    clock_deadline(CLOCK_MONOTONIC, timeout_ms > 0 ? (uint64_t)timeout_ms * 1000000ULL : 0);
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
	if (!--s->live)
		j->reap = true;
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
