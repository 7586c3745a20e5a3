/* SPDX-License-Identifier: MIT */
/* response.h -- HTTP/1.1 response writer into a growable output buffer
 *
 * Every answer is a complete status line, fixed headers (Date, Server, Content-Type,
 * Content-Length, Connection when closing), optional extra headers and a body. Errors are
 * JSON {"error":"<code>","detail":"..."} with the detail JSON-escaped.
 */
#ifndef SLUICE_HTTP_RESPONSE_H
#define SLUICE_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

/* Growable byte buffer; zero-initialise, obuf_fini() to free. */
struct obuf {
	char *p;
	size_t len, cap;
};

/* Append n bytes; -ENOMEM leaves the buffer as it was. */
int obuf_append(struct obuf *o, const void *data, size_t n);
int obuf_printf(struct obuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void obuf_fini(struct obuf *o);

/* Reason phrase of a status ("Too Many Requests"). */
const char *response_reason(int status);

/* A full response. extra is "" or complete header lines ("Retry-After: 3\r\n"); head_only
 * (HEAD requests) sends the headers with the body's length but not the body. */
int response_write(struct obuf *o, int status, const char *content_type, const char *extra,
		   const char *body, size_t body_len, bool close, bool head_only);
/* {"error":code,"detail":detail} with status; head_only as for response_write (an answer
 * to HEAD never carries a body, errors included: RFC 9110 §9.3.2). */
int response_error(struct obuf *o, int status, const char *code, const char *detail,
		   const char *extra, bool close, bool head_only);
/* "HTTP/1.1 100 Continue\r\n\r\n" */
int response_continue(struct obuf *o);
/* Append s JSON-escaped (no quotes) to o. */
int response_json_escape(struct obuf *o, const char *s, size_t n);

#endif /* SLUICE_HTTP_RESPONSE_H */
