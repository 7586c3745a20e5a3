// SPDX-License-Identifier: MIT
/* journal_read.c -- reading segments back: buffered reads, record checks, resync, read-back
 *
 * Recovery and the read-back of spilled entries both walk segment files through one
 * JRD_BUF buffer (struct jrd), so neither ever holds a segment in memory. jrec_check()
 * judges the record at an offset; after damage, jrec_resync() looks for the next whole
 * record with a valid CRC (its magic first, then its CRC), which is where the log goes on.
 *
 * Read-back (journal_refill): when a class's window is full, the flusher leaves that class's
 * new entries on disk only and marks the class spilled at the first of them. Once the
 * consumer acks and the window has room, next() reads the class's records from that point
 * on, in order, into the window, skipping other classes, quarantined ranges and (in segments
 * found at open) entries that were acked before the restart. When the read reaches the end
 * of the active segment under the lock, the class is caught up and new entries stay in
 * memory again. The reader pins the segment it reads so the flusher does not delete it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "queue/journal/crc32c.h"
#include "queue/journal/journal_int.h"

void jrd_init(struct jrd *r, int fd, uint64_t size, uint8_t *buf)
{
	*r = (struct jrd){.fd = fd, .size = size, .buf = buf};
}

/* See journal_int.h. */
const uint8_t *jrd_at(struct jrd *r, uint64_t off, size_t len)
{
	size_t want, got = 0;

	if (len > JRD_BUF || off + len > r->size) {
		errno = EINVAL;
		return NULL;
	}
	if (off >= r->boff && off + len <= r->boff + r->blen)
		return r->buf + (off - r->boff);
	want = r->size - off < JRD_BUF ? (size_t)(r->size - off) : JRD_BUF;
	r->boff = off;
	r->blen = 0;
	while (got < want) {
		ssize_t n = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!n)
				errno = EIO; /* the file is shorter than we were told */
			return NULL;
		}
		got += (size_t)n;
	}
	r->blen = got;
	return r->buf;
}

/* See journal_int.h. */
int jrec_crc(struct jrd *r, uint64_t off, const struct jrec_hdr *h, uint32_t *crc)
{
	uint64_t p = off + sizeof(*h), end = p + h->len;

	*crc = crc32c((const uint8_t *)h + 4, sizeof(*h) - 4);
	while (p < end) {
		size_t n = end - p < JRD_BUF ? (size_t)(end - p) : JRD_BUF;
		const uint8_t *b = jrd_at(r, p, n);

		if (!b)
			return -errno;
		*crc = crc32c_extend(*crc, b, n);
		p += n;
	}
	return 0;
}

/* See journal_int.h. */
enum jrec_verdict jrec_check(struct jrd *r, uint64_t off, struct jrec_hdr *h)
{
	const uint8_t *p;
	uint32_t crc;

	if (r->size - off < sizeof(*h))
		return JREC_SHORT_HDR;
	p = jrd_at(r, off, sizeof(*h));
	if (!p)
		return JREC_IO;
	memcpy(h, p, sizeof(*h));
	if (h->magic != JREC_MAGIC || h->type < JREC_ENTRY || h->type > JREC_ATTEMPT)
		return JREC_BAD_HDR;
	if (h->len > JREC_LEN_MAX)
		return JREC_TOO_LONG;
	if (r->size - off - sizeof(*h) < h->len)
		return JREC_SHORT;
	if (jrec_crc(r, off, h, &crc))
		return JREC_IO;
	return crc == h->crc ? JREC_OK : JREC_BAD_CRC;
}

/* See journal_int.h. */
int64_t jrec_resync(struct jrd *r, uint64_t off)
{
	uint64_t p = off + 1;
	struct jrec_hdr h;

	while (p + sizeof(h) <= r->size) {
		/* the magic sits 8 bytes into a header; search what the buffer holds from p */
		size_t n = r->size - p < JRD_BUF ? (size_t)(r->size - p) : JRD_BUF;
		const uint8_t *b = jrd_at(r, p, n), *m;
		uint64_t cand;

		if (!b)
			return -errno;
		m = n > 9 ? memmem(b + 8, n - 8, "LS", 2) : NULL;
		if (!m) {
			if (n < JRD_BUF)
				break;
			p += n - 9; /* a magic cut by the buffer's end is found next time */
			continue;
		}
		cand = p + (uint64_t)(m - b) - 8;
		switch (jrec_check(r, cand, &h)) {
		case JREC_OK:
			return (int64_t)cand;
		case JREC_IO:
			return -errno;
		default:
			p = cand + 1;
		}
	}
	return (int64_t)r->size;
}

