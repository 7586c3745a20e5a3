// SPDX-License-Identifier: MIT
/* test_chunked.c -- the chunked body decoder: valid bodies at every split, extensions,
 * trailers, and every refusal (overflow, bare CR/LF, bad extensions and trailers, limits) */
#include <stdlib.h>

#include "ingress/chunked.h"
#include "test_progs.h"

static char out[1 << 16];
static size_t out_len;

/* Decode s[0..n) fed in pieces of at most step bytes. Returns bytes consumed when the body
 * ended, 0 when it has not ended by the end of s, or -enum chunked_error. */
static long decode_step(const char *s, size_t n, size_t step, const struct chunked_limits *lim)
{
	struct chunked ck;
	size_t off = 0;

	chunked_init(&ck, lim);
	out_len = 0;
	while (off < n && !chunked_done(&ck)) {
		size_t avail = n - off < step ? n - off : step;
		const char *d;
		size_t dn;
		long r = chunked_parse(&ck, s + off, avail, &d, &dn);

		if (r < 0)
			return r;
		if (r == 0) /* no progress with bytes available: a bug */
			return -1000;
		if (dn && out_len + dn <= sizeof(out)) {
			memcpy(out + out_len, d, dn);
			out_len += dn;
		}
		off += (size_t)r;
	}
	return chunked_done(&ck) ? (long)off : 0;
}

static long decode(const char *s)
{
	struct chunked_limits lim;

	chunked_limits_default(&lim);
	return decode_step(s, strlen(s), strlen(s) + 1, &lim);
}

/* s must decode to want, whole and byte by byte, consuming body_len bytes (0: all of s). */
static void expect_body(const char *s, size_t body_len, const char *want, const char *name)
{
	if (!body_len)
		body_len = strlen(s);
	struct chunked_limits lim;

	chunked_limits_default(&lim);
	ASSERT_EQ(decode(s), (long)body_len, name);
	ASSERT_EQ(out_len, strlen(want), name);
	ASSERT_OK(memcmp(out, want, out_len), name);
	ASSERT_EQ(decode_step(s, strlen(s), 1, &lim), (long)body_len, name);
	ASSERT_EQ(out_len, strlen(want), name);
	ASSERT_OK(memcmp(out, want, out_len), name);
}

static void expect_err(const char *s, enum chunked_error e, int status, const char *name)
{
	struct chunked_limits lim;

	chunked_limits_default(&lim);
	ASSERT_EQ(decode(s), -(long)e, name);
	ASSERT_EQ(decode_step(s, strlen(s), 1, &lim), -(long)e, name);
	ASSERT_EQ(chunked_error_status(e), status, name);
}

