// SPDX-License-Identifier: MIT
/* batch.c -- one pipelined write on a libpq connection: an events batch, a dead letter, upkeep
 *
 * Parameters are sent in binary: text[] and timestamptz[] arrays built here (header, then
 * length-prefixed elements, all big-endian), bytea for dead-letter payloads. Binary text
 * still goes through the server's encoding check, so invalid UTF-8 and NUL bytes are
 * rejected by PostgreSQL exactly as in text format, and `payload::jsonb` rejects a \u0000.
 * The INSERT returns the keys it stored; every other row of a committed batch was a
 * duplicate. Rows are matched back by binary search over the sorted batch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/batch.h"

#define OID_BYTEA	      17
#define OID_INT4	      23
#define OID_TEXT	      25
#define OID_TIMESTAMPTZ	      1184
#define OID_TEXT_ARRAY	      1009
#define OID_TIMESTAMPTZ_ARRAY 1185
/* PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00:00 UTC */
#define PG_EPOCH_UNIX_US 946684800000000LL

static const char insert_events_sql[] =
    "WITH i AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
    "$5::text[], $6::timestamptz[]) "
    "AS i(tenant, idempotency_key, type, class, payload, received_at)), "
    "k AS (INSERT INTO event_keys (tenant, idempotency_key, received_at) "
    "SELECT tenant, idempotency_key, received_at FROM i "
    "ON CONFLICT (tenant, idempotency_key) DO NOTHING RETURNING tenant, idempotency_key) "
    "INSERT INTO events (tenant, idempotency_key, type, class, payload, received_at) "
    "SELECT i.tenant, i.idempotency_key, i.type, i.class, i.payload::jsonb, i.received_at "
    "FROM i JOIN k ON k.tenant = i.tenant AND k.idempotency_key = i.idempotency_key "
    "RETURNING tenant, idempotency_key";

static const char insert_dead_letter_sql[] =
    "INSERT INTO dead_letters (tenant, idempotency_key, step, reason, attempts, last_error, "
    "payload, received_at) VALUES ($1, $2, 'store', $3, $4, $5, $6, $7)";

struct abuf {
	char *p;
	size_t len, cap;
};

static int abuf_put(struct abuf *a, const void *src, size_t n)
{
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		char *p;

		while (cap < a->len + n)
			cap *= 2;
		p = realloc(a->p, cap);
		if (!p)
			return -ENOMEM;
		a->p = p;
		a->cap = cap;
	}
	memcpy(a->p + a->len, src, n);
	a->len += n;
	return 0;
}

static int abuf_u32(struct abuf *a, uint32_t v)
{
	v = htonl(v);
	return abuf_put(a, &v, 4);
}

static int abuf_u64(struct abuf *a, uint64_t v)
{
	return abuf_u32(a, v >> 32) ?: abuf_u32(a, (uint32_t)v);
}

/* one-dimensional array header: ndim, has-nulls, element type, length, lower bound */
static int array_header(struct abuf *a, uint32_t elem_oid, int n)
{
	return abuf_u32(a, 1) ?: abuf_u32(a, 0) ?: abuf_u32(a, elem_oid) ?: abuf_u32(a, n) ?:
	       abuf_u32(a, 1);
}

static int array_text(struct abuf *a, const char *s, size_t len)
{
	return abuf_u32(a, (uint32_t)len) ?: abuf_put(a, s, len);
}

struct pg_batch *pg_batch_new(enum pg_batch_kind kind, struct pg_wrow **rows, int n)
{
	struct pg_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->kind = kind;
	b->rows = rows;
	b->n = n;
	return b;
}

void pg_batch_free(struct pg_batch *b)
{
	if (!b)
		return;
	free(b->rows);
	free(b->dl_error);
	free(b);
}

static int key_cmp(const char *t1, const char *k1, const char *t2, const char *k2)
{
	int c = strcmp(t1, t2);

	return c ? c : strcmp(k1, k2);
}

