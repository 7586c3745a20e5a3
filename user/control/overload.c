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
	};
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
	return 0;
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
	snprintf(o->reason, sizeof(o->reason),
		 "%s lag_critical_ms=%llu lag_normal_ms=%llu lag_low_ms=%llu depth_critical=%llu "
		 "depth_normal=%llu depth_low=%llu pool_busy_permille=%u db_write_ms=%llu",
		 why, (unsigned long long)(s->lag_ns[0] / MS),
		 (unsigned long long)(s->lag_ns[1] / MS), (unsigned long long)(s->lag_ns[2] / MS),
		 (unsigned long long)s->depth[0], (unsigned long long)s->depth[1],
		 (unsigned long long)s->depth[2], s->pool_busy_permille,
		 (unsigned long long)(s->db_write_ns / MS));
}

static void enter(struct overload *o, enum overload_state to, uint64_t now)
{
	o->transitions[o->state][to]++;
	o->state = to;
	o->entered_ns = now;
	o->calm_since_ns = 0;
}

enum overload_state overload_step(struct overload *o, const struct overload_sample *s,
				  bool *changed)
{
	enum overload_state up = level_for(&o->cfg, s, 1), calm = level_for(&o->cfg, s, 2);

	*changed = false;
	if (o->manual)
		return o->state;
	if (up > o->state) {
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
	if (!o->calm_since_ns) {
		o->calm_since_ns = s->now_ns;
		o->calm_level = calm;
	} else if (calm > o->calm_level) {
		o->calm_level = calm; /* the window still called for this much */
	}
	if (s->now_ns - o->calm_since_ns < o->cfg.hold_ns)
		return o->state;
	describe(o, s, "lag under half the threshold for the hold time");
	enter(o, o->calm_level, s->now_ns);
	*changed = true;
	return o->state;
}

void overload_set_manual(struct overload *o, bool manual, enum overload_state level,
			 uint64_t now_ns)
{
	o->manual = manual;
	if (manual && level != o->state) {
		snprintf(o->reason, sizeof(o->reason), "set by an operator");
		enter(o, level, now_ns);
	}
	o->calm_since_ns = 0;
}

void overload_actions_for(const struct overload_config *cfg, enum overload_state st,
			  struct overload_actions *a)
{
	memset(a, 0, sizeof(*a));
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
