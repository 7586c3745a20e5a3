/* SPDX-License-Identifier: MIT */
/* pgstream.h -- a paced stream of rows through a PostgreSQL writer, and what became of them
 *
 * The failover and partition tests (and their report scenarios) need the same things: a
 * writer on a (multi-host) conninfo, a producer thread submitting rows "<prefix>-<i>" at a
 * fixed rate the way the journal would (holding a row while the writer is full), the wall
 * time at which each row was acknowledged (reported stored or duplicate: the moment the
 * journal may forget it), and afterwards which acknowledged keys a server does not have.
 */
#ifndef SLUICE_TEST_PGSTREAM_H
#define SLUICE_TEST_PGSTREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgharness.h"
#include "pgrows.h"
#include "sink/pg/writer.h"

struct pgs_stream {
	struct pg_writer *w;
	struct pgr_ledger l;
	char prefix[32];
	int n, rate;	 /* rows, rows per second */
	int64_t *ack_us; /* per row: wall-clock µs of its acknowledgement, 0 = not (yet) */
	uint64_t max_pending;
	int submitted; /* rows handed to the writer so far (atomic) */
	int ret;       /* the producer's: 0 or the first submit error */
	bool stop;     /* ask the producer to stop early (atomic) */
	pthread_t thr;
	bool running;
};

/* Start a writer on cfg (conninfo etc.; done/ctx are the stream's) and a producer of n rows
 * at rate rows/s. 0 or -errno. */
int pgs_start(struct pgs_stream *s, const struct pg_writer_config *cfg, const char *prefix, int n,
	      int rate);
/* Rows acknowledged so far. */
int pgs_acked(struct pgs_stream *s);
/* The largest number of rows the writer held (submitted, not reported) seen by pgs_sample. */
void pgs_sample(struct pgs_stream *s);
/* Wait for the producer, then for the writer to drain (timeout_ms). 0 or -errno. */
int pgs_finish(struct pgs_stream *s, int timeout_ms);
/* Stop the producer and free the writer (unreported rows become RETRY_LATER). */
void pgs_free(struct pgs_stream *s);

struct pgs_loss {
	int acked;	    /* rows acknowledged */
	int lost;	    /* of those, keys missing on the server */
	double lost_span_s; /* from the first to the last lost acknowledgement */
	int64_t first_lost_us, last_lost_us;
};
/* Which acknowledged keys the server (over its unix socket) does not have. 0 or -1. */
int pgs_check(struct pgs_stream *s, const struct pgh_server *srv, struct pgs_loss *out);
/* Seconds from wall time t_us to the first row the server stored after it (its stored_at),
 * -1 when none. */
double pgs_first_stored_after(const struct pgs_stream *s, const struct pgh_server *srv,
			      int64_t t_us);
/* Wall clock in µs. */
int64_t pgs_now_us(void);

#endif /* SLUICE_TEST_PGSTREAM_H */
