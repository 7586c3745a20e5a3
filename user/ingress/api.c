// SPDX-License-Identifier: MIT
/* api.c -- the ingress API: routes, handlers, and the state they share
 *
 * POST /v1/events rejects in order of cost, as early as it can: route and method, then
 * (still at the head, before any body is read) API key, content type and request credits;
 * then, with the body, the envelope and the critical credits; last the durable queue.
 * The 202 is formed only in api_on_durable(), i.e. after the queue confirmed the event is
 * durable; the queue's callback (the connection's) runs on the queue's thread and only posts
 * a message to the connection's loop. Handlers fill an answer; they never write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingress/api.h"
#include "ingress/envelope.h"
#include "lib/array_size.h"
#include "lib/clock.h"
#include "lib/sha256.h"

static const char *const route_names[ROUTE_MAX] = {"/v1/events", "/healthz", "/readyz", "/metrics",
						   "other"};

const char *api_route_name(enum route_id id)
{
	return id < ROUTE_MAX ? route_names[id] : "other";
}

int api_init(struct api *r, const struct ingress_limits *limits, struct tenants_ref *tenants,
	     struct admission *adm, struct metrics *m)
{
	static const double lat[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				     0.025,  0.05,    0.1,    0.25,  0.5,    1,	    2.5};

	memset(r, 0, sizeof(*r));
	r->limits = limits;
	r->tenants = tenants;
	r->adm = adm;
	r->m = m;
	r->db_state = -1;
	r->xdp_ok = true;
	r->xdp_state = "off: no --iface";
	http_limits_default(&r->http);
	r->http.max_head = limits->max_header_bytes;
	r->http.max_line = limits->max_line;
	r->http.max_headers = limits->max_headers;
	r->f_requests = metrics_family(m, METRIC_COUNTER, "sluice_http_requests_total",
				       "HTTP requests answered, by route, status and tenant.",
				       "route,status,tenant", NULL, 0);
	r->f_latency = metrics_family(m, METRIC_HISTOGRAM, "sluice_http_request_duration_seconds",
				      "Time from the first byte of a request to its answer.",
				      "route", lat, ARRAY_SIZE(lat));
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
	r->f_accept_failures =
	    metrics_family(m, METRIC_COUNTER, "sluice_http_accept_failures_total",
			   "accept(2) failures by errno (EMFILE, ENFILE: accepts pause 100 ms).",
			   "errno", NULL, 0);
	if (!r->f_requests || !r->f_latency || !r->f_admission || !r->f_events || !r->f_conns ||
	    !r->f_refused || !r->f_denied || !r->f_queue_depth || !r->f_accept_failures)
		return -ENOMEM;
	return 0;
}

void api_count(struct api *r, const struct api_req *rq, int status)
{
	const char *tenant = rq->tenant ? rq->tenant->name : "";
	char st[8];

	snprintf(st, sizeof(st), "%d", status);
	metric_add(
	    metrics_series(r->f_requests, (const char *[]){api_route_name(rq->route), st, tenant}),
	    1);
	if (rq->start_ns)
		metric_observe(
		    metrics_series(r->f_latency, (const char *[]){api_route_name(rq->route)}),
		    (double)(clock_mono_ns() - rq->start_ns) / 1e9);
}

void api_count_refused(struct api *r, const char *reason)
{
	metric_add(metrics_series(r->f_refused, (const char *[]){reason}), 1);
}

void api_count_accept_failure(struct api *r, int err)
{
	const char *name = strerrorname_np(err);

	metric_add(metrics_series(r->f_accept_failures, (const char *[]){name ? name : "other"}),
		   1);
}

void api_req_reset(struct api_req *rq)
{
	const struct sluice_addr *peer = rq->peer;
	bool admin = rq->admin;
	const uint8_t *cert = rq->client_cert;

	tenants_put(rq->tenants);
	memset(rq, 0, sizeof(*rq));
	rq->peer = peer;
	rq->admin = admin;
	rq->client_cert = cert; /* all three belong to the connection */
}

void api_error(struct api_answer *ans, int status, const char *code, const char *detail, bool close)
{
	ans->status = status;
	ans->code = code;
	ans->detail = detail;
	ans->close = close;
}

