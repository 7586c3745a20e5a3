// SPDX-License-Identifier: MIT
/* producer.c -- the Kafka producer backend of the ingress (--queue kafka, --role ingress)
 *
 * Every accepted event becomes one record on its class topic (format in kafka.h) through
 * an idempotent producer with acks=all. The event's completion -- and so its 202 -- runs
 * only from the delivery report of that record, on this backend's poll thread, exactly
 * once: success only when every in-sync replica has it. A report with an error answers
 * 503 (-ETIMEDOUT / -EIO), or with --kafka-spill, when the error means no broker takes
 * writes, goes to the local journal and is answered once that is synced (spill.c).
 *
 * Bounds: at most --kafka-queue-max records produced and not yet reported (-ENOSPC past
 * it: 503 at intake, counted); librdkafka's own queue is sized above that. While no broker
 * takes writes (librdkafka reported all brokers down, or a delivery failed that way) and
 * there is no spill, intake is refused at once (-ENETDOWN) but for one probe record a
 * second, whose success ends the outage.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "queue/event.h"
#include "queue/kafka/producer_int.h"

#define ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

#define PROBE_NS	1000000000ULL /* while down without spill: one record a second */
#define KPROD_GATHER_US 1000	      /* delivery reports gather this long after a batch */

static void set_down(struct kprod *p, bool down, const char *why)
{
	if (__atomic_exchange_n(&p->down, down, __ATOMIC_RELAXED) == down)
		return;
	if (down)
		log_warn("kafka: no broker takes writes", "reason=\"%s\" spill=%s", why,
			 p->spill ? "journal" : "off (503 until a broker answers)");
	else
		log_info("kafka: brokers take writes again", "%s", "");
}

static void count_latency(struct kprod *p, uint64_t t0)
{
	uint64_t ns = clock_mono_ns() - t0, ms = ns / 1000000;
	unsigned b = 0;

	while (b < 15 && ms >= (1ULL << b))
		b++;
	ADD(p->st.lat_hist[b], 1);
	ADD(p->st.lat_count, 1);
	ADD(p->st.lat_sum_ns, ns);
}

/* A direct produce that failed: spill it, or answer the failure. */
static void failed(struct kprod *p, const rd_kafka_message_t *msg, struct kmsg *m)
{
	struct kafka_event ev = {.cls = m->cls,
				 .tenant = m->tenant,
				 .value = msg->payload,
				 .len = msg->len,
				 .received_ns = m->received_ns,
				 .due_ns = m->due_ns,
				 .attempts = m->attempts};
	const void *k = NULL;
	char key[256] = "";
	rd_kafka_headers_t *h = NULL;
	size_t n;
	int err;

	if (p->spill && kprod_outage(msg->err) && !GET(p->closing)) {
		/* the idempotency key travels in its header (the forwarder re-reads the envelope)
		 */
		if (!rd_kafka_message_headers(msg, &h) &&
		    !rd_kafka_header_get_last(h, KAFKA_H_KEY, &k, &n))
			snprintf(key, sizeof(key), "%.*s", (int)n, (const char *)k);
		ev.idem_key = key;
		if (!kspill_append(p, &ev, m->done, m->arg))
			return;
	}
	err = msg->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ? -ETIMEDOUT : -EIO;
	m->done(m->arg, err, 0);
}

/* Delivery report, on the poll thread (or the thread freeing the producer). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct kprod *p = opaque;
	struct kmsg *m = msg->_private;

	(void)rk;
	__atomic_sub_fetch(&p->st.in_flight, 1, __ATOMIC_RELAXED);
	if (!msg->err) {
		ADD(p->st.produced, 1);
		count_latency(p, m->t0);
		set_down(p, false, "");
		if (m->entry)
			kspill_delivered(p, m->entry, msg->err);
		else
			m->done(m->arg, 0, m->id);
		free(m);
		return;
	}
	if (msg->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
		ADD(p->st.failed_timeout, 1);
	else
		ADD(p->st.failed_other, 1);
	if (kprod_outage(msg->err))
		set_down(p, true, rd_kafka_err2str(msg->err));
	if (m->entry)
		kspill_delivered(p, m->entry, msg->err);
	else
		failed(p, msg, m);
	free(m);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kprod *p = opaque;
	char why[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, why, sizeof(why));
		SET(p->fatal, 1);
		log_error("kafka: producer failed for good, every event is refused (restart)",
			  "error=\"%s\"", why);
	} else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		set_down(p, true, reason);
	} else {
		log_debug("kafka: client error", "error=\"%s\" reason=\"%s\"",
			  rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
	}
}

/* Delivery reports. librdkafka signals its queue once per report batch (one partition's
 * message set), so serving each as it comes wakes this thread, and the loop it posts to,
 * about once per record when sets are small. After serving some, the next ones get
 * KPROD_GATHER_US to gather: at most one wake-up per period under load, at most that much
 * added to a 202; idle, the thread sleeps in the 100 ms poll. */
