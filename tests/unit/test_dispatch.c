// SPDX-License-Identifier: MIT
/* test_dispatch.c -- hierarchical dispatch with a fake clock: FIFO, DRR fairness under a
 * 100x tenant, class weights, the aging bound, retries with a not-before time, class masks,
 * and the overload controller's class shares per state (weights swapped at run time) */
#include <stdlib.h>

#include "control/overload.h"
#include "work/dispatch.h"
#include "test_progs.h"

#define MS 1000000ull

/* A recycling pool of entries so long runs stay small in memory. */
struct epool {
	struct queue_entry *free;
	uint64_t seq;
};

static struct queue_entry *mk(struct epool *p, uint32_t class, uint32_t tenant, uint64_t now)
{
	struct queue_entry *e = p->free;

	if (e)
		p->free = e->next;
	else
		e = malloc(sizeof(*e));
	*e = (struct queue_entry){.class = class, .tenant = tenant, .enq_ns = now, .id = ++p->seq};
	return e;
}

static void put(struct epool *p, struct queue_entry *e)
{
	e->next = p->free;
	p->free = e;
}

static void epool_fini(struct epool *p, struct dispatch *d)
{
	struct queue_entry *e;

	while ((e = dispatch_take_any(d)))
		put(p, e);
	while ((e = p->free)) {
		p->free = e->next;
		free(e);
	}
	dispatch_fini(d);
}

static void subtest_fifo(void)
{
	struct dispatch d;
	struct epool p = {0};
	struct queue_entry *e;
	uint64_t last[2] = {0, 0};
	int n = 0;

	ASSERT_OK(dispatch_init(&d, NULL), "init");
	for (int i = 0; i < 100; i++)
		ASSERT_OK(dispatch_push(&d, mk(&p, 1, i % 2, 1000 + i), 1000 + i), "push");
	while ((e = dispatch_pop(&d, 5000, DISPATCH_ALL_CLASSES))) {
		ASSERT_GT(e->id, last[e->tenant], "FIFO within tenant");
		last[e->tenant] = e->id;
		put(&p, e);
		n++;
	}
	ASSERT_EQ(n, 100, "all dispatched");
	ASSERT_EQ(dispatch_count(&d), 0, "empty");
	e = mk(&p, 5, 0, 0);
	ASSERT_EQ(dispatch_push(&d, e, 0), -EINVAL, "bad class refused");
	put(&p, e);
	epool_fini(&p, &d);
}

/* 5 tenants in one class, 20 dispatches per tick; tenant 0 offers 100x the others (500 vs
 * 5 per tick, its backlog capped to bound memory), so everyone is backlogged and the fair
 * share is 1/5 each. */
static void subtest_drr_fairness(void)
{
	struct dispatch d;
	struct epool p = {0};
	uint64_t served[5] = {0}, backlog[5] = {0}, offered[5] = {0}, now = 0;
	int total = 0;

	ASSERT_OK(dispatch_init(&d, NULL), "init");
	while (total < 100000) {
		now += MS;
		for (uint32_t t = 0; t < 5; t++) {
			int arrivals = t ? 5 : 500;

			offered[t] += arrivals;
			for (int k = 0; k < arrivals && backlog[t] < 20000; k++, backlog[t]++)
				dispatch_push(&d, mk(&p, 1, t, now), now);
		}
		for (int k = 0; k < 20; k++, total++) {
			struct queue_entry *e = dispatch_pop(&d, now, DISPATCH_ALL_CLASSES);

			if (!ASSERT_OK_PTR(e, "backlogged"))
				goto out;
			served[e->tenant]++;
			backlog[e->tenant]--;
			put(&p, e);
		}
	}
	ASSERT_GT(offered[0], 90 * offered[1], "tenant 0 offered ~100x the load");
	for (int t = 0; t < 5; t++)
		ASSERT_NEAR_PCT(served[t], total / 5, 5, "share within 5% of fair");
out:
	epool_fini(&p, &d);
}

/* The same hot tenant while the others are light (1 per tick each): they are served at
 * their full rate and never wait behind the hot backlog for more than a tick. */
