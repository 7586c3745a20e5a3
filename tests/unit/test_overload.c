// SPDX-License-Identifier: MIT
/* test_overload.c -- the overload controller's states, hysteresis, flapping guard, manual mode */
#include "control/overload.h"
#include "test_progs.h"

#define MS  1000000ULL
#define SEC 1000000000ULL

static struct overload_config cfg_ms(void)
{
	struct overload_config c;

	overload_config_default(&c);
	c.period_ns = 10 * MS;
	c.thin_lag_ns = 300 * MS;
	c.emergency_lag_ns = 600 * MS;
	c.hold_ns = 200 * MS;
	return c;
}

static enum overload_state feed(struct overload *o, uint64_t now, uint64_t crit, uint64_t norm,
				bool *changed)
{
	struct overload_sample s = {.now_ns = now, .lag_ns = {crit, norm, 0}};

	return overload_step(o, &s, changed);
}

static void subtest_escalate_and_recover(void)
{
	struct overload_config c = cfg_ms();
	struct overload o;
	bool ch;
	uint64_t t = SEC;

	overload_init(&o, &c, t);
	ASSERT_EQ(feed(&o, t += 10 * MS, 0, 100 * MS, &ch), OVERLOAD_NORMAL, "under thin");
	ASSERT_FALSE(ch, "no change");
	ASSERT_EQ(feed(&o, t += 10 * MS, 0, 301 * MS, &ch), OVERLOAD_THIN, "normal lag > thin");
	ASSERT_TRUE(ch, "changed");
	ASSERT_HAS_STR(o.reason, "lag_normal_ms=301", "reason carries the measurement");
	ASSERT_EQ(feed(&o, t += 10 * MS, 601 * MS, 400 * MS, &ch), OVERLOAD_EMERGENCY,
		  "critical lag > emergency");
	/* critical back under half, normal still high: emergency holds for hold_ns, then
	 * steps down to THIN only (normal lag still calls for it) */
	/* the first calm sample starts the window; 20 more span 200 ms */
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(feed(&o, t += 10 * MS, 100 * MS, 400 * MS, &ch), OVERLOAD_EMERGENCY,
			  "held in emergency");
	ASSERT_EQ(feed(&o, t += 10 * MS, 100 * MS, 400 * MS, &ch), OVERLOAD_THIN,
		  "down to thin after hold");
	ASSERT_TRUE(ch, "changed");
	/* both calm: thin -> normal after another hold */
	for (int i = 0; i < 20; i++)
		feed(&o, t += 10 * MS, 0, 100 * MS, &ch);
	ASSERT_EQ(o.state, OVERLOAD_THIN, "still thin just before hold");
	ASSERT_EQ(feed(&o, t += 10 * MS, 0, 100 * MS, &ch), OVERLOAD_NORMAL, "normal");
	ASSERT_EQ(o.transitions[OVERLOAD_NORMAL][OVERLOAD_THIN], 1, "count n->t");
	ASSERT_EQ(o.transitions[OVERLOAD_THIN][OVERLOAD_EMERGENCY], 1, "count t->e");
	ASSERT_EQ(o.transitions[OVERLOAD_EMERGENCY][OVERLOAD_THIN], 1, "count e->t");
	ASSERT_EQ(o.transitions[OVERLOAD_THIN][OVERLOAD_NORMAL], 1, "count t->n");
}

static void subtest_emergency_straight_to_normal(void)
{
	struct overload_config c = cfg_ms();
	struct overload o;
	bool ch;
	uint64_t t = SEC;

	overload_init(&o, &c, t);
	ASSERT_EQ(feed(&o, t += 10 * MS, 700 * MS, 0, &ch), OVERLOAD_EMERGENCY, "jump up");
	for (int i = 0; i < 20; i++)
		feed(&o, t += 10 * MS, 0, 0, &ch);
	ASSERT_EQ(o.state, OVERLOAD_EMERGENCY, "190 ms of calm is not yet the hold");
	feed(&o, t += 10 * MS, 0, 0, &ch);
	ASSERT_EQ(o.state, OVERLOAD_NORMAL, "all calm for the hold: straight to normal");
}

static void subtest_between_half_and_threshold_holds(void)
{
	struct overload_config c = cfg_ms();
	struct overload o;
	bool ch;
	uint64_t t = SEC;

	overload_init(&o, &c, t);
	feed(&o, t += 10 * MS, 0, 400 * MS, &ch);
	/* 200 ms lag: under the 300 ms threshold but over half of it: no recovery ever */
	for (int i = 0; i < 200; i++)
		feed(&o, t += 10 * MS, 0, 200 * MS, &ch);
	ASSERT_EQ(o.state, OVERLOAD_THIN, "hysteresis band keeps thin");
}

/* Feed n samples of normal-class lag hot_ms for `hot` of every `period` samples (else
 * 50 ms); count state changes and the shortest time from entering THIN to leaving it. */
