/* SPDX-License-Identifier: MIT */
/* tls.h -- TLS termination: certificates chosen by SNI, reload, and a per-connection engine
 *
 * Two objects. A tls_ctx is the listener's configuration: the default certificate, more
 * certificates chosen by the name the client asks for (SNI), an optional client CA (mTLS),
 * the ticket keys that make session resumption stateless, and the counters. It is shared by
 * every ingress thread. tls_ctx_reload() builds a new generation off to the side and installs
 * it only when every file loaded and passed the checks (readable, key matches certificate,
 * not expired); a connection keeps the generation it started with until it is freed.
 *
 * A tls_conn is one connection's TLS state. It never does I/O: the owner feeds it the
 * ciphertext it received (tls_conn_feed), takes the plaintext out (tls_conn_plain), gives it
 * plaintext to send (tls_conn_write) and sends the ciphertext it produced (tls_conn_output).
 * OpenSSL sees a BIO whose reads come from the buffer being fed and whose writes append to
 * the connection's output, so the caller keeps owning its receive buffers and no bytes wait
 * in a BIO between calls. Protocols TLS 1.2 and 1.3 only, forward-secret ciphers only, ALPN
 * http/1.1 only.
 *
 * Handshake state is explicit (tls_conn_state): WANT_WRITE while handshake bytes wait to be
 * sent, WANT_READ while the peer must speak, DONE, or FAILED with a reason (tls_conn_reason)
 * that is also counted. A client that sends plain HTTP to the TLS port fails with
 * TLS_FAIL_PLAINTEXT_HTTP and its output holds a plain "HTTP/1.1 400" answer with
 * Connection: close, to be sent unencrypted before closing (nginx answers 497 there).
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_SNI_MAX	    16 /* certificates besides the default one */
#define TLS_SHA256_LEN	    32
#define TLS_TICKET_KEYS	    3 /* the current ticket key and the two before it */
#define TLS_CERT_NAME_MAX   128
#define TLS_CERT_FILE_MAX   256
#define TLS_FAIL_DETAIL_MAX 120

/* One certificate: PEM files, the certificate file holding the full chain (leaf first). */
struct tls_cert_files {
	const char *cert;
	const char *key;
};

struct tls_opts {
	struct tls_cert_files dflt;	  /* served when SNI names none of the others (required) */
	const struct tls_cert_files *sni; /* more, each served for the names it carries */
	unsigned n_sni;			  /* at most TLS_SNI_MAX */
	const char *client_ca;		  /* PEM CA bundle: ask for client certificates, or NULL */
	unsigned handshake_timeout_ms;	  /* from tls_conn_new to DONE (default 10000) */
	unsigned max_handshakes;	  /* concurrent handshakes over all threads, 0 = no cap */
	unsigned ticket_rotate_s;	  /* a new ticket key this often (default 3600) */
};

enum tls_proto { TLS_PROTO_12, TLS_PROTO_13, TLS_PROTO_MAX };

/* Why a handshake failed (metric label values: tls_fail_name()). */
enum tls_fail {
	TLS_FAIL_NONE,
	TLS_FAIL_PLAINTEXT_HTTP, /* the first bytes were an HTTP request line */
	TLS_FAIL_NOT_TLS,	 /* the first byte is not a TLS handshake record */
	TLS_FAIL_VERSION,	 /* the client offered nothing from TLS 1.2 up */
	TLS_FAIL_CIPHER,	 /* no shared cipher suite or group */
	TLS_FAIL_ALPN,		 /* ALPN offered without http/1.1 */
	TLS_FAIL_CLIENT_CERT,	 /* a client certificate the CA does not vouch for */
	TLS_FAIL_PEER_ALERT,	 /* the client aborted with an alert (e.g. it rejects our cert) */
	TLS_FAIL_EOF,		 /* the client closed during the handshake */
	TLS_FAIL_TIMEOUT,	 /* no DONE within handshake_timeout_ms */
	TLS_FAIL_PROTOCOL,	 /* any other malformed or unexpected handshake */
	TLS_FAIL_MAX,
};

