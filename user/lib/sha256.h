/* SPDX-License-Identifier: MIT */
/* sha256.h -- SHA-256 (FIPS 180-4), streaming and one-shot, plus hex helpers
 *
 * API keys are stored as SHA-256 digests (tenants file, sluicectl key hash); this is the one
 * implementation both the daemon and the CLI use. No allocation, no global state.
 */
#ifndef SLUICE_SHA256_H
#define SLUICE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN     32
#define SHA256_HEX_LEN 64

struct sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[64];
	size_t fill; /* bytes waiting in buf */
};

/* Start a new digest in *s (embedded, nothing to free). */
void sha256_init(struct sha256 *s);
/* Hash n more bytes of data. */
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Finish: write the 32-byte digest to out; *s must be re-initialised before reuse. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);
/* One-shot digest of data[0..n). */
void sha256(const void *data, size_t n, uint8_t out[SHA256_LEN]);

/* Lower-case hex of a digest into hex (65 bytes with the NUL). */
void sha256_hex(const uint8_t d[SHA256_LEN], char hex[SHA256_HEX_LEN + 1]);
/* Parse 64 hex digits (either case) into d; -EINVAL if hex is not exactly that. */
int sha256_from_hex(const char *hex, uint8_t d[SHA256_LEN]);

#endif /* SLUICE_SHA256_H */