/* See journal_int.h. */
int jrec_quarantine(struct journal *j, struct jrd *r, uint64_t base, uint64_t off, uint64_t end,
		    const char *why)
{
	char seg[JSEG_NAME_LEN], name[JSEG_NAME_LEN], sfx[32];
	int fd, err = 0;
	bool kept = false;

	jseg_name(seg, sizeof(seg), base, NULL);
	snprintf(sfx, sizeof(sfx), ".%016llx.corrupt", (unsigned long long)off);
	jseg_name(name, sizeof(name), base, sfx);
	fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST)
		kept = true; /* an earlier start copied the same range already */
	else if (fd < 0)
		err = -errno;
	for (uint64_t p = off; fd >= 0 && !err && p < end;) {
		size_t n = end - p < JRD_BUF ? (size_t)(end - p) : JRD_BUF;
		const uint8_t *b = jrd_at(r, p, n);

		err = !b ? -errno : (write(fd, b, n) == (ssize_t)n ? 0 : -EIO);
		p += n;
	}
	if (fd >= 0) {
		if (!err && fsync(fd) < 0)
			err = -errno;
		close(fd);
		if (!err && fsync(j->dirfd) < 0)
			err = -errno;
	}
	log_error("journal: CORRUPT RECORDS in a segment: the damaged bytes are kept aside and "
		  "skipped, every whole record after them is still replayed",
		  "file=%s/%s offset=%llu bytes=%llu reason=\"%s\" kept_in=%s/%s%s err=\"%s\"",
		  j->dir, seg, (unsigned long long)off, (unsigned long long)(end - off), why,
		  j->dir, name, kept ? " (copied before)" : "", err ? strerror(-err) : "");
	return err;
}

/* See journal_int.h. */
bool jseg_is_live(const uint64_t *bits, uint64_t nbits, uint64_t base, uint64_t id)
{
	uint64_t k = id - base;

	if (!bits || k >= nbits)
		return true; /* appended by this process: only read-back hands it out */
	return bits[k / 64] >> (k % 64) & 1;
}

/* See journal_int.h. */
bool journal_window_room(const struct journal *j, unsigned c, uint32_t len)
{
	const struct jclass *k = &j->cls[c];

	if (!k->held)
		return true; /* one entry always fits, however large */
	return k->held < j->cfg.window_entries && k->held_bytes + len <= j->cfg.window_bytes;
}

/* See journal_int.h. */
bool journal_refill_due(const struct journal *j, unsigned c)
{
	const struct jclass *k = &j->cls[c];
	uint64_t step_n = j->cfg.window_entries / 8 ? j->cfg.window_entries / 8 : 1;
	uint64_t step_b = j->cfg.window_bytes / 8;

	if (!k->spilled)
		return false;
	if (!k->held)
		return true;
	/* read back in batches of at least an eighth of the window, not an entry per ack */
	return k->held + step_n <= j->cfg.window_entries &&
	       k->held_bytes + step_b <= j->cfg.window_bytes;
}

/* What read-back needs of one segment, copied under the lock (j->segs may move). */
struct jview {
	uint64_t base, size;
	bool last;
	const uint64_t *bits;
	uint64_t nbits;
	const struct jrange *bad;
	size_t nbad;
};

/* The segment at or after base, pinned for reading. false when there is none. Lock held. */
static bool jview_take(struct journal *j, uint64_t base, struct jview *v)
{
	struct jseg *s = jseg_find_ge(j, base);

	if (!s)
		return false;
	*v = (struct jview){s->base, s->size, s == &j->segs[j->nsegs - 1], s->unacked, s->nbits,
			    s->bad,  s->nbad};
	j->rd_pin = s->base;
	return true;
}

/* Past any quarantined range that holds off. */
static uint64_t jview_skip_bad(const struct jview *v, uint64_t off)
{
	for (size_t i = 0; i < v->nbad; i++)
		if (off >= v->bad[i].off && off < v->bad[i].end)
			off = v->bad[i].end;
	return off;
}

/* The entries read back in one call, before they join the window. */
struct jgot {
	struct queue_entry *head, *tail;
	uint64_t n, bytes, budget_n, budget_b;
	bool empty;		  /* the window was empty: the first entry fits whatever its size */
	uint64_t qranges, qbytes; /* damage found on the way (counted under the lock) */
};

static int jgot_entry(struct journal *j, struct jrd *r, uint64_t off, const struct jrec_hdr *h,
		      uint64_t base, struct jgot *g)
{
	struct queue_entry *e = malloc(sizeof(*e) + h->len);
	struct jrec_attempt note;
	int err = 0;

	if (!e)
		return -ENOMEM;
	*e = (struct queue_entry){.id = h->id,
				  .enq_ns = h->enq_ns,
				  .class = h->class,
				  .tenant = h->tenant,
				  .attempts = h->attempts,
				  .len = h->len,
				  .backend = base};
	for (uint64_t p = 0; p < h->len && !err;) {
		size_t n = h->len - p < JRD_BUF ? (size_t)(h->len - p) : JRD_BUF;
		const uint8_t *b = jrd_at(r, off + sizeof(*h) + p, n);

		if (b)
			memcpy(e->data + p, b, n);
		err = b ? 0 : -errno;
		p += n;
	}
	if (err) {
		free(e);
		return err;
	}
	pthread_mutex_lock(&j->notes_lock);
	if (jnotes_take(&j->notes, h->id, &note)) {
		e->attempts = note.attempts;
		e->not_before_ns = note.not_before_ns;
	}
	pthread_mutex_unlock(&j->notes_lock);
	if (g->tail)
		g->tail->next = e;
	else
		g->head = e;
	g->tail = e;
	g->n++;
	g->bytes += e->len;
	return 0;
}

