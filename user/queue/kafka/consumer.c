// SPDX-License-Identifier: MIT
/* consumer.c -- the Kafka queue backend's worker half: group, records, windows, commits
 *
 * Threads: the poll thread owns the consumer queue (batches of records), so the rebalance, commit
 * and statistics callbacks all run on it (rd_kafka_poll_set_consumer); the feeder calls next();
 * pool threads call ack(). All of them meet under k->lock.
 *
 * Order of a record: poll -> tracker add (unfinished) -> ready list -> next() (out) ->
 * ack() -> tracker done -> the poll thread commits the tracker's committable offset. A
 * record is in its partition's tracker from the moment it is polled, so no commit passes
 * it until it is acked, whether it waits on the ready list, runs, or is parked for a retry.
 *
 * Group membership and commits are in consumer_group.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "queue/event.h"
#include "queue/kafka/consumer_int.h"
#include "queue/kafka/kafka.h"

uint64_t kafka_entry_received_ns(const struct queue_entry *e)
{
	return kentry_of(e)->received_ns;
}

/* Pause or resume one partition (librdkafka's call only queues the request). Lock held. */
static void part_pause(struct kconsumer *k, struct kpart *kp, bool pause)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

	if (!l)
		return;
	rd_kafka_topic_partition_list_add(l, k->topics[kp->class], kp->partition);
	if (!(pause ? rd_kafka_pause_partitions(k->rk, l) : rd_kafka_resume_partitions(k->rk, l))) {
		kp->paused = pause;
		k->st.pauses += pause;
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* ---- records -> entries ----------------------------------------------------------- */

/* Header value as a string ("" when absent or too long). */
static const char *header(rd_kafka_headers_t *h, const char *name, char *buf, size_t len)
{
	const void *v;
	size_t n;

	buf[0] = 0;
	if (h && !rd_kafka_header_get_last(h, name, &v, &n) && v && n < len) {
		memcpy(buf, v, n);
		buf[n] = 0;
	}
	return buf;
}

static uint64_t header_u64(rd_kafka_headers_t *h, const char *name)
{
	char buf[32], *end;
	unsigned long long v;

	header(h, name, buf, sizeof(buf));
	if (!buf[0])
		return 0;
	errno = 0;
	v = strtoull(buf, &end, 10);
	return errno || *end ? 0 : v;
}

/* FNV-1a of the name: a stable slot stand-in when the owner gave no tenants lookup. */
static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h | 0x80000000u; /* never a real (small) slot */
}

/* The tenant: the sluice-tenant header, else the key up to '#' (a hot tenant's salt). An
 * invalid name stays "" and the record's data gets an empty tenant line, which the worker
 * cannot decode and dead-letters with the record (visible, never guessed). */
static void record_tenant(const rd_kafka_message_t *m, rd_kafka_headers_t *h,
			  char out[EVENT_TENANT_MAX + 1])
{
	char buf[EVENT_TENANT_MAX + 2];

	header(h, KAFKA_H_TENANT, buf, sizeof(buf));
	if (!buf[0] && m->key && m->key_len) {
		const char *hash = memchr(m->key, '#', m->key_len);
		size_t n = hash ? (size_t)(hash - (const char *)m->key) : m->key_len;

		if (n <= EVENT_TENANT_MAX) {
			memcpy(buf, m->key, n);
			buf[n] = 0;
		}
	}
	if (strlen(buf) > EVENT_TENANT_MAX || strchr(buf, '\n'))
		buf[0] = 0;
	memcpy(out, buf, EVENT_TENANT_MAX + 1);
	out[EVENT_TENANT_MAX] = 0;
}

/* A new entry for the record (not yet tracked). NULL on no memory. */
static struct queue_entry *entry_new(struct kconsumer *k, const rd_kafka_message_t *m, int c)
{
	rd_kafka_headers_t *h = NULL;
	char tenant[EVENT_TENANT_MAX + 1];
	size_t tl, len, bytes;
	struct queue_entry *e;
	struct kentry *ke;
	uint64_t due, now = clock_real_ns();
	rd_kafka_timestamp_type_t tst;
	int64_t ts_ms, slot;

