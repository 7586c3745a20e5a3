// SPDX-License-Identifier: MIT
/* journal_recover.c -- journal recovery at open: scan, cut torn tails, quarantine CRC errors
 *
 * Segments are scanned in name (= log) order. ENTRY records become candidate entries (ids
 * must increase); ACK records remove the entries they name. What remains is exactly the
 * set of entries that were durable and never acked, replayed in append order.
 *
 * Faults:
 * - torn tail: the last segment ends in an incomplete record (a crash mid-write; its append
 *   never completed, so nobody got a 202 for it): the file is truncated at the last whole
 *   record, with a warning giving the bytes dropped.
 * - corruption: a whole record whose CRC does not match, a bad magic/type, ids out of order,
 *   or an incomplete record in a segment that is not the last (those were synced before
 *   rotation, so that is damage, not a crash): the segment's scan stops there, the good
 *   entries before the error are re-journalled into the active segment (synced), then the
 *   file is renamed to *.corrupt for inspection, with an error log naming file and offset.
 *   Records after the error are NOT replayed; the log says how many bytes that is.
 * The re-journal is written and synced before the rename, so a crash during recovery only
 * repeats it (duplicates, never loss).
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
#include "queue/journal/crc32c.h"
#include "queue/journal/journal_int.h"

enum jscan_end { JSCAN_OK, JSCAN_TORN, JSCAN_CORRUPT };

struct jscan {
	struct queue_entry **ents; /* id order; NULL once acked */
	uint64_t *ids;		   /* ids[i] = id of ents[i], kept after the entry is freed */
	size_t n, cap;
	uint64_t max_id;
	bool any;
	uint64_t *bad; /* bases of corrupt segments */
	size_t nbad;
	struct jack *qacks; /* acks found in corrupt segments, to write again */
	size_t nqacks, qacks_cap;
	uint64_t last_base;
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

static int read_all(int fd, uint8_t **buf, size_t *len)
{
	struct stat sb;
	size_t off = 0;

	if (fstat(fd, &sb) < 0)
		return -errno;
	*len = (size_t)sb.st_size;
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	while (off < *len) {
		ssize_t r = pread(fd, *buf + off, *len - off, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(*buf);
			return r < 0 ? -errno : -EIO;
		}
		off += (size_t)r;
	}
	return 0;
}

