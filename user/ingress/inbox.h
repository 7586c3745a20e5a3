/* SPDX-License-Identifier: MIT */
/* inbox.h -- messages from other threads into one io_uring loop, that never fail to post
 *
 * The journal (or Kafka, or the Redis fast path) completes an append on its own thread; only
 * the loop may touch the connection, so the completion becomes a message in the loop's inbox
 * and a write to its eventfd, which the ring has a read armed on.
 *
 * A completion cannot be refused: the event may already be durable, and a lost message
 * would leave its connection waiting forever (or answered 503 for an event that is stored).
 * So a connection reserves its slot before it appends (inbox_reserve, on the loop thread,
 * where running out of memory can still be answered 503), and the completion's
 * inbox_post() only fills a reserved slot. Unused reservations are given back with
 * inbox_unreserve() when the queue refused the append at once.
 */
#ifndef SLUICE_INGRESS_INBOX_H
#define SLUICE_INGRESS_INBOX_H

#include <stddef.h>
#include <stdint.h>

struct inbox_msg {
	uint64_t token; /* the receiver's own identification (the loop's slot and generation) */
	int err;	/* 0 or -errno from the queue */
	uint64_t id;	/* queue id of the durable event */
};

struct inbox;

/* NULL + errno. */
struct inbox *inbox_new(void);
/* NULL-safe. Messages still in it are dropped. */
void inbox_free(struct inbox *ib);
/* The eventfd to arm a read on: readable when messages arrived or inbox_wake() was called. */
int inbox_fd(const struct inbox *ib);
/* Make room for one future inbox_post(). 0 or -ENOMEM. Any thread. */
int inbox_reserve(struct inbox *ib);
/* Give back a reservation that will not be posted. */
void inbox_unreserve(struct inbox *ib);
/* Deliver a message into a reserved slot (consumes the reservation) and wake the reader.
 * Any thread; never fails. */
void inbox_post(struct inbox *ib, const struct inbox_msg *m);
/* Wake the reader without a message (drain requests). */
void inbox_wake(struct inbox *ib);
/* Move up to max messages, oldest first, into out. Returns how many. After each wake the
 * reader calls this until it returns 0: only a post into an empty inbox wakes it. */
size_t inbox_take(struct inbox *ib, struct inbox_msg *out, size_t max);

#endif /* SLUICE_INGRESS_INBOX_H */
