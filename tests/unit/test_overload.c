// SPDX-License-Identifier: MIT
/* test_overload.c -- the overload controller's states, hysteresis, flapping guard, manual mode,
 * the EMERGENCY step-down check, and a closed loop of controller and dispatcher on a fake clock */
#include <stdlib.h>

#include "control/overload.h"
#include "work/dispatch.h"
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
	ASSERT_HAS_STR(o.measured, "lag_normal_ms=301", "reason carries the measurement");
	ASSERT_EQ(feed(&o, t += 10 * MS, 601 * MS, 400 * MS, &ch), OVERLOAD_EMERGENCY,
		  "critical lag > emergency");
	/* critical back under half, normal still high: emergency holds for the step-down window
	 * (OVERLOAD_STEPDOWN_HOLDS holds), then steps down to THIN only (normal lag still calls
	 * for it); the first calm sample starts the window, 20 more span one 200 ms hold */
	for (int i = 0; i < 20 * OVERLOAD_STEPDOWN_HOLDS; i++)
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
	ASSERT_EQ(a.share[0] * 100 + a.share[1] * 10 + a.share[2], 70 * 100 + 25 * 10 + 5,
		  "thin shares 70/25/5");
	overload_actions_for(&c, OVERLOAD_EMERGENCY, &a);
	ASSERT_EQ(a.share[0], 100, "emergency: critical first");
	ASSERT_EQ(a.share[1] + a.share[2], 0, "normal and low get what critical leaves");
	ASSERT_TRUE(a.pause_low, "low stays paused");
	ASSERT_EQ(a.low_refuse_permille, 500, "emergency refuses half of low");
	ASSERT_EQ(a.sheddable_drop_permille, 500, "and samples sheddable");
	ASSERT_EQ(a.xdp_permille[SLUICE_CLASS_LOW], 500, "xdp low permille");
	ASSERT_EQ(a.xdp_permille[SLUICE_CLASS_CRITICAL], 0, "critical never shed");
	ASSERT_TRUE(a.alert, "alert");
	c.dry_run = true;
	overload_actions_for(&c, OVERLOAD_EMERGENCY, &a);
	ASSERT_FALSE(a.alert || a.low_refuse_permille || a.xdp_level, "dry-run applies nothing");
	ASSERT_EQ(a.share[0], 70, "dry-run keeps the NORMAL shares");
}

static enum overload_state feed_d(struct overload *o, uint64_t now, uint64_t crit, uint64_t norm,
				  const uint64_t contended[3], bool *changed)
{
	struct overload_sample s = {.now_ns = now, .lag_ns = {crit, norm, 0}};

	memcpy(s.contended, contended, sizeof(s.contended));
	return overload_step(o, &s, changed);
}

/* In EMERGENCY, critical calm, normal still over half its threshold: while critical takes
 * 80 % of the contended pops (more than 90 % of THIN's 70 %) EMERGENCY holds, re-checked
 * every OVERLOAD_STEPDOWN_HOLDS holds; when its part falls to 30 % it steps down to THIN
 * (not NORMAL) within two such windows, then to NORMAL once normal is calm for a hold. */
