/* SPDX-License-Identifier: MIT */
/* hosts.h -- the PostgreSQL writer's database hosts, one conninfo per host
 *
 * A libpq conninfo may name several hosts (`host=a,b port=5432,5433`, or a URI
 * `postgresql://a:5432,b:5433/db`) with `target_session_attrs=read-write`, so that a client
 * finds the primary after a failover. libpq walks that list itself only in a blocking
 * connect: in the nonblocking one the writer uses (PQconnectStart/PQconnectPoll), libpq
 * applies no connect_timeout, so one host whose packets are dropped holds the attempt until
 * the kernel gives up on TCP (minutes) and the hosts behind it are never tried.
 *
 * So the writer splits the list: pg_hosts_parse() turns the conninfo into one conninfo per
 * host (every other option kept, target_session_attrs included: libpq still refuses a
 * read-only server on a single host), and the writer gives each attempt the per-host
 * connect_timeout, moving to the next host on failure, on a timeout, and when a session
 * turns read-only (SQLSTATE 25006).
 */
#ifndef SLUICE_PG_HOSTS_H
#define SLUICE_PG_HOSTS_H

#include <stddef.h>
#include <stdint.h>

#define PG_HOSTS_MAX 16
/* Per-host connection attempt limit when the conninfo sets no connect_timeout. */
#define PG_HOSTS_DEFAULT_TIMEOUT_MS 10000

struct pg_hosts {
	int n;			      /* 1..PG_HOSTS_MAX */
	char *conninfo[PG_HOSTS_MAX]; /* per host: the conninfo naming that host only */
	char label[PG_HOSTS_MAX][80]; /* "host:port" for logs */
	int connect_timeout_ms;	      /* per attempt, from connect_timeout (libpq's minimum 2 s) */
	int preferred;		      /* the host of the last successful connection */
};

/* Split conninfo (key=value or URI) into h. 0, or -EINVAL with the reason in err (a
 * conninfo libpq cannot parse, more than PG_HOSTS_MAX hosts, a port or hostaddr list whose
 * length matches neither 1 nor the host count), or -ENOMEM. */
int pg_hosts_parse(struct pg_hosts *h, const char *conninfo, char *err, size_t errlen);
/* Free the conninfo strings; NULL-safe, idempotent. */
void pg_hosts_free(struct pg_hosts *h);

#endif /* SLUICE_PG_HOSTS_H */
