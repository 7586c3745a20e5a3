// SPDX-License-Identifier: MIT
/* worker.c -- the worker role: queue -> pools -> route steps (store, call) -> ack
 *
 * An entry carries the index of its next step (queue_entry.step). A pool thread decodes
 * the event, finds its route and runs steps while they belong to this pool; a step of
 * another pool hands the entry over (pool_hand_over: slot freed, not acked). `store` is
 * asynchronous: the entry is held while the batched writer commits it, and the writer's
 * callback moves it on. `call` runs on the pool thread (the pool's thread count is its
 * bulkhead): look up step_results first (a redelivery skips what is recorded), call, walk
 * the fallback chain, record the outcome; a deferred call is parked with the retry policy's
 * delay, and when the policy gives up an essential step goes to dead_letters (which ends
 * the event) while an optional one is recorded failed and skipped.
 *
 * Invariant: an entry is acked exactly once, after the last step's effect is committed
 * (events row, step_results row, or dead_letters row). Every other path parks it for a
 * retry or leaves it unacked for replay.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "queue/event.h"
#include "sink/upstream/fallback.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "sink/upstream/model.h"
#include "sink/pg/steps.h"
#include "sink/upstream/upstream.h"
#include "work/release.h"
#include "work/worker.h"

#define MS		    1000000ULL
#define DB_RETRY_NS	    (500 * MS)
#define STORE_FULL_RETRY_NS (50 * MS)

struct wupstream {
	char name[ROUTES_NAME_LEN];
	struct upstream *u;
	struct fallback *fb;
	struct model model;
	int rel_idx; /* in the worker's release store */
};

struct worker {
	struct worker_cfg cfg;
	struct routes *routes;	 /* current (atomic pointer); older ones in retired */
	struct routes **retired; /* replaced by reloads, freed with the worker */
	int nretired;
	struct pool **pools;
	int npools;
	struct pool_set *set;
	struct pg_writer *pgw;
	struct pg_steps *steps;
	struct release *rel; /* parked steps; its queue wraps cfg.queue for the pools */
	struct wupstream *ups;
	int nups;
	int skip_optional, paused_low; /* atomics */
	uint32_t shed_permille;	       /* atomic */
	uint32_t share[3];	       /* class weights applied last (worker_apply's thread) */
	struct worker_stats st;	       /* counters updated with atomics */
};

struct store_ctx {
	struct worker *w;
	struct pool *p;
	struct queue_entry *e;
};

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static const struct routes *current_routes(struct worker *w)
{
	return __atomic_load_n(&w->routes, __ATOMIC_ACQUIRE);
}

static int pool_index(struct worker *w, struct pool *p)
{
	for (int i = 0; i < w->npools; i++)
		if (w->pools[i] == p)
			return i;
	return -1;
}

static struct wupstream *find_upstream(struct worker *w, const char *name)
{
	for (int i = 0; i < w->nups; i++)
		if (!strcmp(w->ups[i].name, name))
			return &w->ups[i];
	return NULL;
}

/* The step's name in step_results: "store", "call:ai", "call:n8n/webhook/lead" (a path
 * tells apart two calls of one upstream in a route). */
static char *step_name(const struct route_step *s, char *buf, size_t cap)
{
	if (s->kind == STEP_STORE)
		snprintf(buf, cap, "store");
	else
		snprintf(buf, cap, "call:%.50s%.*s", s->upstream, s->path[0] ? 62 : 0, s->path);
	if (cap > 64)
		buf[64] = 0; /* step_results.step is varchar(64) */
	return buf;
}

/* Where an entry goes when it has finished step e->step - 1: on, or acked. */
static void advance_from(struct worker *w, struct pool *p, struct queue_entry *e,
			 const struct route *rt)
{
	if (e->step >= (uint32_t)rt->nsteps) {
		count(&w->st.events_done);
		pool_done(p, e);
		return;
	}
	pool_hand_over(p, e, w->pools[rt->steps[e->step].pool_idx]);
}

