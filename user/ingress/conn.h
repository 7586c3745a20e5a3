/* SPDX-License-Identifier: MIT */
/* conn.h -- one HTTP/1.1 connection: bytes in, requests out, keep-alive and pipelining
 *
 * The connection is a state machine driven by its loop: conn_on_data() with received
 * bytes, conn_on_durable() with the queue's verdict, conn_on_timeout() when a deadline
 * passes. It never does I/O itself: it fills c->out and sets c->close_after_send, and the
 * loop sends and closes. Requests on one connection are answered strictly in order; while
 * one waits for durability, the following pipelined bytes are kept, not parsed.
 *
 * Calls go one way: loop -> conn -> api. The API decides each answer (struct api_answer) and
 * the connection writes it. The queue's completion is the connection's own callback, which
 * posts into the loop's inbox (a slot reserved before the append, so the post cannot fail);
 * the loop hands the message back with conn_on_durable(). What the loop keeps about a
 * connection's I/O (in-flight operations, timers) stays in the loop.
 *
 * Input bytes are parsed straight from the loop's receive buffer when nothing is pending
 * (zero copy); only an incomplete request (or bytes arriving while waiting) is copied into
 * c->in, always starting at the first byte of the request being parsed. A chunked body is
 * the exception: its head is copied to c->head, its framing is decoded as it arrives
 * (chunked.h) and only the data is kept, in c->body, so the framing never counts against
 * the input buffer.
 */
#ifndef SLUICE_INGRESS_CONN_H
#define SLUICE_INGRESS_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "ingress/api.h"
#include "ingress/chunked.h"
#include "ingress/http_parser.h"
#include "ingress/inbox.h"
#include "ingress/response.h"
#include "sluice/abi.h"

enum conn_phase {
	CONN_HEAD, /* reading a request head (idle when nothing received) */
	CONN_BODY, /* head accepted, reading Content-Length bytes or a chunked body */
	CONN_WAIT, /* event handed to the queue, waiting for durability */
	CONN_DONE, /* final answer queued; no more requests are read */
};

enum conn_timer {
	CONN_T_NONE,	  /* not timed (waiting for the queue, or closing) */
	CONN_T_NEW,	  /* accepted, not one byte received yet: the header timeout, then close */
	CONN_T_IDLE,	  /* keep-alive after an answer, nothing received */
	CONN_T_REQUEST,	  /* part of a request received */
	CONN_T_LINGER,	  /* answered and half-closed, discarding input */
	CONN_T_SEND,	  /* a send in flight (the loop's own deadline, see loop.c) */
	CONN_T_HANDSHAKE, /* TLS handshake in progress (the loop's own deadline) */
	CONN_T_MAX,
};

/* Per-request facts decided at the head and used until the answer. */
struct conn_req {
	struct api_req api; /* what the API reads and decides (route, tenant, class) */
	bool keep_alive;
	bool head_only;
	bool http10;  /* HTTP/1.0: keep-alive must be announced */
	bool chunked; /* Transfer-Encoding: chunked */
	size_t head_len;
	uint64_t content_length;
};

struct conn {
	struct api *api;
	struct inbox *inbox; /* the loop's: where the queue's verdict is posted */
	uint64_t token;	     /* the loop's name for this connection in inbox messages */
	struct sluice_addr peer;
	enum conn_phase phase;
	struct http_parser parser;
	struct conn_req rq;
	char *in; /* stashed input, from the current request's first byte */
	size_t in_len, in_cap;
	struct chunked chunk;		 /* a chunked body being decoded */
	struct obuf head;		 /* its request head (read again by the API at the end) */
	struct obuf body;		 /* its data so far */
	struct obuf out;		 /* answers not yet handed to a send */
	struct obuf sending;		 /* answers handed to the loop's send, sent bytes from 0 */
	size_t sent;			 /* bytes of sending already sent */
	bool close_after_send;		 /* half-close and linger once out is sent */
	bool abort;			 /* close now, without an answer */
	bool body_here;			 /* the whole body arrived with the head */
	bool peer_eof;			 /* the client finished sending */
	bool more_input;		 /* bytes of a following request are already here */
	bool drain;			 /* daemon draining: answer the current request, close */
	bool fresh;			 /* nothing received since accept */
	uint8_t client_cert[SHA256_LEN]; /* TLS client certificate (rq.api.client_cert) */
};

/* Prepare c for a freshly accepted connection from peer, on the admin listener or not.
 * api and inbox are borrowed; token comes back in the inbox message with the queue's
 * verdict. */
void conn_init(struct conn *c, struct api *api, struct inbox *inbox, uint64_t token,
	       const struct sluice_addr *peer, bool admin);
/* The connection's TLS client certificate was verified: its SHA-256 fingerprint names the
 * tenant (with or instead of an API key) for every request that follows. */
void conn_set_client_cert(struct conn *c, const uint8_t fp[SHA256_LEN]);
/* Release what c owns (buffers, tenants reference); the socket is the loop's business. */
void conn_fini(struct conn *c);
/* Bytes arrived (data is only valid during the call). */
void conn_on_data(struct conn *c, const char *data, size_t len);
/* The queue's verdict for the event this connection waits on. */
void conn_on_durable(struct conn *c, int err, uint64_t id);
/* A send completed: continue with pipelined requests held back by output backpressure. */
void conn_on_sent(struct conn *c);
/* A deadline of the current timer passed: 408 for a partial request, close when idle or
 * when a new connection sent nothing. */
void conn_on_timeout(struct conn *c);
/* Start draining: idle connections close, a request in progress is answered and closed. */
void conn_drain(struct conn *c);
/* Which deadline applies now (the loop adds its own: sends in flight, closing). */
enum conn_timer conn_timer_kind(const struct conn *c);

#endif /* SLUICE_INGRESS_CONN_H */
