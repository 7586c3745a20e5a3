// SPDX-License-Identifier: MIT
/* parser.c -- pure incremental zero-copy HTTP/1.1 request-head parser
 *
 * Two phases. Scanning walks each new byte once: it enforces CRLF-only line ends, rejects
 * control characters, measures line and head length against the limits, and validates the
 * request line as soon as it ends (so HTTP/0.9 and the HTTP/2 preface get their answer
 * without waiting for an empty line that may never come). When the empty line arrives the
 * header lines, already known to be well formed byte-wise, are split into name/value slices
 * and the framing headers (Content-Length, Transfer-Encoding, Host, Connection, Expect) are
 * checked together, because smuggling shapes are combinations of headers. Transfer-Encoding
 * is one list over all its field lines (RFC 9110 §5.3), judged as a whole.
 *
 * Invariant: buf[0..p->pos) has been scanned and holds no error; p->line_start <= p->pos.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "ingress/http_chars.h"
#include "ingress/http_parser.h"
#include "lib/hex.h"

static const struct {
	int status;
	const char *code;
	const char *detail;
} errors[HTTP_ERR_MAX] = {
    [HTTP_ERR_NONE] = {200, "ok", "no error"},
    [HTTP_ERR_LINE_TOO_LONG] = {431, "header_too_large", "request or header line too long"},
    [HTTP_ERR_HEAD_TOO_LARGE] = {431, "header_too_large", "request head too large"},
    [HTTP_ERR_TOO_MANY_HEADERS] = {431, "header_too_large", "too many header fields"},
    [HTTP_ERR_BAD_REQUEST_LINE] = {400, "bad_request", "malformed request line"},
    [HTTP_ERR_BAD_TARGET] = {400, "bad_request",
			     "request target must be a path (/...) or an http(s) URL of visible "
			     "ASCII"},
    [HTTP_ERR_BAD_HEADER] = {400, "bad_request", "malformed header field"},
    [HTTP_ERR_BAD_CHAR] = {400, "bad_request", "control character in request head"},
    [HTTP_ERR_BARE_CR] = {400, "bad_request", "CR not followed by LF"},
    [HTTP_ERR_BARE_LF] = {400, "bad_request", "line ends in LF without CR"},
    [HTTP_ERR_OBS_FOLD] = {400, "bad_request", "obsolete line folding"},
    [HTTP_ERR_CL_AND_TE] = {400, "bad_request", "both Content-Length and Transfer-Encoding"},
    [HTTP_ERR_DUP_CL] = {400, "bad_request", "more than one Content-Length"},
    [HTTP_ERR_BAD_CL] = {400, "bad_request", "Content-Length is not a decimal number"},
    [HTTP_ERR_NO_HOST] = {400, "bad_request", "HTTP/1.1 request without Host"},
    [HTTP_ERR_DUP_HOST] = {400, "bad_request", "more than one Host"},
    [HTTP_ERR_BAD_HOST] = {400, "bad_request", "Host is not host[:port]"},
    [HTTP_ERR_HTTP09] = {400, "http09_not_supported", "HTTP/0.9 is not supported"},
    [HTTP_ERR_TE_NOT_CHUNKED] = {400, "bad_request",
				 "Transfer-Encoding must end in chunked (once) in a request"},
    [HTTP_ERR_TE_HTTP10] = {400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request"},
    [HTTP_ERR_TE_UNKNOWN] = {501, "not_implemented",
			     "unsupported transfer coding; only chunked is implemented"},
    [HTTP_ERR_METHOD] = {501, "not_implemented", "unknown method"},
    [HTTP_ERR_CONNECT] = {501, "not_implemented", "CONNECT is not supported: this is no proxy"},
    [HTTP_ERR_EXPECT] = {417, "expectation_failed", "only Expect: 100-continue is supported"},
    [HTTP_ERR_HTTP2] = {505, "http2_not_supported", "HTTP/2 is not supported here; use HTTP/1.1"},
    [HTTP_ERR_VERSION] = {505, "version_not_supported", "only HTTP/1.0 and 1.1"},
};

static const char *const methods[HTTP_M_MAX] = {
    [HTTP_M_UNKNOWN] = "",	  [HTTP_M_GET] = "GET",	    [HTTP_M_HEAD] = "HEAD",
    [HTTP_M_POST] = "POST",	  [HTTP_M_PUT] = "PUT",	    [HTTP_M_DELETE] = "DELETE",
    [HTTP_M_OPTIONS] = "OPTIONS", [HTTP_M_PATCH] = "PATCH", [HTTP_M_CONNECT] = "CONNECT",
    [HTTP_M_TRACE] = "TRACE",
};

int http_error_status(enum http_error e)
{
	return e < HTTP_ERR_MAX ? errors[e].status : 500;
}

const char *http_error_code(enum http_error e)
{
	return e < HTTP_ERR_MAX ? errors[e].code : "internal";
}

const char *http_error_detail(enum http_error e)
{
	return e < HTTP_ERR_MAX ? errors[e].detail : "internal error";
}

const char *http_method_name(enum http_method m)
{
	return m < HTTP_M_MAX ? methods[m] : "";
}

void http_limits_default(struct http_limits *lim)
{
	lim->max_line = 8192;
	lim->max_head = 16384;
	lim->max_headers = 64;
}

void http_parser_init(struct http_parser *p, const struct http_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
	if (p->lim.max_headers > HTTP_HEADERS_CAP)
		p->lim.max_headers = HTTP_HEADERS_CAP;
}

static bool eq_ci(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(s, lit, n);
}

static enum http_method method_lookup(const char *s, size_t n)
{
	for (int m = HTTP_M_GET; m < HTTP_M_MAX; m++)
		if (strlen(methods[m]) == n && !memcmp(methods[m], s, n))
			return m;
	return HTTP_M_UNKNOWN;
}

/* "HTTP/1.1" -> 1; -errno-style negative http_error otherwise */
static int parse_version(const char *v, size_t n)
{
	if (n == 8 && !memcmp(v, "HTTP/1.", 7) && (v[7] == '0' || v[7] == '1'))
		return v[7] - '0';
	if ((n == 8 && !memcmp(v, "HTTP/2.0", 8)) || (n == 6 && !memcmp(v, "HTTP/2", 6)))
		return -HTTP_ERR_HTTP2;
	if (n >= 6 && !memcmp(v, "HTTP/", 5))
		return -HTTP_ERR_VERSION;
	return -HTTP_ERR_BAD_REQUEST_LINE;
}

