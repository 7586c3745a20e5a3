// SPDX-License-Identifier: MIT
/* pgharness.c -- a private PostgreSQL 15 (and PgBouncer in front of it) for tests and benches
 *
 * Every command runs through netns_run(NULL, ...) (the current namespace, output captured).
 * Server processes run as `postgres` via runuser, on files under basedir chown'd to it.
 * Live servers and bouncers are remembered in a small table; an atexit handler stops them,
 * because a test that fails half-way must not leave a postmaster running on a deleted
 * directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "netns.h"
#include "pgharness.h"

#define PG_BIN	 "/usr/lib/postgresql/15/bin"
#define MAX_LIVE 8

static struct pgh_server *live_servers[MAX_LIVE];
static struct pgh_bouncer *live_bouncers[MAX_LIVE];
static bool atexit_set;

static void stop_all_at_exit(void)
{
	for (int i = 0; i < MAX_LIVE; i++) {
		pgh_bouncer_stop(live_bouncers[i]);
		pgh_server_destroy(live_servers[i]);
	}
}

static void track(void **table, void *p, bool add)
{
	if (!atexit_set) {
		atexit(stop_all_at_exit);
		atexit_set = true;
	}
	for (int i = 0; i < MAX_LIVE; i++) {
		if (add ? !table[i] : table[i] == p) {
			table[i] = add ? p : NULL;
			return;
		}
	}
}

int pgh_free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (!ret)
		ret = getsockname(fd, (struct sockaddr *)&sa, &len);
	ret = ret ? -errno : ntohs(sa.sin_port);
	close(fd);
	return ret;
}

static int make_postgres_dir(const char *path)
{
	struct passwd *pw = getpwnam("postgres");

	if (!pw)
		return -ENOENT;
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	if (chown(path, pw->pw_uid, pw->pw_gid))
		return -errno;
	return 0;
}

static void print_log_tail(const char *what, const char *logfile, const char *out)
{
	char tail[4096];

	netns_run(NULL, tail, sizeof(tail), "tail -n 20 %s", logfile);
	fprintf(stderr, "pgharness: %s failed: %s\n--- %s ---\n%s\n", what, out, logfile, tail);
}

static int pg_ctl_start(struct pgh_server *s)
{
	char out[4096];
	int ret;

	ret = netns_run(s->netns, out, sizeof(out),
			"runuser -u postgres -- " PG_BIN "/pg_ctl start -w -t 60 -D %s -l %s",
			s->datadir, s->logfile);
	if (ret) {
		print_log_tail("pg_ctl start", s->logfile, out);
		return ret < 0 ? ret : -EIO;
	}
	s->running = true;
	return 0;
}

static int write_conf(struct pgh_server *s, const struct pgh_options *opts)
{
	char path[400];
	FILE *f;

	snprintf(path, sizeof(path), "%s/postgresql.conf", s->datadir);
	f = fopen(path, "a");
	if (!f)
		return -errno;
	/* synchronous_commit stays on: with it off, an immediate stop loses acknowledged
	 * commits still in WAL buffers. fsync off is safe here: a crash of the server, not of
	 * the kernel, keeps what was written to the page cache. */
	fprintf(f,
		"\n# pgharness\nport = %d\nlisten_addresses = '%s'\n"
		"unix_socket_directories = '%s'\nfsync = %s\nfull_page_writes = %s\n"
		"max_connections = %d\nshared_buffers = 256MB\n"
		"max_wal_size = 2GB\nlog_min_messages = warning\nlog_min_error_statement = panic\n",
		s->port, s->host, s->dir, opts && opts->fsync ? "on" : "off",
		opts && opts->fsync ? "on" : "off",
		opts && opts->max_connections ? opts->max_connections : 100);
	if (fclose(f))
		return -errno;
	if (!strcmp(s->host, "127.0.0.1"))
		return 0;
	/* initdb -A trust lets in loopback only; a server in a namespace is reached over a link */
	snprintf(path, sizeof(path), "%s/pg_hba.conf", s->datadir);
	f = fopen(path, "a");
	if (!f)
		return -errno;
	fprintf(f, "host all all samenet trust\nhost replication all samenet trust\n");
	return fclose(f) ? -errno : 0;
}