/* api_error() with an extra header line (Allow, WWW-Authenticate). */
static enum api_verdict error_hdr(struct api_answer *ans, int status, const char *code,
				  const char *detail, const char *header)
{
	api_error(ans, status, code, detail, false);
	snprintf(ans->headers, sizeof(ans->headers), "%s", header);
	return API_ANSWER;
}

/* api_error() with Retry-After: secs. */
static enum api_verdict error_retry(struct api_answer *ans, int status, const char *code,
				    const char *detail, long long secs)
{
	api_error(ans, status, code, detail, false);
	snprintf(ans->headers, sizeof(ans->headers), "Retry-After: %lld\r\n", secs);
	return API_ANSWER;
}

static enum api_verdict answer_error(struct api_answer *ans, int status, const char *code,
				     const char *detail)
{
	api_error(ans, status, code, detail, false);
	return API_ANSWER;
}

/* Which listener serves a route: the API on the public one, metrics and readiness (tenant
 * names, traffic) on the admin one, liveness on both. */
static bool route_served(enum route_id id, bool admin)
{
	return id == ROUTE_HEALTHZ || (id == ROUTE_EVENTS) != admin;
}

static enum route_id route_of(const struct http_request *req, bool admin)
{
	const char *q = memchr(req->target, '?', req->target_len);
	size_t n = q ? (size_t)(q - req->target) : req->target_len;

	for (int i = 0; i < ROUTE_OTHER; i++)
		if (strlen(route_names[i]) == n && !memcmp(route_names[i], req->target, n))
			return route_served(i, admin) ? (enum route_id)i : ROUTE_OTHER;
	return ROUTE_OTHER;
}

/* A JSON body: json is static, or ans->buf. */
static enum api_verdict answer_json(struct api_answer *ans, int status, const char *json)
{
	ans->status = status;
	ans->content_type = "application/json";
	ans->body = json;
	ans->body_len = strlen(json);
	return API_ANSWER;
}

static void check_json(char *buf, size_t len, const char *name, bool ok, const char *state,
		       bool last)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "\"%s\":{\"ok\":%s,\"state\":\"%s\"}%s", name,
		 ok ? "true" : "false", state, last ? "" : ",");
}

static enum api_verdict answer_readyz(struct api *r, struct api_answer *ans)
{
	const char *qwhy = "no durable queue configured (--journal-dir)";
	int db = __atomic_load_n(&r->db_state, __ATOMIC_RELAXED);
	bool q_ok = r->queue.writable && !r->queue.writable(r->queue.q, &qwhy);
	bool db_ok = db != 0, w_ok = true, ready;
	const char *wwhy = "";
	char *body = ans->buf;

	_Static_assert(sizeof(ans->buf) >= 1024, "room for the readiness document");
	if (q_ok)
		qwhy = "writable";
	/* The database is reported, not required: while the durable queue takes writes this
	 * node keeps its 202 promise (degrade, don't fail), and a load balancer that dropped
	 * every node during a database outage would turn it into a full one. */
	if (r->worker_ready) { /* takes no events: no ingress queue to be writable */
		q_ok = true;
		qwhy = "not needed (--role worker)";
		w_ok = !r->worker_ready(r->worker_ready_arg, &wwhy);
	}
	ready = r->xdp_ok && q_ok && w_ok && !__atomic_load_n(&r->draining, __ATOMIC_RELAXED);
	snprintf(body, sizeof(ans->buf), "{\"ready\":%s,\"checks\":{", ready ? "true" : "false");
	check_json(body, sizeof(ans->buf), "xdp", r->xdp_ok, r->xdp_state, false);
	check_json(body, sizeof(ans->buf), "queue", q_ok, qwhy, false);
	if (r->worker_ready)
		check_json(body, sizeof(ans->buf), "worker", w_ok, wwhy, false);
	check_json(body, sizeof(ans->buf), "database", db_ok,
		   db < 0 ? "not configured (--pg)"
		   : db	  ? "reachable"
			  : "unreachable",
		   true);
	strncat(body, "}}\n", sizeof(ans->buf) - strlen(body) - 1);
	return answer_json(ans, ready ? 200 : 503, body);
}

static enum api_verdict answer_metrics(struct api *r, struct api_answer *ans)
{
	size_t len = 0;
	char *text;

