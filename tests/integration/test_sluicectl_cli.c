// SPDX-License-Identifier: MIT
/* test_sluicectl_cli.c -- sluicectl's contract: generated help, argument errors, units
 *
 * Every bad argument must give exit 2 and one line that names the argument; missing pins
 * must say "not attached (no pins under DIR)" and how to attach (exit 1); help for the
 * whole tool and for one object comes from the command tables. With a program attached,
 * the accepted spellings of rates (1000, 1000/s, 60000/min) and durations (500ms, 30s,
 * 5m) must land in the maps as the same numbers, tenant del must take the tenant's
 * sources and prefixes with it, and stats --watch --json must print one snapshot per line
 * with rates over the measured interval. --version names the VERSION file's version (for
 * sluiced too); with --json every error is one JSON object on stdout; an unknown object's
 * message lists every object the tool has.
 */
#include <linux/types.h>
#include <unistd.h>

#include "lib/array_size.h"
#include "sluice/abi.h"
#include "test_progs.h"
#include "xdp_env.h"

struct bad {
	const char *args;
	const char *names; /* the line must contain this */
};

static const struct bad bad_args[] = {
    {"tenant add acme --syn-rate 10x", "--syn-rate 10x"},
    {"tenant add acme --syn-rate 5/fortnight", "--syn-rate 5/fortnight"},
    {"tenant add acme --syn-burst 0", "--syn-burst 0"},
    {"tenant add acme --class urgent", "--class urgent"},
    {"tenant add acme --bogus 1", "--bogus"},
    {"tenant add 'a b'", "a b"},
    {"tenant add acme:eu", "tenant name \"acme:eu\": only letters"},
    {"tenant add .x", "starting with a letter or digit"},
    {"tenant add none", "reserved"},
    {"tenant frob", "frob"},
    {"tenant add", "NAME"},
    {"frobnicate", "frobnicate"},
    {"source add acme 10.0.0.300", "10.0.0.300"},
    {"prefix add acme 10.0.0.0/33", "10.0.0.0/33"},
    {"prefix add acme 2001:db8::/129", "2001:db8::/129"},
    {"deny add 10.0.0.1 --ttl 5parsecs", "--ttl 5parsecs"},
    {"deny add 10.0.0.1 --ttl 0s", "--ttl 0s"},
    {"shed set panic", "panic"},
    {"shed set emergency --permille low=1001", "low=1001"},
    {"shed set emergency --permille bulk=5", "bulk"},
    {"stats --watch never", "--watch never"},
    {"attach --iface nosuchif0", "nosuchif0"},
    {"attach --iface lo --mode turbo", "--mode turbo"},
    {"attach --iface lo --ports 8080,70000", "70000"},
    {"attach --iface lo --ports 53/sctp", "sctp"},
};

static void check_bad_args(const char *ctl, const char *pins)
{
	char out[4096], name[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad_args); i++) {
		int ret = netns_run(NULL, out, sizeof(out), "%s --pin-dir %s %s", ctl, pins,
				    bad_args[i].args);

		snprintf(name, sizeof(name), "exit 2: %s", bad_args[i].args);
		ASSERT_EQ(ret, 2, name);
		snprintf(name, sizeof(name), "names the argument: %s", bad_args[i].args);
		ASSERT_HAS_STR(out, bad_args[i].names, name);
		ASSERT_TRUE(strchr(out, '\n') == out + strlen(out) - 1, "one line");
	}
}

static void check_help_and_pins(const char *ctl, const char *pins)
{
	static const char *const objects[] = {"attach", "detach", "status", "tenant",  "source",
					      "prefix", "deny",	  "shed",   "dry-run", "stats"};
	char out[16384];
	size_t i;

	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s help", ctl), 0, "help");
	for (i = 0; i < ARRAY_SIZE(objects); i++)
		ASSERT_HAS_STR(out, objects[i], "help lists the object");
	ASSERT_HAS_STR(out, "--syn-burst", "help lists options from the tables");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s tenant help", ctl), 0, "tenant help");
	ASSERT_HAS_STR(out, "sluicectl tenant show NAME", "object help");
	ASSERT_TRUE(!strstr(out, "sluicectl deny"), "object help shows only that object");

	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s --pin-dir %s tenant list", ctl, pins), 1,
		  "missing pins: exit 1");
	ASSERT_HAS_STR(out, "not attached (no pins under ", "missing pins message");
	ASSERT_HAS_STR(out, "attach --iface", "says how to attach");
}

