// SPDX-License-Identifier: MIT
/* controller.c -- the daemon's back half: worker, overload controller, their metrics
 *
 * The controller thread wakes every period: it reads the worker's lag, depth and pool
 * saturation and the PostgreSQL writer's health, follows an operator's manual shed level
 * from the pinned config map (sluicectl shed set LEVEL; `auto` hands control back), steps
 * the overload state machine (overload.c), and applies the state's actions. The XDP config
 * is written only when the mode is auto and the level or permille differ, with a
 * read-modify-write of the one config entry that preserves every other field. Entering
 * EMERGENCY triggers the alert, leaving it resolves it (same dedup_key).
 *
 * With --cluster-redis (controller_join_cluster, control/cshed.h) the level in force is, in
 * order: a local pin (sluicectl shed set on this node), the cluster's pin, the cluster
 * controller's published decision, this node's own controller. A worker reports its lag
 * and offers its own level each period; as the lease holder it steps on the cluster's
 * largest lag, and as a standby it follows the published level so a takeover goes on from
 * it. The cluster's alert (one incident per cluster emergency) is sent by the holder only.
 */
#include <errno.h>
#include <linux/types.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/alert.h"
#include "control/cshed.h"
#include "control/dlq.h"
#include "control/controller.h"
#include "lib/clock.h"
#include "lib/cluster.h"
#include "nic/xdp_config.h"
#include "sink/upstream/fallback.h"
#include "lib/log.h"
#include "sink/pg/migrate.h"
#include "lib/redis.h"
#include "work/routes.h"
#include "sluice/abi.h"
#include "sink/upstream/upstream.h"
#include "work/worker.h"

struct controller {
	struct controller_cfg cfg;
	struct worker *worker; /* atomic pointer: may start late */
	struct routes *routes; /* parsed, waiting for the database (then the worker's) */
	uint64_t last_start_try_ns;
	struct dlq_replayer *dlq;
	struct alert *alert;
	struct cshed *cshed;		/* the cluster's controller, NULL without --cluster-redis */
	uint32_t applied;		/* level in force (controller thread) */
	enum cshed_source source;	/* whose it is (controller thread) */
	uint64_t src_seq;		/* the cluster decision's seq, 0 for a local level */
	char src_node[SLUICE_NAME_LEN]; /* the cluster controller's node ("" when local) */
	uint32_t source_pub;		/* atomic: source for the metrics */
	struct sluice_config *xcfg;	/* the mmapped XDP config entry, NULL when XDP is off */
	struct overload ov;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool stop, kicked;
	uint32_t refuse_permille; /* atomic */
	uint32_t state;		  /* atomic, enum overload_state */
	uint64_t stepdowns_held;  /* ov.stepdowns_held already logged (controller thread) */
	struct metric_family *f_state, *f_transitions, *f_lag, *f_waiting, *f_qbytes, *f_qmax;
	struct metric_family *f_worker, *f_pool_busy, *f_db_up, *f_db_rows, *f_db_dups, *f_db_batch;
	struct metric_family *f_pool_share, *f_pool_paused;
	struct metric_family *f_db_dead, *f_dead, *f_breaker, *f_upstream, *f_fallback;
	struct metric_family *f_budget_waits, *f_steps_parked;
	struct metric_family *f_redis_up, *f_redis_ops, *f_redis_errs, *f_redis_outages;
	struct metric_family *f_source, *f_leader, *f_takeovers, *f_unreachable, *f_seq;
};

/* The cluster's controller client once joined (controller_join_cluster). Any thread. */
static struct cshed *cshed_of(const struct controller *e)
{
	return __atomic_load_n(&e->cshed, __ATOMIC_ACQUIRE);
}

/* The worker, once started (it may start late: see try_start_worker). Any thread. */
static struct worker *worker_of(const struct controller *e)
{
	return __atomic_load_n(&e->worker, __ATOMIC_ACQUIRE);
}

static const char *const class_names[3] = {"critical", "normal", "low"};

static void set1(struct metric_family *f, const char *label, double v)
{
	const char *vals[1] = {label};

	metric_set(metrics_series(f, label ? vals : NULL), v);
}

