/* SPDX-License-Identifier: MIT */
/* journal_int.h -- journal internals shared by the write path and recovery: record format
 *
 * On disk (little-endian), a segment is a sequence of records, each
 *	struct jrec_hdr (40 bytes) + len payload bytes
 * crc covers every byte after itself (rest of the header and the payload). An ENTRY record's
 * payload is the envelope; an ACK record's payload is len / 8 ids (u64) whose entries are
 * done; an ATTEMPT record's payload is struct jrec_attempt[] (a retried entry's attempts and
 * not-before time, applied at replay). Ids increase by one per appended entry across all segments;
 *a segment file is named after the first id it may contain, so names sort in log order.
 */
#ifndef SLUICE_JOURNAL_INT_H
#define SLUICE_JOURNAL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue/journal/journal.h"

#define JREC_MAGIC    0x534c /* "LS" */
#define JREC_ENTRY    1
#define JREC_ACK      2
#define JREC_ATTEMPT  3	 /* payload: struct jrec_attempt[] */
#define JSEG_NAME_LEN 40 /* "seg-0123456789abcdef.log" + ".corrupt" + NUL */

struct jrec_hdr {
	uint32_t crc;	   /* CRC32C of the bytes after this field up to the payload's end */
	uint32_t len;	   /* payload bytes */
	uint16_t magic;	   /* JREC_MAGIC */
	uint8_t type;	   /* JREC_ENTRY, JREC_ACK, JREC_ATTEMPT */
	uint8_t class;	   /* enum sluice_class (ENTRY) */
	uint32_t tenant;   /* ENTRY */
	uint64_t id;	   /* ENTRY: its id; ACK: 0 */
	uint64_t enq_ns;   /* ENTRY: CLOCK_REALTIME ns */
	uint32_t attempts; /* ENTRY */
	uint32_t reserved; /* 0 */
};
_Static_assert(sizeof(struct jrec_hdr) == 40, "journal record header is 40 bytes on disk");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "journal format is little-endian");

/* One segment file. */
struct jseg {
	uint64_t base;	  /* first id it may hold (its name) */
	uint64_t size;	  /* bytes written so far */
	uint64_t live;	  /* entries in it not acked yet */
	uint64_t ack_min; /* lowest segment base its ack records refer to (UINT64_MAX: none) */
	int fd;		  /* open for the active (last) segment only, else -1 */
};

/* A growable byte buffer. */
struct jbuf {
	uint8_t *p;
	size_t len, cap;
};

/* One append waiting for its fdatasync. */
struct jdone {
	queue_done_fn *done;
	void *arg;
	struct queue_entry *e;
	uint64_t id; /* e->id, kept: e may be acked and freed before the callback runs */
};

/* One element of an ATTEMPT record: a retried entry's count and not-before time. */
struct jrec_attempt {
	uint64_t id;
	uint64_t not_before_ns;
	uint32_t attempts;
	uint32_t reserved;
};
_Static_assert(sizeof(struct jrec_attempt) == 24, "attempt note is 24 bytes on disk");

/* An ack or attempt note waiting to be written; seg = the segment holding the entry. */
struct jack {
	uint64_t id, seg;
	uint64_t not_before_ns; /* JREC_ATTEMPT */
	uint32_t attempts;	/* JREC_ATTEMPT */
	uint32_t type;		/* JREC_ACK or JREC_ATTEMPT */
};

struct journal {
	struct queue q;
	struct journal_cfg cfg;
	char *dir;
	int dirfd;
	pthread_mutex_t lock;
	pthread_cond_t flush_cv; /* flusher waits for work */
	pthread_cond_t ready_cv; /* next() waits for durable entries */
	pthread_t flusher;
	bool flusher_started, stop, shut;
	bool reap;  /* a segment may have become deletable: the flusher looks after its batch */
	int failed; /* -errno once the journal cannot guarantee its files; appends refused */

	struct jseg *segs; /* sorted by base; segs[nsegs - 1] is the active one */
	size_t nsegs, segs_cap;

	struct jbuf pend;	 /* serialized ENTRY records not yet written */
	struct jdone *pend_done; /* their completions, append order */
	size_t npend, pend_cap;
	struct jack *acks; /* acks not yet written */
	size_t nacks, acks_cap;

	struct queue_entry *ready_head, *ready_tail; /* durable, not yet handed out by next() */
	struct queue_entry **replay;		     /* recovered at open, for replay() */
	size_t nreplay;
	uint64_t next_id;
	queue_notify_fn *notify;
	void *notify_arg;
	struct queue_stats st; /* counters, under lock */
};

/* journal_recover.c: scan cfg->dir, fix torn tails, move corrupt segments aside, fill
 * j->segs (active segment open), j->replay and j->next_id. 0 or -errno (logged). */
int journal_recover(struct journal *j);
/* journal_seg.c: records, segment files, I/O hooks (each -errno on failure). */
int jbuf_reserve(struct jbuf *b, size_t more);
int jarr_grow(void **arr, size_t *cap, size_t n, size_t sz);
void jrec_put_entry(struct jbuf *b, const struct queue_entry *e);
/* Serialize an ATTEMPT record for the notes and an ACK record for the acks among acks[]
 * (in that order, so an entry noted and acked in one batch stays acked). 0 or -ENOMEM. */
int jrec_put_acks(struct jbuf *b, const struct jack *acks, size_t n);
struct jseg *jseg_find(struct journal *j, uint64_t base);
int jseg_create(struct journal *j, uint64_t base);
void jseg_name(char *buf, size_t sz, uint64_t base, const char *suffix);
int jio_write(struct journal *j, int fd, const void *buf, size_t len, uint64_t off);
int jio_sync(struct journal *j, int fd);
/* journal_flush.c: the flusher thread's body (arg = the journal). */
void *journal_flusher(void *arg);
/* Delete segments that are fully acked and whose ack records nobody needs (lock held;
 * unlinks happen with it held too: they are rare and short). */
void journal_reap(struct journal *j);

#endif /* SLUICE_JOURNAL_INT_H */
