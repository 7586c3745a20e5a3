/* SPDX-License-Identifier: MIT */
/* tlscerts.h -- test certificates made at test time with the openssl command line
 *
 * Every certificate is EC P-256 (fast to make), in PEM files under the directory given
 * (the test's scratch directory). Nothing is committed: an expired certificate, a key that
 * belongs to another certificate, an SNI pair, a CA with client certificates are made fresh
 * by each run. The openssl output goes to DIR/openssl.log and is printed on failure.
 */
#ifndef SLUICE_TLSCERTS_H
#define SLUICE_TLSCERTS_H

#include <openssl/ssl.h>

struct tlscert {
	char crt[512]; /* PEM certificate (leaf first) */
	char key[512]; /* PEM private key, unencrypted */
};

/* Self-signed certificate for DNS name dns (SAN and CN) valid for days from now; days < 0
 * makes one that expired |days| days ago. DIR/NAME.crt and DIR/NAME.key. 0 or -EIO. */
int tlscert_self(const char *dir, const char *name, const char *dns, int days, struct tlscert *out);
/* A CA certificate (CA:TRUE) named cn, valid 30 days. */
int tlscert_ca(const char *dir, const char *name, const char *cn, struct tlscert *out);
/* A certificate for cn (also its DNS SAN) issued by ca, valid for days. */
int tlscert_issue(const char *dir, const char *name, const char *cn, const struct tlscert *ca,
		  int days, struct tlscert *out);
/* The SHA-256 fingerprint of a certificate file as `openssl x509 -fingerprint` prints it,
 * reduced to 64 lower-case hex digits, into hex[65]. 0 or -EIO. */
int tlscert_sha256_hex(const char *crt, char hex[65]);

/* A client SSL of ctx speaking through two memory BIOs (*rb what the server sent, *wb what
 * the client writes; a read of an empty *rb says "retry"), in connect state: the harness
 * moves the bytes. NULL when OpenSSL fails. SSL_free frees the BIOs. */
SSL *tlscert_mem_client(SSL_CTX *ctx, BIO **rb, BIO **wb);

#endif /* SLUICE_TLSCERTS_H */
