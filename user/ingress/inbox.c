// SPDX-License-Identifier: MIT
/* inbox.c -- messages from other threads into one io_uring loop, that never fail to post
 *
 * An array under a mutex plus an eventfd. Invariant: cap >= n + reserved, so a post always
 * has room; the array grows only in inbox_reserve(). inbox_take() copies out and keeps the
 * array (reservations outstanding still need its room). The eventfd is written when a
 * message lands in an empty inbox (or on inbox_wake), so the reader must take until
 * inbox_take() returns 0 after each wake.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ingress/inbox.h"

struct inbox {
	pthread_mutex_t lock;
	struct inbox_msg *msgs;
	size_t n, cap, reserved;
	int efd;
};

struct inbox *inbox_new(void)
{
	struct inbox *ib = calloc(1, sizeof(*ib));

	if (!ib)
		return NULL;
	ib->efd = eventfd(0, EFD_CLOEXEC);
	if (ib->efd < 0) {
		int err = errno;

		free(ib);
		errno = err;
		return NULL;
	}
	pthread_mutex_init(&ib->lock, NULL);
	return ib;
}

void inbox_free(struct inbox *ib)
{
	if (!ib)
		return;
	close(ib->efd);
	free(ib->msgs);
	pthread_mutex_destroy(&ib->lock);
	free(ib);
}

int inbox_fd(const struct inbox *ib)
{
	return ib->efd;
}

int inbox_reserve(struct inbox *ib)
{
	int err = 0;

	pthread_mutex_lock(&ib->lock);
	if (ib->n + ib->reserved == ib->cap) {
		size_t cap = ib->cap ? ib->cap * 2 : 64;
		struct inbox_msg *p = realloc(ib->msgs, cap * sizeof(*p));

		if (p) {
			ib->msgs = p;
			ib->cap = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (!err)
		ib->reserved++;
	pthread_mutex_unlock(&ib->lock);
	return err;
}

void inbox_unreserve(struct inbox *ib)
{
	pthread_mutex_lock(&ib->lock);
	ib->reserved--;
	pthread_mutex_unlock(&ib->lock);
}

void inbox_wake(struct inbox *ib)
{
	uint64_t one = 1;

	/* an eventfd write fails only when the counter would overflow: it is readable then */
	if (write(ib->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
}

void inbox_post(struct inbox *ib, const struct inbox_msg *m)
{
	bool first;

	pthread_mutex_lock(&ib->lock);
	if (!ib->reserved) /* a post without its reservation: a bug in the caller */
		abort();
	ib->reserved--;
	first = !ib->n;
	ib->msgs[ib->n++] = *m;
	pthread_mutex_unlock(&ib->lock);
	/* Only the first message into an empty inbox writes the eventfd: the reader takes
	 * until empty after every wake, so later ones ride on that wake. A completion burst
	 * (one delivery report or journal sync answering many events) is one write, one
	 * wake-up of the loop, instead of one each. */
	if (first)
		inbox_wake(ib);
}

size_t inbox_take(struct inbox *ib, struct inbox_msg *out, size_t max)
{
	size_t k;

	pthread_mutex_lock(&ib->lock);
	k = ib->n < max ? ib->n : max;
	if (k) { /* msgs is NULL until the first post: memcpy(out, NULL, 0) is undefined */
		memcpy(out, ib->msgs, k * sizeof(*out));
		memmove(ib->msgs, ib->msgs + k, (ib->n - k) * sizeof(*out));
		ib->n -= k;
	}
	pthread_mutex_unlock(&ib->lock);
	return k;
}
