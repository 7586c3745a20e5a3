// SPDX-License-Identifier: MIT
/* conn.c -- one HTTP/1.1 connection: bytes in, requests out, keep-alive and pipelining
 *
 * process() walks the bytes of one or more pipelined requests: head (parser), then the
 * route decides at the head (reject early: 401/405/413/415/429 before reading a body),
 * then the Content-Length body, then the route's answer -- at once, or later when the
 * queue confirms durability. It returns how many bytes it consumed; the rest is stashed.
 * A request whose body is not fully here when it is rejected at the head gets
 * Connection: close, because its unread body would otherwise be parsed as the next request.
 * A chunked body is consumed as it arrives: the decoder keeps no raw bytes, so process()
 * returns them as used and only the data is copied (c->body); its errors close like a
 * head's, its size is held to --max-body while it grows (413).
 *
 * Invariants: c->in holds bytes from the first byte of the current request; the parser's
 * position is relative to that byte; rq.tenants is held from the head until the answer.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/conn.h"
#include "lib/clock.h"

#define STASH_SLACK   (64 * 1024)  /* pipelined bytes kept beyond one maximal request */
#define MAX_CHUNK_EXT 4096	   /* bytes of chunk extensions in one body (ignored anyway) */
#define BIG_BUFFER    65536	   /* a buffer grown past this is freed once empty */
#define OUT_HIGH      (256 * 1024) /* answers queued for a client that does not read: stop there */

static __thread struct http_request scratch; /* 4 KiB: one per thread, not per connection */

void conn_init(struct conn *c, struct api *api, struct inbox *inbox, uint64_t token,
	       const struct sluice_addr *peer, bool admin)
{
	memset(c, 0, sizeof(*c));
	c->api = api;
	c->inbox = inbox;
	c->token = token;
	c->peer = *peer;
	c->rq.api.peer = &c->peer;
	c->rq.api.admin = admin;
	c->phase = CONN_HEAD;
	c->fresh = true;
	http_parser_init(&c->parser, &api->http);
}

/* Empty a per-request buffer, giving the memory back after a big one. */
static void obuf_reset(struct obuf *o)
{
	if (o->cap > BIG_BUFFER)
		obuf_fini(o);
	o->len = 0;
}

void conn_set_client_cert(struct conn *c, const uint8_t fp[SHA256_LEN])
{
	memcpy(c->client_cert, fp, SHA256_LEN);
	c->rq.api.client_cert = c->client_cert;
}

static void req_reset(struct conn *c)
{
	api_req_reset(&c->rq.api); /* keeps what is the connection's */
	c->rq.keep_alive = c->rq.head_only = c->rq.http10 = c->rq.chunked = false;
	c->rq.head_len = 0;
	c->rq.content_length = 0;
	c->body_here = false;
	obuf_reset(&c->head);
	obuf_reset(&c->body);
	http_parser_init(&c->parser, &c->api->http);
}

void conn_fini(struct conn *c)
{
	req_reset(c);
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	obuf_fini(&c->out);
	obuf_fini(&c->sending);
	obuf_fini(&c->head);
	obuf_fini(&c->body);
}

/* After an answer: next request, or no more (close once sent). */
static void finish(struct conn *c, bool close)
{
	if (close) {
		c->close_after_send = true;
		c->phase = CONN_DONE;
	} else {
		c->phase = CONN_HEAD;
	}
	req_reset(c);
}

/* Whether the answer must close: client asked, draining (after the last request already
 * received: those are in flight too), or an unread body follows. */
static bool must_close(const struct conn *c)
{
	return !c->rq.keep_alive || (c->drain && !c->more_input) ||
	       (c->phase == CONN_HEAD && (c->rq.content_length || c->rq.chunked) && !c->body_here);
}