static void *poll_main(void *arg)
{
	struct kprod *p = arg;

	while (!GET(p->stop))
		if (rd_kafka_poll(p->rk, 100) > 0)
			usleep(KPROD_GATHER_US);
	return NULL;
}

/* While down without spill: refuse, but let one record a second through as a probe. */
static bool probe_allowed(struct kprod *p)
{
	uint64_t now = clock_mono_ns(), last = GET(p->last_probe);

	return now - last >= PROBE_NS &&
	       __atomic_compare_exchange_n(&p->last_probe, &last, now, false, __ATOMIC_RELAXED,
					   __ATOMIC_RELAXED);
}

int kafka_produce(struct queue *q, const struct kafka_event *in, kafka_done_fn *done, void *arg)
{
	struct kprod *p = (struct kprod *)q;
	struct kafka_event ev = *in;
	struct kmsg *m;
	int err;

	if (GET(p->closing))
		return -ESHUTDOWN;
	if (GET(p->fatal)) {
		ADD(p->st.refused_fatal, 1);
		return -EIO;
	}
	if (!ev.received_ns)
		ev.received_ns = clock_real_ns();
	/* spilling: keep going there until the forwarder emptied it, so events stay in order */
	if (p->spill && (GET(p->down) || kspill_depth(p)))
		return kspill_append(p, &ev, done, arg);
	if (GET(p->down) && !probe_allowed(p)) {
		ADD(p->st.refused_down, 1);
		return -ENETDOWN;
	}
	if (GET(p->st.in_flight) >= (uint64_t)p->o.queue_max) {
		ADD(p->st.refused_full, 1);
		return -ENOSPC;
	}
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->done = done;
	m->arg = arg;
	m->entry = NULL;
	err = kprod_send(p, &ev, p->id_hi | (ADD(p->seq, 1) & ((1ULL << 40) - 1)), m);
	if (err) {
		free(m);
		if (err == -ENOSPC)
			ADD(p->st.refused_full, 1);
		if (err == -EIO)
			ADD(p->st.refused_fatal, 1);
	}
	return err;
}

/* queue_ops.append: a journal-format record ("tenant\nenvelope"), as other producers of
 * the queue interface hand it. */
static int op_append(struct queue *q, const struct queue_rec *rec, queue_done_fn *done, void *arg)
{
	struct event_view v;
	char why[128];
	int err;

	if (event_decode(rec->data, rec->len, &v, why, sizeof(why)))
		return -EINVAL;
	err = kafka_produce(q,
			    &(struct kafka_event){.cls = rec->class,
						  .tenant = v.tenant,
						  .idem_key = v.idempotency_key,
						  .value = v.body,
						  .len = v.body_len,
						  .received_ns = rec->enq_ns,
						  .due_ns = rec->not_before_ns,
						  .attempts = rec->attempts},
			    done, arg);
	event_view_fini(&v);
	return err;
}

static int op_next(struct queue *q, struct queue_entry **out, int max, int timeout_ms)
{
	return -ENOTSUP; /* the worker's consumer hands out records, not the producer */
}

static int op_ack(struct queue *q, struct queue_entry *e)
{
	return -ENOTSUP;
}

static int op_replay(struct queue *q, queue_replay_fn *fn, void *arg)
{
	return -ENOTSUP;
}

int kafka_producer_stats(struct queue *q, struct kafka_producer_stats *st)
{
	struct kprod *p = (struct kprod *)q;
	const uint64_t *src = (const uint64_t *)&p->st;
	uint64_t *dst = (uint64_t *)st;

	if (!q || strcmp(q->ops->name, "kafka-producer"))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < offsetof(struct kafka_producer_stats, kafka_down) / 8; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	st->spill_depth = p->spill ? kspill_depth(p) : 0;
	st->hot_tenants = kafka_hot_count(&p->hot);
	st->kafka_down = GET(p->down);
	st->fatal = GET(p->fatal);
	return 0;
}

static int op_stats(struct queue *q, struct queue_stats *qs)
{
	struct kafka_producer_stats st;

	kafka_producer_stats(q, &st);
	memset(qs, 0, sizeof(*qs));
	qs->entries = st.in_flight + st.spill_depth;
	qs->max_entries = (uint64_t)((struct kprod *)q)->o.queue_max;
	qs->durable = st.produced;
	qs->append_errors = st.failed_timeout + st.failed_other;
	qs->refused_full = st.refused_full;
	qs->appends = st.produced + qs->append_errors + st.in_flight;
	return 0;
}

static void op_set_notify(struct queue *q, queue_notify_fn *fn, void *arg)
{
	/* nothing becomes available to consume from a producer */
}

static void op_shutdown(struct queue *q)
{
	SET(((struct kprod *)q)->closing, 1);
}

/* Stop taking events, deliver what is queued (up to 10 s), fail the rest: every done runs
 * exactly once before this returns. */
