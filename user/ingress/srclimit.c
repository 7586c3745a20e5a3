// SPDX-License-Identifier: MIT
/* srclimit.c -- open connections per source address
 *
 * Open addressing with linear probing over a power-of-two array, kept at most half full
 * (doubled when an insert would pass that), and backward-shift deletion: when a source's
 * count drops to zero its slot is emptied and the entries after it that probed past it move
 * back, so lookups never meet tombstones and the table never fills with dead sources.
 *
 * Invariant: every entry in use has count >= 1 and sits at or after its home slot with no
 * empty slot between home and it (wrapping around).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/srclimit.h"
#include "lib/addr_hash.h"

#define INITIAL_SLOTS 1024

struct entry {
	struct sluice_addr a;
	uint32_t count; /* 0 = empty */
};

struct srclimit {
	pthread_mutex_t lock;
	unsigned max;
	size_t mask; /* slots - 1 */
	size_t used;
	struct entry *e;
};

struct srclimit *srclimit_new(unsigned max)
{
	struct srclimit *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->max = max ? max : 1;
	s->mask = INITIAL_SLOTS - 1;
	s->e = calloc(INITIAL_SLOTS, sizeof(*s->e));
	if (!s->e) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void srclimit_free(struct srclimit *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->e);
	free(s);
}

/* Only sources with open connections are in the table, so crafted addresses can only
 * lengthen probes. */
static size_t home(const struct srclimit *s, const struct sluice_addr *a)
{
	return addr_hash(a) & s->mask;
}

/* The slot holding a, or the empty slot where it would go. */
static size_t find(const struct srclimit *s, const struct sluice_addr *a)
{
	size_t i = home(s, a);

	while (s->e[i].count && memcmp(&s->e[i].a, a, sizeof(*a)))
		i = (i + 1) & s->mask;
	return i;
}

static int grow(struct srclimit *s)
{
	struct entry *old = s->e;
	size_t n = s->mask + 1;

	s->e = calloc(n * 2, sizeof(*s->e));
	if (!s->e) {
		s->e = old;
		return -ENOMEM;
	}
	s->mask = n * 2 - 1;
	for (size_t i = 0; i < n; i++)
		if (old[i].count)
			s->e[find(s, &old[i].a)] = old[i];
	free(old);
	return 0;
}

int srclimit_acquire(struct srclimit *s, const struct sluice_addr *a)
{
	int err = 0;
	size_t i;

	pthread_mutex_lock(&s->lock);
	i = find(s, a);
	if (!s->e[i].count && (s->used + 1) * 2 > s->mask + 1) {
		err = grow(s);
		i = find(s, a);
	}
	if (!err && s->e[i].count >= s->max)
		err = -EBUSY;
	if (!err) {
		if (!s->e[i].count++) {
			s->e[i].a = *a;
			s->used++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

void srclimit_release(struct srclimit *s, const struct sluice_addr *a)
{
	size_t i, j;

	pthread_mutex_lock(&s->lock);
	i = find(s, a);
	if (s->e[i].count && !--s->e[i].count) {
		s->used--;
		/* backward shift: pull later entries of the run into the hole when their home
		 * does not lie (cyclically) between the hole and them */
		for (j = (i + 1) & s->mask; s->e[j].count; j = (j + 1) & s->mask) {
			size_t h = home(s, &s->e[j].a);

			if (((j - h) & s->mask) >= ((j - i) & s->mask)) {
				s->e[i] = s->e[j];
				s->e[j].count = 0;
				i = j;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
}

unsigned srclimit_count(struct srclimit *s, const struct sluice_addr *a)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->e[find(s, a)].count;
	pthread_mutex_unlock(&s->lock);
	return n;
}