/* The store step found the key taken. If by another copy of the event (a client sent it
 * twice: another received time), this copy is done: its steps belong to the first. If by
 * this very event (redelivered after its COMMIT), its remaining steps still run. Returns
 * true when the entry was finished or parked here. */
static bool is_other_copy(struct worker *w, struct pool *p, struct queue_entry *e)
{
	struct event_view v;
	char err[256];
	int64_t first_us = 0;
	int found;

	if (event_decode(e->data, e->len, &v, err, sizeof(err)))
		return false;
	found = pg_steps_event_received(w->steps, v.tenant, v.idempotency_key, &first_us, err,
					sizeof(err));
	event_view_fini(&v);
	if (found < 0) {
		count(&w->st.steps_retried);
		pool_retry(p, e, DB_RETRY_NS);
		return true;
	}
	if (found && first_us == (int64_t)(e->enq_ns / 1000))
		return false;
	count(&w->st.events_duplicate);
	pool_done(p, e);
	return true;
}

static void store_done(void *ctx, void *cookie, enum pg_row_status status)
{
	struct store_ctx *sc = cookie;
	struct worker *w = sc->w;
	struct queue_entry *e = sc->e;
	struct pool *p = sc->p;
	struct event_view v;
	char err[128];

	free(sc);
	switch (status) {
	case PG_ROW_DUPLICATE:
		if (is_other_copy(w, p, e))
			return;
		/* our own row, stored by an earlier delivery of this event */
		__attribute__((fallthrough));
	case PG_ROW_STORED:
		e->step++;
		if (event_decode(e->data, e->len, &v, err, sizeof(err))) {
			pool_retry(p, e, DB_RETRY_NS); /* cannot happen: it decoded before */
			return;
		}
		advance_from(w, p, e, routes_match(current_routes(w), v.type));
		event_view_fini(&v);
		return;
	case PG_ROW_DEAD_LETTERED:
		/* the writer put the event in dead_letters with PostgreSQL's error */
		count(&w->st.events_dead_lettered);
		pool_done(p, e);
		return;
	case PG_ROW_RETRY_LATER:
	default:
		count(&w->st.steps_retried);
		pool_retry(p, e, DB_RETRY_NS);
		return;
	}
}

/* Start the store step; the writer's callback continues. */
static void run_store(struct worker *w, struct pool *p, struct queue_entry *e,
		      const struct event_view *v, const char *payload, const struct route *rt)
{
	struct store_ctx *sc = malloc(sizeof(*sc));
	struct pg_row row = {
	    .tenant = v->tenant,
	    .idempotency_key = v->idempotency_key,
	    .type = v->type,
	    .class_name = routes_class_name(e->class),
	    .payload = payload,
	    .payload_len = strlen(payload),
	    .received_us = (int64_t)(e->enq_ns / 1000),
	    .cookie = sc,
	};
	int err;

	if (!sc) {
		pool_retry(p, e, STORE_FULL_RETRY_NS);
		return;
	}
	*sc = (struct store_ctx){w, p, e};
	err = pg_writer_submit(w->pgw, &row);
	if (err) {
		free(sc);
		count(&w->st.steps_retried);
		pool_retry(p, e, STORE_FULL_RETRY_NS); /* -EAGAIN: writer backlog full */
	}
}

enum call_next { CALL_ADVANCE, CALL_PARKED, CALL_EVENT_DONE };

/* Record an outcome; a database error parks the entry (nothing is lost, the call result
 * is re-derived on the retry from the fallback chain or a new call). */
static enum call_next record(struct worker *w, struct pool *p, struct queue_entry *e,
			     const struct pg_step_key *k, const char *status, const char *result,
			     const char *error)
{
	char err[256];

	if (pg_steps_put(w->steps, k, status, e->attempts + 1, result, error, err, sizeof(err))) {
		log_warn("worker: step result not recorded; retrying", "step=%s err=\"%s\"",
			 k->step, err);
		count(&w->st.steps_retried);
		pool_retry(p, e, DB_RETRY_NS);
		return CALL_PARKED;
	}
	return CALL_ADVANCE;
}