static int row_cmp(const void *a, const void *b)
{
	const struct pg_wrow *x = *(struct pg_wrow *const *)a, *y = *(struct pg_wrow *const *)b;
	int c = key_cmp(x->tenant, x->key, y->tenant, y->key);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static void add_twin(struct pg_wrow *primary, struct pg_wrow *twin)
{
	struct pg_wrow **p = &primary->twins;

	/* a twin may bring twins of its own from an earlier batch */
	while (*p)
		p = &(*p)->twins;
	*p = twin;
}

int pg_batch_dedupe(struct pg_batch *b)
{
	int out = 0, removed = 0;

	qsort(b->rows, b->n, sizeof(b->rows[0]), row_cmp);
	for (int i = 0; i < b->n; i++) {
		struct pg_wrow *r = b->rows[i];

		if (out &&
		    !key_cmp(b->rows[out - 1]->tenant, b->rows[out - 1]->key, r->tenant, r->key)) {
			add_twin(b->rows[out - 1], r);
			removed++;
			continue;
		}
		b->rows[out++] = r;
	}
	b->n = out;
	return removed;
}

struct pg_batch *pg_batch_split(struct pg_batch *b)
{
	int half = b->n / 2;
	struct pg_wrow **rows = malloc((b->n - half) * sizeof(*rows));
	struct pg_batch *nb;

	if (!rows)
		return NULL;
	memcpy(rows, b->rows + half, (b->n - half) * sizeof(*rows));
	nb = pg_batch_new(b->kind, rows, b->n - half);
	if (!nb) {
		free(rows);
		return NULL;
	}
	b->n = half;
	return nb;
}

static int build_event_arrays(const struct pg_batch *b, struct abuf a[6])
{
	int ret = 0;

	for (int k = 0; k < 6 && !ret; k++)
		ret = array_header(&a[k], k == 5 ? OID_TIMESTAMPTZ : OID_TEXT, b->n);
	for (int i = 0; i < b->n && !ret; i++) {
		const struct pg_wrow *r = b->rows[i];

		ret = array_text(&a[0], r->tenant, strlen(r->tenant)) ?:
		      array_text(&a[1], r->key, strlen(r->key)) ?:
		      array_text(&a[2], r->type, strlen(r->type)) ?:
		      array_text(&a[3], r->cls, strlen(r->cls)) ?:
		      array_text(&a[4], r->payload, r->payload_len) ?: abuf_u32(&a[5], 8) ?:
		      abuf_u64(&a[5], (uint64_t)(r->received_us - PG_EPOCH_UNIX_US));
	}
	return ret;
}

static int send_events(PGconn *c, struct pg_batch *b)
{
	static const Oid types[6] = {OID_TEXT_ARRAY, OID_TEXT_ARRAY, OID_TEXT_ARRAY,
				     OID_TEXT_ARRAY, OID_TEXT_ARRAY, OID_TIMESTAMPTZ_ARRAY};
	static const int formats[6] = {1, 1, 1, 1, 1, 1};
	struct abuf a[6] = {0};
	const char *values[6];
	int lengths[6], ret, ok;

	ret = build_event_arrays(b, a);
	if (ret) {
		snprintf(b->error, sizeof(b->error), "out of memory building a batch");
		goto out;
	}
	for (int k = 0; k < 6; k++) {
		values[k] = a[k].p;
		lengths[k] = (int)a[k].len;
	}
	ok = PQsendQueryParams(c, insert_events_sql, 6, types, values, lengths, formats, 0);
	ret = ok ? 0 : -EIO;
out:
	for (int k = 0; k < 6; k++)
		free(a[k].p);
	return ret;
}

/* Dead-letter text must be valid UTF-8 without NULs whatever the event carried. */
static char *sanitize_utf8(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i = 0;

	if (!out)
		return NULL;
	while (i < len) {
		unsigned char ch = (unsigned char)s[i];
		int n = ch < 0x80	      ? 1
			: (ch & 0xe0) == 0xc0 ? 2
			: (ch & 0xf0) == 0xe0 ? 3
			: (ch & 0xf8) == 0xf0 ? 4
					      : 0;
		bool ok = n > 0 && ch != 0 && i + n <= len && !(n == 2 && ch < 0xc2);

		for (int k = 1; ok && k < n; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (ok && n == 3) /* overlongs and surrogates */
			ok = !(ch == 0xe0 && (unsigned char)s[i + 1] < 0xa0) &&
			     !(ch == 0xed && (unsigned char)s[i + 1] >= 0xa0);
		if (ok && n == 4)
			ok = !(ch == 0xf0 && (unsigned char)s[i + 1] < 0x90) &&
			     !(ch > 0xf4 || (ch == 0xf4 && (unsigned char)s[i + 1] >= 0x90));
		if (!ok) {
			*o++ = '?';
			i++;
			continue;
		}
		memcpy(o, s + i, n);
		o += n;
		i += n;
	}
	*o = 0;
	return out;
}

static int send_dead_letter(PGconn *c, struct pg_batch *b)
{
	static const Oid types[7] = {OID_TEXT, OID_TEXT,  OID_TEXT,	  OID_INT4,
				     OID_TEXT, OID_BYTEA, OID_TIMESTAMPTZ};
	static const int formats[7] = {0, 0, 0, 0, 0, 1, 1};
	const struct pg_wrow *r = b->rows[0];
	char *tenant = sanitize_utf8(r->tenant, strlen(r->tenant));
	char *key = sanitize_utf8(r->key, strlen(r->key));
	char *err = sanitize_utf8(b->dl_error ? b->dl_error : "", strlen(b->dl_error ?: ""));
	char attempts[16];
	uint64_t ts = htobe64((uint64_t)(r->received_us - PG_EPOCH_UNIX_US));
	const char *values[7] = {tenant, key,	     b->dl_reason,     attempts,
				 err,	 r->payload, (const char *)&ts};
	int lengths[7] = {0, 0, 0, 0, 0, (int)r->payload_len, 8};
	int ret = -ENOMEM;

	snprintf(attempts, sizeof(attempts), "%d", b->attempts + 1);
	if (tenant && key && err)
		ret = PQsendQueryParams(c, insert_dead_letter_sql, 7, types, values, lengths,
					formats, 0)
			  ? 0
			  : -EIO;
	free(tenant);
	free(key);
	free(err);
	return ret;
}

static int send_simple(PGconn *c, const char *sql)
{
	return PQsendQueryParams(c, sql, 0, NULL, NULL, NULL, NULL, 0) ? 0 : -EIO;
}

int pg_batch_send(PGconn *c, struct pg_batch *b, int statement_timeout_ms)
{
	char set[160];
	int ret = 0, n;

	b->failed = false;
	b->dl_done = false;
	b->sqlstate[0] = b->error[0] = 0;
	if (b->kind == PG_BATCH_EVENTS || b->kind == PG_BATCH_DEAD_LETTER) {
		/* COMMIT must mean durable whatever the server's default (a batch is acked on
		 * it), and a stalled table must cancel the statement rather than hold the batch */
		n = snprintf(set, sizeof(set),
			     "SELECT set_config('synchronous_commit', 'on', true)");
		if (statement_timeout_ms > 0)
			snprintf(set + n, sizeof(set) - n,
				 ", set_config('statement_timeout', '%d', true)",
				 statement_timeout_ms);
		ret = send_simple(c, "BEGIN") ?: send_simple(c, set);
		if (!ret)
			ret =
			    b->kind == PG_BATCH_EVENTS ? send_events(c, b) : send_dead_letter(c, b);
		if (!ret)
			ret = send_simple(c, "COMMIT");
	} else {
		ret = send_simple(c, b->kind == PG_BATCH_UPKEEP
					 ? "SELECT sluice_ensure_partitions(1, 14)"
					 : "ROLLBACK");
	}
	if (!ret && !PQpipelineSync(c))
		ret = -EIO;
	if (!ret && PQflush(c) < 0)
		ret = -EIO;
	if (ret && !b->error[0])
		snprintf(b->error, sizeof(b->error), "%s", PQerrorMessage(c));
	return ret;
}

static struct pg_wrow *find_row(struct pg_batch *b, const char *tenant, const char *key)
{
	int lo = 0, hi = b->n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = key_cmp(b->rows[mid]->tenant, b->rows[mid]->key, tenant, key);

		if (!c)
			return b->rows[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

static void take_result(struct pg_batch *b, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	const char *state;

	if (st == PGRES_FATAL_ERROR && !b->failed) {
		b->failed = true;
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		snprintf(b->sqlstate, sizeof(b->sqlstate), "%s", state ? state : "");
		snprintf(b->error, sizeof(b->error), "%s", PQresultErrorMessage(res));
		b->error[strcspn(b->error, "\n")] = 0;
	} else if (st == PGRES_TUPLES_OK && b->kind == PG_BATCH_EVENTS && PQnfields(res) == 2 &&
		   !strcmp(PQfname(res, 0), "tenant")) {
		for (int i = 0; i < PQntuples(res); i++) {
			struct pg_wrow *r =
			    find_row(b, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));

			if (r)
				r->status = PG_ROW_STORED;
		}
	} else if (st == PGRES_COMMAND_OK && b->kind == PG_BATCH_DEAD_LETTER &&
		   !strncmp(PQcmdStatus(res), "INSERT", 6)) {
		b->dl_done = true;
	}
}

int pg_batch_consume(PGconn *c, struct pg_batch *b)
{
	int nulls = 0;

	if (!PQconsumeInput(c))
		goto broken;
	while (!PQisBusy(c)) {
		PGresult *res = PQgetResult(c);

		if (!res) {
			/* end of one query's results; two in a row means nothing is pending */
			if (++nulls > 1)
				break;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			return 1;
		}
		take_result(b, res);
		PQclear(res);
		if (PQstatus(c) == CONNECTION_BAD)
			goto broken;
	}
	if (PQstatus(c) == CONNECTION_BAD)
		goto broken;
	return 0;
broken:
	if (!b->failed)
		snprintf(b->error, sizeof(b->error), "%s", PQerrorMessage(c));
	b->error[strcspn(b->error, "\n")] = 0;
	b->failed = true;
	return -EIO;
}

enum pg_failure pg_batch_failure(const struct pg_batch *b, PGconn *c)
{
	if (!b->failed)
		return PG_FAIL_NONE;
	if (!c || PQstatus(c) == CONNECTION_BAD)
		return PG_FAIL_CONNECTION;
	/* read_only_sql_transaction: nothing written, and nothing will be on this session */
	if (!strcmp(b->sqlstate, "25006"))
		return PG_FAIL_READ_ONLY;
	/* data exceptions, integrity violations, program limits (index row too big) */
	if (!strncmp(b->sqlstate, "22", 2) || !strncmp(b->sqlstate, "23", 2) ||
	    !strncmp(b->sqlstate, "54", 2))
		return PG_FAIL_DATA;
	return PG_FAIL_TRANSIENT;
}
