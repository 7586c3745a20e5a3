// SPDX-License-Identifier: MIT
/* test_deploy_pgbouncer.c -- the shipped pgbouncer.ini, with a SCRAM userlist, carries sluiced
 *
 * PgBouncer 1.18 runs deploy/pgbouncer/pgbouncer.ini with only what differs per machine
 * replaced (the [databases] target, listen address and port, where the userlist, pid and log
 * files are: a daemonised PgBouncer needs the last two). userlist.txt holds the server's own
 * SCRAM verifier for role sluice, as docs/deploy.md tells the operator to build the Secret.
 * A client with the password gets through, one without or with a wrong one does not, and
 * sluiced stores events through it in transaction pooling (unnamed statements only).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "netns.h"
#include "pgharness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"

void test_deploy_pgbouncer(void)
{
	struct pgh_server pg = {0};
	struct sluiced_proc p = {0};
	char dir[400] = "", out[4096], pw[33], conninfo[300], req[1024], resp[4096];
	unsigned char rnd[16];
	int port;

	if (!test__require_root())
		return;
	if (access("/usr/sbin/pgbouncer", X_OK)) {
		test__skip("pgbouncer missing (tools/setup installs it)");
		return;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return;
	for (int i = 0; i < 16; i++)
		snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
	if (!ASSERT_OK(pgh_server_start(&pg, test__tmpdir(), NULL), "postgres"))
		goto out;
	/* role sluice owns what sluiced migrates; its password stored as SCRAM (PG 15 default) */
	if (!ASSERT_OK(
		pgh_psql(&pg, out, sizeof(out),
			 "CREATE ROLE sluice LOGIN PASSWORD '%s'; ALTER DATABASE sluice OWNER TO "
			 "sluice; ALTER SCHEMA public OWNER TO sluice",
			 pw),
		"role sluice"))
		goto out;
	snprintf(dir, sizeof(dir), "%s/bouncer", test__tmpdir());
	port = pgh_free_port();
	/* the Secret's userlist.txt, from the server's verifier */
	if (!ASSERT_OK(
		netns_run(NULL, out, sizeof(out),
			  "mkdir -p %s && psql -X -At -h 127.0.0.1 -p %d -U postgres -d sluice "
			  "-c \"SELECT '\\\"' || rolname || '\\\" \\\"' || rolpassword || '\\\"' "
			  "FROM pg_authid WHERE rolname = 'sluice'\" > %s/userlist.txt && grep -q "
			  "'^\"sluice\" \"SCRAM-SHA-256' %s/userlist.txt",
			  dir, pg.port, dir, dir),
		"userlist.txt with the SCRAM verifier")) {
		printf("%s\n", out);
		goto out;
	}
	/* the shipped file, machine-specific values replaced */
	if (!ASSERT_OK(
		netns_run(NULL, out, sizeof(out),
			  "sed -e 's|^sluice = host=.*|sluice = host=127.0.0.1 port=%d "
			  "dbname=sluice|' -e 's|^listen_addr = .*|listen_addr = 127.0.0.1|' "
			  "-e 's|^listen_port = .*|listen_port = %d|' "
			  "-e 's|^auth_file = .*|auth_file = %s/userlist.txt|' "
			  "-e 's|^logfile =.*|logfile = %s/pgbouncer.log|' "
			  "-e 's|^pidfile =.*|pidfile = %s/pgbouncer.pid|' "
			  "deploy/pgbouncer/pgbouncer.ini > %s/pgbouncer.ini && "
			  "grep -q '^pool_mode = transaction' %s/pgbouncer.ini && "
			  "chown -R postgres %s && runuser -u postgres -- /usr/sbin/pgbouncer -d "
			  "-q %s/pgbouncer.ini",
			  pg.port, port, dir, dir, dir, dir, dir, dir, dir),
		"pgbouncer runs the shipped ini")) {
		printf("%s\n", out);
		netns_run(NULL, out, sizeof(out), "tail -5 %s/pgbouncer.log", dir);
		printf("%s\n", out);
		goto out;
	}
	usleep(300 * 1000);
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d dbname=sluice user=sluice connect_timeout=5", port);
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "PGPASSWORD=%s psql -X -At '%s' -c 'SELECT 41+1'", pw, conninfo),
		  "the password gets through");
	ASSERT_HAS_STR(out, "42", "and queries");
	ASSERT_NEQ(netns_run(NULL, out, sizeof(out),
			     "PGPASSWORD=wrong psql -X -At '%s' -c 'SELECT 1' 2>&1", conninfo),
		   0, "a wrong password does not");
	ASSERT_NEQ(netns_run(NULL, out, sizeof(out),
			     "PGPASSWORD= psql -w -X -At '%s' -c 'SELECT 1' 2>&1", conninfo),
		   0, "nor no password");

	/* sluiced through it, the password from the environment as the Secret gives it */
	setenv("PGPASSWORD", pw, 1);
	{
		const char *args[] = {"--journal-dir", "@journal", "--pg", conninfo, NULL};

		if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "sluiced through PgBouncer"))
			goto out;
	}
	for (int i = 0; i < 6; i++) {
		char body[128];

		snprintf(body, sizeof(body),
			 "{\"type\":\"lead.created\",\"idempotency_key\":\"b%d\",\"payload\":{}}",
			 i);
		http_event_request(req, sizeof(req), "test", body);
		ASSERT_EQ(http_once(p.port, req, resp, sizeof(resp)), 202, "accepted");
	}
	ASSERT_TRUE(pgh_wait_ll(&pg, "SELECT count(*) FROM events", 6, 20),
		    "stored through PgBouncer in transaction pooling");
	ASSERT_EQ(sluiced_stop(&p, 10000), 0, "clean exit");
out:
	unsetenv("PGPASSWORD");
	if (p.pid > 0)
		sluiced_stop(&p, 2000);
	if (*dir)
		netns_run(NULL, NULL, 0, "[ -f %s/pgbouncer.pid ] && kill $(cat %s/pgbouncer.pid)",
			  dir, dir);
	pgh_server_destroy(&pg);
}
