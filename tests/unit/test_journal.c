// SPDX-License-Identifier: MIT
/* test_journal.c -- CRC32C, record framing, ack/replay, segment deletion, torn tails at every
 * byte, CRC corruption in a segment, a flipped length bit, full-queue refusal */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/journal/crc32c.h"
#include "queue/journal/journal.h"
#include "queue/journal/journal_int.h"
#include "test_progs.h"
#include "journal_util.h"

static void subtest_crc(void)
{
	uint8_t buf[4096];

	ASSERT_EQ(crc32c("123456789", 9), 0xE3069283u, "check value");
	ASSERT_EQ(crc32c_sw(0, "123456789", 9), 0xE3069283u, "table check value");
	ASSERT_EQ(crc32c("", 0), 0u, "empty");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len < 300; len += 7)
			if (!ASSERT_EQ(crc32c(buf + off, len), crc32c_sw(0, buf + off, len),
				       "hw == sw"))
				return;
	ASSERT_EQ(crc32c_extend(crc32c(buf, 1000), buf + 1000, 3096), crc32c(buf, 4096), "chained");
	buf[17] ^= 1;
	ASSERT_NEQ(crc32c(buf, 4096), crc32c_sw(0, buf + 0, 17) ^ 1, "bit flip changes crc");
}

static void subtest_framing(void)
{
	const char *dir = jt_dir("framing");
	struct jt_list got = {0};
	char path[512];
	uint8_t *buf = NULL;
	struct jrec_hdr h;
	struct queue *q;
	size_t off = 0;
	long size;
	FILE *f;
	int n = 0;

	q = jt_open(dir, 0);
	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 20), "append"))
		goto out;
	jt_drain(q, &got, 20);
	ASSERT_EQ(got.n, 20, "next hands out every durable entry");
	for (size_t i = 0; i < got.n; i++)
		ASSERT_EQ(jt_which(got.e[i]), (int)i, "fields and payload, in order");
	jt_list_free(&got);
	queue_free(q);
	q = NULL;
	/* the file: 20 ENTRY records, each CRC-valid, ids increasing by one */
	snprintf(path, sizeof(path), "%s/seg-%016llx.log", dir, 1ull);
	f = fopen(path, "rb");
	if (!ASSERT_OK_PTR(f, "segment file named after its first id"))
		goto out;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc(size);
	ASSERT_EQ(fread(buf, 1, size, f), (size_t)size, "read");
	fclose(f);
	while (off + sizeof(h) <= (size_t)size) {
		memcpy(&h, buf + off, sizeof(h));
		if (!ASSERT_EQ(h.magic, JREC_MAGIC, "magic") ||
		    !ASSERT_EQ(h.type, JREC_ENTRY, "type"))
			break;
		ASSERT_EQ(h.id, (uint64_t)n + 1, "id");
		ASSERT_EQ(h.crc, crc32c(buf + off + 4, sizeof(h) - 4 + h.len), "crc");
		ASSERT_NEQ(h.enq_ns, 0, "enqueue time stamped");
		off += sizeof(h) + h.len;
		n++;
	}
	ASSERT_EQ(n, 20, "records in file");
	ASSERT_EQ(off, (size_t)size, "no stray bytes");
	/* nothing acked: a restart replays all 20 in order */
	q = jt_open(dir, 0);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	ASSERT_EQ(queue_replay(q, jt_collect, &got), 20, "replay count");
	for (size_t i = 0; i < got.n; i++)
		ASSERT_EQ(jt_which(got.e[i]), (int)i, "replayed fields and payload");
out:
	jt_list_free(&got);
	free(buf);
	queue_free(q);
}

