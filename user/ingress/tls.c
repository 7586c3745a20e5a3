// SPDX-License-Identifier: MIT
/* tls.c -- one connection's TLS: ciphertext in, plaintext out, plaintext in, ciphertext out
 *
 * OpenSSL talks to a BIO of our own instead of a pair of memory BIOs: its reads are served
 * from the buffer being fed (the caller's receive buffer, no copy into a BIO) and its
 * writes append to the connection's output. tls_conn_feed() keeps reading until OpenSSL
 * asks for more than the buffer holds, so every fed byte is either decrypted or sits in
 * OpenSSL's own record buffer (a partial record) when the call returns: no BIO holds bytes
 * between calls. Plaintext is bounded by what was fed (TLS never expands), plus one record
 * OpenSSL finished.
 *
 * Memory: OpenSSL's record buffers (16 KiB + overhead to read, as much to write) stay while
 * the connection is busy and are given back with SSL_free_buffers() when it is not: right
 * after the handshake, and when the owner says the connection went idle (tls_conn_trim).
 * SSL_MODE_RELEASE_BUFFERS would free them after every record instead, and for a durable
 * POST that is two ~17 KiB malloc/free pairs per request, each free consolidating the heap
 * and handing pages back that the next request faults in again (measured: 4 % of the
 * ingress thread's CPU, a third of what TLS added to a request). Our plaintext and output
 * buffers, once consumed, stay for the next request when small (TLS_KEEP_MAX) and are freed
 * by tls_conn_trim() too, so a trimmed connection holds only OpenSSL's state.
 *
 * Counting: a connection counts in the handshaking gauge from tls_conn_new() until DONE or
 * FAILED; each handshake is counted once, as done (by protocol, resumed or not) or as a
 * failure with its reason. Errors after DONE only fail the connection.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/response.h"
#include "ingress/tls_int.h"

#define TLS_RECORD_MAX 16384
/* A consumed plaintext or output buffer up to this size is kept for the next request (a
 * malloc/free pair per request and direction less); tls_conn_trim() frees it. */
#define TLS_KEEP_MAX 4096

struct tls_conn {
	struct tls_ctx *ctx;
	struct tls_gen *gen;
	SSL *ssl;
	const unsigned char *in; /* the buffer being fed */
	size_t in_len;
	struct obuf plain, out;
	size_t plain_off, out_off;
	uint64_t deadline_ns;
	const char *detail; /* OpenSSL's static reason string */
	enum tls_fail reason;
	bool started, handshaking, done, failed, eof, peer_closed, notified, oom;
	bool buffered; /* OpenSSL may hold record buffers (counted in n.buffered) */
};

static const char *const fail_names[TLS_FAIL_MAX] = {
    [TLS_FAIL_NONE] = "none",
    [TLS_FAIL_PLAINTEXT_HTTP] = "plaintext_http",
    [TLS_FAIL_NOT_TLS] = "not_tls",
    [TLS_FAIL_VERSION] = "version",
    [TLS_FAIL_CIPHER] = "cipher",
    [TLS_FAIL_ALPN] = "alpn",
    [TLS_FAIL_CLIENT_CERT] = "client_cert",
    [TLS_FAIL_PEER_ALERT] = "peer_alert",
    [TLS_FAIL_EOF] = "eof",
    [TLS_FAIL_TIMEOUT] = "timeout",
    [TLS_FAIL_PROTOCOL] = "protocol",
};

const char *tls_fail_name(enum tls_fail f)
{
	return f < TLS_FAIL_MAX ? fail_names[f] : "?";
}

const char *tls_proto_name(enum tls_proto p)
{
	return p == TLS_PROTO_13 ? "tls1.3" : p == TLS_PROTO_12 ? "tls1.2" : "?";
}

bool tls_looks_like_http(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	/* the longest method is OPTIONS/CONNECT (7): a token of capitals, then a space */
	for (i = 0; i < len && i < 8; i++) {
		if (p[i] == ' ')
			return i > 0;
		if (p[i] < 'A' || p[i] > 'Z')
			return false;
	}
	return i < 8;
}

/* ---- the BIO ------------------------------------------------------------------------------ */

static int bio_read(BIO *b, char *buf, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (!t->in_len) {
		if (t->eof)
			return 0;
		BIO_set_retry_read(b);
		return -1;
	}
	n = t->in_len < (size_t)len ? t->in_len : (size_t)len;
	memcpy(buf, t->in, n);
	t->in += n;
	t->in_len -= n;
	return (int)n;
}

