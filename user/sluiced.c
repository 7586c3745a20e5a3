// SPDX-License-Identifier: MIT
/* sluiced.c -- the Sluice daemon: settings, BPF, tenants, ingress threads, signals
 *
 * Start-up order: settings (flags over config file) -> tenants file -> BPF (with --iface:
 * load, pin, attach; tenants into the maps) or userspace limits with one warning -> the
 * router and its metrics -> one loop per ingress thread, each with its own SO_REUSEPORT
 * listener. Then the main thread only handles signals (SIGHUP reload, SIGTERM/SIGINT
 * drain) and, once a second, the database reachability check for /readyz, so nothing slow
 * ever runs on an ingress thread.
 *
 * Shutdown order matters: loops drain (no new connections, in-flight requests answered)
 * and return; then the queue is closed, which delivers every outstanding completion; only
 * then are the loops freed, because a completion refers to its loop.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admit/admission.h"
#include "nic/bpf_loader.h"
#include "config.h"
#include "ingress/api.h"
#include "ingress/dedupe.h"
#include "lib/redis.h"
#include "control/controller.h"
#include "queue/event.h"
#include "lib/log.h"
#include "ingress/loop.h"
#include "lib/metrics.h"
#include "queue/journal/journal.h"
#include "queue/queue.h"
#include "admit/tenants.h"

#define MAX_THREADS 256

struct daemon {
	struct sluiced_cfg cfg;
	struct metrics *m;
	struct tenants_ref tenants;
	struct sluice_bpf *bpf;
	int fds[SLUICE_M_COUNT];
	bool have_fds;
	struct admission *adm;
	struct router router;
	struct loop *loops[MAX_THREADS];
	pthread_t threads[MAX_THREADS];
	int nthreads;
	char xdp_state[1100];
	struct metric_family *f_xdp_pkts, *f_xdp_bytes, *f_reloads;
	struct metric_family *f_q_appends, *f_q_durable, *f_q_fsyncs, *f_q_fsync_sec, *f_q_full;
	struct queue *q;
	int q_err; /* last append failure (-EIO, -ENOSPC), 0 after a durable append */
	struct controller *controller; /* worker + overload controller */
	struct redis *redis;	       /* the ingress's own client (fast-path duplicates) */
	struct dedupe *dedupe;	       /* in front of journal_append when --redis is given */
	uint64_t drain_deadline;       /* CLOCK_MONOTONIC ns, 0 until SIGTERM/SIGINT */
};

/* ---- the journal behind the router's queue interface ------------------------------- */

struct append_ctx {
	struct daemon *d;
	ingress_durable_fn *done;
	void *arg;
};

static void journal_done(void *arg, int err, uint64_t id)
{
	struct append_ctx *a = arg;

	__atomic_store_n(&a->d->q_err, err, __ATOMIC_RELAXED);
	a->done(a->arg, err, id);
	free(a);
}

/* Overload: at EMERGENCY a sampled share of new low-class events is refused (503). */
static bool shed_low(struct daemon *d, enum sluice_class class)
{
	uint32_t permille = controller_low_refuse_permille(d->controller), r;

	if (class != SLUICE_CLASS_LOW || !permille)
		return false;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)rand();
	return r % 1000 < permille;
}

static int journal_append(void *q, const struct ingress_event *ev, ingress_durable_fn *done,
			  void *arg)
{
	struct daemon *d = q;
	size_t need = event_encoded_len(ev->tenant, ev->body_len);
	char small[4096], *rec = need <= sizeof(small) ? small : malloc(need);
	struct queue_rec rec_hdr = {.class = ev->class, .tenant = ev->tenant_slot};
	struct append_ctx *a = malloc(sizeof(*a));
	int err, len;

	if (shed_low(d, ev->class)) {
		err = -EAGAIN;
		goto out;
	}
	err = -ENOMEM;
	if (!a || !rec)
		goto out;
	len = event_encode(ev->tenant, ev->body, ev->body_len, rec, need);
	if (len < 0) {
		err = len;
		goto out;
	}
	rec_hdr.len = (uint32_t)len;
	rec_hdr.data = rec;
	*a = (struct append_ctx){d, done, arg};
	err = queue_append(d->q, &rec_hdr, journal_done, a);
	if (!err)
		a = NULL;	 /* journal_done owns it now */
	else if (err != -ENOSPC) /* full is a state of the queue, not a failure */
		__atomic_store_n(&d->q_err, err, __ATOMIC_RELAXED);
out:
	free(a);
	if (rec != small)
		free(rec);
	return err;
}

