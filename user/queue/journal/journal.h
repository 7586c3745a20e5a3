/* SPDX-License-Identifier: MIT */
/* journal.h -- the embedded durable queue backend: CRC'd segment files with group commit
 *
 * journal_open() returns a struct queue (see queue.h) backed by segment files
 * "<dir>/seg-<first id, 16 hex>.log". Records: a 40-byte header (CRC32C, length, type,
 * class, tenant, id, enqueue time, attempts) and the envelope. One flusher thread writes
 * every record appended since its last fdatasync in one write and one fdatasync (group
 * commit), then runs the done callbacks. Ack records (batches of ids) make a restart
 * replay exactly the unacked entries; a segment is deleted once all of it is acked.
 * Unacked entries live on disk; RAM holds a window per class (window_entries/_bytes) that
 * next() refills from the segments. The on-disk format is in journal_int.h, the write path
 * in journal.c, the recovery rules in journal_recover.c.
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

/* max_bytes: half the free space of the journal's filesystem at open, at most
 * JOURNAL_AUTO_CAP, never below the unacked bytes found at open. */
#define JOURNAL_MAX_BYTES_AUTO UINT64_MAX
#define JOURNAL_AUTO_CAP       (256ull << 30)

struct journal_cfg {
	const char *dir;	/* --journal-dir; created if missing */
	uint64_t segment_bytes; /* rotate after this many bytes (0: 64 MiB) */
	/* full: refuse appends past this many unacked envelope bytes (0: none; or AUTO) */
	uint64_t max_bytes;
	uint64_t max_entries;	 /* full: refuse appends past this many unacked entries (0: none) */
	uint32_t max_record;	 /* largest envelope accepted (0: 1 MiB; at most 1 GiB + 4 KiB) */
	uint32_t group_delay_us; /* linger before each commit to grow batches (0: none) */
	/* per class, entries held in memory (ready, or handed out and not acked); the rest of
	 * the backlog waits in the segments (0: 8192 entries, 16 MiB) */
	uint32_t window_entries;
	uint64_t window_bytes;
	struct journal_io io; /* zero: plain pwrite/fdatasync */
};

/* Open (or create) the journal in cfg->dir and recover it in bounded memory: a torn tail
 * (the last, incomplete record of the last segment) is truncated with a warning; damaged
 * bytes anywhere else are copied aside to "<segment>.<offset>.corrupt", counted and logged
 * as errors, and every whole record after them is kept. Start the flusher thread. Returns a
 * queue the caller frees with queue_free(), or NULL with errno set (EINVAL bad cfg, or the
 * I/O error, logged with the path). Unacked entries come out of queue_replay() and
 * queue_next(), a window at a time. */
struct queue *journal_open(const struct journal_cfg *cfg);

#endif /* SLUICE_JOURNAL_H */
