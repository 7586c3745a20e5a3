// SPDX-License-Identifier: MIT
/* fuzz_http_parser.c -- libFuzzer target: the request-head parser under ASan+UBSan
 *
 * Checks, beyond "no crash": whole-buffer and byte-by-byte parsing agree exactly, and every
 * slice of a parsed head lies inside the head. Any disagreement aborts (a finding).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/http_parser.h"

static struct http_request a, b;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits lim;
	struct http_parser p;
	const char *buf = (const char *)data;
	long whole, step = 0;

	http_limits_default(&lim);
	lim.max_line = 256; /* small limits, so the fuzzer reaches them */
	lim.max_head = 1024;
	lim.max_headers = 8;
	http_parser_init(&p, &lim);
	whole = http_parse(&p, buf, size, &a);
	http_parser_init(&p, &lim);
	for (size_t i = 1; i <= size && !step; i++)
		step = http_parse(&p, buf, i, &b);
	if (whole != step)
		abort();
	if (whole < 0 && http_error_status((enum http_error) - whole) < 400)
		abort();
	if (whole > 0) {
		if ((size_t)whole > size || a.target < buf || a.target + a.target_len > buf + whole)
			abort();
		for (unsigned i = 0; i < a.nheaders; i++)
			if (a.headers[i].name < buf ||
			    a.headers[i].value + a.headers[i].value_len > buf + whole)
				abort();
	}
	return 0;
}
