// SPDX-License-Identifier: MIT
/* test_http_parser.c -- every limit and smuggling shape, pipelining, byte-by-byte feeding */
#include <stdlib.h>

#include "ingress/http_parser.h"
#include "test_progs.h"

static struct http_request req;

static long parse_lim(const char *s, size_t n, const struct http_limits *lim)
{
	struct http_parser p;

	http_parser_init(&p, lim);
	return http_parse(&p, s, n, &req);
}

static long parse(const char *s)
{
	struct http_limits lim;

	http_limits_default(&lim);
	return parse_lim(s, strlen(s), &lim);
}

/* Feed s one byte more at a time, as a slow client would; must agree with parse(). */
static long parse_bytewise(const char *s, size_t n, const struct http_limits *lim)
{
	struct http_parser p;
	long r = 0;

	http_parser_init(&p, lim);
	for (size_t i = 1; i <= n && !r; i++)
		r = http_parse(&p, s, i, &req);
	return r;
}

static void expect_err(const char *s, enum http_error e, int status, const char *name)
{
	struct http_limits lim;

	http_limits_default(&lim);
	ASSERT_EQ(parse(s), -(long)e, name);
	ASSERT_EQ(parse_bytewise(s, strlen(s), &lim), -(long)e, name);
	ASSERT_EQ(http_error_status(e), status, name);
}

static void subtest_valid(void)
{
	const char *get = "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";
	const char *post = "POST /v1/events HTTP/1.1\r\nHost: a\r\nContent-Length:  12 \r\n"
			   "Authorization: Bearer k\r\n\r\n{\"type\":\"x\"}";
	const struct http_header *h;

	ASSERT_EQ(parse(get), (long)strlen(get), "get head");
	ASSERT_EQ(req.method, HTTP_M_GET, "method");
	ASSERT_EQ(req.target_len, 12, "target len");
	ASSERT_OK(memcmp(req.target, "/healthz?x=1", 12), "target");
	ASSERT_EQ(req.minor, 1, "minor");
	ASSERT_TRUE(req.keep_alive, "1.1 keep-alive");
	ASSERT_EQ(req.nheaders, 2, "headers");
	ASSERT_EQ(parse(post), (long)(strlen(post) - 12), "post head");
	ASSERT_TRUE(req.has_content_length, "has cl");
	ASSERT_EQ(req.content_length, 12, "cl");
	h = http_header_find(&req, "authorization");
	if (ASSERT_OK_PTR(h, "auth header"))
		ASSERT_EQ(h->value_len, 8, "value trimmed");
	ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n"), 18, "1.0 without host");
	ASSERT_FALSE(req.keep_alive, "1.0 closes");
	parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	ASSERT_TRUE(req.keep_alive, "1.0 keep-alive");
	parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n");
	ASSERT_FALSE(req.keep_alive, "connection close");
	parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
	ASSERT_TRUE(req.expect_continue, "expect");
	ASSERT_EQ(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 31, "leading CRLFs");
	ASSERT_EQ(req.skipped, 4, "skipped");
	ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\n"), 0, "incomplete");
	ASSERT_EQ(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 31, "asterisk form");
}

static void subtest_smuggling(void)
{
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
		   "\r\n\r\n",
		   HTTP_ERR_CL_AND_TE, 400, "CL+TE");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3"
		   "\r\n\r\n",
		   HTTP_ERR_CL_AND_TE, 400, "TE+CL");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
		   HTTP_ERR_DUP_CL, 400, "dup CL same");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\n",
		   HTTP_ERR_DUP_CL, 400, "dup CL differ");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", HTTP_ERR_BAD_CL,
		   400, "CL list");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", HTTP_ERR_BAD_CL, 400,
		   "CL sign");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
		   HTTP_ERR_BAD_CL, 400, "CL overflow");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", HTTP_ERR_BAD_CL, 400,
		   "CL empty");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", HTTP_ERR_OBS_FOLD, 400,
		   "obs-fold SP");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", HTTP_ERR_OBS_FOLD, 400,
		   "obs-fold HT");
	expect_err("GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP_ERR_BARE_LF, 400, "bare LF line");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP_ERR_BARE_LF, 400, "bare LF end");
	expect_err("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", HTTP_ERR_BARE_CR, 400, "bare CR");
	expect_err("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_ERR_BAD_HEADER, 400, "space colon");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", HTTP_ERR_BAD_HEADER, 400,
		   "no colon");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", HTTP_ERR_BAD_HEADER, 400,
		   "empty name");
	expect_err("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", HTTP_ERR_BAD_CHAR, 400, "ctl char");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", HTTP_ERR_BAD_CHAR, 400, "DEL");
	expect_err("GET / HTTP/1.1\r\n\r\n", HTTP_ERR_NO_HOST, 400, "no host");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_ERR_DUP_HOST, 400,
		   "dup host");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", HTTP_ERR_EXPECT, 417,
		   "expect other");
}