static int bio_write(BIO *b, const char *buf, int len)
{
	struct tls_conn *t = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (obuf_append(&t->out, buf, (size_t)len)) {
		t->oom = true;
		return -1;
	}
	return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *t = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return t->eof && !t->in_len;
	case BIO_CTRL_PENDING:
		return (long)t->in_len;
	default:
		return 0;
	}
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice-conn");

	if (m && BIO_meth_set_read(m, bio_read) == 1 && BIO_meth_set_write(m, bio_write) == 1 &&
	    BIO_meth_set_ctrl(m, bio_ctrl) == 1)
		bio_method = m;
	else
		BIO_meth_free(m);
}

/* ---- state changes ------------------------------------------------------------------------ */

static void hs_leave(struct tls_conn *t)
{
	if (t->handshaking) {
		t->handshaking = false;
		atomic_fetch_sub_explicit(&t->ctx->n.handshaking, 1, memory_order_relaxed);
	}
}

/* OpenSSL is about to read or write: it allocates its record buffers if they are gone. */
static void buffers_in_use(struct tls_conn *t)
{
	if (!t->buffered) {
		t->buffered = true;
		atomic_fetch_add_explicit(&t->ctx->n.buffered, 1, memory_order_relaxed);
	}
}

/* Give OpenSSL's record buffers back; it refuses while a partial record is in them. */
static void buffers_release(struct tls_conn *t)
{
	if (t->buffered && SSL_free_buffers(t->ssl) == 1) {
		t->buffered = false;
		atomic_fetch_sub_explicit(&t->ctx->n.buffered, 1, memory_order_relaxed);
	}
}

static void fail(struct tls_conn *t, enum tls_fail reason)
{
	if (t->failed)
		return;
	t->failed = true;
	t->reason = reason;
	if (!t->done) {
		hs_leave(t);
		TLS_COUNT(t->ctx, failures[reason]);
	}
}

static enum tls_fail reason_of(unsigned long e)
{
	int r = ERR_GET_REASON(e);

	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return TLS_FAIL_PROTOCOL;
	if (r >= SSL_AD_REASON_OFFSET)
		return TLS_FAIL_PEER_ALERT; /* SSL_R_*_ALERT_*: the peer sent a fatal alert */
	switch (r) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_UNKNOWN_PROTOCOL:
		return TLS_FAIL_VERSION;
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SHARED_GROUPS:
	case SSL_R_NO_SUITABLE_KEY_SHARE:
	case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
		return TLS_FAIL_CIPHER;
	case SSL_R_NO_APPLICATION_PROTOCOL:
		return TLS_FAIL_ALPN;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_NO_CERTIFICATES_RETURNED:
		return TLS_FAIL_CLIENT_CERT;
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
		return TLS_FAIL_PLAINTEXT_HTTP;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return TLS_FAIL_EOF;
	default:
		return TLS_FAIL_PROTOCOL;
	}
}

/* SSL_get_error() reads the thread's error queue, so it must be empty before a call whose
 * result it explains. Every failure here empties it afterwards, so it almost always is, and
 * ERR_clear_error() (16 slots, a free each) cost a fifth of the engine's time per request:
 * clear only when something is there. */
static void err_reset(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

/* OpenSSL said no (ssl_err from SSL_get_error): fail with the reason its queue names. */
static void fail_ssl(struct tls_conn *t, int ssl_err)
{
	unsigned long e = ERR_peek_error();

	if (t->oom) {
		t->detail = "out of memory";
		fail(t, TLS_FAIL_PROTOCOL);
	} else if (!e) {
		t->detail = ssl_err == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "";
		fail(t, ssl_err == SSL_ERROR_SYSCALL ? TLS_FAIL_EOF : TLS_FAIL_PROTOCOL);
	} else {
		t->detail = ERR_reason_error_string(e);
		if (!t->detail)
			t->detail = "";
		fail(t, reason_of(e));
	}
	ERR_clear_error();
}

static void on_done(struct tls_conn *t)
{
	struct tls_ctx *ctx = t->ctx;

	t->done = true;
	hs_leave(t);
	TLS_COUNT(ctx, handshakes[tls_conn_protocol(t)]);
	if (SSL_session_reused(t->ssl))
		TLS_COUNT(ctx, resumed);
	if (SSL_get0_peer_certificate(t->ssl) && SSL_get_verify_result(t->ssl) == X509_V_OK)
		TLS_COUNT(ctx, mtls_verified);
}

/* The first bytes are not a TLS handshake record (0x16): say why, and for plain HTTP,
 * answer it in plain HTTP. */
static void refuse_not_tls(struct tls_conn *t, const void *data, size_t len)
{
	if (!tls_looks_like_http(data, len)) {
		t->detail = "first byte is not a TLS handshake record";
		fail(t, TLS_FAIL_NOT_TLS);
		return;
	}
	t->detail = "plain HTTP sent to the TLS port";
	if (response_error(&t->out, 400, "tls_required",
			   "this port speaks TLS only: send the request with https://", "", true,
			   false))
		t->oom = true;
	fail(t, TLS_FAIL_PLAINTEXT_HTTP);
}

/* After DONE: decrypt everything fed into the plaintext buffer. */
static int drain_plain(struct tls_conn *t)
{
	char buf[TLS_RECORD_MAX];
	size_t n;
	int e;

	for (;;) {
		if (SSL_read_ex(t->ssl, buf, sizeof(buf), &n)) {
			if (obuf_append(&t->plain, buf, n))
				return -ENOMEM;
			/* everything fed is decrypted: skip the read that would only say WANT_READ
			 * (a failing SSL_read and SSL_get_error cost as much as a record) */
			if (!t->in_len && !SSL_has_pending(t->ssl))
				return 0;
			continue;
		}
		e = SSL_get_error(t->ssl, 0);
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->peer_closed = true;
			return 0;
		}
		fail_ssl(t, e);
		return 0;
	}
}

