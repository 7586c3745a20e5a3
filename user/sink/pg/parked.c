// SPDX-License-Identifier: MIT
/* parked.c -- the durable retry store (parked_steps): park, lease due rows, delete
 *
 * Times cross as Unix microseconds turned into timestamptz by the server, the event as a
 * binary parameter. Taking is one statement: an UPDATE of the rows picked by a sub-select
 * with FOR UPDATE SKIP LOCKED, RETURNING them, so the lease and the read are one atomic
 * step and concurrent takers split the due rows between them.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/parked.h"
#include "sink/pg/steps.h"

#define US_TO_TS(n) "to_timestamp($" #n "::bigint / 1000000.0)"

int pg_parked_put(struct pg_steps *ps, const struct pg_parked_row *r, char *err, size_t errlen)
{
	char step[16], recv[32], att[16], due[32], cls[16], slot[16];
	const char *v[11] = {r->upstream, r->tenant, r->idempotency_key, step, recv, att, due, cls,
			     slot,	  r->event,  r->last_error};
	int lens[11] = {0, 0, 0, 0, 0, 0, 0, 0, 0, (int)r->len, 0};
	int fmts[11] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	PGresult *res;

	snprintf(step, sizeof(step), "%u", r->step);
	snprintf(recv, sizeof(recv), "%lld", (long long)r->received_us);
	snprintf(att, sizeof(att), "%u", r->attempts);
	snprintf(due, sizeof(due), "%lld", (long long)r->due_us);
	snprintf(cls, sizeof(cls), "%u", r->class);
	snprintf(slot, sizeof(slot), "%u", r->tenant_slot);
	res = pg_steps_exec(
	    ps,
	    "INSERT INTO parked_steps (upstream, tenant, idempotency_key, step, received_at, "
	    "attempts, due_at, class, tenant_slot, event, last_error) VALUES ($1, $2, $3, $4, "
	    "" US_TO_TS(5) ", $6, " US_TO_TS(7) ", $8, $9, $10, $11) ON CONFLICT (tenant, "
						"idempotency_key, step, received_at) DO UPDATE SET "
						"attempts = EXCLUDED.attempts, "
						"due_at = EXCLUDED.due_at, last_error = "
						"EXCLUDED.last_error, leased_until = NULL",
	    11, v, lens, fmts, PGRES_COMMAND_OK, err, errlen);
	if (!res)
		return -EIO;
	PQclear(res);
	return 0;
}

int pg_parked_take(struct pg_steps *ps, const char *upstream, int max, uint32_t lease_ms,
		   pg_parked_take_fn *fn, void *arg, char *err, size_t errlen)
{
	char n[16], lease[16];
	const char *v[3] = {upstream, n, lease};
	PGresult *res;
	int rows;

	snprintf(n, sizeof(n), "%d", max);
	snprintf(lease, sizeof(lease), "%u", lease_ms);
	/* binary results would need per-column decoding; text with bytea in hex is simple */
	res = pg_steps_exec(
	    ps,
	    "UPDATE parked_steps p SET leased_until = clock_timestamp() + $3::int * interval "
	    "'1 millisecond' FROM (SELECT id FROM parked_steps WHERE upstream = $1 AND due_at <= "
	    "clock_timestamp() AND (leased_until IS NULL OR leased_until < clock_timestamp()) "
	    "ORDER BY due_at LIMIT $2::int FOR UPDATE SKIP LOCKED) t WHERE p.id = t.id RETURNING "
	    "p.id, p.tenant, p.idempotency_key, p.step, (extract(epoch FROM p.received_at) * "
	    "1000000)::bigint, p.attempts, (extract(epoch FROM p.due_at) * 1000000)::bigint, "
	    "p.class, p.tenant_slot, p.event, p.last_error",
	    3, v, NULL, NULL, PGRES_TUPLES_OK, err, errlen);
	if (!res)
		return -EIO;
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		size_t len = 0;
		unsigned char *ev =
		    PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 9), &len);
		struct pg_parked_row row = {
		    .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .upstream = upstream,
		    .tenant = PQgetvalue(res, i, 1),
		    .idempotency_key = PQgetvalue(res, i, 2),
		    .step = (uint32_t)strtoul(PQgetvalue(res, i, 3), NULL, 10),
		    .received_us = strtoll(PQgetvalue(res, i, 4), NULL, 10),
		    .attempts = (uint32_t)strtoul(PQgetvalue(res, i, 5), NULL, 10),
		    .due_us = strtoll(PQgetvalue(res, i, 6), NULL, 10),
		    .class = (uint32_t)strtoul(PQgetvalue(res, i, 7), NULL, 10),
		    .tenant_slot = (uint32_t)strtoul(PQgetvalue(res, i, 8), NULL, 10),
		    .event = ev,
		    .len = len,
		    .last_error = PQgetisnull(res, i, 10) ? NULL : PQgetvalue(res, i, 10),
		};

		if (ev)
			fn(arg, &row);
		PQfreemem(ev);
	}
	PQclear(res);
	return rows;
}