/* RFC 3986 unreserved and sub-delims: the bytes of a reg-name besides pct-encoded */
static bool is_regname_char(unsigned char c)
{
	static const char extra[] = "-._~!$&'()*+,;=";

	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr(extra, c));
}

/* uri-host [":" port] (RFC 9110 §7.2): reg-name, IPv4 or "[" IPv6 / IPvFuture "]", then
 * digits. Empty is valid (a target without authority); userinfo ("@") is not. */
static bool valid_host(const char *s, size_t n)
{
	size_t i = 0;

	if (n && s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (!is_regname_char((unsigned char)s[i]) && s[i] != ':')
				return false;
		if (i == n || i == 1)
			return false;
		i++;
	} else {
		for (; i < n && s[i] != ':'; i++) {
			if (s[i] == '%' && i + 2 < n && hex_digit((unsigned char)s[i + 1]) >= 0 &&
			    hex_digit((unsigned char)s[i + 2]) >= 0)
				i += 2;
			else if (!is_regname_char((unsigned char)s[i]))
				return false;
		}
	}
	if (i == n)
		return true;
	if (s[i] != ':')
		return false;
	for (i++; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* The request target t[0..n): origin-form ("/path?query"), asterisk-form (OPTIONS *) or
 * absolute-form ("http://host/path?query", RFC 9112 §3.2.2: a server MUST accept it), whose
 * path becomes req->target and host req->authority. Visible ASCII only. */
static int parse_target(const char *t, size_t n, struct http_request *req)
{
	const char *auth, *end = t + n, *path;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			return -HTTP_ERR_BAD_TARGET;
	req->target = t;
	req->target_len = n;
	if (t[0] == '/')
		return 0;
	if (n == 1 && t[0] == '*')
		return req->method == HTTP_M_OPTIONS ? 0 : -HTTP_ERR_BAD_TARGET;
	if (n > 7 && !strncasecmp(t, "http://", 7))
		auth = t + 7;
	else if (n > 8 && !strncasecmp(t, "https://", 8))
		auth = t + 8;
	else
		return -HTTP_ERR_BAD_TARGET;
	for (path = auth; path < end && *path != '/' && *path != '?'; path++)
		;
	if (path == auth || !valid_host(auth, (size_t)(path - auth)))
		return -HTTP_ERR_BAD_HOST;
	req->authority = auth;
	req->authority_len = (size_t)(path - auth);
	req->target = path; /* still inside the buffer, even when empty */
	req->target_len = (size_t)(end - path);
	return 0;
}

/* Validate and split the request line line[0..n) (CRLF excluded). */
static int parse_request_line(const char *line, size_t n, struct http_request *req)
{
	const char *sp1 = memchr(line, ' ', n), *sp2;
	int minor;

	if (!sp1 || sp1 == line)
		return -HTTP_ERR_BAD_REQUEST_LINE;
	for (const char *c = line; c < sp1; c++)
		if (!http_is_tchar((unsigned char)*c))
			return -HTTP_ERR_BAD_REQUEST_LINE;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1));
	if (!sp2)
		return sp1 + 1 < line + n ? -HTTP_ERR_HTTP09 : -HTTP_ERR_BAD_REQUEST_LINE;
	if (sp2 == sp1 + 1 || memchr(sp2 + 1, ' ', (size_t)(line + n - sp2 - 1)))
		return -HTTP_ERR_BAD_REQUEST_LINE;
	minor = parse_version(sp2 + 1, (size_t)(line + n - sp2 - 1));
	if (minor < 0)
		return minor;
	req->method_str = line;
	req->method_len = (size_t)(sp1 - line);
	req->method = method_lookup(line, req->method_len);
	if (req->method == HTTP_M_UNKNOWN)
		return -HTTP_ERR_METHOD;
	if (req->method == HTTP_M_CONNECT) /* a tunnel follows a 2xx: framing unknown, close */
		return -HTTP_ERR_CONNECT;
	req->minor = minor;
	return parse_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), req);
}