/* Rate and duration spellings give the same numbers in the maps. */
static void check_units(struct xdp_env *e)
{
	static const char *const rates[] = {"1000", "1000/s", "60000/min"};
	static const struct {
		const char *ttl;
		double s;
	} ttls[] = {{"1500ms", 1.5}, {"30s", 30}, {"5m", 300}};
	char cmd[128];
	json_t *j;
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "tenant add r%zu --syn-rate %s", i, rates[i]);
		if (!xdp_ctl_ok(e, "%s", cmd))
			return;
		j = xdp_ctl_json(e, "tenant show r%zu", i);
		ASSERT_EQ(json_integer_value(json_object_get(
			      json_object_get(json_object_get(j, "limits"), "syn"), "interval_ns")),
			  1000000, cmd);
		json_decref(j);
	}
	for (i = 0; i < 3; i++) {
		json_t *e0;
		double left;

		if (!xdp_ctl_ok(e, "deny add 10.9.%zu.1 --ttl %s", i, ttls[i].ttl))
			return;
		j = xdp_ctl_json(e, "deny list");
		e0 = NULL;
		for (size_t k = 0; k < json_array_size(j); k++) {
			char want[32];

			snprintf(want, sizeof(want), "10.9.%zu.1", i);
			if (!strcmp(
				json_string_value(json_object_get(json_array_get(j, k), "address")),
				want))
				e0 = json_array_get(j, k);
		}
		left = json_integer_value(json_object_get(e0, "left_ns")) / 1e9;
		/* units differ by 60x and 1000x: half the TTL tells them apart, and leaves room
		 * for a loaded machine between the add and the list */
		ASSERT_GT(left, ttls[i].s / 2, ttls[i].ttl);
		ASSERT_LE(left, ttls[i].s, ttls[i].ttl);
		json_decref(j);
	}
}

/* tenant del takes the tenant's sources and prefixes with it. */
static void check_tenant_del(struct xdp_env *e)
{
	char out[1024];
	json_t *st;

	if (!xdp_ctl_ok(e, "tenant add gone") || !xdp_ctl_ok(e, "source add gone 10.3.3.3") ||
	    !xdp_ctl_ok(e, "prefix add gone 10.4.0.0/16") ||
	    !xdp_ctl_ok(e, "prefix add gone 2001:db8:4::/48") || !xdp_ctl_ok(e, "tenant del gone"))
		return;
	st = xdp_ctl_json(e, "status");
	ASSERT_EQ(json_integer_value(
		      json_array_get(json_object_get(json_object_get(st, "fill"), "sources"), 0)),
		  0, "sources removed");
	ASSERT_EQ(json_integer_value(
		      json_array_get(json_object_get(json_object_get(st, "fill"), "prefixes"), 0)),
		  0, "prefixes removed");
	json_decref(st);
	ASSERT_EQ(xdp_ctl(e, out, sizeof(out), "tenant show gone"), 2, "deleted tenant is gone");
	ASSERT_HAS_STR(out, "tenant gone: no such tenant", "names it");
}

