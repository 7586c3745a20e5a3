// SPDX-License-Identifier: MIT
/* test_http_parser_random.c -- a few hundred thousand random and mutated heads, deterministic
 *
 * The in-tree twin of tests/fuzz/fuzz_http_parser.c: a fixed-seed generator mutates valid
 * requests (flip, insert CR/LF/SP/colon/NUL, delete, duplicate, splice) and checks on each
 * input that (1) whole-buffer and byte-by-byte parsing agree exactly, (2) every slice of a
 * parsed head lies inside the input and inside the head, (3) errors map to a 4xx/5xx status.
 */
#include <stdint.h>
#include <stdlib.h>

#include "ingress/http_parser.h"
#include "lib/array_size.h"
#include "test_progs.h"

#define ROUNDS 300000

static const char *const seeds[] = {
    "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nAuthorization: Bearer k\r\n"
    "\r\n0123456789",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nX-Api-Key: z\r\n\r\n",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t next(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static size_t mutate(char *buf, size_t n, size_t cap)
{
	static const char alphabet[] = "\r\n :\t\0a/H1,-";
	int ops = 1 + next() % 4;

	for (int i = 0; i < ops; i++) {
		size_t at = n ? next() % n : 0;

		switch (next() % 6) {
		case 0: /* flip a bit */
			if (n)
				buf[at] ^= (char)(1 << (next() % 8));
			break;
		case 1: /* insert an interesting byte */
			if (n < cap) {
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = alphabet[next() % (sizeof(alphabet) - 1)];
				n++;
			}
			break;
		case 2: /* delete */
			if (n) {
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
			}
			break;
		case 3: { /* duplicate a chunk */
			size_t len = next() % 24;

			if (at + len <= n && n + len <= cap) {
				memmove(buf + at + len, buf + at, n - at);
				n += len;
			}
			break;
		}
		case 4: /* truncate */
			n = at;
			break;
		default: { /* splice in the tail of another seed */
			const char *o = seeds[next() % (ARRAY_SIZE(seeds))];
			size_t ol = strlen(o), from = next() % (ol + 1);

			if (at + ol - from <= cap) {
				memcpy(buf + at, o + from, ol - from);
				n = at + ol - from;
			}
			break;
		}
		}
	}
	return n;
}

static bool check_one(const char *buf, size_t n, const struct http_limits *lim)
{
	static struct http_request a, b;
	struct http_parser p;
	long whole, step = 0;

	http_parser_init(&p, lim);
	whole = http_parse(&p, buf, n, &a);
	http_parser_init(&p, lim);
	for (size_t i = 1; i <= n && !step; i++)
		step = http_parse(&p, buf, i, &b);
	if (!ASSERT_EQ(whole, step, "whole == byte by byte"))
		return false;
	if (whole < 0)
		return ASSERT_GE(http_error_status((enum http_error) - whole), 400, "status");
	if (whole == 0)
		return true;
	if (!ASSERT_LE((size_t)whole, n, "head within input"))
		return false;
	for (unsigned i = 0; i < a.nheaders; i++) {
		const struct http_header *h = &a.headers[i];

		if (!ASSERT_TRUE(h->name >= buf && h->value + h->value_len <= buf + whole, "slice"))
			return false;
	}
	return ASSERT_TRUE(a.target > buf && a.target + a.target_len < buf + whole, "target");
}

void test_http_parser_random(void)
{
	static char buf[1024];
	struct http_limits lim;
	int heads = 0, errs = 0;

	http_limits_default(&lim);
	lim.max_headers = 8;
	lim.max_line = 96;
	for (int r = 0; r < ROUNDS; r++) {
		const char *s = seeds[r % (ARRAY_SIZE(seeds))];
		size_t n = strlen(s);
		long res;

		memcpy(buf, s, n);
		n = mutate(buf, n, sizeof(buf));
		if (r % 7 == 0) /* random junk too */
			for (size_t i = 0; i < n; i++)
				buf[i] = (char)next();
		if (!check_one(buf, n, &lim))
			break;
		{
			struct http_parser p;
			static struct http_request q;

			http_parser_init(&p, &lim);
			res = http_parse(&p, buf, n, &q);
		}
		heads += res > 0;
		errs += res < 0;
	}
	/* the mutations must exercise both outcomes a lot, or the test proves little */
	ASSERT_GT(heads, ROUNDS / 20, "complete heads seen");
	ASSERT_GT(errs, ROUNDS / 5, "errors seen");
	printf("random heads: %d complete, %d errors of %d\n", heads, errs, ROUNDS);
}
