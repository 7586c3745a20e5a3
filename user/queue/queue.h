/* SPDX-License-Identifier: MIT */
/* queue.h -- the durable queue backend interface (ops table) and its entries
 *
 * A backend stores accepted events durably until every effect of them is committed.
 * The embedded default is the journal (user/queue/journal/journal.h); a Kafka backend sits behind
 * the same table later (produce with acks=all = append, consumer poll = next, offset
 * commit of the highest contiguous finished offset = ack).
 *
 * Life of one entry:
 *   append(rec, done, arg)  the backend copies the record; 0 = accepted for writing, the
 *                           done callback fires exactly once later: err == 0 only once the
 *                           record is on disk (after the fdatasync that covers it), err < 0
 *                           (-ENOSPC disk full, -EIO) when it is not and never will be.
 *                           A negative return value (-ENOSPC queue full by bytes/entries,
 *                           -EMSGSIZE, -EINVAL, -EIO journal failed) refuses it at once and
 *                           done is NOT called. Either way: 202 only on done(err == 0).
 *   next(out, max, timeout) hands durable entries to the consumer (the dispatcher feeder);
 *                           the consumer owns each entry until it gives it back with ack.
 *                           Each class comes out in append order, and at most a window of
 *                           each class is out at once (handed out and not acked): a consumer
 *                           holding a full window of a class gets no more of that class until
 *                           it acks some (so it must not wait for more entries before acking).
 *   ack(entry)              every effect is committed: the backend may forget it (journal:
 *                           an ack record; the segment is deleted once all of it is acked).
 *                           Takes back ownership and frees the entry.
 *   replay(fn, arg)         at start: hands out the entries that were durable but never acked
 *                           as far as the windows allow, in append order, each owned by the
 *                           callee like next() entries; the rest follow through next().
 *
 * Threads: append, ack, next and stats may be called from any thread. done callbacks run
 * on the backend's flusher thread, in append order, with no backend lock held; they must be
 * short and must not call append (forward to an io_uring loop with an eventfd write or
 * IORING_OP_MSG_RING from a ring the flusher owns). next() blocks on a condition variable
 * (or returns at once with timeout 0); queue_set_notify() registers a hook that the flusher
 * calls after new entries became durable, for loops that wait on an eventfd instead.
 *
 * Memory: bounded whatever the backlog. The backend keeps unacked entries in its durable store
 * (journal segments, Kafka) and only a window per class in RAM (journal: window_entries /
 * window_bytes, reported as stats.resident); entries past the window are read back as acks
 * make room, and recovery at open streams instead of loading the backlog. The full limits
 * (journal: max_bytes / max_entries) bound the disk, not the memory.
 * Retries: note_attempt(entry) records the entry's attempts and not_before_ns with the next
 * commit (not synced on its own: at worst a restart brings back the previous count), so a
 * restart does not reset retry budgets or run a delayed retry early.
 *
 * Due time vs received time: enq_ns is when the ingress received the event and stays the
 * event's identity (step_results and the worker's redelivery check are keyed by it), so a
 * producer that re-enqueues an old event (dead-letter replay) keeps it and sets
 * rec.not_before_ns to when the event became due again. The backend hands it back as the
 * entry's not_before_ns, across a restart too (journal: an attempt note written in the same
 * commit as the entry; Kafka: the sluice-due header), and the dispatcher counts lag from
 * max(enq_ns, not_before_ns), so a replayed event is not hours of backlog.
 *
 * Times are CLOCK_REALTIME nanoseconds (they survive restarts, so lag after a restart
 * includes the downtime).
 */
#ifndef SLUICE_QUEUE_H
#define SLUICE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define QUEUE_CLASS_MAX 3 /* enum sluice_class in include/sluice/abi.h */

/* What a producer hands to append(); the backend copies data. */
struct queue_rec {
	uint32_t class;		/* enum sluice_class */
	uint32_t tenant;	/* tenant slot */
	uint64_t enq_ns;	/* enqueue time, CLOCK_REALTIME ns (0: the backend stamps it) */
	uint64_t not_before_ns; /* due time, CLOCK_REALTIME ns; 0 = enq_ns */
	uint32_t attempts;	/* deliveries so far (0 for a new event) */
	uint32_t len;		/* envelope bytes */
	const void *data;	/* the envelope */
};

/* A durable entry owned by the consumer between next()/replay() and ack(). */
struct queue_entry {
	struct queue_entry *next; /* free for the current owner's lists (dispatch FIFOs) */
	uint64_t id;		  /* backend sequence number: unique, increasing per append */
	uint64_t enq_ns;	  /* CLOCK_REALTIME ns */
	uint64_t not_before_ns;	  /* retry: not dispatched before this time (0 = now) */
	uint32_t class;		  /* enum sluice_class */
	uint32_t tenant;
	uint32_t attempts; /* deliveries so far; the pool increments it on retry */
	uint32_t len;
	uint32_t pool;	  /* free for the router: index of the pool that runs it */
	uint32_t step;	  /* free for the worker: index of the next step to run */
	uint64_t backend; /* backend-private (journal: segment number) */
	uint8_t data[];	  /* the envelope, len bytes */
};