static void subtest_ack_replay(void)
{
	const char *dir = jt_dir("ack");
	struct jt_list got = {0}, again = {0};
	struct queue_stats st;
	struct queue *q;
	int nfiles;

	/* 4 KiB segments: 300 records spread over many of them */
	q = jt_open(dir, 4096);
	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 300), "append"))
		goto out;
	jt_drain(q, &got, 300);
	if (!ASSERT_EQ(got.n, 300, "next"))
		goto out;
	nfiles = jt_count_files(dir, ".log");
	ASSERT_GT(nfiles, 5, "several segments");
	/* ack the odd ones (and the whole first 100, so early segments empty out) */
	for (size_t i = 0; i < got.n; i++) {
		if (i % 2 || i < 100) {
			ASSERT_OK(queue_ack(q, got.e[i]), "ack");
			got.e[i] = NULL;
		}
	}
	queue_stats(q, &st);
	ASSERT_EQ(st.entries, 100, "depth after acks");
	ASSERT_EQ(st.acks, 200, "acks counted");
	queue_free(q);
	q = jt_open(dir, 4096);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	queue_replay(q, jt_collect, &again);
	if (!ASSERT_EQ(again.n, 100, "exactly the unacked come back"))
		goto out;
	for (size_t i = 0; i < again.n; i++)
		ASSERT_EQ(jt_which(again.e[i]), (int)(100 + 2 * i),
			  "the even ones >= 100, in order");
	ASSERT_LT(jt_count_files(dir, ".log"), nfiles, "fully acked segments deleted");
	/* ack everything: every segment but the active one goes */
	for (size_t i = 0; i < again.n; i++)
		ASSERT_OK(queue_ack(q, again.e[i]), "ack rest");
	again.n = 0;
	ASSERT_OK(jt_fill(q, 1000, 1), "one more append (flushes acks, reaps)");
	queue_free(q);
	ASSERT_LE(jt_count_files(dir, ".log"), 2, "acked segments deleted");
	q = jt_open(dir, 4096);
	if (!ASSERT_OK_PTR(q, "reopen 2"))
		goto out;
	ASSERT_EQ(queue_replay(q, jt_collect, &again), 1, "only the last append remains");
	ASSERT_EQ(again.n ? jt_which(again.e[0]) : -1, 1000, "and it is record 1000");
	ASSERT_OK(jt_fill(q, 1001, 1), "ids continue after restart");
out:
	for (size_t i = 0; i < got.n; i++)
		free(got.e[i]);
	free(got.e);
	jt_list_free(&again);
	queue_free(q);
}

static int copy_file(const char *from, const char *to, off_t len)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int err = in < 0 || out < 0 ? -errno : 0;

	while (!err && len > 0) {
		ssize_t r = read(in, buf, len < (off_t)sizeof(buf) ? (size_t)len : sizeof(buf));

		if (r <= 0 || write(out, buf, r) != r)
			err = -EIO;
		len -= r;
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

/* One record of a segment file as the tests see it. */
struct rinfo {
	size_t end;
	uint8_t type;
	int nids;
	uint64_t ids[8]; /* ACK: the ids it names */
};

/* Record boundaries of a segment file. */
static int record_scan(const char *path, struct rinfo *ri, int max, off_t *size)
{
	static uint8_t buf[1 << 16];
	struct jrec_hdr h;
	size_t off = 0;
	int fd = open(path, O_RDONLY), n = 0;
	ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf));

	if (fd >= 0)
		close(fd);
	if (len < 0)
		return -1;
	*size = len;
	while (off + sizeof(h) <= (size_t)len && n < max) {
		memcpy(&h, buf + off, sizeof(h));
		ri[n].type = h.type;
		ri[n].nids = h.type == JREC_ACK && h.len <= 64 ? (int)h.len / 8 : 0;
		memcpy(ri[n].ids, buf + off + sizeof(h), ri[n].nids * 8);
		off += sizeof(h) + h.len;
		ri[n++].end = off;
	}
	return n;
}