	if (rd_kafka_message_headers(m, &h))
		h = NULL;
	record_tenant(m, h, tenant);
	tl = strlen(tenant);
	len = tl + 1 + m->len;
	bytes = sizeof(*e) + KENTRY_ALIGN8(len) + sizeof(*ke);
	if (len > UINT32_MAX || !(e = malloc(bytes)))
		return NULL;
	memset(e, 0, sizeof(*e));
	memcpy(e->data, tenant, tl);
	e->data[tl] = '\n';
	if (m->len)
		memcpy(e->data + tl + 1, m->payload, m->len);
	e->len = (uint32_t)len;
	e->class = (uint32_t)c;
	slot = k->cfg.tenant_slot ? k->cfg.tenant_slot(k->cfg.tenant_arg, tenant) : -1;
	e->tenant = slot >= 0 && slot <= UINT32_MAX ? (uint32_t)slot : name_hash(tenant);
	e->attempts = (uint32_t)header_u64(h, KAFKA_H_ATTEMPTS);
	ke = kentry_of(e);
	ke->offset = m->offset;
	ke->partition = m->partition;
	ke->bytes = (uint32_t)bytes;
	ke->received_ns = header_u64(h, KAFKA_H_RECEIVED);
	/* lag counts from the due time; a record without headers from the broker timestamp.
	 * The same record always gives the same enq_ns: the worker tells a redelivery of an
	 * event from another copy of it by the received time it stored. */
	due = header_u64(h, KAFKA_H_DUE);
	ts_ms = rd_kafka_message_timestamp(m, &tst);
	if (!due)
		due = ke->received_ns ? ke->received_ns
		      : ts_ms > 0     ? (uint64_t)ts_ms * 1000000ULL
				      : now;
	e->enq_ns = due;
	e->not_before_ns = due > now ? due : 0;
	return e;
}

/* Append e to its class's ready list (tracked already). Lock held. */
static void ready_add(struct kconsumer *k, struct kpart *kp, struct queue_entry *e)
{
	uint32_t c = e->class;

	kentry_of(e)->gen = kp->t.gen;
	e->id = ++k->next_id;
	if (k->tail[c])
		k->tail[c]->next = e;
	else
		k->head[c] = e;
	k->tail[c] = e;
	k->nready[c]++;
	k->bytes += e->len;
	k->st.records++;
	if (++kp->ready >= k->cfg.prefetch && !kp->paused)
		part_pause(k, kp, true);
}

/* Track and queue a polled batch under one lock (one wake-up for the feeder). Returns how
 * many messages were dealt with: all, or up to the first that found no memory (the caller
 * keeps the rest and offers them again). */
static int records_in(struct kconsumer *k, rd_kafka_message_t **msgs, int n)
{
	struct queue_entry *e[KCONSUMER_BATCH];
	int done = 0, added = 0;

	for (int i = 0; i < n; i++) {
		int c = msgs[i]->err ? -1 : kconsumer_class(k, rd_kafka_topic_name(msgs[i]->rkt));

		e[i] = NULL;
		if (c >= 0 && !(e[i] = entry_new(k, msgs[i], c))) {
			n = i; /* no memory: this one and the rest wait */
			break;
		}
	}
	pthread_mutex_lock(&k->lock);
	for (; done < n; done++) {
		struct kpart *kp;
		int err;

		if (!e[done])
			continue; /* an error or another topic: nothing to track */
		kp = kconsumer_part(k, e[done]->class, msgs[done]->partition);
		/* not ours: a straggler of a partition given up (its new owner reads it);
		 * -EINVAL: fetched again after a pause, tracked already */
		err = kp && kp->assigned
			  ? kafka_offsets_add(&kp->t, msgs[done]->offset, e[done]->enq_ns)
			  : -EINVAL;
		if (err == -ENOMEM)
			break;
		if (err) {
			free(e[done]);
			continue;
		}
		if (msgs[done]->offset == kp->mark_off && kp->mark_n > e[done]->attempts + 1)
			e[done]->attempts = kp->mark_n - 1; /* spent by earlier deliveries */
		ready_add(k, kp, e[done]);
		added++;
	}
	for (int i = done; i < n; i++)
		free(e[i]);
	if (added)
		pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->lock);
	if (added && k->notify)
		k->notify(k->notify_arg);
	return done;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	log_warn("kafka: client error", "err=\"%s\" reason=\"%s\"",
		 rd_kafka_err2str((rd_kafka_resp_err_t)err), reason);
}

/* ---- the poll thread -------------------------------------------------------------- */

/* Up to max records (and the callbacks queued before them) into k->batch; waits up to 50 ms
 * for the first one. librdkafka signals its queue once per fetched message set, so a
 * blocking wait for a whole batch wakes this thread once per set -- with small sets (a
 * short linger, many partitions) about once per record. Instead, once a record is there
 * the rest of the burst gets KCONSUMER_GATHER_US to arrive and is taken without waiting:
 * at most one wake-up per gather period under load (and at most that much added latency),
 * one per 50 ms when idle. */