static void export_pool(void *arg, const char *name, const struct pool_stats *st)
{
	struct controller *e = arg;
	double sum = (double)st->weight[0] + st->weight[1] + st->weight[2];

	set1(e->f_pool_busy, name,
	     st->max_inflight ? (double)st->in_flight / (double)st->max_inflight : 0);
	for (int c = 0; c < 3; c++) {
		const char *v[2] = {name, class_names[c]};

		metric_set(metrics_series(e->f_pool_share, v), sum ? st->weight[c] / sum : 0);
		metric_set(metrics_series(e->f_pool_paused, v), (st->paused_mask >> c) & 1);
	}
}

/* Each counter of a label set, by name. */
struct named_count {
	const char *name;
	uint64_t value;
};

static void set_each(struct metric_family *f, const char *first, const struct named_count *nc,
		     size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v[2] = {first ? first : nc[i].name, nc[i].name};

		metric_set(metrics_series(f, v), (double)nc[i].value);
	}
}

static void export_upstream(void *arg, struct upstream *u, struct fallback *fb)
{
	struct controller *e = arg;
	struct upstream_stats us;
	struct fallback_stats fs;
	const char *name = upstream_name(u);

	upstream_stats(u, &us);
	fallback_stats(fb, &fs);
	set1(e->f_breaker, name, us.breaker.state);
	set1(e->f_budget_waits, name, (double)us.budget_waits);
	set_each(e->f_upstream, name,
		 (struct named_count[]){{"ok", us.ok},
					{"slow", us.slow},
					{"failed", us.failed},
					{"rejected", us.rejected},
					{"bulkhead_full", us.bulkhead_full}},
		 5);
	set_each(e->f_fallback, name,
		 (struct named_count[]){
		     {"cache", fs.cache_hits}, {"model", fs.model}, {"defer", fs.deferred}},
		 3);
}

/* Redis (the fallback cache): up, commands, failures by kind, outages. */
static void export_redis(struct controller *e)
{
	struct redis_stats rs;

	redis_stats(e->cfg.redis, &rs);
	set1(e->f_redis_up, NULL, rs.up);
	set1(e->f_redis_ops, NULL, (double)rs.ops);
	set_each(e->f_redis_errs, NULL,
		 (struct named_count[]){
		     {"error", rs.errors}, {"timeout", rs.timeouts}, {"skipped", rs.skipped}},
		 3);
	set1(e->f_redis_outages, NULL, (double)rs.outages);
}

static void collect(struct metrics *m, void *arg)
{
	struct controller *e = arg;
	struct queue_stats qs;
	struct worker_stats ws;
	struct pg_writer_stats ps;

	set1(e->f_state, NULL, __atomic_load_n(&e->state, __ATOMIC_RELAXED));
	set1(e->f_source, NULL, __atomic_load_n(&e->source_pub, __ATOMIC_RELAXED));
	if (cshed_of(e)) {
		struct cshed_stats cs;

		cshed_stats(cshed_of(e), &cs);
		set1(e->f_leader, NULL, cs.leader);
		set1(e->f_takeovers, NULL, (double)cs.takeovers);
		set1(e->f_unreachable, NULL, (double)cs.unreachable);
		set1(e->f_seq, NULL, (double)cs.seq);
	}
	if (e->cfg.redis)
		export_redis(e);
	if (!queue_stats(e->cfg.queue, &qs)) {
		set1(e->f_qbytes, NULL, (double)qs.bytes);
		set1(e->f_qmax, NULL, (double)qs.max_bytes);
	}
	struct worker *w = worker_of(e);

	if (!w) {
		/* the worker starts with the first connection: until then the database is down,
		 * and saying so (rather than no series) lets "down at boot" alert */
		if (e->cfg.pg_conninfo && *e->cfg.pg_conninfo)
			set1(e->f_db_up, NULL, 0);
		return;
	}
	worker_get_stats(w, &ws);
	for (int c = 0; c < 3; c++) {
		set1(e->f_lag, class_names[c], (double)ws.lag_ns[c] / 1e9);
		set1(e->f_waiting, class_names[c], (double)ws.depth[c]);
	}
	set_each(e->f_worker, NULL,
		 (struct named_count[]){{"done", ws.events_done},
					{"dead_lettered", ws.events_dead_lettered},
					{"duplicate", ws.events_duplicate},
					{"shed", ws.events_shed},
					{"step_skipped", ws.steps_skipped},
					{"step_retried", ws.steps_retried},
					{"step_replayed", ws.steps_replayed}},
		 7);
	set1(e->f_steps_parked, NULL, (double)ws.steps_parked);
	worker_each_pool(w, export_pool, e);
	worker_each_upstream(w, export_upstream, e);
	pg_writer_get_stats(worker_pg_writer(w), &ps);
	set1(e->f_db_up, NULL, ps.health == PG_HEALTH_READY || ps.health == PG_HEALTH_DEGRADED);
	set1(e->f_db_rows, NULL, (double)ps.rows_stored);
	metric_hist_set(metrics_series(e->f_db_batch, NULL), ps.batch_latency_us.bucket,
			PG_WRITER_LATENCY_BOUNDS, ps.batch_latency_us.count,
			(double)ps.batch_latency_us.sum / 1e6);
	set1(e->f_db_dups, NULL, (double)ps.rows_duplicate);
	set1(e->f_dead, NULL, (double)(ps.rows_dead_lettered + ws.events_dead_lettered));
}