static void op_free(struct queue *q)
{
	struct kprod *p = (struct kprod *)q;

	SET(p->closing, 1);
	kspill_stop(p); /* no new forwarded records; the journal keeps the unacked ones */
	if (p->poller_started) {
		SET(p->stop, 1);
		pthread_join(p->poller, NULL);
	}
	if (p->rk) {
		if (rd_kafka_flush(p->rk, 10000))
			log_warn("kafka: records still undelivered at exit, answered 503",
				 "count=%d", rd_kafka_outq_len(p->rk));
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		for (int i = 0; i < 50 && GET(p->st.in_flight); i++)
			rd_kafka_poll(p->rk, 100);
		for (int c = 0; c < 3; c++)
			if (p->topic[c])
				rd_kafka_topic_destroy(p->topic[c]);
		rd_kafka_destroy(p->rk);
	}
	kspill_release(p);
	queue_free(p->spill); /* delivers its outstanding completions */
	kafka_hot_fini(&p->hot);
	pthread_mutex_destroy(&p->fwd_lock);
	pthread_cond_destroy(&p->fwd_cond);
	free(p);
}

static const struct queue_ops kprod_ops = {
    .name = "kafka-producer",
    .append = op_append,
    .next = op_next,
    .ack = op_ack,
    .replay = op_replay,
    .stats = op_stats,
    .set_notify = op_set_notify,
    .shutdown = op_shutdown,
    .free = op_free,
};

static rd_kafka_conf_t *producer_conf(struct kprod *p, char *err, size_t errlen)
{
	rd_kafka_conf_t *c = kafka_conf_new(&p->o, err, errlen);
	char qmax[32];

	if (!c)
		return NULL;
	/* librdkafka's own bound above ours (forwarded spill records count in both) */
	snprintf(qmax, sizeof(qmax), "%lld", p->o.queue_max * 2 + 1000);
	if (kafka_conf_require(c, &p->o, "enable.idempotence", "true", err, errlen) ||
	    kafka_conf_require(c, &p->o, "acks", "all", err, errlen) ||
	    kafka_conf_default(c, &p->o, "linger.ms", "2", err, errlen) ||
	    kafka_conf_default(c, &p->o, "message.timeout.ms", "10000", err, errlen) ||
	    kafka_conf_default(c, &p->o, "reconnect.backoff.ms", "100", err, errlen) ||
	    kafka_conf_default(c, &p->o, "reconnect.backoff.max.ms", "1000", err, errlen) ||
	    kafka_conf_default(c, &p->o, "queue.buffering.max.messages", qmax, err, errlen)) {
		rd_kafka_conf_destroy(c);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
	rd_kafka_conf_set_error_cb(c, on_error);
	rd_kafka_conf_set_opaque(c, p);
	return c;
}

struct queue *kafka_producer_open(const struct kafka_opts *o, struct queue *spill, char *err,
				  size_t errlen)
{
	struct kprod *p = calloc(1, sizeof(*p));
	rd_kafka_conf_t *c;
	char topic[128];
	uint64_t r = 0;

	if (!p) {
		snprintf(err, errlen, "kafka: %s", strerror(ENOMEM));
		queue_free(spill);
		return NULL;
	}
	p->q.ops = &kprod_ops;
	p->o = *o;
	p->spill = spill;
	pthread_mutex_init(&p->fwd_lock, NULL);
	pthread_cond_init(&p->fwd_cond, NULL);
	p->pending_tail = &p->pending;
	kafka_hot_init(&p->hot,
		       &(struct kafka_hot_cfg){.share_permille = (unsigned)o->hot_share_permille,
					       .salts = (unsigned)o->hot_salts});
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = clock_real_ns();
	p->id_hi = (r & 0x7fffff) << 40; /* 23 random bits, top bit clear (not spilled) */
	c = producer_conf(p, err, errlen);
	if (!c)
		goto fail;
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, errlen);
	if (!p->rk) {
		rd_kafka_conf_destroy(c);
		goto fail;
	}
	for (unsigned cls = 0; cls < 3; cls++) {
		kafka_topic_name(o, cls, topic, sizeof(topic));
		p->topic[cls] = rd_kafka_topic_new(p->rk, topic, NULL);
		if (!p->topic[cls]) {
			snprintf(err, errlen, "kafka: topic %s: %s", topic,
				 rd_kafka_err2str(rd_kafka_last_error()));
			goto fail;
		}
	}
	if (pthread_create(&p->poller, NULL, poll_main, p)) {
		snprintf(err, errlen, "kafka: cannot start the poll thread");
		goto fail;
	}
	p->poller_started = true;
	if (spill && kspill_start(p)) {
		snprintf(err, errlen, "kafka: cannot start the spill forwarder");
		goto fail;
	}
	return &p->q;
fail:
	op_free(&p->q);
	return NULL;
}