/* The unconsumed bytes of a buffer read from off; emptied once all are consumed (freed when
 * larger than TLS_KEEP_MAX, else kept for the next request until tls_conn_trim). */
static size_t buf_peek(const struct obuf *o, size_t off, const char **p)
{
	*p = o->p ? o->p + off : NULL;
	return o->len - off;
}

static void buf_consume(struct obuf *o, size_t *off, size_t n)
{
	*off += n < o->len - *off ? n : o->len - *off;
	if (*off == o->len) {
		if (o->cap > TLS_KEEP_MAX)
			obuf_fini(o);
		o->len = 0;
		*off = 0;
	}
}

/* ---- public ------------------------------------------------------------------------------- */

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, uint64_t now_ns)
{
	struct tls_gen *g = tls_ctx_acquire(ctx);
	uint64_t busy = atomic_fetch_add_explicit(&ctx->n.handshaking, 1, memory_order_relaxed);
	struct tls_conn *t = NULL;
	BIO *bio = NULL;

	if (g->max_handshakes && busy >= g->max_handshakes) {
		atomic_fetch_sub_explicit(&ctx->n.handshaking, 1, memory_order_relaxed);
		TLS_COUNT(ctx, refused_busy);
		tls_gen_put(g);
		errno = EBUSY;
		return NULL;
	}
	pthread_once(&bio_once, bio_method_init);
	t = calloc(1, sizeof(*t));
	if (!t || !bio_method)
		goto fail;
	t->ctx = ctx;
	t->gen = g;
	t->handshaking = true;
	buffers_in_use(t);
	t->deadline_ns = now_ns + g->timeout_ns;
	t->ssl = SSL_new(g->dflt);
	bio = BIO_new(bio_method);
	if (!t->ssl || !bio)
		goto fail;
	BIO_set_data(bio, t);
	BIO_set_init(bio, 1);
	SSL_set_bio(t->ssl, bio, bio);
	SSL_set_accept_state(t->ssl);
	return t;
fail:
	BIO_free(bio);
	if (t) {
		SSL_free(t->ssl);
		free(t);
	}
	atomic_fetch_sub_explicit(&ctx->n.handshaking, 1, memory_order_relaxed);
	tls_gen_put(g);
	ERR_clear_error();
	errno = ENOMEM;
	return NULL;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	hs_leave(t);
	if (t->buffered)
		atomic_fetch_sub_explicit(&t->ctx->n.buffered, 1, memory_order_relaxed);
	SSL_free(t->ssl);
	obuf_fini(&t->plain);
	obuf_fini(&t->out);
	tls_gen_put(t->gen);
	free(t);
}

int tls_conn_feed(struct tls_conn *t, const void *data, size_t len)
{
	bool was_done = t->done;
	int r, err = 0;

	if (t->failed || t->peer_closed || !len)
		return tls_conn_state(t);
	if (!t->started) {
		t->started = true;
		if (((const unsigned char *)data)[0] != 0x16) {
			refuse_not_tls(t, data, len);
			return t->oom ? -ENOMEM : (int)tls_conn_state(t);
		}
	}
	t->in = data;
	t->in_len = len;
	buffers_in_use(t);
	err_reset();
	if (!t->done) {
		r = SSL_do_handshake(t->ssl);
		if (r == 1)
			on_done(t);
		else if ((r = SSL_get_error(t->ssl, r)) != SSL_ERROR_WANT_READ)
			fail_ssl(t, r);
	}
	if (t->done && !t->failed)
		err = drain_plain(t);
	t->in = NULL;
	t->in_len = 0;
	if (t->done && !was_done && !t->failed) /* the handshake's buffers: most clients wait */
		buffers_release(t);
	if (err || t->oom)
		return -ENOMEM;
	return tls_conn_state(t);
}