/* Split one header line; no leading whitespace (obs-fold), token name, colon, OWS value. */
static int parse_header_line(const char *line, size_t n, struct http_header *h)
{
	const char *colon, *v, *end = line + n;

	if (line[0] == ' ' || line[0] == '\t')
		return -HTTP_ERR_OBS_FOLD;
	colon = memchr(line, ':', n);
	if (!colon || colon == line)
		return -HTTP_ERR_BAD_HEADER;
	for (const char *c = line; c < colon; c++)
		if (!http_is_tchar((unsigned char)*c))
			return -HTTP_ERR_BAD_HEADER;
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	h->name = line;
	h->name_len = (size_t)(colon - line);
	h->value = v;
	h->value_len = (size_t)(end - v);
	return 0;
}

static int parse_content_length(const struct http_header *h, struct http_request *req)
{
	uint64_t v = 0;

	if (req->has_content_length)
		return -HTTP_ERR_DUP_CL;
	if (!h->value_len || h->value_len > 18)
		return -HTTP_ERR_BAD_CL;
	for (size_t i = 0; i < h->value_len; i++) {
		if (h->value[i] < '0' || h->value[i] > '9')
			return -HTTP_ERR_BAD_CL;
		v = v * 10 + (uint64_t)(h->value[i] - '0');
	}
	req->content_length = v;
	req->has_content_length = true;
	return 0;
}

