// SPDX-License-Identifier: MIT
/* consumer_group.c -- the Kafka consumer's group membership and offset commits
 *
 * Runs on the poll thread (librdkafka serves the rebalance and commit callbacks from
 * rd_kafka_consumer_poll) and, at close, on the closing thread. The commit rule: per
 * partition only the tracker's committable offset (everything below it finished), only when
 * it moved past the last one sent; a failed commit is sent again next time.
 *
 * Revoke (cooperative: only the partitions that move): under the lock the revoked
 * partitions' finished prefixes are taken, their ready entries freed and their trackers
 * reset (a new generation, so acks of entries still running elsewhere are ignored); then,
 * without the lock, a synchronous commit of those prefixes and incremental_unassign. A lost
 * assignment (session timed out) commits nothing: the group has moved on.
 *
 * Rejoining: from the JoinGroup request this member sends until its new assignment, periodic
 * commits wait. The coordinator answers a connection's requests in order and holds the
 * JoinGroup until the group's join phase ends, so a commit sent meanwhile is checked after
 * the generation moved on: ILLEGAL_GENERATION, which librdkafka before 2.10 (issue #4059)
 * takes for a lost assignment -- everything revoked, and a second rebalance (a whole session
 * timeout on the mock cluster's coordinator). The requests are watched with librdkafka's
 * interceptors (public API): JoinGroup sent = rejoining; a Heartbeat sent (only in a steady
 * state) or the assign callback = done.
 *
 * Attempts across owners: the metadata of a commit keeps "sluice-attempts=OFFSET:N" for the
 * record at the committed offset. At assignment the committed metadata is read; the first
 * record polled from the partition gets its delivery counted and committed synchronously
 * before it is handed out (kconsumer_mark_first), so a record that kills its worker each
 * time runs out of attempts (docs/kafka-worker.md).
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "queue/kafka/consumer_int.h"

/* ---- commits ---------------------------------------------------------------------- */

/* Add offset off of kp to a commit list, with the attempts kept for the record there. */
static void part_commit_add(rd_kafka_topic_partition_list_t *l, struct kconsumer *k,
			    struct kpart *kp, int64_t off)
{
	rd_kafka_topic_partition_t *tp =
	    rd_kafka_topic_partition_list_add(l, k->topics[kp->class], kp->partition);
	char meta[64];
	int n;

	tp->offset = off;
	if (off != kp->mark_off)
		return;
	n = snprintf(meta, sizeof(meta), KATTEMPTS_META "%lld:%u", (long long)off, kp->mark_n);
	if ((tp->metadata = malloc((size_t)n))) { /* freed with the list */
		memcpy(tp->metadata, meta, (size_t)n);
		tp->metadata_size = (size_t)n;
		kp->mark_sent = kp->mark_n;
	}
}

/* The committable offsets of the partitions that moved (only is non-NULL: just those in
 * it), marked sent. NULL when there is nothing to commit. Lock held. */
static rd_kafka_topic_partition_list_t *commit_list(struct kconsumer *k,
						    const rd_kafka_topic_partition_list_t *only)
{
	rd_kafka_topic_partition_list_t *l = NULL;

	for (uint32_t c = 0; c < QUEUE_CLASS_MAX; c++)
		for (int32_t p = 0; p < k->nparts[c]; p++) {
			struct kpart *kp = k->parts[c][p];
			int64_t off;

			if (!kp || !kp->assigned ||
			    (only && !rd_kafka_topic_partition_list_find(only, k->topics[c], p)))
				continue;
			off = kafka_offsets_committable(&kp->t);
			kp->dirty = false;
			if (off < 0 || (off <= kp->sent &&
					(off != kp->mark_off || kp->mark_n == kp->mark_sent)))
				continue;
			if (!l && !(l = rd_kafka_topic_partition_list_new(8)))
				return NULL;
			part_commit_add(l, k, kp, off);
			kp->sent = off;
		}
	return l;
}

/* Partitions of l whose commit failed are committed again next time. */
static void commit_failed(struct kconsumer *k, const rd_kafka_topic_partition_list_t *l,
			  rd_kafka_resp_err_t err)
{
	bool failed = false;

	pthread_mutex_lock(&k->lock);
	for (int i = 0; l && i < l->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &l->elems[i];
		int c = kconsumer_class(k, tp->topic);
		struct kpart *kp = c < 0 ? NULL : kconsumer_part(k, (uint32_t)c, tp->partition);

		if (!err && !tp->err)
			continue;
		failed = true;
		if (kp && kp->sent == tp->offset) {
			kp->sent = -1;
			kp->dirty = true;
		}
		if (kp && kp->mark_off == tp->offset)
			kp->mark_sent = 0; /* the count goes out again with the next commit */
	}
	k->st.commit_errors += failed;
	pthread_mutex_unlock(&k->lock);
	if (failed)
		log_warn("kafka: offset commit failed; the next one covers it", "err=\"%s\"",
			 rd_kafka_err2str(err ? err : RD_KAFKA_RESP_ERR__FAIL));
}

