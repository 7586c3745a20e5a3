// SPDX-License-Identifier: MIT
/* fuzz_journal_recover.c -- libFuzzer target: journal recovery over damaged segment bytes
 *
 * A fixed journal of three segments (52 entries of the three classes, ACK and ATTEMPT
 * records in between, every one of them synced, i.e. answered 202) is damaged as the input
 * says -- bits flipped, bytes set, garbage inserted, a segment cut short -- written to a
 * scratch directory and opened. Everything recovery hands out (read back a small window at
 * a time, acked as it goes) is checked against what was written:
 *   - every intact entry record (not one byte of it touched) that no intact ACK record
 *     names comes back, with its intact attempt note applied;
 *   - nothing comes back that was never written, nothing twice, each class in id order;
 *   - a new append after recovery is durable and delivered too.
 * Damage is assumed never to forge a record with a valid CRC (2^-32 per candidate); an input
 * that does (the fuzzer can learn CRC values from comparisons) is still opened, for crashes
 * and sanitizer findings, but not held to the rules above.
 *
 * Input: up to 24 operations, each an opcode byte then its arguments:
 *   0 flip   seg, pos (2 bytes), bit      1 set    seg, pos, byte
 *   2 insert seg, pos, n, n bytes         3 cut    seg, pos (the segment ends there)
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "queue/journal/crc32c.h"
#include "queue/journal/journal.h"
#include "queue/journal/journal_int.h"

#define NSEG	 3
#define NENT	 52
#define SEG_CAP	 16384
#define MAX_RECS 64

/* One record of the generated journal. */
struct grec {
	int seg, type;
	uint64_t id;	 /* ENTRY */
	uint64_t ids[8]; /* ACK / ATTEMPT: the ids named */
	int nids;
	uint32_t note_to; /* ATTEMPT: the attempts it records */
};

/* One segment being damaged: bytes, and which generated record each byte belongs to. */
struct mseg {
	uint8_t b[SEG_CAP];
	int16_t owner[SEG_CAP]; /* record index, -1 for inserted bytes */
	size_t len;
};

static struct grec recs[MAX_RECS];
static int nrecs;
static struct mseg orig[NSEG];
static const uint64_t seg_base[NSEG] = {1, 17, 35};
static char dir[256];

static uint32_t payload(char *buf, uint64_t id)
{
	int n = snprintf(buf, 200, "{\"rec\":%llu,\"fill\":\"", (unsigned long long)id);

	for (uint64_t k = 0; k < (id * 37) % 90; k++)
		buf[n++] = (char)('a' + (id + k) % 26);
	buf[n++] = '"';
	buf[n++] = '}';
	return (uint32_t)n;
}

static void put_rec(int seg, const struct grec *g, const void *bytes, size_t len)
{
	struct mseg *m = &orig[seg];

	memcpy(m->b + m->len, bytes, len);
	for (size_t i = 0; i < len; i++)
		m->owner[m->len + i] = (int16_t)nrecs;
	m->len += len;
	recs[nrecs++] = *g;
}

static void gen_entry(int seg, uint64_t id)
{
	struct queue_entry *e = calloc(1, sizeof(*e) + 256);
	struct jbuf b = {0};
	struct grec g = {.seg = seg, .type = JREC_ENTRY, .id = id};

	if (!e)
		abort();
	e->id = id;
	e->class = (uint32_t)(id % 3);
	e->tenant = (uint32_t)(100 + id % 5);
	e->enq_ns = 1000000000ull * id;
	e->attempts = (uint32_t)(id % 4);
	e->len = payload((char *)e->data, id);
	jbuf_reserve(&b, sizeof(struct jrec_hdr) + e->len);
	jrec_put_entry(&b, e);
	put_rec(seg, &g, b.p, b.len);
	free(b.p);
	free(e);
}

static void gen_notes(int seg, int type, const uint64_t *ids, int n)
{
	struct jack a[8];
	struct jbuf b = {0};
	struct grec g = {.seg = seg, .type = type, .nids = n, .note_to = 7};

	for (int i = 0; i < n; i++) {
		a[i] = (struct jack){.id = ids[i], .type = (uint32_t)type, .attempts = 7};
		g.ids[i] = ids[i];
	}
	jrec_put_acks(&b, a, (size_t)n);
	put_rec(seg, &g, b.p, b.len);
	free(b.p);
}