/* HTTP/1.0 keeps a connection only when the answer says so; extra headers go after it. */
static const char *keep_alive_headers(const struct conn *c, bool close, const char *extra,
				      char *buf, size_t len)
{
	if (close || !c->rq.http10)
		return extra;
	snprintf(buf, len, "Connection: keep-alive\r\n%s", extra ? extra : "");
	return buf;
}

/* Everything but the body buffer: the handlers fill what they use. */
static void answer_init(struct api_answer *ans)
{
	memset(ans, 0, offsetof(struct api_answer, buf));
}

/* Write the answer to the current request and finish it (keep-alive or close as the answer,
 * the request and the connection's state say). */
static void write_answer(struct conn *c, struct api_answer *ans)
{
	bool close = ans->close || must_close(c);
	const char *extra;
	char hdrs[256];
	int err;

	extra = keep_alive_headers(c, close, ans->headers, hdrs, sizeof(hdrs));
	if (ans->code)
		err = response_error(&c->out, ans->status, ans->code, ans->detail, extra, close,
				     c->rq.head_only);
	else
		err = response_write(&c->out, ans->status, ans->content_type, extra, ans->body,
				     ans->body_len, close, c->rq.head_only);
	free(ans->owned);
	if (err)
		c->abort = true;
	api_count(c->api, &c->rq.api, ans->status);
	finish(c, close);
}

/* An answer the connection decides itself (parser errors, 408, 413): always closes. */
static void conn_error(struct conn *c, int status, const char *code, const char *detail)
{
	struct api_answer ans;

	answer_init(&ans);
	c->rq.api.route = ROUTE_OTHER;
	api_error(&ans, status, code, detail, true);
	write_answer(c, &ans);
}

static void head_error(struct conn *c, enum http_error e)
{
	conn_error(c, http_error_status(e), http_error_code(e), http_error_detail(e));
}

/* The queue's completion, on the queue's thread: only the loop may touch the connection,
 * so the verdict goes into the loop's inbox (into the slot reserved before the append). The
 * connection is not freed while it waits, and inbox and token never change. */
static void queue_done(void *arg, int err, uint64_t id)
{
	struct conn *c = arg;

	inbox_post(c->inbox, &(struct inbox_msg){.token = c->token, .err = err, .id = id});
}

/* The body of the current request is complete: hand it to the API. */
static void on_full_body(struct conn *c, const struct http_request *req, const char *body,
			 size_t len)
{
	struct api_answer ans;

	answer_init(&ans);
	if (inbox_reserve(c->inbox)) {
		api_error(&ans, 503, "no_memory", "out of memory; retry", false);
		write_answer(c, &ans);
		return;
	}
	if (api_on_body(c->api, &c->rq.api, req, body, len, queue_done, c, &ans) == API_WAIT) {
		c->phase = CONN_WAIT;
		return;
	}
	inbox_unreserve(c->inbox); /* answered without an append: no completion will come */
	write_answer(c, &ans);
}

/* A chunked body follows the head at buf: keep the head (the receive buffer goes away) and
 * decode what comes next. Returns the head's length: it is consumed. */
static size_t start_chunked(struct conn *c, const char *buf, size_t head_len, bool expect)
{
	struct chunked_limits lim = {.max_body = c->api->limits->max_body,
				     .max_ext = MAX_CHUNK_EXT,
				     .max_trailer = c->api->limits->max_header_bytes};

	chunked_init(&c->chunk, &lim);
	c->phase = CONN_BODY;
	if (obuf_append(&c->head, buf, head_len) || (expect && response_continue(&c->out)))
		c->abort = true;
	return head_len;
}

/* The head of the current request is complete in buf (len bytes available from its
 * first byte). Returns bytes consumed by this request, or 0 to wait for its body. */
