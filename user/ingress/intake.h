/* SPDX-License-Identifier: MIT */
/* intake.h -- what the ingress hands the durable queue: one accepted event, and the queue
 *
 * The API (api.c) builds an ingress_event for each admitted POST and appends it through an
 * ingress_queue, an adapter sluiced.c builds over user/queue (with the Redis duplicate fast
 * path, dedupe.c, in front when configured). Kept apart from the API so that the adapters
 * depend on this contract only.
 */
#ifndef SLUICE_INGRESS_INTAKE_H
#define SLUICE_INGRESS_INTAKE_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/abi.h"

/* What the queue gets for one accepted event. Pointers are valid during append() only. */
struct ingress_event {
	uint32_t tenant_slot;
	const char *tenant;
	enum sluice_class class; /* after demotion */
	bool demoted;
	const char *type;
	const char *idempotency_key;
	const char *body; /* the envelope as received */
	size_t body_len;
	uint64_t received_ns; /* CLOCK_MONOTONIC */
};

/* Called once per append, from any thread: err 0 = durable (id is its queue id). */
typedef void ingress_durable_fn(void *arg, int err, uint64_t id);

/* The durable queue as the ingress sees it (adapter over user/queue). */
struct ingress_queue {
	void *q;
	/* 0 = will call done exactly once; -errno = refused now (-ENOSPC full, -EIO disk,
	 * -EAGAIN shedding), done is not called */
	int (*append)(void *q, const struct ingress_event *ev, ingress_durable_fn *done, void *arg);
	/* 0 when appends are accepted, else -errno and a reason in why */
	int (*writable)(void *q, const char **why);
	uint64_t (*depth)(void *q);
};

/* The HTTP edge's limits, filled by sluiced.c from its settings (so the HTTP code does not
 * depend on the daemon's configuration). */
struct ingress_limits {
	uint64_t max_body;	   /* bytes of one request body (413 above) */
	size_t max_header_bytes;   /* whole head (431 above) */
	size_t max_line;	   /* request line */
	unsigned max_headers;	   /* header fields */
	unsigned max_conns;	   /* open connections over all loops */
	uint64_t header_ns;	   /* a started request must be complete within this (408) */
	uint64_t idle_ns;	   /* keep-alive connection with nothing received */
	long long retry_after_503; /* seconds, in Retry-After of 503 answers */
};

#endif /* SLUICE_INGRESS_INTAKE_H */
