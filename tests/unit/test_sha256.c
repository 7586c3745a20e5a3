// SPDX-License-Identifier: MIT
/* test_sha256.c -- SHA-256 against the FIPS 180-4 / NIST vectors, streaming split points */
#include <stdlib.h>

#include "lib/sha256.h"
#include "test_progs.h"

static void check(const void *data, size_t n, const char *want, const char *name)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];

	sha256(data, n, d);
	sha256_hex(d, hex);
	ASSERT_STREQ(hex, want, name);
}

void test_sha256(void)
{
	if (test__start_subtest("nist_vectors")) {
		check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		      "empty");
		check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		      "abc");
		check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		      "448 bits");
		check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
		      "nop"
		      "qklmnopqrlmnopqrsmnopqrstnopqrstu",
		      112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
		      "896 bits");
	}
	if (test__start_subtest("million_a")) {
		char *a = malloc(1000000);

		if (ASSERT_OK_PTR(a, "malloc")) {
			memset(a, 'a', 1000000);
			check(a, 1000000,
			      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
			      "1e6 a");
		}
		free(a);
	}
	if (test__start_subtest("streaming_splits")) {
		const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
		uint8_t one[SHA256_LEN], two[SHA256_LEN];
		size_t n = strlen(msg);

		sha256(msg, n, one);
		for (size_t cut = 0; cut <= n; cut++) {
			struct sha256 s;

			sha256_init(&s);
			sha256_update(&s, msg, cut);
			sha256_update(&s, msg + cut, n - cut);
			sha256_final(&s, two);
			if (!ASSERT_OK(memcmp(one, two, SHA256_LEN), "split digest"))
				break;
		}
	}
	if (test__start_subtest("hex_roundtrip")) {
		uint8_t d[SHA256_LEN], e[SHA256_LEN];
		char hex[SHA256_HEX_LEN + 1];

		sha256("key", 3, d);
		sha256_hex(d, hex);
		ASSERT_OK(sha256_from_hex(hex, e), "parse");
		ASSERT_OK(memcmp(d, e, SHA256_LEN), "same digest");
		ASSERT_EQ(sha256_from_hex("abc", e), -EINVAL, "short");
		hex[5] = 'g';
		ASSERT_EQ(sha256_from_hex(hex, e), -EINVAL, "non-hex");
	}
}
