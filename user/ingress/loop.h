/* SPDX-License-Identifier: MIT */
/* loop.h -- one io_uring per ingress thread: accept, recv, send, timers, cross-thread wakeups
 *
 * Each ingress thread owns a loop: its own ring (SINGLE_ISSUER|DEFER_TASKRUN when the kernel
 * takes them, plain otherwise), its own SO_REUSEPORT listener with one multishot accept, a
 * provided-buffer ring that every connection's multishot recv draws from, sends with a linked
 * timeout, and a periodic tick that expires header/idle deadlines. Kernels older than 6.0
 * lack some of these (loop_features.h): the loop then uses the Linux 5.7 equivalents.
 * Other threads (the journal completing an append, the main thread asking for a drain) never
 * touch the ring: they post a message into the loop's inbox (inbox.h) and write its eventfd,
 * which the ring has a read armed on. Calls go loop -> conn -> api, never back.
 *
 * TLS is a layer inside the loop, between its buffers and the connection: received bytes of
 * a TLS connection go through tls_conn_feed() and the plaintext to conn_on_data(); what the
 * connection wrote is encrypted when its send starts (tls.h). The connection never knows.
 *
 * user_data encoding (the only place it is defined; see loop_ud_*):
 *
 *	bits 63..56  enum loop_op  what completed
 *	bits 55..32  generation    24 bits; a connection slot's reuse counter
 *	bits 31..0   index         connection slot (0 for loop-wide operations)
 *
 * An accept's index says which listener: 0 plain HTTP, 1 TLS. A completion whose generation
 * differs from the slot's current one belongs to a connection
 * that has since been closed and the slot reused: it is ignored (its buffer still returned).
 */
#ifndef SLUICE_LOOP_H
#define SLUICE_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ingress/loop_features.h"

enum loop_op {
	LOOP_OP_NONE = 0,
	LOOP_OP_ACCEPT = 1,	  /* multishot accept on the listener */
	LOOP_OP_RECV = 2,	  /* multishot recv of a connection */
	LOOP_OP_SEND = 3,	  /* send of a connection's output */
	LOOP_OP_SEND_TIMEOUT = 4, /* the timeout linked to a send */
	LOOP_OP_TICK = 5,	  /* periodic deadline scan */
	LOOP_OP_WAKE = 6,	  /* eventfd read: inbox has messages */
	LOOP_OP_CANCEL = 7,	  /* cancellation request (result ignored) */
	LOOP_OP_PROVIDE = 8,	  /* buffers handed back without a buffer ring */
	LOOP_OP_MAX = 9,
};

#define LOOP_UD_GEN_BITS 24
#define LOOP_UD_GEN_MASK ((1u << LOOP_UD_GEN_BITS) - 1)

static inline uint64_t loop_ud_encode(enum loop_op op, uint32_t idx, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & LOOP_UD_GEN_MASK) << 32 | idx;
}

static inline enum loop_op loop_ud_op(uint64_t ud)
{
	return (enum loop_op)(ud >> 56);
}

static inline uint32_t loop_ud_gen(uint64_t ud)
{
	return (uint32_t)(ud >> 32) & LOOP_UD_GEN_MASK;
}

static inline uint32_t loop_ud_idx(uint64_t ud)
{
	return (uint32_t)ud;
}

struct loop;
struct api;
struct srclimit;
struct tls_ctx;
struct src_rate;

struct loop_opts {
	const struct sockaddr *addr; /* listen address */
	socklen_t addrlen;
	unsigned entries;	     /* SQ entries (default 1024) */
	unsigned bufs;		     /* provided buffers, power of two (default 1024) */
	unsigned buf_size;	     /* bytes each (default 4096) */
	unsigned max_conns_per_loop; /* connection slots (default 65536) */
	int tick_ms;		     /* deadline scan period (default 100) */
	int send_timeout_ms;	     /* linked timeout of each send (default 10000) */
	struct srclimit *per_source; /* connections per source, shared by the loops; NULL: off */
	/* the admin listener: only /healthz, /readyz and /metrics; its own address (no
	 * SO_REUSEPORT: a second daemon on the same admin port fails to start instead of
	 * sharing it); its connections count against its slots, not --max-conns */
	bool admin;
	/* TLS: a second listener on the same ring (tls_addr NULL: none) */
	const struct sockaddr *tls_addr;
	socklen_t tls_addrlen;
	struct tls_ctx *tls;	   /* shared by the loops, outlives them */
	uint64_t tls_timeout_ns;   /* accept to finished handshake */
	struct src_rate *tls_rate; /* handshakes per source, or NULL (no limit) */
	unsigned tls_deny_secs;	   /* a source over tls_rate is denied this long */
	unsigned features_off;	   /* LOOP_FEAT_* not to use even where the kernel has them */
};

/* Create a loop bound to opts->addr (SO_REUSEPORT, so every thread can bind the same
 * address, except for the admin listener); the api is shared and outlives the loop. Returns
 * NULL + errno; a message naming the address and the cause is logged. */
struct loop *loop_new(const struct loop_opts *opts, struct api *api, int thread_no);
/* Free a loop that has returned from loop_run(); NULL is a no-op. */
void loop_free(struct loop *l);
/* Run until drained (loop_drain) and every connection is gone or the drain deadline
 * passes. Returns 0, or -errno if the ring failed. */
int loop_run(struct loop *l);
/* From any thread: stop accepting, finish in-flight requests, close idle connections and
 * return from loop_run() by deadline_ns (CLOCK_MONOTONIC). */
void loop_drain(struct loop *l, uint64_t deadline_ns);
/* Bound port of the listener (after loop_new; useful with port 0). */
int loop_port(const struct loop *l);
/* Bound port of the TLS listener, 0 without one. */
int loop_tls_port(const struct loop *l);

/* Open connections in this loop (gauge). */
unsigned loop_conns(const struct loop *l);
/* Whether the ring was set up with SINGLE_ISSUER|DEFER_TASKRUN (logged once). */
bool loop_defer_taskrun(const struct loop *l);

#endif /* SLUICE_LOOP_H */
