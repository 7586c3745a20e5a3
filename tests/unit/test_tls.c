// SPDX-License-Identifier: MIT
/* test_tls.c -- the TLS engine against an OpenSSL client, both in memory
 *
 * The server side is a tls_conn; the client is a plain OpenSSL SSL on memory BIOs. pump()
 * moves bytes between them (in chunks of a chosen size, down to one byte) until neither has
 * anything to say. Certificates are made by `openssl req` in the test's scratch directory:
 * a.test (default), b.test (SNI), an expired one, a CA with a client certificate and a
 * rogue client certificate no CA vouches for.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <time.h>

#include "ingress/response.h"
#include "ingress/tls.h"
#include "lib/array_size.h"
#include "lib/clock.h"
#include "test_progs.h"
#include "tlscerts.h"

static struct tlscert cert_a, cert_b, cert_old, ca, client, rogue;

static const unsigned char alpn_h1[] = "\x08http/1.1";
static const unsigned char alpn_h2[] = "\x02h2";

static int make_certs(void)
{
	const char *d = test__tmpdir();

	if (tlscert_self(d, "a", "a.test", 30, &cert_a) ||
	    tlscert_self(d, "b", "b.test", 60, &cert_b) ||
	    tlscert_self(d, "old", "old.test", -1, &cert_old) ||
	    tlscert_ca(d, "ca", "Sluice Test CA", &ca) ||
	    tlscert_issue(d, "client", "client-acme", &ca, 10, &client) ||
	    tlscert_self(d, "rogue", "client-acme", 10, &rogue))
		return -1;
	return 0;
}

static struct tls_ctx *server(const char *client_ca, unsigned max_hs)
{
	struct tls_cert_files sni[] = {{cert_b.crt, cert_b.key}};
	struct tls_opts o = {
	    .dflt = {cert_a.crt, cert_a.key},
	    .sni = sni,
	    .n_sni = 1,
	    .client_ca = client_ca,
	    .handshake_timeout_ms = 5000,
	    .max_handshakes = max_hs,
	};
	char err[512] = "";
	struct tls_ctx *ctx = tls_ctx_new(&o, err, sizeof(err));

	ASSERT_OK_PTR(ctx, err);
	return ctx;
}

/* ---- the client ------------------------------------------------------------------------- */

struct cli_opts {
	int max_version;	    /* 0 = TLS 1.3 */
	const char *trust;	    /* CA file for the server's certificate (default a + b) */
	const unsigned char *alpn;  /* wire format, or NULL */
	const char *ciphers;	    /* TLS 1.2 cipher list, or NULL */
	const struct tlscert *cert; /* client certificate, or NULL */
};

struct cli {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rb, *wb;
	char rx[256 * 1024];
	size_t rx_len;
	bool closed;
	int err; /* SSL_get_error of a failure, 0 */
};

static struct cli *cli_new(const struct cli_opts *o, const char *sni, SSL_SESSION *sess)
{
	struct cli *c = calloc(1, sizeof(*c));

	c->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(c->ctx, o->max_version ? o->max_version : TLS1_3_VERSION);
	if (o->max_version && o->max_version < TLS1_2_VERSION) {
		SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
		SSL_CTX_set_cipher_list(c->ctx, "DEFAULT:@SECLEVEL=0");
	}
	if (o->ciphers)
		SSL_CTX_set_cipher_list(c->ctx, o->ciphers);
	if (o->trust) {
		SSL_CTX_load_verify_file(c->ctx, o->trust);
	} else {
		SSL_CTX_load_verify_file(c->ctx, cert_a.crt);
		SSL_CTX_load_verify_file(c->ctx, cert_b.crt);
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (o->alpn)
		SSL_CTX_set_alpn_protos(c->ctx, o->alpn, (unsigned)strlen((const char *)o->alpn));
	if (o->cert) {
		SSL_CTX_use_certificate_chain_file(c->ctx, o->cert->crt);
		SSL_CTX_use_PrivateKey_file(c->ctx, o->cert->key, SSL_FILETYPE_PEM);
	}
	c->ssl = tlscert_mem_client(c->ctx, &c->rb, &c->wb);
	if (sni)
		SSL_set_tlsext_host_name(c->ssl, sni);
	if (sess)
		SSL_set_session(c->ssl, sess);
	return c;
}

static void cli_free(struct cli *c)
{
	if (!c)
		return;
	/* a session freed without close_notify is marked not resumable (ssl_clear_bad_session) */
	if (SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	free(c);
}

/* Handshake, then read whatever arrived (TLS 1.3 tickets come after the handshake). */
static void cli_step(struct cli *c)
{
	size_t n;
	int r, e;

	if (c->err)
		return;
	if (!SSL_is_init_finished(c->ssl)) {
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			e = SSL_get_error(c->ssl, r);
			if (e != SSL_ERROR_WANT_READ)
				c->err = e;
			return;
		}
	}
	for (;;) {
		if (SSL_read_ex(c->ssl, c->rx + c->rx_len, sizeof(c->rx) - c->rx_len, &n)) {
			c->rx_len += n;
			continue;
		}
		e = SSL_get_error(c->ssl, 0);
		if (e == SSL_ERROR_ZERO_RETURN)
			c->closed = true;
		else if (e != SSL_ERROR_WANT_READ)
			c->err = e;
		return;
	}
}

/* Move bytes both ways until nobody has anything to say; the client's bytes are fed to
 * the server chunk bytes at a time. Returns the server's state. */
static enum tls_hs pump(struct tls_conn *t, struct cli *c, size_t chunk)
{
	for (int round = 0; round < 100000; round++) {
		bool moved = false;
		const char *o;
		char *p;
		long n;
		size_t on;

		cli_step(c);
		n = BIO_get_mem_data(c->wb, &p);
		for (long off = 0; off < n && tls_conn_state(t) != TLS_HS_FAILED;) {
			size_t k = (size_t)(n - off) < chunk ? (size_t)(n - off) : chunk;

			tls_conn_feed(t, p + off, k);
			off += (long)k;
		}
		if (n > 0) {
			(void)BIO_reset(c->wb);
			moved = true;
		}
		on = tls_conn_output(t, &o);
		if (on) {
			BIO_write(c->rb, o, (int)on);
			tls_conn_output_consume(t, on);
			moved = true;
		}
		if (!moved)
			break;
	}
	return tls_conn_state(t);
}

/* A fresh connection pumped to its end. */
static enum tls_hs connect(struct tls_ctx *ctx, const struct cli_opts *o, const char *sni,
			   SSL_SESSION *sess, struct tls_conn **tp, struct cli **cp)
{
	*tp = tls_conn_new(ctx, clock_mono_ns());
	*cp = cli_new(o, sni, sess);
	if (!*tp)
		return TLS_HS_FAILED;
	return pump(*tp, *cp, 1 << 20);
}

static bool served_name(struct cli *c, const char *name)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);

	return x && X509_check_host(x, name, 0, 0, NULL) == 1;
}

