// SPDX-License-Identifier: MIT
/* test_deploy_seccomp.c -- sluiced runs under the shipped Localhost seccomp profile, and needs it
 *
 * The profile (deploy/k8s/base/seccomp/sluiced.json, generated from the runtimes' default) is
 * applied the way a container runtime does: its OCI JSON turned into a libseccomp filter
 * (default action, rules with argument conditions, rules included or excluded by the
 * container's capabilities and architecture), loaded in a child that then drops to the
 * DaemonSet's three capabilities and execs sluiced on a veth in a private namespace.
 * With the profile sluiced attaches XDP and answers 202. The profile without io_uring
 * (what containerd 2.0 / Docker 25 RuntimeDefault amount to) makes sluiced exit 2 saying why
 * (it used to log one line and go on listening with no ring to answer); without
 * bpf, XDP is refused and sluiced falls back to userspace limits: both additions are needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "netns.h"
#include "test_progs.h"

#define PROFILE "deploy/k8s/base/seccomp/sluiced.json"
#define CAPS	"+bpf,+net_admin,+perfmon"

/* The container's capabilities, as the OCI profile's includes/excludes name them. */
static const char *const container_caps[] = {"CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"};

static bool has_any(json_t *list, const char *const *set, size_t n)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i,
			   v) for (size_t k = 0; k < n;
				   k++) if (json_is_string(v) &&
					    !strcmp(json_string_value(v), set[k])) return true;
	return false;
}

/* Does this rule apply to an amd64 container with container_caps on this kernel? */
static bool applies(json_t *rule)
{
	static const char *const arch[] = {"amd64"};
	json_t *inc = json_object_get(rule, "includes"), *exc = json_object_get(rule, "excludes");
	const size_t ncaps = sizeof(container_caps) / sizeof(container_caps[0]);
	const char *min = json_string_value(json_object_get(inc, "minKernel"));
	struct utsname u;

	if (json_array_size(json_object_get(inc, "caps")) &&
	    !has_any(json_object_get(inc, "caps"), container_caps, ncaps))
		return false;
	if (json_array_size(json_object_get(inc, "arches")) &&
	    !has_any(json_object_get(inc, "arches"), arch, 1))
		return false;
	if (has_any(json_object_get(exc, "caps"), container_caps, ncaps) ||
	    has_any(json_object_get(exc, "arches"), arch, 1))
		return false;
	if (min && !uname(&u) && strverscmp(u.release, min) < 0)
		return false;
	return true;
}

static uint32_t action(json_t *rule, const char *key, const char *errkey, bool *ok)
{
	const char *a = json_string_value(json_object_get(rule, key));
	json_t *e = json_object_get(rule, errkey);

	*ok = true;
	if (a && !strcmp(a, "SCMP_ACT_ALLOW"))
		return SCMP_ACT_ALLOW;
	if (a && !strcmp(a, "SCMP_ACT_ERRNO"))
		return SCMP_ACT_ERRNO(json_is_integer(e) ? (uint16_t)json_integer_value(e) : EPERM);
	*ok = false;
	return 0;
}

static enum scmp_compare cmp_op(const char *op)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
		   {"SCMP_CMP_LT", SCMP_CMP_LT},
		   {"SCMP_CMP_LE", SCMP_CMP_LE},
		   {"SCMP_CMP_EQ", SCMP_CMP_EQ},
		   {"SCMP_CMP_GE", SCMP_CMP_GE},
		   {"SCMP_CMP_GT", SCMP_CMP_GT},
		   {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};

	for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(op, ops[i].name))
			return ops[i].op;
	return _SCMP_CMP_MIN;
}

/* Build the filter of an OCI profile, leaving out the syscalls named in drop (NULL-ended)
 * from every rule; returns NULL with a message on anything it cannot express. */
static scmp_filter_ctx build_filter(json_t *prof, const char *const *drop)
{
	bool ok;
	uint32_t def = action(prof, "defaultAction", "defaultErrnoRet", &ok);
	scmp_filter_ctx ctx = ok ? seccomp_init(def) : NULL;
	json_t *rule, *name;
	size_t i, j;

	if (!ctx)
		return NULL;
	json_array_foreach(json_object_get(prof, "syscalls"), i, rule)
	{
		uint32_t act = action(rule, "action", "errnoRet", &ok);
		struct scmp_arg_cmp args[6];
		json_t *arg;
		size_t k, nargs = 0;

		if (!ok) {
			printf("rule %zu: action %s not handled\n", i,
			       json_string_value(json_object_get(rule, "action")));
			goto fail;
		}
		if (!applies(rule) || act == def)
			continue;
		json_array_foreach(json_object_get(rule, "args"), k, arg)
		{
			if (nargs == 6)
				goto fail;
			args[nargs++] = (struct scmp_arg_cmp){
			    .arg = (unsigned)json_integer_value(json_object_get(arg, "index")),
			    .op = cmp_op(json_string_value(json_object_get(arg, "op"))),
			    .datum_a =
				(scmp_datum_t)json_integer_value(json_object_get(arg, "value")),
			    .datum_b =
				(scmp_datum_t)json_integer_value(json_object_get(arg, "valueTwo"))};
		}
		json_array_foreach(json_object_get(rule, "names"), j, name)
		{
			const char *n = json_string_value(name);
			bool dropped = false;
			int nr = seccomp_syscall_resolve_name(n);

			for (const char *const *d = drop; d && *d; d++)
				dropped |= !strcmp(*d, n);
			if (dropped || nr == __NR_SCMP_ERROR)
				continue; /* unknown to this libseccomp: the runtimes skip it too */
			if (seccomp_rule_add_array(ctx, act, nr, (unsigned)nargs, args) < 0) {
				printf("rule %zu: %s refused by libseccomp\n", i, n);
				goto fail;
			}
		}
	}
	return ctx;
fail:
	seccomp_release(ctx);
	return NULL;
}