static void subtest_emergency_held(void)
{
	struct overload_config c = cfg_ms();
	uint64_t t = SEC, cont[3] = {0};
	int window = OVERLOAD_STEPDOWN_HOLDS * 20; /* samples of 10 ms */
	struct overload o;
	bool ch;
	int n = 0;

	overload_init(&o, &c, t);
	ASSERT_EQ(feed_d(&o, t += 10 * MS, 700 * MS, 400 * MS, cont, &ch), OVERLOAD_EMERGENCY,
		  "critical over the threshold");
	for (int i = 0; i < 400; i++) { /* 4 s */
		cont[0] += 8, cont[1] += 2;
		if (feed_d(&o, t += 10 * MS, 10 * MS, 400 * MS, cont, &ch) != OVERLOAD_EMERGENCY)
			break;
	}
	ASSERT_EQ(o.state, OVERLOAD_EMERGENCY, "held while critical needs more than THIN gives");
	ASSERT_GE(o.stepdowns_held, 400 / (window + 1), "looked again every window");
	ASSERT_LE(o.stepdowns_held, 400 / window, "and no more often");
	ASSERT_EQ(o.critical_permille, 800, "critical's part measured");
	ASSERT_HAS_STR(o.why, "emergency held", "why says so");
	ASSERT_HAS_STR(o.measured, "critical_contended_permille=800", "and logs the part");
	do {
		cont[0] += 3, cont[1] += 7;
		feed_d(&o, t += 10 * MS, 10 * MS, 400 * MS, cont, &ch);
	} while (!ch && ++n < 1000);
	ASSERT_EQ(o.state, OVERLOAD_THIN, "critical at 30 %: down to THIN (normal still lags)");
	ASSERT_LE(n, 2 * window + 1, "within two windows of the load change");
	for (n = 0; n < 100 && o.state == OVERLOAD_THIN; n++) {
		cont[0] += 3, cont[1] += 7;
		feed_d(&o, t += 10 * MS, 10 * MS, 100 * MS, cont, &ch);
	}
	ASSERT_EQ(o.state, OVERLOAD_NORMAL, "then NORMAL after a calm hold");
	ASSERT_LE(n, 21, "one hold");
	ASSERT_EQ(o.transitions[OVERLOAD_THIN][OVERLOAD_EMERGENCY] +
		      o.transitions[OVERLOAD_NORMAL][OVERLOAD_EMERGENCY],
		  1, "one EMERGENCY episode");
	ASSERT_EQ(o.transitions[OVERLOAD_EMERGENCY][OVERLOAD_THIN], 1, "left it once");
}

/* Every lag calm in EMERGENCY: nothing competes with critical, so it steps down straight to
 * NORMAL after one hold even though critical takes 80 % of the dispatches. */
static void subtest_emergency_all_calm(void)
{
	struct overload_config c = cfg_ms();
	uint64_t t = SEC, disp[3] = {0};
	struct overload o;
	bool ch;

	overload_init(&o, &c, t);
	feed_d(&o, t += 10 * MS, 700 * MS, 0, disp, &ch);
	for (int i = 0; i < 21; i++) {
		disp[0] += 8, disp[1] += 2;
		feed_d(&o, t += 10 * MS, 0, 10 * MS, disp, &ch);
	}
	ASSERT_EQ(o.state, OVERLOAD_NORMAL, "all calm for the hold: NORMAL");
	ASSERT_EQ(o.stepdowns_held, 0, "nothing held");
}

/* ---- controller + dispatchers on a fake clock ----------------------------------------- */

#define LOOP_CAP   1000 /* ai pool pops per second: one per ms */
#define LOOP_CRIT  800	/* critical arrivals per second (80 % of the pool) */
#define LOOP_NORM  600	/* normal arrivals per second (60 %) */
#define LOOP_LOAD  15000
#define LOOP_TOTAL 30000

/* Two pools as the worker has them: every event is stored first (db: takes everything ready
 * each ms, never short) and then called (ai: one pop per ms, the bottleneck). */
struct loop_pools {
	struct dispatch db, ai;
	unsigned mask;
};

struct loop {
	int emergencies, thins;
	uint64_t t_emerg, t_clear, backlog, normal_lag_emerg, normal_lag_end, crit_lag_end;
	uint64_t crit_lag_after_clear, pushed, popped, left;
	enum overload_state end;
};

/* One ms: arrivals (4 critical and 3 normal every 5 ms) into db, db hands all it has to ai,
 * ai pops one. */