	metric_set(metrics_series(r->f_conns, NULL),
		   __atomic_load_n(&r->open_conns, __ATOMIC_RELAXED));
	if (r->queue.depth)
		metric_set(metrics_series(r->f_queue_depth, NULL), r->queue.depth(r->queue.q));
	metric_set(metrics_series(r->f_denied, NULL), admission_denials(r->adm));
	text = metrics_render(r->m, &len);
	if (!text)
		return answer_error(ans, 500, "internal", "out of memory rendering metrics");
	ans->status = 200;
	ans->content_type = "text/plain; version=0.0.4; charset=utf-8";
	ans->owned = text;
	ans->body = text;
	ans->body_len = len;
	return API_ANSWER;
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

static void count_admission(struct api *r, const char *limit, enum admission_outcome o,
			    const char *tenant)
{
	metric_add(metrics_series(r->f_admission,
				  (const char *[]){limit, admission_outcome_name(o), tenant}),
		   1);
}

/* The tenant by API key, by TLS client certificate, or both -- then they must agree. NULL
 * with the 401 in ans. */
static const struct tenant *authenticate(struct api *r, struct api_req *rq,
					 const struct http_request *req, struct api_answer *ans)
{
	static const char auth[] = "WWW-Authenticate: Bearer\r\n";
	const struct tenant *by_key = NULL, *by_cert = NULL;
	uint8_t digest[SHA256_LEN];
	const char *key;
	size_t klen;

	key = api_key(req, &klen);
	if (!key && !rq->client_cert) {
		error_hdr(ans, 401, "missing_api_key",
			  "send Authorization: Bearer <key> or X-Api-Key: <key>", auth);
		return NULL;
	}
	rq->tenants = tenants_ref_acquire(r->tenants);
	if (rq->client_cert) {
		by_cert = tenants_by_cert(rq->tenants, rq->client_cert);
		if (!by_cert && !key) {
			error_hdr(ans, 401, "unknown_client_cert",
				  "no tenant has this client certificate (cert_sha256)", auth);
			return NULL;
		}
	}
	if (key) {
		sha256(key, klen, digest);
		by_key = tenants_by_digest(rq->tenants, digest);
		if (!by_key) {
			error_hdr(ans, 401, "unknown_api_key", "the API key is not known", auth);
			return NULL;
		}
		if (rq->client_cert && by_cert != by_key) {
			error_hdr(ans, 401, "key_cert_mismatch",
				  "the API key and the client certificate name different tenants",
				  auth);
			return NULL;
		}
	}
	return by_key ? by_key : by_cert;
}

/* Tenant, content type and request credits: everything decidable before the body. */
static enum api_verdict events_head(struct api *r, struct api_req *rq,
				    const struct http_request *req, struct api_answer *ans)
{
	enum admission_outcome o;
	uint64_t retry;

	rq->tenant = authenticate(r, rq, req, ans);
	if (!rq->tenant)
		return API_ANSWER;
	if (!is_json(req))
		return answer_error(ans, 415, "unsupported_media_type",
				    "send Content-Type: application/json");
	o = admission_request(r->adm, rq->tenant, rq->tenants, rq->peer, clock_mono_ns(), &retry);
	count_admission(r, "req", o, rq->tenant->name);
	if (o == ADMISSION_REJECTED) /* whole seconds: round up, so a client honouring it passes */
		return error_retry(ans, 429, "rate_limited",
				   "over the tenant's request credits; retry after Retry-After",
				   (long long)((retry + 999999999ULL) / 1000000000ULL));
	return API_BODY;
}

enum api_verdict api_on_head(struct api *r, struct api_req *rq, const struct http_request *req,
			     struct api_answer *ans)
{
	enum route_id route = route_of(req, rq->admin);
	bool get = req->method == HTTP_M_GET || req->method == HTTP_M_HEAD;