/* The router's append: through the Redis fast path when there is one. */
static int ingress_append(void *q, const struct ingress_event *ev, ingress_durable_fn *done,
			  void *arg)
{
	struct daemon *d = q;

	return d->dedupe ? dedupe_append(d->dedupe, ev, done, arg)
			 : journal_append(d, ev, done, arg);
}

static int journal_writable(void *q, const char **why)
{
	struct daemon *d = q;
	struct queue_stats st;
	int err = __atomic_load_n(&d->q_err, __ATOMIC_RELAXED);

	if (err) {
		*why = err == -ENOSPC ? "journal disk full" : "journal write failed";
		return err;
	}
	if (queue_stats(d->q, &st))
		return (*why = "journal stats unavailable", -EIO);
	if ((st.max_entries && st.entries >= st.max_entries) ||
	    (st.max_bytes && st.bytes >= st.max_bytes))
		return (*why = "journal full", -ENOSPC);
	return 0;
}

static uint64_t journal_depth(void *q)
{
	struct queue_stats st;

	return queue_stats(((struct daemon *)q)->q, &st) ? 0 : st.entries;
}

/* Collect hook: the journal's own counters (group commit: durable / fsyncs = batch size). */
static void collect_queue(struct metrics *m, void *arg)
{
	struct daemon *d = arg;
	struct queue_stats st;

	if (queue_stats(d->q, &st))
		return;
	metric_set(metrics_series(d->f_q_appends, NULL), (double)st.appends);
	metric_set(metrics_series(d->f_q_durable, NULL), (double)st.durable);
	metric_set(metrics_series(d->f_q_fsyncs, NULL), (double)st.fsyncs);
	metric_set(metrics_series(d->f_q_fsync_sec, NULL), (double)st.fsync_ns / 1e9);
	metric_set(metrics_series(d->f_q_full, NULL), (double)st.refused_full);
}

static void queue_metrics(struct daemon *d)
{
	d->f_q_appends = metrics_family(d->m, METRIC_COUNTER, "sluice_queue_appends_total",
					"Events handed to the journal.", NULL, NULL, 0);
	d->f_q_durable = metrics_family(d->m, METRIC_COUNTER, "sluice_queue_durable_total",
					"Appends the journal confirmed durable.", NULL, NULL, 0);
	d->f_q_fsyncs = metrics_family(
	    d->m, METRIC_COUNTER, "sluice_queue_fsyncs_total",
	    "fdatasync calls covering at least one append (group commits).", NULL, NULL, 0);
	d->f_q_fsync_sec = metrics_family(d->m, METRIC_COUNTER, "sluice_queue_fsync_seconds_total",
					  "Time spent in those fdatasync calls.", NULL, NULL, 0);
	d->f_q_full = metrics_family(d->m, METRIC_COUNTER, "sluice_queue_refused_full_total",
				     "Appends refused because the queue was full.", NULL, NULL, 0);
	metrics_on_collect(d->m, collect_queue, d);
}

/* --redis: one client for the whole daemon -- the fast-path duplicate check in front of the
 * queue here, and the worker's fallback cache (handed to the controller). */
static int start_dedupe(struct daemon *d)
{
	struct redis_config rc;
	char err[256];

	if (!d->cfg.redis[0])
		return 0;
	redis_config_default(&rc);
	if (redis_config_set(&rc, "addr", d->cfg.redis, err, sizeof(err))) {
		fprintf(stderr, "sluiced: --redis %s: %s\n", d->cfg.redis, err);
		return -EINVAL;
	}
	d->redis = redis_new(&rc);
	if (d->redis)
		d->dedupe = dedupe_new(d->redis, 2, 24ULL * 3600 * 1000, journal_append, d);
	if (!d->dedupe) {
		fprintf(stderr, "sluiced: --redis %s: %s\n", d->cfg.redis, strerror(errno));
		return -errno;
	}
	log_info("dedupe: Redis fast path for duplicates", "redis=%s ttl=24h", d->cfg.redis);
	return 0;
}

