// SPDX-License-Identifier: MIT
/* test_deploy_redis.c -- sluiced authenticates to a Redis running the shipped redis.conf
 *
 * redis-server runs deploy/redis/redis.conf (only port, directory and ACL file overridden)
 * in one network namespace; sluiced runs in another, as a pod would, so protected mode and
 * the ACL are what a cluster sees. Without credentials Redis refuses; with the ACL user from
 * a password file (the mounted Secret) or $SLUICE_REDIS_PASSWORD, sluiced's duplicate fast
 * path works under the ACL the file's comment recommends; with a wrong password sluiced
 * logs "redis: AUTH refused" (never the password) and goes on without Redis.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "netns.h"
#include "pgharness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define ACL_LINE                                                                                   \
	"user sluice on >%s ~sluice:* resetchannels -@all +@read +@write +@connection "            \
	"-@dangerous +eval +evalsha +time\n"

struct redis_env {
	struct netns_pair np;
	pid_t redis;
	int port;
	char dir[400], password[40], redis_addr[64];
};

static int redis_env_start(struct redis_env *r)
{
	char acl[500], log[500], portarg[16], aclarg[520], dirarg[420], out[512];
	unsigned char rnd[16];
	FILE *f;

	if (access("/usr/bin/redis-server", X_OK)) {
		test__skip("redis-server missing (tools/setup installs it)");
		return -1;
	}
	if (netns_pair_create(&r->np))
		return -1;
	snprintf(r->dir, sizeof(r->dir), "%s/redis", test__tmpdir());
	mkdir(r->dir, 0700);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -1;
	for (int i = 0; i < 16; i++)
		snprintf(r->password + 2 * i, 3, "%02x", rnd[i]);
	snprintf(acl, sizeof(acl), "%s/users.acl", r->dir);
	f = fopen(acl, "w");
	if (!f)
		return -1;
	fprintf(f, "user default off\n" ACL_LINE, r->password);
	fclose(f);
	r->port = pgh_free_port();
	snprintf(r->redis_addr, sizeof(r->redis_addr), "%s:%d", r->np.ip4_b, r->port);
	snprintf(log, sizeof(log), "%s/redis.log", r->dir);
	snprintf(portarg, sizeof(portarg), "%d", r->port);
	snprintf(aclarg, sizeof(aclarg), "%s", acl);
	snprintf(dirarg, sizeof(dirarg), "%s", r->dir);
	fflush(NULL);
	r->redis = fork();
	if (!r->redis) {
		char *argv[] = {"/usr/bin/redis-server",
				"deploy/redis/redis.conf",
				"--port",
				portarg,
				"--dir",
				dirarg,
				"--aclfile",
				aclarg,
				"--daemonize",
				"no",
				NULL};

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
		dup2(1, 2);
		if (netns_enter(r->np.ns_b) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		netns_run(r->np.ns_a, out, sizeof(out), "redis-cli -h %s -p %d ping 2>&1",
			  r->np.ip4_b, r->port);
		if (strstr(out, "NOAUTH") || strstr(out, "PONG"))
			return 0;
		usleep(50 * 1000);
	}
	netns_run(NULL, out, sizeof(out), "tail -5 %s", log);
	printf("redis-server did not start: %s\n", out);
	return -1;
}

static void redis_env_stop(struct redis_env *r)
{
	if (r->redis > 0) {
		kill(r->redis, SIGTERM);
		waitpid(r->redis, NULL, 0);
	}
	netns_pair_destroy(&r->np);
}

/* POST an event from ns_a; the status, body in out. */
static int post(struct redis_env *r, const struct sluiced_proc *p, const char *key, char *out,
		size_t len)
{
	char code[8];

	if (netns_run(r->np.ns_a, out, len,
		      "curl -s -w '\\n%%{http_code}' -H 'Content-Type: application/json' "
		      "-H 'Authorization: Bearer test' -d '{\"type\":\"t\",\"idempotency_key\":"
		      "\"%s\",\"payload\":{}}' http://127.0.0.1:%d/v1/events",
		      key, p->port))
		return -1;
	snprintf(code, sizeof(code), "%s", strrchr(out, '\n') ? strrchr(out, '\n') + 1 : "");
	return atoi(code);
}

