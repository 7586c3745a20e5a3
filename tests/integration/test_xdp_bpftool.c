// SPDX-License-Identifier: MIT
/* test_xdp_bpftool.c -- bpftool parity: what bpftool writes sluicectl reads, and the reverse
 *
 * Operators without sluicectl tune the same pinned maps with plain bpftool (the commands
 * in the README's bpftool section). One bpftool update of each kind -- a tenant's limits, the shed
 * level, a deny entry -- must be seen by sluicectl (and the deny entry by the XDP program,
 * within the documented revalidation second); one sluicectl change of each kind must be
 * seen in `bpftool -j map dump`, whose BTF-formatted output has the field names.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/types.h>

#include "sluice/abi.h"
#include "test_progs.h"
#include "xdp_env.h"

/* "hex 01 02 ..." for bpftool. */
static const char *hex(const void *p, size_t n, char *buf, size_t len)
{
	const unsigned char *b = p;
	size_t i, used = snprintf(buf, len, "hex");

	for (i = 0; i < n && used + 4 < len; i++)
		used += snprintf(buf + used, len - used, " %02x", b[i]);
	return buf;
}

static int bpftool(struct xdp_env *e, char *out, size_t len, const char *map, const char *key,
		   const char *value)
{
	return netns_run(NULL, out, len, "bpftool map update pinned %s/%s key %s value %s",
			 e->pin_dir, map, key, value);
}

/* `bpftool -j map dump pinned` of one map, parsed. */
static json_t *bpftool_dump(struct xdp_env *e, const char *map)
{
	static char out[1 << 20];

	if (netns_run(NULL, out, sizeof(out), "bpftool -j map dump pinned %s/%s", e->pin_dir, map))
		return NULL;
	return json_loads(out, 0, NULL);
}

/* `bpftool -j map lookup pinned` of slot in an array map, parsed. */
static json_t *bpftool_lookup(struct xdp_env *e, const char *map, __u32 slot)
{
	char out[16384], key[64];

	if (netns_run(NULL, out, sizeof(out), "bpftool -j map lookup pinned %s/%s key %s",
		      e->pin_dir, map, hex(&slot, 4, key, sizeof(key))))
		return NULL;
	return json_loads(out, 0, NULL);
}

static void bpftool_to_cli(struct xdp_env *e)
{
	struct sluice_tenant_cfg tc = {.name = "viabpf", .class = SLUICE_CLASS_LOW};
	struct sluice_config cfg = {.abi_version = SLUICE_ABI_VERSION,
				    .shed_level = SLUICE_SHED_EMERGENCY,
				    .shed_mode = SLUICE_SHED_MANUAL,
				    .permille = {0, 100, 700},
				    .generation = 40,
				    .revalidate_ns = 1000000000ULL};
	struct sluice_addr a = {.a = {[10] = 0xff, [11] = 0xff}};
	struct sluice_deny d = {0};
	char key[256], val[1024], out[4096], src[48];
	__u32 slot = 5, zero = 0;
	struct xdp_sent s;
	json_t *j;
	int ret;

	tc.limit[SLUICE_LIMIT_SYN].interval_ns = 4000000; /* 250/s */
	tc.limit[SLUICE_LIMIT_SYN].burst = 25;
	ret = bpftool(e, out, sizeof(out), SLUICE_MAP_TENANT_CFG, hex(&slot, 4, key, 256),
		      hex(&tc, sizeof(tc), val, sizeof(val)));
	ASSERT_EQ(ret, 0, "bpftool update tenant");
	j = xdp_ctl_json(e, "tenant show viabpf");
	ASSERT_EQ(json_integer_value(json_object_get(j, "slot")), 5, "CLI sees the tenant");
	ASSERT_STREQ(json_string_value(json_object_get(j, "class")), "low", "CLI sees the class");
	ASSERT_STREQ(json_string_value(json_object_get(
			 json_object_get(json_object_get(j, "limits"), "syn"), "rate")),
		     "250/s", "CLI sees the SYN rate");
	json_decref(j);

	ret = bpftool(e, out, sizeof(out), SLUICE_MAP_CONFIG, hex(&zero, 4, key, 256),
		      hex(&cfg, sizeof(cfg), val, sizeof(val)));
	ASSERT_EQ(ret, 0, "bpftool update config");
	j = xdp_ctl_json(e, "shed show");
	ASSERT_STREQ(json_string_value(json_object_get(j, "level")), "emergency",
		     "CLI sees the shed level");
	ASSERT_STREQ(json_string_value(json_object_get(j, "mode")), "manual", "CLI sees the mode");
	ASSERT_EQ(json_integer_value(json_object_get(json_object_get(j, "permille"), "low")), 700,
		  "CLI sees the permille");
	json_decref(j);

	/* deny the sender's own address for good, without telling the CLI or the program */
	xdp_addr(e, false, 99, src, sizeof(src));
	if (!xdp_ctl_ok(e, "source add viabpf %s", src) ||
	    !ASSERT_OK(xdp_send(e, false, &s, "--src %s --count 1", src), "warm the cache"))
		return;
	if (!ASSERT_EQ(inet_pton(AF_INET, src, &a.a[12]), 1, "address"))
		return;
	ret = bpftool(e, out, sizeof(out), SLUICE_MAP_DENY_EXACT, hex(&a, 16, key, 256),
		      hex(&d, sizeof(d), val, sizeof(val)));
	ASSERT_EQ(ret, 0, "bpftool update deny");
	j = xdp_ctl_json(e, "deny list");
	ASSERT_STREQ(json_string_value(json_object_get(json_array_get(j, 0), "address")), src,
		     "CLI lists the deny entry");
	ASSERT_TRUE(json_is_null(json_object_get(json_array_get(j, 0), "left_ns")),
		    "without expiry");
	json_decref(j);
	/* bpftool does not bump the generation: the program sees it within revalidate_ns */
	xdp_sleep(1.1);
	if (!ASSERT_OK(xdp_send(e, false, &s, "--src %s --count 100", src), "pktgen"))
		return;
	j = xdp_stats(e);
	ASSERT_EQ(xdp_count(j, "viabpf", "deny"), 100, "XDP drops it within a second");
	json_decref(j);
}