struct run {
	struct netns_pair np;
	char pin[128], dir[400], log[500];
	pid_t pid;
};

/* Fork: filter from prof (minus drop), then setpriv to the three capabilities and exec
 * sluiced on if_b with the journal; returns its pid or -1. */
static pid_t start_under(struct run *r, json_t *prof, const char *const *drop)
{
	char bin[512], tenants[520], iface[64], journal[460];
	scmp_filter_ctx ctx;
	pid_t pid;
	FILE *f;

	snprintf(bin, sizeof(bin), "%s/sluiced", test__outdir());
	snprintf(tenants, sizeof(tenants), "%s/tenants.ini", r->dir);
	snprintf(iface, sizeof(iface), "addr:%s", r->np.ip4_b);
	snprintf(journal, sizeof(journal), "%s/journal", r->dir);
	f = fopen(tenants, "w");
	if (!f)
		return -1;
	fputs("[acme]\nkey = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
	      f);
	fclose(f);
	fflush(NULL);
	pid = fork();
	if (pid)
		return pid;
	dup2(open(r->log, O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
	dup2(1, 2);
	if (netns_enter(r->np.ns_b) < 0)
		_exit(126);
	ctx = build_filter(prof, drop);
	if (!ctx || seccomp_load(ctx) < 0)
		_exit(125);
	execl("/usr/bin/setpriv", "setpriv", "--no-new-privs", "--inh-caps=-all," CAPS,
	      "--bounding-set=-all," CAPS, "--", bin, "--listen", "127.0.0.1:18080", "--threads",
	      "1", "--tenants", tenants, "--iface", iface, "--pin-dir", r->pin, "--journal-dir",
	      journal, (char *)NULL);
	_exit(127);
}

/* Wait until the log has needle (true) or the process ended / 5 s passed (false). */
static bool wait_log(struct run *r, const char *needle, int *status)
{
	char out[16384];

	for (int i = 0; i < 100; i++) {
		netns_run(NULL, out, sizeof(out), "cat %s", r->log);
		if (strstr(out, needle))
			return true;
		if (waitpid(r->pid, status, WNOHANG) == r->pid) {
			r->pid = 0;
			printf("sluiced ended:\n%s\n", out);
			return false;
		}
		usleep(50 * 1000);
	}
	printf("no \"%s\" in:\n%s\n", needle, out);
	return false;
}

static void stop(struct run *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
	netns_run(r->np.ns_b, NULL, 0, "ip link set %s xdp off; ip link set %s xdpgeneric off",
		  r->np.if_b, r->np.if_b);
}

void test_deploy_seccomp(void)
{
	static const char *const no_io_uring[] = {"io_uring_setup", "io_uring_enter",
						  "io_uring_register", NULL};
	static const char *const no_bpf[] = {"bpf", NULL};
	struct run r = {0};
	json_error_t e;
	json_t *prof;
	static char log[65536];
	char out[1024];
	int status = 0;

	if (!test__require_root())
		return;
	prof = json_load_file(PROFILE, 0, &e);
	if (!ASSERT_OK_PTR(prof, PROFILE) || !ASSERT_OK(netns_pair_create(&r.np), "netns"))
		goto out;
	snprintf(r.pin, sizeof(r.pin), "/sys/fs/bpf/sluice-test-%d-seccomp", getpid());
	snprintf(r.dir, sizeof(r.dir), "%s/seccomp", test__tmpdir());
	snprintf(r.log, sizeof(r.log), "%s/sluiced.log", r.dir);
	netns_run(NULL, NULL, 0, "mkdir -p %s", r.dir);

	/* the shipped profile: XDP attached, an event accepted */
	r.pid = start_under(&r, prof, NULL);
	ASSERT_TRUE(wait_log(&r, "sluiced: listening", &status), "serves under the profile");
	ASSERT_TRUE(wait_log(&r, "msg=\"bpf: attached\"", &status), "XDP attached under it");
	ASSERT_OK(netns_run(r.np.ns_b, out, sizeof(out),
			    "curl -s -o /dev/null -w '%%{http_code}' -H 'Content-Type: "
			    "application/json' -H 'Authorization: Bearer test' -d "
			    "'{\"type\":\"t\",\"idempotency_key\":\"s1\",\"payload\":{}}' "
			    "http://127.0.0.1:18080/v1/events | grep -qx 202"),
		  "202 (io_uring and the journal work)");
	stop(&r);

	/* without io_uring (the runtimes' default): sluiced cannot serve and exits */
	r.pid = start_under(&r, prof, no_io_uring);
	for (int i = 0; i < 100 && r.pid > 0; i++) {
		if (waitpid(r.pid, &status, WNOHANG) == r.pid)
			r.pid = 0;
		else
			usleep(50 * 1000);
	}
	ASSERT_EQ(r.pid, 0, "no io_uring: sluiced exits");
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2,
		    "exit 2: the environment, not a restart, must change");
	netns_run(NULL, log, sizeof(log), "cat %s", r.log);
	ASSERT_HAS_STR(log, "loop: io_uring refused: a seccomp profile blocks io_uring_*",
		       "says why");
	stop(&r);

	/* without bpf: it serves, but the NIC does not shed */
	r.pid = start_under(&r, prof, no_bpf);
	ASSERT_TRUE(wait_log(&r, "request limits enforced in userspace only", &status),
		    "no bpf, no XDP");
	stop(&r);
out:
	stop(&r);
	if (*r.pin)
		netns_run(NULL, NULL, 0, "rm -rf %s", r.pin);
	netns_pair_destroy(&r.np);
	json_decref(prof);
}
