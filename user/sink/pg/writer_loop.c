// SPDX-License-Identifier: MIT
/* writer_loop.c -- the PostgreSQL writer's thread: batches, connections, retries
 *
 * One poll() loop per writer. Each round: take the submitted rows, advance every
 * connection slot (connecting, or reading its batch's results), hand due work to idle
 * slots (retry list first: split halves and re-sends; then partition upkeep; then a new
 * batch when batch_max rows wait or the oldest has lingered), publish health, and sleep
 * until a socket speaks or the next deadline (linger, backoff, batch deadline).
 *
 * Slot states: DOWN (waiting for retry_at) -> CONNECTING (PQconnectPoll) -> IDLE <-> BUSY
 * (one pipeline, one Sync in flight). Any failure in CONNECTING or BUSY goes back to DOWN;
 * a batch in flight goes to the front of the retry list.
 *
 * Hosts (hosts.h): each attempt connects to one host of the conninfo's list, within the
 * per-host connect timeout. A failure moves the slot to the next host at once; only after a
 * whole round of hosts failed does it back off. A round starts at the host that last gave a
 * connection. A session that turns read-only (SQLSTATE 25006: the server was demoted to a
 * standby, or default_transaction_read_only was set) is dropped like a broken one, so the
 * writer finds the writable host with target_session_attrs=read-write.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "sink/pg/writer_int.h"

#define UPKEEP_EVERY_NS (3600ULL * 1000 * MS_NS)
#define SLOW_BATCH_NS	(1000 * MS_NS)

static void hist_add(struct pg_hist *h, uint64_t v)
{
	int i = 0;

	while (i < h->nbounds && v > h->bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
}

/* Capped exponential backoff with equal jitter: half fixed, half random, so a fleet of
 * writers spreads out after an outage but none retries in a tight loop. */
static uint64_t backoff_ns(struct pg_writer *w, int attempt)
{
	uint64_t d = w->cfg.backoff_min_ms;

	for (int i = 1; i < attempt && d < (uint64_t)w->cfg.backoff_max_ms; i++)
		d *= 2;
	if (d > (uint64_t)w->cfg.backoff_max_ms)
		d = w->cfg.backoff_max_ms;
	return (d / 2 + rand_r(&w->rnd) % (d / 2 + 1)) * MS_NS;
}

static void set_last_error(struct pg_writer *w, const char *msg)
{
	pthread_mutex_lock(&w->mu);
	snprintf(w->st.last_error, sizeof(w->st.last_error), "%s", msg);
	pthread_mutex_unlock(&w->mu);
}

/* ---- retry list ----------------------------------------------------------------------- */

static void retry_push(struct pg_writer *w, struct pg_batch *b, bool front, uint64_t not_before)
{
	struct pg_batch **p = &w->retry;

	b->not_before_ns = not_before;
	if (!front)
		while (*p)
			p = &(*p)->next;
	b->next = *p;
	*p = b;
}

static struct pg_batch *retry_pop_due(struct pg_writer *w, uint64_t now)
{
	for (struct pg_batch **p = &w->retry; *p; p = &(*p)->next) {
		struct pg_batch *b = *p;

		if (b->not_before_ns <= now) {
			*p = b->next;
			b->next = NULL;
			return b;
		}
	}
	return NULL;
}

/* ---- forming batches ------------------------------------------------------------------ */

static void dead_letter(struct pg_writer *w, struct pg_wrow *r, const char *reason,
			const char *error, int attempts)
{
	struct pg_wrow **rows = malloc(sizeof(*rows));
	struct pg_batch *b = rows ? pg_batch_new(PG_BATCH_DEAD_LETTER, rows, 1) : NULL;

	if (!b) {
		uint64_t count[4] = {0};

		free(rows);
		log_error("postgres: out of memory dead-lettering an event", "key=%s", r->key);
		pg_writer_report_row(w, r, PG_ROW_RETRY_LATER, count);
		pg_writer_account(w, count);
		return;
	}
	rows[0] = r;
	b->dl_reason = reason;
	b->dl_error = strdup(error);
	b->attempts = attempts;
	retry_push(w, b, true, 0);
}

