// SPDX-License-Identifier: MIT
/* xdp_env.c -- real-traffic XDP test hosts: a namespace pair, sluicectl in B, pktgen in A
 *
 * Everything goes through the two binaries in the build directory, run with nsenter in
 * the right namespace, so the tests exercise exactly what an operator runs. pktgen's JSON
 * report carries the measured send window, which the rate assertions use instead of the
 * requested duration. Background senders are forked children that write the report to a
 * file in the test's scratch dir.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "test_progs.h"
#include "xdp_env.h"
#include "xdp_fixture.h"

/* Where the background sender with this pid writes its report. */
static void report_file(pid_t pid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/pktgen-%d.json", test__tmpdir(), (int)pid);
}

void xdp_sleep(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts = clock_ts((uint64_t)(s * 1e9));
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int xdp_env_setup(struct xdp_env *e, const char *name, const char *ports)
{
	char out[4096];
	int ret;

	memset(e, 0, sizeof(*e));
	if (!test__require_root() || !xfx_require_kernel())
		return -1;
	if (!test__bpffs()) {
		test__skip("no BPF filesystem at /sys/fs/bpf and mounting one failed");
		return -1;
	}
	snprintf(e->ctl, sizeof(e->ctl), "%s/sluicectl", test__outdir());
	snprintf(e->gen, sizeof(e->gen), "%s/pktgen", test__outdir());
	if (access(e->ctl, X_OK) || access(e->gen, X_OK)) {
		printf("xdp_env: %s or %s missing (make)\n", e->ctl, e->gen);
		test__fail();
		return -1;
	}
	snprintf(e->pin_dir, sizeof(e->pin_dir), "/sys/fs/bpf/sluice-test-%d-%s", (int)getpid(),
		 name);
	if (!ASSERT_OK(netns_pair_create(&e->p), "netns_pair_create"))
		return -1;
	ret = xdp_ctl(e, out, sizeof(out), "attach --iface %s --ports %s", e->p.if_b, ports);
	if (ret) {
		printf("xdp_env: sluicectl attach failed (%d):\n%s\n", ret, out);
		test__fail();
		xdp_env_teardown(e);
		return -1;
	}
	e->attached = true;
	return 0;
}

void xdp_env_teardown(struct xdp_env *e)
{
	if (!e->p.ns_a[0])
		return;
	if (e->pin_dir[0])
		xdp_ctl(e, NULL, 0, "detach --iface %s --unpin", e->p.if_b);
	netns_pair_destroy(&e->p);
	e->attached = false;
}

static int vctl(struct xdp_env *e, char *out, size_t len, const char *extra, const char *fmt,
		va_list ap)
{
	char args[2048];

	vsnprintf(args, sizeof(args), fmt, ap);
	return netns_run(e->p.ns_b, out, len, "%s --pin-dir %s %s%s", e->ctl, e->pin_dir, args,
			 extra);
}

int xdp_ctl(struct xdp_env *e, char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vctl(e, out, len, "", fmt, ap);
	va_end(ap);
	return ret;
}

bool xdp_ctl_ok(struct xdp_env *e, const char *fmt, ...)
{
	char out[8192], args[2048];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	ret = xdp_ctl(e, out, sizeof(out), "%s", args);
	if (ret)
		printf("sluicectl %s: exit %d:\n%s\n", args, ret, out);
	return ASSERT_EQ(ret, 0, args);
}

json_t *xdp_ctl_json(struct xdp_env *e, const char *fmt, ...)
{
	static char out[1 << 20];
	json_error_t err;
	va_list ap;
	json_t *j;
	int ret;

	va_start(ap, fmt);
	ret = vctl(e, out, sizeof(out), " --json 2>/dev/null", fmt, ap);
	va_end(ap);
	if (ret) {
		printf("sluicectl --json: exit %d: %.2000s\n", ret, out);
		return NULL;
	}
	j = json_loads(out, 0, &err);
	if (!j)
		printf("sluicectl --json: bad JSON (%s): %.2000s\n", err.text, out);
	return j;
}

json_t *xdp_stats(struct xdp_env *e)
{
	return xdp_ctl_json(e, "stats");
}

long long xdp_count(json_t *stats, const char *tenant, const char *verdict)
{
	json_t *rows = json_object_get(stats, "tenants"), *row;
	size_t i;

	for (i = 0; i < json_array_size(rows); i++) {
		row = json_array_get(rows, i);
		if (strcmp(json_string_value(json_object_get(row, "name")) ?: "", tenant))
			continue;
		return json_integer_value(json_object_get(
		    json_object_get(json_object_get(row, "verdicts"), verdict), "packets"));
	}
	return 0;
}

static int parse_sent(const char *out, struct xdp_sent *r)
{
	json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);

	memset(r, 0, sizeof(*r));
	if (!j) {
		printf("pktgen: no report: %.2000s\n", out);
		return -1;
	}
	r->sent = json_integer_value(json_object_get(j, "sent"));
	r->elapsed_s = json_real_value(json_object_get(j, "elapsed_s"));
	r->rate_pps = json_real_value(json_object_get(j, "rate_pps"));
	r->first_s = json_real_value(json_object_get(j, "first_s"));
	r->last_s = json_real_value(json_object_get(j, "last_s"));
	json_decref(j);
	return 0;
}

