// SPDX-License-Identifier: MIT
/* journal_notes.c -- attempt notes of the entries found unacked at open, by id
 *
 * Recovery meets an ATTEMPT record long before read-back hands its entry out, so the notes
 * wait here: an open-addressing table (linear probing, backward-shift deletion, id 0 marks
 * a free slot since ids start at 1). A note is dropped when its entry's ack is met later in
 * the scan or when read-back takes it, so the table holds at most the entries that were
 * being retried (the consumer's window) when the journal stopped, however long the log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue/journal/journal_int.h"

static size_t slot_of(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static int jnotes_grow(struct jnotes *n)
{
	size_t cap = n->cap ? n->cap * 2 : 256;
	struct jrec_attempt *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < n->cap; i++) {
		size_t k;

		if (!n->t[i].id)
			continue;
		for (k = slot_of(n->t[i].id, cap); t[k].id; k = (k + 1) & (cap - 1))
			;
		t[k] = n->t[i];
	}
	free(n->t);
	n->t = t;
	n->cap = cap;
	return 0;
}

static struct jrec_attempt *jnotes_find(struct jnotes *n, uint64_t id)
{
	if (!n->cap)
		return NULL;
	for (size_t k = slot_of(id, n->cap);; k = (k + 1) & (n->cap - 1)) {
		if (n->t[k].id == id)
			return &n->t[k];
		if (!n->t[k].id)
			return NULL;
	}
}

/* Insert or replace the note of a->id (a later note wins). 0 or -ENOMEM. */
int jnotes_put(struct jnotes *n, const struct jrec_attempt *a)
{
	struct jrec_attempt *s = jnotes_find(n, a->id);
	size_t k;

	if (s) {
		*s = *a;
		return 0;
	}
	if ((n->n + 1) * 2 > n->cap && jnotes_grow(n))
		return -ENOMEM;
	for (k = slot_of(a->id, n->cap); n->t[k].id; k = (k + 1) & (n->cap - 1))
		;
	n->t[k] = *a;
	n->n++;
	return 0;
}

/* Remove the note of id, if any. */
void jnotes_del(struct jnotes *n, uint64_t id)
{
	struct jrec_attempt *s = jnotes_find(n, id);
	size_t hole, k;

	if (!s)
		return;
	hole = (size_t)(s - n->t);
	n->t[hole].id = 0;
	n->n--;
	/* backward shift: pull up every later entry of the run whose home is at or before hole */
	for (k = (hole + 1) & (n->cap - 1); n->t[k].id; k = (k + 1) & (n->cap - 1)) {
		size_t home = slot_of(n->t[k].id, n->cap);

		if ((k > hole && (home <= hole || home > k)) ||
		    (k < hole && home <= hole && home > k)) {
			n->t[hole] = n->t[k];
			n->t[k].id = 0;
			hole = k;
		}
	}
}

/* Take the note of id out of the table. true when there was one. */
bool jnotes_take(struct jnotes *n, uint64_t id, struct jrec_attempt *out)
{
	struct jrec_attempt *s = jnotes_find(n, id);

	if (!s)
		return false;
	*out = *s;
	jnotes_del(n, id);
	return true;
}

void jnotes_fini(struct jnotes *n)
{
	free(n->t);
	memset(n, 0, sizeof(*n));
}