static struct pg_batch *form_batch(struct pg_writer *w)
{
	struct pg_wrow **rows = malloc(w->cfg.batch_max * sizeof(*rows));
	struct pg_batch *b = rows ? pg_batch_new(PG_BATCH_EVENTS, rows, 0) : NULL;

	if (!b) {
		free(rows);
		return NULL;
	}
	while (w->ready_head && b->n < w->cfg.batch_max) {
		struct pg_wrow *r = w->ready_head;

		w->ready_head = r->next;
		w->ready_count--;
		r->next = NULL;
		if (r->payload_len > w->cfg.max_payload_bytes) {
			char msg[160];

			snprintf(
			    msg, sizeof(msg),
			    "payload of %zu bytes is over the writer's max_payload_bytes (%zu)",
			    r->payload_len, w->cfg.max_payload_bytes);
			dead_letter(w, r, "payload_too_large", msg, 0);
			continue;
		}
		rows[b->n++] = r;
	}
	if (!w->ready_head)
		w->ready_tail = &w->ready_head;
	if (!b->n) {
		pg_batch_free(b);
		return NULL;
	}
	pg_batch_dedupe(b);
	return b;
}

static bool batch_due(struct pg_writer *w, uint64_t now)
{
	if (!w->ready_count)
		return false;
	return w->ready_count >= w->cfg.batch_max || w->draining ||
	       now - w->ready_head->submit_ns >= (uint64_t)w->cfg.linger_ms * MS_NS;
}

static struct pg_batch *next_batch(struct pg_writer *w, uint64_t now)
{
	struct pg_batch *b = retry_pop_due(w, now);

	if (b)
		return b;
	if (now >= w->next_upkeep_ns) {
		w->next_upkeep_ns = now + UPKEEP_EVERY_NS;
		return pg_batch_new(PG_BATCH_UPKEEP, NULL, 0);
	}
	return batch_due(w, now) ? form_batch(w) : NULL;
}

/* ---- connection slots ----------------------------------------------------------------- */

static void slot_fail(struct pg_writer *w, struct slot *s, const char *why, uint64_t now)
{
	struct pg_batch *b = s->b;

	pthread_mutex_lock(&w->mu);
	if (s->st == SLOT_CONNECTING)
		w->st.connect_failures++;
	else if (b && b->kind != PG_BATCH_ROLLBACK)
		w->st.batches_failed++;
	pthread_mutex_unlock(&w->mu);
	s->fails++;
	/* log the first failure of a run and then sparingly; the stats count them all */
	if (s->fails == 1 || !(s->fails & (s->fails - 1)))
		log_warn("postgres: connection failed, retrying",
			 "slot=%d host=%s fails=%d error=\"%s\"", (int)(s - w->slots),
			 w->hosts.label[s->host], s->fails, why);
	set_last_error(w, why);
	PQfinish(s->c);
	s->c = NULL;
	s->b = NULL;
	s->st = SLOT_DOWN;
	/* the next host at once; after a whole round of them failed, back off */
	if (w->hosts.preferred == s->host)
		w->hosts.preferred = (s->host + 1) % w->hosts.n;
	s->host = (s->host + 1) % w->hosts.n;
	if (++s->tried < w->hosts.n) {
		s->retry_at_ns = now;
	} else {
		s->tried = 0;
		s->retry_at_ns = now + backoff_ns(w, (s->fails + w->hosts.n - 1) / w->hosts.n);
	}
	w->ever_failed = true;
	w->last_failed = true; /* until a batch commits again (PgBouncer accepts while down) */
	if (b && b->kind == PG_BATCH_ROLLBACK)
		pg_batch_free(b);
	else if (b)
		retry_push(w, b, true, now); /* outcome unknown: resend it first, elsewhere */
}

