// SPDX-License-Identifier: MIT
/* test_admission.c -- request credits, critical demotion, dry-run twins, deny after 429s,
 * and the shared BPF state (the daemon's CAS lands in the map XDP reads) */
#include <bpf/bpf.h>

#include "admit/admission.h"
#include "lib/clock.h"
#include "nic/bpf_loader.h"
#include "test_progs.h"
#include "xdp_fixture.h"

#define SEC 1000000000ULL

static struct tenant tenant(uint32_t slot)
{
	struct tenant t = {.name = "acme", .slot = slot, .class = SLUICE_CLASS_CRITICAL};

	t.limit[SLUICE_LIMIT_REQ] = (struct sluice_limit){.interval_ns = SEC / 10, .burst = 3};
	t.limit[SLUICE_LIMIT_CRIT] = (struct sluice_limit){.interval_ns = SEC, .burst = 1};
	return t;
}

static void subtest_userspace(void)
{
	struct admission_opts o = {.deny_after = 4, .deny_secs = 5};
	struct admission *a = admission_new(&o, NULL, "test");
	struct tenant t = tenant(SLUICE_SLOT_FIRST);
	struct sluice_addr peer = {.a = {[15] = 7}};
	uint64_t now = 100 * SEC, retry;

	if (!ASSERT_OK_PTR(a, "new"))
		return;
	ASSERT_FALSE(admission_shared(a), "userspace state");
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(admission_request(a, &t, NULL, &peer, now, &retry), ADMISSION_PASSED,
			  "burst");
	ASSERT_EQ(admission_request(a, &t, NULL, &peer, now, &retry), ADMISSION_REJECTED, "over");
	ASSERT_EQ(retry, SEC / 10, "retry one interval");
	ASSERT_EQ(admission_request(a, &t, NULL, &peer, now + SEC / 10, &retry), ADMISSION_PASSED,
		  "after retry");
	ASSERT_EQ(admission_critical(a, &t, now), ADMISSION_PASSED, "crit credit");
	ASSERT_EQ(admission_critical(a, &t, now), ADMISSION_DEMOTED, "crit demoted");
	/* persistent rejects: the 4th in a row denies the source */
	ASSERT_FALSE(admission_denied(a, &peer, now), "not denied yet");
	for (int i = 0; i < 4; i++)
		admission_request(a, &t, NULL, &peer, now + SEC / 10, &retry);
	ASSERT_EQ(admission_denials(a), 1, "one denial");
	ASSERT_TRUE(admission_denied(a, &peer, now + SEC), "denied");
	ASSERT_FALSE(admission_denied(a, &peer, now + 6 * SEC), "deny expired");
	admission_reset_slot(a, t.slot);
	ASSERT_EQ(admission_request(a, &t, NULL, &peer, now, &retry), ADMISSION_PASSED,
		  "reset slot");
	admission_free(a);
}

static void subtest_dry_run(void)
{
	struct admission_opts o = {.dry_run = true};
	struct admission *a = admission_new(&o, NULL, "test");
	struct tenant t = tenant(SLUICE_SLOT_FIRST);
	uint64_t now = 100 * SEC, retry;
	int passed = 0;

	if (!ASSERT_OK_PTR(a, "new"))
		return;
	/* dry run charges nothing: every request is a would-pass from idle */
	for (int i = 0; i < 10; i++)
		passed +=
		    admission_request(a, &t, NULL, NULL, now, &retry) == ADMISSION_PASSED_DRY_RUN;
	ASSERT_EQ(passed, 10, "dry run passes, uncharged");
	ASSERT_EQ(admission_critical(a, &t, now), ADMISSION_PASSED_DRY_RUN, "crit dry");
	admission_free(a);
	/* the rejected twin: a state already exhausted by a real run */
	o.dry_run = false;
	a = admission_new(&o, NULL, "test");
	for (int i = 0; i < 3; i++)
		admission_request(a, &t, NULL, NULL, now, &retry);
	admission_critical(a, &t, now);
	admission_set_dry_run(a, true);
	ASSERT_EQ(admission_request(a, &t, NULL, NULL, now, &retry), ADMISSION_REJECTED_DRY_RUN,
		  "rejected dry");
	ASSERT_GT(retry, 0, "dry retry");
	ASSERT_EQ(admission_critical(a, &t, now), ADMISSION_DEMOTED_DRY_RUN, "demoted dry");
	admission_free(a);
}

