// SPDX-License-Identifier: MIT
/* overload.c -- the overload controller: NORMAL -> THIN -> EMERGENCY on queue lag, with hysteresis
 *
 * Shed on lag (age of the oldest waiting entry), not on queue length. Stepping up is
 * immediate: THIN when the normal class lags more than thin_lag, EMERGENCY when the
 * critical class lags more than emergency_lag. Stepping down needs calm: every sample for
 * hold_ns must have lags under half of the thresholds of the state being left; the state
 * then drops to the highest level any sample in that window still called for. So a load
 * oscillating around a threshold changes state at most once per hold time in each
 * direction, and one good sample never ends an emergency.
 *
 * Each state has its class shares. EMERGENCY gives critical the pools first (100/0/0 by
 * default), so its lag falls while normal's grows. Leaving EMERGENCY for THIN while normal
 * is backlogged would give critical its THIN share (70 %) back, and a critical load above
 * that share would climb over the threshold again within the same overload: a flap per
 * hold time. So the step-down to THIN also needs critical's part of what the bottleneck
 * pools dispatched during the calm window (under EMERGENCY that part is what critical
 * really takes, since it is served first) to fit in THIN's critical share with a margin
 * (OVERLOAD_STEPDOWN_HEADROOM_PCT), over a window of OVERLOAD_STEPDOWN_HOLDS hold times so
 * that one lull in critical arrivals does not pass for a lasting fall. If it does not fit,
 * EMERGENCY holds and the window starts again: one EMERGENCY episode per overload, ending
 * when critical's load falls or when every lag is calm (the backlog is gone: then no class
 * competes with critical and any share serves it). Measured in
 * tests/scenario/test_08_emergency_shares.c.
 *
 * Manual mode (an operator's `sluicectl shed set LEVEL`) pins the state; the controller
 * keeps sampling so `shed set auto` resumes from fresh measurements.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control/overload.h"

#define MS  1000000ULL
#define SEC 1000000000ULL

void overload_config_default(struct overload_config *cfg)
{
	*cfg = (struct overload_config){
	    .period_ns = 250 * MS,
	    .thin_lag_ns = 30 * SEC,
	    .emergency_lag_ns = 60 * SEC,
	    .hold_ns = 30 * SEC,
	    .low_refuse_permille = 500,
	    .sheddable_drop_permille = 500,
	    .xdp_low_permille = 500,
	    .shares = {{70, 25, 5}, {70, 25, 5}, {100, 0, 0}},
	};
}

const char *overload_shares_str(const uint32_t share[SLUICE_CLASS_MAX], char *buf, size_t len)
{
	snprintf(buf, len, "critical=%u,normal=%u,low=%u", share[SLUICE_CLASS_CRITICAL],
		 share[SLUICE_CLASS_NORMAL], share[SLUICE_CLASS_LOW]);
	return buf;
}

static int shares_check(const struct overload_config *cfg, char *err, size_t errlen)
{
	for (int st = 0; st < OVERLOAD_STATES; st++) {
		uint64_t sum = 0;
		char buf[64];

		for (int c = 0; c < SLUICE_CLASS_MAX; c++)
			sum += cfg->shares[st][c];
		if (sum == 100)
			continue;
		snprintf(err, errlen, "--shares-%s %s: shares add up to %llu (expected 100)",
			 overload_state_name(st),
			 overload_shares_str(cfg->shares[st], buf, sizeof(buf)),
			 (unsigned long long)sum);
		return -EINVAL;
	}
	return 0;
}

int overload_config_check(const struct overload_config *cfg, char *err, size_t errlen)
{
	if (!cfg->period_ns) {
		snprintf(err, errlen, "overload period: must be > 0 (e.g. 250ms)");
		return -EINVAL;
	}
	if (!cfg->thin_lag_ns || !cfg->emergency_lag_ns) {
		snprintf(err, errlen, "overload thresholds: thin and emergency lag must be > 0");
		return -EINVAL;
	}
	if (cfg->low_refuse_permille > 1000 || cfg->sheddable_drop_permille > 1000 ||
	    cfg->xdp_low_permille > 1000) {
		snprintf(err, errlen, "overload permille values: must be 0..1000");
		return -EINVAL;
	}
	return shares_check(cfg, err, errlen);
}

void overload_init(struct overload *o, const struct overload_config *cfg, uint64_t now_ns)
{
	memset(o, 0, sizeof(*o));
	o->cfg = *cfg;
	o->state = OVERLOAD_NORMAL;
	o->entered_ns = now_ns;
}

const char *overload_state_name(enum overload_state st)
{
	static const char *const names[] = {"normal", "thin", "emergency"};

	return st < OVERLOAD_STATES ? names[st] : "?";
}

/* The level the lags call for against thresholds divided by `div` (1: up, 2: calm). */
static enum overload_state level_for(const struct overload_config *c,
				     const struct overload_sample *s, uint64_t div)
{
	if (s->lag_ns[SLUICE_CLASS_CRITICAL] > c->emergency_lag_ns / div)
		return OVERLOAD_EMERGENCY;
	if (s->lag_ns[SLUICE_CLASS_NORMAL] > c->thin_lag_ns / div)
		return OVERLOAD_THIN;
	return OVERLOAD_NORMAL;
}

