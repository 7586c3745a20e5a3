// SPDX-License-Identifier: MIT
/* src_rate.c -- a rate per source address (TLS handshakes per client), shared by all threads
 *
 * One mutex over the table: it is taken once per accepted TLS connection, next to a
 * handshake that costs a thousand times more, so a lock-free table would buy nothing.
 */
#include <errno.h>
#include <linux/types.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/gcra.h"
#include "ingress/src_rate.h"
#include "lib/addr_hash.h"

#define WINDOW 8

struct src_slot {
	struct sluice_addr a;
	uint64_t tat; /* 0 = free */
};

struct src_rate {
	pthread_mutex_t lock;
	uint64_t interval_ns, burst;
	uint32_t mask;
	struct src_slot *v;
};

struct src_rate *src_rate_new(unsigned rate, unsigned slots)
{
	struct src_rate *r;
	uint32_t n = 64;

	if (!rate) {
		errno = EINVAL;
		return NULL;
	}
	while (n < slots && n < (1u << 24))
		n <<= 1;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->v = calloc(n, sizeof(*r->v)))) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->interval_ns = 1000000000ull / rate;
	r->burst = rate;
	r->mask = n - 1;
	return r;
}

void src_rate_free(struct src_rate *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->v);
	free(r);
}

/* The slot of src in its window: its own, else a free one, else the one idle longest. */
static struct src_slot *find(struct src_rate *r, const struct sluice_addr *src)
{
	uint32_t h = addr_hash(src);
	struct src_slot *victim = NULL;

	for (uint32_t i = 0; i < WINDOW; i++) {
		struct src_slot *s = &r->v[(h + i) & r->mask];

		if (s->tat && !memcmp(&s->a, src, sizeof(*src)))
			return s;
		if (!victim || s->tat < victim->tat)
			victim = s;
	}
	victim->a = *src;
	victim->tat = 0;
	return victim;
}

bool src_rate_pass(struct src_rate *r, const struct sluice_addr *src, uint64_t now)
{
	__u64 next, retry;
	struct src_slot *s;
	bool pass;

	pthread_mutex_lock(&r->lock);
	s = find(r, src);
	pass = gcra_decide(s->tat, now, r->interval_ns, r->burst, &next, &retry) == GCRA_PASS;
	if (pass)
		s->tat = next;
	else if (!s->tat)
		s->tat = now; /* keep the slot claimed */
	pthread_mutex_unlock(&r->lock);
	return pass;
}