/* ---- subtests ----------------------------------------------------------------------------- */

static void subtest_handshake_13(void)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.alpn = alpn_h1};
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct tls_conn *t = NULL;
	struct cli *c = NULL;
	struct tls_stats st;
	const char *p;
	char *cp;
	long n;

	if (!ctx)
		return;
	t = tls_conn_new(ctx, clock_mono_ns());
	c = cli_new(&co, "a.test", NULL);
	if (!ASSERT_OK_PTR(t, "conn"))
		goto out;
	ASSERT_EQ(tls_conn_state(t), TLS_HS_WANT_READ, "waits for the client hello");
	/* one step at a time: the ClientHello makes the server owe its flight */
	cli_step(c);
	n = BIO_get_mem_data(c->wb, &cp);
	ASSERT_GT(n, 0, "client hello");
	ASSERT_EQ(tls_conn_feed(t, cp, (size_t)n), TLS_HS_WANT_WRITE, "server flight pending");
	(void)BIO_reset(c->wb);
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.handshaking, 1, "one handshake in progress");
	n = (long)tls_conn_output(t, &p);
	BIO_write(c->rb, p, (int)n);
	tls_conn_output_consume(t, (size_t)n);
	ASSERT_EQ(tls_conn_state(t), TLS_HS_WANT_READ, "flight sent, waits for Finished");
	ASSERT_EQ(pump(t, c, 1 << 20), TLS_HS_DONE, "done");
	ASSERT_EQ(c->err, 0, "client happy");
	ASSERT_TRUE(served_name(c, "a.test"), "a.test served");
	ASSERT_EQ(tls_conn_protocol(t), TLS_PROTO_13, "TLS 1.3");
	ASSERT_STREQ(tls_conn_alpn(t), "http/1.1", "ALPN");
	ASSERT_STREQ(tls_conn_sni(t), "a.test", "SNI");
	ASSERT_FALSE(tls_conn_resumed(t), "full handshake");
	ASSERT_EQ(tls_conn_deadline(t), 0, "no deadline once done");

	/* plaintext both ways */
	ASSERT_EQ(SSL_write(c->ssl, req, sizeof(req) - 1), (int)sizeof(req) - 1, "client write");
	pump(t, c, 1 << 20);
	n = (long)tls_conn_plain(t, &p);
	ASSERT_EQ(n, (long)sizeof(req) - 1, "plaintext length");
	ASSERT_TRUE(n == (long)sizeof(req) - 1 && !memcmp(p, req, (size_t)n), "plaintext bytes");
	tls_conn_plain_consume(t, (size_t)n);
	ASSERT_EQ(tls_conn_plain(t, &p), 0, "consumed");
	ASSERT_OK(tls_conn_write(t, resp, sizeof(resp) - 1), "server write");
	pump(t, c, 1 << 20);
	ASSERT_EQ(c->rx_len, sizeof(resp) - 1, "client got the answer");
	ASSERT_TRUE(!memcmp(c->rx, resp, sizeof(resp) - 1), "answer bytes");

	/* close_notify both ways */
	tls_conn_close_notify(t);
	ASSERT_EQ(tls_conn_write(t, "x", 1), -ENOTCONN, "no write after close_notify");
	pump(t, c, 1 << 20);
	ASSERT_TRUE(c->closed, "client saw close_notify");
	SSL_shutdown(c->ssl);
	pump(t, c, 1 << 20);
	ASSERT_TRUE(tls_conn_peer_closed(t), "server saw close_notify");

	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.handshakes[TLS_PROTO_13], 1, "counted as 1.3");
	ASSERT_EQ(st.handshakes[TLS_PROTO_12], 0, "not as 1.2");
	ASSERT_EQ(st.handshaking, 0, "gauge back to 0");
