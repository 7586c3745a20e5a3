/* SPDX-License-Identifier: MIT */
/* journal_int.h -- journal internals shared by the write path, read-back and recovery
 *
 * On disk (little-endian), a segment is a sequence of records, each
 *	struct jrec_hdr (40 bytes) + len payload bytes
 * crc covers every byte after itself (rest of the header and the payload). An ENTRY record's
 * payload is the envelope; an ACK record's payload is len / 8 ids (u64) whose entries are
 * done; an ATTEMPT record's payload is struct jrec_attempt[] (a retried entry's attempts and
 * not-before time, applied at replay). Ids increase by one per appended entry across all
 * segments; a segment file is named after the first id it may contain, so names sort in log
 * order. No payload can hold a whole record: an envelope is JSON (no NUL byte), a header has
 * several, which is what lets recovery resynchronise after damage (journal_read.c).
 *
 * Memory: only a window of each class's unacknowledged entries lives in RAM (struct jclass);
 * the rest stays in the segments and is read back in order as the window frees up. An entry
 * appended with a due time (queue_rec.not_before_ns, e.g. a dead-letter replay) carries it in
 * an ATTEMPT note written in the same batch; if the entry is left on disk, its note waits in
 * j->notes until read-back takes it (24 bytes per such entry, only while it is on disk).
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
#define JSEG_NAME_LEN 64 /* "seg-<16 hex>.log" or "seg-<16 hex>.log.<16 hex>.corrupt" + NUL */
/* The largest payload recovery accepts: --max-body's ceiling (1 GiB) plus the tenant line, with
 * room to spare. A fixed format limit, not the configured max_record, so lowering --max-body
 * never turns old records into "corrupt" ones; a longer length field is damage. */
#define JREC_LEN_MAX ((1u << 30) + 4096)
#define JRD_BUF	     (256u << 10) /* read-back / recovery buffer */

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

/* A byte range of a segment: [off, end). */
struct jrange {
	uint64_t off, end;
};

/* One segment file. */
struct jseg {
	uint64_t base;	  /* first id it may hold (its name) */
	uint64_t size;	  /* bytes committed (written, and synced if they hold entries) */
	uint64_t live;	  /* entries in it not acked yet */
	uint64_t ack_min; /* lowest segment base its ack records refer to (UINT64_MAX: none) */
	int fd;		  /* open for the active (last) segment only, else -1 */
	/* Found at open, NULL/0 for segments this process created: */
	uint64_t *unacked;  /* bit (id - base) set: the entry was durable and unacked at open */
	uint64_t nbits;	    /* ids the bitmap covers; ids past it were appended after open */
	struct jrange *bad; /* quarantined ranges: read-back skips them */
	size_t nbad;
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

/* Attempt notes found at open for entries still unacked, by id (open addressing; id 0 is
 * never used, so it marks a free slot). Read-back applies and drops them. */
struct jnotes {
	struct jrec_attempt *t;
	size_t cap, n; /* cap: a power of two, or 0 */
};

/* The in-memory window of one class. Entries of a class reach the consumer in id order:
 * first the ready list, then (while spilled) what read-back finds on disk from cur_*. */
struct jclass {
	struct queue_entry *head, *tail; /* ready: durable, in memory, not handed out */
	uint64_t held, held_bytes;	 /* resident: ready + handed out and not acked */
	bool spilled;			 /* committed entries of the class wait on disk */
	uint64_t cur_seg, cur_off;	 /* where read-back resumes: segment base, offset */
};

/* A buffered reader over one segment file. */
struct jrd {
	int fd;
	uint64_t size; /* bytes to consider */
	uint8_t *buf;  /* JRD_BUF bytes */
	uint64_t boff; /* file offset of buf[0] */
	size_t blen;
};

enum jrec_verdict {
	JREC_OK,
	JREC_SHORT_HDR, /* fewer than 40 bytes left */
	JREC_BAD_HDR,	/* bad magic or type */
	JREC_TOO_LONG,	/* length above JREC_LEN_MAX */
	JREC_SHORT,	/* the payload runs past the end */
	JREC_BAD_CRC,
	JREC_IO, /* read error (errno) */
};

struct journal {
	struct queue q;
	struct journal_cfg cfg;
	char *dir;
	int dirfd;
	pthread_mutex_t lock;
	pthread_cond_t flush_cv; /* flusher waits for work */
	pthread_cond_t ready_cv; /* next() waits for durable entries or window room */
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