static ssize_t poll_batch(struct kconsumer *k, size_t max)
{
	ssize_t n = rd_kafka_consume_batch_queue(k->cq, 0, k->batch, max), more;

	if (n == 0)
		n = rd_kafka_consume_batch_queue(k->cq, 50, k->batch, 1);
	if (n <= 0 || (size_t)n >= max)
		return n;
	usleep(KCONSUMER_GATHER_US);
	more = rd_kafka_consume_batch_queue(k->cq, 0, k->batch + n, max - (size_t)n);
	return more > 0 ? n + more : n;
}

static void *poller(void *arg)
{
	struct kconsumer *k = arg;
	uint64_t interval = (uint64_t)k->cfg.commit_interval_ms * 1000000ULL,
		 last = clock_mono_ns();

	while (!__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE)) {
		uint64_t now;

		if (!k->nbatch) { /* also serves the rebalance, commit and stats callbacks */
			/* a batch never exceeds the prefetch: a partition holds at most twice
			 * that (it is paused mid-batch, the rest of the batch still counts) */
			size_t max =
			    k->cfg.prefetch < KCONSUMER_BATCH ? k->cfg.prefetch : KCONSUMER_BATCH;
			ssize_t n = poll_batch(k, max);

			k->nbatch = n > 0 ? (int)n : 0;
			for (int i = 0; i < k->nbatch; i++)
				if (k->batch[i]->err &&
				    k->batch[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					log_warn("kafka: consume error", "err=\"%s\"",
						 rd_kafka_message_errstr(k->batch[i]));
			if (k->nbatch)
				kconsumer_mark_first(k, k->batch, k->nbatch);
		}
		if (k->nbatch) {
			int taken = records_in(k, k->batch, k->nbatch);

			for (int i = 0; i < taken; i++)
				rd_kafka_message_destroy(k->batch[i]);
			k->nbatch -= taken;
			memmove(k->batch, k->batch + taken, (size_t)k->nbatch * sizeof(*k->batch));
			if (k->nbatch)
				usleep(10000); /* no memory: try the rest again shortly */
		}
		now = clock_mono_ns();
		if (now - last >= interval) {
			last = now;
			kconsumer_commit(k, true);
		}
	}
	return NULL;
}

/* ---- queue_ops -------------------------------------------------------------------- */

static int kc_append(struct queue *q, const struct queue_rec *rec, queue_done_fn *done, void *arg)
{
	return -ENOTSUP; /* the ingress produces; a worker only consumes */
}

/* Take up to max ready entries, each class up to its window. Lock held. */
static int take(struct kconsumer *k, struct queue_entry **out, int max)
{
	int n = 0;

	for (uint32_t c = 0; c < QUEUE_CLASS_MAX; c++)
		while (n < max && k->head[c] && k->nout[c] < k->cfg.window) {
			struct queue_entry *e = k->head[c];
			struct kpart *kp = kconsumer_part(k, c, kentry_of(e)->partition);

			if (!(k->head[c] = e->next))
				k->tail[c] = NULL;
			e->next = NULL;
			k->nready[c]--;
			k->nout[c]++;
			out[n++] = e;
			if (kp && --kp->ready <= k->cfg.prefetch / 2 && kp->paused && kp->assigned)
				part_pause(k, kp, false);
		}
	return n;
}

static int kc_next(struct queue *q, struct queue_entry **out, int max, int timeout_ms)
{
	struct kconsumer *k = (struct kconsumer *)q;
	struct timespec dl;
	int n = 0;

	if (timeout_ms > 0)
		dl = clock_deadline(CLOCK_REALTIME, (uint64_t)timeout_ms * 1000000ULL);
	pthread_mutex_lock(&k->lock);
	while (!k->shut && !(n = take(k, out, max)) && timeout_ms) {
		if (timeout_ms < 0)
			pthread_cond_wait(&k->cv, &k->lock);
		else if (pthread_cond_timedwait(&k->cv, &k->lock, &dl))
			break;
	}
	pthread_mutex_unlock(&k->lock);
	return n;
}

static int kc_ack(struct queue *q, struct queue_entry *e)
{
	struct kconsumer *k = (struct kconsumer *)q;
	struct kentry *ke = kentry_of(e);
	struct kpart *kp;

	pthread_mutex_lock(&k->lock);
	k->nout[e->class]--;
	k->bytes -= e->len;
	k->acks++;
	kp = kconsumer_part(k, e->class, ke->partition);
	if (!kp || !kp->assigned || kp->t.gen != ke->gen || kafka_offsets_done(&kp->t, ke->offset))
		k->st.acks_stale++; /* revoked since: the new owner redelivers it */
	else
		kp->dirty = true;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->lock);
	free(e);
	return 0;
}

