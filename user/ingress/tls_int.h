/* SPDX-License-Identifier: MIT */
/* tls_int.h -- what tls_ctx.c (configuration, certificates, tickets) shares with tls.c
 *
 * A generation is one load of the configuration: its SSL_CTXs (the default one, one per SNI
 * certificate), the certificate facts, the handshake timeout and cap. The context points at
 * the current generation under its lock; each connection holds a reference to the
 * generation it started with (the SNI callback's argument), so a reload frees an old
 * generation only when its last connection is gone. Counters and ticket keys belong to the
 * context and so survive reloads.
 */
#ifndef SLUICE_TLS_INT_H
#define SLUICE_TLS_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ingress/tls.h"

struct tls_gen {
	atomic_int refs;
	SSL_CTX *dflt;
	SSL_CTX *sni[TLS_SNI_MAX];
	unsigned n_sni;
	struct tls_cert_info certs[1 + TLS_SNI_MAX]; /* default first */
	unsigned n_certs;
	bool mtls;
	uint64_t timeout_ns;
	unsigned max_handshakes;
};

struct tls_tkey {
	uint8_t name[16];
	uint8_t aes[32];
	uint8_t hmac[32];
	uint64_t born_s; /* CLOCK_MONOTONIC seconds */
};

struct tls_counters {
	atomic_uint_least64_t handshakes[TLS_PROTO_MAX];
	atomic_uint_least64_t resumed;
	atomic_uint_least64_t failures[TLS_FAIL_MAX];
	atomic_uint_least64_t refused_busy;
	atomic_uint_least64_t handshaking;
	atomic_uint_least64_t buffered; /* connections whose record buffers may be allocated */
	atomic_uint_least64_t reloads, reload_failures;
	atomic_uint_least64_t ticket_rotations;
	atomic_uint_least64_t mtls_verified;
};

struct tls_ctx {
	pthread_mutex_t lock; /* cur, keys */
	struct tls_gen *cur;
	struct tls_tkey keys[TLS_TICKET_KEYS]; /* keys[0] is the current one */
	unsigned n_keys;
	unsigned rotate_s;
	struct tls_counters n;
};

#define TLS_COUNT(ctx, field) atomic_fetch_add_explicit(&(ctx)->n.field, 1, memory_order_relaxed)

/* The current generation with a reference the caller drops with tls_gen_put(). */
struct tls_gen *tls_ctx_acquire(struct tls_ctx *ctx);
void tls_gen_put(struct tls_gen *g);

#endif /* SLUICE_TLS_INT_H */
