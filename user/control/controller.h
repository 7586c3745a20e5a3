/* SPDX-License-Identifier: MIT */
/* controller.h -- the daemon's back half: worker, overload controller, their metrics
 *
 * sluiced builds the ingress (loops, router, admission) and the queue; the controller adds
 * what consumes the queue (the worker: pools, steps, PostgreSQL, upstreams) and the
 * overload controller that samples the worker every period and applies its state: worker
 * actions, the intake refusal share the ingress reads, and the XDP shed level in the
 * pinned config map. It also exports their numbers to the metrics registry.
 */
#ifndef SLUICE_CONTROLLER_H
#define SLUICE_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/metrics.h"
#include "control/overload.h"
#include "queue/queue.h"
#include "sluice/abi.h"

struct redis;

struct controller_cfg {
	struct queue *queue; /* borrowed */
	/* where dead-letter replays are appended (borrowed; NULL: queue). A Kafka worker
	 * consumes from one handle and produces replays through another. */
	struct queue *replay_queue;
	struct metrics *metrics; /* borrowed */
	bool run_worker;	 /* role all / worker */
	const char *routes_path; /* "" or NULL: the built-in default route */
	const char *pg_conninfo;
	/* the database probe's answer (sink/pg/probe.h: 1 reachable), or NULL. A worker that
	 * could not start is retried only while it is 1: the migration connect blocks up to
	 * connect_timeout on a silent host, and the controller thread (so shutdown) with it. */
	const int *db_reachable;
	struct redis *redis; /* borrowed, may be NULL: no cache fallback, no Redis metrics */
	uint64_t max_messages, max_age_ns;
	void (*retire)(void *arg); /* the worker retired (max-messages/max-age) */
	void *retire_arg;
	struct overload_config overload;	/* thresholds and the class shares per state */
	uint64_t max_wait_ns[SLUICE_CLASS_MAX]; /* aging bound per class in every pool (0: none) */
	int xdp_config_fd;			/* sl_config map fd, -1 when XDP is off */
	const char *alert_url;			/* "" = no alerts */
	const char *alert_key;			/* PagerDuty routing key */
	const char *node;			/* this node's name (alerts, dedup_key) */
	uint32_t controller_lease_ms;		/* --controller-lease-ms (0: the default, 2000) */
};

struct controller;

/* Start the worker (if asked) and the controller thread. NULL + errno, err naming the
 * cause (routes file:line, a bad upstream setting, no --pg). */
struct controller *controller_new(const struct controller_cfg *cfg, char *err, size_t errlen);
/* Stop the controller, drain the worker for up to drain_ms, free. NULL-safe. */
void controller_free(struct controller *e, int drain_ms);

/* SIGHUP: reload the routes file. 0 (also when there is no worker), or -errno with err
 * naming file:line or why the change needs a restart; the old routes stay then. */
int controller_reload_routes(struct controller *e, char *err, size_t errlen);

/* For the ingress: the class the routes give an event type, -1 for none (also without a
 * worker). arg is the controller. */
int controller_type_class(void *arg, const char *type);

/* Share of new low-class events the ingress should refuse now (0..1000). Any thread. */
uint32_t controller_low_refuse_permille(const struct controller *e);
/* --cluster-redis: follow the cluster's overload decision (control/cshed.h), and as a worker
 * stand for the cluster's controller lease. Adds a hook to cl; call before cluster_run.
 * 0, or -errno with err naming the option. */
struct cluster;
int controller_join_cluster(struct controller *e, struct cluster *cl, char *err, size_t errlen);
/* Before the cluster thread stops: give the lease back if held (a standby takes over at
 * its next period). NULL-safe. */
void controller_leave_cluster(struct controller *e);
enum overload_state controller_state(const struct controller *e);

#endif /* SLUICE_CONTROLLER_H */