static void subtest_request_line(void)
{
	expect_err("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_ERR_HTTP2, 505, "h2 preface");
	expect_err("GET / HTTP/1.2\r\n", HTTP_ERR_VERSION, 505, "1.2");
	expect_err("GET / HTTP/3\r\n", HTTP_ERR_VERSION, 505, "3");
	expect_err("GET /\r\n", HTTP_ERR_HTTP09, 400, "0.9");
	expect_err("GET\r\n", HTTP_ERR_BAD_REQUEST_LINE, 400, "method only");
	expect_err("GET  / HTTP/1.1\r\n", HTTP_ERR_BAD_REQUEST_LINE, 400, "double space");
	expect_err("GET / HTTP/1.1 \r\n", HTTP_ERR_BAD_REQUEST_LINE, 400, "trailing space");
	expect_err("GET / FTP/1.1\r\n", HTTP_ERR_BAD_REQUEST_LINE, 400, "not http");
	expect_err("G(T / HTTP/1.1\r\n", HTTP_ERR_BAD_REQUEST_LINE, 400, "method char");
	expect_err("BREW / HTTP/1.1\r\n", HTTP_ERR_METHOD, 501, "unknown method");
	expect_err("get / HTTP/1.1\r\n", HTTP_ERR_METHOD, 501, "case-sensitive method");
	expect_err("GET ftp://x/ HTTP/1.1\r\n", HTTP_ERR_BAD_TARGET, 400,
		   "absolute form, not http");
	expect_err("GET x/ HTTP/1.1\r\n", HTTP_ERR_BAD_TARGET, 400, "relative target");
	expect_err("CONNECT a.example:443 HTTP/1.1\r\n", HTTP_ERR_CONNECT, 501, "CONNECT");
	expect_err("GET / HTTP/1.1\r\nHost: a\r\n folded", HTTP_ERR_OBS_FOLD, 400,
		   "obs-fold refused at its first byte");
	expect_err("GET * HTTP/1.1\r\n", HTTP_ERR_BAD_TARGET, 400, "asterisk non-OPTIONS");
}

static void subtest_transfer_encoding(void)
{
	const char *ok[] = {
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ASSERT_EQ(parse(ok[i]), (long)strlen(ok[i]), ok[i]);
		ASSERT_TRUE(req.chunked, ok[i]);
		ASSERT_FALSE(req.has_content_length, ok[i]);
	}
	parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n");
	ASSERT_FALSE(req.chunked, "not chunked after a chunked request");
	/* RFC 9112 §6.3: the final coding of a request must be chunked, else 400 and close */
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "gzip alone");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: pigeons\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "unknown alone");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "chunked not last");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		   "Transfer-Encoding: gzip\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "chunked not last over two lines");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "chunked twice");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedchunked\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "chunkedchunked");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "chunked with a parameter");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "empty");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
		   HTTP_ERR_TE_NOT_CHUNKED, 400, "quoted");
	/* §6.1: a coding we do not implement before chunked: 501 */
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		   HTTP_ERR_TE_UNKNOWN, 501, "gzip, chunked");
	expect_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
		   "Transfer-Encoding: chunked\r\n\r\n",
		   HTTP_ERR_TE_UNKNOWN, 501, "gzip then chunked over two lines");
	/* §6.1: HTTP/1.0 with Transfer-Encoding is faulty framing */
	expect_err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_TE_HTTP10, 400,
		   "1.0 chunked");
}