static void loop_ms(struct loop_pools *lp, uint64_t t_ms, struct loop *r)
{
	uint64_t now = t_ms * MS;
	struct queue_entry *e;

	if (t_ms <= LOOP_LOAD) {
		bool crit = t_ms % 5 != 0, norm = t_ms % 5 == 0 || t_ms % 5 == 2 || t_ms % 5 == 4;

		for (int k = 0; k < 2; k++) {
			if (!(k ? norm : crit))
				continue;
			e = calloc(1, sizeof(*e));
			*e = (struct queue_entry){.class = k ? 1 : 0, .tenant = 1, .enq_ns = now};
			dispatch_push(&lp->db, e, now);
			r->pushed++;
		}
	}
	while ((e = dispatch_pop(&lp->db, now, lp->mask)))
		dispatch_push(&lp->ai, e, now);
	e = dispatch_pop(&lp->ai, now, lp->mask);
	if (e)
		r->popped++;
	free(e);
}

/* The controller's period: sample both pools like worker_get_stats (largest lag, summed
 * depth and contended pops), step, apply the actions to both like worker_apply. */
static void loop_control(struct overload *o, struct loop_pools *lp, uint64_t now, struct loop *r)
{
	struct overload_sample s = {.now_ns = now};
	enum overload_state before = o->state;
	struct overload_actions a;
	struct dispatch_stats st[2];
	bool ch;

	dispatch_stats(&lp->db, now, &st[0]);
	dispatch_stats(&lp->ai, now, &st[1]);
	for (int p = 0; p < 2; p++) {
		for (int c = 0; c < 3; c++) {
			if (st[p].cls[c].lag_ns > s.lag_ns[c])
				s.lag_ns[c] = st[p].cls[c].lag_ns;
			s.depth[c] += st[p].cls[c].depth;
			s.contended[c] += st[p].cls[c].contended;
		}
	}
	overload_step(o, &s, &ch);
	overload_actions_for(&o->cfg, o->state, &a);
	dispatch_set_weights(&lp->db, a.share);
	dispatch_set_weights(&lp->ai, a.share);
	lp->mask = a.pause_low ? DISPATCH_ALL_CLASSES & ~4u : DISPATCH_ALL_CLASSES;
	if (o->state == OVERLOAD_EMERGENCY && before != OVERLOAD_EMERGENCY && !r->emergencies++) {
		r->t_emerg = now;
		r->backlog = s.depth[0];
		r->normal_lag_emerg = s.lag_ns[1];
	}
	r->thins += o->state == OVERLOAD_THIN && before != OVERLOAD_THIN;
	if (r->t_emerg && !r->t_clear && s.lag_ns[0] <= o->cfg.period_ns)
		r->t_clear = now;
	else if (r->t_clear && now <= LOOP_LOAD * MS && s.lag_ns[0] > r->crit_lag_after_clear)
		r->crit_lag_after_clear = s.lag_ns[0];
	if (now == LOOP_LOAD * MS) {
		r->normal_lag_end = s.lag_ns[1];
		r->crit_lag_end = s.lag_ns[0];
	}
}

static void closed_loop(const struct overload_config *c, uint64_t normal_max_wait, struct loop *r)
{
	struct dispatch_cfg dc = {.max_wait_ns = {0, normal_max_wait, 0}};
	struct loop_pools lp = {.mask = DISPATCH_ALL_CLASSES};
	struct queue_entry *e;
	struct overload o;

	memset(r, 0, sizeof(*r));
	memcpy(dc.weight, c->shares[OVERLOAD_NORMAL], sizeof(dc.weight));
	overload_init(&o, c, 0);
	if (!ASSERT_OK(dispatch_init(&lp.db, &dc), "db") ||
	    !ASSERT_OK(dispatch_init(&lp.ai, &dc), "ai"))
		return;
	for (uint64_t t = 1; t <= LOOP_TOTAL; t++) {
		loop_ms(&lp, t, r);
		if (t % (c->period_ns / MS) == 0)
			loop_control(&o, &lp, t * MS, r);
	}
	r->end = o.state;
	r->left = dispatch_count(&lp.db) + dispatch_count(&lp.ai);
	while ((e = dispatch_take_any(&lp.db)) || (e = dispatch_take_any(&lp.ai)))
		free(e);
	dispatch_fini(&lp.db);
	dispatch_fini(&lp.ai);
}