static int start_sluiced(struct redis_env *r, struct sluiced_proc *p, const char *pwfile)
{
	const char *args[] = {"--threads",    "1",	 "--journal-dir",
			      "@journal",     "--redis", r->redis_addr,
			      "--redis-user", "sluice",	 pwfile ? "--redis-password-file" : NULL,
			      pwfile,	      NULL};

	return sluiced_start_ns(p, r->np.ns_a, "127.0.0.1:0", TENANTS, args);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

void test_deploy_redis(void)
{
	struct redis_env r = {0};
	struct sluiced_proc p = {0};
	char out[4096], pw[500], line[64];
	char *log;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(redis_env_start(&r), "redis-server on the shipped redis.conf"))
		goto out;
	/* a pod without credentials is refused */
	netns_run(r.np.ns_a, out, sizeof(out), "redis-cli -h %s -p %d set sluice:x 1 2>&1",
		  r.np.ip4_b, r.port);
	ASSERT_HAS_STR(out, "NOAUTH", "no credentials, no access");

	/* the password file, as the Secret is mounted */
	snprintf(pw, sizeof(pw), "%s/password", r.dir);
	snprintf(line, sizeof(line), "%s\n", r.password);
	write_file(pw, line);
	if (ASSERT_OK(start_sluiced(&r, &p, pw), "sluiced with --redis-password-file")) {
		ASSERT_EQ(post(&r, &p, "k1", out, sizeof(out)), 202, "first");
		ASSERT_EQ(post(&r, &p, "k1", out, sizeof(out)), 200, "duplicate caught by Redis");
		ASSERT_HAS_STR(out, "\"duplicate\":true", "answered from the fast path");
		ASSERT_TRUE(sluiced_log_wait(&p, "auth=sluice", 100),
			    "logs the user, not the secret");
		log = sluiced_log(&p);
		ASSERT_FALSE(log && strstr(log, r.password), "password never logged");
		ASSERT_FALSE(log && strstr(log, "AUTH refused"), "accepted");
		free(log);
		ASSERT_EQ(sluiced_stop(&p, 5000), 0, "clean exit");
	}

	/* the environment instead of a file */
	setenv("SLUICE_REDIS_PASSWORD", r.password, 1);
	if (ASSERT_OK(start_sluiced(&r, &p, NULL), "sluiced with $SLUICE_REDIS_PASSWORD")) {
		ASSERT_EQ(post(&r, &p, "k2", out, sizeof(out)), 202, "first");
		ASSERT_EQ(post(&r, &p, "k2", out, sizeof(out)), 200, "duplicate caught by Redis");
		ASSERT_EQ(sluiced_stop(&p, 5000), 0, "clean exit");
	}
	unsetenv("SLUICE_REDIS_PASSWORD");

	/* the cluster connection (leases, the cluster's overload decision) under the same ACL:
	 * its scripts need EVAL and TIME, which +@read +@write do not grant */
	write_file(pw, line);
	{
		const char *args[] = {"--threads",
				      "1",
				      "--journal-dir",
				      "@journal",
				      "--node",
				      "n1",
				      "--cluster-redis",
				      r.redis_addr,
				      "--cluster-redis-user",
				      "sluice",
				      "--cluster-redis-password-file",
				      pw,
				      NULL};

		if (ASSERT_OK(sluiced_start_ns(&p, r.np.ns_a, "127.0.0.1:0", TENANTS, args),
			      "sluiced with --cluster-redis")) {
			ASSERT_TRUE(sluiced_log_wait(&p, "cluster: node registered", 3000),
				    "node registered under the shipped ACL");
			usleep(1500 * 1000); /* six lease periods */
			log = sluiced_log(&p);
			ASSERT_FALSE(log &&
					 (strstr(log, "NOPERM") || strstr(log, "unexpected reply")),
				     "every cluster script allowed");
			if (log && (strstr(log, "NOPERM") || strstr(log, "unexpected reply")))
				printf("%s\n", log);
			free(log);
			netns_run(r.np.ns_a, out, sizeof(out),
				  "redis-cli -h %s -p %d --user sluice --pass %s --no-auth-warning "
				  "--scan --pattern 'sluice:cluster:*' | head -3",
				  r.np.ip4_b, r.port, r.password);
			ASSERT_HAS_STR(out, "sluice:cluster:", "the cluster's keys are in Redis");
			ASSERT_EQ(sluiced_stop(&p, 5000), 0, "clean exit");
		}
	}

	/* a wrong password: said once, and intake goes on without Redis */
	write_file(pw, "not-the-password\n");
	if (ASSERT_OK(start_sluiced(&r, &p, pw), "sluiced with a wrong password")) {
		ASSERT_EQ(post(&r, &p, "k3", out, sizeof(out)), 202, "accepted without Redis");
		ASSERT_TRUE(sluiced_log_wait(&p, "redis: AUTH refused", 2000), "says why");
		log = sluiced_log(&p);
		ASSERT_FALSE(log && strstr(log, "not-the-password"), "password never logged");
		free(log);
		ASSERT_EQ(sluiced_stop(&p, 5000), 0, "clean exit");
	}

	/* an unreadable password file is a configuration error: exit 2, not a restart loop */
	{
		char bin[512], missing[520];

		snprintf(bin, sizeof(bin), "%s/sluiced", test__outdir());
		snprintf(missing, sizeof(missing), "%s/none", r.dir);
		ASSERT_EQ(netns_run(NULL, out, sizeof(out),
				    "timeout 10 %s --listen 127.0.0.1:0 --journal-dir %s/j --redis "
				    "127.0.0.1:1 --redis-password-file %s 2>&1",
				    bin, r.dir, missing),
			  2, "exit 2");
		ASSERT_HAS_STR(out, "--redis-password-file", "names the option");
		ASSERT_HAS_STR(out, missing, "and the file");
	}
out:
	if (p.pid > 0)
		sluiced_stop(&p, 2000);
	redis_env_stop(&r);
}
