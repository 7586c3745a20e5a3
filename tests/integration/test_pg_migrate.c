// SPDX-License-Identifier: MIT
/* test_pg_migrate.c -- schema migrations: applied once, idempotent, newer schemas refused */
#include <libpq-fe.h>

#include "ingress/envelope.h"
#include "queue/event.h"
#include "sink/pg/migrate.h"
#include "pgharness.h"
#include "test_progs.h"

static void subtest_fresh_and_again(const struct pgh_server *s)
{
	char err[512] = "";
	int ret;

	ret = pg_migrate_conninfo(s->conninfo, err, sizeof(err));
	if (!ASSERT_EQ(ret, pg_migrate_latest(), "first run applies all")) {
		printf("%s\n", err);
		return;
	}
	ASSERT_GT(pg_migrate_latest(), 0, "embedded migrations");
	ASSERT_EQ(pgh_query_ll(s, "SELECT max(version) FROM sluice_schema_version"),
		  pg_migrate_latest(), "version recorded");
	/* the tables exist and partitions for today are in place */
	ASSERT_EQ(pgh_query_ll(s, "SELECT count(*) FROM pg_class WHERE relname IN "
				  "('events','event_keys','step_results','dead_letters')"),
		  4, "tables");
	ASSERT_GE(pgh_query_ll(s, "SELECT count(*) FROM pg_inherits i JOIN pg_class p "
				  "ON p.oid = i.inhparent WHERE p.relname = 'events'"),
		  15, "daily partitions");
	/* a second run (a sluiced restart) applies nothing and changes nothing */
	ret = pg_migrate_conninfo(s->conninfo, err, sizeof(err));
	if (!ASSERT_EQ(ret, 0, "second run applies nothing"))
		printf("%s\n", err);
	ASSERT_EQ(pgh_query_ll(s, "SELECT count(*) FROM sluice_schema_version"),
		  pg_migrate_latest(), "one row per version");
}

/* Issue 18's tables come as 004 and 005, after 003, and a database migrated before them
 * (at 003) gets exactly those two, in order. */
static void subtest_upgrade_from_003(const struct pgh_server *s)
{
	char err[512] = "", out[256] = "";

	ASSERT_GE(pg_migrate_latest(), 5, "004 and 005 embedded");
	pg_migrate_conninfo(s->conninfo, err, sizeof(err)); /* when run alone */
	pgh_query_ll(s, "DROP TABLE call_claims");
	pgh_query_ll(s, "DROP TABLE parked_steps");
	pgh_query_ll(s, "DELETE FROM sluice_schema_version WHERE version > 3");
	ASSERT_EQ(pg_migrate_conninfo(s->conninfo, err, sizeof(err)), pg_migrate_latest() - 3,
		  "a 003 database gets the newer ones");
	pgh_psql(s, out, sizeof(out),
		 "SELECT string_agg(name, ' ' ORDER BY version) FROM sluice_schema_version "
		 "WHERE version > 3");
	ASSERT_HAS_STR(out, "004_parked_steps 005_call_claims", "in order, by name");
	ASSERT_EQ(pgh_query_ll(s, "SELECT count(*) FROM pg_class WHERE relname IN "
				  "('parked_steps', 'call_claims')"),
		  2, "their tables");
	ASSERT_EQ(pgh_query_ll(s, "SELECT count(*) FROM sluice_schema_version"),
		  pg_migrate_latest(), "versions contiguous, one row each");
}

static void subtest_two_sessions(const struct pgh_server *s)
{
	PGconn *a = PQconnectdb(s->conninfo), *b = PQconnectdb(s->conninfo);
	char err[512] = "";

	/* a second session on an up-to-date database: nothing to do, version readable */
	if (!ASSERT_EQ(PQstatus(a), CONNECTION_OK, "connect a") ||
	    !ASSERT_EQ(PQstatus(b), CONNECTION_OK, "connect b"))
		goto out;
	ASSERT_EQ(pg_migrate(a, err, sizeof(err)), 0, "session a");
	ASSERT_EQ(pg_migrate(b, err, sizeof(err)), 0, "session b");
	ASSERT_EQ(pg_migrate_current(b, err, sizeof(err)), pg_migrate_latest(), "current");
out:
	PQfinish(a);
	PQfinish(b);
}

/* sluiced in a cluster migrates through PgBouncer (transaction pooling, one server) */
static void subtest_via_pgbouncer(const struct pgh_server *s)
{
	struct pgh_bouncer b;
	char err[512] = "", ci[512];
	int ret;

	if (!ASSERT_OK(pgh_psql(s, NULL, 0, "CREATE DATABASE viapgb"), "createdb") ||
	    !ASSERT_OK(pgh_bouncer_start(&b, s, test__tmpdir(), 1), "pgbouncer start"))
		return;
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=viapgb user=postgres", b.port);
	ret = pg_migrate_conninfo(ci, err, sizeof(err));
	if (!ASSERT_EQ(ret, pg_migrate_latest(), "fresh database migrated through PgBouncer"))
		printf("%s\n", err);
	ret = pg_migrate_conninfo(ci, err, sizeof(err));
	ASSERT_EQ(ret, 0, "and again: nothing to do");
	pgh_bouncer_stop(&b);
}