static int open_journal(struct daemon *d)
{
	struct journal_cfg jc = {.dir = d->cfg.journal_dir,
				 .max_entries = (uint64_t)d->cfg.queue_max_entries,
				 .max_bytes = (uint64_t)d->cfg.queue_max_bytes,
				 .segment_bytes = (uint64_t)d->cfg.journal_segment_bytes,
				 /* the record is the tenant name, a newline and the body */
				 .max_record = (uint32_t)d->cfg.max_body + EVENT_TENANT_MAX + 1};

	if (!d->cfg.journal_dir[0]) {
		log_warn("queue: no --journal-dir: events are answered 503 (nothing durable)", "%s",
			 "");
		return 0;
	}
	d->q = journal_open(&jc);
	if (!d->q) {
		fprintf(stderr, "sluiced: --journal-dir %s: %s\n", d->cfg.journal_dir,
			strerror(errno));
		return -errno;
	}
	d->router.queue = (struct ingress_queue){
	    .q = d, .append = ingress_append, .writable = journal_writable, .depth = journal_depth};
	queue_metrics(d);
	log_info("queue: journal open", "dir=%s", d->cfg.journal_dir);
	return start_dedupe(d);
}

static const char *const verdict_names[SLUICE_V_MAX] = {"other", "pass",      "deny",
							"shed",	 "syn_limit", "pkt_limit"};

/* Collect hook: XDP per-CPU counters of every named slot (and the two reserved ones). */
static void collect_xdp(struct metrics *m, void *arg)
{
	struct daemon *d = arg;
	int ncpu = libbpf_num_possible_cpus();
	struct sluice_counters *per = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*per)) : NULL;
	struct tenants *t = tenants_ref_acquire(&d->tenants);

	for (uint32_t slot = 0; per && slot < SLUICE_SLOT_FIRST + tenants_count(t); slot++) {
		const struct tenant *tn =
		    slot < SLUICE_SLOT_FIRST ? NULL : tenants_at(t, slot - SLUICE_SLOT_FIRST);
		const char *name = tn			      ? tn->name
				   : slot == SLUICE_SLOT_ANON ? "(anonymous)"
							      : "(none)";
		__u32 key = tn ? tn->slot : slot;
		struct sluice_counters sum = {0};

		if (bpf_map_lookup_elem(d->fds[SLUICE_M_COUNTERS], &key, per))
			continue;
		for (int c = 0; c < ncpu; c++)
			for (int v = 0; v < SLUICE_V_MAX; v++) {
				sum.packets[v] += per[c].packets[v];
				sum.bytes[v] += per[c].bytes[v];
			}
		for (int v = 0; v < SLUICE_V_MAX; v++) {
			const char *lv[] = {name, verdict_names[v]};

			metric_set(metrics_series(d->f_xdp_pkts, lv), (double)sum.packets[v]);
			metric_set(metrics_series(d->f_xdp_bytes, lv), (double)sum.bytes[v]);
		}
	}
	tenants_put(t);
	free(per);
}

/* With --iface and BPF usable: load, pin, attach. Any failure leaves userspace mode and a
 * reason in why (the caller warns once). */
static int setup_bpf(struct daemon *d, char *why, size_t whylen)
{
	enum sluice_xdp_mode used;
	const char *reason, *how;
	char err[256];
	__u32 port, mask = SLUICE_PORT_TCP;

	if (!d->cfg.iface[0]) {
		snprintf(why, whylen, "no --iface given");
		return -ENODEV;
	}
	if (!sluice_bpf_available(&reason)) {
		snprintf(why, whylen, "--iface %s: BPF unavailable: %s", d->cfg.iface, reason);
		return -EPERM;
	}
	d->bpf = sluice_bpf_load(d->cfg.pin_dir, err, sizeof(err));
	if (!d->bpf) {
		snprintf(why, whylen, "--iface %s: loading the XDP program: %s", d->cfg.iface, err);
		return -errno;
	}
	for (int i = 0; i < SLUICE_M_COUNT; i++)
		d->fds[i] = sluice_bpf_map_fd(d->bpf, i);
	d->have_fds = true;
	if (sluice_bpf_attach(d->bpf, d->cfg.iface, SLUICE_XDP_AUTO, &used, &how, err,
			      sizeof(err))) {
		snprintf(why, whylen, "--iface %s: %s", d->cfg.iface, err);
		return -EIO;
	}
	port = ntohs(((struct sockaddr_in *)&d->cfg.addr)->sin_port);
	bpf_map_update_elem(d->fds[SLUICE_M_PORTS], &port, &mask, 0);
	snprintf(d->xdp_state, sizeof(d->xdp_state), "attached to %s (%s, %s)", d->cfg.iface,
		 sluice_xdp_mode_name(used), how);
	return 0;
}

