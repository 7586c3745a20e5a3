/* SPDX-License-Identifier: MIT */
/* pgharness.h -- a private PostgreSQL 15 (and PgBouncer in front of it) for tests and benches
 *
 * pgh_server_start() runs initdb and pg_ctl as the `postgres` user (PostgreSQL refuses
 * root) on a data directory under the caller's scratch directory, listening on a free
 * 127.0.0.1 port and on a unix socket in that directory, and creates database "sluice".
 * The server can be stopped (fast or immediate = a crash), started again on the same data
 * and port, and queried with psql. pgh_bouncer_start() puts PgBouncer in transaction
 * pooling mode in front of it. Every server and bouncer still running when the process
 * exits is stopped by an atexit handler, so a failing test never leaves one behind.
 */
#ifndef SLUICE_TEST_PGHARNESS_H
#define SLUICE_TEST_PGHARNESS_H

#include <stdbool.h>
#include <stddef.h>

struct pgh_server {
	char dir[256]; /* base directory (owned by postgres), holds data/ and the socket */
	char datadir[300];
	char logfile[300];
	int port;		  /* TCP port on host */
	char host[48];		  /* TCP address: 127.0.0.1, or pgh_options.listen_addr */
	char netns[32];		  /* "" or the network namespace the server runs in */
	char conninfo[400];	  /* libpq conninfo for database "sluice" over TCP */
	char local_conninfo[400]; /* the same over the unix socket (reachable in a partition) */
	bool running;
};

struct pgh_bouncer {
	char dir[256];
	char ini[300];
	char pidfile[300];
	int port;
	char conninfo[400]; /* libpq conninfo for "sluice" through PgBouncer */
	bool running;
};

struct pgh_options {
	bool fsync;		 /* default off: tests crash the server, not the kernel;
				  * synchronous_commit is always on */
	int max_connections;	 /* 0: 100 */
	const char *netns;	 /* run the postmaster in this network namespace (dbchaos.h) */
	const char *listen_addr; /* its TCP address (default 127.0.0.1) */
};

/* initdb + start + createdb sluice under basedir/pg. Returns 0 or -errno (the reason is
 * printed to stderr with the server log tail). opts may be NULL. On failure nothing keeps
 * running. */
int pgh_server_start(struct pgh_server *s, const char *basedir, const struct pgh_options *opts);
/* Stop with mode "fast" or "immediate" (a crash: no checkpoint, recovery at next start). */
int pgh_server_stop(struct pgh_server *s, const char *mode);
/* Start again on the same data directory and port; waits until it accepts connections. */
int pgh_server_restart(struct pgh_server *s);
/* Stop (immediate) if running; NULL-safe, idempotent. The directory stays for the caller. */
void pgh_server_destroy(struct pgh_server *s);

/* ---- replication (failover tests) ---- */
/* Start a streaming standby of primary (pg_basebackup of it, standby.signal, primary_conninfo
 * with application_name = name) under basedir/name, on its own port on 127.0.0.1. With sync,
 * the primary's synchronous_standby_names becomes name (so a COMMIT returns only once the
 * standby flushed it); returns once the primary reports the standby streaming (and sync).
 * 0 or -errno; on failure the standby is not running. */
int pgh_standby_start(struct pgh_server *st, const struct pgh_server *primary, const char *basedir,
		      const char *name, bool sync);
/* Stop the standby's streaming (primary_conninfo = '' and reload): from now on it falls
 * behind an asynchronous primary. Returns once the primary lists no walsender for it. */
int pgh_standby_detach(struct pgh_server *st, const struct pgh_server *primary);
/* pg_ctl promote -w: the standby becomes a writable primary. */
int pgh_promote(struct pgh_server *st);
/* SIGKILL the postmaster and every child at once (the machine died: no shutdown, no
 * goodbye to clients or standbys); returns once all are gone. */
int pgh_server_kill(struct pgh_server *s);

/* Run `psql -X -q -At -v ON_ERROR_STOP=1 -c <sql>` on database sluice, output (stdout and
 * stderr) into out (may be NULL). Returns psql's exit status (0 = success) or -errno. */
int pgh_psql(const struct pgh_server *s, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Run psql with extra arguments (e.g. -f file, or -c "\copy ..."), no -c added. */
int pgh_psql_args(const struct pgh_server *s, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Drop database "sluice" (closing its sessions) and create it empty, for a server that
 * several subtests share. 0, or -errno with psql's output in out. */
int pgh_fresh_db(const struct pgh_server *s, char *out, size_t outlen);
/* A single integer from a query (first column of the first row); -1 with a message on error. */
long long pgh_query_ll(const struct pgh_server *s, const char *sql);
/* Poll sql until it returns want or seconds pass; prints the last value when it never did. */
bool pgh_wait_ll(const struct pgh_server *s, const char *sql, long long want, int seconds);

/* Start PgBouncer 1.18 (transaction pooling, pool_size server connections per database) in
 * front of s; any database name is passed through (conninfo names "sluice"). */
int pgh_bouncer_start(struct pgh_bouncer *b, const struct pgh_server *s, const char *basedir,
		      int pool_size);
/* Stop PgBouncer; NULL-safe, idempotent. */
void pgh_bouncer_stop(struct pgh_bouncer *b);

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read back), or -errno. */
int pgh_free_port(void);

#endif /* SLUICE_TEST_PGHARNESS_H */