static void generate(void)
{
	static const uint64_t att_a[] = {2, 5}, ack_b[] = {1, 3, 4, 18, 20}, ack_c[] = {36, 40},
			      att_c[] = {37, 5};

	for (uint64_t id = 1; id <= 12; id++)
		gen_entry(0, id);
	gen_notes(0, JREC_ATTEMPT, att_a, 2);
	for (uint64_t id = 13; id <= 16; id++)
		gen_entry(0, id);
	for (uint64_t id = 17; id <= 30; id++)
		gen_entry(1, id);
	gen_notes(1, JREC_ACK, ack_b, 5);
	for (uint64_t id = 31; id <= 34; id++)
		gen_entry(1, id);
	for (uint64_t id = 35; id <= 48; id++)
		gen_entry(2, id);
	gen_notes(2, JREC_ACK, ack_c, 2);
	gen_notes(2, JREC_ATTEMPT, att_c, 2);
	for (uint64_t id = 49; id <= NENT; id++)
		gen_entry(2, id);
}

static void clear_dir(void);

static void remove_dir(void)
{
	clear_dir();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base =
	    access("/dev/shm", W_OK) ? (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") : "/dev/shm";

	snprintf(dir, sizeof(dir), "%s/fuzz-journal-%d", base, (int)getpid());
	mkdir(dir, 0755);
	atexit(remove_dir);
	log_set_level((enum log_level)(LOG_ERROR + 1)); /* damage is logged loudly: not here */
	generate();
	return 0;
}

/* ---- damage --------------------------------------------------------------------------- */

struct damage {
	struct mseg s[NSEG];
	bool hit[MAX_RECS]; /* some byte of the record was touched or removed */
};

static void mark_hit(struct damage *d, const struct mseg *m, size_t pos)
{
	if (pos < m->len && m->owner[pos] >= 0)
		d->hit[m->owner[pos]] = true;
}

static const uint8_t *apply_op(struct damage *d, const uint8_t *p, const uint8_t *end)
{
	uint8_t op;
	struct mseg *m;
	size_t pos, n;

	if (end - p < 4)
		return end;
	op = p[0] & 3;
	m = &d->s[p[1] % NSEG];
	pos = (size_t)(p[2] | p[3] << 8) % (m->len + 1);
	p += 4;
	if (op == 3) { /* cut */
		for (size_t i = pos; i < m->len; i++)
			mark_hit(d, m, i);
		m->len = pos;
		return p;
	}
	if (p == end)
		return end;
	if (op < 2) { /* flip / set */
		if (pos < m->len) {
			mark_hit(d, m, pos);
			m->b[pos] = op == 0 ? m->b[pos] ^ (uint8_t)(1u << (*p & 7)) : *p;
		}
		return p + 1;
	}
	n = *p++ % 64; /* insert */
	if (n > (size_t)(end - p))
		n = (size_t)(end - p);
	if (m->len + n > SEG_CAP)
		return p + n;
	if (pos > 0 && pos < m->len && m->owner[pos - 1] == m->owner[pos])
		mark_hit(d, m, pos); /* splits a record */
	memmove(m->b + pos + n, m->b + pos, m->len - pos);
	memmove(m->owner + pos + n, m->owner + pos, (m->len - pos) * sizeof(*m->owner));
	memcpy(m->b + pos, p, n);
	for (size_t i = 0; i < n; i++)
		m->owner[pos + i] = -1;
	m->len += n;
	return p + n;
}

/* Does a CRC-valid record exist that is not an untouched original one? */
static bool forged(const struct damage *d)
{
	for (int s = 0; s < NSEG; s++) {
		const struct mseg *m = &d->s[s];

		for (size_t p = 0; p + sizeof(struct jrec_hdr) <= m->len; p++) {
			struct jrec_hdr h;
			int o = m->owner[p];

			memcpy(&h, m->b + p, sizeof(h));
			if (h.magic != JREC_MAGIC || h.len > m->len - p - sizeof(h) ||
			    crc32c(m->b + p + 4, sizeof(h) - 4 + h.len) != h.crc)
				continue;
			/* an original record, whole and untouched, starting here? */
			if (o >= 0 && !d->hit[o] && (p == 0 || m->owner[p - 1] != o) &&
			    (p + sizeof(h) + h.len == m->len ||
			     m->owner[p + sizeof(h) + h.len] != o))
				continue;
			return true;
		}
	}
	return false;
}

/* ---- recovery and the rules ----------------------------------------------------------- */

static void clear_dir(void)
{
	DIR *dd = opendir(dir);
	struct dirent *e;

	while (dd && (e = readdir(dd)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(dd), e->d_name, 0);
	if (dd)
		closedir(dd);
}

static void write_segments(const struct damage *d)
{
	char path[400];

	for (int s = 0; s < NSEG; s++) {
		int fd;

		snprintf(path, sizeof(path), "%s/seg-%016llx.log", dir,
			 (unsigned long long)seg_base[s]);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, d->s[s].b, d->s[s].len) != (ssize_t)d->s[s].len)
			abort();
		close(fd);
	}
}