static int load_tenants(struct daemon *d)
{
	struct tenants *t = NULL;
	char err[512];

	if (d->cfg.tenants[0]) {
		/* pinned maps from an earlier run know which slot each tenant had */
		struct tenants *pinned =
		    d->have_fds ? tenants_from_bpf(d->fds[SLUICE_M_TENANT_CFG]) : NULL;

		t = tenants_load(d->cfg.tenants, pinned, err, sizeof(err));
		tenants_put(pinned);
		if (!t) {
			fprintf(stderr, "sluiced: --tenants %s\n", err);
			return -EINVAL;
		}
		log_info("tenants: loaded", "file=%s tenants=%u", d->cfg.tenants, tenants_count(t));
	} else {
		log_warn("tenants: no --tenants file: every API key is refused with 401", "%s", "");
		t = tenants_load("/dev/null", NULL, err, sizeof(err));
	}
	tenants_ref_init(&d->tenants, t);
	return t ? 0 : -ENOMEM;
}

/* SIGHUP: a new table replaces the old one only if the whole file is good. */
static void reload_tenants(struct daemon *d)
{
	struct tenants *old = tenants_ref_acquire(&d->tenants), *t;
	char err[512];

	if (!d->cfg.tenants[0]) {
		log_warn("tenants: SIGHUP without --tenants: nothing to reload", "%s", "");
		goto out;
	}
	t = tenants_load(d->cfg.tenants, old, err, sizeof(err));
	if (!t) {
		log_error("tenants: reload refused, the running tenants stay", "error=\"%s\"", err);
		metric_add(metrics_series(d->f_reloads, (const char *[]){"refused"}), 1);
		goto out;
	}
	for (unsigned i = 0; i < tenants_count(t); i++)
		if (tenants_slot_is_new(t, old, tenants_at(t, i)->slot))
			admission_reset_slot(d->adm, tenants_at(t, i)->slot);
	if (d->have_fds && tenants_apply_bpf(t, old, d->fds, err, sizeof(err)))
		log_error("tenants: BPF maps not fully updated", "error=\"%s\"", err);
	tenants_ref_swap(&d->tenants, t);
	metric_add(metrics_series(d->f_reloads, (const char *[]){"ok"}), 1);
	log_info("tenants: reloaded", "file=%s tenants=%u", d->cfg.tenants, tenants_count(t));
out:
	tenants_put(old);
}

static void reload_routes(struct daemon *d)
{
	char err[512];

	if (controller_reload_routes(d->controller, err, sizeof(err)))
		log_error("routes: reload refused, the running routes stay", "error=\"%s\"", err);
	else if (d->cfg.routes[0])
		log_info("routes: reloaded", "file=%s", d->cfg.routes);
}

static void *thread_main(void *arg)
{
	struct loop *l = arg;
	int err = loop_run(l);

	if (err)
		log_error("loop: ring failed", "err=\"%s\"", strerror(-err));
	return NULL;
}

static int start_loops(struct daemon *d)
{
	struct loop_opts o = {.addr = (struct sockaddr *)&d->cfg.addr,
			      .addrlen = d->cfg.addrlen,
			      .max_conns_per_loop = (unsigned)d->cfg.max_conns + 64,
			      .send_timeout_ms = (int)d->cfg.send_timeout_ms,
			      .features_off = d->cfg.uring_off_bits};
	int port;

	d->nthreads = d->cfg.threads ? d->cfg.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (d->nthreads < 1 || d->nthreads > MAX_THREADS)
		d->nthreads = 1;
	for (int i = 0; i < d->nthreads; i++) {
		d->loops[i] = loop_new(&o, &d->router, i);
		if (!d->loops[i]) {
			fprintf(stderr, "sluiced: --listen %s: %s\n", d->cfg.listen,
				strerror(errno));
			return -errno;
		}
		/* port 0: every other thread binds the port the first one got */
		port = loop_port(d->loops[0]);
		if (d->cfg.addr.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&d->cfg.addr)->sin6_port = htons((uint16_t)port);
		else
			((struct sockaddr_in *)&d->cfg.addr)->sin_port = htons((uint16_t)port);
	}
	for (int i = 0; i < d->nthreads; i++)
		if (pthread_create(&d->threads[i], NULL, thread_main, d->loops[i]))
			return -EAGAIN;
	log_info("sluiced: listening", "addr=%s port=%d threads=%d", d->cfg.listen,
		 loop_port(d->loops[0]), d->nthreads);
	return 0;
}