out:
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

static void subtest_handshake_12(void)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.max_version = TLS1_2_VERSION, .alpn = alpn_h1};
	struct tls_conn *t = NULL;
	struct cli *c = NULL;
	struct tls_stats st;

	if (!ctx)
		return;
	ASSERT_EQ(connect(ctx, &co, "a.test", NULL, &t, &c), TLS_HS_DONE, "done");
	ASSERT_EQ(tls_conn_protocol(t), TLS_PROTO_12, "TLS 1.2");
	ASSERT_STREQ(SSL_get_cipher_name(c->ssl), "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE cipher");
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.handshakes[TLS_PROTO_12], 1, "counted as 1.2");
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

/* A refused handshake fails with the expected reason, counted once, and an alert to send. */
static void expect_refused(const struct cli_opts *co, enum tls_fail want, const char *client_ca)
{
	struct tls_ctx *ctx = server(client_ca, 0);
	struct tls_conn *t = NULL;
	struct cli *c = NULL;
	struct tls_stats st;

	if (!ctx)
		return;
	ASSERT_EQ(connect(ctx, co, "a.test", NULL, &t, &c), TLS_HS_FAILED, "refused");
	if (!ASSERT_OK_PTR(t, "conn"))
		goto out;
	ASSERT_EQ(tls_conn_reason(t), want, tls_conn_reason_detail(t));
	ASSERT_NEQ(c->err, 0, "the client failed too");
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.failures[want], 1, "counted under its reason");
	ASSERT_EQ(st.handshakes[TLS_PROTO_12] + st.handshakes[TLS_PROTO_13], 0, "none done");
	ASSERT_EQ(st.handshaking, 0, "gauge back to 0");
	ASSERT_EQ(tls_conn_write(t, "x", 1), -ENOTCONN, "no plaintext after failure");
out:
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

static void subtest_refused(void)
{
	struct cli_opts v11 = {.max_version = TLS1_1_VERSION};
	struct cli_opts h2 = {.alpn = alpn_h2};
	struct cli_opts rsa_kx = {.max_version = TLS1_2_VERSION, .ciphers = "AES128-GCM-SHA256"};
	struct cli_opts distrust = {.trust = ca.crt};
	struct cli_opts rogue_cert = {.cert = &rogue};

	expect_refused(&v11, TLS_FAIL_VERSION, NULL);
	expect_refused(&h2, TLS_FAIL_ALPN, NULL);
	expect_refused(&rsa_kx, TLS_FAIL_CIPHER, NULL);
	expect_refused(&distrust, TLS_FAIL_PEER_ALERT, NULL);
	expect_refused(&rogue_cert, TLS_FAIL_CLIENT_CERT, ca.crt);
}

static void subtest_no_alpn(void)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {0};
	struct tls_conn *t = NULL;
	struct cli *c = NULL;

	if (!ctx)
		return;
	ASSERT_EQ(connect(ctx, &co, NULL, NULL, &t, &c), TLS_HS_DONE, "done without ALPN");
	ASSERT_TRUE(tls_conn_alpn(t) == NULL, "no ALPN chosen");
	ASSERT_TRUE(tls_conn_sni(t) == NULL, "no SNI");
	ASSERT_TRUE(served_name(c, "a.test"), "default certificate");
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

static void subtest_sni(void)
{
	static const struct {
		const char *ask, *served;
	} cases[] = {{"b.test", "b.test"}, {"a.test", "a.test"}, {"c.test", "a.test"}};
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.alpn = alpn_h1};
	struct tls_cert_info info[4];
	int64_t now = time(NULL);

	if (!ctx)
		return;
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		struct tls_conn *t = NULL;
		struct cli *c = NULL;

		ASSERT_EQ(connect(ctx, &co, cases[i].ask, NULL, &t, &c), TLS_HS_DONE, cases[i].ask);
		ASSERT_TRUE(served_name(c, cases[i].served), cases[i].served);
		ASSERT_STREQ(tls_conn_sni(t), cases[i].ask, "SNI asked");
		cli_free(c);
		tls_conn_free(t);
	}
	if (ASSERT_EQ(tls_ctx_certs(ctx, info, 4), 2, "two certificates")) {
		ASSERT_STREQ(info[0].name, "a.test", "default name");
		ASSERT_FALSE(info[0].sni, "default");
		ASSERT_STREQ(info[0].file, cert_a.crt, "default file");
		ASSERT_STREQ(info[1].name, "b.test", "SNI name");
		ASSERT_TRUE(info[1].sni, "SNI");
		ASSERT_NEAR_PCT(info[0].not_after - now, 30 * 86400, 1,
				"a.test expires in 30 days");
		ASSERT_NEAR_PCT(info[1].not_after - now, 60 * 86400, 1,
				"b.test expires in 60 days");
	}
	tls_ctx_free(ctx);
}