void tls_conn_trim(struct tls_conn *t)
{
	if (t->plain.len == t->plain_off) {
		obuf_fini(&t->plain);
		t->plain_off = 0;
	}
	if (t->out.len == t->out_off) {
		obuf_fini(&t->out);
		t->out_off = 0;
	}
	if (t->done && !t->failed)
		buffers_release(t);
}

void tls_conn_eof(struct tls_conn *t)
{
	t->eof = true;
	if (!t->done && !t->failed) {
		t->detail = "the client closed during the handshake";
		fail(t, TLS_FAIL_EOF);
	}
}

size_t tls_conn_plain(const struct tls_conn *t, const char **p)
{
	return buf_peek(&t->plain, t->plain_off, p);
}

void tls_conn_plain_consume(struct tls_conn *t, size_t n)
{
	buf_consume(&t->plain, &t->plain_off, n);
}

int tls_conn_write(struct tls_conn *t, const void *data, size_t len)
{
	size_t n;

	if (!t->done || t->failed || t->notified)
		return -ENOTCONN;
	if (!len)
		return 0;
	buffers_in_use(t);
	err_reset();
	if (!SSL_write_ex(t->ssl, data, len, &n)) {
		bool oom = t->oom;

		fail_ssl(t, SSL_get_error(t->ssl, 0));
		return oom ? -ENOMEM : -EIO;
	}
	return 0;
}

void tls_conn_close_notify(struct tls_conn *t)
{
	if (t->notified || !t->done || t->failed)
		return;
	t->notified = true;
	buffers_in_use(t);
	err_reset();
	SSL_shutdown(t->ssl); /* 0: sent, the peer's answer is not awaited */
	ERR_clear_error();
}

size_t tls_conn_output(const struct tls_conn *t, const char **p)
{
	return buf_peek(&t->out, t->out_off, p);
}

void tls_conn_output_consume(struct tls_conn *t, size_t n)
{
	buf_consume(&t->out, &t->out_off, n);
}

int tls_conn_take_output(struct tls_conn *t, struct obuf *dst)
{
	size_t n = t->out.len - t->out_off;

	if (!n)
		return 0;
	if (!dst->len && !t->out_off) { /* the usual case: hand the buffer over, no copy */
		struct obuf spare = *dst;

		*dst = t->out;
		t->out = spare;
		return 0;
	}
	if (obuf_append(dst, t->out.p + t->out_off, n))
		return -ENOMEM;
	buf_consume(&t->out, &t->out_off, n);
	return 0;
}

enum tls_hs tls_conn_state(const struct tls_conn *t)
{
	if (t->failed)
		return TLS_HS_FAILED;
	if (t->done)
		return TLS_HS_DONE;
	return t->out.len > t->out_off ? TLS_HS_WANT_WRITE : TLS_HS_WANT_READ;
}

uint64_t tls_conn_deadline(const struct tls_conn *t)
{
	return t->done || t->failed ? 0 : t->deadline_ns;
}

bool tls_conn_check_timeout(struct tls_conn *t, uint64_t now_ns)
{
	if (t->done || t->failed || now_ns < t->deadline_ns)
		return false;
	t->detail = "handshake not finished in time";
	fail(t, TLS_FAIL_TIMEOUT);
	return true;
}

enum tls_fail tls_conn_reason(const struct tls_conn *t)
{
	return t->reason;
}

const char *tls_conn_reason_detail(const struct tls_conn *t)
{
	return t->detail ? t->detail : "";
}

bool tls_conn_peer_closed(const struct tls_conn *t)
{
	return t->peer_closed;
}

enum tls_proto tls_conn_protocol(const struct tls_conn *t)
{
	return SSL_version(t->ssl) == TLS1_3_VERSION ? TLS_PROTO_13 : TLS_PROTO_12;
}

bool tls_conn_resumed(const struct tls_conn *t)
{
	return t->done && SSL_session_reused(t->ssl);
}

const char *tls_conn_alpn(const struct tls_conn *t)
{
	const unsigned char *p;
	unsigned len;

	SSL_get0_alpn_selected(t->ssl, &p, &len);
	return len ? "http/1.1" : NULL; /* the only protocol alpn_cb ever selects */
}

const char *tls_conn_sni(const struct tls_conn *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int tls_conn_peer_sha256(const struct tls_conn *t, uint8_t out[TLS_SHA256_LEN])
{
	X509 *x = t->done ? SSL_get0_peer_certificate(t->ssl) : NULL;
	unsigned len = 0;

	if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return -ENOENT;
	if (X509_digest(x, EVP_sha256(), out, &len) != 1 || len != TLS_SHA256_LEN)
		return -EIO;
	return 0;
}