/* The next element of a comma-separated list at *s (before end), OWS trimmed, into
 * [*a, *b) (possibly empty). false when the list is exhausted. */
static bool list_next(const char **s, const char *end, const char **a, const char **b)
{
	const char *comma;

	if (*s >= end)
		return false;
	comma = memchr(*s, ',', (size_t)(end - *s));
	*a = *s;
	*b = comma ? comma : end;
	while (*a < *b && http_is_ws((unsigned char)**a))
		(*a)++;
	while (*b > *a && http_is_ws((unsigned char)(*b)[-1]))
		(*b)--;
	*s = comma ? comma + 1 : end;
	return true;
}

/* Connection: a comma-separated token list; close wins over keep-alive. */
static void parse_connection(const struct http_header *h, bool *close, bool *keep)
{
	const char *s = h->value, *end = h->value + h->value_len, *a, *b;

	while (list_next(&s, end, &a, &b)) {
		if (eq_ci(a, (size_t)(b - a), "close"))
			*close = true;
		else if (eq_ci(a, (size_t)(b - a), "keep-alive"))
			*keep = true;
	}
}

/* One Transfer-Encoding field line, a list of codings, folded into the state of the whole
 * list: *chunked once chunked was seen (it must be last, and once), *other when a coding we
 * do not implement came before it. */
static int parse_te(const struct http_header *h, bool *chunked, bool *other)
{
	const char *s = h->value, *end = h->value + h->value_len, *a, *b, *name_end;

	while (list_next(&s, end, &a, &b)) {
		if (a == b)
			continue; /* empty list element: ignored (RFC 9110 §5.6.1) */
		if (*chunked)
			return -HTTP_ERR_TE_NOT_CHUNKED; /* anything after chunked */
		for (name_end = a; name_end < b && http_is_tchar((unsigned char)*name_end);
		     name_end++)
			;
		if (name_end == a ||
		    (name_end < b && *name_end != ';' && !http_is_ws((unsigned char)*name_end)))
			return -HTTP_ERR_TE_NOT_CHUNKED; /* not a coding: framing unknown */
		if (!eq_ci(a, (size_t)(name_end - a), "chunked"))
			*other = true;
		else if (name_end != b)
			return -HTTP_ERR_TE_NOT_CHUNKED; /* chunked takes no parameters */
		else
			*chunked = true;
	}
	return 0;
}

/* Framing rules over the whole header set. */
static int check_headers(struct http_request *req)
{
	bool close = false, keep = false, te = false, te_chunked = false, te_other = false;
	const struct http_header *host = NULL;
	int hosts = 0, err;

	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (eq_ci(h->name, h->name_len, "content-length")) {
			if ((err = parse_content_length(h, req)))
				return err;
		} else if (eq_ci(h->name, h->name_len, "transfer-encoding")) {
			if ((err = parse_te(h, &te_chunked, &te_other)))
				return err;
			te = true;
		} else if (eq_ci(h->name, h->name_len, "host")) {
			hosts++;
			host = h;
		} else if (eq_ci(h->name, h->name_len, "connection")) {
			parse_connection(h, &close, &keep);
		} else if (eq_ci(h->name, h->name_len, "expect")) {
			if (!eq_ci(h->value, h->value_len, "100-continue"))
				return -HTTP_ERR_EXPECT;
			req->expect_continue = req->minor >= 1;
		}
	}
	if (te && req->has_content_length)
		return -HTTP_ERR_CL_AND_TE;
	if (te && req->minor == 0)
		return -HTTP_ERR_TE_HTTP10; /* framing faulty by definition (RFC 9112 §6.1) */
	if (te && !te_chunked)
		return -HTTP_ERR_TE_NOT_CHUNKED; /* §6.3: length unknown, 400 and close */
	if (te_other)
		return -HTTP_ERR_TE_UNKNOWN; /* §6.1: a coding we do not understand, 501 */
	req->chunked = te_chunked;
	if (hosts > 1)
		return -HTTP_ERR_DUP_HOST;
	if (!hosts && req->minor >= 1)
		return -HTTP_ERR_NO_HOST;
	if (host && !valid_host(host->value, host->value_len))
		return -HTTP_ERR_BAD_HOST;
	req->keep_alive = !close && (req->minor >= 1 || keep);
	return 0;
}