static void subtest_drr_light_tenants_wait_little(void)
{
	struct dispatch d;
	struct epool p = {0};
	uint64_t now = 0, worst = 0, hot_backlog = 0, light_served = 0;

	ASSERT_OK(dispatch_init(&d, NULL), "init");
	for (int tick = 0; tick < 2000; tick++) {
		now += MS;
		for (int k = 0; k < 100 && hot_backlog < 5000; k++, hot_backlog++)
			dispatch_push(&d, mk(&p, 1, 0, now), now);
		for (uint32_t t = 1; t <= 9; t++)
			dispatch_push(&d, mk(&p, 1, t, now), now);
		for (int k = 0; k < 20; k++) {
			struct queue_entry *e = dispatch_pop(&d, now, DISPATCH_ALL_CLASSES);

			if (!e)
				break;
			if (e->tenant) {
				light_served++;
				if (now - e->enq_ns > worst)
					worst = now - e->enq_ns;
			} else {
				hot_backlog--;
			}
			put(&p, e);
		}
	}
	ASSERT_GE(light_served, 2000 * 9 - 9, "light tenants fully served");
	ASSERT_LE(worst, 1 * MS, "light tenants wait at most one tick");
	epool_fini(&p, &d);
}

static void subtest_class_weights(void)
{
	struct dispatch d;
	struct epool p = {0};
	uint64_t served[3] = {0};

	ASSERT_OK(dispatch_init(&d, NULL), "init 70/25/5");
	for (uint32_t c = 0; c < 3; c++)
		for (int i = 0; i < 1000; i++)
			dispatch_push(&d, mk(&p, c, i % 7, 0), 0);
	for (int i = 0; i < 100000; i++) {
		struct queue_entry *e = dispatch_pop(&d, 0, DISPATCH_ALL_CLASSES);

		served[e->class]++;
		e->id = 0;
		dispatch_push(&d, e, 0); /* keep every class backlogged */
	}
	ASSERT_NEAR_PCT(served[0], 70000, 1, "critical 70%");
	ASSERT_NEAR_PCT(served[1], 25000, 1, "normal 25%");
	ASSERT_NEAR_PCT(served[2], 5000, 1, "low 5%");
	epool_fini(&p, &d);
}

/* Sustained critical load; low has weight 0 (only aging can serve it) or its default 5 %
 * share with a tighter bound than that share gives. The gap between low dispatches never
 * exceeds the bound plus one pop's time step. */
static void aging_run(const struct dispatch_cfg *cfg, uint64_t bound, const char *what)
{
	struct dispatch d;
	struct epool p = {0};
	uint64_t now = 0, last_low = 0, worst = 0, lows = 0;

	ASSERT_OK(dispatch_init(&d, cfg), "init");
	for (int i = 0; i < 5000; i++)
		dispatch_push(&d, mk(&p, 2, 9, 0), 0);
	for (int i = 0; i < 200000; i++) {
		struct queue_entry *e;

		now += MS / 10; /* one pop every 100 us */
		for (int k = 0; k < 2; k++)
			dispatch_push(&d, mk(&p, 0, k, now), now); /* critical: 2x the pop rate */
		e = dispatch_pop(&d, now, DISPATCH_ALL_CLASSES);
		if (e->class == 2) {
			if (now - last_low > worst)
				worst = now - last_low;
			last_low = now;
			lows++;
		}
		put(&p, e);
		/* drop part of the critical backlog now and then to bound memory */
		while (d.cls[0].depth > 10000 && (e = dispatch_pop(&d, now, 1u << 0)))
			put(&p, e);
	}
	ASSERT_GT(lows, 0, what);
	ASSERT_LE(worst, bound + MS / 10, what);
	epool_fini(&p, &d);
}

static void subtest_aging(void)
{
	struct dispatch_cfg only_aging = {.weight = {100, 10, 0}, .max_wait_ns = {0, 0, 50 * MS}};
	struct dispatch_cfg tight = {.weight = {70, 25, 5}, .max_wait_ns = {0, 0, MS}};

	aging_run(&only_aging, 50 * MS, "low weight 0: served every 50 ms by aging alone");
	aging_run(&tight, MS, "low at 5% (every 2 ms) with a 1 ms bound");
}

