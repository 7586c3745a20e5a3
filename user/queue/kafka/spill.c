// SPDX-License-Identifier: MIT
/* spill.c -- --kafka-spill: the local journal while no broker takes writes
 *
 * While the producer knows no broker takes writes (or records spilled earlier are still
 * waiting), intake goes to the journal: the event is answered 202 after the journal's
 * fsync, as in journal mode, with id KAFKA_SPILL_ID(journal id). A direct produce whose
 * delivery fails that way is spilled the same way before it is answered. The forwarder
 * thread takes the journal's entries in order (replayed ones first), produces them with
 * the id their 202 carried, and acks an entry only after its delivery report succeeded.
 * A failed report puts the entry on the retry list; the forwarder then stops taking new
 * entries, waits for every forwarded record's report, pauses, and produces the failed
 * ones again in journal order -- so each class reaches its topic in the order it was
 * accepted, and nothing is acked that Kafka does not hold.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "queue/event.h"
#include "queue/kafka/producer_int.h"

#define RETRY_PAUSE_MS 500
#define TAKE	       64

struct spill_ctx {
	kafka_done_fn *done;
	void *arg;
};

/* Journal completion (the journal's flusher thread): answer with the spill id. */
static void spill_done(void *arg, int err, uint64_t jid)
{
	struct spill_ctx c = *(struct spill_ctx *)arg;

	free(arg);
	c.done(c.arg, err, err ? 0 : KAFKA_SPILL_ID(jid));
}

int kspill_append(struct kprod *p, const struct kafka_event *ev, kafka_done_fn *done, void *arg)
{
	size_t need = event_encoded_len(ev->tenant, ev->len);
	char small[4096], *rec = need <= sizeof(small) ? small : malloc(need);
	struct spill_ctx *c = malloc(sizeof(*c));
	int len, err = -ENOMEM;

	if (!rec || !c)
		goto out;
	len = event_encode(ev->tenant, ev->value, ev->len, rec, need);
	if (len < 0) {
		err = len;
		goto out;
	}
	*c = (struct spill_ctx){done, arg};
	err = queue_append(p->spill,
			   &(struct queue_rec){.class = ev->cls,
					       .enq_ns = ev->received_ns,
					       .not_before_ns = ev->due_ns,
					       .attempts = ev->attempts,
					       .len = (uint32_t)len,
					       .data = rec},
			   spill_done, c);
	if (!err) {
		c = NULL;
		__atomic_add_fetch(&p->st.spilled, 1, __ATOMIC_RELAXED);
	}
out:
	free(c);
	if (rec != small)
		free(rec);
	return err;
}

uint64_t kspill_depth(struct kprod *p)
{
	struct queue_stats st;

	return p->spill && !queue_stats(p->spill, &st) ? st.entries : 0;
}