static void slot_connect(struct pg_writer *w, struct slot *s, uint64_t now)
{
	if (!s->tried)
		s->host = w->hosts.preferred;
	s->c = PQconnectStart(w->hosts.conninfo[s->host]);
	if (!s->c || PQstatus(s->c) == CONNECTION_BAD) {
		s->st = SLOT_CONNECTING;
		slot_fail(w, s, s->c ? PQerrorMessage(s->c) : "out of memory", now);
		return;
	}
	s->st = SLOT_CONNECTING;
	s->want = PGRES_POLLING_WRITING;
	/* libpq applies connect_timeout only to blocking connects: this is the per-host one */
	s->deadline_ns = now + (uint64_t)w->hosts.connect_timeout_ms * MS_NS;
}

static void slot_connect_progress(struct pg_writer *w, struct slot *s, uint64_t now)
{
	if (!s->revents) {
		if (now >= s->deadline_ns)
			slot_fail(w, s, "connection attempt timed out", now);
		return;
	}
	s->want = PQconnectPoll(s->c);
	if (s->want == PGRES_POLLING_FAILED) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(s->c));
		msg[strcspn(msg, "\n")] = 0;
		slot_fail(w, s, msg, now);
		return;
	}
	if (s->want != PGRES_POLLING_OK)
		return;
	if (PQsetnonblocking(s->c, 1) || !PQenterPipelineMode(s->c)) {
		slot_fail(w, s, "cannot enter libpq pipeline mode", now);
		return;
	}
	/* fails is reset by the first committed batch, not here: through PgBouncer a connection
	 * succeeds even while the database behind it is down */
	s->st = SLOT_IDLE;
	s->tried = 0;
	if (w->hosts.n > 1 && s->fails)
		log_info("postgres: connected", "slot=%d host=%s", (int)(s - w->slots),
			 w->hosts.label[s->host]);
	w->hosts.preferred = s->host;
	pthread_mutex_lock(&w->mu);
	w->st.connects++;
	pthread_mutex_unlock(&w->mu);
}

static void slot_send(struct pg_writer *w, struct slot *s, struct pg_batch *b, uint64_t now)
{
	int timeout = w->cfg.statement_timeout_ms;

	for (int i = 0; i < b->n; i++)
		b->rows[i]->status = PG_ROW_DUPLICATE; /* until the INSERT returns the row */
	s->b = b;
	s->st = SLOT_BUSY;
	b->sent_ns = now;
	/* a silent server (network gone) must not hold the batch forever */
	s->deadline_ns = now + ((timeout > 0 ? timeout : 50000) + 10000ULL) * MS_NS;
	if (pg_batch_send(s->c, b, timeout))
		slot_fail(w, s, b->error, now);
}

static void batch_committed(struct pg_writer *w, struct slot *s, struct pg_batch *b, uint64_t now)
{
	uint64_t rows = b->n;

	if (s->fails)
		log_info("postgres: writing again", "slot=%d after_failures=%d",
			 (int)(s - w->slots), s->fails);
	s->fails = 0;

	if (b->kind == PG_BATCH_EVENTS) {
		pthread_mutex_lock(&w->mu);
		w->st.batches_committed++;
		hist_add(&w->st.batch_rows, rows);
		hist_add(&w->st.batch_latency_us, (now - b->sent_ns) / 1000);
		pthread_mutex_unlock(&w->mu);
		w->last_failed = false;
		pg_writer_report_batch(w, b, -1);
	} else if (b->kind == PG_BATCH_DEAD_LETTER) {
		pg_writer_report_batch(w, b, PG_ROW_DEAD_LETTERED);
	} else {
		pg_batch_free(b);
	}
}