/* Names, port and conninfos of a server in dir (not created yet). */
static int server_init(struct pgh_server *s, const char *dir, const struct pgh_options *opts)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	snprintf(s->datadir, sizeof(s->datadir), "%s/data", s->dir);
	snprintf(s->logfile, sizeof(s->logfile), "%s/postgres.log", s->dir);
	snprintf(s->host, sizeof(s->host), "%s",
		 opts && opts->listen_addr ? opts->listen_addr : "127.0.0.1");
	snprintf(s->netns, sizeof(s->netns), "%s", opts && opts->netns ? opts->netns : "");
	s->port = pgh_free_port();
	if (s->port < 0)
		return s->port;
	snprintf(s->conninfo, sizeof(s->conninfo),
		 "host=%s port=%d dbname=sluice user=postgres connect_timeout=5", s->host, s->port);
	snprintf(s->local_conninfo, sizeof(s->local_conninfo),
		 "host=%s port=%d dbname=sluice user=postgres", s->dir, s->port);
	return make_postgres_dir(s->dir);
}

int pgh_server_start(struct pgh_server *s, const char *basedir, const struct pgh_options *opts)
{
	char out[4096];
	int ret;

	snprintf(out, sizeof(out), "%s/pg", basedir);
	ret = server_init(s, out, opts);
	if (ret)
		return ret;
	ret = netns_run(NULL, out, sizeof(out),
			"runuser -u postgres -- " PG_BIN "/initdb -A trust -U postgres -E UTF8 "
			"--locale=C --no-sync -D %s",
			s->datadir);
	if (ret) {
		fprintf(stderr, "pgharness: initdb failed: %s\n", out);
		return ret < 0 ? ret : -EIO;
	}
	ret = write_conf(s, opts);
	if (!ret)
		ret = pg_ctl_start(s);
	if (ret)
		return ret;
	track((void **)live_servers, s, true);
	ret = netns_run(NULL, out, sizeof(out),
			"runuser -u postgres -- " PG_BIN "/createdb -h %s -p %d sluice", s->dir,
			s->port);
	if (ret) {
		fprintf(stderr, "pgharness: createdb failed: %s\n", out);
		pgh_server_destroy(s);
		return ret < 0 ? ret : -EIO;
	}
	return 0;
}

int pgh_server_stop(struct pgh_server *s, const char *mode)
{
	char out[4096];
	int ret;

	if (!s->running)
		return 0;
	ret = netns_run(NULL, out, sizeof(out),
			"runuser -u postgres -- " PG_BIN "/pg_ctl stop -w -t 60 -m %s -D %s", mode,
			s->datadir);
	if (ret) {
		fprintf(stderr, "pgharness: pg_ctl stop -m %s failed: %s\n", mode, out);
		return ret < 0 ? ret : -EIO;
	}
	s->running = false;
	return 0;
}

int pgh_server_restart(struct pgh_server *s)
{
	if (s->running)
		return 0;
	return pg_ctl_start(s);
}

void pgh_server_destroy(struct pgh_server *s)
{
	if (!s)
		return;
	if (s->running)
		pgh_server_stop(s, "immediate");
	track((void **)live_servers, s, false);
}

static int psql_run(const struct pgh_server *s, char *out, size_t outlen, const char *args)
{
	return netns_run(NULL, out, outlen,
			 "runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h %s -p %d "
			 "-d sluice %s",
			 s->dir, s->port, args);
}

int pgh_psql(const struct pgh_server *s, char *out, size_t outlen, const char *fmt, ...)
{
	char sql[3000], args[3400], *p = args;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	/* single-quote the SQL for the shell */
	p += sprintf(p, "-c '");
	for (const char *q = sql; *q && p < args + sizeof(args) - 8; q++) {
		if (*q == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *q;
		}
	}
	strcpy(p, "'");
	return psql_run(s, out, outlen, args);
}