static int register_metrics(struct controller *e)
{
	struct metrics *m = e->cfg.metrics;
	double batch_s[PG_WRITER_LATENCY_BOUNDS];

	for (int i = 0; i < PG_WRITER_LATENCY_BOUNDS; i++)
		batch_s[i] = (double)pg_writer_latency_bounds[i] / 1e6;

#define FAM(field, type, name, help, labels)                                                       \
	do {                                                                                       \
		e->field = metrics_family(m, type, name, help, labels, NULL, 0);                   \
		if (!e->field)                                                                     \
			return -errno;                                                             \
	} while (0)
	FAM(f_state, METRIC_GAUGE, "sluice_overload_state",
	    "Overload controller state: 0 normal, 1 thin, 2 emergency.", NULL);
	FAM(f_source, METRIC_GAUGE, "sluice_overload_source",
	    "Whose shed level this node applies: 0 its own controller, 1 the cluster controller, "
	    "2 an operator's cluster pin, 3 an operator's local pin.",
	    NULL);
	FAM(f_transitions, METRIC_COUNTER, "sluice_overload_transitions_total",
	    "Overload state transitions.", "from,to");
	FAM(f_lag, METRIC_GAUGE, "sluice_queue_lag_seconds",
	    "Age of the oldest event waiting for a worker, per class.", "class");
	FAM(f_waiting, METRIC_GAUGE, "sluice_queue_waiting",
	    "Events waiting for a worker (ready or parked for retry), per class.", "class");
	FAM(f_qbytes, METRIC_GAUGE, "sluice_queue_bytes", "Unacknowledged bytes in the queue.",
	    NULL);
	FAM(f_qmax, METRIC_GAUGE, "sluice_queue_max_bytes",
	    "Bytes at which the queue refuses appends (0: no limit).", NULL);
	FAM(f_worker, METRIC_COUNTER, "sluice_worker_events_total",
	    "Events and steps by outcome in the worker.", "outcome");
	FAM(f_pool_busy, METRIC_GAUGE, "sluice_pool_saturation",
	    "In-flight entries over the pool's limit (bulkhead fill).", "pool");
	FAM(f_pool_share, METRIC_GAUGE, "sluice_pool_class_share",
	    "Class share of the pool's dispatches in force (the overload state's shares, 0..1); "
	    "a class at 0 gets what the others leave and its aging bound.",
	    "pool,class");
	FAM(f_pool_paused, METRIC_GAUGE, "sluice_pool_class_paused",
	    "1 while the class is paused in the pool (low from THIN on).", "pool,class");
	FAM(f_db_up, METRIC_GAUGE, "sluice_db_up", "1 when PostgreSQL answers the writer.", NULL);
	FAM(f_db_rows, METRIC_COUNTER, "sluice_db_rows_written_total",
	    "Event rows committed to PostgreSQL.", NULL);
	e->f_db_batch =
	    metrics_family(m, METRIC_HISTOGRAM, "sluice_db_batch_duration_seconds",
			   "PostgreSQL batches from send to COMMIT read (committed ones).", NULL,
			   batch_s, PG_WRITER_LATENCY_BOUNDS);
	if (!e->f_db_batch)
		return -errno;
	FAM(f_db_dups, METRIC_COUNTER, "sluice_db_duplicates_total",
	    "Event rows skipped as duplicates by ON CONFLICT.", NULL);
	FAM(f_dead, METRIC_COUNTER, "sluice_dead_letters_total", "Events written to dead_letters.",
	    NULL);
	FAM(f_breaker, METRIC_GAUGE, "sluice_breaker_state",
	    "Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.", "upstream");
	FAM(f_upstream, METRIC_COUNTER, "sluice_upstream_calls_total", "Upstream calls by outcome.",
	    "upstream,outcome");
	FAM(f_fallback, METRIC_COUNTER, "sluice_fallback_answers_total",
	    "Call steps answered by a fallback, by source.", "upstream,source");
	FAM(f_budget_waits, METRIC_COUNTER, "sluice_upstream_budget_waits_total",
	    "Retries that waited for the upstream's retry budget (rate-limited, not dropped).",
	    "upstream");
	FAM(f_steps_parked, METRIC_COUNTER, "sluice_steps_parked_total",
	    "Call steps parked durably in parked_steps (breaker open, or a retry due past the "
	    "park threshold).",
	    NULL);
	if (e->cfg.redis) {
		FAM(f_redis_up, METRIC_GAUGE, "sluice_redis_up",
		    "1 while Redis answers; 0 during an outage (everything goes on without it).",
		    NULL);
		FAM(f_redis_ops, METRIC_COUNTER, "sluice_redis_commands_total",
		    "Redis commands attempted.", NULL);
		FAM(f_redis_errs, METRIC_COUNTER, "sluice_redis_failures_total",
		    "Redis commands that failed, timed out, or were skipped during an outage's "
		    "backoff.",
		    "kind");
		FAM(f_redis_outages, METRIC_COUNTER, "sluice_redis_outages_total",
		    "Times Redis became unavailable.", NULL);
	}
#undef FAM
	return metrics_on_collect(m, collect, e);
}

