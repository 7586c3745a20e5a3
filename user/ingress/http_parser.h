/* SPDX-License-Identifier: MIT */
/* parser.h -- pure incremental zero-copy HTTP/1.1 request-head parser
 *
 * No I/O and no allocation: the caller owns a contiguous buffer holding the bytes received
 * so far and calls http_parse() again after each arrival. The parser remembers how far it
 * has scanned, so feeding one byte at a time costs O(n) overall. When the head (request line
 * and headers, up to the empty line) is complete it fills a struct http_request whose
 * pointers point INTO the caller's buffer: they stay valid while that buffer does.
 *
 * Strict on purpose (request smuggling): lines end in CRLF only (a bare CR or LF is an
 * error), no obs-fold, no whitespace before the colon, one Content-Length made of digits,
 * never Transfer-Encoding together with Content-Length, a Transfer-Encoding list that ends
 * in chunked (RFC 9112 §6.3, else 400 and close; a coding we do not implement before it is
 * 501, §6.1), no Transfer-Encoding in HTTP/1.0, one valid Host (required in 1.1, §3.2), a
 * request target of visible ASCII only. Targets come in origin-form, asterisk-form (OPTIONS)
 * or absolute-form (http/https, §3.2.2), which is reduced to its path for routing.
 * The body is not the parser's business: content_length says how long it is, or chunked
 * says that chunked.h decodes it.
 */
#ifndef SLUICE_HTTP_PARSER_H
#define SLUICE_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEADERS_CAP 128 /* hard ceiling for limits.max_headers */

enum http_method {
	HTTP_M_UNKNOWN = 0,
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS,
	HTTP_M_PATCH,
	HTTP_M_CONNECT,
	HTTP_M_TRACE,
	HTTP_M_MAX,
};

/* Why a head was refused; http_error_status() maps each to its HTTP status. */
enum http_error {
	HTTP_ERR_NONE = 0,
	HTTP_ERR_LINE_TOO_LONG,	   /* 431 a request or header line over max_line */
	HTTP_ERR_HEAD_TOO_LARGE,   /* 431 the whole head over max_head */
	HTTP_ERR_TOO_MANY_HEADERS, /* 431 more than max_headers */
	HTTP_ERR_BAD_REQUEST_LINE, /* 400 */
	HTTP_ERR_BAD_TARGET,	   /* 400 not origin-, asterisk- or absolute-form */
	HTTP_ERR_BAD_HEADER,	   /* 400 bad name, space before colon, no colon */
	HTTP_ERR_BAD_CHAR,	   /* 400 control character in the head */
	HTTP_ERR_BARE_CR,	   /* 400 CR not followed by LF */
	HTTP_ERR_BARE_LF,	   /* 400 LF not preceded by CR */
	HTTP_ERR_OBS_FOLD,	   /* 400 continuation line */
	HTTP_ERR_CL_AND_TE,	   /* 400 Content-Length and Transfer-Encoding */
	HTTP_ERR_DUP_CL,	   /* 400 more than one Content-Length */
	HTTP_ERR_BAD_CL,	   /* 400 Content-Length not a plain decimal number */
	HTTP_ERR_NO_HOST,	   /* 400 HTTP/1.1 without Host */
	HTTP_ERR_DUP_HOST,	   /* 400 more than one Host */
	HTTP_ERR_BAD_HOST,	   /* 400 Host (or the target's authority) not host[:port] */
	HTTP_ERR_HTTP09,	   /* 400 HTTP/0.9 simple request */
	HTTP_ERR_TE_NOT_CHUNKED,   /* 400 the final transfer coding is not chunked */
	HTTP_ERR_TE_HTTP10,	   /* 400 Transfer-Encoding in an HTTP/1.0 request */
	HTTP_ERR_TE_UNKNOWN,	   /* 501 a transfer coding we do not implement before chunked */
	HTTP_ERR_METHOD,	   /* 501 unknown method */
	HTTP_ERR_CONNECT,	   /* 501 CONNECT: not a proxy (authority-form never parsed) */
	HTTP_ERR_EXPECT,	   /* 417 Expect other than 100-continue */
	HTTP_ERR_HTTP2,		   /* 505 HTTP/2 connection preface */
	HTTP_ERR_VERSION,	   /* 505 any other version */
	HTTP_ERR_MAX,
};

struct http_limits {
	size_t max_line;      /* one request or header line, CRLF excluded */
	size_t max_head;      /* request line + headers + final CRLF */
	unsigned max_headers; /* header fields, at most HTTP_HEADERS_CAP */
};

struct http_header {
	const char *name;
	size_t name_len;
	const char *value; /* optional whitespace trimmed */
	size_t value_len;
};

struct http_request {
	enum http_method method;
	const char *method_str;
	size_t method_len;
	/* origin-form: path and query; absolute-form: the same after the authority, which may
	 * be empty or start with "?" (an empty path means "/", RFC 9112 §3.2.1) */
	const char *target;
	size_t target_len;
	const char *authority; /* absolute-form only: host[:port] of the target, else NULL */
	size_t authority_len;
	int minor; /* HTTP/1.<minor>, 0 or 1 */
	unsigned nheaders;
	struct http_header headers[HTTP_HEADERS_CAP];
	uint64_t content_length; /* 0 without the header */
	bool has_content_length;
	bool chunked;	 /* Transfer-Encoding: chunked: the body is chunked.h's */
	bool keep_alive; /* after version default and Connection */
	bool expect_continue;
	size_t skipped;	 /* empty lines ignored before the request line */
	size_t head_len; /* bytes of the head, skipped lines included */
};

/* Embedded scanning state; zero it (http_parser_init) for every new request. */
struct http_parser {
	struct http_limits lim;
	size_t pos;	   /* next byte to scan */
	size_t line_start; /* first byte of the line being scanned */
	size_t skipped;	   /* leading CRLFs */
	bool line_done;	   /* request line complete and valid */
};

/* Defaults: 8 KiB lines, 16 KiB head, 64 headers. */
void http_limits_default(struct http_limits *lim);
/* Start parsing a new request with the given limits (copied). */
void http_parser_init(struct http_parser *p, const struct http_limits *lim);

/* Parse buf[0..len), the bytes of this request received so far (always from its first byte;
 * len only grows between calls). Returns the head length (> 0) and fills *req when the
 * head is complete, 0 when more bytes are needed, or -enum http_error. After an error or a
 * complete head, http_parser_init() before the next request. */
long http_parse(struct http_parser *p, const char *buf, size_t len, struct http_request *req);

/* The HTTP status for an error (400, 417, 431, 501, 505). */
int http_error_status(enum http_error e);
/* Short machine-readable code ("header_too_large") and a human sentence for the error. */
const char *http_error_code(enum http_error e);
const char *http_error_detail(enum http_error e);

/* Case-insensitive lookup of a header; NULL when absent (first match). */
const struct http_header *http_header_find(const struct http_request *req, const char *name);
/* Method name for a method enum ("GET"); "" for UNKNOWN. */
const char *http_method_name(enum http_method m);

#endif /* SLUICE_HTTP_PARSER_H */