/* Slot of entry id in the scan (ids[] stays sorted even after an ack frees the entry). */
static struct queue_entry **jscan_find(struct jscan *sc, uint64_t id)
{
	size_t lo = 0, hi = sc->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (sc->ids[mid] == id)
			return &sc->ents[mid];
		if (sc->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int jscan_add(struct jscan *sc, const struct jrec_hdr *h, const uint8_t *data, uint64_t base)
{
	struct queue_entry *e;

	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 1024;
		struct queue_entry **ents = realloc(sc->ents, cap * sizeof(*ents));
		uint64_t *ids;

		if (!ents)
			return -ENOMEM;
		sc->ents = ents;
		ids = realloc(sc->ids, cap * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		sc->ids = ids;
		sc->cap = cap;
	}
	e = malloc(sizeof(*e) + h->len);
	if (!e)
		return -ENOMEM;
	*e = (struct queue_entry){.id = h->id,
				  .enq_ns = h->enq_ns,
				  .class = h->class,
				  .tenant = h->tenant,
				  .attempts = h->attempts,
				  .len = h->len,
				  .backend = base};
	memcpy(e->data, data, h->len);
	sc->ids[sc->n] = h->id;
	sc->ents[sc->n++] = e;
	sc->max_id = h->id;
	sc->any = true;
	return 0;
}

/* Apply one ACK record found in segment seg. Every applied ack is also remembered in qacks:
 * if seg turns out corrupt further on, they must be written again (jscan_one). */
static int jscan_acks(struct jscan *sc, struct jseg *seg, const uint8_t *p, uint32_t len)
{
	for (uint32_t off = 0; off + 8 <= len; off += 8) {
		struct queue_entry **slot;
		uint64_t id;

		memcpy(&id, p + off, 8);
		slot = jscan_find(sc, id);
		if (!slot || !*slot)
			continue; /* its segment was already deleted, or a duplicate ack */
		if ((*slot)->backend < seg->ack_min)
			seg->ack_min = (*slot)->backend;
		if (sc->nqacks == sc->qacks_cap) {
			size_t cap = sc->qacks_cap ? sc->qacks_cap * 2 : 256;
			struct jack *q = realloc(sc->qacks, cap * sizeof(*q));

			if (!q)
				return -ENOMEM;
			sc->qacks = q;
			sc->qacks_cap = cap;
		}
		/* remembered in case this segment turns out corrupt further on */
		sc->qacks[sc->nqacks++] =
		    (struct jack){.id = id, .seg = (*slot)->backend, .type = JREC_ACK};
		free(*slot);
		*slot = NULL;
	}
	return 0;
}

/* Apply an ATTEMPT record: later notes win, acked entries stay gone. */
static void jscan_attempts(struct jscan *sc, const uint8_t *p, uint32_t len)
{
	for (uint32_t off = 0; off + sizeof(struct jrec_attempt) <= len;
	     off += sizeof(struct jrec_attempt)) {
		struct queue_entry **slot;
		struct jrec_attempt a;

		memcpy(&a, p + off, sizeof(a));
		slot = jscan_find(sc, a.id);
		if (!slot || !*slot)
			continue;
		(*slot)->attempts = a.attempts;
		(*slot)->not_before_ns = a.not_before_ns;
	}
}

/* Apply one whole, CRC-checked record. */
static enum jscan_end jscan_record(struct jscan *sc, struct jseg *seg, const struct jrec_hdr *h,
				   const uint8_t *payload, const char **why, int *err)
{
	switch (h->type) {
	case JREC_ENTRY:
		if (h->class >= QUEUE_CLASS_MAX || h->id < seg->base ||
		    (sc->any && h->id <= sc->max_id))
			return *why = "entry id or class out of range", JSCAN_CORRUPT;
		*err = jscan_add(sc, h, payload, seg->base);
		break;
	case JREC_ACK:
		if (h->len % 8)
			return *why = "ack record length not a multiple of 8", JSCAN_CORRUPT;
		*err = jscan_acks(sc, seg, payload, h->len);
		break;
	default:
		if (h->len % sizeof(struct jrec_attempt))
			return *why = "attempt record length not a multiple of 24", JSCAN_CORRUPT;
		jscan_attempts(sc, payload, h->len);
	}
	return *err ? JSCAN_CORRUPT : JSCAN_OK;
}

/* Parse the records of one segment. *good = bytes of whole, valid records. */
static enum jscan_end jscan_segment(struct jscan *sc, struct jseg *seg, const uint8_t *p,
				    size_t size, size_t *good, const char **why, int *err)
{
	enum jscan_end end = JSCAN_OK;
	size_t off = 0;
	struct jrec_hdr h;

	for (*good = 0; off < size && end == JSCAN_OK; *good = off) {
		if (size - off < sizeof(h))
			return *why = "incomplete header", JSCAN_TORN;
		memcpy(&h, p + off, sizeof(h));
		if (h.magic != JREC_MAGIC || h.type < JREC_ENTRY || h.type > JREC_ATTEMPT)
			return *why = "bad record magic or type", JSCAN_CORRUPT;
		if (size - off - sizeof(h) < h.len)
			return *why = "incomplete record", JSCAN_TORN;
		if (crc32c(p + off + 4, sizeof(h) - 4 + h.len) != h.crc)
			return *why = "CRC32C mismatch", JSCAN_CORRUPT;
		end = jscan_record(sc, seg, &h, p + off + sizeof(h), why, err);
		if (end == JSCAN_OK)
			off += sizeof(h) + h.len;
	}
	return end;
}

static int jscan_push_bad(struct jscan *sc, uint64_t base)
{
	uint64_t *p = realloc(sc->bad, (sc->nbad + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	sc->bad = p;
	sc->bad[sc->nbad++] = base;
	return 0;
}

static bool jscan_is_bad(const struct jscan *sc, uint64_t base)
{
	for (size_t i = 0; i < sc->nbad; i++)
		if (sc->bad[i] == base)
			return true;
	return false;
}

static void jscan_report(struct journal *j, const char *name, enum jscan_end end, size_t good,
			 size_t size, const char *why)
{
	if (end == JSCAN_TORN)
		log_warn("journal: torn tail truncated (a crash mid-write; those appends never "
			 "completed, so none was acknowledged)",
			 "file=%s/%s offset=%zu dropped_bytes=%zu reason=\"%s\"", j->dir, name,
			 good, size - good, why);
	else
		log_error(
		    "journal: CORRUPT SEGMENT: replay stops at the bad record; the segment is "
		    "moved aside to <file>.corrupt for inspection and the entries before the "
		    "error are re-journalled; records after it are NOT replayed",
		    "file=%s/%s offset=%zu unread_bytes=%zu reason=\"%s\"", j->dir, name, good,
		    size - good, why);
}

/* Scan segment `base`; `last` = the newest one (the only place a torn tail is legal). */
static int jscan_one(struct journal *j, struct jscan *sc, uint64_t base, bool last)
{
	struct jseg seg = {.base = base, .ack_min = UINT64_MAX, .fd = -1};
	size_t qstart = sc->nqacks, size = 0, good = 0;
	char name[JSEG_NAME_LEN];
	const char *why = "";
	enum jscan_end end;
	uint8_t *buf = NULL;
	int fd, err = 0;

	jseg_name(name, sizeof(name), base, NULL);
	fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0 || (err = read_all(fd, &buf, &size))) {
		err = err ? err : -errno;
		log_error("journal: cannot read segment", "file=%s/%s err=\"%s\"", j->dir, name,
			  strerror(-err));
		goto out;
	}
	end = jscan_segment(sc, &seg, buf, size, &good, &why, &err);
	free(buf);
	if (err)
		goto out;
	if (end == JSCAN_TORN && !last)
		end = JSCAN_CORRUPT; /* synced before rotation: damage, not a crash */
	if (end != JSCAN_OK)
		jscan_report(j, name, end, good, size, why);
	if (end == JSCAN_CORRUPT) {
		j->st.segments_corrupt++;
		err = jscan_push_bad(sc, base);
		goto out;
	}
	sc->nqacks = qstart; /* this segment's acks stay on disk: nothing to rewrite */
	if (end == JSCAN_TORN) {
		if (ftruncate(fd, (off_t)good) < 0 || fsync(fd) < 0) {
			err = -errno;
			log_error("journal: cannot truncate torn tail", "file=%s/%s err=\"%s\"",
				  j->dir, name, strerror(errno));
			goto out;
		}
		j->st.torn_bytes += size - good;
	}
	seg.size = good;
	seg.fd = last ? fd : -1;
	err = jarr_grow((void **)&j->segs, &j->segs_cap, j->nsegs, sizeof(*j->segs));
	if (err)
		goto out;
	j->segs[j->nsegs++] = seg;
	if (last)
		fd = -1; /* kept open: the active segment */
out:
	if (fd >= 0)
		close(fd);
	return err;
}

/* Write the good entries of corrupt segments (new ids) and the acks those segments carried
 * into the active segment, synced, so the corrupt files can be moved aside. */
static int jscan_rejournal(struct journal *j, struct jscan *sc)
{
	struct jseg *act = &j->segs[j->nsegs - 1];
	struct jbuf b = {0};
	int err = 0;

	for (size_t i = 0; i < sc->n && !err; i++) {
		struct queue_entry *e = sc->ents[i];

		if (!e || !jscan_is_bad(sc, e->backend))
			continue;
		err = jbuf_reserve(&b, sizeof(struct jrec_hdr) + e->len);
		if (err)
			break;
		e->id = j->next_id++;
		e->backend = act->base;
		jrec_put_entry(&b, e);
	}
	if (!err && sc->nqacks)
		err = jrec_put_acks(&b, sc->qacks, sc->nqacks);
	if (!err && b.len) {
		err = jio_write(j, act->fd, b.p, b.len, act->size);
		if (!err)
			err = jio_sync(j, act->fd);
		if (!err)
			act->size += b.len;
		log_info("journal: re-journalled the good entries of corrupt segments",
			 "bytes=%zu err=%d", b.len, err);
	}
	for (size_t i = 0; !err && i < sc->nqacks; i++)
		if (sc->qacks[i].seg < act->ack_min)
			act->ack_min = sc->qacks[i].seg;
	free(b.p);
	return err;
}

static int jscan_quarantine(struct journal *j, struct jscan *sc)
{
	char from[JSEG_NAME_LEN], to[JSEG_NAME_LEN];

	for (size_t i = 0; i < sc->nbad; i++) {
		jseg_name(from, sizeof(from), sc->bad[i], NULL);
		jseg_name(to, sizeof(to), sc->bad[i], ".corrupt");
		if (renameat(j->dirfd, from, j->dirfd, to) < 0) {
			log_error("journal: cannot move corrupt segment aside",
				  "file=%s/%s err=\"%s\"", j->dir, from, strerror(errno));
			return -errno;
		}
		log_error("journal: corrupt segment moved aside", "file=%s/%s", j->dir, to);
	}
	return sc->nbad && fsync(j->dirfd) < 0 ? -errno : 0;
}

/* Hand the surviving entries to the replay list and count them in their segments. */
static int jscan_settle(struct journal *j, struct jscan *sc)
{
	size_t n = 0;

	for (size_t i = 0; i < sc->n; i++) {
		struct queue_entry *e = sc->ents[i];
		struct jseg *s;

		if (!e)
			continue;
		s = jseg_find(j, e->backend);
		if (!s) /* cannot happen: entries of corrupt segments were re-homed */
			return -EIO;
		s->live++;
		j->st.depth[e->class]++;
		j->st.entries++;
		j->st.bytes += e->len;
		sc->ents[n++] = e; /* compact in place: n <= i */
	}
	j->replay = sc->ents;
	j->nreplay = n;
	sc->ents = NULL;
	sc->n = 0;
	return 0;
}

static uint64_t jscan_next_id(const struct jscan *sc, const uint64_t *bases, size_t n)
{
	uint64_t next = sc->any ? sc->max_id + 1 : 1;

	if (n && bases[n - 1] > next)
		next = bases[n - 1];
	/* a corrupt last segment keeps its name until renamed: never reuse it */
	if (n && jscan_is_bad(sc, bases[n - 1]) && next <= bases[n - 1])
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
	if (!nb || jscan_is_bad(&sc, bases[nb - 1]))
		err = jseg_create(j, j->next_id);
	if (!err)
		err = jscan_rejournal(j, &sc);
	if (!err)
		err = jscan_quarantine(j, &sc);
	if (!err)
		err = jscan_settle(j, &sc);
	if (!err) {
		journal_reap(j);
		log_info("journal: recovered", "dir=%s segments=%zu unacked=%zu next_id=%llu",
			 j->dir, j->nsegs, j->nreplay, (unsigned long long)j->next_id);
	}
out:
	for (size_t i = 0; i < sc.n; i++)
		free(sc.ents[i]);
	free(sc.ents);
	free(sc.ids);
	free(sc.bad);
	free(sc.qacks);
	free(bases);
	return err;
}