/* stats --watch --json: one line per snapshot, rates over the measured interval. */
static void check_watch(struct xdp_env *e)
{
	static char out[1 << 16];
	json_t *snap, *rows, *row, *v;
	double pps = 0, interval;
	struct xdp_sent s;
	char *second;
	size_t i;
	pid_t bg;
	int ret;

	/* the sender outlasts the watch by seconds: on a loaded machine a 500 ms sample can come
	 * late (1 s and more), and a sample after the sender stopped reads 0 */
	bg = xdp_send_start(e, false, "--src 10.5.5.5 --rate 2000 --duration 4s");
	if (!ASSERT_GT(bg, 0, "sender started"))
		return;
	xdp_sleep(0.2);
	ret = xdp_ctl(e, out, sizeof(out), "--json stats --watch 500ms --count 2 2>/dev/null");
	xdp_send_wait(bg, &s);
	if (!ASSERT_EQ(ret, 0, "stats --watch"))
		return;
	second = strchr(out, '\n');
	ASSERT_TRUE(second && strchr(second + 1, '\n') &&
			!strchr(strchr(second + 1, '\n') + 1, '\n'),
		    "two lines for --count 2");
	snap = second ? json_loads(second + 1, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	if (!ASSERT_OK_PTR(snap, "each line is JSON"))
		return;
	interval = json_real_value(json_object_get(snap, "interval_s"));
	ASSERT_GT(interval, 0.45, "interval measured");
	rows = json_object_get(snap, "tenants");
	for (i = 0; i < json_array_size(rows); i++) {
		row = json_array_get(rows, i);
		if (strcmp(json_string_value(json_object_get(row, "name")), "(anonymous)"))
			continue;
		v = json_object_get(row, "verdicts");
		pps = json_real_value(json_object_get(json_object_get(v, "pass"), "pps")) +
		      json_real_value(json_object_get(json_object_get(v, "syn_limit"), "pps"));
	}
	/* against what the sender achieved (2000/s asked; fewer when it was descheduled) */
	printf("watch: %.0f packets/s over %.3f s (sender: %.0f/s)\n", pps, interval, s.rate_pps);
	ASSERT_NEAR_PCT(pps, s.rate_pps > 0 ? s.rate_pps : 2000, 25,
			"rate of the anonymous source");
	json_decref(snap);
}

/* The VERSION file, without its newline. */
static void read_version(char *v, size_t len)
{
	FILE *f = fopen("VERSION", "r");

	v[0] = 0;
	if (f && fgets(v, (int)len, f))
		v[strcspn(v, "\n")] = 0;
	if (f)
		fclose(f);
}

static void check_version_json(const char *ctl, const char *pins)
{
	static const char *const objects[] = {"attach", "detach", "status", "tenant",  "source",
					      "prefix", "deny",	  "shed",   "dry-run", "stats",
					      "clock",	"dlq",	  "key"};
	char out[4096], want[128], version[32], sluiced[512];
	json_t *j;

	read_version(version, sizeof(version));
	ASSERT_TRUE(version[0], "VERSION file");
	snprintf(sluiced, sizeof(sluiced), "%s/sluiced", test__outdir());
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s --version", ctl), 0, "sluicectl --version");
	snprintf(want, sizeof(want), "sluicectl %s (BPF ABI v%u)\n", version, SLUICE_ABI_VERSION);
	ASSERT_STREQ(out, want, "names the version and ABI");
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s --version", sluiced), 0,
		  "sluiced --version");
	snprintf(want, sizeof(want), "sluiced %s (BPF ABI v%u)\n", version, SLUICE_ABI_VERSION);
	ASSERT_STREQ(out, want, "names the version and ABI");

	/* the unknown object message names them all */
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s frobnicate", ctl), 2, "unknown object");
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		snprintf(want, sizeof(want), " %s,", objects[i]);
		ASSERT_HAS_STR(out, want, objects[i]);
	}

	/* --json: errors are JSON on stdout, wherever --json stands */
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s frobnicate --json 2>/dev/null", ctl), 2,
		  "usage error exit 2");
	j = json_loads(out, 0, NULL);
	ASSERT_STREQ(json_string_value(json_object_get(j, "error")), "usage", "error code");
	ASSERT_HAS_STR(json_string_value(json_object_get(j, "detail")) ?: "",
		       "frobnicate: unknown object", "detail");
	json_decref(j);
	ASSERT_EQ(netns_run(NULL, out, sizeof(out), "%s --json --pin-dir %s status 2>/dev/null",
			    ctl, pins),
		  1, "not attached exit 1");
	j = json_loads(out, 0, NULL);
	ASSERT_STREQ(json_string_value(json_object_get(j, "error")), "not_attached", "error code");
	json_decref(j);
	ASSERT_EQ(netns_run(NULL, out, sizeof(out),
			    "%s --json --pin-dir %s tenant add acme --syn-rate 10x 2>/dev/null",
			    ctl, pins),
		  2, "bad value exit 2");
	j = json_loads(out, 0, NULL);
	ASSERT_HAS_STR(json_string_value(json_object_get(j, "detail")) ?: "", "--syn-rate 10x",
		       "names the argument");
	json_decref(j);
}

void test_sluicectl_cli(void)
{
	char ctl[512], pins[128];
	struct xdp_env e;

	snprintf(ctl, sizeof(ctl), "%s/sluicectl", test__outdir());
	snprintf(pins, sizeof(pins), "/sys/fs/bpf/sluice-test-%d-none", (int)getpid());
	if (!ASSERT_OK(access(ctl, X_OK), "sluicectl built"))
		return;
	if (test__start_subtest("bad_args"))
		check_bad_args(ctl, pins);
	if (test__start_subtest("help_and_pins"))
		check_help_and_pins(ctl, pins);
	if (test__start_subtest("version_json_errors"))
		check_version_json(ctl, pins);
	if (test__start_subtest("units")) {
		if (xdp_env_setup(&e, "units", "8080"))
			return;
		check_units(&e);
		check_tenant_del(&e);
		check_watch(&e);
		xdp_env_teardown(&e);
	}
}