/* First connection, a session from it, then resume with it. */
static void resume(int version)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.max_version = version, .alpn = alpn_h1};
	struct tls_conn *t = NULL;
	struct cli *c = NULL;
	SSL_SESSION *sess = NULL;
	struct tls_stats st;
	int round;

	if (!ctx)
		return;
	ASSERT_EQ(connect(ctx, &co, "a.test", NULL, &t, &c), TLS_HS_DONE, "first");
	sess = SSL_get1_session(c->ssl);
	ASSERT_TRUE(sess && SSL_SESSION_is_resumable(sess), "resumable session");
	cli_free(c);
	tls_conn_free(t);

	/* rounds: plain resume; after one rotation (older key still opens the ticket); after
	 * TLS_TICKET_KEYS more (the key is gone: full handshake) */
	for (round = 0; round < 3; round++) {
		bool want = round < 2;

		if (round == 1)
			tls_ctx_rotate_tickets(ctx);
		if (round == 2)
			for (int i = 0; i < TLS_TICKET_KEYS; i++)
				tls_ctx_rotate_tickets(ctx);
		ASSERT_EQ(connect(ctx, &co, "a.test", sess, &t, &c), TLS_HS_DONE, "again");
		ASSERT_EQ(tls_conn_resumed(t), want, want ? "resumed" : "full after rotation");
		ASSERT_EQ(SSL_session_reused(c->ssl), want, "client agrees");
		cli_free(c);
		tls_conn_free(t);
	}
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.resumed, 2, "two resumptions counted");
	ASSERT_EQ(st.ticket_rotations, 1 + TLS_TICKET_KEYS, "rotations counted");
	SSL_SESSION_free(sess);
	tls_ctx_free(ctx);
}

static void subtest_resume_13(void)
{
	resume(TLS1_3_VERSION);
}

static void subtest_resume_12(void)
{
	resume(TLS1_2_VERSION);
}

static void subtest_plaintext_http(void)
{
	static const char req[] = "POST /v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tls_ctx *ctx = server(NULL, 0);
	struct tls_conn *t = NULL, *g = NULL;
	struct tls_stats st;
	const char *p;
	size_t n;

	if (!ctx)
		return;
	ASSERT_TRUE(tls_looks_like_http("GET / HTTP/1.1", 14), "GET");
	ASSERT_TRUE(tls_looks_like_http("G", 1), "a first capital is enough to know");
	ASSERT_TRUE(tls_looks_like_http("OPTIONS * HTTP/1.1", 18), "OPTIONS");
	ASSERT_FALSE(tls_looks_like_http("\x16\x03\x01", 3), "TLS record");
	ASSERT_FALSE(tls_looks_like_http("get / HTTP/1.1", 14), "lower case");
	ASSERT_FALSE(tls_looks_like_http("GETTINGLONG ", 12), "no method is that long");
	ASSERT_FALSE(tls_looks_like_http(" GET", 4), "leading space");

	t = tls_conn_new(ctx, clock_mono_ns());
	g = tls_conn_new(ctx, clock_mono_ns());
	if (!ASSERT_OK_PTR(t, "conn") || !ASSERT_OK_PTR(g, "conn"))
		goto out;
	ASSERT_EQ(tls_conn_feed(t, req, sizeof(req) - 1), TLS_HS_FAILED, "plain HTTP refused");
	ASSERT_EQ(tls_conn_reason(t), TLS_FAIL_PLAINTEXT_HTTP, "reason");
	n = tls_conn_output(t, &p);
	ASSERT_GT(n, 0, "an answer to send");
	if (n) {
		char *s = strndup(p, n);

		ASSERT_TRUE(!strncmp(s, "HTTP/1.1 400 ", 13), "plain 400");
		ASSERT_HAS_STR(s, "Connection: close\r\n", "closes");
		ASSERT_HAS_STR(s, "\"error\":\"tls_required\"", "says why");
		free(s);
	}
	ASSERT_EQ(tls_conn_feed(g, "\x00\x01\x02garbage", 10), TLS_HS_FAILED, "garbage refused");
	ASSERT_EQ(tls_conn_reason(g), TLS_FAIL_NOT_TLS, "not TLS");
	ASSERT_EQ(tls_conn_output(g, &p), 0, "nothing to say to garbage");
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.failures[TLS_FAIL_PLAINTEXT_HTTP], 1, "counted");
	ASSERT_EQ(st.failures[TLS_FAIL_NOT_TLS], 1, "counted");
out:
	tls_conn_free(t);
	tls_conn_free(g);
	tls_ctx_free(ctx);
}

