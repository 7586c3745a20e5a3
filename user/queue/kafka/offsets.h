/* SPDX-License-Identifier: MIT */
/* offsets.h -- per-partition tracker of out-of-order completions for offset commits
 *
 * A Kafka consumer may only commit offset N when every record below N is finished: the
 * committed offset is where a new owner of the partition starts reading. The worker finishes
 * records out of order (pools, retries), so per partition this keeps the records handed out
 * (by offset, increasing) with a done flag, and the committable offset is the first
 * unfinished record's offset, or last handed out + 1 when all are done (Kafka's convention:
 * the committed offset is the next record to read). Offsets that never reach the consumer
 * (gaps: compaction, transaction markers) lie between tracked records and hold nothing back.
 *
 * Storage is a ring of the records from the first unfinished one on; finished records at the
 * head are dropped as soon as they are, so memory is bounded by the span from the oldest
 * unfinished record to the newest handed out. Lookup on completion is a binary search.
 * Not thread-safe: the owner (the consumer) holds its lock around every call.
 */
#ifndef SLUICE_KAFKA_OFFSETS_H
#define SLUICE_KAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kafka_offset_slot {
	int64_t offset;
	uint64_t ts; /* the record's due time (CLOCK_REALTIME ns), for the oldest-unfinished age */
	bool done;
};

struct kafka_offsets {
	struct kafka_offset_slot *ring;
	size_t cap, head, len; /* len slots from head, offsets increasing */
	int64_t next;	       /* last handed out + 1; -1 before the first record */
	uint64_t gen;	       /* bumped by reset: completions of an older generation are stale */
};

void kafka_offsets_init(struct kafka_offsets *t);
void kafka_offsets_fini(struct kafka_offsets *t);

/* A record was handed out. offset must be above every offset added since the last reset
 * (-EINVAL otherwise, tracker unchanged); -ENOMEM when the ring cannot grow. */
int kafka_offsets_add(struct kafka_offsets *t, int64_t offset, uint64_t ts);

/* The record at offset is finished. 0, or -ENOENT when it is not tracked (never handed out,
 * already finished, or handed out before a reset). */
int kafka_offsets_done(struct kafka_offsets *t, int64_t offset);

/* The offset to commit: everything below it is finished. -1 before the first record. */
int64_t kafka_offsets_committable(const struct kafka_offsets *t);

/* Unfinished records, and the due time of the oldest (by offset) one (0: none). */
size_t kafka_offsets_unfinished(const struct kafka_offsets *t);
uint64_t kafka_offsets_oldest_ts(const struct kafka_offsets *t);

/* Forget everything (the partition was revoked or re-assigned): the next add starts a new
 * span, and gen changes so a caller can tell stale completions apart. */
void kafka_offsets_reset(struct kafka_offsets *t);

#endif /* SLUICE_KAFKA_OFFSETS_H */
