// SPDX-License-Identifier: MIT
/* fuzz_envelope.c -- libFuzzer target: the /v1/events envelope validator under ASan+UBSan
 *
 * Beyond "no crash": an accepted envelope has a non-empty type and key within their limits
 * and a valid priority; a refusal always names a code and a detail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope ev;
	const char *code = NULL;
	char detail[256] = "";

	if (envelope_parse((const char *)data, size, &ev, &code, detail, sizeof(detail)) == 0) {
		size_t tl = strlen(ev.type), kl = strlen(ev.idempotency_key);

		if (!tl || tl > ENVELOPE_TYPE_MAX || !kl || kl > ENVELOPE_KEY_MAX ||
		    ev.priority < -1 || ev.priority > 2)
			abort();
	} else if (!code || !detail[0]) {
		abort();
	}
	return 0;
}
