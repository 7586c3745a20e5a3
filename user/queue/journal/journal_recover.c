// SPDX-License-Identifier: MIT
/* journal_recover.c -- journal recovery at open: stream the segments, in bounded memory
 *
 * Pass 1 reads every segment in name (= log) order through one JRD_BUF buffer and checks
 * every record. It keeps one bit per entry id of each segment (set by the ENTRY record,
 * cleared by an ACK record naming it) and the attempt notes of entries still unacked
 * (journal_notes.c). Pass 2 reads the headers of the segments that still hold a set bit and
 * counts those entries by class and size. No entry is loaded: read-back (journal_read.c)
 * hands them out later, a window at a time, in append order per class, skipping acked ids.
 * Memory is one bit per id in the surviving segments plus the notes.
 *
 * Damage (a record with a bad header, a length above JREC_LEN_MAX, a bad CRC, an id out of
 * order, or bytes that end before a record does):
 * - the log resynchronises at the next whole record with a valid CRC (jrec_resync); the
 *   bytes in between are copied aside to "<segment>.<offset>.corrupt", counted
 *   (stats.corrupt_ranges/bytes), logged as an error, and skipped. Records after them are
 *   replayed: a damaged record never costs the ones behind it, which were answered 202.
 * - the only bytes ever cut off are a torn tail: at the end of the last segment, with no
 *   whole record after them, and shaped like an interrupted write -- a partial header, a
 *   header whose payload runs past the end (and whose CRC does not match the bytes that are
 *   there, which would mean its length field was damaged instead), or zeros. That write never
 *   completed, so no client got a 202 for it.
 * - a last segment that ends in damage is left as it is and a new segment becomes the
 *   active one, so nothing is ever appended behind damaged bytes.
 * Segment files are never rewritten or renamed here (only a torn tail is truncated), so a
 * crash during recovery just runs it again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "queue/journal/journal_int.h"

struct jscan {
	struct jrd rd; /* the segment being read */
	uint64_t max_id;
	bool any;
	bool tail_bad; /* the last segment ends in quarantined bytes: start a new one */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Bases of every "seg-<16 hex>.log" in the directory, sorted. */
static int jrec_list(struct journal *j, uint64_t **out, size_t *n)
{
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	int fd = dup(j->dirfd);

	*out = NULL;
	*n = 0;
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		unsigned long long base;
		char tail[8];

		if (strlen(de->d_name) != 24 ||
		    sscanf(de->d_name, "seg-%16llx.%4s", &base, tail) != 2 || strcmp(tail, "log"))
			continue;
		if (*n == cap) {
			uint64_t *p = realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof(**out));

			if (!p) {
				closedir(d);
				return -ENOMEM;
			}
			*out = p;
		}
		(*out)[(*n)++] = base;
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(**out), cmp_u64);
	return 0;
}

/* Mark entry id present (and unacked) in segment s. nbits ends exactly past the highest id
 * seen: ids beyond it are new appends, which count as live (jseg_is_live). */
static int jbits_set(struct jseg *s, uint64_t id)
{
	uint64_t k = id - s->base, words = (s->nbits + 63) / 64;

	if (k / 64 >= words) {
		uint64_t nw = words ? words : 16;
		uint64_t *p;

		while (nw <= k / 64)
			nw *= 2;
		p = realloc(s->unacked, nw * 8);
		if (!p)
			return -ENOMEM;
		memset(p + words, 0, (nw - words) * 8);
		s->unacked = p;
	}
	s->unacked[k / 64] |= 1ull << (k % 64);
	if (k + 1 > s->nbits)
		s->nbits = k + 1;
	return 0;
}

/* Clear id's bit; true when it was set (an entry this scan knows, not acked before). */
static bool jbits_clear(struct jseg *s, uint64_t id)
{
	uint64_t k = id - s->base;

	if (k >= s->nbits || !(s->unacked[k / 64] >> (k % 64) & 1))
		return false;
	s->unacked[k / 64] &= ~(1ull << (k % 64));
	return true;
}

static bool jbits_any(const struct jseg *s)
{
	for (uint64_t w = 0; w < (s->nbits + 63) / 64; w++)
		if (s->unacked[w])
			return true;
	return false;
}