static void subtest_not_before(void)
{
	struct dispatch d;
	struct epool p = {0};
	struct queue_entry *e, *r;
	struct dispatch_stats st;

	ASSERT_OK(dispatch_init(&d, NULL), "init");
	r = mk(&p, 1, 1, 0);
	r->not_before_ns = 100 * MS;
	ASSERT_OK(dispatch_push(&d, r, 10 * MS), "park retry");
	dispatch_push(&d, mk(&p, 1, 1, 5 * MS), 10 * MS);
	ASSERT_EQ(dispatch_next_due(&d), 100 * MS, "next due");
	dispatch_stats(&d, 10 * MS, &st);
	ASSERT_EQ(st.cls[1].delayed, 1, "parked counted");
	ASSERT_EQ(st.cls[1].depth, 1, "ready counted");
	ASSERT_EQ(st.cls[1].lag_ns, 5 * MS, "lag = age of oldest ready");
	dispatch_stats(&d, 50 * MS, &st);
	ASSERT_EQ(st.cls[1].lag_ns, 45 * MS, "a parked retry is not lag");
	e = dispatch_pop(&d, 20 * MS, DISPATCH_ALL_CLASSES);
	ASSERT_TRUE(e && e != r, "the ready one goes first");
	if (e)
		put(&p, e);
	ASSERT_TRUE(dispatch_pop(&d, 99 * MS, DISPATCH_ALL_CLASSES) == NULL, "not before its time");
	e = dispatch_pop(&d, 100 * MS, DISPATCH_ALL_CLASSES);
	ASSERT_TRUE(e == r, "due at not_before");
	if (e)
		put(&p, e);
	ASSERT_EQ(dispatch_next_due(&d), UINT64_MAX, "nothing parked");
	/* received at 0, due at 200 ms: at 230 ms it has been due 30 ms, not 230 (issue 18) */
	r = mk(&p, 1, 1, 0);
	r->not_before_ns = 200 * MS;
	dispatch_push(&d, r, 150 * MS);
	ASSERT_TRUE(dispatch_pop(&d, 200 * MS, 0) == NULL, "due, moved to ready; class masked");
	dispatch_stats(&d, 230 * MS, &st);
	ASSERT_EQ(st.cls[1].lag_ns, 30 * MS, "lag counts from the retry's due time");
	e = dispatch_pop(&d, 230 * MS, DISPATCH_ALL_CLASSES);
	if (e)
		put(&p, e);
	epool_fini(&p, &d);
}

static void subtest_mask_and_tenant_weight(void)
{
	struct dispatch d;
	struct epool p = {0};
	struct queue_entry *e;
	uint64_t served[2] = {0};

	ASSERT_OK(dispatch_init(&d, NULL), "init");
	dispatch_push(&d, mk(&p, 2, 1, 0), 0);
	dispatch_push(&d, mk(&p, 1, 1, 0), 0);
	e = dispatch_pop(&d, 0, DISPATCH_ALL_CLASSES & ~(1u << 2));
	ASSERT_TRUE(e && e->class == 1, "low masked out");
	put(&p, e);
	ASSERT_TRUE(dispatch_pop(&d, 0, 1u << 0) == NULL, "only critical allowed: none");
	e = dispatch_pop(&d, 0, DISPATCH_ALL_CLASSES);
	ASSERT_TRUE(e && e->class == 2, "unmasked");
	put(&p, e);
	/* tenant 7 weighted 3: three times the share of tenant 8 */
	ASSERT_OK(dispatch_set_tenant_weight(&d, 1, 7, 3), "weight");
	ASSERT_EQ(dispatch_set_tenant_weight(&d, 1, 7, 0), -EINVAL, "weight 0 refused");
	for (int i = 0; i < 4000; i++) {
		dispatch_push(&d, mk(&p, 1, 7, 0), 0);
		dispatch_push(&d, mk(&p, 1, 8, 0), 0);
	}
	for (int i = 0; i < 4000; i++) {
		e = dispatch_pop(&d, 0, DISPATCH_ALL_CLASSES);
		served[e->tenant == 8]++;
		put(&p, e);
	}
	ASSERT_NEAR_PCT(served[0], 3000, 1, "weighted tenant 3/4");
	epool_fini(&p, &d);
}

/* Every class backlogged, each state's shares and pausing as the worker applies them
 * (overload_actions_for on the default config, weights swapped at run time): the service
 * split among the classes allowed to run follows the shares of those classes. */