enum tls_hs {
	TLS_HS_WANT_READ,  /* waiting for the peer */
	TLS_HS_WANT_WRITE, /* handshake bytes wait in the output: send them */
	TLS_HS_DONE,	   /* established: plaintext flows */
	TLS_HS_FAILED,	   /* give up: send what the output holds (an alert or the 400), close */
};

/* A snapshot of the counters (tls_ctx_stats). */
struct tls_stats {
	uint64_t handshakes[TLS_PROTO_MAX]; /* completed, by protocol */
	uint64_t resumed;		    /* of those, resumed from a ticket */
	uint64_t failures[TLS_FAIL_MAX];
	uint64_t refused_busy;	  /* tls_conn_new refused by max_handshakes */
	uint64_t handshaking;	  /* in progress now (gauge) */
	uint64_t buffered;	  /* connections holding OpenSSL record buffers (gauge) */
	uint64_t reloads;	  /* generations installed by tls_ctx_reload */
	uint64_t reload_failures; /* reloads refused (the old generation stayed) */
	uint64_t ticket_rotations;
	uint64_t mtls_verified; /* handshakes with a verified client certificate */
};

/* One loaded certificate, for metrics and logs. */
struct tls_cert_info {
	char name[TLS_CERT_NAME_MAX]; /* first DNS name, else the subject CN */
	char file[TLS_CERT_FILE_MAX];
	int64_t not_after; /* seconds since the epoch: the earliest expiry in the chain */
	bool sni;	   /* false for the default certificate */
};

struct tls_ctx;
struct tls_conn;

/* Load opts into a new context. NULL + errno (EINVAL for a bad file, ENOENT when missing)
 * with err filled as "<file>: what is wrong (the fix)"; nothing is kept on failure. The
 * files are read now and on reload only; opts need not outlive the call. */
struct tls_ctx *tls_ctx_new(const struct tls_opts *opts, char *err, size_t errlen);
/* Free ctx; every tls_conn made from it must be freed first. NULL is a no-op. */
void tls_ctx_free(struct tls_ctx *ctx);
/* Load opts again (certificates, SNI set, client CA; the timeout, cap and rotation period
 * are taken too) and install them for new connections; established ones keep theirs.
 * Ticket keys and counters carry over. Returns 0, or -errno with err filled and the
 * running generation untouched. Safe from any thread. */
int tls_ctx_reload(struct tls_ctx *ctx, const struct tls_opts *opts, char *err, size_t errlen);
/* A stamp of the files opts names (device, inode, size and modification time of each, the
 * error for one that cannot be read): it changes when any file is replaced, also through a
 * symlink swapped to another target (how kubelet updates a Secret volume). */
uint64_t tls_files_stamp(const struct tls_opts *opts);
/* Copy the counters. */
void tls_ctx_stats(struct tls_ctx *ctx, struct tls_stats *out);
/* The current generation's certificates (default first) into out[max]; returns how many
 * there are (may exceed max). */
unsigned tls_ctx_certs(struct tls_ctx *ctx, struct tls_cert_info *out, unsigned max);
/* Start a new ticket key now (the oldest is dropped: tickets made with it no longer
 * resume). Keys also rotate by themselves every ticket_rotate_s. */
void tls_ctx_rotate_tickets(struct tls_ctx *ctx);
/* Whether the kernel has the tls ULP (kTLS). Records are always sealed by OpenSSL in user
 * space here: kTLS needs OpenSSL's socket BIO or keys handed to setsockopt(TLS_TX/RX), and
 * the loop keeps its buffers; the caller logs which path is used. */
bool tls_kernel_has_ktls(void);
/* Whether client certificates are asked for. */
bool tls_ctx_mtls(struct tls_ctx *ctx);

/* A connection accepted at now_ns (CLOCK_MONOTONIC). NULL + errno: EBUSY when
 * max_handshakes are already in progress (counted; close the socket), ENOMEM. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, uint64_t now_ns);
/* Free t and what it holds; NULL is a no-op. */
void tls_conn_free(struct tls_conn *t);