/* A retry's attempts: kept with the committed offset when the record is its partition's
 * oldest unfinished one (the one a new owner starts at); others only in memory. */
static int kc_note_attempt(struct queue *q, const struct queue_entry *e)
{
	struct kconsumer *k = (struct kconsumer *)q;
	struct kentry *ke = kentry_of(e);
	struct kpart *kp;

	pthread_mutex_lock(&k->lock);
	kp = kconsumer_part(k, e->class, ke->partition);
	if (kp && kp->assigned && kp->t.gen == ke->gen &&
	    (ke->offset == kp->mark_off || ke->offset == kafka_offsets_committable(&kp->t))) {
		uint32_t n = e->attempts; /* calls made: the next delivery counts itself */

		if (ke->offset != kp->mark_off) {
			kp->mark_off = ke->offset;
			kp->mark_n = kp->mark_sent = 0;
		}
		if (n > kp->mark_n) {
			kp->mark_n = n;
			kp->dirty = true;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int kc_replay(struct queue *q, queue_replay_fn *fn, void *arg)
{
	return 0; /* uncommitted records come back through next() from the committed offset */
}

static int kc_stats(struct queue *q, struct queue_stats *st)
{
	struct kconsumer *k = (struct kconsumer *)q;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&k->lock);
	for (int c = 0; c < QUEUE_CLASS_MAX; c++) {
		st->depth[c] = k->nready[c] + k->nout[c];
		st->entries += st->depth[c];
	}
	st->bytes = k->bytes;
	st->acks = k->acks;
	st->appends = st->durable = k->st.records;
	st->resident = st->entries;
	st->window_entries = k->cfg.window;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void kc_set_notify(struct queue *q, queue_notify_fn *fn, void *arg)
{
	struct kconsumer *k = (struct kconsumer *)q;

	pthread_mutex_lock(&k->lock);
	k->notify = fn;
	k->notify_arg = arg;
	pthread_mutex_unlock(&k->lock);
}

static void kc_shutdown(struct queue *q)
{
	struct kconsumer *k = (struct kconsumer *)q;

	pthread_mutex_lock(&k->lock);
	k->shut = true;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->lock);
}

static void kc_free(struct queue *q)
{
	struct kconsumer *k = (struct kconsumer *)q;

	kc_shutdown(q);
	__atomic_store_n(&k->stop, 1, __ATOMIC_RELEASE);
	if (k->poller_started)
		pthread_join(k->poller, NULL);
	for (int i = 0; i < k->nbatch; i++)
		rd_kafka_message_destroy(k->batch[i]);

	if (k->rk) {
		/* what is finished, then leave the group (its revoke commits again, a no-op) */
		kconsumer_commit(k, false);
		rd_kafka_consumer_close(k->rk);
		if (k->cq)
			rd_kafka_queue_destroy(k->cq);
		rd_kafka_destroy(k->rk);
		log_info("kafka: consumer closed; left the group", "acks=%llu",
			 (unsigned long long)k->acks);
	}
	for (int c = 0; c < QUEUE_CLASS_MAX; c++) {
		while (k->head[c]) {
			struct queue_entry *e = k->head[c];

			k->head[c] = e->next;
			free(e);
		}
		for (int32_t p = 0; p < k->nparts[c]; p++)
			if (k->parts[c][p]) {
				kafka_offsets_fini(&k->parts[c][p]->t);
				free(k->parts[c][p]);
			}
		free(k->parts[c]);
		free(k->topics[c]);
	}
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const struct queue_ops kafka_consumer_ops = {
    .name = "kafka",
    .append = kc_append,
    .next = kc_next,
    .ack = kc_ack,
    .replay = kc_replay,
    .stats = kc_stats,
    .set_notify = kc_set_notify,
    .shutdown = kc_shutdown,
    .note_attempt = kc_note_attempt,
    .free = kc_free,
};

/* ---- open ------------------------------------------------------------------------- */

static rd_kafka_conf_t *consumer_conf(struct kconsumer *k, const struct kafka_opts *o, char *err,
				      size_t errlen)
{
	rd_kafka_conf_t *conf = kafka_conf_new(o, err, errlen);
	/* tuning the operator may override with --kafka */
	const char *defaults[][2] = {{"statistics.interval.ms", "1000"},
				     {"queued.max.messages.kbytes", "16384"},
				     {"auto.offset.reset", "earliest"},
				     /* a dead worker's partitions move after the session timeout
				      * (librdkafka: 45 s); the heartbeat stays at a third of it */
				     {"session.timeout.ms", "10000"},
				     {"heartbeat.interval.ms", "1000"}};
	/* what the commit rule rests on */
	const char *fixed[][2] = {{"group.id", k->cfg.group},
				  {"partition.assignment.strategy", "cooperative-sticky"},
				  {"enable.auto.commit", "false"},
				  {"enable.auto.offset.store", "false"}};

	if (!conf)
		return NULL;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (kafka_conf_default(conf, o, defaults[i][0], defaults[i][1], err, errlen))
			goto fail;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (kafka_conf_require(conf, o, fixed[i][0], fixed[i][1], err, errlen))
			goto fail;
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_rebalance_cb(conf, kconsumer_rebalance_cb);
	rd_kafka_conf_set_offset_commit_cb(conf, kconsumer_commit_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_stats_cb(conf, kconsumer_stats_cb);
	if (kconsumer_rebalance_watch(conf, k)) {
		snprintf(err, errlen, "kafka: consumer: cannot add the rejoin interceptor");
		goto fail;
	}
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

static int subscribe(struct kconsumer *k, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(QUEUE_CLASS_MAX);
	rd_kafka_resp_err_t e;

	if (!l)
		return -ENOMEM;
	for (int c = 0; c < QUEUE_CLASS_MAX; c++)
		rd_kafka_topic_partition_list_add(l, k->topics[c], RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(k->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e) {
		snprintf(err, errlen, "kafka: subscribe to %s,%s,%s: %s", k->topics[0],
			 k->topics[1], k->topics[2], rd_kafka_err2str(e));
		return -EINVAL;
	}
	return 0;
}

struct queue *kafka_consumer_open(const struct kafka_opts *o, const struct kafka_consumer_cfg *c,
				  char *err, size_t errlen)
{
	struct kconsumer *k = calloc(1, sizeof(*k));
	rd_kafka_conf_t *conf;
	pthread_condattr_t ca;
	char why[512];
	int ret = -ENOMEM;

	if (!k)
		goto fail_errno;
	k->q.ops = &kafka_consumer_ops;
	k->cfg = *c;
	if (!k->cfg.group || !*k->cfg.group)
		k->cfg.group = KAFKA_GROUP_DEFAULT;
	k->cfg.window = k->cfg.window ? k->cfg.window : 1024;
	k->cfg.prefetch = k->cfg.prefetch ? k->cfg.prefetch : 512;
	k->cfg.commit_interval_ms = k->cfg.commit_interval_ms ? k->cfg.commit_interval_ms : 100;
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < QUEUE_CLASS_MAX; i++) {
		char t[256];

		if (kafka_topic_name(o, i, t, sizeof(t)) < 0) {
			snprintf(err, errlen, "--kafka-topic-prefix %s: too long", o->topic_prefix);
			ret = -EINVAL;
			goto fail;
		}
		if (!(k->topics[i] = strdup(t)))
			goto fail;
	}
	ret = -EINVAL;
	if (!(conf = consumer_conf(k, o, err, errlen)))
		goto fail;
	k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!k->rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "kafka: consumer: %s", why);
		goto fail;
	}
	rd_kafka_poll_set_consumer(k->rk);
	k->cq = rd_kafka_queue_get_consumer(k->rk);
	if ((ret = subscribe(k, err, errlen)))
		goto fail;
	ret = -pthread_create(&k->poller, NULL, poller, k);
	if (ret) {
		snprintf(err, errlen, "kafka: poll thread: %s", strerror(-ret));
		goto fail;
	}
	k->poller_started = true;
	log_info("kafka: consumer started", "group=%s topics=%s,%s,%s window=%u prefetch=%u",
		 k->cfg.group, k->topics[0], k->topics[1], k->topics[2], k->cfg.window,
		 k->cfg.prefetch);
	return &k->q;
fail:
	if (ret == -ENOMEM)
		snprintf(err, errlen, "kafka: consumer: %s", strerror(ENOMEM));
	kc_free(&k->q);
	errno = -ret;
	return NULL;
fail_errno:
	snprintf(err, errlen, "kafka: consumer: out of memory");
	errno = ENOMEM;
	return NULL;
}

bool kafka_consumer_joined(struct queue *q)
{
	struct kconsumer *k = (struct kconsumer *)q;
	bool j;

	pthread_mutex_lock(&k->lock);
	j = k->joined;
	pthread_mutex_unlock(&k->lock);
	return j;
}

void kafka_consumer_commit_now(struct queue *q)
{
	kconsumer_commit((struct kconsumer *)q, false);
}