/* A data error: halve until the row is alone, then dead-letter it with the server's words. */
static void batch_rejected(struct pg_writer *w, struct pg_batch *b, uint64_t now)
{
	struct pg_batch *half;
	char msg[sizeof(b->error) + 16];

	if (b->kind == PG_BATCH_EVENTS && b->n == 1) {
		snprintf(msg, sizeof(msg), "%s: %s", b->sqlstate, b->error);
		b->n = 0;
		dead_letter(w, b->rows[0], "rejected_by_database", msg, b->attempts + 1);
		pg_batch_free(b);
		return;
	}
	if (b->kind == PG_BATCH_EVENTS && (half = pg_batch_split(b))) {
		pthread_mutex_lock(&w->mu);
		w->st.batch_splits++;
		pthread_mutex_unlock(&w->mu);
		retry_push(w, half, true, now);
		retry_push(w, b, true, now);
		return;
	}
	if (b->kind == PG_BATCH_DEAD_LETTER) {
		log_error("postgres: dead letter rejected, event left for redelivery",
			  "key=%s error=\"%s\"", b->rows[0]->key, b->error);
		pg_writer_report_batch(w, b, PG_ROW_RETRY_LATER);
		return;
	}
	/* upkeep, or a split that ran out of memory: try again later */
	retry_push(w, b, false, now + backoff_ns(w, ++b->attempts));
}

