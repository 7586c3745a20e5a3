/* SPDX-License-Identifier: MIT */
/* writer_int.h -- the writer's state, shared by its API half and its thread half
 *
 * Private to user/sink/pg/writer.c (callers' side: submit, drain, stats, free),
 * user/sink/pg/writer_loop.c (the writer thread: batches, connections, retries) and
 * user/sink/pg/writer_state.c (incoming rows, reporting, accounting, the clock), which call
 * each other in that order only. Fields above "writer thread only" are guarded by mu; the
 * rest belong to the writer thread (and to pg_writer_free() once the thread has been joined).
 */
#ifndef SLUICE_PG_WRITER_INT_H
#define SLUICE_PG_WRITER_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sink/pg/batch.h"
#include "sink/pg/hosts.h"
#include "sink/pg/writer.h"

#define MS_NS 1000000ULL

enum slot_state { SLOT_DOWN, SLOT_CONNECTING, SLOT_IDLE, SLOT_BUSY };

struct slot {
	PGconn *c;
	enum slot_state st;
	struct pg_batch *b;		/* BUSY: the batch in flight */
	uint64_t retry_at_ns;		/* DOWN: next connection attempt */
	uint64_t deadline_ns;		/* CONNECTING/BUSY: give up after */
	int fails;			/* consecutive failures, for the backoff */
	int host;			/* index into hosts: the one connected or tried next */
	int tried;			/* hosts failed in the current round (0: start one) */
	PostgresPollingStatusType want; /* CONNECTING: what PQconnectPoll waits for */
	short revents;
};

struct pg_writer {
	struct pg_writer_config cfg;
	struct pg_hosts hosts; /* cfg.conninfo split per host; preferred is writer thread only */
	pg_writer_done_fn *done;
	void *ctx;
	pthread_t thread;
	int efd;

	pthread_mutex_t mu; /* guards everything down to the next comment */
	pthread_cond_t drained;
	struct pg_wrow *in_head, **in_tail;
	int in_count;
	uint64_t outstanding;
	uint64_t seq;
	int drainers;
	bool stop;
	struct pg_writer_stats st;

	/* writer thread only */
	struct pg_wrow *ready_head, **ready_tail;
	int ready_count;
	bool draining;
	struct pg_batch *retry;
	struct slot *slots;
	uint64_t next_upkeep_ns;
	unsigned int rnd;
	bool ever_failed, last_failed;
};

/* The writer thread's body (arg: the writer). Returns when w->stop is set. writer_loop.c */
void *pg_writer_main(void *arg);

/* ---- writer_state.c ---- */
/* Move submitted rows to the ready list (writer thread, or after it was joined). */
void pg_writer_take_incoming(struct pg_writer *w);
/* Report each row of b with its own status (or force, when >= 0), then free b. */
void pg_writer_report_batch(struct pg_writer *w, struct pg_batch *b, int force);
/* Report one row and its twins with status s, counting them into count[]. */
void pg_writer_report_row(struct pg_writer *w, struct pg_wrow *r, enum pg_row_status s,
			  uint64_t count[4]);
/* Apply count[] to the stats and the outstanding total; wakes drainers at zero. */
void pg_writer_account(struct pg_writer *w, const uint64_t count[4]);

#endif /* SLUICE_PG_WRITER_INT_H */
