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
		ASSERT_EQ(admission_request(a, &t, &peer, now, &retry), ADMISSION_PASSED, "burst");
	ASSERT_EQ(admission_request(a, &t, &peer, now, &retry), ADMISSION_REJECTED, "over");
	ASSERT_EQ(retry, SEC / 10, "retry one interval");
	ASSERT_EQ(admission_request(a, &t, &peer, now + SEC / 10, &retry), ADMISSION_PASSED,
		  "after retry");
	ASSERT_EQ(admission_critical(a, &t, now), ADMISSION_PASSED, "crit credit");
	ASSERT_EQ(admission_critical(a, &t, now), ADMISSION_DEMOTED, "crit demoted");
	/* persistent rejects: the 4th in a row denies the source */
	ASSERT_FALSE(admission_denied(a, &peer, now), "not denied yet");
	for (int i = 0; i < 4; i++)
		admission_request(a, &t, &peer, now + SEC / 10, &retry);
	ASSERT_EQ(admission_denials(a), 1, "one denial");
	ASSERT_TRUE(admission_denied(a, &peer, now + SEC), "denied");
	ASSERT_FALSE(admission_denied(a, &peer, now + 6 * SEC), "deny expired");
	admission_reset_slot(a, t.slot);
	ASSERT_EQ(admission_request(a, &t, &peer, now, &retry), ADMISSION_PASSED, "reset slot");
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
		passed += admission_request(a, &t, NULL, now, &retry) == ADMISSION_PASSED_DRY_RUN;
	ASSERT_EQ(passed, 10, "dry run passes, uncharged");
	ASSERT_EQ(admission_critical(a, &t, now), ADMISSION_PASSED_DRY_RUN, "crit dry");
	admission_free(a);
	/* the rejected twin: a state already exhausted by a real run */
	o.dry_run = false;
	a = admission_new(&o, NULL, "test");
	for (int i = 0; i < 3; i++)
		admission_request(a, &t, NULL, now, &retry);
	admission_critical(a, &t, now);
	admission_set_dry_run(a, true);
	ASSERT_EQ(admission_request(a, &t, NULL, now, &retry), ADMISSION_REJECTED_DRY_RUN,
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
	ASSERT_EQ(admission_request(a, &t, NULL, now, &retry), ADMISSION_PASSED, "pass");
	/* what the daemon charged is what the map (and XDP, and sluicectl) sees */
	ASSERT_OK(bpf_map_lookup_elem(fds[SLUICE_M_TENANT_STATE], &t.slot, &st), "lookup");
	ASSERT_EQ(st.tat[SLUICE_LIMIT_REQ], now + SEC / 10, "tat in the map");
	/* and a tat written through the map is what the daemon decides on */
	st.tat[SLUICE_LIMIT_REQ] = now + 10 * SEC;
	ASSERT_OK(bpf_map_update_elem(fds[SLUICE_M_TENANT_STATE], &t.slot, &st, 0), "update");
	ASSERT_EQ(admission_request(a, &t, NULL, now, &retry), ADMISSION_REJECTED, "map tat");
out:
	admission_free(a);
	sluice_bpf_free(b);
}

void test_admission(void)
{
	if (test__start_subtest("userspace"))
		subtest_userspace();
	if (test__start_subtest("dry_run"))
		subtest_dry_run();
	if (test__start_subtest("shared_bpf"))
		subtest_shared_bpf();
}