/* Reopen a copy of segment `seg` cut at `cut` bytes and check what comes back. */
static bool check_cut(const char *seg, const struct rinfo *ri, int nrec, off_t cut)
{
	char dst[400], dseg[512];
	struct jt_list got = {0};
	bool acked[16] = {false}, ok = true;
	int whole = 0, entries = 0, nacked = 0;
	struct queue *q;
	struct stat sb;

	for (; whole < nrec && ri[whole].end <= (size_t)cut; whole++) {
		entries += ri[whole].type == JREC_ENTRY;
		for (int k = 0; k < ri[whole].nids; k++)
			if (ri[whole].ids[k] >= 1 && ri[whole].ids[k] <= 16 &&
			    !acked[ri[whole].ids[k] - 1])
				acked[ri[whole].ids[k] - 1] = true, nacked++;
	}
	snprintf(dst, sizeof(dst), "%s/cut%lld", test__tmpdir(), (long long)cut);
	mkdir(dst, 0755);
	snprintf(dseg, sizeof(dseg), "%s/seg-%016llx.log", dst, 1ull);
	copy_file(seg, dseg, cut);
	q = jt_open(dst, 0);
	if (!ASSERT_OK_PTR(q, "reopen after cut"))
		return false;
	queue_replay(q, jt_collect, &got);
	ok &= ASSERT_EQ(got.n, (size_t)(entries - nacked), "only whole, unacked records");
	for (size_t i = 0; i < got.n; i++) {
		int w = jt_which(got.e[i]);

		/* record w has id w + 1 */
		ok &= ASSERT_TRUE(w >= 0 && w < entries && !acked[w], "a whole, unacked record");
	}
	jt_list_free(&got);
	queue_free(q);
	stat(dseg, &sb);
	ok &=
	    ASSERT_EQ(sb.st_size, whole ? (off_t)ri[whole - 1].end : 0, "cut at last whole record");
	return ok;
}

static void subtest_torn_every_byte(void)
{
	char src[400], seg[512];
	struct rinfo ri[64];
	struct jt_list got = {0};
	struct queue *q;
	off_t size;
	int nrec, acks = 0;

	snprintf(src, sizeof(src), "%s", jt_dir("torn"));
	q = jt_open(src, 0);
	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 6), "append"))
		goto out;
	/* ack records 1 and 2 (ids 2, 3), then 3 more entries: ACK records land in the tail */
	jt_drain(q, &got, 6);
	ASSERT_OK(queue_ack(q, got.e[1]), "ack 1");
	ASSERT_OK(queue_ack(q, got.e[2]), "ack 2");
	got.e[1] = got.e[2] = NULL;
	ASSERT_OK(jt_fill(q, 6, 3), "append after ack");
	queue_free(q);
	q = NULL;
	snprintf(seg, sizeof(seg), "%s/seg-%016llx.log", src, 1ull);
	nrec = record_scan(seg, ri, 64, &size);
	for (int k = 0; k < nrec; k++)
		acks += ri[k].type == JREC_ACK;
	if (!ASSERT_EQ(nrec - acks, 9, "entry records") || !ASSERT_GE(acks, 1, "ack records"))
		goto out;
	/* crash at every byte from the end of record 3 on (ACKs included) */
	for (off_t cut = (off_t)ri[3].end; cut <= size; cut++)
		if (!check_cut(seg, ri, nrec, cut))
			break;
out:
	for (size_t i = 0; i < got.n; i++)
		free(got.e[i]);
	free(got.e);
	queue_free(q);
}

/* Capture stderr (the logs) into a file while fn runs. */
static struct queue *open_capturing(const char *dir, const char *logpath)
{
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644), saved = dup(2);
	struct queue *q;

	fflush(stderr);
	dup2(fd, 2);
	q = jt_open(dir, 2048);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	return q;
}

