// SPDX-License-Identifier: MIT
/* sluiced.c -- the Sluice daemon: settings, BPF, tenants, ingress threads, signals
 *
 * Start-up order: settings (flags over config file) -> tenants file -> BPF (with --iface:
 * load, pin, attach; tenants into the maps) or userspace limits with one warning -> the
 * API and its metrics -> one loop per ingress thread, each with its own SO_REUSEPORT
 * listener. Then the main thread only handles signals (SIGHUP reload, SIGTERM/SIGINT
 * drain), so nothing slow ever runs on an ingress thread; the database reachability check
 * for /readyz runs on a thread of its own (sink/pg/probe.h), so a silent database never
 * delays a signal either.
 *
 * Shutdown order matters (written down once, above teardown()): every producer of queue
 * appends waits for its completions before it is freed, the queue delivers the rest, and
 * only then are the loops freed, because a completion refers to its loop.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admit/admission.h"
#include "admit/lease.h"
#include "lib/array_size.h"
#include "lib/clock.h"
#include "nic/bpf_loader.h"
#include "nic/iface.h"
#include "config.h"
#include "ingress/api.h"
#include "ingress/dedupe.h"
#include "lib/cluster.h"
#include "admit/cdeny.h"
#include "lib/redis.h"
#include "control/controller.h"
#include "queue/event.h"
#include "lib/log.h"
#include "ingress/loop.h"
#include "ingress/srclimit.h"
#include "ingress/src_rate.h"
#include "ingress/tls.h"
#include "ingress/tls_metrics.h"
#include "lib/metrics.h"
#include "lib/notify.h"
#include "queue/journal/journal.h"
#include "queue/kafka/consumer.h"
#include "queue/kafka/kafka.h"
#include "queue/queue.h"
#include "sink/pg/probe.h"
#include "admit/tenants.h"
#include "work/release.h"

#define MAX_THREADS 256
#define FD_PER_LOOP 5  /* listener, TLS listener, ring, inbox eventfd, one spare */
#define ADMIN_CONNS 64 /* connections to the admin listener (scrapers, probes) */
#define FD_RESERVE  32 /* opened after start: journal segments, database, Redis, upstreams */

struct daemon {
	struct sluiced_cfg cfg;
	struct metrics *m;
	struct tenants_ref tenants;
	struct sluice_bpf *bpf;
	int fds[SLUICE_M_COUNT];
	bool have_fds;
	struct admission *adm;
	struct ingress_limits limits; /* the HTTP edge's, from cfg */
	struct api api;
	struct srclimit *per_source;	     /* --max-conns-per-source, shared by the loops */
	struct loop *loops[MAX_THREADS + 1]; /* the ingress threads', then the admin one */
	pthread_t threads[MAX_THREADS + 1];
	int nthreads; /* ingress threads */
	int nloops;   /* running loops: nthreads, + 1 with --admin-listen */
	char xdp_state[1100];
	struct metric_family *f_xdp_pkts, *f_xdp_bytes, *f_reloads;
	struct metric_family *f_q_appends, *f_q_durable, *f_q_fsyncs, *f_q_fsync_sec, *f_q_full;
	struct queue *q;  /* what the worker consumes: the journal, or kworker's Kafka consumer */
	struct queue *kq; /* --queue kafka on an ingress: the producer (owns the spill journal) */
	/* the durable append under the Redis fast path: journal_append or kafka_append */
	int (*enqueue)(void *d, const struct ingress_event *ev, ingress_durable_fn *done,
		       void *arg);
	int q_err; /* last append failure (-EIO, -ENOSPC), 0 after a durable append */
	struct controller *controller; /* worker + overload controller */
	struct redis *redis;	       /* the ingress's own client (fast-path duplicates) */
	struct cluster *cluster;       /* --cluster-redis: membership and its hooks */
	struct lease *lease;	       /* its hook: this node's share of the tenant limits */
	struct cdeny *cdeny;	       /* --cluster-redis with --deny-after: denies shared */
	struct dedupe *dedupe;	       /* in front of journal_append when --redis is given */
	struct pg_probe *db_probe;     /* with --pg: api.db_state, once a second */
	uint64_t drain_deadline;       /* CLOCK_MONOTONIC ns, 0 until SIGTERM/SIGINT */
	struct tls_ctx *tls;	       /* with --tls-listen */
	struct tls_metrics *tls_metrics;
	struct src_rate *tls_rate; /* --tls-handshake-rate */
	char sni_paths[sizeof(((struct sluiced_cfg *)0)->tls_sni)];
	struct tls_cert_files sni[TLS_SNI_MAX];
	uint64_t tls_stamp;	 /* tls_files_stamp() at the last load (--tls-watch-s) */
	uint64_t tls_watched_ns; /* when the files were last looked at */
};

/* ---- the journal behind the API's queue interface ------------------------------- */

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