static size_t on_head(struct conn *c, const char *buf, size_t len, long head_len)
{
	const struct http_request *req = &scratch;
	struct api_answer ans;
	size_t need;

	c->rq.head_len = (size_t)head_len;
	c->rq.content_length = req->content_length;
	c->rq.chunked = req->chunked;
	c->rq.keep_alive = req->keep_alive;
	c->rq.head_only = req->method == HTTP_M_HEAD;
	c->rq.http10 = req->minor == 0;
	if (req->content_length > c->api->limits->max_body) {
		conn_error(c, 413, "body_too_large", "request body larger than --max-body");
		return len;
	}
	need = (size_t)head_len + (size_t)req->content_length;
	c->body_here = !req->chunked && len >= need;
	c->more_input = len > need;
	answer_init(&ans);
	if (api_on_head(c->api, &c->rq.api, req, &ans) == API_ANSWER) {
		write_answer(c, &ans);
		return c->phase == CONN_DONE ? len : need; /* answered; body skipped */
	}
	if (req->chunked)
		return start_chunked(c, buf, (size_t)head_len, req->expect_continue);
	if (!c->body_here) {
		c->phase = CONN_BODY;
		if (req->expect_continue && response_continue(&c->out))
			c->abort = true;
		return 0;
	}
	on_full_body(c, req, buf + head_len, (size_t)req->content_length);
	return need;
}

/* The head's slices pointed into a buffer that is gone: parse it again from head. The body
 * has been read (phase back to CONN_HEAD for must_close()); more says whether bytes of a
 * following request are here. false when the head does not parse again (cannot happen:
 * the same bytes parsed before), and the connection is aborted. */
static bool body_complete(struct conn *c, const char *head, bool more)
{
	http_parser_init(&c->parser, &c->api->http);
	if (http_parse(&c->parser, head, c->rq.head_len, &scratch) != (long)c->rq.head_len) {
		c->abort = true;
		return false;
	}
	c->phase = CONN_HEAD;
	c->body_here = true;
	c->more_input = more;
	return true;
}

/* The body of a CONN_BODY request is complete at buf (avail bytes from there). */
static size_t on_body(struct conn *c, const char *buf, size_t avail)
{
	size_t need = c->rq.head_len + (size_t)c->rq.content_length;

	if (body_complete(c, buf, avail > need))
		on_full_body(c, &scratch, buf + c->rq.head_len, (size_t)c->rq.content_length);
	return need;
}

/* The next bytes of a chunked body (avail of them at buf). Returns bytes consumed: all of
 * them until the body ends, then up to its end. */
static size_t on_chunked(struct conn *c, const char *buf, size_t avail)
{
	size_t used = 0;

	while (used < avail && !chunked_done(&c->chunk)) {
		const char *data;
		size_t n;
		long r = chunked_parse(&c->chunk, buf + used, avail - used, &data, &n);

		if (r < 0) {
			enum chunked_error e = (enum chunked_error) - r;

			conn_error(c, chunked_error_status(e), chunked_error_code(e),
				   chunked_error_detail(e));
			return avail;
		}
		if (n && obuf_append(&c->body, data, n)) {
			c->abort = true;
			return avail;
		}
		used += (size_t)r;
	}
	if (chunked_done(&c->chunk) && body_complete(c, c->head.p, avail > used))
		on_full_body(c, &scratch, c->body.p, c->body.len);
	return used;
}

static size_t process(struct conn *c, const char *buf, size_t len)
{
	size_t off = 0, used;
	long r;

	while (!c->abort) {
		switch (c->phase) {
		case CONN_HEAD:
			if (off == len || c->out.len + c->sending.len > OUT_HIGH)
				return off; /* backpressure: resumed by conn_on_sent() */
			if (!c->rq.api.start_ns)
				c->rq.api.start_ns = clock_mono_ns();
			r = http_parse(&c->parser, buf + off, len - off, &scratch);
			if (r == 0)
				return off;
			if (r < 0) {
				head_error(c, (enum http_error) - r);
				return len;
			}
			used = on_head(c, buf + off, len - off, r);
			if (!used)
				return off; /* wait for the body: stash from the request start */
			off += used;
			break;
		case CONN_BODY:
			if (c->rq.chunked) {
				if (off == len)
					return off;
				off += on_chunked(c, buf + off, len - off);
				break;
			}
			if (len - off < c->rq.head_len + c->rq.content_length)
				return off;
			off += on_body(c, buf + off, len - off);
			break;
		case CONN_WAIT:
			return off;
		case CONN_DONE:
			return len; /* answered and closing: the rest is discarded */
		}
	}
	return len;
}