	rq->route = route;
	if (route == ROUTE_OTHER)
		return answer_error(ans, 404, "not_found", "no such route");
	if (route == ROUTE_EVENTS && req->method != HTTP_M_POST)
		return error_hdr(ans, 405, "method_not_allowed", "use POST", "Allow: POST\r\n");
	if (route != ROUTE_EVENTS && !get)
		return error_hdr(ans, 405, "method_not_allowed", "use GET", "Allow: GET, HEAD\r\n");
	switch (route) {
	case ROUTE_HEALTHZ:
		return answer_json(ans, 200, "{\"status\":\"ok\"}\n");
	case ROUTE_READYZ:
		return answer_readyz(r, ans);
	case ROUTE_METRICS:
		return answer_metrics(r, ans);
	default:
		return events_head(r, rq, req, ans);
	}
}

static enum api_verdict refuse_503(struct api *r, struct api_answer *ans, const char *code,
				   const char *detail)
{
	return error_retry(ans, 503, code, detail, r->limits->retry_after_503);
}

/* The queue refused an event, at once or in its completion. */
static enum api_verdict refuse_append(struct api *r, struct api_answer *ans, int err)
{
	if (err == -ENOSPC)
		return refuse_503(r, ans, "queue_full", "the durable queue is full");
	if (err == -EAGAIN)
		return refuse_503(r, ans, "shedding", "the daemon is shedding load");
	return refuse_503(r, ans, "queue_error", strerror(-err));
}

enum api_verdict api_on_body(struct api *r, struct api_req *rq, const struct http_request *req,
			     const char *body, size_t len, ingress_durable_fn *done, void *arg,
			     struct api_answer *ans)
{
	const struct tenant *t = rq->tenant;
	struct ingress_event ev = {0};
	struct envelope env;
	enum admission_outcome o;
	const char *code;
	char detail[256];
	int err;

	(void)req;
	if (envelope_parse(body, len, &env, &code, detail, sizeof(detail))) {
		/* detail lives on this stack: keep it in the answer's own buffer */
		snprintf(ans->buf, sizeof(ans->buf), "%s", detail);
		return answer_error(ans, 400, code, ans->buf);
	}
	/* the envelope's priority, else the class its route gives the type, else the tenant's;
	 * the tenant's class is a ceiling: an event may lower its priority, never raise it */
	if (env.priority >= 0)
		rq->class = (enum sluice_class)env.priority;
	else if (r->type_class && (err = r->type_class(r->type_class_arg, env.type)) >= 0)
		rq->class = (enum sluice_class)err;
	else
		rq->class = t->class;
	if (rq->class < t->class) { /* enum order: critical 0 < normal < low */
		rq->class = t->class;
		count_admission(r, "class", ADMISSION_DEMOTED, t->name);
	}
	if (rq->class == SLUICE_CLASS_CRITICAL) {
		o = admission_critical(r->adm, t, clock_mono_ns());
		count_admission(r, "crit", o, t->name);
		if (o == ADMISSION_DEMOTED) {
			rq->class = SLUICE_CLASS_NORMAL;
			rq->demoted = true;
		}
	}
	if (!r->queue.append)
		return refuse_503(r, ans, "queue_unavailable",
				  "no durable queue is configured (--journal-dir)");
	ev = (struct ingress_event){.tenant_slot = t->slot,
				    .tenant = t->name,
				    .class = rq->class,
				    .demoted = rq->demoted,
				    .type = env.type,
				    .idempotency_key = env.idempotency_key,
				    .body = body,
				    .body_len = len,
				    .received_ns = rq->start_ns};
	err = r->queue.append(r->queue.q, &ev, done, arg);
	return err ? refuse_append(r, ans, err) : API_WAIT;
}

void api_on_durable(struct api *r, struct api_req *rq, int err, uint64_t id, struct api_answer *ans)
{
	if (err == -EEXIST) {
		/* the fast path knew the key: the original event was accepted before */
		snprintf(ans->buf, sizeof(ans->buf), "{\"id\":\"%016llx\",\"duplicate\":true}\n",
			 (unsigned long long)id);
		answer_json(ans, 200, ans->buf);
		return;
	}
	if (err) {
		refuse_append(r, ans, err);
		return;
	}
	metric_add(metrics_series(r->f_events, (const char *[]){rq->tenant->name,
								tenants_class_name(rq->class)}),
		   1);
	snprintf(ans->buf, sizeof(ans->buf),
		 "{\"id\":\"%016llx\",\"class\":\"%s\",\"demoted\":%s}\n", (unsigned long long)id,
		 tenants_class_name(rq->class), rq->demoted ? "true" : "false");
	answer_json(ans, 202, ans->buf);
}