static int by_id(struct pg_steps *ps, const char *sql, int64_t id, char *err, size_t errlen)
{
	char idt[32];
	const char *v[1] = {idt};
	PGresult *res;

	snprintf(idt, sizeof(idt), "%lld", (long long)id);
	res = pg_steps_exec(ps, sql, 1, v, NULL, NULL, PGRES_COMMAND_OK, err, errlen);
	if (!res)
		return -EIO;
	PQclear(res);
	return 0;
}

int pg_parked_delete(struct pg_steps *ps, int64_t id, char *err, size_t errlen)
{
	return by_id(ps, "DELETE FROM parked_steps WHERE id = $1::bigint", id, err, errlen);
}

int pg_parked_unlease(struct pg_steps *ps, int64_t id, char *err, size_t errlen)
{
	return by_id(ps, "UPDATE parked_steps SET leased_until = NULL WHERE id = $1::bigint", id,
		     err, errlen);
}

int pg_parked_stats(struct pg_steps *ps, const char *upstream, struct pg_parked_stats *st,
		    char *err, size_t errlen)
{
	const char *v[1] = {upstream};
	PGresult *res = pg_steps_exec(
	    ps,
	    "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(parked_at)), "
	    "0), count(*) FILTER (WHERE due_at <= clock_timestamp() AND (leased_until IS NULL OR "
	    "leased_until < clock_timestamp())) FROM parked_steps WHERE upstream = $1",
	    1, v, NULL, NULL, PGRES_TUPLES_OK, err, errlen);

	if (!res)
		return -EIO;
	st->rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	st->oldest_s = strtod(PQgetvalue(res, 0, 1), NULL);
	st->due = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	return 0;
}

/* known as a text[] literal: {"a","b"} with " and \\ escaped. NULL on ENOMEM. */
static char *text_array(const char *const *known, int n)
{
	size_t len = 3;
	char *buf, *o;

	for (int i = 0; i < n; i++)
		len += 2 * strlen(known[i]) + 3;
	buf = malloc(len);
	if (!buf)
		return NULL;
	o = buf;
	*o++ = '{';
	for (int i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *c = known[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return buf;
}

int pg_parked_orphans(struct pg_steps *ps, const char *const *known, int nknown,
		      struct pg_parked_orphan *out, int max, char *err, size_t errlen)
{
	char *arr = text_array(known, nknown), lim[16];
	const char *v[2] = {arr, lim};
	PGresult *res;
	int n;

	if (!arr) {
		snprintf(err, errlen, "out of memory");
		return -EIO;
	}
	snprintf(lim, sizeof(lim), "%d", max);
	res = pg_steps_exec(
	    ps,
	    "SELECT upstream, count(*), extract(epoch FROM clock_timestamp() - "
	    "min(parked_at)) FROM parked_steps WHERE NOT (upstream = ANY($1::text[])) "
	    "GROUP BY upstream ORDER BY count(*) DESC, upstream LIMIT $2::int",
	    2, v, NULL, NULL, PGRES_TUPLES_OK, err, errlen);
	free(arr);
	if (!res)
		return -EIO;
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		snprintf(out[i].upstream, sizeof(out[i].upstream), "%s", PQgetvalue(res, i, 0));
		out[i].rows = strtoull(PQgetvalue(res, i, 1), NULL, 10);
		out[i].oldest_s = strtod(PQgetvalue(res, i, 2), NULL);
	}
	PQclear(res);
	return n;
}
