/* SPDX-License-Identifier: MIT */
/* journal.h -- the embedded durable queue backend: CRC'd segment files with group commit
 *
 * journal_open() returns a struct queue (see queue.h) backed by segment files
 * "<dir>/seg-<first id, 16 hex>.log". Records: a 40-byte header (CRC32C, length, type,
 * class, tenant, id, enqueue time, attempts) and the envelope. One flusher thread writes
 * every record appended since its last fdatasync in one write and one fdatasync (group
 * commit), then runs the done callbacks. Ack records (batches of ids) make a restart
 * replay exactly the unacked entries; a segment is deleted once all of it is acked.
 * The on-disk format and recovery rules are described in journal.c.
 */
#ifndef SLUICE_JOURNAL_H
#define SLUICE_JOURNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "queue/queue.h"

/* The journal's only I/O on segment data: tests and fault drills replace these to make
 * writes fail (ENOSPC, EIO) exactly where the real ones would. NULL members use libc. */
struct journal_io {
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
	int (*fdatasync)(void *ctx, int fd);
	void *ctx;
};

struct journal_cfg {
	const char *dir;	/* --journal-dir; created if missing */
	uint64_t segment_bytes; /* rotate after this many bytes (0: 64 MiB) */
	uint64_t
	    max_bytes; /* full: refuse appends past this many unacked envelope bytes (0: none) */
	uint64_t max_entries;	 /* full: refuse appends past this many unacked entries (0: none) */
	uint32_t max_record;	 /* largest envelope accepted (0: 1 MiB) */
	uint32_t group_delay_us; /* linger before each commit to grow batches (0: none) */
	struct journal_io io;	 /* zero: plain pwrite/fdatasync */
};

/* Open (or create) the journal in cfg->dir and recover it: torn tails are truncated with a
 * warning, a segment with a CRC error is replayed up to the error, renamed to *.corrupt and
 * its good entries re-journalled. Start the flusher thread. Returns a queue the caller frees
 * with queue_free(), or NULL with errno set (EINVAL bad cfg, or the I/O error, logged with
 * the path). Unacked entries wait for queue_replay(). */
struct queue *journal_open(const struct journal_cfg *cfg);

#endif /* SLUICE_JOURNAL_H */