/* What the rules expect of entry id: 1 must come back, 0 may or may not, and the attempts
 * it must come back with. */
static int expected(const struct damage *d, uint64_t id, uint32_t *attempts)
{
	int must = 0;

	*attempts = (uint32_t)(id % 4);
	for (int r = 0; r < nrecs; r++) {
		bool names = false;

		for (int k = 0; k < recs[r].nids; k++)
			names |= recs[r].ids[k] == id;
		if (recs[r].type == JREC_ENTRY && recs[r].id == id)
			must = !d->hit[r];
		else if (names && recs[r].type == JREC_ACK && !d->hit[r])
			return 0; /* acked by a record recovery reads */
		else if (names && recs[r].type == JREC_ATTEMPT && !d->hit[r])
			*attempts = recs[r].note_to;
	}
	return must;
}

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

static void on_done(void *arg, int err, uint64_t id)
{
	(void)id;
	pthread_mutex_lock(&done_lock);
	*(int *)arg = err ? -1 : 1;
	pthread_cond_signal(&done_cv);
	pthread_mutex_unlock(&done_lock);
}

/* Check one delivered entry; returns false when it breaks a rule. */
static bool check_entry(const struct damage *d, const struct queue_entry *e, uint8_t *seen,
			uint64_t *last, bool strict, uint64_t new_id)
{
	char want[256];
	uint32_t attempts;

	if (e->id == new_id)
		return e->len == 3 && !memcmp(e->data, "new", 3);
	if (!strict)
		return true;
	if (e->id < 1 || e->id > NENT || seen[e->id]++ || e->class != e->id % 3 ||
	    e->id <= last[e->class])
		return false; /* never written, twice, or out of order in its class */
	last[e->class] = e->id;
	if (e->len != payload(want, e->id) || memcmp(e->data, want, e->len) ||
	    e->tenant != 100 + e->id % 5 || e->enq_ns != 1000000000ull * e->id)
		return false;
	expected(d, e->id, &attempts);
	/* an intact note must be applied; a damaged one may have survived byte for byte */
	return e->attempts == attempts || (attempts == e->id % 4 && e->attempts == 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct damage d;
	struct journal_cfg cfg = {.dir = dir, .window_entries = 4, .segment_bytes = 4096};
	struct queue_rec nr = {.class = 1, .len = 3, .data = "new"};
	uint8_t seen[NENT + 1] = {0};
	uint64_t last[3] = {0, 0, 0}, new_id = UINT64_MAX;
	const uint8_t *p = data, *end = data + size;
	struct queue_entry *out[16];
	struct queue_stats st;
	struct queue *q;
	bool strict, ok = true;
	int n, done = 0;

	memcpy(d.s, orig, sizeof(orig));
	memset(d.hit, 0, sizeof(d.hit));
	for (int i = 0; i < 24 && p < end; i++)
		p = apply_op(&d, p, end);
	strict = !forged(&d);
	clear_dir();
	write_segments(&d);
	q = journal_open(&cfg);
	if (!q)
		abort(); /* damage never makes the journal unusable */
	if (queue_append(q, &nr, on_done, &done))
		abort();
	pthread_mutex_lock(&done_lock);
	while (!done)
		pthread_cond_wait(&done_cv, &done_lock);
	pthread_mutex_unlock(&done_lock);
	if (done != 1)
		abort();
	queue_stats(q, &st);
	while ((n = queue_next(q, out, 16, 0)) > 0)
		for (int i = 0; i < n; i++) {
			if (out[i]->len == 3 && !memcmp(out[i]->data, "new", 3))
				new_id = out[i]->id;
			ok &= check_entry(&d, out[i], seen, last, strict, new_id);
			queue_ack(q, out[i]);
		}
	queue_stats(q, &st);
	if (st.entries || new_id == UINT64_MAX)
		abort(); /* recovered (or appended) but never handed out */
	for (uint64_t id = 1; strict && id <= NENT; id++) {
		uint32_t attempts;

		if (expected(&d, id, &attempts) && !seen[id]) {
			fprintf(stderr, "intact unacked entry %llu lost\n", (unsigned long long)id);
			ok = false;
		}
	}
	queue_free(q);
	if (!ok)
		abort();
	return 0;
}
