/* SPDX-License-Identifier: MIT */
/* parked.h -- the durable retry store: call steps parked in PostgreSQL until they are due
 *
 * Table parked_steps (migration 004): one row per parked (event, step) with the event's
 * queue record, its step index, attempts, due time and the last error. pg_parked_put
 * commits a row (or updates the one already there) before the caller acks the intake
 * queue entry, so a parked step is never only in memory. pg_parked_take leases due rows of
 * one upstream (FOR UPDATE SKIP LOCKED, so several workers on one database never take the
 * same row; a lease that runs out makes the row due again after a crash); the taker
 * deletes a row once its step's effect is committed, or parks it again (an update).
 * Statements run over the worker's pg_steps connection pool.
 */
#ifndef SLUICE_PG_PARKED_H
#define SLUICE_PG_PARKED_H

#include <stddef.h>
#include <stdint.h>

struct pg_steps;

struct pg_parked_row {
	int64_t id; /* 0 for a row not yet parked */
	const char *upstream, *tenant, *idempotency_key;
	uint32_t step;	     /* index of the step in its route */
	int64_t received_us; /* the event's receipt (step_results key) */
	uint32_t attempts;   /* calls made so far */
	int64_t due_us;	     /* Unix µs */
	uint32_t class, tenant_slot;
	const void *event; /* the queue record's bytes */
	size_t len;
	const char *last_error; /* may be NULL */
};

/* Park r: insert it, or update the row of the same (event, step). Returns 0 once committed,
 * or -EIO (err says why: the caller keeps the step in memory, unacked). */
int pg_parked_put(struct pg_steps *ps, const struct pg_parked_row *r, char *err, size_t errlen);

typedef void pg_parked_take_fn(void *arg, const struct pg_parked_row *row);
/* Lease up to max rows of upstream due by now (earliest first) for lease_ms and hand each
 * to fn (the row's strings and bytes live only during the call). Returns the count or
 * -EIO. */
int pg_parked_take(struct pg_steps *ps, const char *upstream, int max, uint32_t lease_ms,
		   pg_parked_take_fn *fn, void *arg, char *err, size_t errlen);
/* The step of row id is done (or dead-lettered): forget it. 0 or -EIO. */
int pg_parked_delete(struct pg_steps *ps, int64_t id, char *err, size_t errlen);
/* Give a leased row back unchanged (its step could not be queued): due again at once. */
int pg_parked_unlease(struct pg_steps *ps, int64_t id, char *err, size_t errlen);

struct pg_parked_stats {
	uint64_t rows;	 /* parked steps of the upstream */
	double oldest_s; /* age of the oldest parked_at, seconds (0: none) */
	uint64_t due;	 /* of which due now and not leased */
};
/* Figures for one upstream. 0 or -EIO. */
int pg_parked_stats(struct pg_steps *ps, const char *upstream, struct pg_parked_stats *st,
		    char *err, size_t errlen);

struct pg_parked_orphan {
	char upstream[64]; /* the name the rows carry (cut to 63 bytes) */
	uint64_t rows;
	double oldest_s;
};
/* Parked steps of upstreams not among known[0..nknown): rows no releaser here takes (an
 * upstream removed from, or renamed in, the routes file). Up to max groups into out, the
 * largest first; the number of groups or -EIO. */
int pg_parked_orphans(struct pg_steps *ps, const char *const *known, int nknown,
		      struct pg_parked_orphan *out, int max, char *err, size_t errlen);

#endif /* SLUICE_PG_PARKED_H */