	struct jclass cls[QUEUE_CLASS_MAX]; /* the windows, under lock */
	pthread_mutex_t rd_lock;	    /* one read-back at a time; taken before lock */
	uint64_t rd_pin;     /* segment read-back is in (not reaped), or UINT64_MAX */
	struct jnotes notes; /* under notes_lock once open */
	/* a leaf lock (taken last): read-back takes notes, the flusher puts the due times of
	 * entries it leaves on disk (window full) */
	pthread_mutex_t notes_lock;
	uint8_t *rd_buf; /* read-back's buffer, under rd_lock */
	uint64_t next_id;
	queue_notify_fn *notify;
	void *notify_arg;
	struct queue_stats st; /* counters, under lock */
};

/* journal_recover.c: scan cfg->dir in a bounded amount of memory, cut a torn tail,
 * quarantine damaged ranges, fill j->segs (active segment open), the windows' cursors,
 * j->notes, the depth counters and j->next_id. 0 or -errno (logged). */
int journal_recover(struct journal *j);
/* journal_seg.c: records, segment files, I/O hooks (each -errno on failure). */
int jbuf_reserve(struct jbuf *b, size_t more);
int jarr_grow(void **arr, size_t *cap, size_t n, size_t sz);
void jrec_put_entry(struct jbuf *b, const struct queue_entry *e);
/* Serialize an ATTEMPT record for the notes and an ACK record for the acks among acks[]
 * (in that order, so an entry noted and acked in one batch stays acked). 0 or -ENOMEM. */
int jrec_put_acks(struct jbuf *b, const struct jack *acks, size_t n);
struct jseg *jseg_find(struct journal *j, uint64_t base);
/* The first segment whose base is >= base, or NULL. Lock held. */
struct jseg *jseg_find_ge(struct journal *j, uint64_t base);
int jseg_create(struct journal *j, uint64_t base);
void jseg_name(char *buf, size_t sz, uint64_t base, const char *suffix);
void jseg_fini(struct jseg *s);
int jio_write(struct journal *j, int fd, const void *buf, size_t len, uint64_t off);
int jio_sync(struct journal *j, int fd);
/* journal_flush.c: the flusher thread's body (arg = the journal). */
void *journal_flusher(void *arg);
/* Delete segments that are fully acked and whose ack records nobody needs (lock held;
 * unlinks happen with it held too: they are rare and short). */
void journal_reap(struct journal *j);

/* journal_read.c: the buffered reader, record checks and resynchronisation. */
void jrd_init(struct jrd *r, int fd, uint64_t size, uint8_t *buf);
/* Bytes [off, off + len) of the file (len <= JRD_BUF, off + len <= size); NULL + errno. */
const uint8_t *jrd_at(struct jrd *r, uint64_t off, size_t len);
/* CRC32C of the record at off as header h describes it (h's tail, then h->len payload bytes
 * read in pieces). 0 or -errno. */
int jrec_crc(struct jrd *r, uint64_t off, const struct jrec_hdr *h, uint32_t *crc);
/* Check the record at off: header, length, CRC. Fills *h when the header was readable. */
enum jrec_verdict jrec_check(struct jrd *r, uint64_t off, struct jrec_hdr *h);
/* Offset of the first whole, CRC-valid record after off (r->size when there is none), or
 * -errno. */
int64_t jrec_resync(struct jrd *r, uint64_t off);
/* Copy [off, end) of segment base aside into "<segment>.<off>.corrupt" (synced; kept if it
 * exists already) and say so loudly. The caller counts it. 0 or -errno. */
int jrec_quarantine(struct journal *j, struct jrd *r, uint64_t base, uint64_t off, uint64_t end,
		    const char *why);
/* Is id one of the entries segment s held unacked at open (or appended since)? */
bool jseg_is_live(const uint64_t *bits, uint64_t nbits, uint64_t base, uint64_t id);
/* Read class c's next entries back from the segments into its ready list, up to the
 * window. Takes rd_lock then lock (neither may be held). Entries added, or -errno. */
int journal_refill(struct journal *j, unsigned c);
/* Is class c waiting on disk with room for a batch (an eighth of the window) or an empty
 * window? Lock held. */
bool journal_refill_due(const struct journal *j, unsigned c);
/* May an entry of len bytes join class c's window? Lock held. */
bool journal_window_room(const struct journal *j, unsigned c, uint32_t len);

/* journal_notes.c: the attempt notes of entries unacked at open. */
int jnotes_put(struct jnotes *n, const struct jrec_attempt *a);
bool jnotes_take(struct jnotes *n, uint64_t id, struct jrec_attempt *out);
void jnotes_del(struct jnotes *n, uint64_t id);
void jnotes_fini(struct jnotes *n);

#endif /* SLUICE_JOURNAL_INT_H */
