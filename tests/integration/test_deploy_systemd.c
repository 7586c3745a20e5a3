// SPDX-License-Identifier: MIT
/* test_deploy_systemd.c -- the systemd unit: hardened, Type=notify that means it, installable
 *
 * Static (no systemd runs this machine's services here): systemd-analyze verifies the unit
 * and rates its exposure offline; a copy stripped of its sandbox must rate worse (the
 * negative control); the capabilities are the three test_deploy_caps proves; the syscall
 * filter keeps io_uring and bpf; the pin directory on the root-only bpffs is bound where the
 * service user can reach it and sluiced is told to pin there (test_deploy_caps runs sluiced
 * that way and without the bind). Live: sluiced sends READY=1 to $NOTIFY_SOCKET (path and
 * abstract) only after its journal is recovered and it listens, and STOPPING=1 on SIGTERM;
 * a configuration error exits 2 (RestartPreventExitStatus=2); `make install DESTDIR=...`
 * installs the unit, its sysusers entry and example files the installed sluiced accepts.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "netns.h"
#include "test_progs.h"

#define UNIT	"deploy/systemd/sluiced.service"
#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"

/* "Overall exposure level for X: 1.7 OK" -> 1.7 and label; -1 when absent. */
static double exposure(const char *out, char *label, size_t len)
{
	const char *p = strstr(out, "Overall exposure level for ");
	double v;

	if (!p || !(p = strstr(p, ": ")) || sscanf(p + 2, "%lf", &v) != 1)
		return -1;
	p = strchr(p + 2, ' ');
	snprintf(label, len, "%.*s", p ? (int)strcspn(p + 1, " \n") : 0, p ? p + 1 : "");
	return v;
}

static bool systemd_analyze(void)
{
	if (access("/usr/bin/systemd-analyze", X_OK)) {
		test__skip("systemd-analyze missing (package systemd)");
		return false;
	}
	return true;
}

static void subtest_security(void)
{
	static char out[65536];
	const char *t = test__tmpdir();
	char label[32];
	double v;

	if (!systemd_analyze())
		return;
	if (!ASSERT_OK(netns_run(NULL, out, sizeof(out),
				 "systemd-analyze security --offline=yes " UNIT " 2>&1"),
		       "systemd-analyze security --offline"))
		printf("%s\n", out);
	v = exposure(out, label, sizeof(label));
	printf("exposure: %.1f %s\n", v, label);
	ASSERT_GE(v, 0, "exposure figure printed");
	ASSERT_LT(v, 2.0, "exposure below 2.0");
	ASSERT_TRUE(!strcmp(label, "OK") || !strcmp(label, "SAFE") || !strcmp(label, "PERFECT"),
		    "rated OK or better");
	/* negative control: without the sandbox the same unit rates worse */
	ASSERT_OK(
	    netns_run(NULL, out, sizeof(out),
		      "grep -vE '^(Protect|Private|Restrict|NoNewPrivileges|SystemCall|"
		      "CapabilityBoundingSet|MemoryDeny|LockPersonality|UMask|User|Group)' " UNIT
		      " > %s/sluiced.service && systemd-analyze security --offline=yes "
		      "%s/sluiced.service 2>&1",
		      t, t),
	    "stripped copy rated");
	ASSERT_GT(exposure(out, label, sizeof(label)), 5.0, "stripped copy exposed");

	/* verify: the syntax and every directive known (ExecStart pointed at the build) */
	ASSERT_OK(
	    netns_run(NULL, out, sizeof(out),
		      "mkdir -p %s/v && sed 's|/usr/local/bin/sluiced|%s/sluiced|' " UNIT
		      " > %s/v/sluiced.service && systemd-analyze verify %s/v/sluiced.service "
		      "2>&1",
		      t, test__outdir(), t, t),
	    "systemd-analyze verify");
	ASSERT_FALSE(strstr(out, "Unknown") || strstr(out, "Failed to parse") ||
			 strstr(out, "gnoring") || strstr(out, "not executable"),
		     "verifies clean");
	if (strstr(out, "sluiced.service"))
		printf("verify said: %s\n", out);
}

static char *unit_value(const char *unit, const char *key, char *out, size_t len)
{
	char needle[64];
	const char *p;

	snprintf(needle, sizeof(needle), "\n%s=", key);
	p = strstr(unit, needle);
	out[0] = 0;
	if (p)
		snprintf(out, len, "%.*s", (int)strcspn(p + strlen(needle), "\n"),
			 p + strlen(needle));
	return out;
}

/* The shipped unit file into buf (NUL-terminated); false (test failed) when unreadable. */
static bool read_unit(char *buf, size_t cap)
{
	FILE *f = fopen(UNIT, "r");
	size_t n;

	if (!f) {
		ASSERT_OK_PTR(f, UNIT);
		return false;
	}
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
	return true;
}

