// SPDX-License-Identifier: MIT
/* writer_state.c -- the PostgreSQL writer's shared state: incoming rows, reporting
 *
 * The bottom of the writer's three files (writer.c -> writer_loop.c -> writer_state.c):
 * what both the callers' side and the writer thread do to the state in writer_int.h.
 * Rows move from the incoming list (filled by pg_writer_submit under mu) to the thread's
 * ready list here; every row leaves the writer through pg_writer_report_row, exactly once,
 * and pg_writer_account takes it off `outstanding` under mu, waking drainers at zero.
 * Nothing here calls back into writer.c or writer_loop.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/log.h"
#include "sink/pg/writer_int.h"

/* ---- reporting ------------------------------------------------------------------------ */

/* Report r and its twins with status s (writer_int.h); frees them. */
void pg_writer_report_row(struct pg_writer *w, struct pg_wrow *r, enum pg_row_status s,
			  uint64_t count[4])
{
	while (r) {
		struct pg_wrow *next = r->twins;

		if (w->done)
			w->done(w->ctx, r->cookie, s);
		count[s]++;
		free(r);
		/* later copies of the key share the outcome; a stored key makes them duplicates */
		if (s == PG_ROW_STORED)
			s = PG_ROW_DUPLICATE;
		r = next;
	}
}

/* Count reported rows into the stats; the last outstanding one wakes drainers. */
void pg_writer_account(struct pg_writer *w, const uint64_t count[4])
{
	uint64_t n = count[0] + count[1] + count[2] + count[3];

	pthread_mutex_lock(&w->mu);
	w->st.rows_stored += count[PG_ROW_STORED];
	w->st.rows_duplicate += count[PG_ROW_DUPLICATE];
	w->st.rows_dead_lettered += count[PG_ROW_DEAD_LETTERED];
	w->st.rows_retry_later += count[PG_ROW_RETRY_LATER];
	w->outstanding -= n;
	if (!w->outstanding)
		pthread_cond_broadcast(&w->drained);
	pthread_mutex_unlock(&w->mu);
}

/* Report every row of b with its own status (or force, when >= 0) and free b. */
void pg_writer_report_batch(struct pg_writer *w, struct pg_batch *b, int force)
{
	uint64_t count[4] = {0};

	for (int i = 0; i < b->n; i++)
		pg_writer_report_row(w, b->rows[i],
				     force >= 0 ? (enum pg_row_status)force : b->rows[i]->status,
				     count);
	pg_writer_account(w, count);
	pg_batch_free(b);
}

/* Move the submitted rows to the ready list; also latches the drain flag. */
void pg_writer_take_incoming(struct pg_writer *w)
{
	uint64_t eat;

	if (read(w->efd, &eat, sizeof(eat)) < 0 && errno != EAGAIN)
		log_warn("postgres: eventfd read failed", "errno=%d", errno);
	pthread_mutex_lock(&w->mu);
	if (w->in_head) {
		*w->ready_tail = w->in_head;
		w->ready_tail = w->in_tail;
		w->ready_count += w->in_count;
		w->in_head = NULL;
		w->in_tail = &w->in_head;
		w->in_count = 0;
	}
	w->draining = w->drainers > 0;
	pthread_mutex_unlock(&w->mu);
}
