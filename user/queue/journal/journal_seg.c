// SPDX-License-Identifier: MIT
/* journal_seg.c -- journal records and segment files: framing, I/O hooks, create, find, reap
 *
 * Everything here works on one record or one segment and is shared by the write path
 * (journal.c) and recovery (journal_recover.c). Records are sealed with CRC32C over all
 * their bytes after the crc field; segment files are created O_EXCL and made durable in the
 * directory (fsync of the directory) before any record goes into them.
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

/* Make room for `more` bytes at b->len. 0 or -ENOMEM (b unchanged). */
int jbuf_reserve(struct jbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 64 * 1024;
	uint8_t *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Grow an array of n elements of size sz (capacity *cap) to hold one more. 0 or -ENOMEM
 * (array unchanged). */
int jarr_grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t ncap = *cap ? *cap * 2 : 256;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, ncap * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static void jrec_seal(uint8_t *rec, struct jrec_hdr *h)
{
	memcpy(rec, h, sizeof(*h));
	h->crc = crc32c(rec + 4, sizeof(*h) - 4 + h->len);
	memcpy(rec, &h->crc, sizeof(h->crc));
}

/* Serialize e as an ENTRY record at b's end; the caller reserved sizeof(hdr) + e->len. */
void jrec_put_entry(struct jbuf *b, const struct queue_entry *e)
{
	struct jrec_hdr h = {
	    .len = e->len,
	    .magic = JREC_MAGIC,
	    .type = JREC_ENTRY,
	    .class = (uint8_t)e->class,
	    .tenant = e->tenant,
	    .id = e->id,
	    .enq_ns = e->enq_ns,
	    .attempts = e->attempts,
	};
	uint8_t *rec = b->p + b->len;

	memcpy(rec + sizeof(h), e->data, e->len);
	jrec_seal(rec, &h);
	b->len += sizeof(h) + e->len;
}

/* One record of `type` from the elements of acks[] of that type (none: nothing written). */
static int jrec_put_kind(struct jbuf *b, const struct jack *acks, size_t n, uint8_t type)
{
	size_t width = type == JREC_ACK ? 8 : sizeof(struct jrec_attempt), k = 0;
	struct jrec_hdr h = {.magic = JREC_MAGIC, .type = type};
	uint8_t *rec;
	int err;

	for (size_t i = 0; i < n; i++)
		k += acks[i].type == type;
	if (!k)
		return 0;
	h.len = (uint32_t)(k * width);
	err = jbuf_reserve(b, sizeof(h) + h.len);
	if (err)
		return err;
	rec = b->p + b->len;
	for (size_t i = 0, o = sizeof(h); i < n; i++) {
		struct jrec_attempt a = {.id = acks[i].id,
					 .not_before_ns = acks[i].not_before_ns,
					 .attempts = acks[i].attempts};

		if (acks[i].type != type)
			continue;
		memcpy(rec + o, type == JREC_ACK ? (const void *)&acks[i].id : (const void *)&a,
		       width);
		o += width;
	}
	jrec_seal(rec, &h);
	b->len += sizeof(h) + h.len;
	return 0;
}

int jrec_put_acks(struct jbuf *b, const struct jack *acks, size_t n)
{
	int err = jrec_put_kind(b, acks, n, JREC_ATTEMPT);

	return err ? err : jrec_put_kind(b, acks, n, JREC_ACK);
}

/* "seg-<base hex>.log<suffix>" */
void jseg_name(char *buf, size_t sz, uint64_t base, const char *suffix)
{
	snprintf(buf, sz, "seg-%016llx.log%s", (unsigned long long)base, suffix ? suffix : "");
}

/* Write all of buf at off through the I/O hooks. 0 or -errno (a short write is -ENOSPC). */
int jio_write(struct journal *j, int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = j->cfg.io.pwrite
				? j->cfg.io.pwrite(j->cfg.io.ctx, fd, p, len, (off_t)off)
				: pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* fdatasync through the I/O hooks. 0 or -errno. */
int jio_sync(struct journal *j, int fd)
{
	int r = j->cfg.io.fdatasync ? j->cfg.io.fdatasync(j->cfg.io.ctx, fd) : fdatasync(fd);

	return r < 0 ? -errno : 0;
}

/* Create segment file `base`, durable in the directory, and make it the active one. */
int jseg_create(struct journal *j, uint64_t base)
{
	char name[JSEG_NAME_LEN];
	int fd, err;

	jseg_name(name, sizeof(name), base, NULL);
	fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		log_error("journal: cannot create segment", "dir=%s file=%s err=\"%s\"", j->dir,
			  name, strerror(-err));
		return err;
	}
	if (fsync(j->dirfd) < 0) {
		err = -errno;
		goto fail;
	}
	pthread_mutex_lock(&j->lock);
	err = jarr_grow((void **)&j->segs, &j->segs_cap, j->nsegs, sizeof(*j->segs));
	if (!err)
		j->segs[j->nsegs++] = (struct jseg){.base = base, .ack_min = UINT64_MAX, .fd = fd};
	pthread_mutex_unlock(&j->lock);
	if (!err)
		return 0;
fail:
	close(fd);
	unlinkat(j->dirfd, name, 0);
	return err;
}

/* The segment named base, or NULL. Lock held (or no other thread yet). */
struct jseg *jseg_find(struct journal *j, uint64_t base)
{
	size_t lo = 0, hi = j->nsegs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (j->segs[mid].base == base)
			return &j->segs[mid];
		if (j->segs[mid].base < base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* See journal_int.h. */
struct jseg *jseg_find_ge(struct journal *j, uint64_t base)
{
	size_t lo = 0, hi = j->nsegs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (j->segs[mid].base < base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->nsegs ? &j->segs[lo] : NULL;
}

/* Free what a segment owns in memory (its file stays). */
void jseg_fini(struct jseg *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->unacked);
	free(s->bad);
	s->unacked = NULL;
	s->bad = NULL;
	s->nbits = 0;
	s->nbad = 0;
}

/* Does any existing segment older than k hold entries that k's ack records refer to? */
static bool jseg_acks_needed(struct journal *j, size_t k)
{
	for (size_t i = 0; i < k; i++)
		if (j->segs[i].base >= j->segs[k].ack_min)
			return true;
	return false;
}

/* See journal_int.h. */
void journal_reap(struct journal *j)
{
	bool removed = false;
	char name[JSEG_NAME_LEN];

	for (size_t k = 0; k + 1 < j->nsegs;) {
		/* read-back may be in the pinned one (journal_read.c reaps again after it) */
		if (j->segs[k].live || j->segs[k].base == j->rd_pin || jseg_acks_needed(j, k)) {
			k++;
			continue;
		}
		jseg_name(name, sizeof(name), j->segs[k].base, NULL);
		if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) {
			log_warn("journal: cannot delete acked segment",
				 "dir=%s file=%s err=\"%s\"", j->dir, name, strerror(errno));
			k++;
			continue;
		}
		jseg_fini(&j->segs[k]);
		memmove(&j->segs[k], &j->segs[k + 1], (j->nsegs - k - 1) * sizeof(*j->segs));
		j->nsegs--;
		j->st.segments_deleted++;
		removed = true;
	}
	if (removed)
		fsync(j->dirfd);
}