/* What a dead letter keeps of entry e, so that a replay queues it as it was. */
static struct pg_dead_event dead_event(const struct queue_entry *e)
{
	return (struct pg_dead_event){e->data, e->len, e->class, e->tenant};
}

/* Dead-letter the step (or record an optional step failed); calls = the calls made to the
 * upstream for it, as the dead letter's attempts column keeps them. */
static enum call_next give_up(struct worker *w, struct pool *p, struct queue_entry *e,
			      const struct event_view *v, const struct route_step *s,
			      const struct pg_step_key *k, unsigned calls, const char *reason,
			      const char *why)
{
	char err[256];
	struct pg_dead_event de = dead_event(e);

	if (s->optional)
		return record(w, p, e, k, "failed", NULL, why);
	if (pg_steps_dead_letter(w->steps, k, reason, calls, why, &de, err, sizeof(err))) {
		pool_retry(p, e, DB_RETRY_NS);
		return CALL_PARKED;
	}
	log_warn("worker: event dead-lettered", "tenant=%s key=%s step=%s reason=\"%s\"", v->tenant,
		 v->idempotency_key, k->step, why);
	count(&w->st.events_dead_lettered);
	return CALL_EVENT_DONE;
}

/* Park the step durably when the breaker is open or its retry is further away than
 * park.after_ms; true when it is parked (e is finished), false to keep it in memory
 * (too soon to park, park.max reached, or the database refused: "held", unacked). */
static bool park_step(struct worker *w, struct pool *p, struct queue_entry *e,
		      const struct event_view *v, struct wupstream *up,
		      const struct upstream_result *res, uint64_t delay_ns, uint64_t now)
{
	const struct park_config *pc = release_config(w->rel, up->rel_idx);
	bool sent = res->outcome == UPSTREAM_FAILED;

	if (!(res->outcome == UPSTREAM_REJECTED || (sent && delay_ns >= pc->after_ns)))
		return false;
	e->attempts += sent; /* the row keeps the calls made, this one included */
	if (release_park(w->rel, up->rel_idx, p, e, v->tenant, v->idempotency_key, now + delay_ns,
			 res->reason)) {
		e->attempts -= sent;
		return false;
	}
	count(&w->st.steps_parked);
	return true;
}

/* A call that did not answer: wait (no attempt spent when nothing was sent), retry, or
 * dead-letter (not retryable, attempts exhausted, or past retry.max_age). */
static enum call_next after_failure(struct worker *w, struct pool *p, struct queue_entry *e,
				    const struct event_view *v, const struct route_step *s,
				    const struct pg_step_key *k, struct wupstream *up,
				    const struct upstream_result *res,
				    const struct retry_decision *d)
{
	const struct retry_policy *rp = &upstream_config_of(up->u)->retry;
	uint64_t now = clock_real_ns(), age = now > e->enq_ns ? now - e->enq_ns : 0;
	bool sent = res->outcome == UPSTREAM_FAILED;
	char err[256];

	if (d->verdict == RETRY_AFTER_DELAY && age + d->delay_ns <= rp->max_age_ns) {
		count(&w->st.steps_retried);
		if (park_step(w, p, e, v, up, res, d->delay_ns, now))
			return CALL_PARKED;
		if (sent)
			pool_retry(p, e, d->delay_ns);
		else
			pool_defer(p, e, d->delay_ns);
		return CALL_PARKED;
	}
	snprintf(err, sizeof(err), "%s: %s",
		 d->verdict == RETRY_AFTER_DELAY ? "past retry.max_age"
		 : d->reason			 ? d->reason
						 : "gave up",
		 res->reason[0] ? res->reason : upstream_outcome_name(res->outcome));
	return give_up(w, p, e, v, s, k, e->attempts + sent,
		       d->verdict == RETRY_AFTER_DELAY ? "max age" : "retries exhausted", err);
}