static void subtest_absolute_form(void)
{
	const char *s =
	    "POST http://example.com:8080/v1/events?x=1 HTTP/1.1\r\nHost: other\r\n\r\n";

	ASSERT_EQ(parse(s), (long)strlen(s), "absolute form");
	ASSERT_EQ(req.target_len, 14, "path and query");
	ASSERT_OK(memcmp(req.target, "/v1/events?x=1", 14), "path");
	if (ASSERT_OK_PTR(req.authority, "authority"))
		ASSERT_OK(memcmp(req.authority, "example.com:8080", req.authority_len),
			  "authority");
	ASSERT_EQ(parse("GET HTTPS://[::1]:9/healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
		  (long)strlen("GET HTTPS://[::1]:9/healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
		  "https v6");
	ASSERT_OK(memcmp(req.target, "/healthz", req.target_len), "v6 path");
	ASSERT_EQ(parse("OPTIONS http://a HTTP/1.1\r\nHost: a\r\n\r\n"),
		  (long)strlen("OPTIONS http://a HTTP/1.1\r\nHost: a\r\n\r\n"), "empty path");
	ASSERT_EQ(req.target_len, 0, "empty path");
	ASSERT_EQ(parse("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"),
		  (long)strlen("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), "origin form");
	ASSERT_TRUE(req.authority == NULL, "no authority in origin form");
	expect_err("GET http:/// HTTP/1.1\r\n", HTTP_ERR_BAD_HOST, 400, "empty authority");
	expect_err("GET http://u@a/ HTTP/1.1\r\n", HTTP_ERR_BAD_HOST, 400, "userinfo");
	expect_err("GET http://a:b/ HTTP/1.1\r\n", HTTP_ERR_BAD_HOST, 400, "port not digits");
	/* still HTTP/1.1: Host is required even with an authority in the target (§3.2) */
	expect_err("GET http://a/ HTTP/1.1\r\n\r\n", HTTP_ERR_NO_HOST, 400, "absolute, no Host");
}

static void subtest_host(void)
{
	const char *ok[] = {"a",	  "example.com:80",	   "127.0.0.1", "[::1]",
			    "[::1]:8080", "xn--bcher-kva.example", "a%20b",	"",
			    "host:"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char buf[128];

		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ok[i]);
		ASSERT_EQ(parse(buf), (long)strlen(buf), ok[i]);
	}
	expect_err("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP_ERR_BAD_HOST, 400, "space");
	expect_err("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HTTP_ERR_BAD_HOST, 400, "slash");
	expect_err("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", HTTP_ERR_BAD_HOST, 400, "userinfo");
	expect_err("GET / HTTP/1.1\r\nHost: a:80:90\r\n\r\n", HTTP_ERR_BAD_HOST, 400, "two ports");
	expect_err("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", HTTP_ERR_BAD_HOST, 400, "open [");
	expect_err("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", HTTP_ERR_BAD_HOST, 400, "non-ASCII");
	expect_err("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", HTTP_ERR_BAD_HOST, 400, "short percent");
	ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n"), 18, "1.0 needs no Host");
}

static void subtest_target_bytes(void)
{
	/* today's bug: GET /healthz?q=δ answered 200 */
	expect_err("GET /healthz?q=\xce\xb4 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_TARGET, 400,
		   "UTF-8 in the query");
	expect_err("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_TARGET, 400, "0x80");
	expect_err("GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_TARGET, 400, "0xff");
	expect_err("GET http://a/\xce\xb4 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_TARGET, 400,
		   "absolute form too");
	ASSERT_EQ(parse("GET /healthz?q=%CE%B4 HTTP/1.1\r\nHost: a\r\n\r\n"),
		  (long)strlen("GET /healthz?q=%CE%B4 HTTP/1.1\r\nHost: a\r\n\r\n"),
		  "percent-encoded is fine");
}

static void subtest_limits(void)
{
	struct http_limits lim = {.max_line = 32, .max_head = 128, .max_headers = 3};
	char buf[512];
	size_t n;

	/* a request line of exactly max_line passes, one more byte is 431 */
	n = (size_t)snprintf(buf, sizeof(buf), "GET /%s HTTP/1.0\r\n\r\n",
			     "aaaaaaaaaaaaaaaaaa"); /* 5 + 18 + 9 = 32 */
	ASSERT_EQ(parse_lim(buf, n, &lim), (long)n, "line at limit");
	n = (size_t)snprintf(buf, sizeof(buf), "GET /%s HTTP/1.0\r\n\r\n", "aaaaaaaaaaaaaaaaaaa");
	ASSERT_EQ(parse_lim(buf, n, &lim), -HTTP_ERR_LINE_TOO_LONG, "line over limit");
	ASSERT_EQ(parse_bytewise(buf, n, &lim), -HTTP_ERR_LINE_TOO_LONG, "line over bytewise");
	/* no CRLF at all: refused as soon as the line is too long, not at the end */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	ASSERT_EQ(parse_lim(buf, 40, &lim), -HTTP_ERR_LINE_TOO_LONG, "endless line");
	/* header line too long */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nX: %s\r\n\r\n",
			     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	ASSERT_EQ(parse_lim(buf, n, &lim), -HTTP_ERR_LINE_TOO_LONG, "header line");
	/* header count */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
	ASSERT_EQ(parse_lim(buf, n, &lim), (long)n, "3 headers");
	n = (size_t)snprintf(buf, sizeof(buf),
			     "GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
	ASSERT_EQ(parse_lim(buf, n, &lim), -HTTP_ERR_TOO_MANY_HEADERS, "4 headers");
	ASSERT_EQ(http_error_status(HTTP_ERR_TOO_MANY_HEADERS), 431, "431");
	/* whole head */
	n = (size_t)snprintf(buf, sizeof(buf),
			     "GET / HTTP/1.0\r\nA: %s\r\nB: %s\r\nC: %s\r\nD: %s\r\n\r\n",
			     "xxxxxxxxxxxxxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxx",
			     "xxxxxxxxxxxxxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxx");
	ASSERT_EQ(parse_lim(buf, n, &lim), -HTTP_ERR_HEAD_TOO_LARGE, "head too large");
	ASSERT_EQ(http_error_status(HTTP_ERR_HEAD_TOO_LARGE), 431, "431 head");
	/* max_headers above the compiled cap is clamped, not an overflow */
	lim.max_headers = 100000;
	lim.max_head = 1 << 20;
	{
		char *big = malloc(200 * 8 + 64);
		size_t off = (size_t)sprintf(big, "GET / HTTP/1.0\r\n");

		for (int i = 0; i < 200; i++)
			off += (size_t)sprintf(big + off, "X%03d: \r\n", i);
		off += (size_t)sprintf(big + off, "\r\n");
		ASSERT_EQ(parse_lim(big, off, &lim), -HTTP_ERR_TOO_MANY_HEADERS, "cap");
		free(big);
	}
}

static void subtest_pipelining(void)
{
	const char *s = "POST /v1/events HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
			"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
			"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	size_t off = 0, n = strlen(s);
	const char *targets[] = {"/v1/events", "/healthz", "/metrics"};
	struct http_limits lim;
	int i;

	http_limits_default(&lim);
	for (i = 0; i < 3 && off < n; i++) {
		long r = parse_lim(s + off, n - off, &lim);

		if (!ASSERT_GT(r, 0, "pipelined head"))
			return;
		ASSERT_EQ(req.target_len, strlen(targets[i]), "target");
		ASSERT_OK(memcmp(req.target, targets[i], req.target_len), "target bytes");
		off += (size_t)r + req.content_length;
	}
	ASSERT_EQ(i, 3, "three requests");
	ASSERT_EQ(off, n, "all consumed");
	ASSERT_FALSE(req.keep_alive, "last closes");
}

/* Every split point: feeding the first k bytes, then everything, gives the same head. */
static void subtest_split_every_byte(void)
{
	const char *s = "\r\nPOST /v1/events HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\n"
			"Expect: 100-continue\r\nX-Api-Key: abc\r\n\r\nhello";
	size_t n = strlen(s), head = n - 5;
	struct http_limits lim;

	http_limits_default(&lim);
	for (size_t k = 0; k <= n; k++) {
		struct http_parser p;
		long r;

		http_parser_init(&p, &lim);
		r = http_parse(&p, s, k, &req);
		if (k < head && !ASSERT_EQ(r, 0, "prefix incomplete"))
			return;
		if (k < head)
			r = http_parse(&p, s, n, &req);
		if (!ASSERT_EQ(r, (long)head, "complete after split"))
			return;
		ASSERT_EQ(req.content_length, 5, "cl");
		ASSERT_TRUE(req.expect_continue, "expect");
	}
	ASSERT_EQ(parse_bytewise(s, n, &lim), (long)head, "byte by byte");
}

void test_http_parser(void)
{
	if (test__start_subtest("valid"))
		subtest_valid();
	if (test__start_subtest("smuggling"))
		subtest_smuggling();
	if (test__start_subtest("request_line"))
		subtest_request_line();
	if (test__start_subtest("transfer_encoding"))
		subtest_transfer_encoding();
	if (test__start_subtest("absolute_form"))
		subtest_absolute_form();
	if (test__start_subtest("host"))
		subtest_host();
	if (test__start_subtest("target_bytes"))
		subtest_target_bytes();
	if (test__start_subtest("limits"))
		subtest_limits();
	if (test__start_subtest("pipelining"))
		subtest_pipelining();
	if (test__start_subtest("split_every_byte"))
		subtest_split_every_byte();
}