static json_t *formatted_value(json_t *dump, size_t i)
{
	return json_object_get(json_object_get(json_array_get(dump, i), "formatted"), "value");
}

static void cli_to_bpftool(struct xdp_env *e)
{
	json_t *dump, *v;
	long long n;
	__u32 slot;

	if (!xdp_ctl_ok(e, "tenant add clitenant --syn-rate 500 --syn-burst 7 --class critical") ||
	    !xdp_ctl_ok(e, "shed set thin") || !xdp_ctl_ok(e, "deny add 10.200.0.0/16 --ttl 5m"))
		return;
	/* the slot from the CLI, then bpftool's own view of it */
	v = xdp_ctl_json(e, "tenant show clitenant");
	slot = (__u32)json_integer_value(json_object_get(v, "slot"));
	json_decref(v);
	dump = bpftool_lookup(e, SLUICE_MAP_TENANT_CFG, slot);
	v = json_object_get(json_object_get(dump, "formatted"), "value");
	ASSERT_STREQ(json_string_value(json_object_get(v, "name")), "clitenant",
		     "bpftool shows the tenant's name");
	v = json_array_get(json_object_get(v, "limit"), SLUICE_LIMIT_SYN);
	ASSERT_EQ(json_integer_value(json_object_get(v, "interval_ns")), 2000000,
		  "bpftool sees the SYN interval (500/s)");
	ASSERT_EQ(json_integer_value(json_object_get(v, "burst")), 7, "bpftool sees the burst");
	json_decref(dump);

	dump = bpftool_dump(e, SLUICE_MAP_CONFIG);
	n = json_integer_value(json_object_get(formatted_value(dump, 0), "shed_level"));
	ASSERT_EQ(n, SLUICE_SHED_THIN, "bpftool sees the shed level");
	json_decref(dump);

	dump = bpftool_dump(e, SLUICE_MAP_DENY_PREFIX);
	v = json_object_get(json_object_get(json_array_get(dump, 0), "formatted"), "key");
	n = json_integer_value(json_object_get(v, "prefixlen"));
	ASSERT_EQ(n, 96 + 16, "bpftool sees the deny prefix (IPv4-mapped /16)");
	ASSERT_EQ(json_integer_value(json_array_get(json_object_get(v, "a"), 12)), 10,
		  "first octet");
	ASSERT_EQ(json_integer_value(json_array_get(json_object_get(v, "a"), 13)), 200,
		  "second octet");
	ASSERT_GT(json_integer_value(json_object_get(formatted_value(dump, 0), "expires_ns")), 0,
		  "with its expiry");
	json_decref(dump);
}

void test_xdp_bpftool_parity(void)
{
	struct xdp_env e;

	if (xdp_env_setup(&e, "bpftool", "8080"))
		return;
	if (system("bpftool version >/dev/null 2>&1")) {
		test__skip("bpftool not installed");
		goto out;
	}
	if (test__start_subtest("bpftool_to_cli"))
		bpftool_to_cli(&e);
	if (test__start_subtest("cli_to_bpftool"))
		cli_to_bpftool(&e);
out:
	xdp_env_teardown(&e);
}