static enum call_next run_call(struct worker *w, struct pool *p, struct queue_entry *e,
			       const struct event_view *v, const char *payload,
			       const struct route_step *s)
{
	struct wupstream *up = find_upstream(w, s->upstream);
	char name[ROUTES_NAME_LEN + 8], status[16], err[256], result[256];
	struct pg_step_key k = {v->tenant, v->idempotency_key, step_name(s, name, sizeof(name)),
				(int64_t)(e->enq_ns / 1000)};
	struct upstream_request req = {.payload = payload,
				       .idempotency_key = v->idempotency_key,
				       .tenant = v->tenant,
				       .type = v->type,
				       .attempt = e->attempts + 1,
				       .path = s->path,
				       .method = s->method,
				       .template = s->template};
	struct upstream_result res = {0};
	struct fallback_answer ans;
	struct retry_decision d;
	enum call_next next;
	int found;

	found = pg_steps_get(w->steps, &k, status, sizeof(status), err, sizeof(err));
	if (found < 0) {
		pool_retry(p, e, DB_RETRY_NS);
		return CALL_PARKED;
	}
	if (found) {
		count(&w->st.steps_replayed);
		return strcmp(status, "failed") || s->optional ? CALL_ADVANCE : CALL_EVENT_DONE;
	}
	if (!up) /* routes were checked against the upstream sections at start */
		return give_up(w, p, e, v, s, &k, e->attempts, "config", "no such upstream");
	/* attempts spent by earlier deliveries (a queue that keeps them across a restart or a
	 * worker that died mid-call: Kafka's commit metadata, the journal's notes) */
	if (e->attempts >= upstream_config_of(up->u)->retry.max_attempts)
		return give_up(w, p, e, v, s, &k, e->attempts, "retries exhausted",
			       "attempts used up by earlier deliveries (a worker died or gave the "
			       "event up during them)");
	req.budget_free = release_entry_fresh(e); /* the release ramp paces it */
	upstream_call(up->u, &req, &res);
	release_entry_called(e);
	fallback_after_call(up->fb, v->tenant, payload, &res, &ans);
	if (ans.source != FALLBACK_DEFER) {
		if (ans.source != FALLBACK_UPSTREAM)
			count(&w->st.steps_fallback);
		if (ans.has_score)
			snprintf(result, sizeof(result),
				 "{\"source\":\"%s\",\"score\":%.6f,\"http_status\":%d}",
				 fallback_source_name(ans.source), ans.score, res.http_status);
		else
			snprintf(result, sizeof(result), "{\"source\":\"%s\",\"http_status\":%d}",
				 fallback_source_name(ans.source), res.http_status);
		next = record(w, p, e, &k, ans.source == FALLBACK_UPSTREAM ? "done" : "fallback",
			      result, ans.source == FALLBACK_UPSTREAM ? NULL : res.reason);
		upstream_result_fini(&res);
		return next;
	}
	upstream_retry_decide(up->u, &res, e->attempts + 1, &d);
	next = after_failure(w, p, e, v, s, &k, up, &res, &d);
	upstream_result_fini(&res);
	return next;
}

/* Whether step idx is the first call of a route without a store step: there the event
 * claims its calls (call_claims), as the store step's dedupe would have done. */
static bool claims_here(const struct route *rt, uint32_t idx)
{
	for (int i = 0; i < rt->nsteps; i++) {
		if (rt->steps[i].kind == STEP_STORE)
			return false;
		if (rt->steps[i].kind == STEP_CALL)
			return (uint32_t)i == idx;
	}
	return false;
}

/* A client's second copy of a key (another receipt time) must not reach the upstream
 * again, with or without Redis: the first copy's claim stops it. */
static enum call_next claim_calls(struct worker *w, struct pool *p, struct queue_entry *e,
				  const struct event_view *v)
{
	char err[256];
	int mine = pg_steps_claim(w->steps, v->tenant, v->idempotency_key,
				  (int64_t)(e->enq_ns / 1000), err, sizeof(err));

	if (mine < 0) {
		log_warn("worker: call claim not checked; retrying", "key=%s err=\"%s\"",
			 v->idempotency_key, err);
		count(&w->st.steps_retried);
		pool_retry(p, e, DB_RETRY_NS);
		return CALL_PARKED;
	}
	if (mine)
		return CALL_ADVANCE;
	count(&w->st.events_duplicate);
	log_debug("worker: duplicate of a claimed key; not called again", "tenant=%s key=%s",
		  v->tenant, v->idempotency_key);
	return CALL_EVENT_DONE;
}

