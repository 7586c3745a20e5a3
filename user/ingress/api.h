/* SPDX-License-Identifier: MIT */
/* router.h -- routes and handlers of the ingress API, and the state they share
 *
 *	POST /v1/events   tenant by key, request credits, envelope, critical credits, durable
 *	                  enqueue, then 202 (asynchronously, when the queue says durable)
 *	GET  /healthz     the process answers
 *	GET  /readyz      XDP attached or deliberately off, queue writable, database reachable
 *	GET  /metrics     Prometheus text
 *
 * The router is shared by every ingress thread; everything in it is either read-only after
 * start, atomic, or behind its own lock (metrics, tenants_ref, admission).
 */
#ifndef SLUICE_HTTP_ROUTER_H
#define SLUICE_HTTP_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include "admit/admission.h"
#include "config.h"
#include "ingress/http_parser.h"
#include "lib/metrics.h"
#include "admit/tenants.h"

struct conn;

/* What the queue gets for one accepted event. Pointers are valid during append() only. */
struct ingress_event {
	uint32_t tenant_slot;
	const char *tenant;
	enum sluice_class class; /* after demotion */
	bool demoted;
	const char *type;
	const char *idempotency_key;
	const char *body; /* the envelope as received */
	size_t body_len;
	uint64_t received_ns; /* CLOCK_MONOTONIC */
};

/* Called once per append, from any thread: err 0 = durable (id is its queue id). */
typedef void ingress_durable_fn(void *arg, int err, uint64_t id);

/* The durable queue as the ingress sees it (adapter over user/queue). */
struct ingress_queue {
	void *q;
	/* 0 = will call done exactly once; -errno = refused now (-ENOSPC full, -EIO disk,
	 * -EAGAIN shedding), done is not called */
	int (*append)(void *q, const struct ingress_event *ev, ingress_durable_fn *done, void *arg);
	/* 0 when appends are accepted, else -errno and a reason in why */
	int (*writable)(void *q, const char **why);
	uint64_t (*depth)(void *q);
};

enum route_id {
	ROUTE_EVENTS = 0,
	ROUTE_HEALTHZ,
	ROUTE_READYZ,
	ROUTE_METRICS,
	ROUTE_OTHER, /* 404s and requests refused before routing */
	ROUTE_MAX,
};

struct router {
	const struct sluiced_cfg *cfg;
	struct tenants_ref *tenants;
	struct admission *adm;
	struct metrics *m;
	struct ingress_queue queue; /* .append NULL: no queue configured */
	struct http_limits limits;
	const char *xdp_state; /* "attached (native, libxdp)" / "off: <why>" */
	bool xdp_ok;	       /* attached, or not asked for */
	int db_state;	       /* 1 reachable, 0 unreachable, -1 not configured */
	unsigned open_conns;   /* all loops (atomic) */
	bool draining;
	/* class a route gives an event type (enum sluice_class), -1 for none; may be NULL */
	int (*type_class)(void *arg, const char *type);
	void *type_class_arg;
	/* metric families */
	struct metric_family *f_requests, *f_latency, *f_admission, *f_conns, *f_refused;
	struct metric_family *f_http_errors, *f_events, *f_denied, *f_queue_depth;
};

/* Fill r (embedded) and register its metric families in m. -errno. */
int router_init(struct router *r, const struct sluiced_cfg *cfg, struct tenants_ref *tenants,
		struct admission *adm, struct metrics *m);

/* A request head is complete (req points into the connection's bytes). Either answers
 * at once (returns 1; the body, if any, is skipped by the caller) or returns 0: read
 * the body of req->content_length bytes, then call router_on_body(). */
int router_on_head(struct router *r, struct conn *c, const struct http_request *req);
/* The body is complete. Returns 1 when answered, 0 when the answer will come from
 * router_on_durable() (the connection waits). */
int router_on_body(struct router *r, struct conn *c, const struct http_request *req,
		   const char *body, size_t len);
/* The queue's verdict on the connection's pending event (on the loop thread). */
void router_on_durable(struct router *r, struct conn *c, int err, uint64_t id);
/* Count a parser or connection-level error answered by the connection itself. */
void router_count(struct router *r, enum route_id route, int status, const char *tenant,
		  uint64_t start_ns);
/* Name of a route for metric labels. */
const char *router_route_name(enum route_id id);

#endif /* SLUICE_HTTP_ROUTER_H */