static void subtest_crc_corruption(void)
{
	const char *dir = jt_dir("corrupt");
	struct jt_list got = {0};
	char path[800], logp[512], logbuf[8192] = "";
	struct queue_stats st;
	struct rinfo ri[64];
	off_t size;
	struct queue *q;
	int fd, nrec;

	q = jt_open(dir, 2048);
	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 60), "append"))
		goto out;
	queue_free(q);
	/* flip one payload byte in the 3rd record of the 2nd segment */
	{
		struct dirent **names;
		int n = scandir(dir, &names, NULL, alphasort), k = 0;

		for (int i = 0; i < n; i++) {
			if (!strncmp(names[i]->d_name, "seg-", 4) && ++k == 2)
				snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			free(names[i]);
		}
		free(names);
		ASSERT_GE(k, 3, "at least 3 segments");
	}
	nrec = record_scan(path, ri, 64, &size);
	if (!ASSERT_GE(nrec, 4, "records in segment 2"))
		goto out;
	fd = open(path, O_RDWR);
	ASSERT_EQ(pwrite(fd, "X", 1, ri[1].end + sizeof(struct jrec_hdr) + 2), 1, "corrupt");
	close(fd);
	snprintf(logp, sizeof(logp), "%s.log.txt", dir);
	q = open_capturing(dir, logp);
	if (!ASSERT_OK_PTR(q, "reopen despite corruption"))
		goto out;
	fd = open(logp, O_RDONLY);
	logbuf[read(fd, logbuf, sizeof(logbuf) - 1) > 0 ? sizeof(logbuf) - 1 : 0] = 0;
	close(fd);
	ASSERT_HAS_STR(logbuf, "CORRUPT RECORDS", "said so loudly");
	ASSERT_HAS_STR(logbuf, "CRC32C mismatch", "with the reason");
	queue_stats(q, &st);
	ASSERT_EQ(st.corrupt_ranges, 1, "one damaged range");
	ASSERT_EQ(st.corrupt_bytes, ri[2].end - ri[1].end, "exactly the bad record");
	ASSERT_EQ(jt_count_files(dir, ".corrupt"), 1, "its bytes kept aside");
	queue_replay(q, jt_collect, &got);
	/* everything except the damaged record: the ones after it in its segment too */
	ASSERT_EQ(got.n, 59, "every whole record replayed");
	jt_list_free(&got);
	queue_free(q);
	/* the segment itself is untouched: a second restart finds the same damage, same set */
	q = jt_open(dir, 2048);
	if (!ASSERT_OK_PTR(q, "reopen 2"))
		goto out;
	queue_stats(q, &st);
	ASSERT_EQ(st.corrupt_ranges, 1, "the damage is still reported");
	ASSERT_EQ(jt_count_files(dir, ".corrupt"), 1, "and kept aside once");
	queue_replay(q, jt_collect, &got);
	ASSERT_EQ(got.n, 59, "same set after second restart");
	for (size_t i = 0; i < got.n; i++)
		ASSERT_GE(jt_which(got.e[i]), 0, "valid records only");
out:
	jt_list_free(&got);
	queue_free(q);
}

/* One damaged last segment: 10 records, record `rec`'s length field XORed with `mask`
 * (or, with mask 0, one payload byte flipped). Nothing may be cut: the damaged record is
 * kept aside, every other one comes back, and the segment keeps its size. */
static void check_flip(const char *name, int rec, uint32_t mask)
{
	const char *dir = jt_dir(name);
	struct jt_list got = {0};
	struct queue_stats st;
	struct rinfo ri[16];
	char seg[600];
	struct stat sb;
	uint32_t len;
	off_t size, at;
	struct queue *q = jt_open(dir, 0);
	int fd, nrec;
	bool seen[10] = {false};

	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 10), "append"))
		goto out;
	queue_free(q);
	q = NULL;
	snprintf(seg, sizeof(seg), "%s/seg-%016llx.log", dir, 1ull);
	nrec = record_scan(seg, ri, 16, &size);
	if (!ASSERT_EQ(nrec, 10, "records"))
		goto out;
	at = rec ? (off_t)ri[rec - 1].end : 0;
	fd = open(seg, O_RDWR);
	ASSERT_EQ(pread(fd, &len, 4, at + 4), 4, "read length");
	len ^= mask;
	if (mask)
		ASSERT_EQ(pwrite(fd, &len, 4, at + 4), 4, "flip length bits");
	else
		ASSERT_EQ(pwrite(fd, "#", 1, at + sizeof(struct jrec_hdr) + 1), 1, "flip payload");
	close(fd);
	q = jt_open(dir, 0);
	if (!ASSERT_OK_PTR(q, "reopen"))
		goto out;
	queue_stats(q, &st);
	ASSERT_EQ(st.torn_bytes, 0, "not taken for a torn tail");
	ASSERT_EQ(st.corrupt_ranges, 1, "one damaged range");
	ASSERT_EQ(jt_count_files(dir, ".corrupt"), 1, "its bytes kept aside");
	stat(seg, &sb);
	ASSERT_EQ(sb.st_size, size, "nothing truncated");
	queue_replay(q, jt_collect, &got);
	ASSERT_EQ(got.n, 9, "every other record comes back");
	for (size_t i = 0; i < got.n; i++) {
		int w = jt_which(got.e[i]);

		if (ASSERT_TRUE(w >= 0 && w < 10 && !seen[w], "a record, once"))
			seen[w] = true;
	}
	ASSERT_FALSE(seen[rec], "but the damaged one");
	jt_list_free(&got);
	ASSERT_OK(jt_fill(q, 10, 2), "appends go on");
	queue_free(q);
	q = jt_open(dir, 0);
	if (ASSERT_OK_PTR(q, "reopen 2"))
		ASSERT_EQ(queue_replay(q, jt_collect, &got), 11, "and survive the next restart");
