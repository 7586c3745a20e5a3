// SPDX-License-Identifier: MIT
/* response.c -- HTTP/1.1 response writer into a growable output buffer
 *
 * The Date header is formatted once per second per thread (thread-local cache), the rest
 * is one snprintf into the buffer; responses are small, so building them in place beats
 * any gathering scheme. Connection: close is sent whenever the connection will close, so
 * a client never reuses a socket we are about to shut.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingress/response.h"

static int obuf_grow(struct obuf *o, size_t need)
{
	size_t cap = o->cap ? o->cap : 512;
	char *p;

	if (o->len + need <= o->cap)
		return 0;
	while (cap < o->len + need)
		cap *= 2;
	p = realloc(o->p, cap);
	if (!p)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

int obuf_append(struct obuf *o, const void *data, size_t n)
{
	if (obuf_grow(o, n))
		return -ENOMEM;
	memcpy(o->p + o->len, data, n);
	o->len += n;
	return 0;
}

int obuf_printf(struct obuf *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if (o->p && (size_t)n < o->cap - o->len) {
		o->len += (size_t)n;
		return 0;
	}
	if (obuf_grow(o, (size_t)n + 1))
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
	return 0;
}

void obuf_fini(struct obuf *o)
{
	free(o->p);
	o->p = NULL;
	o->len = o->cap = 0;
}

const char *response_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

static const char *http_date(void)
{
	static __thread char buf[40];
	static __thread time_t at;
	time_t now = time(NULL);
	struct tm tm;

	if (now != at) {
		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		at = now;
	}
	return buf;
}

int response_write(struct obuf *o, int status, const char *content_type, const char *extra,
		   const char *body, size_t body_len, bool close, bool head_only)
{
	int err = obuf_printf(o,
			      "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: sluice\r\nContent-Type: %s\r\n"
			      "Content-Length: %zu\r\n%s%s\r\n",
			      status, response_reason(status), http_date(), content_type, body_len,
			      close ? "Connection: close\r\n" : "", extra ? extra : "");

	if (!err && !head_only && body_len)
		err = obuf_append(o, body, body_len);
	return err;
}

int response_json_escape(struct obuf *o, const char *s, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			err = obuf_printf(o, "\\%c", c);
		else if (c < 0x20)
			err = obuf_printf(o, "\\u%04x", c);
		else
			err = obuf_append(o, &s[i], 1);
	}
	return err;
}

int response_error(struct obuf *o, int status, const char *code, const char *detail,
		   const char *extra, bool close, bool head_only)
{
	struct obuf body = {0};
	int err = obuf_printf(&body, "{\"error\":\"%s\",\"detail\":\"", code);

	if (!err)
		err = response_json_escape(&body, detail, strlen(detail));
	if (!err)
		err = obuf_append(&body, "\"}\n", 3);
	if (!err)
		err = response_write(o, status, "application/json", extra, body.p, body.len, close,
				     head_only);
	obuf_fini(&body);
	return err;
}

int response_continue(struct obuf *o)
{
	static const char c[] = "HTTP/1.1 100 Continue\r\n\r\n";

	return obuf_append(o, c, sizeof(c) - 1);
}