/* Second phase: the head buf[0..len) is complete and byte-wise clean. */
static long parse_head(const struct http_parser *p, const char *buf, size_t len,
		       struct http_request *req)
{
	const char *s = buf + p->skipped, *end = buf + len - 2; /* drop the final CRLF */
	const char *eol = memchr(s, '\r', (size_t)(end - s));
	int err;

	/* everything but the (large) header array, which is filled up to nheaders */
	memset(req, 0, offsetof(struct http_request, headers));
	req->content_length = 0;
	req->has_content_length = req->keep_alive = req->expect_continue = req->chunked = false;
	if ((err = parse_request_line(s, (size_t)(eol - s), req)))
		return err;
	for (s = eol + 2; s < end; s = eol + 2) {
		eol = memchr(s, '\r', (size_t)(end - s));
		if (req->nheaders == p->lim.max_headers)
			return -HTTP_ERR_TOO_MANY_HEADERS;
		if ((err = parse_header_line(s, (size_t)(eol - s), &req->headers[req->nheaders])))
			return err;
		req->nheaders++;
	}
	if ((err = check_headers(req)))
		return err;
	req->skipped = p->skipped;
	req->head_len = len;
	return (long)len;
}

/* A line ended at buf[p->pos] (the LF). Returns 1 when the head is complete, 0 to go on. */
static int end_of_line(struct http_parser *p, const char *buf, struct http_request *req)
{
	size_t n = p->pos - 1 - p->line_start; /* CR excluded */
	int err;

	if (!n && !p->line_done) {
		p->skipped = p->pos + 1; /* empty line before the request line: ignore */
	} else if (!n) {
		return 1;
	} else if (!p->line_done) {
		if ((err = parse_request_line(buf + p->line_start, n, req)))
			return err;
		p->line_done = true;
	}
	p->line_start = p->pos + 1;
	return 0;
}

long http_parse(struct http_parser *p, const char *buf, size_t len, struct http_request *req)
{
	for (; p->pos < len; p->pos++) {
		unsigned char c = (unsigned char)buf[p->pos];
		int r;

		if (p->pos >= p->lim.max_head)
			return -HTTP_ERR_HEAD_TOO_LARGE;
		if (p->pos - p->line_start >= p->lim.max_line && c != '\r' && c != '\n')
			return -HTTP_ERR_LINE_TOO_LONG;
		if (c == '\r') {
			if (p->pos + 1 == len)
				return 0; /* decide when the next byte is here */
			if (buf[p->pos + 1] != '\n')
				return -HTTP_ERR_BARE_CR;
		} else if (c == '\n') {
			if (!p->pos || buf[p->pos - 1] != '\r')
				return -HTTP_ERR_BARE_LF;
			r = end_of_line(p, buf, req);
			if (r < 0)
				return r;
			if (r > 0)
				return parse_head(p, buf, ++p->pos, req);
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return -HTTP_ERR_BAD_CHAR;
		} else if ((c == ' ' || c == '\t') && p->pos == p->line_start && p->line_done) {
			return -HTTP_ERR_OBS_FOLD; /* at once: a folded line can only be refused */
		}
	}
	return 0;
}

const struct http_header *http_header_find(const struct http_request *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (eq_ci(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	return NULL;
}