/* A client that stops after a few bytes: the deadline fails it; one that closes: EOF. */
static void subtest_timeout_eof(void)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {0};
	uint64_t t0 = 1000000000ull;
	struct tls_conn *t = NULL, *e = NULL;
	struct cli *c = NULL;
	struct tls_stats st;
	char *p;
	long n;

	if (!ctx)
		return;
	t = tls_conn_new(ctx, t0);
	e = tls_conn_new(ctx, t0);
	c = cli_new(&co, "a.test", NULL);
	if (!ASSERT_OK_PTR(t, "conn") || !ASSERT_OK_PTR(e, "conn"))
		goto out;
	cli_step(c);
	n = BIO_get_mem_data(c->wb, &p);
	ASSERT_GT(n, 20, "client hello");
	ASSERT_EQ(tls_conn_feed(t, p, 10), TLS_HS_WANT_READ, "partial hello");
	ASSERT_EQ(tls_conn_feed(e, p, 10), TLS_HS_WANT_READ, "partial hello");
	ASSERT_EQ(tls_conn_deadline(t), t0 + 5000 * 1000000ull, "deadline");
	ASSERT_FALSE(tls_conn_check_timeout(t, t0 + 5000 * 1000000ull - 1), "not yet");
	ASSERT_TRUE(tls_conn_check_timeout(t, t0 + 5000 * 1000000ull), "timed out");
	ASSERT_EQ(tls_conn_state(t), TLS_HS_FAILED, "failed");
	ASSERT_EQ(tls_conn_reason(t), TLS_FAIL_TIMEOUT, "reason");
	ASSERT_FALSE(tls_conn_check_timeout(t, t0 + 9000 * 1000000ull), "counted once");
	ASSERT_EQ(tls_conn_deadline(t), 0, "no deadline after failure");
	tls_conn_eof(e);
	ASSERT_EQ(tls_conn_reason(e), TLS_FAIL_EOF, "closed mid-handshake");
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.failures[TLS_FAIL_TIMEOUT], 1, "timeout counted");
	ASSERT_EQ(st.failures[TLS_FAIL_EOF], 1, "eof counted");
	ASSERT_EQ(st.handshaking, 0, "gauge back to 0");
out:
	cli_free(c);
	tls_conn_free(t);
	tls_conn_free(e);
	tls_ctx_free(ctx);
}

/* Byte-at-a-time handshake, then 200 KB each way in odd chunks: nothing lost or reordered. */
static void subtest_split_records(void)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.alpn = alpn_h1};
	struct tls_conn *t = tls_conn_new(ctx, clock_mono_ns());
	struct cli *c = cli_new(&co, "a.test", NULL);
	size_t len = 200 * 1024, got = 0;
	char *big = malloc(len), *back = malloc(len);
	const char *p;
	size_t n;

	if (!ASSERT_OK_PTR(t, "conn"))
		goto out;
	for (size_t i = 0; i < len; i++)
		big[i] = (char)(i * 7 + i / 251);
	ASSERT_EQ(pump(t, c, 1), TLS_HS_DONE, "done one byte at a time");
	ASSERT_EQ(SSL_write(c->ssl, big, (int)len), (int)len, "client write");
	pump(t, c, 1000);
	while ((n = tls_conn_plain(t, &p)) > 0 && got + n <= len) {
		memcpy(back + got, p, n);
		got += n;
		tls_conn_plain_consume(t, n);
	}
	ASSERT_EQ(got, len, "all plaintext");
	ASSERT_TRUE(got == len && !memcmp(big, back, len), "same bytes");
	ASSERT_OK(tls_conn_write(t, big, len), "server write");
	pump(t, c, 1 << 20);
	ASSERT_EQ(c->rx_len, len, "client got it all");
	ASSERT_TRUE(c->rx_len == len && !memcmp(c->rx, big, len), "same bytes back");
out:
	free(big);
	free(back);
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

/* Take all plaintext the server has into out (NUL-terminated); returns its length. */
static size_t take_plain(struct tls_conn *t, char *out, size_t cap)
{
	size_t got = 0, n;
	const char *p;

	while ((n = tls_conn_plain(t, &p)) > 0 && got + n < cap) {
		memcpy(out + got, p, n);
		got += n;
		tls_conn_plain_consume(t, n);
	}
	out[got] = '\0';
	return got;
}

static uint64_t buffered(struct tls_ctx *ctx)
{
	struct tls_stats st;

	tls_ctx_stats(ctx, &st);
	return st.buffered;
}

/* Many records in one feed (a pipelined burst) come out whole and in order, and so do
 * records cut anywhere across feeds. */
