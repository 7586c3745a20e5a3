/* SPDX-License-Identifier: MIT */
/* steps.h -- step_results and dead_letters: what each step of an event did, durably
 *
 * The worker asks before running a `call` step whether an earlier delivery already finished
 * it (a crash between the call and the ack must not call the upstream twice), records every
 * step outcome, and dead-letters a failed essential step together with its step_results row
 * in one transaction (so a redelivery sees `failed` and does not dead-letter twice).
 * Blocking libpq calls on the caller's thread (pool workers), over a small connection pool;
 * unnamed statements only (PgBouncer transaction pooling safe).
 */
#ifndef SLUICE_PG_STEPS_H
#define SLUICE_PG_STEPS_H

#include <stddef.h>
#include <stdint.h>

struct pg_steps;

/* The identity of one step of one event. */
struct pg_step_key {
	const char *tenant, *idempotency_key, *step;
	int64_t received_us; /* the event's enqueue time, Unix µs (partition key) */
};

struct pg_steps_stats {
	uint64_t lookups, writes, dead_letters, errors, connects;
};

/* conninfo is copied; connections open lazily. NULL + errno (ENOMEM, EINVAL). */
struct pg_steps *pg_steps_new(const char *conninfo, int max_conns);
void pg_steps_free(struct pg_steps *ps);

/* Status recorded for k ("done", "skipped", "failed", "fallback") into status; 1 when a row
 * exists, 0 when none, -EIO when the database could not answer (err says why). */
int pg_steps_get(struct pg_steps *ps, const struct pg_step_key *k, char *status, size_t cap,
		 char *err, size_t errlen);
/* Record an outcome (insert or update). result_json and error may be NULL. 0 or -EIO. */
int pg_steps_put(struct pg_steps *ps, const struct pg_step_key *k, const char *status,
		 uint32_t attempts, const char *result_json, const char *error, char *err,
		 size_t errlen);
/* The queued event a dead letter keeps, for its replay: the record bytes, and the class
 * (enum sluice_class) and tenant slot of its queue entry. */
struct pg_dead_event {
	const void *data;
	size_t len;
	uint32_t class, tenant_slot;
};

/* In one transaction: step_results `failed` and a dead_letters row with reason, last error
 * and the event (bytes, class, tenant slot). 0 or -EIO. */
int pg_steps_dead_letter(struct pg_steps *ps, const struct pg_step_key *k, const char *reason,
			 uint32_t attempts, const char *last_error, const struct pg_dead_event *ev,
			 char *err, size_t errlen);

/* received_at (Unix µs) of the stored event (tenant, idempotency_key): 1 and *received_us
 * when it exists, 0 when not, -EIO. Tells a redelivery of the same event (same time) from
 * a duplicate sent again by a client (another time). */
int pg_steps_event_received(struct pg_steps *ps, const char *tenant, const char *key,
			    int64_t *received_us, char *err, size_t errlen);

void pg_steps_get_stats(struct pg_steps *ps, struct pg_steps_stats *st);

/* Claim the calls of (tenant, key) for the event received at received_us, for a route
 * without a store step: 1 when this event holds the claim (new, or its own from an earlier
 * delivery), 0 when another copy of the key (another receipt time) holds it, -EIO. */
int pg_steps_claim(struct pg_steps *ps, const char *tenant, const char *key, int64_t received_us,
		   char *err, size_t errlen);

/* One statement on a pooled connection, for the worker's other tables (parked.c): text
 * parameters unless fmts says binary (lens then gives their lengths). Returns the result
 * when its status is want (a libpq ExecStatusType: PGRES_COMMAND_OK, PGRES_TUPLES_OK; the
 * caller PQclears it) or NULL with err filled. */
struct pg_result;
struct pg_result *pg_steps_exec(struct pg_steps *ps, const char *sql, int n,
				const char *const *vals, const int *lens, const int *fmts, int want,
				char *err, size_t errlen);

#endif /* SLUICE_PG_STEPS_H */
