// SPDX-License-Identifier: MIT
/* test_tenants.c -- tenants file: parsing, lookups by key, slot and source, file:line errors,
 * slots kept on reload, BPF maps */
#include <bpf/bpf.h>
#include <stdlib.h>

#include "nic/bpf_loader.h"
#include "lib/sha256.h"
#include "admit/tenants.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define KEY_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" /* "test" */

static const char *write_file(const char *name, const char *text)
{
	static char path[4][512];
	static int n;
	char *p = path[n++ % 4];
	FILE *f;

	snprintf(p, 512, "%s/%s", test__tmpdir(), name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return p;
}

static const char *good = "# two tenants\n"
			  "[acme]\n"
			  "key = " KEY_A "\n"
			  "class = critical\n"
			  "req_rate = 1000\n"
			  "req_burst = 10000\n"
			  "crit_rate = 0.5\n"
			  "source = 203.0.113.7\n"
			  "source = 10.0.0.0/8\n"
			  "\n"
			  "[beta]\n"
			  "key = 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n"
			  "source = 2001:db8::/32\n";

static void subtest_good(void)
{
	char err[512] = "";
	struct tenants *t = tenants_load(write_file("t.ini", good), NULL, err, sizeof(err));
	const struct tenant *a, *b;
	uint8_t d[SHA256_LEN];

	if (!ASSERT_OK_PTR(t, err))
		return;
	ASSERT_EQ(tenants_count(t), 2, "count");
	sha256("test", 4, d);
	a = tenants_by_digest(t, d);
	if (!ASSERT_OK_PTR(a, "acme by key"))
		goto out;
	ASSERT_STREQ(a->name, "acme", "name");
	ASSERT_EQ(a->slot, SLUICE_SLOT_FIRST, "first slot");
	ASSERT_EQ(a->class, SLUICE_CLASS_CRITICAL, "class");
	ASSERT_EQ(a->limit[SLUICE_LIMIT_REQ].interval_ns, 1000000, "req interval");
	ASSERT_EQ(a->limit[SLUICE_LIMIT_REQ].burst, 10000, "req burst");
	ASSERT_EQ(a->limit[SLUICE_LIMIT_CRIT].interval_ns, 2000000000ULL, "crit 0.5/s");
	ASSERT_EQ(a->limit[SLUICE_LIMIT_CRIT].burst, 1, "crit default burst");
	ASSERT_EQ(a->limit[SLUICE_LIMIT_SYN].interval_ns, 0, "syn unlimited");
	ASSERT_EQ(a->nsources, 2, "sources");
	ASSERT_EQ(a->sources[0].prefixlen, 128, "exact v4");
	ASSERT_EQ(a->sources[1].prefixlen, 104, "v4 /8 mapped");
	sha256("hello", 5, d);
	b = tenants_by_digest(t, d);
	if (ASSERT_OK_PTR(b, "beta by key")) {
		ASSERT_EQ(b->class, SLUICE_CLASS_NORMAL, "default class");
		ASSERT_EQ(b->sources[0].prefixlen, 32, "v6 /32");
		ASSERT_EQ(tenants_by_slot(t, b->slot), b, "by slot");
	}
	sha256("nope", 4, d);
	ASSERT_EQ(tenants_by_digest(t, d), NULL, "unknown key");
	{
		const char *addrs[] = {"203.0.113.7", "10.200.3.4", "2001:db8:1::5",
				       "203.0.113.8", "11.0.0.1",   "2001:db9::1"};
		const struct tenant *want[] = {a, a, b, NULL, NULL, NULL};

		for (int i = 0; i < 6; i++) {
			struct sluice_lpm_key k;
			struct sluice_addr sa;

			tenants_parse_source(addrs[i], &k);
			memcpy(sa.a, k.a, sizeof(sa.a));
			ASSERT_EQ(tenants_by_source(t, &sa), want[i], addrs[i]);
		}
	}
out:
	tenants_put(t);
}

static void expect_error(const char *text, const char *want, const char *name)
{
	char err[512] = "";
	struct tenants *t = tenants_load(write_file("bad.ini", text), NULL, err, sizeof(err));

	if (!ASSERT_EQ(t, NULL, name)) {
		tenants_put(t);
		return;
	}
	ASSERT_HAS_STR(err, want, name);
}

static void subtest_errors(void)
{
	expect_error("[a]\nkey = 1234\n", "bad.ini:2: key '1234' is not a SHA-256", "short key");
	expect_error("[a]\nclass = urgent\n", "bad.ini:2: class = urgent: expected critical",
		     "class");
	expect_error("[a]\n\nreqrate = 5\n", "bad.ini:3: unknown key 'reqrate'", "unknown key");
	expect_error("[a]\nreq_rate = fast\n", "bad.ini:2: req_rate = fast", "rate");
	expect_error("[a]\nreq_burst = 0\n", "bad.ini:2: req_burst = 0", "burst");
	expect_error("[a]\nsource = 10.1.2.3/8\n", "bad.ini:2: source '10.1.2.3/8'", "host bits");
	expect_error("[a]\nsource = 10.0.0.0/33\n", "bad.ini:2: source", "prefix len");
	expect_error("key = " KEY_A "\n", "bad.ini:1: 'key' outside a [tenant] section", "no sect");
	expect_error("[a]\nclass = low\n[b]\nclass = low\n[a]\nclass = low\n",
		     "bad.ini:6: tenant [a] defined twice", "dup tenant");
	expect_error("[a]\nkey = " KEY_A "\n[b]\nkey = " KEY_A "\n",
		     "same key digest is listed for [a] and [b]", "dup key");
	expect_error("[a]\ncert_sha256 = " KEY_A "\n[b]\ncert_sha256 = " KEY_A "\n",
		     "same cert_sha256 is listed for [a] and [b]", "dup cert");
	expect_error("[a]\ncert_sha256 = AB:CD\n",
		     "bad.ini:2: cert_sha256 'AB:CD' is not a SHA-256", "short cert");
	expect_error(
	    "[a]\nkey = 9f:86:d0:81:88:4c:7d:65:9a:2f:ea:a0:c5:5a:d0:15:a3:bf:4f:1b:2b:0b:82:"
	    "2c:d1:5d:6c:15:b0:f0:0a:08\n",
	    "bad.ini:2: key '9f:86", "colons only in cert_sha256");
	expect_error("[a]\ncrit_burst = 4\n", "crit_burst without a crit_rate", "burst only");
	expect_error("[a]\n[broken\n", "bad.ini:2: syntax error", "ini syntax");
	expect_error("[abcdefghijabcdefghijabcdefghijXYZ]\nclass = low\n", "too long (1-31",
		     "long name");
	/* names go into Redis keys, labels and logs: "acme:eu" would share acme's keys */
	expect_error("[acme]\nclass = low\n\n[acme:eu]\nclass = low\n",
		     "bad.ini:5: tenant name [acme:eu]: only letters, digits", "colon in a name");
	expect_error("[a b]\nclass = low\n", "bad.ini:2: tenant name [a b]: only", "space");
	expect_error("[-a]\nclass = low\n", "bad.ini:2: tenant name [-a]: only", "leading dash");
	expect_error("[x\"y]\nclass = low\n", "tenant name [x\"y]: only", "quote");
	expect_error("[none]\nclass = low\n", "bad.ini:2: tenant name [none]: reserved", "none");
	expect_error("[anonymous]\nclass = low\n", "tenant name [anonymous]: reserved", "anon");
	{
		char why[128];

		ASSERT_OK(tenants_name_check("Acme-eu_2.x", why, sizeof(why)), "valid name");
		ASSERT_EQ(tenants_name_check("acme:eu", why, sizeof(why)), -EINVAL, "colon");
		ASSERT_EQ(tenants_name_check("", why, sizeof(why)), -EINVAL, "empty");
	}
	{
		char err[256];

		ASSERT_EQ(tenants_load("/nonexistent/t.ini", NULL, err, sizeof(err)), NULL,
			  "missing");
		ASSERT_HAS_STR(err, "/nonexistent/t.ini: cannot read", "missing message");
	}
}

/* Client certificate fingerprints (mTLS): as openssl prints them (colons, capitals) or plain
 * hex, looked up apart from the API keys. */
static void subtest_certs(void)
{
	static const char text[] =
	    "[acme]\nkey = " KEY_A "\n"
	    "cert_sha256 = 9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:"
	    "D1:5D:6C:15:B0:F0:0A:08\n"
	    "[beta]\ncert_sha256 = "
	    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n";
	char err[512] = "";
	struct tenants *t = tenants_load(write_file("c.ini", text), NULL, err, sizeof(err));
	uint8_t d[SHA256_LEN];
	const struct tenant *a;

	if (!ASSERT_OK_PTR(t, err))
		return;
	sha256("test", 4, d); /* KEY_A is its digest, used here as a fingerprint too */
	a = tenants_by_cert(t, d);
	ASSERT_TRUE(a && !strcmp(a->name, "acme"), "acme by certificate (colon form)");
	ASSERT_TRUE(tenants_by_digest(t, d) == a, "and by key");
	sha256("hello", 5, d);
	a = tenants_by_cert(t, d);
	ASSERT_TRUE(a && !strcmp(a->name, "beta"), "beta by certificate");
	ASSERT_EQ(tenants_by_digest(t, d), NULL, "a fingerprint is not an API key");
	sha256("nope", 4, d);
	ASSERT_EQ(tenants_by_cert(t, d), NULL, "unknown certificate");
	tenants_put(t);
}

static void subtest_reload(void)
{
	char err[512] = "";
	struct tenants *t1 = tenants_load(write_file("t.ini", good), NULL, err, sizeof(err)), *t2;
	struct tenants_ref ref;
	const struct tenant *a;
	uint32_t beta_slot;

	if (!ASSERT_OK_PTR(t1, err))
		return;
	beta_slot = tenants_at(t1, 1)->slot;
	tenants_ref_init(&ref, t1);
	/* a broken file is refused and the running table stays */
	t2 = tenants_load(write_file("t2.ini", "[x]\nclass = ?\n"), t1, err, sizeof(err));
	ASSERT_EQ(t2, NULL, "broken reload refused");
	ASSERT_HAS_STR(err, "t2.ini:2:", "file:line");
	ASSERT_EQ(ref.cur, t1, "old table kept");
	/* new order, one tenant removed, one added: survivors keep their slot, the newcomer
	 * does not take the slot the removed tenant still holds */
	t2 = tenants_load(write_file("t3.ini", "[new]\nclass = low\n[beta]\nclass = low\n"), t1,
			  err, sizeof(err));
	if (!ASSERT_OK_PTR(t2, err))
		goto out;
	a = tenants_at(t2, 1);
	ASSERT_EQ(a->slot, beta_slot, "beta keeps slot");
	ASSERT_NEQ(tenants_at(t2, 0)->slot, tenants_at(t1, 0)->slot, "acme's slot not reused");
	ASSERT_TRUE(tenants_slot_is_new(t2, t1, tenants_at(t2, 0)->slot), "newcomer slot new");
	ASSERT_FALSE(tenants_slot_is_new(t2, t1, beta_slot), "beta slot not new");
	{
		struct tenants *held = tenants_ref_acquire(&ref);

		tenants_ref_swap(&ref, t2);
		/* a reader holding the old table can still use it after the swap */
		ASSERT_STREQ(tenants_at(held, 0)->name, "acme", "held table alive");
		tenants_put(held);
	}
	ASSERT_EQ(ref.cur, t2, "swapped");
	ASSERT_EQ(ref.version, 2, "version bumped");
out:
	tenants_ref_fini(&ref);
}

static void subtest_bpf_maps(void)
{
	char err[512] = "";
	struct tenants *t1 = NULL, *t2 = NULL;
	struct sluice_bpf *b = NULL;
	struct sluice_tenant_cfg cfg;
	struct sluice_config conf;
	struct sluice_addr a = {0};
	struct sluice_lpm_key k;
	int fds[SLUICE_M_COUNT];
	__u32 slot, zero = 0, gen0;

	if (!test__require_root() || !xfx_require_kernel())
		return;
	b = sluice_bpf_load(NULL, err, sizeof(err));
	if (!ASSERT_OK_PTR(b, err))
		return;
	for (int i = 0; i < SLUICE_M_COUNT; i++)
		fds[i] = sluice_bpf_map_fd(b, i);
	t1 = tenants_load(write_file("t.ini", good), NULL, err, sizeof(err));
	if (!ASSERT_OK_PTR(t1, err))
		goto out;
	if (!ASSERT_OK(bpf_map_lookup_elem(fds[SLUICE_M_CONFIG], &zero, &conf), "config"))
		goto out;
	gen0 = conf.generation;
	if (!ASSERT_OK(tenants_apply_bpf(t1, NULL, fds, err, sizeof(err)), err))
		goto out;
	slot = tenants_at(t1, 0)->slot;
	ASSERT_OK(bpf_map_lookup_elem(fds[SLUICE_M_TENANT_CFG], &slot, &cfg), "cfg");
	ASSERT_STREQ(cfg.name, "acme", "cfg name");
	ASSERT_EQ(cfg.limit[SLUICE_LIMIT_REQ].burst, 10000, "cfg burst");
	tenants_parse_source("203.0.113.7", &k);
	memcpy(a.a, k.a, 16);
	slot = 0;
	ASSERT_OK(bpf_map_lookup_elem(fds[SLUICE_M_SRC_EXACT], &a, &slot), "exact source");
	ASSERT_EQ(slot, tenants_at(t1, 0)->slot, "exact -> acme");
	tenants_parse_source("10.9.9.9", &k);
	k.prefixlen = 128;
	ASSERT_OK(bpf_map_lookup_elem(fds[SLUICE_M_SRC_PREFIX], &k, &slot), "prefix match");
	ASSERT_OK(bpf_map_lookup_elem(fds[SLUICE_M_CONFIG], &zero, &conf), "config");
	ASSERT_EQ(conf.generation, gen0 + 1, "generation bumped");
	/* reload without acme: its sources and config disappear */
	t2 = tenants_load(write_file("t4.ini", "[beta]\nclass = low\n"), t1, err, sizeof(err));
	if (!ASSERT_OK_PTR(t2, err))
		goto out;
	ASSERT_OK(tenants_apply_bpf(t2, t1, fds, err, sizeof(err)), err);
	ASSERT_ERR(bpf_map_lookup_elem(fds[SLUICE_M_SRC_EXACT], &a, &slot), "exact removed");
	slot = tenants_at(t1, 0)->slot;
	bpf_map_lookup_elem(fds[SLUICE_M_TENANT_CFG], &slot, &cfg);
	ASSERT_STREQ(cfg.name, "", "acme cfg cleared");
	bpf_map_lookup_elem(fds[SLUICE_M_CONFIG], &zero, &conf);
	ASSERT_EQ(conf.generation, gen0 + 2, "generation bumped again");
out:
	tenants_put(t1);
	tenants_put(t2);
	sluice_bpf_free(b);
}

void test_tenants(void)
{
	if (test__start_subtest("good"))
		subtest_good();
	if (test__start_subtest("errors"))
		subtest_errors();
	if (test__start_subtest("certs"))
		subtest_certs();
	if (test__start_subtest("reload"))
		subtest_reload();
	if (test__start_subtest("bpf_maps"))
		subtest_bpf_maps();
}
