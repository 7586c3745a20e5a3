// SPDX-License-Identifier: MIT
/* router.c -- routes and handlers of the ingress API, and the state they share
 *
 * POST /v1/events rejects in order of cost, as early as it can: route and method, then
 * (still at the head, before any body is read) API key, content type and request credits;
 * then, with the body, the envelope and the critical credits; last the durable queue.
 * The 202 is written only from router_on_durable(), i.e. after the queue confirmed the
 * event is on disk; the queue's callback runs on the journal thread and only posts a
 * message to the connection's loop (a connection waiting for it is never freed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingress/envelope.h"
#include "ingress/conn.h"
#include "ingress/response.h"
#include "ingress/api.h"
#include "ingress/loop.h"
#include "lib/sha256.h"

static const char *const route_names[ROUTE_MAX] = {"/v1/events", "/healthz", "/readyz", "/metrics",
						   "other"};

const char *router_route_name(enum route_id id)
{
	return id < ROUTE_MAX ? route_names[id] : "other";
}

int router_init(struct router *r, const struct sluiced_cfg *cfg, struct tenants_ref *tenants,
		struct admission *adm, struct metrics *m)
{
	static const double lat[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				     0.025,  0.05,    0.1,    0.25,  0.5,    1,	    2.5};

	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->tenants = tenants;
	r->adm = adm;
	r->m = m;
	r->db_state = -1;
	r->xdp_ok = true;
	r->xdp_state = "off: no --iface";
	http_limits_default(&r->limits);
	r->limits.max_head = (size_t)cfg->max_header_bytes;
	r->limits.max_line = (size_t)cfg->max_line;
	r->limits.max_headers = (unsigned)cfg->max_headers;
	r->f_requests = metrics_family(m, METRIC_COUNTER, "sluice_http_requests_total",
				       "HTTP requests answered, by route, status and tenant.",
				       "route,status,tenant", NULL, 0);
	r->f_latency = metrics_family(m, METRIC_HISTOGRAM, "sluice_http_request_duration_seconds",
				      "Time from the first byte of a request to its answer.",
				      "route", lat, sizeof(lat) / sizeof(lat[0]));
	r->f_admission = metrics_family(m, METRIC_COUNTER, "sluice_admission_total",
					"Stage-2 admission outcomes by limit and tenant.",
					"limit,outcome,tenant", NULL, 0);
	r->f_events = metrics_family(m, METRIC_COUNTER, "sluice_events_accepted_total",
				     "Events made durable and answered 202, by tenant and class.",
				     "tenant,class", NULL, 0);
	r->f_conns = metrics_family(m, METRIC_GAUGE, "sluice_http_connections",
				    "Open HTTP connections.", NULL, NULL, 0);
	r->f_refused =
	    metrics_family(m, METRIC_COUNTER, "sluice_http_connections_refused_total",
			   "Connections closed at accept, by reason.", "reason", NULL, 0);
	r->f_denied =
	    metrics_family(m, METRIC_COUNTER, "sluice_denylist_additions_total",
			   "Sources put on the deny list after persistent 429s.", NULL, NULL, 0);
	r->f_queue_depth =
	    metrics_family(m, METRIC_GAUGE, "sluice_queue_depth",
			   "Events in the durable queue not yet acknowledged.", NULL, NULL, 0);
	if (!r->f_requests || !r->f_latency || !r->f_admission || !r->f_events || !r->f_conns ||
	    !r->f_refused || !r->f_denied || !r->f_queue_depth)
		return -ENOMEM;
	return 0;
}

void router_count(struct router *r, enum route_id route, int status, const char *tenant,
		  uint64_t start_ns)
{
	char st[8];

	snprintf(st, sizeof(st), "%d", status);
	metric_add(
	    metrics_series(r->f_requests, (const char *[]){router_route_name(route), st, tenant}),
	    1);
	if (start_ns)
		metric_observe(
		    metrics_series(r->f_latency, (const char *[]){router_route_name(route)}),
		    (double)(admission_now() - start_ns) / 1e9);
}

static enum route_id route_of(const struct http_request *req)
{
	const char *q = memchr(req->target, '?', req->target_len);
	size_t n = q ? (size_t)(q - req->target) : req->target_len;

	for (int i = 0; i < ROUTE_OTHER; i++)
		if (strlen(route_names[i]) == n && !memcmp(route_names[i], req->target, n))
			return i;
	return ROUTE_OTHER;
}

static void answer_json(struct conn *c, int status, const char *json)
{
	conn_finish_request(c, status, "application/json", NULL, json, strlen(json));
}

static void check_json(char *buf, size_t len, const char *name, bool ok, const char *state,
		       bool last)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "\"%s\":{\"ok\":%s,\"state\":\"%s\"}%s", name,
		 ok ? "true" : "false", state, last ? "" : ",");
}

static void answer_readyz(struct router *r, struct conn *c)
{
	const char *qwhy = "no durable queue configured (--journal-dir)";
	int db = __atomic_load_n(&r->db_state, __ATOMIC_RELAXED);
	bool q_ok = r->queue.writable && !r->queue.writable(r->queue.q, &qwhy);
	bool db_ok = db != 0, ready;
	char body[1024];

	if (q_ok)
		qwhy = "writable";
	ready = r->xdp_ok && q_ok && db_ok && !__atomic_load_n(&r->draining, __ATOMIC_RELAXED);
	snprintf(body, sizeof(body), "{\"ready\":%s,\"checks\":{", ready ? "true" : "false");
	check_json(body, sizeof(body), "xdp", r->xdp_ok, r->xdp_state, false);
	check_json(body, sizeof(body), "queue", q_ok, qwhy, false);
	check_json(body, sizeof(body), "database", db_ok,
		   db < 0 ? "not configured (--pg)"
		   : db	  ? "reachable"
			  : "unreachable",
		   true);
	strncat(body, "}}\n", sizeof(body) - strlen(body) - 1);
	answer_json(c, ready ? 200 : 503, body);
}

static void answer_metrics(struct router *r, struct conn *c)
{
	size_t len = 0;
	char *text;

	metric_set(metrics_series(r->f_conns, NULL),
		   __atomic_load_n(&r->open_conns, __ATOMIC_RELAXED));
	if (r->queue.depth)
		metric_set(metrics_series(r->f_queue_depth, NULL), r->queue.depth(r->queue.q));
	metric_set(metrics_series(r->f_denied, NULL), admission_denials(r->adm));
	text = metrics_render(r->m, &len);
	if (!text) {
		conn_finish_error(c, 500, "internal", "out of memory rendering metrics", NULL,
				  false);
		return;
	}
	conn_finish_request(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
	free(text);
}

/* The API key from Authorization: Bearer or X-Api-Key; NULL when neither. */
static const char *api_key(const struct http_request *req, size_t *len)
{
	const struct http_header *h = http_header_find(req, "authorization");

	if (h && h->value_len > 7 && !strncasecmp(h->value, "Bearer ", 7)) {
		*len = h->value_len - 7;
		return h->value + 7;
	}
	h = http_header_find(req, "x-api-key");
	if (h && h->value_len) {
		*len = h->value_len;
		return h->value;
	}
	return NULL;
}