/* The scanned segment that would hold id (the last base <= id), or NULL. */
static struct jseg *jscan_seg_of(struct journal *j, uint64_t id)
{
	size_t lo = 0, hi = j->nsegs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (j->segs[mid].base <= id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &j->segs[lo - 1] : NULL;
}

/* Apply an ACK record of segment cur (payload at off): clear the ids it names. */
static int jscan_acks(struct journal *j, struct jscan *sc, struct jseg *cur, uint64_t off,
		      uint32_t len)
{
	for (uint32_t p = 0; p < len;) {
		uint32_t n = len - p < JRD_BUF ? len - p : JRD_BUF;
		const uint8_t *b = jrd_at(&sc->rd, off + p, n);

		if (!b)
			return -errno;
		for (uint32_t k = 0; k + 8 <= n; k += 8) {
			uint64_t id;
			struct jseg *s;

			memcpy(&id, b + k, 8);
			s = jscan_seg_of(j, id);
			if (!s || !jbits_clear(s, id))
				continue; /* its segment was deleted, or a second ack */
			if (s->base < cur->ack_min)
				cur->ack_min = s->base;
			jnotes_del(&j->notes, id);
		}
		p += n;
	}
	return 0;
}

/* Apply an ATTEMPT record: later notes win, acked entries stay gone. */
static int jscan_attempts(struct journal *j, struct jscan *sc, uint64_t off, uint32_t len)
{
	const uint32_t chunk = JRD_BUF / sizeof(struct jrec_attempt) * sizeof(struct jrec_attempt);

	for (uint32_t p = 0; p < len;) {
		uint32_t n = len - p < chunk ? len - p : chunk;
		const uint8_t *b = jrd_at(&sc->rd, off + p, n);

		if (!b)
			return -errno;
		for (uint32_t k = 0; k + sizeof(struct jrec_attempt) <= n;
		     k += sizeof(struct jrec_attempt)) {
			struct jrec_attempt a;
			struct jseg *s;

			memcpy(&a, b + k, sizeof(a));
			s = jscan_seg_of(j, a.id);
			if (s && jseg_is_live(s->unacked, s->nbits, s->base, a.id) &&
			    a.id - s->base < s->nbits && jnotes_put(&j->notes, &a))
				return -ENOMEM;
		}
		p += n;
	}
	return 0;
}

/* Apply one whole, CRC-checked record at off of segment cur. 0, 1 (not plausible: *why
 * says why, the record is treated as damage) or -errno. */
static int jscan_record(struct journal *j, struct jscan *sc, struct jseg *cur, uint64_t off,
			const struct jrec_hdr *h, const char **why)
{
	uint64_t payload = off + sizeof(*h);

	switch (h->type) {
	case JREC_ENTRY:
		if (h->class >= QUEUE_CLASS_MAX || h->id < cur->base ||
		    (sc->any && h->id <= sc->max_id))
			return *why = "entry id or class out of range", 1;
		sc->any = true;
		sc->max_id = h->id;
		return jbits_set(cur, h->id);
	case JREC_ACK:
		if (h->len % 8)
			return *why = "ack record length not a multiple of 8", 1;
		return jscan_acks(j, sc, cur, payload, h->len);
	default:
		if (h->len % sizeof(struct jrec_attempt))
			return *why = "attempt record length not a multiple of 24", 1;
		return jscan_attempts(j, sc, payload, h->len);
	}
}

static const char *const verdict_why[] = {
    [JREC_SHORT_HDR] = "incomplete header",
    [JREC_BAD_HDR] = "bad record magic or type",
    [JREC_TOO_LONG] = "record length above the limit",
    [JREC_SHORT] = "incomplete record",
    [JREC_BAD_CRC] = "CRC32C mismatch",
};

/* Are the bytes from off to the end what an interrupted write leaves? (See the top.) */
static bool jscan_torn_shape(struct jrd *r, uint64_t off, enum jrec_verdict v,
			     const struct jrec_hdr *h)
{
	bool zeros = true;

	if (v == JREC_SHORT_HDR)
		return true;
	for (uint64_t p = off; p < r->size && zeros;) {
		size_t n = r->size - p < JRD_BUF ? (size_t)(r->size - p) : JRD_BUF;
		const uint8_t *b = jrd_at(r, p, n);

		for (size_t k = 0; b && k < n && zeros; k++)
			zeros = !b[k];
		if (!b)
			return false;
		p += n;
	}
	if (zeros)
		return true;
	if (v == JREC_SHORT) {
		/* a whole record whose length field was hit would check out with the real one */
		struct jrec_hdr fix = *h;
		uint32_t crc;

		fix.len = (uint32_t)(r->size - off - sizeof(fix));
		return jrec_crc(r, off, &fix, &crc) || crc != h->crc;
	}
	return false;
}

static int jseg_add_bad(struct jseg *s, uint64_t off, uint64_t end)
{
	struct jrange *p = realloc(s->bad, (s->nbad + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	s->bad = p;
	s->bad[s->nbad++] = (struct jrange){off, end};
	return 0;
}

/* The record at off of segment cur is not good (verdict v). Cut a torn tail of the last
 * segment (*off = end), or quarantine up to the next whole record (*off = there). */
static int jscan_damage(struct journal *j, struct jscan *sc, struct jseg *cur, bool last,
			uint64_t *off, enum jrec_verdict v, const struct jrec_hdr *h,
			const char *why)
{
	char name[JSEG_NAME_LEN];
	int64_t next = jrec_resync(&sc->rd, *off);
	int err;

	if (next < 0)
		return (int)next;
	jseg_name(name, sizeof(name), cur->base, NULL);
	if (last && (uint64_t)next == sc->rd.size && v != JREC_OK &&
	    jscan_torn_shape(&sc->rd, *off, v, h)) {
		log_warn("journal: torn tail truncated (a crash mid-write; those appends never "
			 "completed, so none was acknowledged)",
			 "file=%s/%s offset=%llu dropped_bytes=%llu reason=\"%s\"", j->dir, name,
			 (unsigned long long)*off, (unsigned long long)(sc->rd.size - *off), why);
		if (ftruncate(sc->rd.fd, (off_t)*off) < 0 || fsync(sc->rd.fd) < 0) {
			err = -errno;
			log_error("journal: cannot truncate torn tail", "file=%s/%s err=\"%s\"",
				  j->dir, name, strerror(errno));
			return err;
		}
		j->st.torn_bytes += sc->rd.size - *off;
		sc->rd.size = *off;
		return 0;
	}
	/* a copy that fails (full disk) is logged; the bytes still sit in the segment, which is
	 * never rewritten, so opening goes on */
	jrec_quarantine(j, &sc->rd, cur->base, *off, (uint64_t)next, why);
	err = jseg_add_bad(cur, *off, (uint64_t)next);
	j->st.corrupt_ranges++;
	j->st.corrupt_bytes += (uint64_t)next - *off;
	if (last && (uint64_t)next == sc->rd.size)
		sc->tail_bad = true;
	*off = (uint64_t)next;
	return err;
}

/* Pass 1 over the records of segment cur. */
static int jscan_walk(struct journal *j, struct jscan *sc, struct jseg *cur, bool last)
{
	uint64_t off = 0;
	int err = 0;

	while (!err && off < sc->rd.size) {
		struct jrec_hdr h;
		enum jrec_verdict v = jrec_check(&sc->rd, off, &h);
		const char *why = verdict_why[v < JREC_IO ? v : 0];
		int r = 0;

		if (v == JREC_IO)
			return -errno;
		if (v == JREC_OK) {
			r = jscan_record(j, sc, cur, off, &h, &why);
			if (r < 0)
				return r;
			if (!r) {
				off += sizeof(h) + h.len;
				continue;
			}
		}
		err = jscan_damage(j, sc, cur, last, &off, v, &h, why);
	}
	return err;
}

/* Scan segment `base`; `last` = the newest one (the only place a torn tail is legal). */
static int jscan_one(struct journal *j, struct jscan *sc, uint64_t base, bool last)
{
	char name[JSEG_NAME_LEN];
	struct jseg *cur;
	struct stat sb;
	int fd, err;

	jseg_name(name, sizeof(name), base, NULL);
	fd = openat(j->dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		err = -errno;
		log_error("journal: cannot read segment", "file=%s/%s err=\"%s\"", j->dir, name,
			  strerror(-err));
		if (fd >= 0)
			close(fd);
		return err;
	}
	err = jarr_grow((void **)&j->segs, &j->segs_cap, j->nsegs, sizeof(*j->segs));
	if (err) {
		close(fd);
		return err;
	}
	cur = &j->segs[j->nsegs++];
	*cur = (struct jseg){.base = base, .ack_min = UINT64_MAX, .fd = fd};
	jrd_init(&sc->rd, fd, (uint64_t)sb.st_size, j->rd_buf);
	err = jscan_walk(j, sc, cur, last);
	if (err)
		log_error("journal: cannot scan segment", "file=%s/%s err=\"%s\"", j->dir, name,
			  strerror(-err));
	cur->size = sc->rd.size;
	if (!last || sc->tail_bad) { /* only an undamaged last segment stays open for appends */
		close(fd);
		cur->fd = -1;
	}
	return err;
}

/* Pass 2: count the entries still unacked, by class and bytes, and per segment. */
static int jscan_count(struct journal *j, struct jseg *s)
{
	char name[JSEG_NAME_LEN];
	struct jrange none = {UINT64_MAX, UINT64_MAX};
	struct jrd r;
	uint64_t off = 0;
	int fd;

	if (!s->nbits || !jbits_any(s))
		return 0;
	jseg_name(name, sizeof(name), s->base, NULL);
	fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	jrd_init(&r, fd, s->size, j->rd_buf);
	while (off < s->size) {
		const struct jrange *b = &none;
		const uint8_t *p;
		struct jrec_hdr h;

		for (size_t i = 0; i < s->nbad; i++)
			if (off == s->bad[i].off)
				b = &s->bad[i];
		if (b != &none) {
			off = b->end;
			continue;
		}
		p = jrd_at(&r, off, sizeof(h)); /* pass 1 checked every record outside the bad */
		if (!p)
			break;
		memcpy(&h, p, sizeof(h));
		if (h.type == JREC_ENTRY && jseg_is_live(s->unacked, s->nbits, s->base, h.id)) {
			s->live++;
			j->st.depth[h.class]++;
			j->st.entries++;
			j->st.bytes += h.len;
		}
		off += sizeof(h) + h.len;
	}
	close(fd);
	return off < s->size ? -EIO : 0;
}

static uint64_t jscan_next_id(const struct jscan *sc, const uint64_t *bases, size_t n)
{
	uint64_t next = sc->any ? sc->max_id + 1 : 1;

	if (n && bases[n - 1] > next)
		next = bases[n - 1];
	/* the damaged last segment keeps its name: the new active one needs another */
	if (n && sc->tail_bad && next <= bases[n - 1])
		next = bases[n - 1] + 1;
	return next;
}

int journal_recover(struct journal *j)
{
	struct jscan sc = {0};
	uint64_t *bases = NULL;
	size_t nb = 0;
	int err;

	err = jrec_list(j, &bases, &nb);
	for (size_t i = 0; !err && i < nb; i++)
		err = jscan_one(j, &sc, bases[i], i + 1 == nb);
	if (err)
		goto out;
	j->next_id = jscan_next_id(&sc, bases, nb);
	if (!nb || sc.tail_bad)
		err = jseg_create(j, j->next_id);
	for (size_t i = 0; !err && i < j->nsegs; i++)
		err = jscan_count(j, &j->segs[i]);
	if (err)
		goto out;
	/* every class with a backlog starts spilled: read-back hands it out from the start */
	for (unsigned c = 0; c < QUEUE_CLASS_MAX; c++)
		j->cls[c] =
		    (struct jclass){.spilled = j->st.depth[c] > 0, .cur_seg = j->segs[0].base};
	j->st.replayed = j->st.entries;
	journal_reap(j);
	log_info("journal: recovered",
		 "dir=%s segments=%zu unacked=%llu unacked_bytes=%llu "
		 "next_id=%llu corrupt_ranges=%llu",
		 j->dir, j->nsegs, (unsigned long long)j->st.entries,
		 (unsigned long long)j->st.bytes, (unsigned long long)j->next_id,
		 (unsigned long long)j->st.corrupt_ranges);
out:
	free(bases);
	return err;
}
