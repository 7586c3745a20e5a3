/* SPDX-License-Identifier: MIT */
/* migrate.h -- the SQL schema, embedded in the binary and applied at start
 *
 * Migrations are user/sink/pg/migrations/NNN_name.sql, compiled in (see user/sink/pg/pg.mk). The
 * database records what it has in sluice_schema_version; pg_migrate() applies the missing
 * ones in one transaction under an advisory lock, so concurrent starts and re-runs are
 * harmless. A database newer than this binary is refused: guessing would risk writing
 * rows a newer schema does not expect.
 */
#ifndef SLUICE_PG_MIGRATE_H
#define SLUICE_PG_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/* Highest schema version this binary carries. */
int pg_migrate_latest(void);

/* Bring the database on conn up to pg_migrate_latest(). Returns the number of migrations
 * applied (0 when already current) or -errno: -EPROTO when the database's schema is newer
 * than this binary, -EIO for a server error. On failure err (when non-NULL) holds a message
 * naming the cause and the transaction is rolled back, leaving the schema as it was. The
 * connection stays owned by the caller and usable. */
int pg_migrate(PGconn *conn, char *err, size_t errlen);

/* pg_migrate() on a connection of its own, opened from conninfo and closed afterwards;
 * -ECONNREFUSED (with err) when the connection fails. */
int pg_migrate_conninfo(const char *conninfo, char *err, size_t errlen);

/* Schema version recorded in the database (0 when none), or -errno with err. */
int pg_migrate_current(PGconn *conn, char *err, size_t errlen);

#endif /* SLUICE_PG_MIGRATE_H */
