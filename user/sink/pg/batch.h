/* SPDX-License-Identifier: MIT */
/* batch.h -- one pipelined write on a libpq connection: an events batch, a dead letter, upkeep
 *
 * A batch is sent as one pipeline of unnamed statements ending in one Sync, so it costs one
 * round trip and PgBouncer (transaction pooling, one Sync in flight) keeps it on one server:
 *   events:      BEGIN; set_config(synchronous_commit on, statement_timeout, local);
 *                INSERT ... ON CONFLICT DO NOTHING RETURNING tenant, idempotency_key;
 *                COMMIT; Sync
 *   dead letter: BEGIN; set_config(...); INSERT INTO dead_letters ...; COMMIT; Sync
 *   upkeep:      SELECT sluice_ensure_partitions(1, 14); Sync
 *   rollback:    ROLLBACK; Sync  (after a failed batch left its transaction aborted)
 * Rows travel as binary arrays (no escaping; the server still validates UTF-8 and JSON).
 * pg_batch_consume() reads results without blocking; a batch succeeded only when every
 * result, COMMIT's included, was OK and the Sync was read.
 */
#ifndef SLUICE_PG_BATCH_H
#define SLUICE_PG_BATCH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "sink/pg/writer.h"

/* A submitted row, copied into one allocation. Twins are later rows of the same batch with
 * the same (tenant, idempotency_key): they are not sent, and share their primary's fate. */
struct pg_wrow {
	struct pg_wrow *next;  /* pending FIFO link */
	struct pg_wrow *twins; /* primary: first twin; twin: next twin */
	const char *tenant, *key, *type, *cls;
	const char *payload;
	size_t payload_len;
	int64_t received_us;
	uint64_t seq;	    /* submission order, keeps the first copy primary */
	uint64_t submit_ns; /* CLOCK_MONOTONIC at submit (linger) */
	void *cookie;
	enum pg_row_status status; /* result of the last attempt */
	char data[];
};

enum pg_batch_kind { PG_BATCH_EVENTS, PG_BATCH_DEAD_LETTER, PG_BATCH_UPKEEP, PG_BATCH_ROLLBACK };

/* How a failed batch failed, which decides what happens next. */
enum pg_failure {
	PG_FAIL_NONE,
	PG_FAIL_DATA,	    /* the server rejected a value (SQLSTATE 22/23/54): split */
	PG_FAIL_TRANSIENT,  /* timeout, lock, deadlock, missing table...: retry later */
	PG_FAIL_CONNECTION, /* the connection broke: outcome unknown, retry elsewhere */
	PG_FAIL_READ_ONLY,  /* SQLSTATE 25006: a standby or read-only session; find the primary */
};

struct pg_batch {
	struct pg_batch *next;
	enum pg_batch_kind kind;
	struct pg_wrow **rows; /* owned array; the rows themselves are the writer's */
	int n;
	int attempts;
	uint64_t not_before_ns; /* CLOCK_MONOTONIC: do not send before */
	uint64_t sent_ns;
	const char *dl_reason; /* dead letter: why */
	char *dl_error;	       /* dead letter: the error to record (owned) */
	bool failed;
	bool dl_done; /* dead letter: its INSERT returned OK */
	char sqlstate[6];
	char error[400];
};

/* A batch over rows[0..n) (the array is taken over). NULL with errno on ENOMEM. */
struct pg_batch *pg_batch_new(enum pg_batch_kind kind, struct pg_wrow **rows, int n);
void pg_batch_free(struct pg_batch *b);

/* Events batch: sort rows by (tenant, key, seq) and hang later copies of a key on the
 * first as twins. Returns the number of twins removed. */
int pg_batch_dedupe(struct pg_batch *b);

/* Split b after its first half: b keeps rows [0, n/2), the returned batch the rest
 * (NULL + ENOMEM, b unchanged). Only for n >= 2. */
struct pg_batch *pg_batch_split(struct pg_batch *b);

/* Queue b's pipeline on c (in pipeline mode, non-blocking) and start flushing it.
 * 0, or -EIO with the message in b->error when libpq refused (connection broken). */
int pg_batch_send(PGconn *c, struct pg_batch *b, int statement_timeout_ms);

/* Read whatever results have arrived. 1 when the Sync was read (b->failed tells how it
 * went; on success each row's status is STORED or DUPLICATE), 0 when more is to come,
 * -EIO when the connection broke (message in b->error). */
int pg_batch_consume(PGconn *c, struct pg_batch *b);

/* Classify a finished, failed batch (or one whose connection broke). */
enum pg_failure pg_batch_failure(const struct pg_batch *b, PGconn *c);

#endif /* SLUICE_PG_BATCH_H */