static void subtest_shared_bpf(void)
{
	struct admission_opts o = {0};
	struct tenant t = tenant(SLUICE_SLOT_FIRST + 3);
	struct sluice_tenant_state st;
	struct sluice_bpf *b;
	struct admission *a = NULL;
	int fds[SLUICE_M_COUNT];
	uint64_t now = clock_mono_ns(), retry;
	char err[256];

	if (!test__require_root() || !xfx_require_kernel())
		return;
	b = sluice_bpf_load(NULL, err, sizeof(err));
	if (!ASSERT_OK_PTR(b, err))
		return;
	for (int i = 0; i < SLUICE_M_COUNT; i++)
		fds[i] = sluice_bpf_map_fd(b, i);
	a = admission_new(&o, fds, NULL);
	if (!ASSERT_OK_PTR(a, "new shared"))
		goto out;
	ASSERT_TRUE(admission_shared(a), "shared");
	ASSERT_EQ(admission_request(a, &t, NULL, NULL, now, &retry), ADMISSION_PASSED, "pass");
	/* what the daemon charged is what the map (and XDP, and sluicectl) sees */
	ASSERT_OK(bpf_map_lookup_elem(fds[SLUICE_M_TENANT_STATE], &t.slot, &st), "lookup");
	ASSERT_EQ(st.tat[SLUICE_LIMIT_REQ], now + SEC / 10, "tat in the map");
	/* and a tat written through the map is what the daemon decides on */
	st.tat[SLUICE_LIMIT_REQ] = now + 10 * SEC;
	ASSERT_OK(bpf_map_update_elem(fds[SLUICE_M_TENANT_STATE], &t.slot, &st, 0), "update");
	ASSERT_EQ(admission_request(a, &t, NULL, NULL, now, &retry), ADMISSION_REJECTED, "map tat");
out:
	admission_free(a);
	sluice_bpf_free(b);
}

static const char tenants_text[] =
    "[acme]\nreq_rate = 1\nreq_burst = 1\nsource = 203.0.113.7\nsource = 10.0.0.0/8\n"
    "[beta]\nsource = 10.1.2.3\n";

static struct sluice_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return (struct sluice_addr){
	    .a = {[10] = 0xff, [11] = 0xff, [12] = a, [13] = b, [14] = c, [15] = d}};
}

/* Two rejected requests of acme from peer at now (its one credit is spent; each crossing
 * restarts the streak): they cross deny_after = 2. Whether peer is denied afterwards. */
static bool cross(struct admission *a, const struct tenant *acme, const struct tenants *all,
		  struct sluice_addr peer, uint64_t now)
{
	uint64_t retry;

	for (int i = 0; i < 2; i++)
		admission_request(a, acme, all, &peer, now, &retry);
	return admission_denied(a, &peer, now);
}

/* issue 12: --deny-after denied whichever address crossed the threshold, so one tenant
 * behind a NAT or load balancer got everyone on it denied. Only a source that is the
 * tenant's alone is denied now. */
static void subtest_deny_owner(void)
{
	struct admission_opts o = {.deny_after = 2, .deny_secs = 60};
	struct admission *a = admission_new(&o, NULL, "test");
	char path[512], err[256];
	struct tenants *all = NULL;
	const struct tenant *acme, *beta;
	uint64_t now = 1000 * SEC, retry;
	struct sluice_addr nat = v4(198, 51, 100, 1), old_nat = v4(198, 51, 100, 3);
	FILE *f;

	snprintf(path, sizeof(path), "%s/tenants.ini", test__tmpdir());
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "tenants file") || !ASSERT_OK_PTR(a, "new"))
		goto out;
	fputs(tenants_text, f);
	fclose(f);
	all = tenants_load(path, NULL, err, sizeof(err));
	if (!ASSERT_OK_PTR(all, err))
		goto out;
	acme = tenants_at(all, 0);
	beta = tenants_at(all, 1);
	admission_request(a, acme, all, NULL, now, &retry); /* acme's one credit */
	ASSERT_TRUE(cross(a, acme, all, v4(203, 0, 113, 7), now), "its own address: denied");
	ASSERT_TRUE(cross(a, acme, all, v4(10, 9, 9, 9), now), "in its own prefix: denied");
	ASSERT_FALSE(cross(a, acme, all, v4(10, 1, 2, 3), now),
		     "beta's address inside acme's prefix: spared");
	ASSERT_TRUE(cross(a, acme, all, v4(198, 51, 100, 2), now),
		    "unlisted, only acme used it: denied");
	admission_request(a, beta, all, &nat, now, &retry);
	ASSERT_FALSE(cross(a, acme, all, nat, now), "unlisted, beta used it too: spared");
	admission_request(a, acme, all, NULL, now + 9 * 60 * SEC, &retry); /* its credit again */
	ASSERT_FALSE(cross(a, acme, all, nat, now + 9 * 60 * SEC), "still shared 9 min on");
	admission_request(a, beta, all, &old_nat, now - 11 * 60 * SEC, &retry);
	ASSERT_TRUE(cross(a, acme, all, old_nat, now), "beta's use 11 min ago has expired");
	ASSERT_EQ(admission_denials(a), 4, "four denied");
	ASSERT_EQ(admission_spared(a), 3, "three spared");
out:
	tenants_put(all);
	admission_free(a);
}

void test_admission(void)
{
	if (test__start_subtest("userspace"))
		subtest_userspace();
	if (test__start_subtest("dry_run"))
		subtest_dry_run();
	if (test__start_subtest("shared_bpf"))
		subtest_shared_bpf();
	if (test__start_subtest("deny_owner"))
		subtest_deny_owner();
}