/* Follow the operator: a manual level in the pinned config pins the controller. */
static void follow_operator(struct controller *e, struct sluice_config *xc, bool have_xc,
			    uint64_t now)
{
	bool manual = have_xc && xc->shed_mode == SLUICE_SHED_MANUAL;

	if (manual && (!e->ov.manual || e->ov.state != xc->shed_level)) {
		overload_set_manual(&e->ov, true, xc->shed_level < 3 ? xc->shed_level : 2, now);
		log_info("overload: operator set the level", "state=\"%s\"",
			 overload_state_name(e->ov.state));
	} else if (!manual && e->ov.manual) {
		overload_set_manual(&e->ov, false, e->ov.state, now);
		log_info("overload: control handed back to the controller", "state=\"%s\"",
			 overload_state_name(e->ov.state));
	}
}

/* The controller's own fields of the XDP config (in force while the operator has not pinned
 * a level); the operator's fields are only read, never written back (nic/xdp_config.h). */
static void push_xdp(struct controller *e, const struct sluice_config *xc,
		     const struct overload_actions *a)
{
	/* whose level it is: the local pin is the operator's own mode, not ours to say */
	uint32_t source = e->source == CSHED_SRC_LOCAL_PIN ? SLUICE_SHED_SRC_LOCAL : e->source;

	if (xc->auto_source != source || xc->auto_seq != (uint32_t)e->src_seq ||
	    strncmp(xc->auto_node, e->src_node, sizeof(xc->auto_node)))
		xdp_config_publish_source(e->xcfg, source, (uint32_t)e->src_seq, e->src_node);
	if (xc->auto_level == a->xdp_level &&
	    !memcmp(xc->auto_permille, a->xdp_permille, sizeof(xc->auto_permille)))
		return;
	xdp_config_publish_auto(e->xcfg, a->xdp_level, a->xdp_permille);
}

/* The transition of the level in force in logfmt (text values quoted, measurements as
 * numbers), with the shares and pausing the new state applies; on one node, the alert on
 * entering or leaving EMERGENCY (with --cluster-redis the cluster's holder sends the
 * cluster's alert instead: on_incident). */
static void on_transition(struct controller *e, enum overload_state from, enum overload_state to,
			  const char *why, const char *measured)
{
	const char *v[2] = {overload_state_name(from), overload_state_name(to)};
	struct overload_actions a;
	char details[640], shares[64];

	overload_actions_for(&e->cfg.overload, to, &a);
	overload_shares_str(a.share, shares, sizeof(shares));
	metric_add(metrics_series(e->f_transitions, v), 1);
	log_warn("overload: state changed",
		 "from=\"%s\" to=\"%s\" source=\"%s\" reason=\"%s\" %s shares=\"%s\" "
		 "paused=\"%s\"",
		 v[0], v[1], cshed_source_name(e->source), why, measured, shares,
		 a.pause_low ? "low" : "");
	if (!e->alert || e->cfg.overload.dry_run || cshed_of(e))
		return;
	if (to == OVERLOAD_EMERGENCY) {
		snprintf(details, sizeof(details),
			 "{\"from\":\"%s\",\"reason\":\"%s\",\"measurements\":\"%s\","
			 "\"shares\":\"%s\"}",
			 v[0], why, measured, shares);
		alert_trigger(e->alert, "sluice overload: EMERGENCY (critical first, shedding low)",
			      details);
	} else if (from == OVERLOAD_EMERGENCY) {
		alert_resolve(e->alert);
	}
}