/* Walk one segment from *off for class c's live entries. Stops at the segment's end, when
 * the budget is spent (*off then names the record that did not fit) or on an error. */
static int jrefill_seg(struct journal *j, unsigned c, const struct jview *v, int fd, uint64_t *off,
		       struct jgot *g)
{
	struct jrd r;
	struct jrec_hdr h;
	int err = 0;

	jrd_init(&r, fd, v->size, j->rd_buf);
	while (!err && (*off = jview_skip_bad(v, *off)) < v->size) {
		enum jrec_verdict vd = jrec_check(&r, *off, &h);
		int64_t next;

		if (vd == JREC_IO)
			return -errno;
		if (vd != JREC_OK) { /* damaged after it was written: keep it aside, go on */
			next = jrec_resync(&r, *off);
			if (next < 0)
				return (int)next;
			jrec_quarantine(j, &r, v->base, *off, (uint64_t)next, "found by read-back");
			g->qranges++;
			g->qbytes += (uint64_t)next - *off;
			*off = (uint64_t)next;
			continue;
		}
		if (h.type == JREC_ENTRY && h.class == c &&
		    jseg_is_live(v->bits, v->nbits, v->base, h.id)) {
			if (g->n >= g->budget_n ||
			    (g->bytes + h.len > g->budget_b && (g->n || !g->empty)))
				break;
			err = jgot_entry(j, &r, *off, &h, v->base, g);
			if (err)
				break;
		}
		*off += sizeof(h) + h.len;
	}
	return err;
}

/* Hand what was read to the window; caught up when the cursor stands at the end of the
 * active segment now. Lock held. */
static void jrefill_settle(struct journal *j, unsigned c, struct jgot *g, uint64_t seg,
			   uint64_t off)
{
	struct jclass *k = &j->cls[c];
	struct jseg *act = &j->segs[j->nsegs - 1];

	if (g->head) {
		if (k->tail)
			k->tail->next = g->head;
		else
			k->head = g->head;
		k->tail = g->tail;
		k->held += g->n;
		k->held_bytes += g->bytes;
	}
	j->st.corrupt_ranges += g->qranges;
	j->st.corrupt_bytes += g->qbytes;
	k->cur_seg = seg;
	k->cur_off = off;
	if (seg == act->base && off >= act->size)
		k->spilled = false;
	j->rd_pin = UINT64_MAX;
	journal_reap(j); /* a segment left while pinned may be deletable now */
}

/* Budget of class c: what the window has room for now. false: nothing to do. Lock held. */
static bool jrefill_budget(struct journal *j, unsigned c, struct jgot *g)
{
	struct jclass *k = &j->cls[c];

	if (!journal_refill_due(j, c))
		return false;
	g->empty = !k->held;
	g->budget_n = k->held < j->cfg.window_entries ? j->cfg.window_entries - k->held : 1;
	g->budget_b = k->held_bytes < j->cfg.window_bytes ? j->cfg.window_bytes - k->held_bytes : 0;
	return true;
}

/* See journal_int.h. */
int journal_refill(struct journal *j, unsigned c)
{
	struct jgot g = {0};
	struct jview v;
	uint64_t seg, off;
	int err = 0, fd = -1;

	pthread_mutex_lock(&j->rd_lock);
	pthread_mutex_lock(&j->lock);
	if (!jrefill_budget(j, c, &g)) {
		pthread_mutex_unlock(&j->lock);
		pthread_mutex_unlock(&j->rd_lock);
		return 0;
	}
	seg = j->cls[c].cur_seg;
	off = j->cls[c].cur_off;
	for (;;) {
		char name[JSEG_NAME_LEN];

		if (!jview_take(j, seg, &v)) { /* past the active segment: cannot happen */
			seg = j->segs[j->nsegs - 1].base;
			off = j->segs[j->nsegs - 1].size;
			break;
		}
		pthread_mutex_unlock(&j->lock);
		if (v.base != seg)
			off = 0; /* the segment the cursor was in is gone: nothing of c was left */
		seg = v.base;
		if (off < v.size) {
			jseg_name(name, sizeof(name), seg, NULL);
			fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
			err = fd < 0 ? -errno : jrefill_seg(j, c, &v, fd, &off, &g);
			if (fd >= 0)
				close(fd);
		}
		pthread_mutex_lock(&j->lock);
		if (err || off < v.size || v.last)
			break;
		seg = v.base + 1; /* on to the next segment */
		off = 0;
	}
	if (err)
		log_error("journal: cannot read entries back from a segment; retrying later",
			  "dir=%s seg=%016llx offset=%llu err=\"%s\"", j->dir,
			  (unsigned long long)seg, (unsigned long long)off, strerror(-err));
	jrefill_settle(j, c, &g, seg, off);
	pthread_mutex_unlock(&j->lock);
	pthread_mutex_unlock(&j->rd_lock);
	return err ? err : (int)g.n;
}