static void batch_finished(struct pg_writer *w, struct slot *s, uint64_t now)
{
	struct pg_batch *b = s->b;
	enum pg_failure f = pg_batch_failure(b, s->c);

	s->b = NULL;
	s->st = SLOT_IDLE;
	if (b->kind == PG_BATCH_ROLLBACK) {
		pg_batch_free(b);
		return;
	}
	if (f == PG_FAIL_NONE) {
		batch_committed(w, s, b, now);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->st.batches_failed++;
	snprintf(w->st.last_error, sizeof(w->st.last_error), "%.5s: %.240s", b->sqlstate, b->error);
	pthread_mutex_unlock(&w->mu);
	if (f == PG_FAIL_READ_ONLY) {
		/* nothing was written; the batch goes first to the next host this slot finds */
		retry_push(w, b, true, now);
		slot_fail(w, s,
			  "the session is read-only (SQLSTATE 25006): looking for the primary",
			  now);
		return;
	}
	if (f == PG_FAIL_DATA) {
		batch_rejected(w, b, now);
	} else if (b->kind == PG_BATCH_UPKEEP) {
		log_warn("postgres: partition upkeep failed", "error=\"%s\"", b->error);
		pg_batch_free(b);
	} else {
		log_warn("postgres: batch failed, will retry", "rows=%d sqlstate=%s error=\"%s\"",
			 b->n, b->sqlstate, b->error);
		w->last_failed = true;
		retry_push(w, b, true, now + backoff_ns(w, ++b->attempts));
	}
	/* the explicit transaction stays aborted after an error until it is rolled back */
	if (PQtransactionStatus(s->c) == PQTRANS_INERROR) {
		struct pg_batch *rb = pg_batch_new(PG_BATCH_ROLLBACK, NULL, 0);

		if (rb)
			slot_send(w, s, rb, now);
		else
			slot_fail(w, s, "out of memory", now);
	}
}

static void slot_busy_progress(struct pg_writer *w, struct slot *s, uint64_t now)
{
	int ret;

	if (PQflush(s->c) < 0) {
		slot_fail(w, s, PQerrorMessage(s->c), now);
		return;
	}
	ret = pg_batch_consume(s->c, s->b);
	if (ret < 0)
		slot_fail(w, s, s->b->error, now);
	else if (ret > 0)
		batch_finished(w, s, now);
	else if (now >= s->deadline_ns)
		slot_fail(w, s, "no answer from the server within the batch deadline", now);
}

/* ---- the writer thread ---------------------------------------------------------------- */

static void dispatch(struct pg_writer *w, uint64_t now)
{
	for (int i = 0; i < w->cfg.pool_size; i++) {
		struct slot *s = &w->slots[i];
		struct pg_batch *b;

		if (s->st == SLOT_DOWN && now >= s->retry_at_ns)
			slot_connect(w, s, now);
		if (s->st != SLOT_IDLE || !(b = next_batch(w, now)))
			continue;
		slot_send(w, s, b, now);
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* When the loop must wake up again even if no socket speaks: linger, backoffs, deadlines. */
static uint64_t next_wake(struct pg_writer *w, uint64_t now)
{
	uint64_t t = now + 1000 * MS_NS;
	bool idle = false;

	for (int i = 0; i < w->cfg.pool_size; i++) {
		struct slot *s = &w->slots[i];

		if (s->st == SLOT_DOWN)
			t = min_u64(t, s->retry_at_ns);
		else if (s->st == SLOT_IDLE)
			idle = true;
		else
			t = min_u64(t, s->deadline_ns);
	}
	if (!idle)
		return t;
	if (w->ready_count)
		t = min_u64(t, batch_due(w, now)
				   ? now
				   : w->ready_head->submit_ns + w->cfg.linger_ms * MS_NS);
	for (struct pg_batch *b = w->retry; b; b = b->next)
		t = min_u64(t, b->not_before_ns);
	return min_u64(t, w->next_upkeep_ns);
}

static void wait_events(struct pg_writer *w, uint64_t now)
{
	struct pollfd pfd[1 + w->cfg.pool_size];
	int n = 1, idx[w->cfg.pool_size], timeout_ms;
	uint64_t wake = next_wake(w, now);

	pfd[0] = (struct pollfd){.fd = w->efd, .events = POLLIN};
	for (int i = 0; i < w->cfg.pool_size; i++) {
		struct slot *s = &w->slots[i];

		idx[i] = -1;
		s->revents = 0;
		if (s->st == SLOT_DOWN || s->st == SLOT_IDLE || PQsocket(s->c) < 0)
			continue;
		idx[i] = n;
		pfd[n].fd = PQsocket(s->c);
		if (s->st == SLOT_CONNECTING)
			pfd[n].events = s->want == PGRES_POLLING_WRITING ? POLLOUT : POLLIN;
		else /* still unsent pipeline bytes: wait for room as well */
			pfd[n].events = POLLIN | (PQflush(s->c) == 1 ? POLLOUT : 0);
		pfd[n++].revents = 0;
	}
	timeout_ms = wake > now ? (int)((wake - now + MS_NS - 1) / MS_NS) : 0;
	if (poll(pfd, n, timeout_ms) < 0 && errno != EINTR)
		log_warn("postgres: poll failed", "errno=%d", errno);
	for (int i = 0; i < w->cfg.pool_size; i++)
		if (idx[i] >= 0)
			w->slots[i].revents = pfd[idx[i]].revents;
}

static void publish_health(struct pg_writer *w, uint64_t now)
{
	int up = 0;
	bool slow = false;
	enum pg_health h;

	for (int i = 0; i < w->cfg.pool_size; i++) {
		struct slot *s = &w->slots[i];

		up += s->st == SLOT_IDLE || s->st == SLOT_BUSY;
		slow |= s->st == SLOT_BUSY && now - s->b->sent_ns > SLOW_BATCH_NS;
	}
	if (!up)
		h = w->ever_failed ? PG_HEALTH_UNREACHABLE : PG_HEALTH_CONNECTING;
	else
		h = w->last_failed || slow ? PG_HEALTH_DEGRADED : PG_HEALTH_READY;
	pthread_mutex_lock(&w->mu);
	w->st.connections_up = up;
	w->st.health = h;
	pthread_mutex_unlock(&w->mu);
}

static bool stopping(struct pg_writer *w)
{
	bool stop;

	pthread_mutex_lock(&w->mu);
	stop = w->stop;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* The writer thread (writer_int.h). */
void *pg_writer_main(void *arg)
{
	struct pg_writer *w = arg;

	while (!stopping(w)) {
		uint64_t now = clock_mono_ns();

		pg_writer_take_incoming(w);
		for (int i = 0; i < w->cfg.pool_size; i++) {
			struct slot *s = &w->slots[i];

			if (s->st == SLOT_CONNECTING)
				slot_connect_progress(w, s, now);
			else if (s->st == SLOT_BUSY)
				slot_busy_progress(w, s, now);
		}
		dispatch(w, now);
		publish_health(w, now);
		wait_events(w, clock_mono_ns());
	}
	return NULL;
}