/* The cluster's holder claimed the incident (cshed.c): one trigger, one resolve per cluster
 * emergency, under the cluster's dedup_key. Runs on the cluster thread. */
static void on_incident(void *arg, enum cshed_incident what, const char *dedup_key,
			const struct cshed_decision *d)
{
	struct controller *e = arg;
	char details[256];

	if (!e->alert || e->cfg.overload.dry_run)
		return;
	if (what == CSHED_RESOLVE) {
		alert_resolve_key(e->alert, dedup_key);
		return;
	}
	snprintf(details, sizeof(details),
		 "{\"controller\":\"%s\",\"seq\":%llu,\"pinned\":%s,\"low_permille\":%u}", d->node,
		 (unsigned long long)d->seq, d->pinned ? "true" : "false",
		 d->permille[SLUICE_CLASS_LOW]);
	alert_trigger_key(e->alert, dedup_key,
			  "sluice overload: cluster EMERGENCY (critical first, shedding low)",
			  details);
}

/* A new cluster decision (or the old one expired): apply it now, not at the next period. */
static void on_cluster_change(void *arg)
{
	struct controller *e = arg;

	pthread_mutex_lock(&e->lock);
	e->kicked = true;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->lock);
}

/* EMERGENCY stayed although critical is calm: say why once per refused step-down (at most
 * one per hold time). */
static void on_stepdown_held(struct controller *e)
{
	if (e->ov.stepdowns_held == e->stepdowns_held)
		return;
	e->stepdowns_held = e->ov.stepdowns_held;
	log_info("overload: emergency held", "reason=\"%s\" %s thin_critical_share=%u", e->ov.why,
		 e->ov.measured, e->cfg.overload.shares[OVERLOAD_THIN][0]);
}

/* The routes, checked at start so a bad file stops sluiced before it serves. */
static int prepare_worker(struct controller *e, char *err, size_t errlen)
{
	const struct controller_cfg *c = &e->cfg;
	char sub[300];

	if (c->routes_path && *c->routes_path)
		e->routes = routes_load(c->routes_path, sub, sizeof(sub));
	else
		e->routes = routes_parse("", "(built-in routes)", sub, sizeof(sub));
	if (!e->routes) {
		snprintf(err, errlen, "--routes %s", sub);
		return -EINVAL;
	}
	return 0;
}

/* Bring the schema up to date, then start the worker and the replayer. -EAGAIN while the
 * database cannot be reached (the controller thread tries again: meanwhile the ingress
 * keeps accepting into the journal), -EPROTO for a schema newer than this binary. */
static int try_start_worker(struct controller *e, char *err, size_t errlen)
{
	const struct controller_cfg *c = &e->cfg;
	struct worker_cfg wc = {.routes = e->routes,
				.queue = c->queue,
				.pg_conninfo = c->pg_conninfo,
				.redis = c->redis,
				.max_messages = c->max_messages,
				.max_age_ns = c->max_age_ns,
				.retire = c->retire,
				.retire_arg = c->retire_arg};
	struct overload_actions a;
	struct worker *w;
	int ret = pg_migrate_conninfo(c->pg_conninfo, err, errlen);

	/* the pools start with the shares of the state the controller is in (NORMAL unless the
	 * worker starts late), and with the aging bounds they keep in every state */
	overload_actions_for(&c->overload, e->ov.state, &a);
	memcpy(wc.dispatch.weight, a.share, sizeof(wc.dispatch.weight));
	memcpy(wc.dispatch.max_wait_ns, c->max_wait_ns, sizeof(wc.dispatch.max_wait_ns));

	if (ret == -EPROTO)
		return ret;
	if (ret < 0)
		return -EAGAIN;
	e->routes = NULL; /* the worker owns them from here, also on failure */
	w = worker_new(&wc, err, errlen);
	if (!w)
		return -errno;
	e->dlq =
	    dlq_replayer_new(c->pg_conninfo, c->replay_queue ? c->replay_queue : c->queue, 1000);
	__atomic_store_n(&e->worker, w, __ATOMIC_RELEASE);
	if (!e->dlq) {
		snprintf(err, errlen, "start the dead-letter replayer: %s", strerror(errno));
		return -errno;
	}
	log_info("controller: worker started", "routes=%s",
		 c->routes_path && *c->routes_path ? c->routes_path : "(built-in)");
	return 0;
}