out:
	jt_list_free(&got);
	queue_free(q);
}

/* A single flipped bit in a length used to read as a torn tail and cut every record after
 * it, all of them answered 202. */
static void subtest_length_flip(void)
{
	check_flip("flip_mid_long", 4, 1u << 20);   /* runs past the end of the segment */
	check_flip("flip_mid_short", 4, 1u << 2);   /* a bad CRC, then whole records */
	check_flip("flip_last_limit", 9, 1u << 31); /* above the record limit, at the very end */
	check_flip("flip_last_long", 9, 1u << 4);   /* past the end by a few bytes */
	check_flip("flip_mid_payload", 5, 0);	    /* payload damage in the active segment */
}

static void subtest_full(void)
{
	struct journal_cfg cfg = {.dir = jt_dir("full"), .max_entries = 10, .max_bytes = 100000};
	struct jt_list got = {0};
	struct queue_stats st;
	struct queue *q = journal_open(&cfg);
	static char big[60000];
	struct queue_rec r = {.class = 0, .len = sizeof(big), .data = big};
	struct jt_wait w = JT_WAIT_INIT;

	if (!ASSERT_OK_PTR(q, "open") || !ASSERT_OK(jt_fill(q, 0, 10), "10 fit"))
		goto out;
	ASSERT_EQ(jt_append_sync(q, 10), -ENOSPC, "11th refused (entries)");
	jt_drain(q, &got, 10);
	ASSERT_OK(queue_ack(q, got.e[0]), "ack one");
	got.e[0] = NULL;
	ASSERT_OK(jt_append_sync(q, 11), "room again after an ack");
	queue_stats(q, &st);
	ASSERT_EQ(st.refused_full, 1, "refusal counted");
	ASSERT_EQ(st.max_entries, 10, "limit exported");
	r.tenant = 1;
	cfg.max_entries = 0;
	queue_free(q);
	q = journal_open(&cfg);
	if (!ASSERT_OK_PTR(q, "reopen bytes-limited"))
		goto out;
	ASSERT_EQ(queue_append(q, &r, jt_done, &w), 0, "60000 bytes fit");
	ASSERT_EQ(queue_append(q, &r, jt_done, &w), -ENOSPC, "120000 bytes do not");
	jt_wait_for(&w, 1);
	ASSERT_EQ(w.ok, 1, "only the first completed");
	r.len = 2u << 20;
	ASSERT_EQ(queue_append(q, &r, jt_done, &w), -EMSGSIZE, "record over max_record");
	r.len = 1;
	r.class = 7;
	ASSERT_EQ(queue_append(q, &r, jt_done, &w), -EINVAL, "bad class");
out:
	for (size_t i = 0; i < got.n; i++)
		free(got.e[i]);
	free(got.e);
	queue_free(q);
}

void test_journal(void)
{
	if (test__start_subtest("crc32c"))
		subtest_crc();
	if (test__start_subtest("framing"))
		subtest_framing();
	if (test__start_subtest("ack_replay_segments"))
		subtest_ack_replay();
	if (test__start_subtest("torn_tail_every_byte"))
		subtest_torn_every_byte();
	if (test__start_subtest("crc_corruption"))
		subtest_crc_corruption();
	if (test__start_subtest("length_bit_flip"))
		subtest_length_flip();
	if (test__start_subtest("full_queue"))
		subtest_full();
}