int pgh_psql_args(const struct pgh_server *s, char *out, size_t outlen, const char *fmt, ...)
{
	char args[3400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return psql_run(s, out, outlen, args);
}

int pgh_fresh_db(const struct pgh_server *s, char *out, size_t outlen)
{
	return pgh_psql_args(s, out, outlen,
			     "-d postgres -c 'DROP DATABASE sluice WITH (FORCE)' "
			     "-c 'CREATE DATABASE sluice'");
}

long long pgh_query_ll(const struct pgh_server *s, const char *sql)
{
	PGconn *c = PQconnectdb(s->local_conninfo);
	long long v = -1;
	PGresult *res;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgharness: connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	res = PQexec(c, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		v = atoll(PQgetvalue(res, 0, 0));
	else
		fprintf(stderr, "pgharness: %s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(c);
	return v;
}

bool pgh_wait_ll(const struct pgh_server *s, const char *sql, long long want, int seconds)
{
	double t0 = clock_mono_s();
	long long got;

	for (;;) {
		got = pgh_query_ll(s, sql);
		if (got == want)
			return true;
		if (clock_mono_s() - t0 >= seconds)
			break;
		usleep(100000);
	}
	printf("%s: %lld, want %lld\n", sql, got, want);
	return false;
}

static int wait_port(int port, int timeout_ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	for (int waited = 0; waited < timeout_ms; waited += 20) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa));

		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		usleep(20000);
	}
	return -ETIMEDOUT;
}

static int write_bouncer_files(struct pgh_bouncer *b, const struct pgh_server *s, int pool)
{
	char users[300];
	FILE *f;

	snprintf(users, sizeof(users), "%s/userlist.txt", b->dir);
	f = fopen(users, "w");
	if (!f)
		return -errno;
	fprintf(f, "\"postgres\" \"\"\n");
	fclose(f);
	f = fopen(b->ini, "w");
	if (!f)
		return -errno;
	fprintf(f,
		"[databases]\nsluice = host=127.0.0.1 port=%d dbname=sluice\n* = host=127.0.0.1 "
		"port=%d\n\n[pgbouncer]\n"
		"listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
		"auth_type = trust\nauth_file = %s\npool_mode = transaction\n"
		"default_pool_size = %d\nmax_client_conn = 500\nserver_reset_query =\n"
		"server_login_retry = 1\nignore_startup_parameters = extra_float_digits,options\n"
		"logfile = %s/pgbouncer.log\npidfile = %s\n",
		s->port, s->port, b->port, users, pool > 0 ? pool : 4, b->dir, b->pidfile);
	return fclose(f) ? -errno : 0;
}

int pgh_bouncer_start(struct pgh_bouncer *b, const struct pgh_server *s, const char *basedir,
		      int pool_size)
{
	char out[4096], cmd[700];
	int ret;

	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "%s/pgbouncer", basedir);
	snprintf(b->ini, sizeof(b->ini), "%s/pgbouncer.ini", b->dir);
	snprintf(b->pidfile, sizeof(b->pidfile), "%s/pgbouncer.pid", b->dir);
	b->port = pgh_free_port();
	if (b->port < 0)
		return b->port;
	snprintf(b->conninfo, sizeof(b->conninfo),
		 "host=127.0.0.1 port=%d dbname=sluice user=postgres connect_timeout=5", b->port);
	ret = make_postgres_dir(b->dir);
	if (!ret)
		ret = write_bouncer_files(b, s, pool_size);
	if (ret)
		return ret;
	snprintf(cmd, sizeof(cmd), "runuser -u postgres -- /usr/sbin/pgbouncer -d -q %s", b->ini);
	ret = netns_run(NULL, out, sizeof(out), "%s", cmd);
	if (!ret)
		ret = wait_port(b->port, 10000);
	if (ret) {
		snprintf(cmd, sizeof(cmd), "%s/pgbouncer.log", b->dir);
		print_log_tail("pgbouncer start", cmd, out);
		return ret < 0 ? ret : -EIO;
	}
	b->running = true;
	track((void **)live_bouncers, b, true);
	return 0;
}

void pgh_bouncer_stop(struct pgh_bouncer *b)
{
	if (!b || !b->running)
		return;
	/* SIGTERM: immediate shutdown in 1.18; wait until the pid file's process is gone */
	netns_run(NULL, NULL, 0,
		  "p=$(cat %s 2>/dev/null) && kill -TERM $p && "
		  "for i in $(seq 100); do kill -0 $p 2>/dev/null || break; sleep 0.05; done",
		  b->pidfile);
	b->running = false;
	track((void **)live_bouncers, b, false);
}

/* ---- replication ---------------------------------------------------------------------- */

