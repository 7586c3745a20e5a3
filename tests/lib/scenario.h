/* SPDX-License-Identifier: MIT */
/* scenario.h -- shared pieces of the scenario tests: services, loadgen runs, /metrics timelines
 *
 * A scenario starts its own PostgreSQL (and mock upstreams, Redis) in test__tmpdir(),
 * sluiced on a free loopback port with thresholds scaled down to seconds, and drives it
 * with the real tools/loadgen run as a child process whose JSON report is parsed here.
 * While the load runs, the test reads /metrics every sample period into a timeline
 * (overload state, lag and waiting per class, worker outcomes, transitions) that it can
 * assert on and print as a table. Every service is stopped by scn_stop, even on failure.
 */
#ifndef SLUICE_SCENARIO_H
#define SLUICE_SCENARIO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "ingress_harness.h"
#include "mockharness.h"
#include "pgharness.h"
#include "redisharness.h"

/* One tenant "acme" (API key "test") with credits that never limit a scenario, allowed
 * critical events (a tenant's class is the ceiling of its events'). */
#define SCN_TENANT_ACME                                                                            \
	"[acme]\nkey = " HARNESS_KEY_A_HEX "\nclass = critical\nreq_rate = 100000\n"               \
	"req_burst = 100000\n"

struct scn {
	struct pgh_server pg;
	struct mock_upstream ai, crm;
	struct redis_harness redis;
	struct sluiced_proc d;
	char routes[600];
};

/* Start PostgreSQL under test__tmpdir()/pg. 0 or -errno. */
int scn_start_pg(struct scn *s);
/* Write text to test__tmpdir()/name; the path goes into path. 0 or -errno. */
int scn_write(const char *name, const char *text, char *path, size_t cap);
/* Write routes_text to routes.ini and start sluiced with the journal, --pg, --routes,
 * one ingress thread and the extra args (NULL-terminated, may be NULL). 0 or -errno. */
int scn_start_daemon(struct scn *s, const char *tenants, const char *routes_text,
		     const char *const *extra);
/* p99 in ms of received -> result of step (e.g. "call:ai") over the events matching
 * cond (SQL on events e, e.g. "e.class = 'critical'"); -1 when none or on error. */
long long scn_step_p99_ms(const struct pgh_server *pg, const char *step, const char *cond);
/* Stop sluiced (SIGTERM; asserts it drains and exits 0, else prints its log tail and
 * SIGKILLs it), then the mocks, Redis and PostgreSQL. */
void scn_stop(struct scn *s);

/* ---- loadgen as a child process ---- */
struct scn_load {
	pid_t pid;
	char out[600]; /* its stdout: the JSON report */
	char log[600]; /* --log: one line per answer */
	json_t *report;
};

/* Start .output/loadgen --port port --json --log <file> args... (NULL-terminated). */
int scn_load_start(struct scn_load *l, int port, const char *const *args);
/* Wait up to timeout_ms for it to exit and parse its report. 0 or -errno. */
int scn_load_wait(struct scn_load *l, int timeout_ms);
/* Start and wait. */
int scn_load_run(struct scn_load *l, int port, const char *const *args, int timeout_ms);
bool scn_load_running(struct scn_load *l);
void scn_load_fini(struct scn_load *l);
/* A number from the report by dotted path ("status.202", "per_class.low.503", "per_key.0.429":
 * array elements by index); 0 if absent. */
long long scn_report_ll(const struct scn_load *l, const char *path);
double scn_report_f(const struct scn_load *l, const char *path);
/* Copy the answer log into table TABLE(key, type, class, status, kidx) in PostgreSQL. 0 or -1. */
int scn_load_log_to_pg(const struct scn_load *l, const struct pgh_server *pg, const char *table);

/* ---- /metrics ---- */
/* GET /metrics from admin_port (sluiced_proc.admin_port) into buf (the body only,
 * NUL-terminated). 0 or -errno. */
int scn_metrics(int admin_port, char *buf, size_t cap);
/* Sum of every series whose name{labels} begins with prefix (a whole name or name{label=..);
 * -1 when there is none. */
double scn_metric(const char *text, const char *prefix);

#define SCN_MAX_ROWS 512
#define SCN_EXTRA    4

struct scn_row {
	double t;		   /* seconds since the timeline began */
	int state;		   /* sluice_overload_state */
	double lag[3], waiting[3]; /* per class: critical, normal, low */
	double done, shed, skipped, transitions, accepted;
	double x[SCN_EXTRA]; /* the series the test asked for (scn_timeline_watch) */
};

struct scn_timeline {
	struct scn_row rows[SCN_MAX_ROWS];
	int n;
	double t0;
	int nx;
	const char *xlabel[SCN_EXTRA];
	char xseries[SCN_EXTRA][160];
};

/* Start a timeline (t = 0 now). */
void scn_timeline_init(struct scn_timeline *tl);
/* Also sample series (a scn_metric prefix) into row.x[i], i in call order; printed under
 * label (at most 6 characters). */
void scn_timeline_watch(struct scn_timeline *tl, const char *label, const char *series);
/* Read /metrics (from the admin port) once and append a row. 0 or -errno. */
int scn_timeline_sample(struct scn_timeline *tl, int admin_port);
/* Sample every period_ms while the load runs (and at least until min_s). */
void scn_timeline_follow(struct scn_timeline *tl, int admin_port, struct scn_load *l, int period_ms,
			 double min_s);
/* Print the timeline as a table (rates from consecutive rows). */
void scn_timeline_print(const struct scn_timeline *tl, FILE *out);
/* Seconds since the timeline began. */
double scn_timeline_now(const struct scn_timeline *tl);

#endif /* SLUICE_SCENARIO_H */
