/* SPDX-License-Identifier: MIT */
/* pgrows.h -- test rows for the PostgreSQL writer, and a ledger of the outcomes it reports
 *
 * Row i of a run gets tenant "t<i % 4>", key "<prefix>-<i>" and a small JSON payload; its
 * cookie is i + 1. The ledger records each row's reported status and counts rows reported
 * twice, so a test can say "every row exactly once".
 */
#ifndef SLUICE_TEST_PGROWS_H
#define SLUICE_TEST_PGROWS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sink/pg/writer.h"

struct pgr_ledger {
	int n;
	uint8_t *status;   /* per row: 0 = not reported, 1 + enum pg_row_status */
	uint64_t count[4]; /* per status */
	uint64_t twice;	   /* rows reported more than once (must stay 0) */
	pthread_mutex_t mu;
};

int pgr_ledger_init(struct pgr_ledger *l, int n);
void pgr_ledger_fini(struct pgr_ledger *l);
/* pg_writer_done_fn for a ledger (ctx = the ledger, cookie = row index + 1) */
void pgr_done(void *ctx, void *cookie, enum pg_row_status status);
/* rows never reported */
int pgr_missing(struct pgr_ledger *l);

/* Fill row (pointing into buf) for row i of the run named prefix. */
void pgr_make(struct pg_row *row, char *buf, size_t buflen, const char *prefix, int i);
/* Submit rows [from, to) of prefix, waiting 1 ms whenever the writer says -EAGAIN.
 * Returns 0 or the first other error. */
int pgr_submit_range(struct pg_writer *w, const char *prefix, int from, int to);

/* Wait up to timeout_ms for the writer's health to become h (published by its thread a
 * moment after the event that changes it). true when it did. */
bool pgr_wait_health(struct pg_writer *w, enum pg_health h, int timeout_ms);

#endif /* SLUICE_TEST_PGROWS_H */
