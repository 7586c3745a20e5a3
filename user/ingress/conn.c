// SPDX-License-Identifier: MIT
/* conn.c -- one HTTP/1.1 connection: bytes in, requests out, keep-alive and pipelining
 *
 * process() walks the bytes of one or more pipelined requests: head (parser), then the
 * route decides at the head (reject early: 401/405/413/415/429 before reading a body),
 * then the Content-Length body, then the route's answer -- at once, or later when the
 * queue confirms durability. It returns how many bytes it consumed; the rest is stashed.
 * A request whose body is not fully here when it is rejected at the head gets
 * Connection: close, because its unread body would otherwise be parsed as the next request.
 *
 * Invariants: c->in holds bytes from the first byte of the current request; the parser's
 * position is relative to that byte; rq.tenants is held from the head until the answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/conn.h"

#define STASH_SLACK (64 * 1024)	 /* pipelined bytes kept beyond one maximal request */
#define OUT_HIGH    (256 * 1024) /* answers queued for a client that does not read: stop there */

static __thread struct http_request scratch; /* 4 KiB: one per thread, not per connection */

void conn_init(struct conn *c, struct router *r, int fd, const struct sluice_addr *peer)
{
	memset(c, 0, sizeof(*c));
	c->router = r;
	c->fd = fd;
	c->peer = *peer;
	c->phase = CONN_HEAD;
	http_parser_init(&c->parser, &r->limits);
}

static void req_reset(struct conn *c)
{
	tenants_put(c->rq.tenants);
	memset(&c->rq, 0, sizeof(c->rq));
	c->body_here = false;
	http_parser_init(&c->parser, &c->router->limits);
}

void conn_fini(struct conn *c)
{
	req_reset(c);
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	obuf_fini(&c->out);
	obuf_fini(&c->sending);
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
	       (c->phase == CONN_HEAD && c->rq.content_length && !c->body_here);
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

void conn_finish_request(struct conn *c, int status, const char *content_type, const char *extra,
			 const char *body, size_t len)
{
	bool close = must_close(c);
	char hdrs[256];

	extra = keep_alive_headers(c, close, extra, hdrs, sizeof(hdrs));
	if (response_write(&c->out, status, content_type, extra, body, len, close, c->rq.head_only))
		c->abort = true;
	router_count(c->router, c->rq.route, status, c->rq.tenant ? c->rq.tenant->name : "",
		     c->rq.start_ns);
	finish(c, close);
}

void conn_finish_error(struct conn *c, int status, const char *code, const char *detail,
		       const char *extra, bool close)
{
	char hdrs[256];

	close = close || must_close(c);
	extra = keep_alive_headers(c, close, extra, hdrs, sizeof(hdrs));
	if (response_error(&c->out, status, code, detail, extra, close))
		c->abort = true;
	router_count(c->router, c->rq.route, status, c->rq.tenant ? c->rq.tenant->name : "",
		     c->rq.start_ns);
	finish(c, close);
}

static void head_error(struct conn *c, enum http_error e)
{
	c->rq.route = ROUTE_OTHER;
	conn_finish_error(c, http_error_status(e), http_error_code(e), http_error_detail(e), NULL,
			  true);
}

/* The head of the current request is complete in buf (len bytes available from its
 * first byte). Returns bytes consumed by this request, or 0 to wait for its body. */
static size_t on_head(struct conn *c, const char *buf, size_t len, long head_len)
{
	const struct http_request *req = &scratch;
	size_t need;

	c->rq.head_len = (size_t)head_len;
	c->rq.content_length = req->content_length;
	c->rq.keep_alive = req->keep_alive;
	c->rq.head_only = req->method == HTTP_M_HEAD;
	c->rq.http10 = req->minor == 0;
	if (req->content_length > (uint64_t)c->router->cfg->max_body) {
		c->rq.route = ROUTE_OTHER;
		conn_finish_error(c, 413, "body_too_large", "request body larger than --max-body",
				  NULL, true);
		return len;
	}
	need = (size_t)head_len + (size_t)req->content_length;
	c->body_here = len >= need;
	c->more_input = len > need;
	if (router_on_head(c->router, c, req))
		return c->phase == CONN_DONE ? len : need; /* answered; body skipped */
	if (!c->body_here) {
		c->phase = CONN_BODY;
		if (req->expect_continue && response_continue(&c->out))
			c->abort = true;
		return 0;
	}
	if (!router_on_body(c->router, c, req, buf + head_len, (size_t)req->content_length))
		c->phase = CONN_WAIT;
	return need;
}

/* The body of a CONN_BODY request is complete at buf (avail bytes from there). */
static size_t on_body(struct conn *c, const char *buf, size_t avail)
{
	size_t need = c->rq.head_len + (size_t)c->rq.content_length;

	/* the head's slices pointed into a buffer that is gone: parse it again from here */
	http_parser_init(&c->parser, &c->router->limits);
	if (http_parse(&c->parser, buf, c->rq.head_len, &scratch) != (long)c->rq.head_len) {
		c->abort = true; /* cannot happen: the same bytes parsed before */
		return need;
	}
	c->phase = CONN_HEAD; /* for must_close(): the body has been read */
	c->body_here = true;
	c->more_input = avail > need;
	if (!router_on_body(c->router, c, &scratch, buf + c->rq.head_len,
			    (size_t)c->rq.content_length))
		c->phase = CONN_WAIT;
	return need;
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
			if (!c->rq.start_ns)
				c->rq.start_ns = admission_now();
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
	size_t cap = (size_t)c->router->cfg->max_header_bytes + (size_t)c->router->cfg->max_body +
		     STASH_SLACK;
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
	if (!c->in_len && c->in_cap > 65536) { /* a big body passed: give the memory back */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

void conn_on_data(struct conn *c, const char *data, size_t len)
{
	size_t used;

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
	router_on_durable(c->router, c, err, id);
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
		c->rq.route = ROUTE_OTHER;
		conn_finish_error(c, 408, "request_timeout", "the request was not received in time",
				  NULL, true);
		break;
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
	if (conn_timer_kind(c) == CONN_T_IDLE)
		c->abort = true;
}

enum conn_timer conn_timer_kind(const struct conn *c)
{
	if (c->abort || c->closing)
		return CONN_T_NONE;
	switch (c->phase) {
	case CONN_HEAD:
		return c->in_len || c->parser.pos || c->rq.start_ns ? CONN_T_REQUEST : CONN_T_IDLE;
	case CONN_BODY:
		return CONN_T_REQUEST;
	case CONN_WAIT:
		return CONN_T_NONE;
	default:
		return CONN_T_LINGER;
	}
}
