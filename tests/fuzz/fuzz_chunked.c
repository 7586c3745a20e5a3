// SPDX-License-Identifier: MIT
/* fuzz_chunked.c -- libFuzzer target: the chunked body decoder under ASan+UBSan
 *
 * Checks, beyond "no crash": decoding the input whole and in pieces of every size the first
 * byte picks gives the same verdict, the same bytes consumed and the same data; every call
 * with bytes left makes progress; every data span lies inside the piece it came from; the
 * data never exceeds max_body; errors map to 4xx. Any disagreement aborts (a finding).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/chunked.h"

struct result {
	long verdict; /* bytes consumed when done, 0 when not done, -error */
	size_t data_len;
	char data[4096];
};

static struct result whole, pieces;

static void decode(const char *buf, size_t size, size_t step, const struct chunked_limits *lim,
		   struct result *res)
{
	struct chunked ck;
	size_t off = 0;

	chunked_init(&ck, lim);
	res->data_len = 0;
	res->verdict = 0;
	while (off < size && !chunked_done(&ck)) {
		size_t avail = size - off < step ? size - off : step;
		const char *d;
		size_t dn;
		long r = chunked_parse(&ck, buf + off, avail, &d, &dn);

		if (r < 0) {
			if (chunked_error_status((enum chunked_error) - r) < 400)
				abort();
			res->verdict = r;
			return;
		}
		if (r == 0 || (size_t)r > avail)
			abort();
		if (dn && (d < buf + off || d + dn > buf + off + (size_t)r))
			abort();
		if (res->data_len + dn > lim->max_body || res->data_len + dn > sizeof(res->data))
			abort();
		if (dn)
			memcpy(res->data + res->data_len, d, dn);
		res->data_len += dn;
		off += (size_t)r;
	}
	res->verdict = chunked_done(&ck) ? (long)off : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* small limits, so the fuzzer reaches them */
	struct chunked_limits lim = {.max_body = 1024, .max_ext = 64, .max_trailer = 128};
	size_t step;

	if (!size)
		return 0;
	step = data[0] % 16 + 1;
	decode((const char *)data + 1, size - 1, size, &lim, &whole);
	decode((const char *)data + 1, size - 1, step, &lim, &pieces);
	if (whole.verdict != pieces.verdict || whole.data_len != pieces.data_len ||
	    memcmp(whole.data, pieces.data, whole.data_len))
		abort();
	return 0;
}
