/* SPDX-License-Identifier: MIT */
/* writer.h -- the batched, idempotent PostgreSQL writer behind the `store` step
 *
 * Callers submit rows (copied; never blocks); a writer thread groups them into batches of
 * up to batch_max rows or linger_ms, sorts each by (tenant, idempotency_key) and writes it
 * with one INSERT ... ON CONFLICT (tenant, idempotency_key) DO NOTHING inside BEGIN/COMMIT,
 * sent as one libpq pipeline of unnamed statements (PgBouncer transaction pooling safe),
 * over a small pool of connections. A row's outcome is reported exactly once through the
 * done callback, and only after its COMMIT result was read:
 *   STORED        its row is in `events` now;
 *   DUPLICATE     the key was already there (an earlier copy was stored), nothing written;
 *   DEAD_LETTERED PostgreSQL rejected the row (or it was over max_payload_bytes); it is in
 *                 `dead_letters` with the server's error, the rest of its batch was written;
 *   RETRY_LATER   the writer was freed before the row's outcome was known: redeliver it.
 * A database that is down, restarting or stalled only delays rows: they stay pending, the
 * pool reconnects with capped, jittered backoff and drains the backlog when it returns.
 * The number of rows submitted but not yet reported is bounded by max_pending; beyond it
 * pg_writer_submit() returns -EAGAIN at once, so a stalled database never stalls callers.
 */
#ifndef SLUICE_PG_WRITER_H
#define SLUICE_PG_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pg_row_status {
	PG_ROW_STORED,
	PG_ROW_DUPLICATE,
	PG_ROW_DEAD_LETTERED,
	PG_ROW_RETRY_LATER,
};

enum pg_health {
	PG_HEALTH_CONNECTING,  /* no connection yet, none failed yet */
	PG_HEALTH_READY,       /* connected, the last batch committed */
	PG_HEALTH_DEGRADED,    /* connected, but the last batch failed (timeout, lock, deadlock) */
	PG_HEALTH_UNREACHABLE, /* no connection: the last attempt failed */
};

/* One event to store. Strings are NUL-terminated; payload is JSON text of payload_len bytes.
 * Everything is copied by pg_writer_submit(); cookie is handed back to the done callback. */
struct pg_row {
	const char *tenant;
	const char *idempotency_key;
	const char *type;
	const char *class_name; /* critical | normal | low */
	const char *payload;
	size_t payload_len;
	int64_t received_us; /* accept time, Unix microseconds */
	void *cookie;
};

/* Called on the writer thread (or in pg_writer_free() for RETRY_LATER), once per row. */
typedef void pg_writer_done_fn(void *ctx, void *cookie, enum pg_row_status status);

/* Zero means the default shown. */
struct pg_writer_config {
	const char *conninfo;	  /* libpq conninfo (required); several hosts: hosts.h */
	int pool_size;		  /* 4 connections */
	int batch_max;		  /* 500 rows */
	int linger_ms;		  /* 5 ms: oldest row waits at most this for a full batch */
	int max_pending;	  /* 100000 rows submitted and not yet reported */
	int statement_timeout_ms; /* 10000; <0: none */
	int backoff_min_ms;	  /* 50 */
	int backoff_max_ms;	  /* 1000: writes resume ~1 s after an outage ends */
	size_t max_payload_bytes; /* 1 MiB; bigger payloads go to dead_letters unsent */
};

#define PG_HIST_BUCKETS 16
/* A histogram as plain numbers: bucket[i] counts values <= bounds[i] (and > bounds[i-1]);
 * bucket[nbounds] counts the rest (+Inf). Not cumulative. */
struct pg_hist {
	const uint64_t *bounds;
	int nbounds;
	uint64_t bucket[PG_HIST_BUCKETS];
	uint64_t count;
	uint64_t sum;
};

/* Bounds of the two histograms below: rows per batch, batch latency in microseconds. */
#define PG_WRITER_ROWS_BOUNDS	 12
#define PG_WRITER_LATENCY_BOUNDS 15
extern const uint64_t pg_writer_rows_bounds[PG_WRITER_ROWS_BOUNDS];
extern const uint64_t pg_writer_latency_bounds[PG_WRITER_LATENCY_BOUNDS];

struct pg_writer_stats {
	uint64_t rows_submitted;
	uint64_t rows_stored;
	uint64_t rows_duplicate;
	uint64_t rows_dead_lettered;
	uint64_t rows_retry_later;
	uint64_t rows_rejected_full; /* submit calls refused with -EAGAIN */
	uint64_t pending;	     /* submitted, not yet reported */
	uint64_t batches_committed;  /* event batches whose COMMIT was read */
	uint64_t batches_failed;     /* attempts that failed and were retried */
	uint64_t batch_splits;	     /* halvings to isolate rejected rows */
	uint64_t connects;	     /* successful connections */
	uint64_t connect_failures;
	int connections_up;
	enum pg_health health;
	struct pg_hist batch_rows;	 /* rows per committed batch */
	struct pg_hist batch_latency_us; /* send to COMMIT read, per committed batch */
	char last_error[256];		 /* last server or connection error, "" if none */
};

struct pg_writer;

/* Start a writer (and its thread). It connects in the background: an unreachable database
 * is not an error here. Returns NULL with errno EINVAL for a bad config (missing conninfo,
 * batch_max outside 1..5000, negative values, a conninfo libpq cannot parse), or ENOMEM.
 * done may be NULL. */
struct pg_writer *pg_writer_new(const struct pg_writer_config *cfg, pg_writer_done_fn *done,
				void *ctx);

/* Copy row into the writer. 0, or -EAGAIN when max_pending rows are outstanding (keep it
 * queued and retry later), -EINVAL for a missing field, -ENOMEM. Never blocks on I/O. */
int pg_writer_submit(struct pg_writer *w, const struct pg_row *row);

/* Wait until every submitted row has been reported (linger is skipped meanwhile).
 * 0, or -ETIMEDOUT after timeout_ms (<0: forever). */
int pg_writer_drain(struct pg_writer *w, int timeout_ms);

/* A consistent copy of the counters and histograms. */
void pg_writer_get_stats(struct pg_writer *w, struct pg_writer_stats *out);
enum pg_health pg_writer_health(struct pg_writer *w);
const char *pg_health_name(enum pg_health h);
const char *pg_row_status_name(enum pg_row_status s);

/* Stop the thread, close the connections, and report every row not yet reported as
 * RETRY_LATER (a batch in flight may have committed: redelivery finds it DUPLICATE).
 * NULL-safe. */
void pg_writer_free(struct pg_writer *w);

#endif /* SLUICE_PG_WRITER_H */