static void subtest_burst(void)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.alpn = alpn_h1};
	struct tls_conn *t = NULL;
	struct cli *c = NULL;
	char want[4096] = "", got[4096], one[64], *p;
	size_t wl = 0;
	long n;

	if (!ctx)
		return;
	if (!ASSERT_EQ(connect(ctx, &co, "a.test", NULL, &t, &c), TLS_HS_DONE, "done"))
		goto out;
	for (int i = 0; i < 50; i++) { /* one record each */
		int k = snprintf(one, sizeof(one), "GET /r/%d HTTP/1.1\r\nHost: a\r\n\r\n", i);

		SSL_write(c->ssl, one, k);
		memcpy(want + wl, one, (size_t)k);
		wl += (size_t)k;
	}
	n = BIO_get_mem_data(c->wb, &p);
	ASSERT_GT(n, 50 * 22, "fifty records");
	ASSERT_EQ(tls_conn_feed(t, p, (size_t)n), TLS_HS_DONE, "one feed");
	(void)BIO_reset(c->wb);
	ASSERT_EQ(take_plain(t, got, sizeof(got)), wl, "every record decrypted");
	ASSERT_STREQ(got, want, "in order");

	/* the same burst fed in pieces of 7 bytes: records cut anywhere */
	for (int i = 0; i < 50; i++)
		SSL_write(c->ssl, want + (size_t)i * (wl / 50), (int)(wl / 50));
	n = BIO_get_mem_data(c->wb, &p);
	for (long off = 0; off < n; off += 7)
		tls_conn_feed(t, p + off, (size_t)(n - off < 7 ? n - off : 7));
	(void)BIO_reset(c->wb);
	ASSERT_EQ(take_plain(t, got, sizeof(got)), wl / 50 * 50, "every cut record decrypted");
	ASSERT_TRUE(!strncmp(got, want, wl / 50 * 50), "in order");
out:
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

/* Record buffers: released after the handshake, held while busy, released by trim (not
 * while a partial record waits in them), allocated again by the next record; counted. */
static void subtest_trim(void)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.alpn = alpn_h1};
	struct tls_conn *t = NULL, *u = NULL;
	struct cli *c = NULL;
	char got[256], *p;
	long n;

	if (!ctx)
		return;
	u = tls_conn_new(ctx, clock_mono_ns());
	ASSERT_EQ(buffered(ctx), 1, "a handshake in progress counts");
	if (!ASSERT_EQ(connect(ctx, &co, "a.test", NULL, &t, &c), TLS_HS_DONE, "done"))
		goto out;
	ASSERT_EQ(buffered(ctx), 1, "the handshake's buffers went back (the other one holds)");
	tls_conn_free(u);
	u = NULL;
	ASSERT_EQ(buffered(ctx), 0, "freeing uncounts");

	for (int round = 0; round < 3; round++) {
		SSL_write(c->ssl, req, sizeof(req) - 1);
		n = BIO_get_mem_data(c->wb, &p);
		/* all but the last 5 bytes: a partial record stays in OpenSSL's buffer */
		tls_conn_feed(t, p, (size_t)n - 5);
		ASSERT_EQ(buffered(ctx), 1, "busy: buffers held");
		ASSERT_EQ(tls_conn_plain(t, (const char **)&p), 0, "nothing whole yet");
		tls_conn_trim(t);
		ASSERT_EQ(buffered(ctx), 1, "not released under a partial record");
		n = BIO_get_mem_data(c->wb, &p);
		tls_conn_feed(t, p + n - 5, 5);
		(void)BIO_reset(c->wb);
		ASSERT_EQ(take_plain(t, got, sizeof(got)), sizeof(req) - 1, "the request");
		ASSERT_STREQ(got, req, "its bytes");
		ASSERT_OK(tls_conn_write(t, resp, sizeof(resp) - 1), "answer");
		tls_conn_trim(t);
		ASSERT_EQ(buffered(ctx), 0, "idle: released");
		c->rx_len = 0;
		pump(t, c, 1 << 20);
		ASSERT_EQ(c->rx_len, sizeof(resp) - 1, "the client got the answer");
		ASSERT_TRUE(!memcmp(c->rx, resp, sizeof(resp) - 1), "its bytes");
	}
out:
	cli_free(c);
	tls_conn_free(t);
	tls_conn_free(u);
	tls_ctx_free(ctx);
}

/* The plaintext and output buffers are kept from one request to the next (small ones) and
 * handed back and forth with the send buffer as the loop does: every round's bytes come out
 * exactly, whatever the sizes before (one above the kept size, 4 KiB), a plaintext consumed
 * in parts, a trim in between. */
