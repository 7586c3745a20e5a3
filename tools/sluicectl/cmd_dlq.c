// SPDX-License-Identifier: MIT
/* cmd_dlq.c -- sluicectl dlq list|show|replay|purge (dead letters) and key hash
 *
 * The dead letters live in PostgreSQL, so these commands talk to the database, not to the
 * pinned maps: --pg CONNINFO, or the usual libpq environment (PGHOST, PGPORT, PGDATABASE,
 * PGUSER). `replay` only marks rows (replay_requested_at); the running sluiced puts them
 * back into its queue within a second and stamps replayed_at (user/control/dlq.c), so a replay is
 * durable and survives either side restarting. `purge` deletes rows for good.
 * `key hash` prints the SHA-256 digest of an API key read from stdin, for the tenants file.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lib/sha256.h"

static PGconn *dlq_connect(const struct ctl_args *a)
{
	const char *ci = ctl_opt_get(a, "pg");
	PGconn *c = PQconnectdb(ci ? ci : "");

	if (PQstatus(c) != CONNECTION_OK) {
		ctl_fail("--pg %s: %s", ci ? ci : "(from PG* environment)", PQerrorMessage(c));
		PQfinish(c);
		exit(1);
	}
	return c;
}

static PGresult *dlq_exec(PGconn *c, const char *sql, int n, const char *const *v)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		ctl_fail("%s", PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		exit(1);
	}
	return r;
}

/* The row selector shared by list, replay and purge: ID, or --all with filters. */
static void selector(const struct ctl_args *a, const char **v, char *where, size_t cap)
{
	const char *tenant = ctl_opt_get(a, "tenant");
	bool all = ctl_opt_count(a, "all") > 0;

	if (a->npos && all)
		ctl_bad_arg("give either an ID or --all, not both");
	if (a->npos) {
		ctl_parse_uint("ID", a->pos[0], 1, (1ULL << 62));
		v[0] = a->pos[0];
		snprintf(where, cap, "id = $1::bigint");
		return;
	}
	v[0] = tenant ? tenant : "";
	snprintf(where, cap, "($1 = '' OR tenant = $1)");
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	const char *v[2] = {ctl_opt_get(a, "tenant") ? ctl_opt_get(a, "tenant") : "",
			    ctl_opt_get(a, "limit") ? ctl_opt_get(a, "limit") : "50"};
	PGconn *db;
	PGresult *r;
	json_t *arr = json_array();

	ctl_parse_uint("--limit", v[1], 1, 100000);
	db = dlq_connect(a);
	r = dlq_exec(db,
		     "SELECT id, tenant, idempotency_key, step, reason, attempts, "
		     "to_char(failed_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), "
		     "CASE WHEN replayed_at IS NOT NULL THEN 'replayed' "
		     "WHEN replay_requested_at IS NOT NULL THEN 'requested' ELSE '' END "
		     "FROM dead_letters WHERE ($1 = '' OR tenant = $1) ORDER BY id DESC "
		     "LIMIT $2::int",
		     2, v);
	if (!c->json)
		printf("%-8s %-16s %-24s %-14s %-9s %-8s %s\n", "ID", "TENANT", "KEY", "STEP",
		       "ATTEMPTS", "REPLAY", "REASON");
	for (int i = 0; i < PQntuples(r); i++) {
		if (c->json) {
			json_array_append_new(
			    arr,
			    json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "id",
				      (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10), "tenant",
				      PQgetvalue(r, i, 1), "idempotency_key", PQgetvalue(r, i, 2),
				      "step", PQgetvalue(r, i, 3), "reason", PQgetvalue(r, i, 4),
				      "attempts", atoi(PQgetvalue(r, i, 5)), "failed_at",
				      PQgetvalue(r, i, 6), "replay", PQgetvalue(r, i, 7)));
			continue;
		}
		printf("%-8s %-16s %-24s %-14s %-9s %-8s %s\n", PQgetvalue(r, i, 0),
		       PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
		       PQgetvalue(r, i, 5), PQgetvalue(r, i, 7), PQgetvalue(r, i, 4));
	}
	if (c->json)
		ctl_json_print(arr);
	else
		json_decref(arr);
	PQclear(r);
	PQfinish(db);
	return 0;
}