/* Commit what l holds; async from the poll loop, sync on revoke and at close. */
static void commit(struct kconsumer *k, rd_kafka_topic_partition_list_t *l, bool async)
{
	rd_kafka_resp_err_t err;

	if (!l)
		return;
	pthread_mutex_lock(&k->lock);
	k->st.commits++;
	pthread_mutex_unlock(&k->lock);
	err = rd_kafka_commit(k->rk, l, async);
	if (err || !async) /* async: the rest is reported to commit_cb */
		commit_failed(k, l, err);
	rd_kafka_topic_partition_list_destroy(l);
}

/* Async commit results. */
void kconsumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	if (err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		commit_failed(opaque, offsets, err);
}

/* ---- group membership ------------------------------------------------------------- */

/* The attempts a partition's committed metadata keeps ("sluice-attempts=OFFSET:N"). */
static void stored_attempts(const rd_kafka_topic_partition_t *tp, int64_t *off, uint32_t *n)
{
	char buf[64], *end;
	long long o;
	unsigned long v;

	*off = -1;
	*n = 0;
	if (!tp || tp->err || !tp->metadata || tp->metadata_size >= sizeof(buf))
		return;
	memcpy(buf, tp->metadata, tp->metadata_size);
	buf[tp->metadata_size] = 0;
	if (strncmp(buf, KATTEMPTS_META, strlen(KATTEMPTS_META)))
		return;
	o = strtoll(buf + strlen(KATTEMPTS_META), &end, 10);
	if (*end != ':' || o < 0)
		return;
	v = strtoul(end + 1, &end, 10);
	if (*end || v > UINT32_MAX)
		return;
	*off = o;
	*n = (uint32_t)v;
}