/* Controller thread: the worker waits for the database (checked every second, once the
 * probe says it answers). */
static void retry_start_worker(struct controller *e, uint64_t now)
{
	char err[300];
	int ret;

	if (!e->routes || now - e->last_start_try_ns < 1000000000ULL)
		return;
	if (e->cfg.db_reachable && __atomic_load_n(e->cfg.db_reachable, __ATOMIC_ACQUIRE) != 1)
		return;
	e->last_start_try_ns = now;
	ret = try_start_worker(e, err, sizeof(err));
	if (ret && ret != -EAGAIN)
		log_error("controller: the worker cannot start", "err=\"%s\"", err);
}

/* The level in force and whose it is: a local pin (ov is manual then), else the cluster's
 * decision while one is in force, else this node's controller. A standby candidate's own
 * controller follows the cluster's level, so that on a takeover it goes on from there. */
static enum overload_state in_force(struct controller *e, bool local_pin, uint64_t now,
				    struct overload_actions *a, char *measured, size_t mlen)
{
	struct cshed *cs = cshed_of(e);
	struct cshed_decision d;
	enum overload_state level = e->ov.state;

	e->source = local_pin ? CSHED_SRC_LOCAL_PIN : CSHED_SRC_LOCAL;
	e->src_seq = 0;
	e->src_node[0] = '\0';
	snprintf(measured, mlen, "%s", e->ov.measured);
	if (!local_pin && cs && cshed_get(cs, &d)) {
		level = d.level;
		e->source = d.pinned ? CSHED_SRC_CLUSTER_PIN : CSHED_SRC_CLUSTER;
		e->src_seq = d.seq;
		snprintf(e->src_node, sizeof(e->src_node), "%.*s", (int)sizeof(e->src_node) - 1,
			 d.node);
		snprintf(measured, mlen, "controller=%s seq=%llu", d.node,
			 (unsigned long long)d.seq);
		if (e->cfg.run_worker && !d.pinned && !cshed_leader(cs))
			overload_adopt(&e->ov, level, "the cluster controller's decision", now);
	}
	if (cs && !local_pin) {
		/* after adopting: a standby offers the cluster's level until it holds the lease.
		 * A local pin is this node's only: the last own level stays offered. */
		struct overload_actions own;

		overload_actions_for(&e->cfg.overload, e->ov.state, &own);
		cshed_offer(cs, own.xdp_level, own.xdp_permille);
	}
	overload_actions_for(&e->cfg.overload, level, a);
	if (e->source >= CSHED_SRC_CLUSTER && e->source <= CSHED_SRC_CLUSTER_PIN &&
	    !e->cfg.overload.dry_run)
		memcpy(a->xdp_permille, d.permille, sizeof(a->xdp_permille));
	return level;
}

/* With a cluster: report this worker's lag, and as the holder decide on the largest lag
 * any worker reported (the cluster's), not only this one's. */
static void cluster_lag(struct controller *e, bool have_worker, struct overload_sample *s)
{
	struct cshed *cs = cshed_of(e);
	uint64_t lag[SLUICE_CLASS_MAX];

	if (!cs || !have_worker)
		return;
	cshed_report_lag(cs, s->lag_ns);
	if (!cshed_cluster_lag(cs, lag))
		return;
	for (int k = 0; k < SLUICE_CLASS_MAX; k++)
		if (lag[k] > s->lag_ns[k])
			s->lag_ns[k] = lag[k];
}