static int run_show(struct ctl *c, const struct ctl_args *a)
{
	const char *v[1] = {a->pos[0]};
	static const char *const cols[] = {
	    "id",	   "tenant",	 "idempotency_key", "step",	 "reason",
	    "attempts",	   "last_error", "received_at",	    "failed_at", "replay_requested_at",
	    "replayed_at", "event"};
	json_t *o = json_object();
	PGconn *db;
	PGresult *r;

	ctl_parse_uint("ID", a->pos[0], 1, (1ULL << 62));
	db = dlq_connect(a);
	r = dlq_exec(db,
		     "SELECT id, tenant, idempotency_key, step, reason, attempts, last_error, "
		     "received_at, failed_at, replay_requested_at, replayed_at, "
		     "convert_from(payload, 'UTF8') FROM dead_letters WHERE id = $1::bigint",
		     1, v);
	if (!PQntuples(r)) {
		PQclear(r);
		PQfinish(db);
		json_decref(o);
		return ctl_fail("dead letter %s: no such id (see sluicectl dlq list)", a->pos[0]);
	}
	for (int k = 0; k < 12; k++) {
		const char *val = PQgetisnull(r, 0, k) ? NULL : PQgetvalue(r, 0, k);

		if (c->json)
			json_object_set_new(o, cols[k], val ? json_string(val) : json_null());
		else
			printf("%-20s %s\n", cols[k], val ? val : "-");
	}
	if (c->json)
		ctl_json_print(o);
	else
		json_decref(o);
	PQclear(r);
	PQfinish(db);
	return 0;
}

static int mark(struct ctl *c, const struct ctl_args *a, bool purge)
{
	const char *v[1];
	char where[128], sql[512];
	PGconn *db;
	PGresult *r;
	long n;

	if (!a->npos && !ctl_opt_count(a, "all"))
		ctl_bad_arg("dlq %s: give an ID or --all (optionally with --tenant NAME)",
			    purge ? "purge" : "replay");
	selector(a, v, where, sizeof(where));
	if (purge)
		snprintf(sql, sizeof(sql), "DELETE FROM dead_letters WHERE %s", where);
	else
		snprintf(sql, sizeof(sql),
			 "UPDATE dead_letters SET replay_requested_at = clock_timestamp(), "
			 "replayed_at = NULL WHERE %s AND (replayed_at IS NOT NULL OR "
			 "replay_requested_at IS NULL)",
			 where);
	db = dlq_connect(a);
	r = dlq_exec(db, sql, 1, v);
	n = strtol(PQcmdTuples(r), NULL, 10);
	if (c->json)
		ctl_json_print(
		    json_pack("{s:s, s:i}", purge ? "purged" : "replay_requested", "rows", (int)n));
	else if (purge)
		printf("purged %ld dead letter%s\n", n, n == 1 ? "" : "s");
	else
		printf(
		    "%ld dead letter%s queued for replay; sluiced picks them up within a second\n",
		    n, n == 1 ? "" : "s");
	PQclear(r);
	PQfinish(db);
	if (a->npos && !n)
		return ctl_fail("dead letter %s: no such id, or its replay is already pending",
				a->pos[0]);
	return 0;
}

static int run_replay(struct ctl *c, const struct ctl_args *a)
{
	return mark(c, a, false);
}

static int run_purge(struct ctl *c, const struct ctl_args *a)
{
	return mark(c, a, true);
}

static int run_key_hash(struct ctl *c, const struct ctl_args *a)
{
	char key[4096], hex[SHA256_LEN * 2 + 1];
	uint8_t d[SHA256_LEN];
	size_t n = fread(key, 1, sizeof(key), stdin);

	while (n && (key[n - 1] == '\n' || key[n - 1] == '\r'))
		n--; /* `echo KEY |` and files end in a newline the key does not have */
	if (!n)
		ctl_bad_arg(
		    "key hash: no key on stdin (e.g. printf %%s \"$KEY\" | sluicectl key hash)");
	sha256(key, n, d);
	for (int i = 0; i < SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	if (c->json)
		ctl_json_print(json_pack("{s:s}", "sha256", hex));
	else
		printf("%s\n", hex);
	return 0;
}

static const struct ctl_opt pg_opt[] = {
    {"pg", "CONNINFO", 0, "PostgreSQL connection string (default: PG* environment)"},
    {NULL},
};

static const struct ctl_opt list_opts[] = {
    {"pg", "CONNINFO", 0, "PostgreSQL connection string (default: PG* environment)"},
    {"tenant", "NAME", 0, "only this tenant's dead letters"},
    {"limit", "N", 0, "newest N rows (default 50)"},
    {NULL},
};

static const struct ctl_opt mark_opts[] = {
    {"pg", "CONNINFO", 0, "PostgreSQL connection string (default: PG* environment)"},
    {"all", NULL, CTL_OPT_FLAG, "every dead letter (with --tenant: every one of it)"},
    {"tenant", "NAME", 0, "with --all: only this tenant"},
    {NULL},
};

const struct ctl_cmd ctl_dlq_cmds[] = {
    {"dlq", "list", NULL, 0, 0, list_opts, "dead letters, newest first", run_list},
    {"dlq", "show", "ID", 1, 1, pg_opt, "one dead letter with its error and stored event",
     run_show},
    {"dlq", "replay", "[ID]", 0, 1, mark_opts,
     "put dead letters back into sluiced's queue (the failed step runs again)", run_replay},
    {"dlq", "purge", "[ID]", 0, 1, mark_opts, "delete dead letters for good", run_purge},
    {"key", "hash", NULL, 0, 0, NULL,
     "SHA-256 of an API key read from stdin, for the tenants file's key = lines", run_key_hash},
    {NULL},
};