static void subtest_newer_schema_refused(const struct pgh_server *s)
{
	char err[512] = "";
	int ret, newer = pg_migrate_latest() + 1;

	if (!ASSERT_OK(
		pgh_psql(s, NULL, 0, "INSERT INTO sluice_schema_version VALUES (%d, 'x')", newer),
		"record a newer version"))
		return;
	ret = pg_migrate_conninfo(s->conninfo, err, sizeof(err));
	ASSERT_EQ(ret, -EPROTO, "refused");
	ASSERT_HAS_STR(err, "newer than this build knows", "message names the cause");
	ASSERT_EQ(pgh_query_ll(s, "SELECT max(version) FROM sluice_schema_version"), newer,
		  "nothing rolled back or added");
	/* the error is reported as such, not as a connection problem */
	ret = pg_migrate_conninfo("host=127.0.0.1 port=1 dbname=sluice connect_timeout=2", err,
				  sizeof(err));
	ASSERT_EQ(ret, -ECONNREFUSED, "unreachable database");
	ASSERT_HAS_STR(err, "connecting for migrations", "connection message");
}

static void subtest_failed_migration_rolls_back(const struct pgh_server *s)
{
	char err[512] = "";
	int ret;

	/* a fresh database where a table the migration creates already exists */
	char ci[512];
	PGconn *c;

	if (!ASSERT_OK(pgh_psql(s, NULL, 0, "CREATE DATABASE broken"), "createdb"))
		return;
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=broken user=postgres", s->port);
	c = PQconnectdb(ci);
	PQclear(PQexec(c, "CREATE TABLE events (x int)"));
	ret = pg_migrate(c, err, sizeof(err));
	ASSERT_EQ(ret, -EIO, "server error");
	ASSERT_HAS_STR(err, "001_init", "names the migration");
	ASSERT_EQ(pg_migrate_current(c, err, sizeof(err)), 0, "nothing recorded");
	PQfinish(c);
}

/* What intake accepts always fits: every column that holds an envelope field is as wide as
 * the limit the ingress enforces (an idempotency key of 201-256 bytes used to get 202 and
 * then dead-letter forever). Runs after fresh_and_again migrated the database. */
static void subtest_limits_agree(const struct pgh_server *s)
{
	static const struct {
		const char *table, *column;
		long long limit;
	} cols[] = {
	    {"event_keys", "idempotency_key", ENVELOPE_KEY_MAX},
	    {"events", "idempotency_key", ENVELOPE_KEY_MAX},
	    {"step_results", "idempotency_key", ENVELOPE_KEY_MAX},
	    {"events", "type", ENVELOPE_TYPE_MAX},
	    {"event_keys", "tenant", EVENT_TENANT_MAX},
	    {"events", "tenant", EVENT_TENANT_MAX},
	    {"step_results", "tenant", EVENT_TENANT_MAX},
	};
	char sql[400];

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT character_maximum_length FROM information_schema.columns WHERE "
			 "table_schema = 'public' AND table_name = '%s' AND column_name = '%s'",
			 cols[i].table, cols[i].column);
		ASSERT_EQ(pgh_query_ll(s, sql), cols[i].limit, cols[i].column);
	}
	/* and the longest key intake accepts is stored */
	ASSERT_OK(pgh_psql(s, NULL, 0,
			   "INSERT INTO event_keys VALUES ('acme', repeat('k', %d), now())",
			   ENVELOPE_KEY_MAX),
		  "a key of ENVELOPE_KEY_MAX bytes fits");
}

void test_pg_migrate(void)
{
	struct pgh_server s;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(pgh_server_start(&s, test__tmpdir(), NULL), "postgres start"))
		return;
	if (test__start_subtest("fresh_and_again"))
		subtest_fresh_and_again(&s);
	if (test__start_subtest("upgrade_from_003"))
		subtest_upgrade_from_003(&s);
	if (test__start_subtest("limits_agree_with_intake"))
		subtest_limits_agree(&s);
	if (test__start_subtest("two_sessions"))
		subtest_two_sessions(&s);
	if (test__start_subtest("failed_migration_rolls_back"))
		subtest_failed_migration_rolls_back(&s);
	if (test__start_subtest("via_pgbouncer"))
		subtest_via_pgbouncer(&s);
	if (test__start_subtest("newer_schema_refused"))
		subtest_newer_schema_refused(&s);
	pgh_server_destroy(&s);
}