static void control_once(struct controller *e)
{
	struct overload_sample s = {.now_ns = clock_mono_ns()};
	struct sluice_config xc = {0};
	struct overload_actions a;
	struct worker_stats ws;
	enum overload_state level, before = e->applied;
	bool changed = false, have_xc = e->xcfg != NULL;
	char measured[sizeof(e->ov.measured)];
	struct worker *w;

	retry_start_worker(e, s.now_ns);
	w = worker_of(e);
	if (w) {
		struct pg_writer_stats ps;

		worker_get_stats(w, &ws);
		memcpy(s.lag_ns, ws.lag_ns, sizeof(s.lag_ns));
		memcpy(s.depth, ws.depth, sizeof(s.depth));
		memcpy(s.contended, ws.contended, sizeof(s.contended));
		s.pool_busy_permille = ws.busiest_permille;
		pg_writer_get_stats(worker_pg_writer(w), &ps);
		s.db_write_ns = ps.batch_latency_us.count
				    ? ps.batch_latency_us.sum * 1000 / ps.batch_latency_us.count
				    : 0;
	}
	if (have_xc)
		xdp_config_read(e->xcfg, &xc);
	cluster_lag(e, w != NULL, &s);
	follow_operator(e, &xc, have_xc, s.now_ns);
	overload_step(&e->ov, &s, &changed);
	level = in_force(e, have_xc && xc.shed_mode == SLUICE_SHED_MANUAL, s.now_ns, &a, measured,
			 sizeof(measured));
	e->applied = level;
	if (level != before)
		on_transition(e, before, level,
			      e->source == CSHED_SRC_CLUSTER || e->source == CSHED_SRC_CLUSTER_PIN
				  ? "the cluster's decision"
				  : e->ov.why,
			      measured);
	on_stepdown_held(e);
	if (w)
		worker_apply(w, &a);
	__atomic_store_n(&e->refuse_permille, a.low_refuse_permille, __ATOMIC_RELAXED);
	__atomic_store_n(&e->state, (uint32_t)level, __ATOMIC_RELAXED);
	__atomic_store_n(&e->source_pub, (uint32_t)e->source, __ATOMIC_RELAXED);
	if (have_xc && !e->cfg.overload.dry_run)
		push_xdp(e, &xc, &a);
}