static bool shed_now(struct worker *w, const struct route *rt)
{
	uint32_t permille = __atomic_load_n(&w->shed_permille, __ATOMIC_RELAXED), r = 0;

	if (!rt->sheddable || !permille)
		return false;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)rand();
	return r % 1000 < permille;
}

/* Run the entry's steps that belong to pool p; tell the pool whether it is finished. */
static enum pool_verdict on_entry(void *arg, struct pool *p, struct queue_entry *e)
{
	struct worker *w = arg;
	const struct route *rt;
	struct event_view v;
	char err[256], *payload = NULL;
	int me = pool_index(w, p);

	if (event_decode(e->data, e->len, &v, err, sizeof(err))) {
		struct pg_step_key k = {"?", "?", "decode", (int64_t)(e->enq_ns / 1000)};
		char tenant[EVENT_TENANT_MAX + 1] = "?";
		struct pg_dead_event de = dead_event(e);

		if (v.tenant[0])
			snprintf(tenant, sizeof(tenant), "%s", v.tenant);
		k.tenant = tenant;
		snprintf(err + strlen(err), sizeof(err) - strlen(err), " (entry %llu)",
			 (unsigned long long)e->id);
		if (pg_steps_dead_letter(w->steps, &k, "undecodable", 1, err, &de, err,
					 sizeof(err)))
			return pool_retry(p, e, DB_RETRY_NS), POOL_HELD;
		count(&w->st.events_dead_lettered);
		return POOL_ACK;
	}
	rt = routes_match(current_routes(w), v.type);
	if (e->step == 0 && shed_now(w, rt)) {
		count(&w->st.events_shed);
		log_debug("worker: sheddable event dropped at EMERGENCY",
			  "tenant=%s key=%s type=%s", v.tenant, v.idempotency_key, v.type);
		event_view_fini(&v);
		return POOL_ACK;
	}
	payload = json_dumps(v.payload, JSON_COMPACT);
	while (payload && e->step < (uint32_t)rt->nsteps) {
		const struct route_step *s = &rt->steps[e->step];
		enum call_next next;

		if (s->pool_idx != me) {
			pool_hand_over(p, e, w->pools[s->pool_idx]);
			goto held;
		}
		if (s->optional && __atomic_load_n(&w->skip_optional, __ATOMIC_RELAXED)) {
			char name[ROUTES_NAME_LEN + 8];
			struct pg_step_key k = {v.tenant, v.idempotency_key,
						step_name(s, name, sizeof(name)),
						(int64_t)(e->enq_ns / 1000)};

			count(&w->st.steps_skipped);
			if (record(w, p, e, &k, "skipped", NULL, "thin mode") == CALL_PARKED)
				goto held;
			e->step++;
			continue;
		}
		if (s->kind == STEP_STORE) {
			run_store(w, p, e, &v, payload, rt);
			goto held;
		}
		next = claims_here(rt, e->step) ? claim_calls(w, p, e, &v) : CALL_ADVANCE;
		if (next == CALL_ADVANCE)
			next = run_call(w, p, e, &v, payload, s);
		if (next == CALL_PARKED)
			goto held;
		if (next == CALL_EVENT_DONE)
			break;
		e->step++;
	}
	if (!payload) {
		pool_retry(p, e, DB_RETRY_NS);
		goto held;
	}
	free(payload);
	event_view_fini(&v);
	if (e->step >= (uint32_t)rt->nsteps)
		count(&w->st.events_done);
	return POOL_ACK;
held:
	free(payload);
	event_view_fini(&v);
	return POOL_HELD;
}