/* Plain counters for metrics (read with stats(); a consistent snapshot). */
struct queue_stats {
	uint64_t depth[QUEUE_CLASS_MAX]; /* entries not yet acked (pending, durable, in flight) */
	uint64_t bytes;			 /* envelope bytes not yet acked */
	uint64_t entries;		 /* sum of depth[] */
	uint64_t max_bytes, max_entries; /* the "full" limits (0 = none) */
	uint64_t appends;		 /* records accepted by append() */
	uint64_t durable;		 /* appends completed with err == 0 */
	uint64_t append_errors;		 /* appends completed with err < 0 (ENOSPC/EIO) */
	uint64_t refused_full;		 /* append() refused: queue full */
	uint64_t acks;
	uint64_t fsyncs;		/* fdatasync calls that covered at least one append */
	uint64_t fsync_ns;		/* total time spent in them */
	uint64_t batch_last, batch_max; /* appends covered by the last / largest fsync */
	uint64_t batch_hist[8];		/* fsyncs by batch size: 1, 2-3, 4-7, ... 128+ */
	uint64_t write_bytes;		/* bytes written to segments (records + acks) */
	uint64_t segments;		/* segment files currently on disk */
	uint64_t segments_deleted;
	uint64_t corrupt_ranges; /* damaged byte ranges quarantined (copied aside, skipped) */
	uint64_t corrupt_bytes;	 /* their bytes */
	uint64_t replayed;	 /* entries found durable and unacked at open */
	uint64_t torn_bytes;	 /* bytes truncated off a torn tail at open */
	uint64_t attempt_notes;	 /* note_attempt calls (retries remembered) */
	uint64_t resident;	 /* entries in memory: ready, or handed out and not acked */
	uint64_t window_entries, window_bytes; /* the per-class memory window */
	uint64_t spilled; /* entries left on disk at commit (window full), read back later */
};

typedef void queue_done_fn(void *arg, int err, uint64_t id);
typedef void queue_replay_fn(void *arg, struct queue_entry *e);
typedef void queue_notify_fn(void *arg);

struct queue;

struct queue_ops {
	const char *name;
	int (*append)(struct queue *q, const struct queue_rec *rec, queue_done_fn *done, void *arg);
	/* up to max durable entries into out[]; waits up to timeout_ms (-1 forever, 0 never);
	 * returns the count (0 on timeout or after queue_shutdown) or -errno */
	int (*next)(struct queue *q, struct queue_entry **out, int max, int timeout_ms);
	int (*ack)(struct queue *q, struct queue_entry *e);
	int (*replay)(struct queue *q, queue_replay_fn *fn, void *arg);
	int (*stats)(struct queue *q, struct queue_stats *st);
	void (*set_notify)(struct queue *q, queue_notify_fn *fn, void *arg);
	void (*shutdown)(struct queue *q); /* wake next() waiters; appends refused after */
	/* remember e->attempts and e->not_before_ns for a restart (e stays with the caller);
	 * NULL when a backend cannot (queue_note_attempt then returns 0) */
	int (*note_attempt)(struct queue *q, const struct queue_entry *e);
	/* write pending acks (synced), stop threads, close. Entries a consumer still holds
	 * must not be acked afterwards (they are replayed by the next open). */
	void (*free)(struct queue *q);
};

/* Every backend's handle starts with this. */
struct queue {
	const struct queue_ops *ops;
};

static inline int queue_append(struct queue *q, const struct queue_rec *rec, queue_done_fn *done,
			       void *arg)
{
	return q->ops->append(q, rec, done, arg);
}

static inline int queue_next(struct queue *q, struct queue_entry **out, int max, int timeout_ms)
{
	return q->ops->next(q, out, max, timeout_ms);
}

static inline int queue_ack(struct queue *q, struct queue_entry *e)
{
	return q->ops->ack(q, e);
}

static inline int queue_replay(struct queue *q, queue_replay_fn *fn, void *arg)
{
	return q->ops->replay(q, fn, arg);
}

static inline int queue_stats(struct queue *q, struct queue_stats *st)
{
	return q->ops->stats(q, st);
}

static inline void queue_set_notify(struct queue *q, queue_notify_fn *fn, void *arg)
{
	q->ops->set_notify(q, fn, arg);
}

static inline void queue_shutdown(struct queue *q)
{
	q->ops->shutdown(q);
}

static inline int queue_note_attempt(struct queue *q, const struct queue_entry *e)
{
	return q->ops->note_attempt ? q->ops->note_attempt(q, e) : 0;
}

static inline void queue_free(struct queue *q)
{
	if (q)
		q->ops->free(q);
}

#endif /* SLUICE_QUEUE_H */