static void *control_thread(void *arg)
{
	struct controller *e = arg;
	struct timespec due;

	pthread_mutex_lock(&e->lock);
	while (!e->stop) {
		due = clock_deadline(CLOCK_REALTIME, e->cfg.overload.period_ns);
		if (!e->kicked)
			pthread_cond_timedwait(&e->cv, &e->lock, &due);
		e->kicked = false;
		if (e->stop)
			break;
		pthread_mutex_unlock(&e->lock);
		control_once(e);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

struct controller *controller_new(const struct controller_cfg *cfg, char *err, size_t errlen)
{
	struct controller *e = calloc(1, sizeof(*e));
	int ret = -ENOMEM;

	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->cfg = *cfg;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cv, NULL);
	ret = overload_config_check(&cfg->overload, err, errlen);
	if (ret)
		goto fail;
	if (cfg->xdp_config_fd >= 0 && !(e->xcfg = xdp_config_map(cfg->xdp_config_fd))) {
		ret = -errno;
		snprintf(err, errlen, "the XDP config map: mmap: %s", strerror(errno));
		goto fail;
	}
	ret = register_metrics(e);
	if (ret) {
		snprintf(err, errlen, "metrics: %s", strerror(-ret));
		goto fail;
	}
	if (cfg->alert_url && *cfg->alert_url) {
		e->alert = alert_new(cfg->alert_url, cfg->alert_key, cfg->node);
		if (!e->alert) {
			ret = -errno;
			snprintf(err, errlen, "--alert-url %s: must be an http:// or https:// URL",
				 cfg->alert_url);
			goto fail;
		}
	}
	if (cfg->run_worker) {
		ret = prepare_worker(e, err, errlen);
		if (!ret)
			ret = try_start_worker(e, err, errlen);
		if (ret == -EAGAIN) {
			log_warn(
			    "controller: database unreachable, the worker starts when it answers; "
			    "events are accepted into the journal meanwhile",
			    "err=\"%s\"", err);
			ret = 0;
		}
		if (ret)
			goto fail;
	}
	overload_init(&e->ov, &cfg->overload, clock_mono_ns());
	if (pthread_create(&e->thread, NULL, control_thread, e)) {
		ret = -EAGAIN;
		snprintf(err, errlen, "start the overload controller thread");
		goto fail;
	}
	e->thread_started = true;
	return e;
fail:
	controller_free(e, 0);
	errno = -ret;
	return NULL;
}

void controller_free(struct controller *e, int drain_ms)
{
	if (!e)
		return;
	if (e->thread_started) {
		pthread_mutex_lock(&e->lock);
		e->stop = true;
		pthread_cond_signal(&e->cv);
		pthread_mutex_unlock(&e->lock);
		pthread_join(e->thread, NULL);
	}
	cshed_free(e->cshed); /* after controller_leave_cluster and the cluster thread */
	dlq_replayer_free(e->dlq);
	/* in-flight entries are durable in the queue: waiting for a database that does not
	 * answer buys nothing, they are redelivered on the next start */
	if (e->worker && pg_writer_health(worker_pg_writer(e->worker)) == PG_HEALTH_UNREACHABLE)
		drain_ms = 0;
	worker_free(e->worker, drain_ms);
	routes_free(e->routes);
	alert_free(e->alert);
	xdp_config_unmap(e->xcfg);
	free(e);
}

int controller_reload_routes(struct controller *e, char *err, size_t errlen)
{
	struct routes *r;

	if (!e || !worker_of(e) || !e->cfg.routes_path || !*e->cfg.routes_path)
		return 0;
	r = routes_load(e->cfg.routes_path, err, errlen);
	if (!r)
		return -EINVAL;
	return worker_set_routes(worker_of(e), r, err, errlen);
}

int controller_type_class(void *arg, const char *type)
{
	struct controller *e = arg;

	struct worker *w = e ? worker_of(e) : NULL;

	return w ? worker_type_class(w, type) : -1;
}

uint32_t controller_low_refuse_permille(const struct controller *e)
{
	return e ? __atomic_load_n(&e->refuse_permille, __ATOMIC_RELAXED) : 0;
}

static int cluster_metrics(struct controller *e)
{
	struct metrics *m = e->cfg.metrics;

	e->f_leader = metrics_family(
	    m, METRIC_GAUGE, "sluice_cluster_controller_leader",
	    "1 while this node holds the cluster's overload controller lease.", NULL, NULL, 0);
	e->f_takeovers = metrics_family(
	    m, METRIC_COUNTER, "sluice_cluster_controller_takeovers_total",
	    "Times this node took the cluster's overload controller lease.", NULL, NULL, 0);
	e->f_unreachable = metrics_family(
	    m, METRIC_COUNTER, "sluice_cluster_unreachable_total",
	    "Cluster shedding rounds that did not reach the cluster's Redis.", NULL, NULL, 0);
	e->f_seq = metrics_family(m, METRIC_GAUGE, "sluice_cluster_decision_seq",
				  "Sequence number of the last cluster overload decision seen.",
				  NULL, NULL, 0);
	return e->f_leader && e->f_takeovers && e->f_unreachable && e->f_seq ? 0 : -errno;
}

int controller_join_cluster(struct controller *e, struct cluster *cl, char *err, size_t errlen)
{
	struct cshed_config cc = {.candidate = e->cfg.run_worker,
				  .lease_ms = e->cfg.controller_lease_ms,
				  .on_change = on_cluster_change,
				  .on_change_arg = e,
				  .on_incident = on_incident,
				  .on_incident_arg = e};
	struct cshed *cs = cshed_new(cl, &cc);
	int ret;

	if (!cs) {
		snprintf(err, errlen,
			 "--controller-lease-ms %u: must be at least two --lease-period-ms (%u), "
			 "and --node a name without spaces",
			 e->cfg.controller_lease_ms, cluster_config(cl)->period_ms);
		return -EINVAL;
	}
	ret = cluster_metrics(e);
	if (!ret)
		ret = cluster_add_hook(cl, cshed_hook, cs);
	if (ret) {
		cshed_free(cs);
		snprintf(err, errlen, "cluster shedding: %s", strerror(-ret));
		return ret;
	}
	__atomic_store_n(&e->cshed, cs, __ATOMIC_RELEASE);
	log_info("overload: one decision for the cluster", "node=%s candidate=%s lease_ms=%u",
		 cluster_config(cl)->node, cc.candidate ? "yes" : "no",
		 cc.lease_ms ? cc.lease_ms : CSHED_LEASE_MS_DEFAULT);
	return 0;
}

void controller_leave_cluster(struct controller *e)
{
	if (e)
		cshed_leave(cshed_of(e));
}

enum overload_state controller_state(const struct controller *e)
{
	return e ? (enum overload_state)__atomic_load_n(&e->state, __ATOMIC_RELAXED)
		 : OVERLOAD_NORMAL;
}
