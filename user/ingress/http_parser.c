// SPDX-License-Identifier: MIT
/* parser.c -- pure incremental zero-copy HTTP/1.1 request-head parser
 *
 * Two phases. Scanning walks each new byte once: it enforces CRLF-only line ends, rejects
 * control characters, measures line and head length against the limits, and validates the
 * request line as soon as it ends (so HTTP/0.9 and the HTTP/2 preface get their answer
 * without waiting for an empty line that may never come). When the empty line arrives the
 * header lines, already known to be well formed byte-wise, are split into name/value slices
 * and the framing headers (Content-Length, Transfer-Encoding, Host, Connection, Expect) are
 * checked together, because smuggling shapes are combinations of headers.
 *
 * Invariant: buf[0..p->pos) has been scanned and holds no error; p->line_start <= p->pos.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "ingress/http_parser.h"

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
    [HTTP_ERR_BAD_TARGET] = {400, "bad_request", "request target must start with /"},
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
    [HTTP_ERR_HTTP09] = {400, "http09_not_supported", "HTTP/0.9 is not supported"},
    [HTTP_ERR_CHUNKED] = {411, "length_required",
			  "chunked bodies are not supported; send Content-Length"},
    [HTTP_ERR_TE_UNKNOWN] = {501, "not_implemented", "unsupported Transfer-Encoding"},
    [HTTP_ERR_METHOD] = {501, "not_implemented", "unknown method"},
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

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr(extra, c));
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

/* Validate and split the request line line[0..n) (CRLF excluded). */
static int parse_request_line(const char *line, size_t n, struct http_request *req)
{
	const char *sp1 = memchr(line, ' ', n), *sp2;
	int minor;

	if (!sp1 || sp1 == line)
		return -HTTP_ERR_BAD_REQUEST_LINE;
	for (const char *c = line; c < sp1; c++)
		if (!is_tchar((unsigned char)*c))
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
	req->target = sp1 + 1;
	req->target_len = (size_t)(sp2 - sp1 - 1);
	if (req->target[0] != '/' &&
	    !(req->method == HTTP_M_OPTIONS && req->target_len == 1 && req->target[0] == '*'))
		return -HTTP_ERR_BAD_TARGET;
	req->minor = minor;
	return 0;
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
		if (!is_tchar((unsigned char)*c))
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

/* Connection: a comma-separated token list; close wins over keep-alive. */
static void parse_connection(const struct http_header *h, bool *close, bool *keep)
{
	const char *s = h->value, *end = h->value + h->value_len;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s)), *e = comma ? comma : end;
		const char *a = s, *b = e;

		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (eq_ci(a, (size_t)(b - a), "close"))
			*close = true;
		else if (eq_ci(a, (size_t)(b - a), "keep-alive"))
			*keep = true;
		s = comma ? comma + 1 : end;
	}
}

/* Framing rules over the whole header set. */
static int check_headers(struct http_request *req)
{
	const struct http_header *te = NULL;
	bool close = false, keep = false;
	int hosts = 0, err;

	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (eq_ci(h->name, h->name_len, "content-length")) {
			if ((err = parse_content_length(h, req)))
				return err;
		} else if (eq_ci(h->name, h->name_len, "transfer-encoding")) {
			te = h;
		} else if (eq_ci(h->name, h->name_len, "host")) {
			hosts++;
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
	if (te)
		return eq_ci(te->value, te->value_len, "chunked") ? -HTTP_ERR_CHUNKED
								  : -HTTP_ERR_TE_UNKNOWN;
	if (hosts > 1)
		return -HTTP_ERR_DUP_HOST;
	if (!hosts && req->minor >= 1)
		return -HTTP_ERR_NO_HOST;
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
	req->has_content_length = req->keep_alive = req->expect_continue = false;
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