static void subtest_shares_per_state(void)
{
	struct overload_config oc;
	struct dispatch d;
	struct epool p = {0};

	overload_config_default(&oc);
	ASSERT_OK(dispatch_init(&d, NULL), "init");
	for (uint32_t c = 0; c < 3; c++)
		for (int i = 0; i < 1000; i++)
			dispatch_push(&d, mk(&p, c, i % 7, 0), 0);
	for (int st = OVERLOAD_NORMAL; st < OVERLOAD_STATES; st++) {
		struct overload_actions a;
		uint64_t served[3] = {0}, sum = 0;
		unsigned mask = DISPATCH_ALL_CLASSES;

		overload_actions_for(&oc, st, &a);
		if (a.pause_low)
			mask &= ~(1u << 2);
		if (!ASSERT_OK(dispatch_set_weights(&d, a.share), overload_state_name(st)))
			break;
		for (int c = 0; c < 3; c++)
			sum += (mask >> c & 1) ? a.share[c] : 0;
		for (int i = 0; i < 100000; i++) {
			struct queue_entry *e = dispatch_pop(&d, 0, mask);

			served[e->class]++;
			dispatch_push(&d, e, 0); /* keep every class backlogged */
		}
		printf("%s shares %u/%u/%u%s: served %llu/%llu/%llu\n", overload_state_name(st),
		       a.share[0], a.share[1], a.share[2], a.pause_low ? " low paused" : "",
		       (unsigned long long)served[0], (unsigned long long)served[1],
		       (unsigned long long)served[2]);
		for (int c = 0; c < 3; c++) {
			uint64_t want = (mask >> c & 1) ? 100000 * a.share[c] / sum : 0;

			if (want)
				ASSERT_NEAR_PCT(served[c], want, 1, "share of a backlogged class");
			else
				ASSERT_EQ(served[c], 0,
					  "a class at 0 or paused gets nothing while "
					  "critical is backlogged");
		}
	}
	ASSERT_EQ(dispatch_set_weights(&d, (uint32_t[3]){0, 0, 0}), -EINVAL, "zero sum refused");
	ASSERT_EQ(d.cfg.weight[0], oc.shares[OVERLOAD_EMERGENCY][0], "weights kept on refusal");
	epool_fini(&p, &d);
}

/* EMERGENCY's 100/0/0 with critical arriving at 80 % of the pops and normal backlogged:
 * critical is served as it arrives (never waits more than one tick), normal gets the other
 * 20 % exactly, and with an aging bound on normal the split hardly moves. */
static void emergency_run(uint64_t normal_max_wait, uint64_t *normal_served, uint64_t *crit_wait)
{
	struct overload_config oc;
	struct dispatch_cfg cfg = {.max_wait_ns = {0, normal_max_wait, 0}};
	struct dispatch d;
	struct epool p = {0};
	uint64_t now = 0;

	overload_config_default(&oc);
	memcpy(cfg.weight, oc.shares[OVERLOAD_EMERGENCY], sizeof(cfg.weight));
	*normal_served = *crit_wait = 0;
	ASSERT_OK(dispatch_init(&d, &cfg), "init 100/0/0");
	for (int i = 0; i < 20000; i++)
		dispatch_push(&d, mk(&p, 1, i % 3, 0), 0);
	for (int tick = 0; tick < 10000; tick++) {
		now += MS; /* 5 pops per ms, 4 critical arrivals per ms */
		for (int k = 0; k < 4; k++)
			dispatch_push(&d, mk(&p, 0, k, now), now);
		for (int k = 0; k < 5; k++) {
			struct queue_entry *e = dispatch_pop(&d, now, DISPATCH_ALL_CLASSES & ~4u);

			if (e->class == 1)
				(*normal_served)++;
			else if (now - e->enq_ns > *crit_wait)
				*crit_wait = now - e->enq_ns;
			put(&p, e);
		}
	}
	epool_fini(&p, &d);
}

static void subtest_emergency_shares(void)
{
	uint64_t normal, crit_wait;

	emergency_run(0, &normal, &crit_wait);
	ASSERT_EQ(normal, 10000, "no aging: normal gets exactly the 20 % critical leaves");
	ASSERT_EQ(crit_wait, 0, "critical served in the tick it arrives");
	emergency_run(10 * MS, &normal, &crit_wait);
	printf("emergency with normal aging 10 ms: normal %llu of 50000 pops, critical waited "
	       "at most %llu us\n",
	       (unsigned long long)normal, (unsigned long long)(crit_wait / 1000));
	ASSERT_EQ(normal, 10000, "aging adds nothing when critical leaves normal room anyway");
	ASSERT_EQ(crit_wait, 0, "critical still served in its tick");
}

