/* SPDX-License-Identifier: MIT */
/* probe.h -- the database reachability check behind /readyz, on a thread of its own
 *
 * sluiced used to PQping the database once a second on its signal thread. PQping blocks up
 * to connect_timeout per host, so with a silent host (packets dropped) SIGTERM and SIGHUP
 * waited that long. The probe runs the same check on its own thread, nonblocking
 * (PQconnectStartParams/PQconnectPoll) with the per-host deadline of hosts.h, and waits on a
 * stop eventfd next to the socket: pg_probe_stop() ends a hung attempt at once.
 *
 * The answer is PQping's: a host is reachable when the connection succeeds or the server
 * refuses it itself (a password asked for, a SQLSTATE other than 57P03 "cannot connect
 * now": the server is up, it just does not like our user, password or database), and
 * unreachable when nothing answers, the connection is refused or times out, or the server
 * says 57P03 (starting up, shutting down). A read-only server counts as up, as it does for
 * PQping (target_session_attrs is set to "any" for the probe). The hosts of a multi-host
 * conninfo are tried in turn, the last one that answered first, each within the per-host
 * connect_timeout; the database is reachable when one of them is.
 *
 * Host names are resolved by libpq with a blocking getaddrinfo(): a hung DNS server can
 * delay pg_probe_stop() by the resolver's timeout (hostaddr= avoids the lookup).
 */
#ifndef SLUICE_PG_PROBE_H
#define SLUICE_PG_PROBE_H

#include <stddef.h>

struct pg_probe;

struct pg_probe_cfg {
	const char *conninfo; /* copied (split per host, hosts.h) */
	int period_ms;	      /* from the end of one check to the start of the next */
	int *state;	      /* 1 reachable, 0 unreachable: __atomic release stores, 0 at start */
};

/* Set *cfg->state to 0 and start the probe thread; its first check starts at once. NULL
 * with errno set and the reason in err (-EINVAL: a conninfo libpq cannot parse). */
struct pg_probe *pg_probe_start(const struct pg_probe_cfg *cfg, char *err, size_t errlen);
/* Stop the thread (abandoning an attempt in progress) and join it; NULL-safe. */
void pg_probe_stop(struct pg_probe *p);

#endif /* SLUICE_PG_PROBE_H */
