/* SPDX-License-Identifier: MIT */
/* api.h -- the ingress API: routes, handlers, and the state they share
 *
 *	POST /v1/events   tenant by key, request credits, envelope, critical credits, durable
 *	                  enqueue, then 202 (asynchronously, when the queue says durable)
 *	GET  /healthz     the process answers
 *	GET  /readyz      XDP attached or deliberately off, queue writable (the database is
 *	                  reported but does not make a node unready while the queue accepts)
 *	GET  /metrics     Prometheus text
 *
 * The public listener serves /v1/events and /healthz; the admin listener (--admin-listen)
 * serves /healthz, /readyz and /metrics, which name tenants and their traffic. Each answers
 * 404 for the other's routes.
 *
 * The API never writes to a connection: each handler fills a struct api_answer (status,
 * error code and detail or a body, extra headers, close) and the connection (conn.c) writes
 * it. The chain is loop -> conn -> api; nothing calls back up. The api struct is shared by
 * every ingress thread; everything in it is either read-only after start, atomic, or behind
 * its own lock (metrics, tenants_ref, admission).
 */
#ifndef SLUICE_INGRESS_API_H
#define SLUICE_INGRESS_API_H

#include <stdbool.h>
#include <stdint.h>

#include "admit/admission.h"
#include "admit/tenants.h"
#include "ingress/http_parser.h"
#include "ingress/intake.h"
#include "lib/metrics.h"

enum route_id {
	ROUTE_EVENTS = 0,
	ROUTE_HEALTHZ,
	ROUTE_READYZ,
	ROUTE_METRICS,
	ROUTE_OTHER, /* 404s and requests refused before routing */
	ROUTE_MAX,
};

/* What a handler decided. */
enum api_verdict {
	API_ANSWER, /* the answer is in struct api_answer: write it */
	API_BODY,   /* (at the head) read the body, then call api_on_body() */
	API_WAIT,   /* (with the body) appended: the answer comes with api_on_durable() */
};

/* One answer for the connection to write. An error answer has code set (JSON error body
 * from code and detail); otherwise body/body_len with content_type. */
struct api_answer {
	int status;
	const char *code, *detail; /* error answers */
	const char *content_type;
	const char *body;
	size_t body_len;
	char *owned;	  /* when set, body points into it and the writer frees it */
	char headers[96]; /* extra header lines ("Retry-After: 3\r\n"), "" for none */
	bool close;	  /* Connection: close after this answer */
	char buf[1024];	  /* room for bodies the handler formats */
};

/* Per-request state shared by the connection and the API, from the head to the answer. */
struct api_req {
	enum route_id route;
	uint64_t start_ns; /* CLOCK_MONOTONIC, first byte of the request */
	const struct sluice_addr *peer;
	bool admin;		    /* the request came to the admin listener */
	const uint8_t *client_cert; /* SHA-256 of the verified TLS client certificate, or NULL */
	struct tenants *tenants;    /* reference held while tenant is used (api_req_reset) */
	const struct tenant *tenant;
	enum sluice_class class;
	bool demoted;
};

struct api {
	const struct ingress_limits *limits;
	struct tenants_ref *tenants;
	struct admission *adm;
	struct metrics *m;
	struct ingress_queue queue; /* .append NULL: no queue configured */
	struct http_limits http;
	const char *xdp_state; /* "attached (native, libxdp)" / "off: <why>" */
	bool xdp_ok;	       /* attached, or not asked for */
	/* a worker-only node (--role worker): ready when this says so (joined its consumer
	 * group, database reachable; why says what is missing), and no ingress queue is
	 * required; NULL on nodes that take events */
	int (*worker_ready)(void *arg, const char **why);
	void *worker_ready_arg;
	int db_state;	     /* 1 reachable, 0 unreachable, -1 not configured */
	unsigned open_conns; /* all loops (atomic) */
	bool draining;
	/* class a route gives an event type (enum sluice_class), -1 for none; may be NULL */
	int (*type_class)(void *arg, const char *type);
	void *type_class_arg;
	/* metric families */
	struct metric_family *f_requests, *f_latency, *f_admission, *f_conns, *f_refused;
	struct metric_family *f_http_errors, *f_events, *f_denied, *f_queue_depth;
	struct metric_family *f_accept_failures;
};

/* Fill a (embedded) and register its metric families in m. limits is borrowed. -errno. */
int api_init(struct api *a, const struct ingress_limits *limits, struct tenants_ref *tenants,
	     struct admission *adm, struct metrics *m);

/* A request head is complete (req points into the connection's bytes). API_ANSWER, or
 * API_BODY: read req->content_length bytes, then api_on_body(). */
enum api_verdict api_on_head(struct api *a, struct api_req *rq, const struct http_request *req,
			     struct api_answer *ans);
/* The body is complete. API_ANSWER, or API_WAIT: the event was handed to the queue, which
 * calls done(arg, err, id) exactly once from its own thread; the connection passes the
 * verdict to api_on_durable() on its loop. */
enum api_verdict api_on_body(struct api *a, struct api_req *rq, const struct http_request *req,
			     const char *body, size_t len, ingress_durable_fn *done, void *arg,
			     struct api_answer *ans);
/* The queue's verdict on the pending event: always an answer. */
void api_on_durable(struct api *a, struct api_req *rq, int err, uint64_t id,
		    struct api_answer *ans);
/* Fill ans with a JSON error (for answers the connection decides itself: 400, 408, 413). */
void api_error(struct api_answer *ans, int status, const char *code, const char *detail,
	       bool close);
/* Count an answer written for rq (requests by route/status/tenant, latency). */
void api_count(struct api *a, const struct api_req *rq, int status);
/* Drop the request's tenants reference and clear it (but for what belongs to the
 * connection: peer, listener, client certificate). */
void api_req_reset(struct api_req *rq);
/* A connection refused at accept, by reason (metrics). */
void api_count_refused(struct api *a, const char *reason);
/* accept(2) itself failed with errno err (metrics). */
void api_count_accept_failure(struct api *a, int err);
/* Name of a route for metric labels. */
const char *api_route_name(enum route_id id);

#endif /* SLUICE_INGRESS_API_H */
