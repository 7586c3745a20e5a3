/* SPDX-License-Identifier: MIT */
/* overload.h -- the overload controller: NORMAL -> THIN -> EMERGENCY on queue lag, with hysteresis
 *
 * Pure decision logic fed with samples (no clock, no I/O of its own): the daemon samples
 * every period, calls overload_step(), and applies the returned actions (class shares and
 * pausing in the pools, intake refusal, XDP shed level, alert). Tests drive it with
 * synthetic samples. struct overload_actions is the one place a consumer (the journal
 * worker's pools, a Kafka worker pausing partitions) reads what a state means for it.
 */
#ifndef SLUICE_OVERLOAD_H
#define SLUICE_OVERLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "sluice/abi.h"

enum overload_state {
	OVERLOAD_NORMAL = SLUICE_SHED_NORMAL,
	OVERLOAD_THIN = SLUICE_SHED_THIN,
	OVERLOAD_EMERGENCY = SLUICE_SHED_EMERGENCY,
	OVERLOAD_STATES = 3,
};

struct overload_config {
	uint64_t period_ns;	   /* sampling period (default 250 ms) */
	uint64_t thin_lag_ns;	   /* THIN when normal-class lag exceeds it (default 30 s) */
	uint64_t emergency_lag_ns; /* EMERGENCY when critical-class lag exceeds it (60 s) */
	uint64_t hold_ns;	   /* lag under half the threshold this long to step down (30 s) */
	uint32_t low_refuse_permille;	  /* EMERGENCY: share of new low events refused (500) */
	uint32_t sheddable_drop_permille; /* EMERGENCY: share of sheddable events dropped (500) */
	uint32_t xdp_low_permille; /* EMERGENCY: share of low-class SYNs dropped at XDP (500) */
	/* class shares of every pool per state, percent, each state summing to 100: NORMAL and
	 * THIN 70/25/5, EMERGENCY 100/0/0 (critical first; a class at 0 gets what the others
	 * leave, and its aging bound) */
	uint32_t shares[OVERLOAD_STATES][SLUICE_CLASS_MAX];
	bool dry_run; /* decide and log, apply nothing */
};

/* One measurement, taken by the daemon every period. */
struct overload_sample {
	uint64_t now_ns;
	uint64_t lag_ns[SLUICE_CLASS_MAX]; /* age of the oldest waiting entry per class */
	uint64_t depth[SLUICE_CLASS_MAX];
	uint32_t pool_busy_permille; /* busiest pool's in-flight / limit */
	uint64_t db_write_ns;	     /* recent DB batch latency */
	/* pops per class so far after which normal or low work still waited in that pool (the
	 * pool was the bottleneck), summed over pools: dispatch_class_stats.contended */
	uint64_t contended[SLUICE_CLASS_MAX];
};

/* What the daemon applies in a state. */
struct overload_actions {
	bool skip_optional;		  /* optional steps skipped */
	bool pause_low;			  /* low-class consumption paused */
	uint32_t low_refuse_permille;	  /* new low events refused with 503 + Retry-After */
	uint32_t sheddable_drop_permille; /* events of sheddable routes dropped (counted) */
	uint32_t xdp_level;		  /* enum sluice_shed_level for the XDP config */
	uint32_t xdp_permille[SLUICE_CLASS_MAX];
	uint32_t share[SLUICE_CLASS_MAX]; /* class shares (percent) every pool dispatches by */
	bool alert;			  /* an alert is open */
};

struct overload {
	struct overload_config cfg;
	enum overload_state state;
	bool manual;			/* an operator set the level: the controller only watches */
	uint64_t entered_ns;		/* when the current state began */
	uint64_t calm_since_ns;		/* since when lag is under half the step-down threshold */
	enum overload_state calm_level; /* highest level a sample in the calm window called for */
	uint64_t calm_contended[SLUICE_CLASS_MAX]; /* sample.contended when the window began */
	uint64_t transitions[OVERLOAD_STATES][OVERLOAD_STATES];
	uint64_t stepdowns_held;    /* EMERGENCY kept: critical needs more than THIN gives */
	uint32_t critical_permille; /* critical's part of the contended pops, last window */
	const char *why;	    /* the rule behind the last transition (or held step-down) */
	char measured[256];	    /* its measurements, logfmt key=number pairs */
};

/* Step-down from EMERGENCY to THIN needs critical's part of the contended pops over the
 * calm window to stay under this share of what THIN gives it (percent): the margin that
 * keeps critical lag from building again once the shares revert. */
#define OVERLOAD_STEPDOWN_HEADROOM_PCT 90
/* ... measured over this many hold times, so a short lull in critical arrivals (the count
 * over one window is noisy at low pop rates) does not pass for a lasting fall. */
#define OVERLOAD_STEPDOWN_HOLDS 2

/* Fill cfg with the documented defaults. */
void overload_config_default(struct overload_config *cfg);
/* Reject inconsistent thresholds or shares with a message naming the option; 0 or -EINVAL. */
int overload_config_check(const struct overload_config *cfg, char *err, size_t errlen);

void overload_init(struct overload *o, const struct overload_config *cfg, uint64_t now_ns);

/* Feed one sample. Returns the state after it; when it changed, *changed is set and o->why
 * and o->measured describe the rule and the measurements that caused it. A step-down from
 * EMERGENCY that the shares check refused increments o->stepdowns_held (same fields set).
 * In manual mode the state only follows overload_set_manual(). */
enum overload_state overload_step(struct overload *o, const struct overload_sample *s,
				  bool *changed);

/* An operator sets the level (manual) or hands control back (auto: manual=false). */
void overload_set_manual(struct overload *o, bool manual, enum overload_state level,
			 uint64_t now_ns);

/* A standby of the cluster's controller (control/cshed.h) follows the published level, so
 * that when it takes over it goes on from there (hysteresis included: its calm window
 * starts at the takeover) rather than from NORMAL. No-op in manual mode. */
void overload_adopt(struct overload *o, enum overload_state level, const char *why,
		    uint64_t now_ns);

/* The actions for state st under cfg (dry-run yields the NORMAL actions). */
void overload_actions_for(const struct overload_config *cfg, enum overload_state st,
			  struct overload_actions *a);

const char *overload_state_name(enum overload_state st);
/* "critical=70,normal=25,low=5" into buf; returns buf. */
const char *overload_shares_str(const uint32_t share[SLUICE_CLASS_MAX], char *buf, size_t len);

#endif /* SLUICE_OVERLOAD_H */