static void subtest_static(void)
{
	static char unit[16384], groups[16384];
	char v[512];

	if (!read_unit(unit, sizeof(unit)))
		return;
	ASSERT_STREQ(unit_value(unit, "Type", v, sizeof(v)), "notify", "Type=notify");
	ASSERT_STREQ(unit_value(unit, "User", v, sizeof(v)), "sluice", "dedicated user");
	ASSERT_STREQ(unit_value(unit, "AmbientCapabilities", v, sizeof(v)),
		     "CAP_BPF CAP_NET_ADMIN CAP_PERFMON", "ambient = the proven set");
	ASSERT_STREQ(unit_value(unit, "CapabilityBoundingSet", v, sizeof(v)),
		     "CAP_BPF CAP_NET_ADMIN CAP_PERFMON", "bounding = the proven set");
	ASSERT_STREQ(unit_value(unit, "NoNewPrivileges", v, sizeof(v)), "yes", "NoNewPrivileges");
	ASSERT_STREQ(unit_value(unit, "ProtectSystem", v, sizeof(v)), "strict", "ProtectSystem");
	ASSERT_STREQ(unit_value(unit, "ProtectHome", v, sizeof(v)), "yes", "ProtectHome");
	ASSERT_STREQ(unit_value(unit, "PrivateTmp", v, sizeof(v)), "yes", "PrivateTmp");
	ASSERT_STREQ(unit_value(unit, "RestartPreventExitStatus", v, sizeof(v)), "2",
		     "no restart loop on a configuration error");
	ASSERT_HAS_STR(unit_value(unit, "RestrictAddressFamilies", v, sizeof(v)), "AF_NETLINK",
		       "netlink for XDP attach");
	unit_value(unit, "SystemCallFilter", v, sizeof(v));
	ASSERT_HAS_STR(v, "io_uring_setup", "io_uring allowed");
	ASSERT_HAS_STR(v, "io_uring_enter", "io_uring allowed");
	ASSERT_HAS_STR(v, "bpf", "bpf allowed");
	/* the deny list after it must not take them away again */
	if (!systemd_analyze())
		return;
	ASSERT_OK(
	    netns_run(NULL, groups, sizeof(groups), "systemd-analyze syscall-filter @resources"),
	    "group listed");
	ASSERT_FALSE(strstr(groups, " bpf\n") || strstr(groups, "io_uring"),
		     "~@resources keeps bpf and io_uring");
	ASSERT_HAS_STR(groups, "setrlimit", "(the group was read)");
}

/* /sys/fs/bpf is root's (mode 0700): the service user reaches its pin directory through
 * BindPaths=, whose source is the default pin dir root's sluicectl uses, made for the user
 * before the sandbox, and whose destination is in its RuntimeDirectory and is the --pin-dir. */
static void subtest_pin_dir(void)
{
	static char unit[16384];
	char bind[512], v[512], want[600];
	const char *colon, *p;

	if (!read_unit(unit, sizeof(unit)))
		return;
	unit_value(unit, "BindPaths", bind, sizeof(bind));
	colon = strchr(bind, ':');
	if (!ASSERT_OK_PTR(colon, "BindPaths=SRC:DST"))
		return;
	ASSERT_TRUE(!strncmp(bind, "/sys/fs/bpf/sluice:", 19),
		    "source: the default pin dir (sluicectl, bpftool as root)");
	ASSERT_FALSE(strchr(colon + 1, ':') || strchr(bind, ' '), "one bind, no options");
	unit_value(unit, "ExecStartPre", v, sizeof(v));
	snprintf(want, sizeof(want), "-o sluice -g sluice -m 0700 %.*s", (int)(colon - bind), bind);
	ASSERT_TRUE(v[0] == '+' && strstr(v, " -d ") && strstr(v, want),
		    "the source is made for the user, as root, before the sandbox");
	snprintf(want, sizeof(want), "/run/%s/",
		 unit_value(unit, "RuntimeDirectory", v, sizeof(v)));
	ASSERT_TRUE(v[0] && !strncmp(colon + 1, want, strlen(want)),
		    "destination in the RuntimeDirectory");
	ASSERT_STREQ(unit_value(unit, "RuntimeDirectoryMode", v, sizeof(v)), "0700",
		     "RuntimeDirectory for the user only");
	snprintf(want, sizeof(want), " --pin-dir=%s", colon + 1);
	p = strstr(unit_value(unit, "ExecStart", v, sizeof(v)), want);
	ASSERT_TRUE(p && (!p[strlen(want)] || p[strlen(want)] == ' '),
		    "sluiced pins at the destination");
	ASSERT_FALSE(strstr(unit, "\nReadWritePaths=/sys/fs/bpf"),
		     "no ReadWritePaths on bpffs (the user cannot reach it there)");
}

/* A datagram socket at path (or abstract when path starts with '@'). */
static int notify_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = 0;
	if (fd < 0 ||
	    bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'))))
		return -errno;
	return fd;
}