static void describe(struct overload *o, const struct overload_sample *s, const char *why)
{
	o->why = why;
	snprintf(o->measured, sizeof(o->measured),
		 "lag_critical_ms=%llu lag_normal_ms=%llu lag_low_ms=%llu depth_critical=%llu "
		 "depth_normal=%llu depth_low=%llu pool_busy_permille=%u db_write_ms=%llu "
		 "critical_contended_permille=%u",
		 (unsigned long long)(s->lag_ns[0] / MS), (unsigned long long)(s->lag_ns[1] / MS),
		 (unsigned long long)(s->lag_ns[2] / MS), (unsigned long long)s->depth[0],
		 (unsigned long long)s->depth[1], (unsigned long long)s->depth[2],
		 s->pool_busy_permille, (unsigned long long)(s->db_write_ns / MS),
		 o->critical_permille);
}

static void enter(struct overload *o, enum overload_state to, uint64_t now)
{
	o->transitions[o->state][to]++;
	o->state = to;
	o->entered_ns = now;
	o->calm_since_ns = 0;
}

static void calm_start(struct overload *o, const struct overload_sample *s,
		       enum overload_state calm)
{
	o->calm_since_ns = s->now_ns;
	o->calm_level = calm;
	memcpy(o->calm_contended, s->contended, sizeof(o->calm_contended));
}

/* Whether leaving EMERGENCY for calm_level keeps critical served: always when every lag was
 * calm (nothing competes with critical, so any share leaves it all it asks for); towards
 * THIN, when critical's part of the window's contended pops (pops that left normal or low
 * work waiting: the pool was the bottleneck, and under EMERGENCY critical took what it
 * needed of it) fits in THIN's critical share with the headroom. A pool that keeps up with
 * its lower classes adds next to nothing (the database pool: about 1 % of the contended
 * pops in test_08), so it does not dilute the figure. No contended pop in the window: no
 * pool is short, the shares may revert. */
static bool critical_fits(struct overload *o, const struct overload_sample *s)
{
	const uint32_t *to = o->cfg.shares[o->calm_level];
	uint64_t total = 0, sum = 0, crit, moved[SLUICE_CLASS_MAX];

	for (int c = 0; c < SLUICE_CLASS_MAX; c++) {
		/* counters only grow; a smaller one means the pools were rebuilt: count from 0 */
		moved[c] = s->contended[c] -
			   (s->contended[c] >= o->calm_contended[c] ? o->calm_contended[c] : 0);
		total += moved[c];
		sum += to[c];
	}
	crit = moved[SLUICE_CLASS_CRITICAL];
	o->critical_permille = total ? (uint32_t)(crit * 1000 / total) : 0;
	if (o->state != OVERLOAD_EMERGENCY || o->calm_level == OVERLOAD_NORMAL || !total)
		return true;
	return crit * 100 * sum <=
	       total * to[SLUICE_CLASS_CRITICAL] * OVERLOAD_STEPDOWN_HEADROOM_PCT;
}

