// SPDX-License-Identifier: MIT
/* send.c -- one Sluice event as one Kafka record (the format written down in kafka.h)
 *
 * Both the intake path (producer.c) and the spill forwarder (spill.c) produce through
 * kprod_send: the key (salted while the tenant is hot), the envelope as the value, the
 * sluice-* headers, and the kmsg that carries the completion to the delivery report.
 */
#include <errno.h>
#include <stdio.h>

#include "lib/clock.h"
#include "queue/kafka/producer_int.h"

bool kprod_outage(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
	case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
		return true;
	default:
		return false;
	}
}

static int add_header(rd_kafka_headers_t *h, const char *name, const char *v)
{
	return rd_kafka_header_add(h, name, -1, v, -1) ? -EINVAL : 0;
}

int kprod_send(struct kprod *p, const struct kafka_event *ev, uint64_t id, struct kmsg *m)
{
	char key[128], ids[17], rec[24], due[24], att[16];
	rd_kafka_headers_t *h;
	rd_kafka_resp_err_t e;
	int salt, klen;

	if (ev->cls >= 3 || !ev->tenant || !ev->idem_key)
		return -EINVAL;
	salt = kafka_hot_salt(&p->hot, ev->cls, ev->tenant, ev->idem_key, clock_mono_ns());
	klen = kafka_record_key(ev->tenant, salt, key, sizeof(key));
	if (klen < 0)
		return -EINVAL;
	kafka_id_format(id, ids);
	snprintf(rec, sizeof(rec), "%llu", (unsigned long long)ev->received_ns);
	snprintf(due, sizeof(due), "%llu",
		 (unsigned long long)(ev->due_ns ? ev->due_ns : ev->received_ns));
	snprintf(att, sizeof(att), "%u", ev->attempts);
	h = rd_kafka_headers_new(8);
	if (add_header(h, KAFKA_H_TENANT, ev->tenant) ||
	    add_header(h, KAFKA_H_CLASS, kafka_class_name(ev->cls)) ||
	    add_header(h, KAFKA_H_ID, ids) || add_header(h, KAFKA_H_KEY, ev->idem_key) ||
	    add_header(h, KAFKA_H_RECEIVED, rec) || add_header(h, KAFKA_H_DUE, due) ||
	    add_header(h, KAFKA_H_ATTEMPTS, att)) {
		rd_kafka_headers_destroy(h);
		return -EINVAL;
	}
	*m = (struct kmsg){.done = m->done,
			   .arg = m->arg,
			   .entry = m->entry,
			   .id = id,
			   .t0 = clock_mono_ns(),
			   .received_ns = ev->received_ns,
			   .due_ns = ev->due_ns,
			   .attempts = ev->attempts,
			   .cls = ev->cls};
	snprintf(m->tenant, sizeof(m->tenant), "%s", ev->tenant);
	__atomic_add_fetch(&p->st.in_flight, 1, __ATOMIC_RELAXED);
	e = rd_kafka_producev(
	    p->rk, RD_KAFKA_V_RKT(p->topic[ev->cls]), RD_KAFKA_V_KEY(key, (size_t)klen),
	    RD_KAFKA_V_VALUE((void *)ev->value, ev->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
	if (!e)
		return 0;
	__atomic_sub_fetch(&p->st.in_flight, 1, __ATOMIC_RELAXED);
	rd_kafka_headers_destroy(h);
	if (e == RD_KAFKA_RESP_ERR__FATAL)
		__atomic_store_n(&p->fatal, 1, __ATOMIC_RELAXED);
	return e == RD_KAFKA_RESP_ERR__QUEUE_FULL	   ? -ENOSPC
	       : e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? -EMSGSIZE
	       : e == RD_KAFKA_RESP_ERR__FATAL		   ? -EIO
							   : -EINVAL;
}