static void check_db(struct daemon *d)
{
	if (!d->cfg.pg[0])
		return;
	__atomic_store_n(&d->router.db_state, PQping(d->cfg.pg) == PQPING_OK, __ATOMIC_RELAXED);
}

/* Signals until SIGTERM/SIGINT; returns the signal that ended it. */
static int wait_signals(struct daemon *d, const sigset_t *set)
{
	struct timespec second = {.tv_sec = 1};

	for (;;) {
		int sig = sigtimedwait(set, NULL, &second);

		if (sig == SIGHUP) {
			reload_tenants(d);
			reload_routes(d);
		} else if (sig == SIGTERM || sig == SIGINT)
			return sig;
		check_db(d);
	}
}

/* What is left of the drain timeout (the whole of it when no drain started). */
static int drain_left_ms(const struct daemon *d)
{
	uint64_t now = admission_now();

	if (!d->drain_deadline)
		return (int)d->cfg.drain_timeout_ms;
	return d->drain_deadline > now ? (int)((d->drain_deadline - now) / 1000000ULL) : 0;
}

static void drain(struct daemon *d, int sig)
{
	uint64_t deadline = admission_now() + (uint64_t)d->cfg.drain_timeout_ms * 1000000ULL;

	d->drain_deadline = deadline;

	log_info("sluiced: draining", "signal=%s timeout_ms=%lld", sig == SIGINT ? "INT" : "TERM",
		 d->cfg.drain_timeout_ms);
	__atomic_store_n(&d->router.draining, true, __ATOMIC_RELAXED);
	for (int i = 0; i < d->nthreads; i++)
		loop_drain(d->loops[i], deadline);
	for (int i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	d->nthreads = 0;
}

/* The worker retired (--max-messages / --max-age): drain and exit 0 like on SIGTERM. */
static void on_retire(void *arg)
{
	log_info("sluiced: worker retiring", "reason=\"max-messages or max-age reached\"%s", "");
	kill(getpid(), SIGTERM);
}

static int start_controller(struct daemon *d)
{
	struct controller_cfg ec = {.queue = d->q,
				    .metrics = d->m,
				    .run_worker = strcmp(d->cfg.role, "ingress") && d->cfg.pg[0],
				    .routes_path = d->cfg.routes,
				    .pg_conninfo = d->cfg.pg,
				    .redis = d->redis,
				    .max_messages = (uint64_t)d->cfg.max_messages,
				    .max_age_ns = d->cfg.max_age_ns,
				    .retire = on_retire,
				    .retire_arg = d,
				    .xdp_config_fd = d->have_fds ? d->fds[SLUICE_M_CONFIG] : -1,
				    .alert_url = d->cfg.alert_url,
				    .alert_key = d->cfg.alert_key,
				    .node = d->cfg.node};
	char err[512];

	if (!d->q)
		return 0; /* nothing durable to consume */
	if (!strcmp(d->cfg.role, "worker") && !d->cfg.pg[0]) {
		fprintf(stderr, "sluiced: --role worker needs --pg CONNINFO\n");
		return -EINVAL;
	}
	if (!ec.run_worker && strcmp(d->cfg.role, "ingress"))
		log_warn(
		    "controller: no --pg, the worker is off; accepted events stay in the journal "
		    "until a sluiced with --pg runs on it",
		    "%s", "");
	overload_config_default(&ec.overload);
	ec.overload.period_ns = (uint64_t)d->cfg.overload_period_ms * 1000000ULL;
	ec.overload.thin_lag_ns = (uint64_t)d->cfg.thin_lag_ms * 1000000ULL;
	ec.overload.emergency_lag_ns = (uint64_t)d->cfg.emergency_lag_ms * 1000000ULL;
	ec.overload.hold_ns = (uint64_t)d->cfg.overload_hold_ms * 1000000ULL;
	ec.overload.dry_run = d->cfg.overload_dry_run;
	d->controller = controller_new(&ec, err, sizeof(err));
	if (!d->controller) {
		fprintf(stderr, "sluiced: %s\n", err);
		return -EINVAL;
	}
	d->router.type_class = controller_type_class;
	d->router.type_class_arg = d->controller;
	log_info("controller: started", "role=%s worker=%s routes=%s", d->cfg.role,
		 ec.run_worker ? "yes" : "no", d->cfg.routes[0] ? d->cfg.routes : "(built-in)");
	return 0;
}

static int setup(struct daemon *d)
{
	struct admission_opts ao = {.dry_run = d->cfg.dry_run_limits,
				    .deny_after = (unsigned)d->cfg.deny_after,
				    .deny_secs = (unsigned)d->cfg.deny_secs};
	char why[1024], err[512];
	int ret;

	d->m = metrics_new();
	if (!d->m)
		return -ENOMEM;
	snprintf(d->xdp_state, sizeof(d->xdp_state), "off: no --iface given");
	/* BPF first: the pinned maps tell load_tenants which slot each tenant had */
	ret = setup_bpf(d, why, sizeof(why));
	if (ret && d->cfg.iface[0])
		snprintf(d->xdp_state, sizeof(d->xdp_state), "failed: %s", why);
	{
		int tret = load_tenants(d);

		if (tret)
			return tret;
	}
	d->adm = admission_new(&ao, ret ? NULL : d->fds, why);
	if (!d->adm)
		return -errno;
	if (!ret && tenants_apply_bpf(d->tenants.cur, NULL, d->fds, err, sizeof(err)))
		log_error("tenants: BPF maps not fully written", "error=\"%s\"", err);
	if ((ret = router_init(&d->router, &d->cfg, &d->tenants, d->adm, d->m)))
		return ret;
	d->router.xdp_state = d->xdp_state;
	if ((ret = open_journal(d)))
		return ret;
	if ((ret = start_controller(d)))
		return ret;
	d->router.xdp_ok = !d->cfg.iface[0] || admission_shared(d->adm);
	d->f_reloads =
	    metrics_family(d->m, METRIC_COUNTER, "sluice_tenants_reloads_total",
			   "Tenants file reloads (SIGHUP) by result.", "result", NULL, 0);
	if (d->have_fds && admission_shared(d->adm)) {
		d->f_xdp_pkts =
		    metrics_family(d->m, METRIC_COUNTER, "sluice_xdp_packets_total",
				   "Packets seen by XDP admission.", "tenant,verdict", NULL, 0);
		d->f_xdp_bytes =
		    metrics_family(d->m, METRIC_COUNTER, "sluice_xdp_bytes_total",
				   "Bytes seen by XDP admission.", "tenant,verdict", NULL, 0);
		metrics_on_collect(d->m, collect_xdp, d);
	}
	check_db(d);
	return 0;
}

static void teardown(struct daemon *d)
{
	/* the worker finishes what it holds, then the queue: it delivers every outstanding
	 * completion into the loops' inboxes */
	dedupe_free(d->dedupe);
	controller_free(d->controller, drain_left_ms(d));
	redis_free(d->redis); /* after both users */
	queue_free(d->q);
	for (int i = 0; i < MAX_THREADS; i++)
		loop_free(d->loops[i]);
	admission_free(d->adm);
	sluice_bpf_free(d->bpf); /* the attachment and the pins stay */
	if (d->tenants.cur)
		tenants_ref_fini(&d->tenants);
	metrics_free(d->m);
}

int main(int argc, char **argv)
{
	static struct daemon d;
	char err[512];
	sigset_t set;
	int ret, sig;

	ret = config_parse(&d.cfg, argc, argv, stdout, err, sizeof(err));
	if (ret == 1)
		return 0;
	if (ret) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit: only main takes them */
	sigdelset(&set, SIGPIPE);
	if ((ret = setup(&d)) || (ret = start_loops(&d))) {
		teardown(&d);
		return 1;
	}
	sig = wait_signals(&d, &set);
	drain(&d, sig);
	teardown(&d);
	log_info("sluiced: stopped", "%s", "");
	return 0;
}
