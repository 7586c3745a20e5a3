// SPDX-License-Identifier: MIT
/* offsets.c -- per-partition tracker of out-of-order completions for offset commits
 *
 * Invariant: the slot at head is unfinished whenever len > 0 (finished head slots are
 * popped at once), so the committable offset is ring[head].offset, or next when len == 0.
 * A finished slot behind an unfinished one stays until the head catches up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue/kafka/offsets.h"

#define SLOT(t, i) (&(t)->ring[((t)->head + (i)) & ((t)->cap - 1)])

void kafka_offsets_init(struct kafka_offsets *t)
{
	memset(t, 0, sizeof(*t));
	t->next = -1;
}

void kafka_offsets_fini(struct kafka_offsets *t)
{
	free(t->ring);
	t->ring = NULL;
	t->cap = t->len = t->head = 0;
}

/* Double the ring (cap stays a power of two), unrolling it to start at 0. */
static int grow(struct kafka_offsets *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct kafka_offset_slot *r = malloc(cap * sizeof(*r));

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < t->len; i++)
		r[i] = *SLOT(t, i);
	free(t->ring);
	t->ring = r;
	t->cap = cap;
	t->head = 0;
	return 0;
}

int kafka_offsets_add(struct kafka_offsets *t, int64_t offset, uint64_t ts)
{
	if (offset < 0 || (t->next >= 0 && offset < t->next))
		return -EINVAL;
	if (t->len == t->cap && grow(t))
		return -ENOMEM;
	*SLOT(t, t->len) = (struct kafka_offset_slot){offset, ts, false};
	t->len++;
	t->next = offset + 1;
	return 0;
}

int kafka_offsets_done(struct kafka_offsets *t, int64_t offset)
{
	size_t lo = 0, hi = t->len;
	struct kafka_offset_slot *s;

	while (lo < hi) { /* first slot with offset >= the one asked for */
		size_t mid = lo + (hi - lo) / 2;

		if (SLOT(t, mid)->offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == t->len || (s = SLOT(t, lo))->offset != offset || s->done)
		return -ENOENT;
	s->done = true;
	while (t->len && SLOT(t, 0)->done) {
		t->head = (t->head + 1) & (t->cap - 1);
		t->len--;
	}
	return 0;
}

int64_t kafka_offsets_committable(const struct kafka_offsets *t)
{
	return t->len ? t->ring[t->head].offset : t->next;
}

size_t kafka_offsets_unfinished(const struct kafka_offsets *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->len; i++)
		n += !SLOT(t, i)->done;
	return n;
}

uint64_t kafka_offsets_oldest_ts(const struct kafka_offsets *t)
{
	return t->len ? t->ring[t->head].ts : 0;
}

void kafka_offsets_reset(struct kafka_offsets *t)
{
	t->head = t->len = 0;
	t->next = -1;
	t->gen++;
}