static int recv_state(int fd, char *buf, size_t len, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	n = recv(fd, buf, len - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static void notify_run(const char *sock)
{
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", NULL};
	struct sluiced_proc p = {0};
	char state[512];
	char *log = NULL, *ready;
	int fd = notify_socket(sock);

	if (!ASSERT_GE(fd, 0, "notify socket"))
		return;
	setenv("NOTIFY_SOCKET", sock, 1);
	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		goto out;
	if (!ASSERT_OK(recv_state(fd, state, sizeof(state), 5000), "a notification"))
		goto out;
	ASSERT_HAS_STR(state, "READY=1", "READY=1");
	ASSERT_HAS_STR(state, "STATUS=listening on port", "with a status");
	log = sluiced_log(&p);
	ready = log ? strstr(log, "sluiced: listening") : NULL;
	ASSERT_TRUE(ready && strstr(log, "journal: recovered") < ready,
		    "sent after recovery and listening");
	free(log);
	kill(p.pid, SIGTERM);
	if (ASSERT_OK(recv_state(fd, state, sizeof(state), 5000), "on SIGTERM"))
		ASSERT_HAS_STR(state, "STOPPING=1", "STOPPING=1");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "clean exit");
out:
	unsetenv("NOTIFY_SOCKET");
	if (p.pid > 0)
		sluiced_stop(&p, 2000);
	close(fd);
}

static void subtest_notify(void)
{
	char path[300], abstract[64];

	snprintf(path, sizeof(path), "%s/notify.sock", test__tmpdir());
	notify_run(path);
	snprintf(abstract, sizeof(abstract), "@sluice-test-notify-%d", getpid());
	notify_run(abstract);
	/* not under systemd: nothing to send, nothing breaks (every other test runs so) */
}

/* make install DESTDIR=...: the files, the unit's paths, and example settings the installed
 * sluiced accepts (paths it cannot use on a test machine overridden by flags). */
static void subtest_install(void)
{
	static char out[16384];
	const char *t = test__tmpdir();
	char d[300];
	static const char *const files[] = {"/usr/local/bin/sluiced",
					    "/usr/local/bin/sluicectl",
					    "/usr/local/lib/sluice/admission.bpf.o",
					    "/lib/systemd/system/sluiced.service",
					    "/usr/lib/sysusers.d/sluice.conf",
					    "/etc/sluice/sluiced.conf",
					    "/etc/sluice/tenants.ini",
					    "/etc/sluice/routes.ini",
					    "/usr/local/share/doc/sluice/deploy.md",
					    "/usr/local/share/doc/sluice/runbook.md"};

	snprintf(d, sizeof(d), "%s/root", t);
	if (!ASSERT_OK(netns_run(NULL, out, sizeof(out),
				 "make -s install DESTDIR=%s OUTPUT=%s 2>&1", d, test__outdir()),
		       "make install")) {
		printf("%s\n", out);
		return;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[400];

		snprintf(path, sizeof(path), "%s%s", d, files[i]);
		ASSERT_OK(access(path, R_OK), files[i]);
	}
	ASSERT_OK(netns_run(NULL, out, sizeof(out),
			    "grep -x 'ExecStart=/usr/local/bin/sluiced --config=/etc/sluice/"
			    "sluiced.conf --pin-dir=/run/sluice/bpf' "
			    "%s/lib/systemd/system/sluiced.service",
			    d),
		  "the unit runs the installed binary on the installed config");
	/* the example config parses: every key known; it runs (timeout = it was serving) */
	ASSERT_EQ(netns_run(NULL, out, sizeof(out),
			    "timeout -s TERM 2 %s/usr/local/bin/sluiced --config "
			    "%s/etc/sluice/sluiced.conf --listen 127.0.0.1:0 --journal-dir %s/j "
			    "--tenants %s/etc/sluice/tenants.ini --routes %s/etc/sluice/routes.ini "
			    "--pg '' --redis '' 2>&1",
			    d, d, d, d, d),
		  124, "installed sluiced runs on the installed example config");
	ASSERT_HAS_STR(out, "sluiced: listening", "and listened");
	/* a key it does not know is a configuration error: exit 2, systemd will not loop */
	ASSERT_EQ(netns_run(NULL, out, sizeof(out),
			    "echo 'no-such-key = 1' >> %s/etc/sluice/sluiced.conf && "
			    "%s/usr/local/bin/sluiced --config %s/etc/sluice/sluiced.conf 2>&1",
			    d, d, d),
		  2, "exit 2 on a bad config");
	ASSERT_HAS_STR(out, "no-such-key", "names the key");
	/* reinstalling keeps the operator's file */
	netns_run(NULL, out, sizeof(out), "make -s install DESTDIR=%s OUTPUT=%s 2>&1", d,
		  test__outdir());
	ASSERT_OK(
	    netns_run(NULL, out, sizeof(out), "grep -q no-such-key %s/etc/sluice/sluiced.conf", d),
	    "an installed config is never overwritten");
}

void test_deploy_systemd(void)
{
	if (test__start_subtest("security_offline"))
		subtest_security();
	if (test__start_subtest("unit_static"))
		subtest_static();
	if (test__start_subtest("pin_dir_bind"))
		subtest_pin_dir();
	if (test__start_subtest("sd_notify"))
		subtest_notify();
	if (test__start_subtest("make_install"))
		subtest_install();
}