static bool is_json(const struct http_request *req)
{
	const struct http_header *h = http_header_find(req, "content-type");
	static const char want[] = "application/json";

	return h && h->value_len >= sizeof(want) - 1 &&
	       !strncasecmp(h->value, want, sizeof(want) - 1) &&
	       (h->value_len == sizeof(want) - 1 || h->value[sizeof(want) - 1] == ';' ||
		h->value[sizeof(want) - 1] == ' ');
}

static void count_admission(struct router *r, const char *limit, enum admission_outcome o,
			    const char *tenant)
{
	metric_add(metrics_series(r->f_admission,
				  (const char *[]){limit, admission_outcome_name(o), tenant}),
		   1);
}

/* Key, content type and request credits: everything decidable before the body. */
static int events_head(struct router *r, struct conn *c, const struct http_request *req)
{
	uint8_t digest[SHA256_LEN];
	enum admission_outcome o;
	char extra[48];
	uint64_t retry;
	const char *key;
	size_t klen;

	key = api_key(req, &klen);
	if (!key) {
		conn_finish_error(c, 401, "missing_api_key",
				  "send Authorization: Bearer <key> or X-Api-Key: <key>",
				  "WWW-Authenticate: Bearer\r\n", false);
		return 1;
	}
	sha256(key, klen, digest);
	c->rq.tenants = tenants_ref_acquire(r->tenants);
	c->rq.tenant = tenants_by_digest(c->rq.tenants, digest);
	if (!c->rq.tenant) {
		conn_finish_error(c, 401, "unknown_api_key", "the API key is not known",
				  "WWW-Authenticate: Bearer\r\n", false);
		return 1;
	}
	if (!is_json(req)) {
		conn_finish_error(c, 415, "unsupported_media_type",
				  "send Content-Type: application/json", NULL, false);
		return 1;
	}
	o = admission_request(r->adm, c->rq.tenant, &c->peer, admission_now(), &retry);
	count_admission(r, "req", o, c->rq.tenant->name);
	if (o == ADMISSION_REJECTED) {
		/* Retry-After is whole seconds: round up, so a client honouring it passes */
		snprintf(extra, sizeof(extra), "Retry-After: %llu\r\n",
			 (unsigned long long)((retry + 999999999ULL) / 1000000000ULL));
		conn_finish_error(c, 429, "rate_limited",
				  "over the tenant's request credits; retry after Retry-After",
				  extra, false);
		return 1;
	}
	return 0;
}