static void subtest_valid(void)
{
	const char *two = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

	expect_body(two, 0, "hello world", "two chunks");
	expect_body("0\r\n\r\n", 0, "", "empty body");
	expect_body("A\r\n0123456789\r\n000\r\n\r\n", 0, "0123456789", "upper hex, 000 last");
	expect_body("a\r\n0123456789\r\n0\r\n\r\n", 0, "0123456789", "lower hex");
	/* bytes after the body belong to the next request: not consumed */
	expect_body("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 11, "x", "stops at the end");
	/* data may hold CR, LF and any byte: only the size counts */
	expect_body("4\r\n\r\n\n\x01\r\n0\r\n\r\n", 0, "\r\n\n\x01", "binary data");
}

static void subtest_extensions(void)
{
	expect_body("5;ilovew3;somuchlove=aretheseparametersfor;another=withvalue\r\nhello\r\n"
		    "6;blahblah;blah\r\n world\r\n0\r\n\r\n",
		    0, "hello world", "token extensions ignored");
	expect_body("5;a=\"I \\\"love\\\"; \\\\ext\\\\\";b=\"x\";c;d=e\r\nhello\r\n0\r\n\r\n", 0,
		    "hello", "quoted values with escapes");
	expect_body("5 ; a = b\r\nhello\r\n0;last\r\n\r\n", 0, "hello", "BWS around ; and =");
	expect_err("2 erfrferferf\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "no semicolon");
	expect_err("2;\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "no name after ;");
	expect_err("2 \r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "space before CRLF");
	expect_err("2;a=\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "no value after =");
	expect_err("2;a=\"b\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "unbalanced quote");
	expect_err("2;a=\"b\"c\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "bytes after quote");
	expect_err("2;a b\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "two names");
	expect_err("2;a=\"\x01\"\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_EXT, 400, "control in quotes");
	expect_err("2;a\nb\r\naa\r\n0\r\n\r\n", CHUNKED_ERR_BARE_LF, 400, "LF in extension");
}

static void subtest_trailers(void)
{
	expect_body("1\r\nx\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n", 0, "x",
		    "trailers dropped");
	expect_body("0\r\nX-Empty:\r\n\r\n", 0, "", "empty trailer value");
	expect_err("0\r\n folded\r\n\r\n", CHUNKED_ERR_TRAILER, 400, "obs-fold trailer");
	expect_err("0\r\nNo colon\r\n\r\n", CHUNKED_ERR_TRAILER, 400, "trailer without colon");
	expect_err("0\r\nX : y\r\n\r\n", CHUNKED_ERR_TRAILER, 400, "space before colon");
	expect_err("0\r\nX: a\x7f\r\n\r\n", CHUNKED_ERR_TRAILER, 400, "DEL in trailer");
	expect_err("0\r\nX: y\n\r\n", CHUNKED_ERR_BARE_LF, 400, "bare LF in trailer");
	expect_err("0\r\nX: y\r\r\n", CHUNKED_ERR_BARE_CR, 400, "bare CR in trailer");
	expect_err("0\r\n\n", CHUNKED_ERR_BARE_LF, 400, "bare LF at the end");
	expect_err("0\r\n\rx", CHUNKED_ERR_BARE_CR, 400, "bare CR at the end");
}

static void subtest_framing(void)
{
	expect_err("\r\n", CHUNKED_ERR_SIZE, 400, "empty size");
	expect_err("x\r\n", CHUNKED_ERR_SIZE, 400, "not hex");
	expect_err("-1\r\n", CHUNKED_ERR_SIZE, 400, "sign");
	expect_err("0x5\r\nhello\r\n", CHUNKED_ERR_SIZE, 400, "0x prefix");
	expect_err("5\nhello\r\n0\r\n\r\n", CHUNKED_ERR_BARE_LF, 400, "bare LF after size");
	expect_err("5\rhello\r\n0\r\n\r\n", CHUNKED_ERR_BARE_CR, 400, "bare CR after size");
	expect_err("5\r\nhello\n0\r\n\r\n", CHUNKED_ERR_BARE_LF, 400, "bare LF after data");
	expect_err("5\r\nhello\rx", CHUNKED_ERR_BARE_CR, 400, "bare CR after data");
	expect_err("5\r\nhelloXX\r\n", CHUNKED_ERR_DATA_END, 400, "data longer than size");
	expect_err("5\r\nhel\r\n0\r\n\r\n", CHUNKED_ERR_DATA_END, 400, "data shorter");
	/* 16 hex digits fit (and are over the body budget), 17 do not */
	expect_err("FFFFFFFFFFFFFFFF\r\n", CHUNKED_ERR_BODY_TOO_LARGE, 413, "16 digits: 413");
	expect_err("10000000000000000\r\n", CHUNKED_ERR_SIZE_OVERFLOW, 400, "17 digits");
	expect_err("00000000000000001\r\n", CHUNKED_ERR_SIZE_OVERFLOW, 400, "17 with zeros");
	ASSERT_EQ(decode("5\r\nhel"), 0, "incomplete");
}

static void subtest_limits(void)
{
	struct chunked_limits lim = {.max_body = 10, .max_ext = 8, .max_trailer = 12};
	char buf[256];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n");
	ASSERT_EQ(decode_step(buf, n, n, &lim), (long)n, "body at the limit");
	n = (size_t)snprintf(buf, sizeof(buf), "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n");
	ASSERT_EQ(decode_step(buf, n, n, &lim), -CHUNKED_ERR_BODY_TOO_LARGE, "one over: 413");
	/* refused at the size line, before any of the chunk's data arrives */
	ASSERT_EQ(decode_step(buf, 15, 1, &lim), -CHUNKED_ERR_BODY_TOO_LARGE, "413 early");
	/* extensions: 8 bytes over the whole body, separators included */
	n = (size_t)snprintf(buf, sizeof(buf), "1;abc=de\r\nx\r\n0\r\n\r\n");
	ASSERT_EQ(decode_step(buf, n, 1, &lim), (long)n, "7 extension bytes + CR");
	n = (size_t)snprintf(buf, sizeof(buf), "1;abc\r\nx\r\n1;abc\r\ny\r\n0\r\n\r\n");
	ASSERT_EQ(decode_step(buf, n, 1, &lim), -CHUNKED_ERR_EXT_TOO_LONG, "budget per body");
	/* trailers: 12 bytes, final CRLF included */
	n = (size_t)snprintf(buf, sizeof(buf), "0\r\nA: 12345\r\n\r\n");
	ASSERT_EQ(decode_step(buf, n, 1, &lim), (long)n, "trailer at the limit");
	n = (size_t)snprintf(buf, sizeof(buf), "0\r\nA: 123456\r\n\r\n");
	ASSERT_EQ(decode_step(buf, n, 1, &lim), -CHUNKED_ERR_TRAILER_TOO_LARGE, "trailer over");
	ASSERT_EQ(chunked_error_status(CHUNKED_ERR_TRAILER_TOO_LARGE), 431, "431");
}

/* Every split point of a body with extensions and trailers gives the same data. */
static void subtest_split_every_byte(void)
{
	const char *s = "3;x=\"y;z\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0;end\r\nT: v\r\n\r\n";
	size_t n = strlen(s);
	struct chunked_limits lim;

	chunked_limits_default(&lim);
	for (size_t step = 1; step <= n; step++) {
		if (!ASSERT_EQ(decode_step(s, n, step, &lim), (long)n, "consumed"))
			return;
		if (!ASSERT_EQ(out_len, 19, "data length"))
			return;
		ASSERT_OK(memcmp(out, "abc0123456789abcdef", 19), "data");
	}
}

void test_chunked(void)
{
	if (test__start_subtest("valid"))
		subtest_valid();
	if (test__start_subtest("extensions"))
		subtest_extensions();
	if (test__start_subtest("trailers"))
		subtest_trailers();
	if (test__start_subtest("framing"))
		subtest_framing();
	if (test__start_subtest("limits"))
		subtest_limits();
	if (test__start_subtest("split_every_byte"))
		subtest_split_every_byte();
}