/* How long the calm window must last: the hold, or OVERLOAD_STEPDOWN_HOLDS of them when
 * EMERGENCY would step down to THIN and the shares check needs a steady figure. */
static uint64_t calm_needed(const struct overload *o)
{
	if (o->state == OVERLOAD_EMERGENCY && o->calm_level > OVERLOAD_NORMAL)
		return o->cfg.hold_ns * OVERLOAD_STEPDOWN_HOLDS;
	return o->cfg.hold_ns;
}

enum overload_state overload_step(struct overload *o, const struct overload_sample *s,
				  bool *changed)
{
	enum overload_state up = level_for(&o->cfg, s, 1), calm = level_for(&o->cfg, s, 2);

	*changed = false;
	if (o->manual)
		return o->state;
	if (up > o->state) {
		o->critical_permille = 0; /* measured on the way down only */
		describe(o, s,
			 up == OVERLOAD_EMERGENCY ? "critical lag over the emergency threshold"
						  : "normal lag over the thin threshold");
		enter(o, up, s->now_ns);
		*changed = true;
		return o->state;
	}
	if (calm >= o->state) {
		o->calm_since_ns = 0;
		return o->state;
	}
	if (!o->calm_since_ns)
		calm_start(o, s, calm);
	else if (calm > o->calm_level)
		o->calm_level = calm; /* the window still called for this much */
	if (s->now_ns - o->calm_since_ns < calm_needed(o))
		return o->state;
	if (!critical_fits(o, s)) {
		describe(o, s,
			 "critical calm but it takes more than the thin share: emergency held");
		o->stepdowns_held++;
		calm_start(o, s, calm); /* look again after another hold */
		return o->state;
	}
	describe(o, s,
		 o->state == OVERLOAD_EMERGENCY && o->calm_level == OVERLOAD_THIN
		     ? "critical calm and within the thin share for the step-down window"
		     : "lag under half the threshold for the hold time");
	enter(o, o->calm_level, s->now_ns);
	*changed = true;
	return o->state;
}

void overload_set_manual(struct overload *o, bool manual, enum overload_state level,
			 uint64_t now_ns)
{
	o->manual = manual;
	if (manual && level != o->state) {
		o->why = "set by an operator";
		o->measured[0] = '\0';
		enter(o, level, now_ns);
	}
	o->calm_since_ns = 0;
}

void overload_adopt(struct overload *o, enum overload_state level, const char *why, uint64_t now_ns)
{
	if (o->manual || level == o->state || level >= OVERLOAD_STATES)
		return;
	o->why = why;
	o->measured[0] = '\0';
	enter(o, level, now_ns);
}

void overload_actions_for(const struct overload_config *cfg, enum overload_state st,
			  struct overload_actions *a)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->share, cfg->shares[cfg->dry_run ? OVERLOAD_NORMAL : st], sizeof(a->share));
	if (cfg->dry_run)
		return;
	a->xdp_level = st;
	if (st >= OVERLOAD_THIN) {
		a->skip_optional = true;
		a->pause_low = true;
	}
	if (st >= OVERLOAD_EMERGENCY) {
		a->low_refuse_permille = cfg->low_refuse_permille;
		a->sheddable_drop_permille = cfg->sheddable_drop_permille;
		a->xdp_permille[SLUICE_CLASS_LOW] = cfg->xdp_low_permille;
		a->alert = true;
	}
}