/* Critical arriving faster than the pops at 100/0/0: without aging normal is never served;
 * with a 10 ms bound it gets one pop per 10 ms (the bound) and no more. */
static void subtest_emergency_aging(void)
{
	struct dispatch_cfg cfg = {.weight = {100, 0, 0}, .max_wait_ns = {0, 10 * MS, 0}};

	for (int aging = 0; aging < 2; aging++) {
		struct dispatch d;
		struct epool p = {0};
		uint64_t now = 0, last = 0, worst = 0, normal = 0;

		cfg.max_wait_ns[1] = aging ? 10 * MS : 0;
		ASSERT_OK(dispatch_init(&d, &cfg), "init");
		for (int i = 0; i < 1000; i++)
			dispatch_push(&d, mk(&p, 1, 1, 0), 0);
		for (int i = 0; i < 100000; i++) { /* 10 s of one pop per 100 us */
			struct queue_entry *e;

			now += MS / 10;
			dispatch_push(&d, mk(&p, 0, 0, now), now);
			dispatch_push(&d, mk(&p, 0, 1, now), now);
			e = dispatch_pop(&d, now, DISPATCH_ALL_CLASSES);
			if (e->class == 1) {
				worst = now - last > worst ? now - last : worst;
				last = now;
				normal++;
			}
			put(&p, e);
			while (d.cls[0].depth > 10000 && (e = dispatch_pop(&d, now, 1u << 0)))
				put(&p, e);
		}
		if (!aging) {
			ASSERT_EQ(normal, 0,
				  "strict priority: normal waits while critical has work");
		} else {
			ASSERT_NEAR_PCT(normal, 1000, 1, "aging: one normal pop per 10 ms");
			ASSERT_LE(worst, 10 * MS + MS / 10, "gap at most the bound plus a pop");
		}
		epool_fini(&p, &d);
	}
}

/* A pop is contended when lower-class work (normal, low, within the mask) stays ready after
 * it: what the overload controller weighs critical's need by. */
static void subtest_contended(void)
{
	struct dispatch d;
	struct epool p = {0};
	struct queue_entry *e;
	struct dispatch_stats st;

	ASSERT_OK(dispatch_init(&d, &(struct dispatch_cfg){.weight = {100, 0, 0}}), "init");
	dispatch_push(&d, mk(&p, 1, 1, 0), 0);
	put(&p, dispatch_pop(&d, 0, DISPATCH_ALL_CLASSES));
	for (int i = 0; i < 2; i++) {
		dispatch_push(&d, mk(&p, 0, 1, 0), 0);
		dispatch_push(&d, mk(&p, 1, 1, 0), 0);
	}
	dispatch_push(&d, mk(&p, 2, 1, 0), 0);
	while ((e = dispatch_pop(&d, 0, DISPATCH_ALL_CLASSES & ~4u)))
		put(&p, e);
	dispatch_stats(&d, 0, &st);
	ASSERT_EQ(st.cls[1].dispatched, 3, "three normal pops");
	ASSERT_EQ(st.cls[1].contended, 1, "one left normal work waiting");
	ASSERT_EQ(st.cls[0].contended, 2, "both critical pops left normal waiting");
	ASSERT_EQ(st.cls[2].depth, 1, "low paused: its waiting entry does not count");
	epool_fini(&p, &d);
}

void test_dispatch(void)
{
	if (test__start_subtest("fifo"))
		subtest_fifo();
	if (test__start_subtest("drr_fairness_100x"))
		subtest_drr_fairness();
	if (test__start_subtest("drr_light_tenants"))
		subtest_drr_light_tenants_wait_little();
	if (test__start_subtest("class_weights"))
		subtest_class_weights();
	if (test__start_subtest("aging_bound"))
		subtest_aging();
	if (test__start_subtest("not_before"))
		subtest_not_before();
	if (test__start_subtest("mask_and_tenant_weight"))
		subtest_mask_and_tenant_weight();
	if (test__start_subtest("shares_per_state"))
		subtest_shares_per_state();
	if (test__start_subtest("emergency_shares"))
		subtest_emergency_shares();
	if (test__start_subtest("emergency_aging"))
		subtest_emergency_aging();
	if (test__start_subtest("contended"))
		subtest_contended();
}