/* One bottleneck pool (behind a fast one), critical at 80 % and normal at 60 % of its
 * capacity for 15 s, then nothing.
 * With EMERGENCY's 100/0/0 the critical lag clears within backlog / (capacity - critical
 * rate - normal's aging trickle) + one period and stays clear; one EMERGENCY episode; normal
 * lag grows meanwhile and everything drains after the load. With EMERGENCY at THIN's
 * 70/25/5 (before issue 19) critical lag keeps growing. */
static void subtest_closed_loop(void)
{
	struct overload_config c = cfg_ms(); /* period 10 ms, thin 300, emergency 600, hold 200 */
	uint64_t aging = 100 * MS, bound;
	struct loop r;

	closed_loop(&c, aging, &r);
	bound = r.backlog * SEC / (LOOP_CAP - LOOP_CRIT - SEC / aging) + c.period_ns;
	printf("closed loop: EMERGENCY at %llu ms with %llu critical waiting, normal lag %llu ms; "
	       "critical clear at %llu ms (%llu ms later, bound %llu ms), worst lag after %llu ms; "
	       "at load end normal lag %llu ms; end state %s, %llu left, %llu/%llu popped\n",
	       (unsigned long long)(r.t_emerg / MS), (unsigned long long)r.backlog,
	       (unsigned long long)(r.normal_lag_emerg / MS), (unsigned long long)(r.t_clear / MS),
	       (unsigned long long)((r.t_clear - r.t_emerg) / MS), (unsigned long long)(bound / MS),
	       (unsigned long long)(r.crit_lag_after_clear / MS),
	       (unsigned long long)(r.normal_lag_end / MS), overload_state_name(r.end),
	       (unsigned long long)r.left, (unsigned long long)r.popped,
	       (unsigned long long)r.pushed);
	ASSERT_EQ(r.emergencies, 1, "one EMERGENCY episode");
	ASSERT_GT(r.t_clear, r.t_emerg, "critical lag cleared");
	ASSERT_LE(r.t_clear - r.t_emerg, bound, "within backlog / spare capacity + a period");
	ASSERT_LE(r.crit_lag_after_clear, c.period_ns, "and stayed clear under the load");
	ASSERT_GT(r.normal_lag_end, 2 * r.normal_lag_emerg, "normal lag grew meanwhile");
	ASSERT_EQ(r.end, OVERLOAD_NORMAL, "NORMAL after the load");
	ASSERT_EQ(r.left, 0, "drained");
	ASSERT_EQ(r.popped, r.pushed, "nothing lost");

	memcpy(c.shares[OVERLOAD_EMERGENCY], c.shares[OVERLOAD_THIN], sizeof(c.shares[0]));
	closed_loop(&c, aging, &r);
	printf("closed loop, EMERGENCY at 70/25/5: critical lag at load end %llu ms\n",
	       (unsigned long long)(r.crit_lag_end / MS));
	ASSERT_GT(r.crit_lag_end, c.emergency_lag_ns, "without the shares critical never recovers");
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
	c = cfg_ms();
	c.shares[OVERLOAD_THIN][2] = 10;
	ASSERT_EQ(overload_config_check(&c, err, sizeof(err)), -EINVAL, "shares over 100");
	ASSERT_HAS_STR(err, "--shares-thin critical=70,normal=25,low=10: shares add up to 105",
		       "names the flag and the value");
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
	if (test__start_subtest("emergency_held"))
		subtest_emergency_held();
	if (test__start_subtest("emergency_all_calm"))
		subtest_emergency_all_calm();
	if (test__start_subtest("closed_loop_one_episode"))
		subtest_closed_loop();
}