/* Received ciphertext: all of it is consumed (data need not outlive the call). Drives the
 * handshake, then decrypts into the plaintext buffer; handshake messages, tickets and
 * alerts go to the output. Returns the state after it; -ENOMEM. Feeding a FAILED or
 * closed connection does nothing. */
int tls_conn_feed(struct tls_conn *t, const void *data, size_t len);
/* The peer closed its side (recv returned 0): a handshake in progress fails (EOF). */
void tls_conn_eof(struct tls_conn *t);
/* Decrypted bytes not yet consumed; *p valid until the next call on t. */
size_t tls_conn_plain(const struct tls_conn *t, const char **p);
void tls_conn_plain_consume(struct tls_conn *t, size_t n);
/* Encrypt len plaintext bytes into the output. 0, -ENOTCONN before DONE or after a
 * failure or close_notify, -EIO (the connection is FAILED), -ENOMEM. */
int tls_conn_write(struct tls_conn *t, const void *data, size_t len);
/* The connection went idle: give OpenSSL's record buffers (~34 KiB) back, and the engine's
 * emptied plaintext and output buffers; the next feed or write allocates them again. Done by
 * the engine itself after the handshake. OpenSSL's buffers stay before DONE, after a
 * failure, or while a partial record waits in them. */
void tls_conn_trim(struct tls_conn *t);
/* Queue a close_notify alert (once); the owner sends the output and closes. */
void tls_conn_close_notify(struct tls_conn *t);
/* Bytes to send; *p valid until the next call on t. */
size_t tls_conn_output(const struct tls_conn *t, const char **p);
/* n bytes of the output were sent (the buffer is emptied once everything was; a small one
 * stays for the next answer until tls_conn_trim). */
void tls_conn_output_consume(struct tls_conn *t, size_t n);

/* Move the whole output to the end of dst (by handing the buffer over when dst is empty),
 * so a send in flight reads a buffer later feeds cannot move. 0 or -ENOMEM (nothing moved). */
struct obuf;
int tls_conn_take_output(struct tls_conn *t, struct obuf *dst);

/* The handshake state (see enum tls_hs). */
enum tls_hs tls_conn_state(const struct tls_conn *t);
/* CLOCK_MONOTONIC ns by which the handshake must be DONE; 0 once it is (or failed). */
uint64_t tls_conn_deadline(const struct tls_conn *t);
/* If the handshake is still in progress at now_ns past its deadline, fail it (TIMEOUT,
 * counted) and return true. */
bool tls_conn_check_timeout(struct tls_conn *t, uint64_t now_ns);
/* Why it failed (TLS_FAIL_NONE otherwise), and OpenSSL's words for it ("" if none). */
enum tls_fail tls_conn_reason(const struct tls_conn *t);
const char *tls_conn_reason_detail(const struct tls_conn *t);
/* The peer sent close_notify: no more plaintext will come. */
bool tls_conn_peer_closed(const struct tls_conn *t);

/* After DONE: protocol, whether a ticket resumed the session, the ALPN protocol chosen
 * ("http/1.1", or NULL when the client offered none), the SNI name asked for (or NULL). */
enum tls_proto tls_conn_protocol(const struct tls_conn *t);
bool tls_conn_resumed(const struct tls_conn *t);
const char *tls_conn_alpn(const struct tls_conn *t);
const char *tls_conn_sni(const struct tls_conn *t);
/* SHA-256 of the verified client certificate (DER) into out: 0, or -ENOENT when the client
 * presented none (or before DONE). */
int tls_conn_peer_sha256(const struct tls_conn *t, uint8_t out[TLS_SHA256_LEN]);

/* Metric label values: "plaintext_http", "tls1.3", ... */
const char *tls_fail_name(enum tls_fail f);
const char *tls_proto_name(enum tls_proto p);
/* Whether the first bytes of a connection (len >= 1) look like an HTTP request line
 * rather than a TLS record: an upper-case token, a space once it fits. */
bool tls_looks_like_http(const void *data, size_t len);

#endif /* SLUICE_TLS_H */