static void subtest_reuse(void)
{
	static const size_t sizes[] = {100, 9000, 37, 5000, 300, 1, 4096, 200};
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {.alpn = alpn_h1};
	struct obuf sending = {0};
	struct tls_conn *t = NULL;
	struct cli *c = NULL;
	char msg[9001], got[9001], *p;
	const char *q;
	long n;

	if (!ctx)
		return;
	if (!ASSERT_EQ(connect(ctx, &co, "a.test", NULL, &t, &c), TLS_HS_DONE, "done"))
		goto out;
	for (size_t r = 0; r < ARRAY_SIZE(sizes); r++) {
		size_t len = sizes[r], half = len / 2, k;

		for (size_t i = 0; i < len; i++)
			msg[i] = (char)('a' + (r * 7 + i) % 26);
		SSL_write(c->ssl, msg, (int)len);
		n = BIO_get_mem_data(c->wb, &p);
		ASSERT_EQ(tls_conn_feed(t, p, (size_t)n), TLS_HS_DONE, "fed");
		(void)BIO_reset(c->wb);
		/* consume in two parts: the second is read where the first left off */
		k = tls_conn_plain(t, &q);
		if (!ASSERT_EQ(k, len, "the whole request decrypted"))
			goto out;
		memcpy(got, q, half);
		tls_conn_plain_consume(t, half);
		k = tls_conn_plain(t, &q);
		ASSERT_EQ(k, len - half, "the rest");
		memcpy(got + half, q, k);
		tls_conn_plain_consume(t, k);
		ASSERT_EQ(tls_conn_plain(t, &q), 0, "all consumed");
		ASSERT_TRUE(!memcmp(got, msg, len), "request bytes");

		/* the answer: sealed, taken into the send buffer, "sent" (emptied, kept) */
		ASSERT_OK(tls_conn_write(t, msg, len), "answer sealed");
		ASSERT_OK(tls_conn_take_output(t, &sending), "taken");
		ASSERT_EQ(tls_conn_output(t, &q), 0, "nothing left behind");
		BIO_write(c->rb, sending.p, (int)sending.len);
		sending.len = 0;
		c->rx_len = 0;
		cli_step(c);
		ASSERT_EQ(c->rx_len, len, "the client got the answer");
		ASSERT_TRUE(!memcmp(c->rx, msg, len), "answer bytes");
		if (r % 3 == 2)
			tls_conn_trim(t);
	}
out:
	obuf_fini(&sending);
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

static void subtest_cap(void)
{
	struct tls_ctx *ctx = server(NULL, 2);
	struct cli_opts co = {0};
	struct tls_conn *a = NULL, *b = NULL, *d = NULL;
	struct cli *c = NULL;
	struct tls_stats st;

	if (!ctx)
		return;
	a = tls_conn_new(ctx, clock_mono_ns());
	b = tls_conn_new(ctx, clock_mono_ns());
	ASSERT_OK_PTR(a, "first");
	ASSERT_OK_PTR(b, "second");
	d = tls_conn_new(ctx, clock_mono_ns());
	ASSERT_TRUE(!d && errno == EBUSY, "third refused with EBUSY");
	c = cli_new(&co, "a.test", NULL);
	if (a)
		ASSERT_EQ(pump(a, c, 1 << 20), TLS_HS_DONE, "first completes");
	d = tls_conn_new(ctx, clock_mono_ns());
	ASSERT_OK_PTR(d, "room again once one is done");
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.refused_busy, 1, "refusal counted");
	ASSERT_EQ(st.handshaking, 2, "two in progress");
	cli_free(c);
	tls_conn_free(a);
	tls_conn_free(b);
	tls_conn_free(d);
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.handshaking, 0, "freed handshakes leave the gauge");
	tls_ctx_free(ctx);
}

static void expect_load_error(const struct tls_cert_files *f, const char *client_ca, int want_errno,
			      const char *want_msg)
{
	struct tls_opts o = {.dflt = *f, .client_ca = client_ca};
	char err[512] = "";
	struct tls_ctx *ctx = tls_ctx_new(&o, err, sizeof(err));

	ASSERT_TRUE(!ctx && errno == want_errno, want_msg);
	ASSERT_HAS_STR(err, want_msg, "message");
	tls_ctx_free(ctx);
}

static void subtest_load_errors(void)
{
	char missing[600], junk[600];
	FILE *f;

	snprintf(missing, sizeof(missing), "%s/missing.pem", test__tmpdir());
	snprintf(junk, sizeof(junk), "%s/junk.pem", test__tmpdir());
	f = fopen(junk, "w");
	if (f) {
		fputs("not a certificate\n", f);
		fclose(f);
	}
	expect_load_error(&(struct tls_cert_files){missing, cert_a.key}, NULL, ENOENT,
			  "missing.pem: cannot open the certificate");
	expect_load_error(&(struct tls_cert_files){cert_old.crt, cert_old.key}, NULL, EINVAL,
			  "certificate \"old.test\" expired on");
	expect_load_error(&(struct tls_cert_files){cert_a.crt, cert_b.key}, NULL, EINVAL,
			  "b.key: the key does not match the certificate");
	expect_load_error(&(struct tls_cert_files){junk, cert_a.key}, NULL, EINVAL,
			  "junk.pem: no PEM certificate chain");
	expect_load_error(&(struct tls_cert_files){cert_a.crt, junk}, NULL, EINVAL,
			  "junk.pem: no readable PEM private key");
	expect_load_error(&(struct tls_cert_files){cert_a.crt, cert_a.key}, junk, EINVAL,
			  "junk.pem: no PEM CA certificate");
}

/* A reload that fails keeps the old certificate; one that works serves new connections
 * while a handshake begun before it finishes with the old certificate. */