/* The pool of an entry's next step (the pool_set's router). */
static uint32_t route_entry(void *arg, const struct queue_entry *e)
{
	struct worker *w = arg;
	struct event_view v;
	const struct route *rt;
	char err[128];
	uint32_t idx = 0;

	if (event_decode(e->data, e->len, &v, err, sizeof(err)))
		return 0; /* the handler dead-letters it */
	rt = routes_match(current_routes(w), v.type);
	if (e->step < (uint32_t)rt->nsteps)
		idx = (uint32_t)rt->steps[e->step].pool_idx;
	event_view_fini(&v);
	return idx;
}

/* The release store's sink: a released step goes to the pool of its step. */
static int submit_released(void *arg, struct queue_entry *e)
{
	struct worker *w = arg;

	return pool_submit(w->pools[route_entry(w, e)], e);
}

static int setup_upstream(struct worker *w, struct wupstream *up, const char *name, char *err,
			  size_t errlen)
{
	const struct routes *r = w->routes;
	struct upstream_config uc;
	struct fallback_config fc;
	struct park_config pc;
	bool model_set = false;
	char sub[200];
	int i, ret;

	snprintf(up->name, sizeof(up->name), "%s", name);
	upstream_config_default(&uc, name, "");
	fallback_config_default(&fc);
	park_config_default(&pc);
	model_init_default(&up->model);
	for (i = 0; i < r->nupstream_kv; i++) {
		const struct route_kv *kv = &r->upstream_kv[i];

		if (strcmp(kv->section, name))
			continue;
		if (!strncmp(kv->key, "fallback.", 9)) {
			ret = fallback_config_set(&fc, kv->key + 9, kv->value, sub, sizeof(sub));
			fc.model_given |= !strcmp(kv->key + 9, "model");
		} else if (!strncmp(kv->key, "template.", 9)) {
			ret = 0; /* a named template for steps (template=NAME): routes.c took it */
		} else if (!strncmp(kv->key, "park.", 5) || !strncmp(kv->key, "release.", 8)) {
			ret = park_config_set(&pc, kv->key, kv->value, sub, sizeof(sub));
		} else if (!strncmp(kv->key, "model.", 6)) {
			if (!model_set)
				model_init_empty(&up->model);
			model_set = true;
			ret =
			    model_config_set(&up->model, kv->key + 6, kv->value, sub, sizeof(sub));
		} else {
			ret = upstream_config_set(&uc, kv->key, kv->value, sub, sizeof(sub));
		}
		if (ret) {
			snprintf(err, errlen, "routes line %d: [upstream %s] %s", kv->line, name,
				 sub);
			return ret;
		}
	}
	/* the model is opt-in: `fallback.model = on` (default weights) or model.* lines */
	if (!fc.model_given)
		fc.use_model = model_set;
	up->u = upstream_new(&uc, NULL, NULL, sub, sizeof(sub));
	if (!up->u) {
		snprintf(err, errlen, "[upstream %s]: %s", name, sub);
		return -EINVAL;
	}
	up->fb = fallback_new(name, &fc, w->cfg.redis, fc.use_model ? &up->model : NULL);
	up->rel_idx = release_add(w->rel, up->u, &pc);
	return up->fb && up->rel_idx >= 0 ? 0 : -ENOMEM;
}

static int start_pools(struct worker *w, char *err, size_t errlen)
{
	const struct routes *r = w->routes;

	w->pools = calloc(r->npools, sizeof(*w->pools));
	if (!w->pools)
		return -ENOMEM;
	for (int i = 0; i < r->npools; i++) {
		struct pool_cfg pc = {.name = r->pools[i].name,
				      .threads = (uint32_t)r->pools[i].threads,
				      .max_inflight = (uint32_t)r->pools[i].inflight,
				      .dispatch = w->cfg.dispatch,
				      .handler = on_entry,
				      .arg = w};

		w->pools[i] = pool_new(&pc, release_queue(w->rel));
		if (!w->pools[i]) {
			snprintf(err, errlen, "[pool %s]: %s", r->pools[i].name, strerror(errno));
			return -errno;
		}
		w->npools++;
	}
	return 0;
}

struct worker *worker_new(const struct worker_cfg *cfg, char *err, size_t errlen)
{
	struct worker *w = calloc(1, sizeof(*w));
	struct pg_writer_config pc;
	struct pool_set_cfg sc;
	int ret = -ENOMEM;