static void assign(struct kconsumer *k, rd_kafka_topic_partition_list_t *parts, bool coop)
{
	rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t err = 0;

	/* the group's committed offsets and their metadata: the attempts of the record each
	 * earlier owner stopped at (no answer: no attempts known, as with a fresh group) */
	if (committed && (err = rd_kafka_committed(k->rk, committed, 10000))) {
		log_warn("kafka: committed offsets not read; redelivered records start their "
			 "attempts again",
			 "err=\"%s\"", rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(committed);
		committed = NULL;
	}
	err = 0;
	pthread_mutex_lock(&k->lock);
	for (int i = 0; i < parts->cnt; i++) {
		int c = kconsumer_class(k, parts->elems[i].topic);
		struct kpart *kp =
		    c < 0 ? NULL : kconsumer_part_get(k, (uint32_t)c, parts->elems[i].partition);

		if (!kp || kp->assigned)
			continue;
		stored_attempts(
		    committed ? rd_kafka_topic_partition_list_find(committed, parts->elems[i].topic,
								   parts->elems[i].partition)
			      : NULL,
		    &kp->stored_off, &kp->stored_n);
		kp->mark_first = true;
		kp->mark_off = -1;
		kp->mark_n = kp->mark_sent = 0;
		kafka_offsets_reset(&kp->t);
		kp->assigned = true;
		kp->paused = kp->dirty = false;
		kp->ready = 0;
		kp->sent = kp->lag = kp->committed = kp->high = -1;
		k->st.assigned++;
	}
	k->joined = true;
	k->st.rebalances++;
	pthread_mutex_unlock(&k->lock);
	if (committed)
		rd_kafka_topic_partition_list_destroy(committed);
	/* on the new generation: commits are checked against it from now on */
	__atomic_store_n(&k->rebalancing, 0, __ATOMIC_RELEASE);
	if (coop)
		error = rd_kafka_incremental_assign(k->rk, parts);
	else
		err = rd_kafka_assign(k->rk, parts);
	/* a partition paused by an earlier owner of this client stays paused otherwise */
	rd_kafka_resume_partitions(k->rk, parts);
	if (error || err) {
		log_error("kafka: assign failed", "err=\"%s\"",
			  error ? rd_kafka_error_string(error) : rd_kafka_err2str(err));
		rd_kafka_error_destroy(error);
	}
	log_info("kafka: partitions assigned", "count=%d protocol=%s", parts->cnt,
		 coop ? "cooperative" : "eager");
}

/* Drop the ready entries of a revoked partition. Lock held. */
static void drop_ready(struct kconsumer *k, struct kpart *kp)
{
	struct queue_entry **pp = &k->head[kp->class], *prev = NULL, *e;

	while ((e = *pp)) {
		if (kentry_of(e)->partition != kp->partition) {
			prev = e;
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		k->nready[kp->class]--;
		k->bytes -= e->len;
		k->st.dropped_revoked++;
		free(e);
	}
	k->tail[kp->class] = prev;
	kp->ready = 0;
}

static void revoke(struct kconsumer *k, rd_kafka_topic_partition_list_t *parts, bool coop)
{
	bool lost = rd_kafka_assignment_lost(k->rk);
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_error_t *error = NULL;

	pthread_mutex_lock(&k->lock);
	if (!lost)
		l = commit_list(k, parts);
	for (int i = 0; i < parts->cnt; i++) {
		int c = kconsumer_class(k, parts->elems[i].topic);
		struct kpart *kp =
		    c < 0 ? NULL : kconsumer_part(k, (uint32_t)c, parts->elems[i].partition);

		if (!kp || !kp->assigned)
			continue;
		drop_ready(k, kp);
		kafka_offsets_reset(&kp->t);
		kp->assigned = kp->paused = kp->dirty = kp->mark_first = false;
		kp->mark_off = -1;
		k->st.assigned--;
	}
	k->st.rebalances++;
	if (lost) { /* the group went on without us: not a member until assigned again */
		k->joined = false;
		k->st.lost++;
	}
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->lock);
	/* before giving the partitions up: the next owner starts after what is finished */
	commit(k, l, false);
	if (coop)
		error = rd_kafka_incremental_unassign(k->rk, parts);
	else
		rd_kafka_assign(k->rk, NULL);
	if (error) {
		log_error("kafka: unassign failed", "err=\"%s\"", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	log_info("kafka: partitions revoked", "count=%d lost=%d", parts->cnt, lost);
}

void kconsumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		assign(opaque, parts, coop);
	else
		revoke(opaque, parts, coop);
}

void kconsumer_commit(struct kconsumer *k, bool async)
{
	rd_kafka_topic_partition_list_t *l;

	pthread_mutex_lock(&k->lock);
	if (async && __atomic_load_n(&k->rebalancing, __ATOMIC_ACQUIRE)) {
		k->st.commits_held++; /* rejoining: the prefixes stay dirty for later */
		pthread_mutex_unlock(&k->lock);
		return;
	}
	l = commit_list(k, NULL);
	pthread_mutex_unlock(&k->lock);
	commit(k, l, async);
}

/* ---- attempts kept across owners -------------------------------------------------- */

void kconsumer_mark_first(struct kconsumer *k, rd_kafka_message_t **msgs, int n)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	rd_kafka_resp_err_t err;

	pthread_mutex_lock(&k->lock);
	for (int i = 0; i < n; i++) {
		int c = msgs[i]->err ? -1 : kconsumer_class(k, rd_kafka_topic_name(msgs[i]->rkt));
		struct kpart *kp =
		    c < 0 ? NULL : kconsumer_part(k, (uint32_t)c, msgs[i]->partition);

		if (!kp || !kp->assigned || !kp->mark_first)
			continue;
		/* the first record since the assignment: where the last owner stopped. Earlier
		 * owners' unfinished deliveries of it are kept in the metadata; this one counts
		 * before it runs, so a record that kills its worker each time runs out of
		 * attempts instead of looping */
		kp->mark_first = false;
		kp->mark_off = msgs[i]->offset;
		kp->mark_n = (kp->stored_off == msgs[i]->offset ? kp->stored_n : 0) + 1;
		if (kp->mark_n > 1)
			k->st.redelivered++;
		kp->dirty = true;
		/* rejoining again already: a commit now would be checked against the next
		 * generation (see above); the periodic commit carries the count after it */
		if (__atomic_load_n(&k->rebalancing, __ATOMIC_ACQUIRE))
			continue;
		if (!l && !(l = rd_kafka_topic_partition_list_new(8)))
			break;
		part_commit_add(l, k, kp, kp->mark_off);
		kp->sent = kp->mark_off;
	}
	pthread_mutex_unlock(&k->lock);
	if (!l)
		return;
	/* synchronous: the count is durable before the record is handed out */
	err = rd_kafka_commit(k->rk, l, 0);
	if (err)
		log_warn("kafka: delivery count not committed; the next commit carries it",
			 "err=\"%s\"", rd_kafka_err2str(err));
	commit_failed(k, l, err);
	rd_kafka_topic_partition_list_destroy(l);
}

/* ---- rejoin watch (interceptors: broker threads, no librdkafka calls, no locks) ------- */

#define API_JOIN_GROUP 11 /* Kafka protocol ApiKeys */
#define API_HEARTBEAT  12

static rd_kafka_resp_err_t on_request_sent(rd_kafka_t *rk, int sockfd, const char *brokername,
					   int32_t brokerid, int16_t api, int16_t version,
					   int32_t corr, size_t size, void *opaque)
{
	struct kconsumer *k = opaque;

	if (api == API_JOIN_GROUP)
		__atomic_store_n(&k->rebalancing, 1, __ATOMIC_RELEASE);
	else if (api == API_HEARTBEAT) /* sent only by a member with a current generation */
		__atomic_store_n(&k->rebalancing, 0, __ATOMIC_RELEASE);
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *opaque,
				  char *errstr, size_t errstr_size)
{
	return rd_kafka_interceptor_add_on_request_sent(rk, "sluice-rejoin", on_request_sent,
							opaque);
}

rd_kafka_resp_err_t kconsumer_rebalance_watch(rd_kafka_conf_t *conf, struct kconsumer *k)
{
	return rd_kafka_conf_interceptor_add_on_new(conf, "sluice-rejoin", on_new, k);
}