static int stash(struct conn *c, const char *data, size_t len)
{
	size_t cap =
	    c->api->limits->max_header_bytes + (size_t)c->api->limits->max_body + STASH_SLACK;
	char *p;

	if (c->in_len + len > cap)
		return -E2BIG;
	if (c->in_len + len > c->in_cap) {
		size_t ncap = c->in_cap ? c->in_cap : 4096;

		while (ncap < c->in_len + len)
			ncap *= 2;
		p = realloc(c->in, ncap);
		if (!p)
			return -ENOMEM;
		c->in = p;
		c->in_cap = ncap;
	}
	memcpy(c->in + c->in_len, data, len);
	c->in_len += len;
	return 0;
}

static void run_stash(struct conn *c)
{
	size_t used = process(c, c->in, c->in_len);

	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	if (!c->in_len && c->in_cap > BIG_BUFFER) { /* a big body passed: give the memory back */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

void conn_on_data(struct conn *c, const char *data, size_t len)
{
	size_t used;

	c->fresh = false;
	if (c->phase == CONN_DONE || c->abort)
		return; /* lingering: discard */
	if (c->in_len) {
		if (stash(c, data, len))
			c->abort = true;
		else
			run_stash(c);
		return;
	}
	used = process(c, data, len); /* zero copy: straight from the receive buffer */
	if (used < len && stash(c, data + used, len - used))
		c->abort = true;
}

void conn_on_durable(struct conn *c, int err, uint64_t id)
{
	struct api_answer ans;

	answer_init(&ans);
	api_on_durable(c->api, &c->rq.api, err, id, &ans);
	write_answer(c, &ans);
	if (c->phase == CONN_HEAD && c->in_len)
		run_stash(c); /* pipelined requests that waited behind this one */
}

void conn_on_sent(struct conn *c)
{
	if (c->phase == CONN_HEAD && c->in_len && !c->abort && c->out.len < OUT_HIGH)
		run_stash(c); /* pipelined requests held back while answers piled up */
}

void conn_on_timeout(struct conn *c)
{
	switch (conn_timer_kind(c)) {
	case CONN_T_REQUEST:
		conn_error(c, 408, "request_timeout", "the request was not received in time");
		break;
	case CONN_T_NEW: /* a connection that never spoke: no request to answer */
	case CONN_T_IDLE:
		c->abort = true; /* nothing to say, nothing unread: just close */
		break;
	default:
		c->abort = true;
		break;
	}
}

void conn_drain(struct conn *c)
{
	c->drain = true;
	if (conn_timer_kind(c) == CONN_T_IDLE || conn_timer_kind(c) == CONN_T_NEW)
		c->abort = true;
}

enum conn_timer conn_timer_kind(const struct conn *c)
{
	if (c->abort)
		return CONN_T_NONE;
	switch (c->phase) {
	case CONN_HEAD:
		if (c->in_len || c->parser.pos || c->rq.api.start_ns)
			return CONN_T_REQUEST;
		/* before its first byte a connection has only the header timeout (10 s), not the
		 * keep-alive one (60 s), which a client earns with a request */
		return c->fresh ? CONN_T_NEW : CONN_T_IDLE;
	case CONN_BODY:
		return CONN_T_REQUEST;
	case CONN_WAIT:
		return CONN_T_NONE;
	default:
		return CONN_T_LINGER;
	}
}