/* The API's append: through the Redis fast path when there is one. */
static int ingress_append(void *q, const struct ingress_event *ev, ingress_durable_fn *done,
			  void *arg)
{
	struct daemon *d = q;

	return d->dedupe ? dedupe_append(d->dedupe, ev, done, arg) : d->enqueue(d, ev, done, arg);
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

/* A Redis password: the first line of the file given by option flag (a mounted Secret), else
 * $env, else none. 0 or -errno with the message printed. */
static int redis_password_from(const char *file, const char *flag, const char *env,
			       struct redis_config *rc)
{
	const char *env_val = getenv(env);
	char line[sizeof(rc->password) + 2], err[300], envname[64];
	const char *pw = env_val, *from = envname;
	FILE *f;

	snprintf(envname, sizeof(envname), "$%s", env);
	if (file[0]) {
		from = file;
		f = fopen(from, "r");
		if (!f) {
			fprintf(stderr, "sluiced: %s %s: %s\n", flag, from, strerror(errno));
			return -EINVAL; /* a configuration error: exit 2 */
		}
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
		line[strcspn(line, "\r\n")] = 0;
		if (!line[0]) {
			fprintf(stderr, "sluiced: %s %s: empty first line\n", flag, from);
			return -EINVAL;
		}
		pw = line;
	}
	if (!pw || !*pw)
		return 0;
	/* never echo the value: the setter's message would */
	if (strlen(pw) >= sizeof(rc->password) ||
	    redis_config_set(rc, "password", pw, err, sizeof(err))) {
		fprintf(stderr, "sluiced: Redis password from %s: longer than %zu characters\n",
			from, sizeof(rc->password) - 1);
		return -EINVAL;
	}
	return 0;
}

/* The Redis password of --redis: --redis-password-file, else $SLUICE_REDIS_PASSWORD. */
static int redis_password(const struct sluiced_cfg *c, struct redis_config *rc)
{
	return redis_password_from(c->redis_password_file, "--redis-password-file",
				   "SLUICE_REDIS_PASSWORD", rc);
}

/* --cluster-redis: claim the node name (a live duplicate is a configuration error: exit 2)
 * and start the cluster thread with its hooks. */
static int start_cluster(struct daemon *d)
{
	struct cluster_config cc = {.period_ms = (uint32_t)d->cfg.lease_period_ms};
	char err[512];
	int ret;

	if (!d->cfg.cluster_redis[0]) {
		admission_share_clear(d->adm); /* no lease agent: the tenants' own limits */
		return 0;
	}
	redis_config_default(&cc.redis);
	cc.redis.connect_timeout_ms = 200;
	/* one script call for every tenant: up to a period (the ticker catches up) */
	cc.redis.op_timeout_ms = cc.period_ms < 200 ? 200 : cc.period_ms;
	if (redis_config_set(&cc.redis, "addr", d->cfg.cluster_redis, err, sizeof(err))) {
		fprintf(stderr, "sluiced: --cluster-redis %s: %s\n", d->cfg.cluster_redis, err);
		return -EINVAL;
	}
	if (d->cfg.cluster_redis_user[0] &&
	    redis_config_set(&cc.redis, "user", d->cfg.cluster_redis_user, err, sizeof(err))) {
		fprintf(stderr, "sluiced: --cluster-redis-user %s: %s\n", d->cfg.cluster_redis_user,
			err);
		return -EINVAL;
	}
	ret =
	    redis_password_from(d->cfg.cluster_redis_password_file, "--cluster-redis-password-file",
				"SLUICE_CLUSTER_REDIS_PASSWORD", &cc.redis);
	if (ret)
		return ret;
	snprintf(cc.node, sizeof(cc.node), "%s", d->cfg.node);
	d->cluster = cluster_new(&cc);
	if (!d->cluster) {
		fprintf(stderr, "sluiced: --cluster-redis %s: %s\n", d->cfg.cluster_redis,
			strerror(errno));
		return -errno;
	}
	ret = cluster_register(d->cluster, err, sizeof(err));
	if (ret == -EEXIST) {
		fprintf(stderr, "sluiced: --node %s: %s\n", d->cfg.node, err);
		return -EINVAL;
	}
	if (ret)
		log_warn("cluster: cannot register the node now; retrying every period",
			 "node=%s err=\"%s\"", d->cfg.node, err);
	d->lease = lease_new(
	    &(struct lease_opts){.cluster = d->cluster,
				 .adm = d->adm,
				 .tenants = &d->tenants,
				 .cfg_fd = d->have_fds ? d->fds[SLUICE_M_TENANT_CFG] : -1,
				 .counters_fd = d->have_fds ? d->fds[SLUICE_M_COUNTERS] : -1,
				 .metrics = d->m,
				 .grace_ms = (uint32_t)d->cfg.lease_grace_ms});
	if (!d->lease) {
		fprintf(stderr, "sluiced: lease agent: %s\n", strerror(errno));
		return -errno;
	}
	if (d->controller && controller_join_cluster(d->controller, d->cluster, err, sizeof(err))) {
		fprintf(stderr, "sluiced: %s\n", err);
		return -EINVAL;
	}
	if (d->cfg.deny_after && !(d->cdeny = cdeny_new(d->cluster, d->adm, d->m))) {
		fprintf(stderr, "sluiced: --deny-after with --cluster-redis: %s\n",
			strerror(errno));
		return -errno;
	}
	ret = cluster_run(d->cluster);
	if (ret) {
		fprintf(stderr, "sluiced: cluster thread: %s\n", strerror(-ret));
		return ret;
	}
	log_info("cluster: joined", "node=%s redis=%s period_ms=%lld grace_ms=%lld auth=%s",
		 d->cfg.node, d->cfg.cluster_redis, d->cfg.lease_period_ms, d->cfg.lease_grace_ms,
		 !cc.redis.password[0] ? "none"
		 : cc.redis.user[0]    ? cc.redis.user
				       : "default");
	return 0;
}

/* --redis: one client for the whole daemon -- the fast-path duplicate check in front of the
 * queue here, and the worker's fallback cache (handed to the controller). */
static int start_dedupe(struct daemon *d)
{
	struct redis_config rc;
	char err[256];
	int ret;

	if (!d->cfg.redis[0])
		return 0;
	redis_config_default(&rc);
	if (redis_config_set(&rc, "addr", d->cfg.redis, err, sizeof(err))) {
		fprintf(stderr, "sluiced: --redis %s: %s\n", d->cfg.redis, err);
		return -EINVAL;
	}
	if (d->cfg.redis_user[0] &&
	    redis_config_set(&rc, "user", d->cfg.redis_user, err, sizeof(err))) {
		fprintf(stderr, "sluiced: --redis-user %s: %s\n", d->cfg.redis_user, err);
		return -EINVAL;
	}
	ret = redis_password(&d->cfg, &rc);
	if (ret)
		return ret;
	d->redis = redis_new(&rc);
	if (d->redis)
		d->dedupe = dedupe_new(d->redis, 2, 24ULL * 3600 * 1000, d->enqueue, d);
	if (!d->dedupe) {
		fprintf(stderr, "sluiced: --redis %s: %s\n", d->cfg.redis, strerror(errno));
		return -errno;
	}
	log_info("dedupe: Redis fast path for duplicates", "redis=%s ttl=24h auth=%s", d->cfg.redis,
		 !rc.password[0] ? "none"
		 : rc.user[0]	 ? rc.user
				 : "default");
	return 0;
}

/* The journal's settings (the queue with --queue journal, the spill with --kafka-spill). */
static struct journal_cfg journal_cfg_of(const struct sluiced_cfg *c)
{
	return (struct journal_cfg){.dir = c->journal_dir,
				    .max_entries = (uint64_t)c->queue_max_entries,
				    .max_bytes = c->queue_max_bytes < 0
						     ? JOURNAL_MAX_BYTES_AUTO
						     : (uint64_t)c->queue_max_bytes,
				    .segment_bytes = (uint64_t)c->journal_segment_bytes,
				    /* the record is the tenant name, a newline and the body */
				    .max_record = (uint32_t)c->max_body + EVENT_TENANT_MAX + 1};
}

static int open_journal(struct daemon *d)
{
	struct journal_cfg jc = journal_cfg_of(&d->cfg);

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
	d->enqueue = journal_append;
	d->api.queue = (struct ingress_queue){
	    .q = d, .append = ingress_append, .writable = journal_writable, .depth = journal_depth};
	queue_metrics(d);
	release_metrics_register(d->m); /* parked call steps per upstream (issue 18) */
	log_info("queue: journal open", "dir=%s", d->cfg.journal_dir);
	return start_dedupe(d);
}

/* ---- Kafka (--queue kafka) --------------------------------------------------------- */

/* The event as a record of its class topic; done runs from the delivery report. */
static int kafka_append(void *q, const struct ingress_event *ev, ingress_durable_fn *done,
			void *arg)
{
	struct daemon *d = q;
	/* the request's first byte, on the wall clock the record carries */
	uint64_t received = clock_real_ns() - (clock_mono_ns() - ev->received_ns);

	return kafka_produce(d->kq,
			     &(struct kafka_event){.cls = ev->class,
						   .tenant = ev->tenant,
						   .idem_key = ev->idempotency_key,
						   .value = ev->body,
						   .len = ev->body_len,
						   .received_ns = received},
			     done, arg);
}

static int kafka_writable(void *q, const char **why)
{
	struct daemon *d = q;
	struct kafka_producer_stats st;

	if (kafka_producer_stats(d->kq, &st))
		return (*why = "kafka producer stats unavailable", -EIO);
	if (st.fatal)
		return (*why = "kafka producer failed (restart)", -EIO);
	if (st.kafka_down && !d->cfg.kafka.spill)
		return (*why = "kafka: no broker takes writes", -ENETDOWN);
	if (st.in_flight >= (uint64_t)d->cfg.kafka.queue_max)
		return (*why = "kafka producer queue full", -ENOSPC);
	return 0;
}

static uint64_t kafka_depth(void *q)
{
	struct kafka_producer_stats st;

	return kafka_producer_stats(((struct daemon *)q)->kq, &st) ? 0
								   : st.in_flight + st.spill_depth;
}

/* The consumer's tenant lookup: the slot the tenants file gives the name, -1 when it has
 * none (the consumer keys DRR by a hash of the name then). */
static int64_t kafka_tenant_slot(void *arg, const char *name)
{
	struct daemon *d = arg;
	struct tenants *t = tenants_ref_acquire(&d->tenants);
	int64_t slot = -1;

	for (unsigned i = 0; i < tenants_count(t) && slot < 0; i++)
		if (!strcmp(tenants_at(t, i)->name, name))
			slot = tenants_at(t, i)->slot;
	tenants_put(t);
	return slot;
}

/* /readyz of a worker-only node: a member of its consumer group and the database answers
 * (no journal is needed: the queue is Kafka). */
static int kafka_worker_ready(void *arg, const char **why)
{
	struct daemon *d = arg;

	if (!kafka_consumer_joined(d->q))
		return (*why = "kafka: not a member of the consumer group yet", -EAGAIN);
	if (__atomic_load_n(&d->api.db_state, __ATOMIC_RELAXED) != 1)
		return (*why = "database unreachable", -EAGAIN);
	*why = "joined the consumer group, database reachable";
	return 0;
}

/* The worker side (--role worker|all with --queue kafka): the consumer becomes d->q, the
 * queue the controller's worker takes events from. 0 or -errno (-EINVAL: exit 2). */
static int open_kafka_consumer(struct daemon *d)
{
	struct kafka_consumer_cfg kc = {
	    .group = d->cfg.kafka_group, .tenant_slot = kafka_tenant_slot, .tenant_arg = d};
	char err[600];

	d->q = kafka_consumer_open(&d->cfg.kafka, &kc, err, sizeof(err));
	if (!d->q) {
		fprintf(stderr, "sluiced: %s\n", err);
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	}
	if (kafka_consumer_metrics(d->q, d->m))
		return -ENOMEM;
	release_metrics_register(d->m); /* parked call steps per upstream (issue 18) */
	if (!strcmp(d->cfg.role, "worker")) {
		d->api.worker_ready = kafka_worker_ready;
		d->api.worker_ready_arg = d;
	}
	log_info("queue: kafka consumer", "brokers=%s group=%s topics=%s.{critical,normal,low}",
		 d->cfg.kafka.brokers, d->cfg.kafka_group, d->cfg.kafka.topic_prefix);
	return 0;
}

/* The producer for --role ingress|all (with the spill journal under --kafka-spill). */
static int open_kafka_producer(struct daemon *d)
{
	struct journal_cfg jc = journal_cfg_of(&d->cfg);
	struct queue *spill = NULL;
	char err[600];

	if (d->cfg.kafka.spill && !(spill = journal_open(&jc))) {
		fprintf(stderr, "sluiced: --journal-dir %s: %s\n", d->cfg.journal_dir,
			strerror(errno));
		return -errno;
	}
	d->kq = kafka_producer_open(&d->cfg.kafka, spill, err, sizeof(err));
	if (!d->kq) {
		fprintf(stderr, "sluiced: %s\n", err);
		return -EINVAL; /* librdkafka refuses only settings: a restart will not help */
	}
	d->enqueue = kafka_append;
	d->api.queue = (struct ingress_queue){
	    .q = d, .append = ingress_append, .writable = kafka_writable, .depth = kafka_depth};
	if (kafka_producer_metrics(d->m, d->kq))
		return -ENOMEM;
	log_info("queue: kafka producer",
		 "brokers=%s topics=%s.{critical,normal,low} spill=%s "
		 "queue_max=%lld hot_share=%d",
		 d->cfg.kafka.brokers, d->cfg.kafka.topic_prefix,
		 d->cfg.kafka.spill ? d->cfg.journal_dir : "off", d->cfg.kafka.queue_max,
		 d->cfg.kafka.hot_share_permille);
	if (!strcmp(d->cfg.role, "ingress"))
		log_info(d->cfg.cluster_redis[0]
			     ? "controller: a Kafka ingress node measures no lag; it applies the "
			       "cluster's overload decision (workers decide) and local pins"
			     : "controller: a Kafka ingress node measures no lag; without "
			       "--cluster-redis only local pins (sluicectl shed set) shed here",
			 "%s", "");
	return start_dedupe(d);
}

/* A worker consumes; dead-letter replays (sluicectl dlq replay) go back to the class
 * topics through a producer of its own, with no intake and no spill. */
static int open_replay_producer(struct daemon *d)
{
	struct kafka_opts o = d->cfg.kafka;
	char err[600];

	o.spill = 0; /* a replay that cannot be produced stays a dead letter */
	d->kq = kafka_producer_open(&o, NULL, err, sizeof(err));
	if (!d->kq) {
		fprintf(stderr, "sluiced: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

static int open_queue(struct daemon *d)
{
	int ret;

	if (strcmp(d->cfg.queue, "kafka"))
		return open_journal(d);
	if (strcmp(d->cfg.role, "worker") && (ret = open_kafka_producer(d)))
		return ret;
	if (!strcmp(d->cfg.role, "worker") && (ret = open_replay_producer(d)))
		return ret;
	return strcmp(d->cfg.role, "ingress") ? open_kafka_consumer(d) : 0;
}

static const char *const verdict_names[SLUICE_V_MAX] = {"other", "pass",      "deny",
							"shed",	 "syn_limit", "pkt_limit"};

/* Collect hook: XDP per-CPU counters of every named slot (and the two reserved ones). */
static void collect_xdp(struct metrics *m, void *arg)
{
	struct daemon *d = arg;
	struct tenants *t = tenants_ref_acquire(&d->tenants);

	for (uint32_t slot = 0; slot < SLUICE_SLOT_FIRST + tenants_count(t); slot++) {
		const struct tenant *tn =
		    slot < SLUICE_SLOT_FIRST ? NULL : tenants_at(t, slot - SLUICE_SLOT_FIRST);
		const char *name = tn			      ? tn->name
				   : slot == SLUICE_SLOT_ANON ? "(anonymous)"
							      : "(none)";
		__u32 key = tn ? tn->slot : slot;
		struct sluice_counters sum;

		if (sluice_bpf_counters_sum(d->fds[SLUICE_M_COUNTERS], key, &sum))
			continue;
		for (int v = 0; v < SLUICE_V_MAX; v++) {
			const char *lv[] = {name, verdict_names[v]};

			metric_set(metrics_series(d->f_xdp_pkts, lv), (double)sum.packets[v]);
			metric_set(metrics_series(d->f_xdp_bytes, lv), (double)sum.bytes[v]);
		}
	}
	tenants_put(t);
}

/* With --iface and BPF usable: load, pin, attach. Any failure leaves userspace mode and a
 * reason in why (the caller warns once). */
static int setup_bpf(struct daemon *d, char *why, size_t whylen)
{
	enum sluice_xdp_mode used;
	const char *reason, *how;
	char err[256], ifname[64];
	__u32 port, mask = SLUICE_PORT_TCP;
	int ret;

	if (!d->cfg.iface[0]) {
		snprintf(why, whylen, "no --iface given");
		return -ENODEV;
	}
	ret = nic_iface_resolve(d->cfg.iface, ifname, sizeof(ifname), err, sizeof(err));
	if (ret) {
		snprintf(why, whylen, "--iface %s", err);
		return ret;
	}
	if (strcmp(ifname, d->cfg.iface))
		log_info("bpf: interface chosen by address", "iface=%s spec=%s", ifname,
			 d->cfg.iface);
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
	if (sluice_bpf_attach(d->bpf, ifname, SLUICE_XDP_AUTO, &used, &how, err, sizeof(err))) {
		snprintf(why, whylen, "--iface %s: %s", d->cfg.iface, err);
		return -EIO;
	}
	port = ntohs(((struct sockaddr_in *)&d->cfg.addr)->sin_port);
	bpf_map_update_elem(d->fds[SLUICE_M_PORTS], &port, &mask, 0);
	if (d->cfg.tls_listen[0]) { /* the TLS port is a service port like the plain one */
		port = ntohs(((struct sockaddr_in *)&d->cfg.tls_addr)->sin_port);
		bpf_map_update_elem(d->fds[SLUICE_M_PORTS], &port, &mask, 0);
	}
	snprintf(d->xdp_state, sizeof(d->xdp_state), "attached to %s (%s, %s)", ifname,
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

/* ---- TLS -------------------------------------------------------------------------- */

/* The TLS settings as the engine takes them; --tls-sni "CERT:KEY,CERT:KEY" is split into
 * d->sni. -EINVAL with err naming the flag. */
static int tls_options(struct daemon *d, struct tls_opts *o, char *err, size_t errlen)
{
	char *save = NULL, *pair;
	unsigned n = 0;

	memset(o, 0, sizeof(*o));
	snprintf(d->sni_paths, sizeof(d->sni_paths), "%s", d->cfg.tls_sni);
	for (pair = strtok_r(d->sni_paths, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(pair, ':');

		if (!colon || colon == pair || !colon[1] || n == TLS_SNI_MAX) {
			snprintf(
			    err, errlen,
			    "sluiced: --tls-sni %.300s: expected CERT:KEY[,CERT:KEY...] (at most "
			    "%d)",
			    d->cfg.tls_sni, TLS_SNI_MAX);
			return -EINVAL;
		}
		*colon = '\0';
		d->sni[n++] = (struct tls_cert_files){pair, colon + 1};
	}
	o->dflt = (struct tls_cert_files){d->cfg.tls_cert, d->cfg.tls_key};
	o->sni = d->sni;
	o->n_sni = n;
	o->client_ca = d->cfg.tls_client_ca[0] ? d->cfg.tls_client_ca : NULL;
	o->handshake_timeout_ms = (unsigned)d->cfg.tls_handshake_timeout_ms;
	o->max_handshakes = (unsigned)d->cfg.tls_max_handshakes;
	o->ticket_rotate_s = (unsigned)d->cfg.tls_ticket_rotate_s;
	return 0;
}

static int setup_tls(struct daemon *d)
{
	struct tls_cert_info certs[1 + TLS_SNI_MAX];
	struct tls_opts o;
	char err[1024];
	unsigned n;

	if (!d->cfg.tls_listen[0])
		return 0;
	if (tls_options(d, &o, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -EINVAL;
	}
	d->tls = tls_ctx_new(&o, err, sizeof(err));
	if (!d->tls) {
		fprintf(stderr, "sluiced: --tls-cert/--tls-key/--tls-sni/--tls-client-ca: %s\n",
			err);
		return -EINVAL;
	}
	if (d->cfg.tls_handshake_rate &&
	    !(d->tls_rate = src_rate_new((unsigned)d->cfg.tls_handshake_rate, 65536)))
		return -ENOMEM;
	d->tls_metrics = tls_metrics_new(d->m, d->tls);
	if (!d->tls_metrics)
		return -ENOMEM;
	d->tls_stamp = tls_files_stamp(&o);
	d->tls_watched_ns = clock_mono_ns();
	n = tls_ctx_certs(d->tls, certs, ARRAY_SIZE(certs));
	for (unsigned i = 0; i < n && i < ARRAY_SIZE(certs); i++)
		log_info("tls: certificate", "name=%s file=%s not_after=%lld sni=%d", certs[i].name,
			 certs[i].file, (long long)certs[i].not_after, certs[i].sni);
	log_info("tls: records sealed in user space (OpenSSL on the io_uring loop's buffers)",
		 "ktls=\"%s\" mtls=%d handshake_rate=%lld",
		 tls_kernel_has_ktls() ? "kernel has the tls ULP; not used by this build"
				       : "unavailable: kernel has no tls ULP (CONFIG_TLS)",
		 tls_ctx_mtls(d->tls), d->cfg.tls_handshake_rate);
	return 0;
}

/* SIGHUP: new certificates only if every file loads and passes the checks. */
static void reload_tls(struct daemon *d)
{
	struct tls_opts o;
	char err[1024];

	if (!d->tls)
		return;
	if (!tls_options(d, &o, err, sizeof(err)))
		d->tls_stamp =
		    tls_files_stamp(&o); /* a refused load is not retried until they change */
	if (tls_options(d, &o, err, sizeof(err)) || tls_ctx_reload(d->tls, &o, err, sizeof(err)))
		log_error("tls: reload refused, the running certificates stay", "error=\"%s\"",
			  err);
	else
		log_info("tls: certificates reloaded", "file=%s sni=%u", d->cfg.tls_cert, o.n_sni);
}

/* --tls-watch-s: reload when the certificate files changed since the last load. A Secret
 * volume is updated by kubelet swapping a symlink to a new directory, both files at once. */
static void watch_tls(struct daemon *d)
{
	uint64_t now = clock_mono_ns();
	struct tls_opts o;
	char err[1024];

	if (!d->tls || !d->cfg.tls_watch_s ||
	    now - d->tls_watched_ns < (uint64_t)d->cfg.tls_watch_s * 1000000000ULL)
		return;
	d->tls_watched_ns = now;
	if (tls_options(d, &o, err, sizeof(err)) || tls_files_stamp(&o) == d->tls_stamp)
		return;
	log_info("tls: certificate files changed, reloading", "file=%s", d->cfg.tls_cert);
	reload_tls(d);
}

static void reload_routes(struct daemon *d)
{
	char err[512];

	if (controller_reload_routes(d->controller, err, sizeof(err)))
		log_error("routes: reload refused, the running routes stay", "error=\"%s\"", err);
	else if (d->cfg.routes[0])
		log_info("routes: reloaded", "file=%s", d->cfg.routes);
}

/* Exit status when a loop failed: 0 none, else 1 or 2 (the environment forbids io_uring). */
static int loop_failure;

/* A loop that cannot run must not leave a daemon that listens and answers nothing: it stops
 * the whole process (SIGTERM to itself: the main thread drains the others). */
static void *thread_main(void *arg)
{
	struct loop *l = arg;
	int err = loop_run(l);

	if (!err)
		return NULL;
	if (err == -ENOSYS || err == -EPERM) {
		log_error(
		    "loop: io_uring refused: a seccomp profile blocks io_uring_* (containerd 2.0 "
		    "and Docker 25 defaults do; deploy/k8s ships a Localhost profile) or "
		    "kernel.io_uring_disabled is set",
		    "err=\"%s\"", strerror(-err));
		__atomic_store_n(&loop_failure, 2, __ATOMIC_RELAXED);
	} else {
		log_error("loop: ring failed", "err=\"%s\"", strerror(-err));
		__atomic_store_n(&loop_failure, 1, __ATOMIC_RELAXED);
	}
	kill(getpid(), SIGTERM);
	return NULL;
}

/* Descriptors open now, or -1 when /proc is not there. */
static int open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = -1; /* the directory's own descriptor */

	if (!dir)
		return -1;
	while (readdir(dir))
		n++;
	closedir(dir);
	return n - 2; /* "." and ".." */
}

/* Make room for --max-conns under RLIMIT_NOFILE: raise the soft limit towards the hard one
 * as far as needed, and if that is not enough, lower max_conns to what fits, keeping a
 * reserve for what is open now, each loop (listener, ring, eventfd, spare) and what opens
 * later (journal segments, database, Redis, upstream calls). Without it, accept fails with
 * EMFILE while connections are still admitted. */
static void fit_fd_limit(struct daemon *d, int loops)
{
	long long reserve = open_fds() + FD_PER_LOOP * loops + FD_RESERVE, want;
	struct rlimit rl;

	if (reserve < FD_PER_LOOP * loops + FD_RESERVE || getrlimit(RLIMIT_NOFILE, &rl) ||
	    rl.rlim_cur == RLIM_INFINITY)
		return;
	want = d->cfg.max_conns + reserve;
	if ((rlim_t)want > rl.rlim_cur && rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = {.rlim_cur =
					(rlim_t)want < rl.rlim_max ? (rlim_t)want : rl.rlim_max,
				    .rlim_max = rl.rlim_max};

		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl = up;
	}
	if ((rlim_t)want <= rl.rlim_cur)
		return;
	d->cfg.max_conns = (long long)rl.rlim_cur > reserve ? (long long)rl.rlim_cur - reserve : 1;
	d->limits.max_conns = (unsigned)d->cfg.max_conns;
	log_warn("sluiced: --max-conns clamped to the file-descriptor limit (raise it: ulimit -n, "
		 "LimitNOFILE=)",
		 "max_conns=%lld nofile=%llu reserve=%lld", d->cfg.max_conns,
		 (unsigned long long)rl.rlim_cur, reserve);
}

/* The admin listener: its own loop on its own thread, so a scrape is answered while the
 * public port is busy or full. Not SO_REUSEPORT: a second daemon on the same admin address
 * fails here, loudly, instead of sharing the scrapes. */
static int start_admin(struct daemon *d)
{
	struct loop_opts o = {.addr = (struct sockaddr *)&d->cfg.admin_addr,
			      .addrlen = d->cfg.admin_addrlen,
			      .entries = 64,
			      .bufs = 64,
			      .max_conns_per_loop = ADMIN_CONNS,
			      .send_timeout_ms = (int)d->cfg.send_timeout_ms,
			      .admin = true};
	struct loop *l = loop_new(&o, &d->api, d->nthreads);

	if (!l) {
		fprintf(stderr,
			"sluiced: --admin-listen %s: %s (another sluiced? pick a port, or off)\n",
			d->cfg.admin_listen, strerror(errno));
		return -errno;
	}
	d->loops[d->nloops++] = l;
	return 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static int start_loops(struct daemon *d)
{
	struct loop_opts o = {
	    .addr = (struct sockaddr *)&d->cfg.addr,
	    .addrlen = d->cfg.addrlen,
	    .send_timeout_ms = (int)d->cfg.send_timeout_ms,
	    .features_off = d->cfg.uring_off_bits,
	    .tls_addr = d->tls ? (struct sockaddr *)&d->cfg.tls_addr : NULL,
	    .tls_addrlen = d->cfg.tls_addrlen,
	    .tls = d->tls,
	    .tls_timeout_ns = (uint64_t)d->cfg.tls_handshake_timeout_ms * 1000000ULL,
	    .tls_rate = d->tls_rate,
	    .tls_deny_secs = (unsigned)d->cfg.deny_secs,
	};
	int port, err;

	d->nthreads = d->cfg.threads ? d->cfg.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (d->nthreads < 1 || d->nthreads > MAX_THREADS)
		d->nthreads = 1;
	fit_fd_limit(d, d->nthreads + 1);
	o.max_conns_per_loop = (unsigned)d->cfg.max_conns + 64;
	if (d->cfg.max_conns_per_source) {
		d->per_source = srclimit_new((unsigned)d->cfg.max_conns_per_source);
		if (!d->per_source)
			return -ENOMEM;
		o.per_source = d->per_source;
	}
	for (int i = 0; i < d->nthreads; i++) {
		d->loops[i] = loop_new(&o, &d->api, i);
		if (!d->loops[i]) {
			fprintf(stderr, "sluiced: --listen %s: %s\n", d->cfg.listen,
				strerror(errno));
			return -errno;
		}
		/* port 0: every other thread binds the port the first one got */
		port = loop_port(d->loops[0]);
		set_port(&d->cfg.addr, port);
		if (d->tls)
			set_port(&d->cfg.tls_addr, loop_tls_port(d->loops[0]));
	}
	d->nloops = d->nthreads;
	if (d->cfg.admin_addrlen && (err = start_admin(d)))
		return err;
	for (int i = 0; i < d->nloops; i++)
		if (pthread_create(&d->threads[i], NULL, thread_main, d->loops[i]))
			return -EAGAIN;
	/* admin first: "sluiced: listening" is the line that says everything is up */
	if (d->nloops > d->nthreads)
		log_info("sluiced: admin listening",
			 "addr=%s port=%d paths=/metrics,/readyz,/healthz", d->cfg.admin_listen,
			 loop_port(d->loops[d->nthreads]));
	log_info("sluiced: listening", "addr=%s port=%d threads=%d max_conns=%lld per_source=%lld",
		 d->cfg.listen, loop_port(d->loops[0]), d->nthreads, d->cfg.max_conns,
		 d->cfg.max_conns_per_source);
	if (d->tls)
		log_info("sluiced: listening for TLS", "addr=%s port=%d", d->cfg.tls_listen,
			 loop_tls_port(d->loops[0]));
	return 0;
}

/* systemd Type=notify: ready only now, after journal recovery and with every listener up. */
static void notify_ready(struct daemon *d)
{
	char state[300];
	int ret;

	snprintf(state, sizeof(state),
		 "READY=1\nSTATUS=listening on port %d, XDP %.200s\nMAINPID=%d",
		 loop_port(d->loops[0]), d->xdp_state[0] ? d->xdp_state : "off", (int)getpid());
	ret = notify_send(state);
	if (ret)
		log_warn("sluiced: cannot notify systemd", "socket=%s err=\"%s\"",
			 getenv("NOTIFY_SOCKET"), strerror(-ret));
}

/* With --pg: api.db_state (/readyz, a worker's readiness) from the probe thread, checked
 * once a second; "unreachable" until its first answer. 0 or -errno (-EINVAL: exit 2). */
static int start_db_probe(struct daemon *d)
{
	struct pg_probe_cfg pc = {
	    .conninfo = d->cfg.pg, .period_ms = 1000, .state = &d->api.db_state};
	char err[512];

	if (!d->cfg.pg[0])
		return 0;
	d->db_probe = pg_probe_start(&pc, err, sizeof(err));
	if (!d->db_probe) {
		int ret = -errno;

		fprintf(stderr, "sluiced: --pg: %s\n", err);
		return ret;
	}
	return 0;
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
			reload_tls(d);
		} else if (sig == SIGTERM || sig == SIGINT)
			return sig;
		watch_tls(d);
	}
}

/* What is left of the drain timeout (the whole of it when no drain started). */
static int drain_left_ms(const struct daemon *d)
{
	uint64_t now = clock_mono_ns();

	if (!d->drain_deadline)
		return (int)d->cfg.drain_timeout_ms;
	return d->drain_deadline > now ? (int)((d->drain_deadline - now) / 1000000ULL) : 0;
}

static void drain(struct daemon *d, int sig)
{
	uint64_t deadline = clock_mono_ns() + (uint64_t)d->cfg.drain_timeout_ms * 1000000ULL;

	d->drain_deadline = deadline;

	log_info("sluiced: draining", "signal=%s timeout_ms=%lld", sig == SIGINT ? "INT" : "TERM",
		 d->cfg.drain_timeout_ms);
	notify_send("STOPPING=1\nSTATUS=draining");
	__atomic_store_n(&d->api.draining, true, __ATOMIC_RELAXED);
	for (int i = 0; i < d->nloops; i++)
		loop_drain(d->loops[i], deadline);
	for (int i = 0; i < d->nloops; i++)
		pthread_join(d->threads[i], NULL);
	d->nloops = 0;
}

/* The worker retired (--max-messages / --max-age): drain and exit 0 like on SIGTERM. */
static void on_retire(void *arg)
{
	log_info("sluiced: worker retiring", "reason=\"max-messages or max-age reached\"%s", "");
	kill(getpid(), SIGTERM);
}

static int start_controller(struct daemon *d)
{
	/* a Kafka ingress node has only the producer: its controller runs no worker and
	 * follows the cluster's decision into XDP and intake */
	struct controller_cfg ec = {.queue = d->q ? d->q : d->kq,
				    .replay_queue = d->q && d->kq ? d->kq : NULL,
				    .metrics = d->m,
				    .run_worker = strcmp(d->cfg.role, "ingress") && d->cfg.pg[0],
				    .routes_path = d->cfg.routes,
				    .pg_conninfo = d->cfg.pg,
				    .db_reachable = &d->api.db_state,
				    .redis = d->redis,
				    .max_messages = (uint64_t)d->cfg.max_messages,
				    .max_age_ns = d->cfg.max_age_ns,
				    .retire = on_retire,
				    .retire_arg = d,
				    .xdp_config_fd = d->have_fds ? d->fds[SLUICE_M_CONFIG] : -1,
				    .alert_url = d->cfg.alert_url,
				    .alert_key = d->cfg.alert_key,
				    .node = d->cfg.node,
				    .controller_lease_ms = (uint32_t)d->cfg.controller_lease_ms};
	char err[512];

	if (!ec.queue)
		return 0; /* nothing durable: no journal and no Kafka */
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
	_Static_assert(sizeof(ec.overload.shares) == sizeof(d->cfg.shares),
		       "shares [state][class]");
	memcpy(ec.overload.shares, d->cfg.shares, sizeof(ec.overload.shares));
	memcpy(ec.max_wait_ns, d->cfg.max_wait_ns, sizeof(ec.max_wait_ns));
	d->controller = controller_new(&ec, err, sizeof(err));
	if (!d->controller) {
		fprintf(stderr, "sluiced: %s\n", err);
		return -EINVAL;
	}
	d->api.type_class = controller_type_class;
	d->api.type_class_arg = d->controller;
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
	d->limits = (struct ingress_limits){
	    .max_body = (uint64_t)d->cfg.max_body,
	    .max_header_bytes = (size_t)d->cfg.max_header_bytes,
	    .max_line = (size_t)d->cfg.max_line,
	    .max_headers = (unsigned)d->cfg.max_headers,
	    .max_conns = (unsigned)d->cfg.max_conns,
	    .header_ns = (uint64_t)d->cfg.header_timeout_ms * 1000000,
	    .idle_ns = (uint64_t)d->cfg.idle_timeout_ms * 1000000,
	    .retry_after_503 = d->cfg.retry_after_503,
	};
	if ((ret = api_init(&d->api, &d->limits, &d->tenants, d->adm, d->m)))
		return ret;
	if ((ret = setup_tls(d)))
		return ret;
	d->api.xdp_state = d->xdp_state;
	if ((ret = open_queue(d)))
		return ret;
	if ((ret = start_controller(d)))
		return ret;
	d->api.xdp_ok = !d->cfg.iface[0] || admission_shared(d->adm);
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
	if ((ret = start_cluster(d)))
		return ret;
	return start_db_probe(d);
}

/* Shutdown order. A queue completion runs on the journal's flusher thread and points at its
 * producer (dedupe job, dlq replayer, append_ctx -> loop), so every producer stops making
 * appends and waits for the completions of the ones it made while the queue still runs,
 * and the queue goes before the loops that its last completions post into:
 *   1. loops drained and joined (drain(): no new request, in-flight ones answered);
 *   2. dedupe_free: its threads end, then it waits for its appends' completions;
 *   3. controller_free: the dlq replayer waits for its appends' completions the same way,
 *      then the worker finishes (or gives back) what it holds and acks;
 *   4. redis_free, after both of its users;
 *   5. queue_free: the flusher delivers every outstanding completion and stops;
 *   6. loop_free (public and admin loops): nothing can post into an inbox any more; then
 *      what their connections held (per-source counts, TLS contexts).
 * Each step waits for completions; nothing relies on timing. */
static void teardown(struct daemon *d)
{
	pg_probe_stop(d->db_probe);		 /* before anything: it only writes api.db_state */
	controller_leave_cluster(d->controller); /* the lease back while the thread runs */
	cluster_free(d->cluster); /* first: its hooks read the tenants and write the maps */
	lease_free(d->lease);
	cdeny_free(d->cdeny); /* after its hook's thread */
	dedupe_free(d->dedupe);
	controller_free(d->controller, drain_left_ms(d));
	redis_free(d->redis); /* after both users */
	queue_free(d->q);
	queue_free(d->kq); /* after dedupe: its appends' completions come from here */
	for (int i = 0; i < MAX_THREADS + 1; i++)
		loop_free(d->loops[i]);
	srclimit_free(d->per_source); /* after the loops: their connections hold counts */
	tls_ctx_free(d->tls);	      /* after the loops: their connections hold its generations */
	src_rate_free(d->tls_rate);
	admission_free(d->adm);
	sluice_bpf_free(d->bpf); /* the attachment and the pins stay */
	if (d->tenants.cur)
		tenants_ref_fini(&d->tenants);
	metrics_free(d->m);
	tls_metrics_free(d->tls_metrics);
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
		/* a broken file or setting is not fixed by a restart (RestartPreventExitStatus=2)
		 */
		return ret == -EINVAL ? 2 : 1;
	}
	notify_ready(&d);
	sig = wait_signals(&d, &set);
	drain(&d, sig);
	teardown(&d);
	log_info("sluiced: stopped", "%s", "");
	return __atomic_load_n(&loop_failure, __ATOMIC_RELAXED);
}