static int swing(struct overload *o, uint64_t *t, int n, int period, int hot, uint64_t *min_gap)
{
	uint64_t last_change = 0;
	int changes = 0;
	bool ch;

	for (int i = 0; i < n; i++) {
		uint64_t lag = (i % period) >= period - hot ? 350 * MS : 50 * MS;

		feed(o, *t += 10 * MS, 0, lag, &ch);
		if (!ch)
			continue;
		if (last_change && o->state == OVERLOAD_NORMAL && *t - last_change < *min_gap)
			*min_gap = *t - last_change;
		last_change = *t;
		changes++;
	}
	return changes;
}

static void subtest_flapping_guard(void)
{
	struct overload_config c = cfg_ms();
	struct overload o;
	uint64_t t = SEC, min_gap = ~0ULL;
	int changes;

	/* lag swinging 50 ms <-> 350 ms around the 300 ms threshold every 40 ms */
	overload_init(&o, &c, t);
	changes = swing(&o, &t, 500, 8, 4, &min_gap);
	ASSERT_LE(changes, 1, "oscillation never stays calm for a hold: entered thin once");
	ASSERT_EQ(o.state, OVERLOAD_THIN, "stays thin");

	/* slower swing: 300 ms calm, 100 ms hot -> steps down only after full holds */
	overload_init(&o, &c, t);
	changes = swing(&o, &t, 1000, 40, 10, &min_gap);
	ASSERT_GT(changes, 2, "it does change state");
	ASSERT_GE(min_gap, c.hold_ns, "never steps down faster than the hold time");
}

static void subtest_manual_override(void)
{
	struct overload_config c = cfg_ms();
	struct overload o;
	bool ch;
	uint64_t t = SEC;

	overload_init(&o, &c, t);
	overload_set_manual(&o, true, OVERLOAD_EMERGENCY, t);
	ASSERT_EQ(o.state, OVERLOAD_EMERGENCY, "operator level");
	for (int i = 0; i < 100; i++)
		feed(&o, t += 10 * MS, 0, 0, &ch);
	ASSERT_EQ(o.state, OVERLOAD_EMERGENCY, "controller does not override manual");
	overload_set_manual(&o, false, OVERLOAD_NORMAL, t);
	for (int i = 0; i < 21; i++)
		feed(&o, t += 10 * MS, 0, 0, &ch);
	ASSERT_EQ(o.state, OVERLOAD_NORMAL, "auto resumes from measurements");
}

static void subtest_actions(void)
{
	struct overload_config c = cfg_ms();
	struct overload_actions a;

	overload_actions_for(&c, OVERLOAD_NORMAL, &a);
	ASSERT_FALSE(a.skip_optional || a.pause_low || a.alert, "normal does nothing");
	overload_actions_for(&c, OVERLOAD_THIN, &a);
	ASSERT_TRUE(a.skip_optional && a.pause_low, "thin skips optional, pauses low");
	ASSERT_EQ(a.low_refuse_permille, 0, "thin refuses nothing");
	ASSERT_EQ(a.xdp_level, SLUICE_SHED_THIN, "xdp level thin");
	overload_actions_for(&c, OVERLOAD_EMERGENCY, &a);
	ASSERT_EQ(a.low_refuse_permille, 500, "emergency refuses half of low");
	ASSERT_EQ(a.sheddable_drop_permille, 500, "and samples sheddable");
	ASSERT_EQ(a.xdp_permille[SLUICE_CLASS_LOW], 500, "xdp low permille");
	ASSERT_EQ(a.xdp_permille[SLUICE_CLASS_CRITICAL], 0, "critical never shed");
	ASSERT_TRUE(a.alert, "alert");
	c.dry_run = true;
	overload_actions_for(&c, OVERLOAD_EMERGENCY, &a);
	ASSERT_FALSE(a.alert || a.low_refuse_permille || a.xdp_level, "dry-run applies nothing");
}

static void subtest_config_check(void)
{
	struct overload_config c = cfg_ms();
	char err[128];

	ASSERT_OK(overload_config_check(&c, err, sizeof(err)), "defaults ok");
	c.xdp_low_permille = 1001;
	ASSERT_EQ(overload_config_check(&c, err, sizeof(err)), -EINVAL, "permille > 1000");
	ASSERT_HAS_STR(err, "permille", "names it");
	c = cfg_ms();
	c.period_ns = 0;
	ASSERT_EQ(overload_config_check(&c, err, sizeof(err)), -EINVAL, "zero period");
}

void test_overload(void)
{
	if (test__start_subtest("escalate_and_recover"))
		subtest_escalate_and_recover();
	if (test__start_subtest("emergency_straight_to_normal"))
		subtest_emergency_straight_to_normal();
	if (test__start_subtest("hysteresis_band"))
		subtest_between_half_and_threshold_holds();
	if (test__start_subtest("flapping_guard"))
		subtest_flapping_guard();
	if (test__start_subtest("manual_override"))
		subtest_manual_override();
	if (test__start_subtest("actions"))
		subtest_actions();
	if (test__start_subtest("config_check"))
		subtest_config_check();
}
