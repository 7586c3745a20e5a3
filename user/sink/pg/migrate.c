// SPDX-License-Identifier: MIT
/* migrate.c -- apply the embedded SQL migrations, once, in order, refusing newer schemas
 *
 * Everything happens in one transaction: BEGIN, pg_advisory_xact_lock (a second sluiced
 * starting at the same moment waits here, then finds nothing to do), create the version
 * table if missing, read the highest applied version, refuse when it is above ours, run
 * each missing migration and record it, COMMIT. PostgreSQL DDL is transactional, so a
 * failing migration leaves the schema untouched. Only the simple query protocol inside one
 * transaction is used, which PgBouncer's transaction pooling keeps on one server.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/array_size.h"
#include "lib/log.h"
#include "sink/pg/migrate.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

static const struct migration migrations[] = {
#include "pg_migrations.h"
};

#define N_MIGRATIONS ((int)(ARRAY_SIZE(migrations)))
/* "sluice" in ASCII: the advisory lock every sluiced migrating this database takes */
#define MIGRATE_LOCK_KEY 0x736c75696365LL

int pg_migrate_latest(void)
{
	return N_MIGRATIONS ? migrations[N_MIGRATIONS - 1].version : 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Run sql; 0 when its status is want, else -EIO with the server's message in err. */
static int exec_expect(PGconn *conn, const char *sql, ExecStatusType want, PGresult **keep,
		       const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	int ret = 0;

	if (PQresultStatus(res) != want) {
		set_err(err, errlen, "postgres: %s: %s", what,
			res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
		ret = -EIO;
	}
	if (keep && !ret)
		*keep = res;
	else
		PQclear(res);
	return ret;
}

static int read_version(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = NULL;
	int ret;

	ret = exec_expect(conn, "SELECT coalesce(max(version), 0) FROM sluice_schema_version",
			  PGRES_TUPLES_OK, &res, "reading sluice_schema_version", err, errlen);
	if (ret)
		return ret;
	ret = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return ret;
}

int pg_migrate_current(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = NULL;
	int ret;

	ret = exec_expect(conn, "SELECT to_regclass('sluice_schema_version') IS NOT NULL",
			  PGRES_TUPLES_OK, &res, "looking for sluice_schema_version", err, errlen);
	if (ret)
		return ret;
	ret = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return ret ? read_version(conn, err, errlen) : 0;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
	const char *params[2];
	ExecStatusType st;
	PGresult *res;
	char ver[16];
	int ret;

	/* PQexec returns the last statement's result: TUPLES_OK or COMMAND_OK are both fine */
	res = PQexec(conn, m->sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		set_err(err, errlen, "postgres: migration %s: %s", m->name,
			res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
		PQclear(res);
		return -EIO;
	}
	PQclear(res);
	snprintf(ver, sizeof(ver), "%d", m->version);
	params[0] = ver;
	params[1] = m->name;
	res =
	    PQexecParams(conn, "INSERT INTO sluice_schema_version (version, name) VALUES ($1, $2)",
			 2, NULL, params, NULL, NULL, 0);
	ret = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -EIO;
	if (ret)
		set_err(err, errlen, "postgres: recording %s: %s", m->name,
			PQresultErrorMessage(res));
	PQclear(res);
	return ret;
}

static int migrate_locked(PGconn *conn, char *err, size_t errlen)
{
	int cur, applied = 0, ret;
	char lock[96];

	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)", MIGRATE_LOCK_KEY);
	/* IF NOT EXISTS would log a NOTICE on every start */
	ret = exec_expect(conn, "SET LOCAL client_min_messages = warning", PGRES_COMMAND_OK, NULL,
			  "SET", err, errlen);
	if (!ret)
		ret = exec_expect(conn, lock, PGRES_TUPLES_OK, NULL, "advisory lock", err, errlen);
	if (!ret)
		ret = exec_expect(conn,
				  "CREATE TABLE IF NOT EXISTS sluice_schema_version ("
				  " version integer PRIMARY KEY, name text NOT NULL,"
				  " applied_at timestamptz NOT NULL DEFAULT now())",
				  PGRES_COMMAND_OK, NULL, "creating sluice_schema_version", err,
				  errlen);
	if (ret)
		return ret;
	cur = read_version(conn, err, errlen);
	if (cur < 0)
		return cur;
	if (cur > pg_migrate_latest()) {
		set_err(err, errlen,
			"postgres: database schema version %d is newer than this build knows (%d): "
			"run the sluiced that migrated it, or a newer one",
			cur, pg_migrate_latest());
		return -EPROTO;
	}
	for (int i = 0; i < N_MIGRATIONS; i++) {
		if (migrations[i].version <= cur)
			continue;
		ret = apply_one(conn, &migrations[i], err, errlen);
		if (ret)
			return ret;
		log_info("postgres: migration applied", "version=%d name=%s", migrations[i].version,
			 migrations[i].name);
		applied++;
	}
	return applied;
}

int pg_migrate(PGconn *conn, char *err, size_t errlen)
{
	int ret;

	ret = exec_expect(conn, "BEGIN", PGRES_COMMAND_OK, NULL, "BEGIN", err, errlen);
	if (ret)
		return ret;
	ret = migrate_locked(conn, err, errlen);
	if (ret < 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return ret;
	}
	if (exec_expect(conn, "COMMIT", PGRES_COMMAND_OK, NULL, "COMMIT", err, errlen))
		return -EIO;
	return ret;
}

int pg_migrate_conninfo(const char *conninfo, char *err, size_t errlen)
{
	PGconn *conn = PQconnectdb(conninfo);
	int ret;

	if (PQstatus(conn) != CONNECTION_OK) {
		set_err(err, errlen, "postgres: connecting for migrations: %s",
			PQerrorMessage(conn));
		PQfinish(conn);
		return -ECONNREFUSED;
	}
	ret = pg_migrate(conn, err, errlen);
	PQfinish(conn);
	return ret;
}