	if (!w) {
		routes_free(cfg->routes);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	w->cfg = *cfg;
	w->routes = cfg->routes;
	memcpy(w->share, cfg->dispatch.weight, sizeof(w->share)); /* all 0: set by worker_apply */
	if (!cfg->pg_conninfo || !*cfg->pg_conninfo) {
		snprintf(err, errlen, "the worker needs --pg CONNINFO");
		ret = -EINVAL;
		goto fail;
	}
	pc = cfg->pgw;
	pc.conninfo = cfg->pg_conninfo;
	w->pgw = pg_writer_new(&pc, store_done, w);
	w->steps = pg_steps_new(cfg->pg_conninfo, 8);
	w->rel = w->steps ? release_new(cfg->queue, w->steps, submit_released, w) : NULL;
	w->ups = calloc(w->routes->nupstreams ? w->routes->nupstreams : 1, sizeof(*w->ups));
	if (!w->pgw || !w->steps || !w->rel || !w->ups) {
		snprintf(err, errlen, "start the PostgreSQL writer: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < w->routes->nupstreams; i++) {
		ret = setup_upstream(w, &w->ups[i], w->routes->upstreams[i], err, errlen);
		if (ret)
			goto fail;
		w->nups++;
	}
	ret = start_pools(w, err, errlen);
	if (ret)
		goto fail;
	sc = (struct pool_set_cfg){.queue = release_queue(w->rel),
				   .pools = w->pools,
				   .npools = (uint32_t)w->npools,
				   .route = route_entry,
				   .route_arg = w,
				   .max_messages = cfg->max_messages,
				   .max_age_ns = cfg->max_age_ns,
				   .retire = cfg->retire,
				   .retire_arg = cfg->retire_arg};
	w->set = pool_set_new(&sc);
	if (!w->set) {
		ret = -errno;
		snprintf(err, errlen, "start consuming the queue: %s", strerror(errno));
		goto fail;
	}
	ret = release_start(w->rel);
	if (ret) {
		snprintf(err, errlen, "start the parked-step releaser: %s", strerror(-ret));
		goto fail;
	}
	return w;
fail:
	worker_free(w, 0);
	errno = ret < 0 ? -ret : ENOMEM;
	return NULL;
}

void worker_free(struct worker *w, int timeout_ms)
{
	if (!w)
		return;
	release_stop(w->rel); /* first: it queues released steps into the pools */
	pool_set_free(w->set);
	for (int i = 0; i < w->npools; i++)
		pool_drain(w->pools[i], timeout_ms);
	/* the writer's callbacks need the pools: free it (reporting RETRY_LATER) first */
	pg_writer_free(w->pgw);
	for (int i = 0; i < w->npools; i++)
		pool_free(w->pools[i]);
	for (int i = 0; i < w->nups; i++) {
		fallback_free(w->ups[i].fb);
		upstream_free(w->ups[i].u);
	}
	release_free(w->rel); /* after the pools: their acks of released steps go through it */
	pg_steps_free(w->steps);
	routes_free(w->routes);
	for (int i = 0; i < w->nretired; i++)
		routes_free(w->retired[i]);
	free(w->retired);
	free(w->ups);
	free(w->pools);
	free(w);
}

/* Whether b only changes routes (types, classes, steps) relative to a: same pools with the
 * same sizes, same upstreams with the same settings. */
static bool same_resources(const struct routes *a, const struct routes *b, char *err, size_t errlen)
{
	if (a->npools != b->npools || a->nupstreams != b->nupstreams ||
	    a->nupstream_kv != b->nupstream_kv)
		goto differ;
	for (int i = 0; i < a->npools; i++)
		if (strcmp(a->pools[i].name, b->pools[i].name) ||
		    a->pools[i].threads != b->pools[i].threads ||
		    a->pools[i].inflight != b->pools[i].inflight)
			goto differ;
	for (int i = 0; i < a->nupstream_kv; i++)
		if (strcmp(a->upstream_kv[i].section, b->upstream_kv[i].section) ||
		    strcmp(a->upstream_kv[i].key, b->upstream_kv[i].key) ||
		    strcmp(a->upstream_kv[i].value, b->upstream_kv[i].value))
			goto differ;
	return true;
differ:
	snprintf(err, errlen,
		 "pools or upstreams changed: restart sluiced to apply them "
		 "(a reload changes routes only)");
	return false;
}

int worker_set_routes(struct worker *w, struct routes *r, char *err, size_t errlen)
{
	struct routes **nr;

	if (!same_resources(w->routes, r, err, errlen)) {
		routes_free(r);
		return -EINVAL;
	}
	nr = realloc(w->retired, sizeof(*nr) * (w->nretired + 1));
	if (!nr) {
		routes_free(r);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->retired = nr;
	/* entries in flight may still read the old table: keep it until the worker goes */
	w->retired[w->nretired++] = __atomic_exchange_n(&w->routes, r, __ATOMIC_ACQ_REL);
	return 0;
}

int worker_type_class(struct worker *w, const char *type)
{
	const struct route *rt = routes_match(current_routes(w), type);

	return rt->class_set ? (int)rt->class : -1;
}

/* The state's class shares, into every pool when they change. */
static void apply_shares(struct worker *w, const uint32_t share[3])
{
	if (!memcmp(w->share, share, sizeof(w->share)) || !(share[0] + share[1] + share[2]))
		return;
	for (int i = 0; i < w->npools; i++)
		if (pool_set_class_weights(w->pools[i], share))
			log_error("worker: class shares refused", "pool=%s",
				  pool_name(w->pools[i]));
	memcpy(w->share, share, sizeof(w->share));
}

void worker_apply(struct worker *w, const struct overload_actions *a)
{
	int pause = a->pause_low;

	__atomic_store_n(&w->skip_optional, a->skip_optional, __ATOMIC_RELAXED);
	__atomic_store_n(&w->shed_permille, a->sheddable_drop_permille, __ATOMIC_RELAXED);
	apply_shares(w, a->share);
	if (__atomic_exchange_n(&w->paused_low, pause, __ATOMIC_RELAXED) == pause)
		return;
	for (int i = 0; i < w->npools; i++) {
		if (pause)
			pool_pause_class(w->pools[i], 2);
		else
			pool_resume_class(w->pools[i], 2);
	}
}

void worker_get_stats(struct worker *w, struct worker_stats *st)
{
	uint64_t *src = (uint64_t *)&w->st, *dst = (uint64_t *)st;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < offsetof(struct worker_stats, lag_ns) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	for (int i = 0; i < w->npools; i++) {
		struct pool_stats ps;
		uint32_t busy;

		pool_stats(w->pools[i], &ps);
		for (int c = 0; c < 3; c++) {
			const struct dispatch_class_stats *cs = &ps.dispatch.cls[c];

			if (cs->lag_ns > st->lag_ns[c])
				st->lag_ns[c] = cs->lag_ns;
			st->depth[c] += cs->depth + cs->delayed;
			st->contended[c] += cs->contended;
		}
		busy = ps.max_inflight ? (uint32_t)(ps.in_flight * 1000 / ps.max_inflight) : 0;
		if (busy > st->busiest_permille)
			st->busiest_permille = busy;
	}
}

void worker_each_pool(struct worker *w,
		      void (*fn)(void *arg, const char *name, const struct pool_stats *st),
		      void *arg)
{
	for (int i = 0; i < w->npools; i++) {
		struct pool_stats ps;

		pool_stats(w->pools[i], &ps);
		fn(arg, pool_name(w->pools[i]), &ps);
	}
}

void worker_each_upstream(struct worker *w,
			  void (*fn)(void *arg, struct upstream *u, struct fallback *fb), void *arg)
{
	for (int i = 0; i < w->nups; i++)
		fn(arg, w->ups[i].u, w->ups[i].fb);
}

struct pg_writer *worker_pg_writer(struct worker *w)
{
	return w->pgw;
}