int router_on_head(struct router *r, struct conn *c, const struct http_request *req)
{
	enum route_id route = route_of(req);
	bool get = req->method == HTTP_M_GET || req->method == HTTP_M_HEAD;

	c->rq.route = route;
	if (route == ROUTE_OTHER) {
		conn_finish_error(c, 404, "not_found", "no such route", NULL, false);
		return 1;
	}
	if (route == ROUTE_EVENTS && req->method != HTTP_M_POST) {
		conn_finish_error(c, 405, "method_not_allowed", "use POST", "Allow: POST\r\n",
				  false);
		return 1;
	}
	if (route != ROUTE_EVENTS && !get) {
		conn_finish_error(c, 405, "method_not_allowed", "use GET", "Allow: GET, HEAD\r\n",
				  false);
		return 1;
	}
	switch (route) {
	case ROUTE_HEALTHZ:
		answer_json(c, 200, "{\"status\":\"ok\"}\n");
		return 1;
	case ROUTE_READYZ:
		answer_readyz(r, c);
		return 1;
	case ROUTE_METRICS:
		answer_metrics(r, c);
		return 1;
	default:
		return events_head(r, c, req);
	}
}

static void on_queue_done(void *arg, int err, uint64_t id)
{
	struct conn *c = arg;
	struct loop_msg msg = {.idx = c->idx, .gen = c->gen, .err = err, .id = id};

	/* journal thread: only the loop may touch the connection */
	loop_post(c->loop, &msg);
}

static int refuse_503(struct router *r, struct conn *c, const char *code, const char *detail)
{
	char extra[48];

	snprintf(extra, sizeof(extra), "Retry-After: %lld\r\n", r->cfg->retry_after_503);
	conn_finish_error(c, 503, code, detail, extra, false);
	return 1;
}

/* The queue refused an event, at once or in its completion. */
static int refuse_append(struct router *r, struct conn *c, int err)
{
	if (err == -ENOSPC)
		return refuse_503(r, c, "queue_full", "the durable queue is full");
	if (err == -EAGAIN)
		return refuse_503(r, c, "shedding", "the daemon is shedding load");
	return refuse_503(r, c, "queue_error", strerror(-err));
}

int router_on_body(struct router *r, struct conn *c, const struct http_request *req,
		   const char *body, size_t len)
{
	const struct tenant *t = c->rq.tenant;
	struct ingress_event ev = {0};
	struct envelope env;
	enum admission_outcome o;
	const char *code;
	char detail[256];
	int err;

	if (envelope_parse(body, len, &env, &code, detail, sizeof(detail))) {
		conn_finish_error(c, 400, code, detail, NULL, false);
		return 1;
	}
	/* the envelope's priority, else the class its route gives the type, else the tenant's */
	if (env.priority >= 0)
		c->rq.class = (enum sluice_class)env.priority;
	else if (r->type_class && (err = r->type_class(r->type_class_arg, env.type)) >= 0)
		c->rq.class = (enum sluice_class)err;
	else
		c->rq.class = t->class;
	if (c->rq.class == SLUICE_CLASS_CRITICAL) {
		o = admission_critical(r->adm, t, admission_now());
		count_admission(r, "crit", o, t->name);
		if (o == ADMISSION_DEMOTED) {
			c->rq.class = SLUICE_CLASS_NORMAL;
			c->rq.demoted = true;
		}
	}
	if (!r->queue.append)
		return refuse_503(r, c, "queue_unavailable",
				  "no durable queue is configured (--journal-dir)");
	ev = (struct ingress_event){.tenant_slot = t->slot,
				    .tenant = t->name,
				    .class = c->rq.class,
				    .demoted = c->rq.demoted,
				    .type = env.type,
				    .idempotency_key = env.idempotency_key,
				    .body = body,
				    .body_len = len,
				    .received_ns = c->rq.start_ns};
	err = r->queue.append(r->queue.q, &ev, on_queue_done, c);
	return err ? refuse_append(r, c, err) : 0;
}

void router_on_durable(struct router *r, struct conn *c, int err, uint64_t id)
{
	char body[160];

	if (err == -EEXIST) {
		/* the fast path knew the key: the original event was accepted before */
		snprintf(body, sizeof(body), "{\"id\":\"%016llx\",\"duplicate\":true}\n",
			 (unsigned long long)id);
		conn_finish_request(c, 200, "application/json", NULL, body, strlen(body));
		return;
	}
	if (err) {
		refuse_append(r, c, err);
		return;
	}
	metric_add(metrics_series(r->f_events, (const char *[]){c->rq.tenant->name,
								tenants_class_name(c->rq.class)}),
		   1);
	snprintf(body, sizeof(body), "{\"id\":\"%016llx\",\"class\":\"%s\",\"demoted\":%s}\n",
		 (unsigned long long)id, tenants_class_name(c->rq.class),
		 c->rq.demoted ? "true" : "false");
	conn_finish_request(c, 202, "application/json", NULL, body, strlen(body));
}
