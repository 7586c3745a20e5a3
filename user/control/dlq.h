/* SPDX-License-Identifier: MIT */
/* dlq.h -- replay of dead letters an operator asked for (sluicectl dlq replay)
 *
 * A thread polls dead_letters for rows with replay_requested_at set and replayed_at not,
 * and for each: deletes that event's `failed` step_results row for the step (same tenant,
 * key, step and received time), appends the stored event record to the queue with its
 * original received time, class and tenant slot, and once the queue says durable, stamps
 * replayed_at. Rows of the `store` step (PostgreSQL refused the row itself) and
 * rows without a stored event are marked replayed with a note instead: replaying them
 * unchanged would fail the same way.
 */
#ifndef SLUICE_DLQ_H
#define SLUICE_DLQ_H

#include <stdint.h>

#include "queue/queue.h"

struct dlq_replayer;

struct dlq_stats {
	uint64_t replayed, refused, errors;
};

/* Poll every period_ms (>= 10) on conninfo, append into q (borrowed). NULL + errno. */
struct dlq_replayer *dlq_replayer_new(const char *conninfo, struct queue *q, int period_ms);
/* Stop the thread, then wait until every append it made has completed (the completion
 * refers to the replayer): q must still be running. NULL-safe. */
void dlq_replayer_free(struct dlq_replayer *r);
void dlq_replayer_stats(struct dlq_replayer *r, struct dlq_stats *st);

#endif /* SLUICE_DLQ_H */