static void subtest_reload(void)
{
	struct tls_ctx *ctx = server(NULL, 0);
	struct cli_opts co = {0};
	struct tls_opts bad = {.dflt = {cert_old.crt, cert_old.key}};
	struct tls_opts good = {.dflt = {cert_b.crt, cert_b.key}};
	struct tls_conn *t = NULL, *early = NULL;
	struct cli *c = NULL, *ce = NULL;
	struct tls_cert_info info[2];
	struct tls_stats st;
	char err[512] = "";
	char *p;
	long n;

	if (!ctx)
		return;
	ASSERT_EQ(tls_ctx_reload(ctx, &bad, err, sizeof(err)), -EINVAL, "expired refused");
	ASSERT_HAS_STR(err, "expired", "message");
	ASSERT_EQ(connect(ctx, &co, NULL, NULL, &t, &c), TLS_HS_DONE, "still served");
	ASSERT_TRUE(served_name(c, "a.test"), "old certificate kept");
	cli_free(c);
	tls_conn_free(t);
	t = NULL;
	c = NULL;

	/* a handshake in flight across the reload */
	early = tls_conn_new(ctx, clock_mono_ns());
	ce = cli_new(&co, NULL, NULL);
	if (!ASSERT_OK_PTR(early, "early conn"))
		goto out;
	cli_step(ce);
	n = BIO_get_mem_data(ce->wb, &p);
	tls_conn_feed(early, p, (size_t)n);
	(void)BIO_reset(ce->wb);
	ASSERT_OK(tls_ctx_reload(ctx, &good, err, sizeof(err)), err);
	ASSERT_EQ(pump(early, ce, 1 << 20), TLS_HS_DONE, "early handshake finishes");
	ASSERT_TRUE(served_name(ce, "a.test"), "with the certificate it started with");
	ASSERT_EQ(connect(ctx, &co, NULL, NULL, &t, &c), TLS_HS_DONE, "new connection");
	ASSERT_TRUE(served_name(c, "b.test"), "gets the new certificate");
	ASSERT_EQ(tls_ctx_certs(ctx, info, 2), 1, "one certificate now");
	ASSERT_STREQ(info[0].name, "b.test", "info follows the reload");
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.reloads, 1, "reload counted");
	ASSERT_EQ(st.reload_failures, 1, "refused reload counted");
out:
	cli_free(c);
	cli_free(ce);
	tls_conn_free(t);
	tls_conn_free(early);
	tls_ctx_free(ctx);
}

static void subtest_mtls(void)
{
	struct tls_ctx *ctx = server(ca.crt, 0);
	struct cli_opts with = {.cert = &client};
	struct cli_opts without = {0};
	struct tls_conn *t = NULL;
	struct cli *c = NULL;
	SSL_SESSION *sess = NULL;
	uint8_t fp[TLS_SHA256_LEN];
	char hex[65], got[65];
	struct tls_stats st;

	if (!ctx)
		return;
	ASSERT_TRUE(tls_ctx_mtls(ctx), "client certificates asked for");
	if (!ASSERT_OK(tlscert_sha256_hex(client.crt, hex), "openssl fingerprint"))
		goto out;
	ASSERT_EQ(connect(ctx, &with, "a.test", NULL, &t, &c), TLS_HS_DONE, "with a certificate");
	if (ASSERT_OK(tls_conn_peer_sha256(t, fp), "fingerprint")) {
		for (int i = 0; i < TLS_SHA256_LEN; i++)
			snprintf(got + 2 * i, 3, "%02x", fp[i]);
		ASSERT_STREQ(got, hex, "same as openssl x509 -fingerprint -sha256");
	}
	sess = SSL_get1_session(c->ssl);
	cli_free(c);
	tls_conn_free(t);

	ASSERT_EQ(connect(ctx, &with, "a.test", sess, &t, &c), TLS_HS_DONE, "resumed");
	ASSERT_TRUE(tls_conn_resumed(t), "resumed");
	ASSERT_OK(tls_conn_peer_sha256(t, fp), "the session keeps the client certificate");
	cli_free(c);
	tls_conn_free(t);

	ASSERT_EQ(connect(ctx, &without, "a.test", NULL, &t, &c), TLS_HS_DONE, "without one");
	ASSERT_EQ(tls_conn_peer_sha256(t, fp), -ENOENT, "no fingerprint (API key instead)");
	tls_ctx_stats(ctx, &st);
	ASSERT_EQ(st.mtls_verified, 2, "verified client certificates counted");
out:
	SSL_SESSION_free(sess);
	cli_free(c);
	tls_conn_free(t);
	tls_ctx_free(ctx);
}

void test_tls(void)
{
	if (!ASSERT_OK(make_certs(), "openssl req makes the test certificates"))
		return;
	if (test__start_subtest("handshake_13"))
		subtest_handshake_13();
	if (test__start_subtest("handshake_12"))
		subtest_handshake_12();
	if (test__start_subtest("refused"))
		subtest_refused();
	if (test__start_subtest("no_alpn"))
		subtest_no_alpn();
	if (test__start_subtest("sni"))
		subtest_sni();
	if (test__start_subtest("resume_13"))
		subtest_resume_13();
	if (test__start_subtest("resume_12"))
		subtest_resume_12();
	if (test__start_subtest("plaintext_http"))
		subtest_plaintext_http();
	if (test__start_subtest("timeout_eof"))
		subtest_timeout_eof();
	if (test__start_subtest("split_records"))
		subtest_split_records();
	if (test__start_subtest("burst"))
		subtest_burst();
	if (test__start_subtest("reuse"))
		subtest_reuse();
	if (test__start_subtest("trim"))
		subtest_trim();
	if (test__start_subtest("cap"))
		subtest_cap();
	if (test__start_subtest("load_errors"))
		subtest_load_errors();
	if (test__start_subtest("reload"))
		subtest_reload();
	if (test__start_subtest("mtls"))
		subtest_mtls();
}