int pgh_standby_start(struct pgh_server *st, const struct pgh_server *primary, const char *basedir,
		      const char *name, bool sync)
{
	char dir[300], out[4096], sql[300], path[600];
	FILE *f;
	int ret;

	snprintf(dir, sizeof(dir), "%s/%s", basedir, name);
	ret = server_init(st, dir, NULL);
	if (ret)
		return ret;
	ret = netns_run(NULL, out, sizeof(out),
			"runuser -u postgres -- " PG_BIN "/pg_basebackup -h %s -p %d -U postgres "
			"-D %s -X stream -c fast --no-sync",
			primary->dir, primary->port, st->datadir);
	if (ret) {
		fprintf(stderr, "pgharness: pg_basebackup failed: %s\n", out);
		return ret < 0 ? ret : -EIO;
	}
	/* the copied postgresql.conf names the primary's port and socket: later lines win */
	ret = write_conf(st, NULL);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/postgresql.conf", st->datadir);
	f = fopen(path, "a");
	if (!f)
		return -errno;
	fprintf(f, "primary_conninfo = 'host=%s port=%d user=postgres application_name=%s'\n",
		primary->dir, primary->port, name);
	if (fclose(f))
		return -errno;
	snprintf(path, sizeof(path), "runuser -u postgres -- touch %s/standby.signal", st->datadir);
	ret = netns_run(NULL, out, sizeof(out), "%s", path);
	if (ret) {
		fprintf(stderr, "pgharness: standby.signal: %s\n", out);
		return -EIO;
	}
	ret = pg_ctl_start(st);
	if (ret)
		return ret;
	track((void **)live_servers, st, true);
	if (sync && (pgh_psql(primary, out, sizeof(out),
			      "ALTER SYSTEM SET synchronous_standby_names = '%s'", name) ||
		     pgh_psql(primary, out, sizeof(out), "SELECT pg_reload_conf()"))) {
		fprintf(stderr, "pgharness: synchronous_standby_names: %s\n", out);
		pgh_server_destroy(st);
		return -EIO;
	}
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s' AND "
		 "state = 'streaming' AND sync_state = '%s'",
		 name, sync ? "sync" : "async");
	if (!pgh_wait_ll(primary, sql, 1, 60)) {
		print_log_tail("standby streaming", st->logfile, "");
		pgh_server_destroy(st);
		return -ETIMEDOUT;
	}
	return 0;
}

int pgh_standby_detach(struct pgh_server *st, const struct pgh_server *primary)
{
	char out[1024], sql[400];
	const char *name = strrchr(st->dir, '/');

	if (pgh_psql(st, out, sizeof(out), "ALTER SYSTEM SET primary_conninfo = ''") ||
	    pgh_psql(st, out, sizeof(out), "SELECT pg_reload_conf()")) {
		fprintf(stderr, "pgharness: detach standby: %s\n", out);
		return -EIO;
	}
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s'",
		 name ? name + 1 : st->dir);
	return pgh_wait_ll(primary, sql, 0, 30) ? 0 : -ETIMEDOUT;
}

int pgh_promote(struct pgh_server *st)
{
	char out[4096];
	int ret;

	ret = netns_run(NULL, out, sizeof(out),
			"runuser -u postgres -- " PG_BIN "/pg_ctl promote -w -t 60 -D %s",
			st->datadir);
	if (ret) {
		print_log_tail("pg_ctl promote", st->logfile, out);
		return ret < 0 ? ret : -EIO;
	}
	return 0;
}

int pgh_server_kill(struct pgh_server *s)
{
	char path[400], out[1024];
	long pid = 0;
	FILE *f;
	int ret;

	if (!s->running)
		return 0;
	snprintf(path, sizeof(path), "%s/postmaster.pid", s->datadir);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		if (f)
			fclose(f);
		return -ENOENT;
	}
	fclose(f);
	/* the children by the postmaster's pid, read before it dies; all killed in one call */
	ret = netns_run(NULL, out, sizeof(out),
			"pids=\"%ld $(pgrep -P %ld | tr '\\n' ' ')\"; kill -KILL $pids; "
			"for i in $(seq 200); do alive=0; for p in $pids; do "
			"kill -0 $p 2>/dev/null && alive=1; done; [ $alive = 0 ] && exit 0; "
			"sleep 0.05; done; exit 1",
			pid, pid);
	if (ret) {
		fprintf(stderr, "pgharness: kill postmaster %ld: %s\n", pid, out);
		return -EIO;
	}
	s->running = false;
	return 0;
}