static void gen_cmd(struct xdp_env *e, bool v6, char *cmd, size_t len, const char *fmt, va_list ap)
{
	char args[2048];

	vsnprintf(args, sizeof(args), fmt, ap);
	snprintf(cmd, len, "%s --iface %s --dst-mac %s --dst %s --json %s", e->gen, e->p.if_a,
		 e->p.mac_b, v6 ? e->p.ip6_b : e->p.ip4_b, args);
}

int xdp_send(struct xdp_env *e, bool v6, struct xdp_sent *r, const char *fmt, ...)
{
	char cmd[4096], out[4096];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	gen_cmd(e, v6, cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ret = netns_run(e->p.ns_a, out, sizeof(out), "%s 2>&1", cmd);
	if (ret) {
		printf("pktgen: exit %d: %s\n", ret, out);
		return -1;
	}
	return parse_sent(out, r);
}

pid_t xdp_send_start(struct xdp_env *e, bool v6, const char *fmt, ...)
{
	char cmd[4096], file[600];
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	gen_cmd(e, v6, cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int ret;

		report_file(getpid(), file, sizeof(file));
		ret = netns_run(e->p.ns_a, NULL, 0, "%s > %s 2>&1", cmd, file);
		_exit(ret < 0 ? 127 : ret);
	}
	return pid;
}

int xdp_send_wait(pid_t pid, struct xdp_sent *r)
{
	char out[4096] = "", file[600];
	int st;
	FILE *f;
	size_t n;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("pktgen (background): failed, status %d\n", st);
		return -1;
	}
	report_file(pid, file, sizeof(file));
	f = fopen(file, "r");
	if (!f)
		return -1;
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	fclose(f);
	return parse_sent(out, r);
}

long long xdp_tcp_in_segs(struct xdp_env *e)
{
	char out[256];

	if (netns_run(e->p.ns_b, out, sizeof(out),
		      "awk '/^Tcp:/ { if (h) { for (i = 1; i <= NF; i++) if (n[i] == \"InSegs\") "
		      "print $i } else { h = 1; for (i = 1; i <= NF; i++) n[i] = $i } }' "
		      "/proc/net/snmp"))
		return -1;
	return atoll(out);
}

void xdp_addr(const struct xdp_env *e, bool v6, int host, char *buf, size_t len)
{
	const char *base = v6 ? e->p.ip6_a : e->p.ip4_a;
	const char *cut = v6 ? strstr(base, "::") : strrchr(base, '.');
	int keep = (int)(cut - base);

	if (v6)
		snprintf(buf, len, "%.*s::%x", keep, base, host);
	else
		snprintf(buf, len, "%.*s.%d", keep, base, host);
}
