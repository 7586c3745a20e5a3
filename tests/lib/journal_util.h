/* SPDX-License-Identifier: MIT */
/* journal_util.h -- helpers shared by the journal tests: synchronous appends, replay capture
 *
 * Header-only (static functions) so each test file stays self-contained; the test runner
 * links every .c file in tests/unit, so shared code cannot live in a .c there without a test in it.
 */
#ifndef SLUICE_TEST_JOURNAL_UTIL_H
#define SLUICE_TEST_JOURNAL_UTIL_H

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "queue/journal/journal.h"

/* A fresh directory <tmpdir>/<name> (subtests of one test share test__tmpdir()). */
static inline const char *jt_dir(const char *name)
{
	static char path[400];

	snprintf(path, sizeof(path), "%s/%s", test__tmpdir(), name);
	mkdir(path, 0755);
	return path;
}

/* Completion counter: done callbacks land here. */
struct jt_wait {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int done, ok, failed, last_err;
};

#define JT_WAIT_INIT                                                                               \
	{                                                                                          \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0                    \
	}

static inline void jt_done(void *arg, int err, uint64_t id)
{
	struct jt_wait *w = arg;

	(void)id;
	pthread_mutex_lock(&w->lock);
	w->done++;
	if (err) {
		w->failed++;
		w->last_err = err;
	} else {
		w->ok++;
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

/* Wait until n completions arrived in total. */
static inline void jt_wait_for(struct jt_wait *w, int n)
{
	pthread_mutex_lock(&w->lock);
	while (w->done < n)
		pthread_cond_wait(&w->cv, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

/* Payload of test record i: "rec-<i>-" followed by filler so sizes vary. */
static inline uint32_t jt_payload(char *buf, size_t sz, unsigned i)
{
	int n = snprintf(buf, sz, "rec-%u-", i);
	uint32_t len = (uint32_t)n + (i * 7) % 97;

	for (uint32_t k = (uint32_t)n; k < len && k < sz; k++)
		buf[k] = (char)('a' + (i + k) % 26);
	return len;
}

/* Append record i (class i % 3, tenant 100 + i % 5) received at enq_ns (0: now) and due at
 * not_before_ns (0: when received), and wait for its completion. */
static inline int jt_append_at(struct queue *q, unsigned i, uint64_t enq_ns, uint64_t not_before_ns)
{
	struct jt_wait w = JT_WAIT_INIT;
	char buf[256];
	struct queue_rec r = {.class = i % 3,
			      .tenant = 100 + i % 5,
			      .enq_ns = enq_ns,
			      .not_before_ns = not_before_ns,
			      .attempts = i % 4};
	int err;

	r.len = jt_payload(buf, sizeof(buf), i);
	r.data = buf;
	err = queue_append(q, &r, jt_done, &w);
	if (err)
		return err;
	jt_wait_for(&w, 1);
	return w.last_err;
}

/* Append record i, received now, and wait for its completion. */
static inline int jt_append_sync(struct queue *q, unsigned i)
{
	return jt_append_at(q, i, 0, 0);
}

/* Collects replayed/next entries. */
struct jt_list {
	struct queue_entry **e;
	size_t n, cap;
};

static inline void jt_collect(void *arg, struct queue_entry *e)
{
	struct jt_list *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->e = realloc(l->e, l->cap * sizeof(*l->e));
	}
	l->e[l->n++] = e;
}

static inline void jt_list_free(struct jt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i]);
	free(l->e);
	l->e = NULL;
	l->n = l->cap = 0;
}

/* Which record i an entry's payload names (-1 if it is not one of ours or is malformed). */
static inline int jt_which(const struct queue_entry *e)
{
	char buf[256], exp[256];
	unsigned i;

	if (e->len >= sizeof(buf))
		return -1;
	memcpy(buf, e->data, e->len);
	buf[e->len] = 0;
	if (sscanf(buf, "rec-%u-", &i) != 1)
		return -1;
	if (jt_payload(exp, sizeof(exp), i) != e->len || memcmp(exp, e->data, e->len) ||
	    e->class != i % 3 || e->tenant != 100 + i % 5 || e->attempts != i % 4)
		return -1;
	return (int)i;
}

/* Take every entry next() has now (ownership to l). */
static inline void jt_drain(struct queue *q, struct jt_list *l, int expect)
{
	struct queue_entry *out[64];

	while ((int)l->n < expect) {
		int n = queue_next(q, out, 64, 2000);

		if (n <= 0)
			break;
		for (int i = 0; i < n; i++)
			jt_collect(l, out[i]);
	}
}

/* Open a journal in dir with the given segment size (0: default). */
static inline struct queue *jt_open(const char *dir, uint64_t seg_bytes)
{
	struct journal_cfg cfg = {.dir = dir, .segment_bytes = seg_bytes};

	return journal_open(&cfg);
}

/* Append records from .. from + n - 1, each waiting for its completion. */
static inline int jt_fill(struct queue *q, unsigned from, unsigned n)
{
	for (unsigned i = from; i < from + n; i++) {
		int err = jt_append_sync(q, i);

		if (err)
			return err;
	}
	return 0;
}

/* Files in dir whose names end in suffix. */
static inline int jt_count_files(const char *dir, const char *suffix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name), s = strlen(suffix);

		n += l > s && !strcmp(de->d_name + l - s, suffix);
	}
	if (d)
		closedir(d);
	return n;
}

#endif /* SLUICE_TEST_JOURNAL_UTIL_H */