void kspill_delivered(struct kprod *p, struct queue_entry *e, rd_kafka_resp_err_t err)
{
	struct queue_entry **pp;

	if (!err) {
		queue_ack(p->spill, e);
		__atomic_add_fetch(&p->st.forwarded, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&p->fwd_lock);
	if (err) { /* into the retry list, in journal order */
		for (pp = &p->retry; *pp && (*pp)->id < e->id; pp = &(*pp)->next)
			;
		e->next = *pp;
		*pp = e;
	}
	p->fwd_inflight--;
	pthread_cond_broadcast(&p->fwd_cond);
	pthread_mutex_unlock(&p->fwd_lock);
}

/* Produce one spilled entry. 0 (owned by librdkafka until its report), -ENOSPC (full: try
 * again later), or another error: the entry cannot be forwarded (acked, logged). */
static int forward(struct kprod *p, struct queue_entry *e)
{
	struct kmsg *m = malloc(sizeof(*m));
	struct event_view v;
	char why[160];
	int err;

	if (!m)
		return -ENOSPC;
	if (event_decode(e->data, e->len, &v, why, sizeof(why))) {
		log_error("kafka: spilled record unreadable, dropped", "id=%llu error=\"%s\"",
			  (unsigned long long)e->id, why);
		free(m);
		queue_ack(p->spill, e);
		return 0;
	}
	*m = (struct kmsg){.entry = e};
	pthread_mutex_lock(&p->fwd_lock);
	p->fwd_inflight++;
	pthread_mutex_unlock(&p->fwd_lock);
	err = kprod_send(p,
			 &(struct kafka_event){.cls = e->class,
					       .tenant = v.tenant,
					       .idem_key = v.idempotency_key,
					       .value = v.body,
					       .len = v.body_len,
					       .received_ns = e->enq_ns,
					       .due_ns = e->not_before_ns,
					       .attempts = e->attempts},
			 KAFKA_SPILL_ID(e->id), m);
	event_view_fini(&v);
	if (err) {
		free(m);
		pthread_mutex_lock(&p->fwd_lock);
		p->fwd_inflight--;
		pthread_mutex_unlock(&p->fwd_lock);
	}
	if (err && err != -ENOSPC) {
		log_error("kafka: spilled record refused by the producer, dropped",
			  "id=%llu error=\"%s\"", (unsigned long long)e->id, strerror(-err));
		queue_ack(p->spill, e);
		return 0;
	}
	return err;
}

static void take(void *arg, struct queue_entry *e)
{
	struct kprod *p = arg;

	e->next = NULL;
	*p->pending_tail = e;
	p->pending_tail = &e->next;
}

static void wait_ms(struct kprod *p, int ms)
{
	struct timespec ts = clock_deadline(CLOCK_REALTIME, (uint64_t)ms * 1000000ULL);

	pthread_cond_timedwait(&p->fwd_cond, &p->fwd_lock, &ts);
}

/* Failed records back in front of the pending ones, once none is in flight. */
static bool requeue_failed(struct kprod *p)
{
	struct queue_entry *r, *last;

	pthread_mutex_lock(&p->fwd_lock);
	if (!p->retry) {
		pthread_mutex_unlock(&p->fwd_lock);
		return false;
	}
	if (p->fwd_inflight) {
		wait_ms(p, 100);
		pthread_mutex_unlock(&p->fwd_lock);
		return true;
	}
	wait_ms(p, RETRY_PAUSE_MS);
	r = p->retry;
	p->retry = NULL;
	pthread_mutex_unlock(&p->fwd_lock);
	for (last = r; last->next; last = last->next)
		;
	last->next = p->pending;
	if (!p->pending)
		p->pending_tail = &last->next;
	p->pending = r;
	return true;
}

static void *fwd_main(void *arg)
{
	struct kprod *p = arg;
	struct queue_entry *got[TAKE];

	queue_replay(p->spill, take, p);
	while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&p->closing, __ATOMIC_RELAXED)) {
		if (requeue_failed(p))
			continue;
		if (!p->pending) {
			int n = queue_next(p->spill, got, TAKE, 200);

			for (int i = 0; i < n; i++)
				take(p, got[i]);
			continue;
		}
		while (p->pending && __atomic_load_n(&p->st.in_flight, __ATOMIC_RELAXED) <
					 (uint64_t)p->o.queue_max) {
			struct queue_entry *e = p->pending;

			p->pending = e->next;
			if (!p->pending)
				p->pending_tail = &p->pending;
			if (forward(p, e)) { /* librdkafka full: back in front, later */
				e->next = p->pending;
				if (!p->pending)
					p->pending_tail = &e->next;
				p->pending = e;
				break;
			}
			pthread_mutex_lock(&p->fwd_lock);
			bool failed = p->retry != NULL;
			pthread_mutex_unlock(&p->fwd_lock);
			if (failed) /* stop: the failed ones go first */
				break;
		}
		pthread_mutex_lock(&p->fwd_lock);
		if (p->pending && !p->retry)
			wait_ms(p, 20);
		pthread_mutex_unlock(&p->fwd_lock);
	}
	return NULL;
}

int kspill_start(struct kprod *p)
{
	if (pthread_create(&p->fwd, NULL, fwd_main, p))
		return -EAGAIN;
	p->fwd_started = true;
	log_info("kafka: spill journal open, forwarder started", "backlog=%llu",
		 (unsigned long long)kspill_depth(p));
	return 0;
}

/* Ends the forwarder. Entries it holds that are not acked stay in the journal (they come
 * back with the next open's replay); forwarded ones still in flight are settled by the
 * producer's final flush. */
void kspill_stop(struct kprod *p)
{
	if (!p->fwd_started)
		return;
	queue_shutdown(p->spill); /* wakes queue_next */
	pthread_mutex_lock(&p->fwd_lock);
	pthread_cond_broadcast(&p->fwd_cond);
	pthread_mutex_unlock(&p->fwd_lock);
	pthread_join(p->fwd, NULL);
	p->fwd_started = false;
}

/* After the producer is gone (no report can come any more): free the entries the
 * forwarder still holds. They are not acked, so the journal replays them at the next
 * open. */
void kspill_release(struct kprod *p)
{
	struct queue_entry *lists[2] = {p->pending, p->retry};

	for (int i = 0; i < 2; i++)
		while (lists[i]) {
			struct queue_entry *e = lists[i];

			lists[i] = e->next;
			free(e);
		}
	p->pending = p->retry = NULL;
	p->pending_tail = &p->pending;
}
