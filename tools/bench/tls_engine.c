// SPDX-License-Identifier: MIT
/* tls_engine.c -- what TLS costs the ingress thread per request, without sockets or noise
 *
 * One established TLS 1.3 connection (tls_conn, the engine the loop drives) and an OpenSSL
 * client on memory BIOs. A round is one keep-alive request of the durable POST size (the
 * body tools/bench/tls posts, with its headers: about 420 bytes) sealed by the client, then
 * on the server side exactly what loop.c does with it: tls_conn_feed() of the ciphertext,
 * tls_conn_plain() + consume, tls_conn_write() of a 202 answer (about 180 bytes),
 * tls_conn_take_output() into the send buffer, and the send buffer emptied as on_send()
 * empties it. Only the server side is timed (the client's records are made beforehand, a
 * batch at a time, and its answers are not read), in the thread's CPU time. The anchor is the same
 * round for plain HTTP: the copy of the request into the connection and of the answer into the send
 * buffer. Reported: the median round of ns per request (TLS, plain, the difference), and
 * what AES-128-GCM alone costs for those bytes (EVP, one context, the same sizes).
 *
 * With -c CONNS the rounds go to CONNS established connections in turn (request i to
 * connection i % CONNS), as the loop serves the bench's 64 keep-alive connections: each
 * connection's OpenSSL state, record buffers and plaintext buffer are then out of the cache
 * more often than with one connection, and the plain anchor copies into as many connection
 * buffers.
 *
 * Usage: tls_engine [-n REQUESTS] [-r ROUNDS] [-c CONNS]   (defaults 200000, 7, 1)
 */
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "ingress/response.h"
#include "ingress/tls.h"
#include "lib/clock.h"
#include "tlscerts.h"

#define BATCH	  1024
#define CONNS_MAX 256

static const char body[] =
    "{\"type\":\"lead.created\",\"idempotency_key\":\"bench-0000000001\",\"priority\":\"normal\","
    "\"payload\":{\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\",\"source\":"
    "\"webform\",\"utm\":\"spring-campaign-2026\",\"score\":42}}";
static const char answer_body[] = "{\"id\":\"0000000000000001\",\"class\":\"normal\","
				  "\"demoted\":false}\n";

/* CPU time of this thread: a preemption on the shared machine does not count */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char request[1024], answer[512];
static size_t request_len, answer_len;

static void die(const char *what)
{
	fprintf(stderr, "tls_engine: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

struct cli {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rb, *wb;
};

/* Handshake t with a fresh client; the client's post-handshake reads (tickets) done. */
static void connect_pair(struct tls_ctx *ctx, const char *crt, struct tls_conn **tp, struct cli *c)
{
	struct tls_conn *t = tls_conn_new(ctx, clock_mono_ns());

	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!t || !c->ctx || SSL_CTX_load_verify_file(c->ctx, crt) != 1)
		die("client setup");
	c->ssl = tlscert_mem_client(c->ctx, &c->rb, &c->wb);
	if (!c->ssl)
		die("client SSL");
	SSL_set_tlsext_host_name(c->ssl, "bench.test");
	for (int i = 0; i < 100; i++) {
		char *p, buf[4096];
		const char *o;
		size_t n;
		long k;

		(void)SSL_do_handshake(c->ssl);
		while (SSL_is_init_finished(c->ssl) && SSL_read_ex(c->ssl, buf, sizeof(buf), &n))
			;
		k = BIO_get_mem_data(c->wb, &p);
		if (k > 0)
			tls_conn_feed(t, p, (size_t)k);
		(void)BIO_reset(c->wb);
		n = tls_conn_output(t, &o);
		if (n) {
			BIO_write(c->rb, o, (int)n);
			tls_conn_output_consume(t, n);
		}
		if (tls_conn_state(t) == TLS_HS_DONE && SSL_is_init_finished(c->ssl) && !k && !n)
			break;
	}
	if (tls_conn_state(t) != TLS_HS_DONE || !SSL_is_init_finished(c->ssl))
		die("handshake did not finish");
	*tp = t;
}

/* One server connection as the bench drives it: its engine, its client, the ciphertext of
 * the client's next requests, the connection's own buffers. */
struct bconn {
	struct tls_conn *t;
	struct cli c;
	char *cipher; /* per requests sealed by the client, one record each, back to back */
	size_t rec_len;
	struct obuf sending;	/* TLS: the send buffer */
	struct obuf out, psend; /* plain: the connection's output and send buffers */
	char conn_buf[1024];	/* the connection's receive side */
};

/* per requests sealed by b's client into b->cipher. */
static void seal_batch(struct bconn *b, unsigned per)
{
	size_t w;
	char *p;
	long k;

	for (unsigned i = 0; i < per; i++)
		if (!SSL_write_ex(b->c.ssl, request, request_len, &w))
			die("client SSL_write");
	k = BIO_get_mem_data(b->c.wb, &p);
	if (k <= 0 || (size_t)k > (size_t)per * 1024)
		die("client output");
	memcpy(b->cipher, p, (size_t)k);
	(void)BIO_reset(b->c.wb);
	b->rec_len = (size_t)k / per;
}

/* The server side of per requests on each of nb connections, taking turns; ns spent. */
__attribute__((noinline)) static uint64_t serve_tls(struct bconn *bs, unsigned nb, unsigned per)
{
	uint64_t t0 = cpu_ns();

	for (unsigned i = 0; i < per; i++)
		for (unsigned j = 0; j < nb; j++) {
			struct bconn *b = &bs[j];
			const char *p;
			size_t n;

			if (tls_conn_feed(b->t, b->cipher + (size_t)i * b->rec_len, b->rec_len) !=
			    TLS_HS_DONE)
				die("feed");
			n = tls_conn_plain(b->t, &p);
			if (n != request_len)
				die("plaintext length");
			memcpy(b->conn_buf, p, n); /* conn_on_data's parse reads it where it is */
			tls_conn_plain_consume(b->t, n);
			if (tls_conn_write(b->t, answer, answer_len) ||
			    tls_conn_take_output(b->t, &b->sending))
				die("write");
			b->sending.len =
			    0; /* on_send: sent (the buffer stays for the next answer) */
		}
	return cpu_ns() - t0;
}

__attribute__((noinline)) static uint64_t serve_plain(struct bconn *bs, unsigned nb, unsigned per)
{
	uint64_t t0 = cpu_ns();

	for (unsigned i = 0; i < per; i++)
		for (unsigned j = 0; j < nb; j++) {
			struct bconn *b = &bs[j];
			struct obuf s;

			memcpy(b->conn_buf, request, request_len);
			if (obuf_append(&b->out, answer, answer_len))
				die("append");
			s = b->psend; /* start_send's swap */
			b->psend = b->out;
			b->out = s;
			b->out.len = 0;
			b->psend.len = 0;
		}
	return cpu_ns() - t0;
}

/* AES-128-GCM of one request's and one answer's bytes (seal and open), ns per request. */
static double gcm_only(unsigned reps)
{
	static const unsigned char key[16], iv[12];
	unsigned char buf[1024], tag[16];
	EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
	uint64_t t0;
	int n;

	if (!e || !EVP_EncryptInit_ex(e, EVP_aes_128_gcm(), NULL, key, iv))
		die("gcm");
	memcpy(buf, request, request_len);
	t0 = cpu_ns();
	for (unsigned i = 0; i < reps; i++) {
		/* the same IV is fine for timing; an AAD of a record header each */
		if (!EVP_EncryptInit_ex(e, NULL, NULL, NULL, iv) ||
		    !EVP_EncryptUpdate(e, NULL, &n, buf, 5) ||
		    !EVP_EncryptUpdate(e, buf, &n, buf, (int)request_len + 1) ||
		    !EVP_EncryptFinal_ex(e, buf, &n) ||
		    !EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_GCM_GET_TAG, 16, tag) ||
		    !EVP_EncryptInit_ex(e, NULL, NULL, NULL, iv) ||
		    !EVP_EncryptUpdate(e, NULL, &n, buf, 5) ||
		    !EVP_EncryptUpdate(e, buf, &n, buf, (int)answer_len + 1) ||
		    !EVP_EncryptFinal_ex(e, buf, &n) ||
		    !EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_GCM_GET_TAG, 16, tag))
			die("gcm");
	}
	t0 = cpu_ns() - t0;
	EVP_CIPHER_CTX_free(e);
	return (double)t0 / reps;
}

int main(int argc, char **argv)
{
	unsigned long n_req = 200000, rounds = 7, nconns = 1;
	char dir[] = "/tmp/tls_engine.XXXXXX", err[512] = "", cmd[600];
	double tls_ns[64], plain_ns[64], diff_ns[64];
	struct tlscert cert;
	struct tls_ctx *ctx;
	struct bconn *bs;
	unsigned per;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:c:")) != -1) {
		if (opt == 'n')
			n_req = strtoul(optarg, NULL, 10);
		else if (opt == 'r')
			rounds = strtoul(optarg, NULL, 10);
		else if (opt == 'c')
			nconns = strtoul(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: tls_engine [-n REQUESTS] [-r ROUNDS] [-c CONNS]\n");
			return 2;
		}
	}
	if (!n_req || !rounds || rounds > 64 || !nconns || nconns > CONNS_MAX) {
		fprintf(stderr, "tls_engine: -n must be > 0, -r 1..64, -c 1..%d\n", CONNS_MAX);
		return 2;
	}
	per = BATCH / nconns ? BATCH / (unsigned)nconns : 1; /* requests per connection and batch */
	request_len =
	    (size_t)snprintf(request, sizeof(request),
			     "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"
			     "Authorization: Bearer bench-key\r\n"
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     sizeof(body) - 1, body);
	answer_len =
	    (size_t)snprintf(answer, sizeof(answer),
			     "HTTP/1.1 202 Accepted\r\nDate: Sat, 05 Dec 2026 12:00:00 GMT\r\n"
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     sizeof(answer_body) - 1, answer_body);
	if (!mkdtemp(dir) || tlscert_self(dir, "bench", "bench.test", 30, &cert))
		die("certificate (openssl on PATH?)");
	ctx = tls_ctx_new(&(struct tls_opts){.dflt = {cert.crt, cert.key}}, err, sizeof(err));
	if (!ctx)
		die(err);
	bs = calloc(nconns, sizeof(*bs));
	if (!bs)
		die("out of memory");
	for (unsigned long j = 0; j < nconns; j++) {
		connect_pair(ctx, cert.crt, &bs[j].t, &bs[j].c);
		bs[j].cipher = malloc((size_t)per * 1024);
		if (!bs[j].cipher)
			die("out of memory");
	}

	printf("TLS engine per request (%zu-byte request, %zu-byte answer, %lu requests x %lu "
	       "rounds, %lu connection%s, cipher %s):\n",
	       request_len, answer_len, n_req, rounds, nconns, nconns == 1 ? "" : "s",
	       SSL_get_cipher_name(bs[0].c.ssl));
	for (unsigned long r = 0; r < rounds; r++) {
		uint64_t ts = 0, ps = 0;
		unsigned long done = 0;

		while (done < n_req) {
			for (unsigned long j = 0; j < nconns; j++)
				seal_batch(&bs[j], per);
			ts += serve_tls(bs, (unsigned)nconns, per);
			ps += serve_plain(bs, (unsigned)nconns, per);
			done += (unsigned long)per * nconns;
		}
		tls_ns[r] = (double)ts / done;
		plain_ns[r] = (double)ps / done;
		diff_ns[r] = tls_ns[r] - plain_ns[r];
	}
	printf("  tls %8.0f ns   plain %6.0f ns   TLS adds %6.0f ns per request (medians)\n",
	       bench_median(tls_ns, rounds), bench_median(plain_ns, rounds),
	       bench_median(diff_ns, rounds));
	printf("  of which AES-128-GCM itself (EVP, %zu + %zu bytes sealed): %.0f ns\n",
	       request_len + 1, answer_len + 1, gcm_only(1000000));

	for (unsigned long j = 0; j < nconns; j++) {
		tls_conn_free(bs[j].t);
		SSL_free(bs[j].c.ssl);
		SSL_CTX_free(bs[j].c.ctx);
		free(bs[j].cipher);
		obuf_fini(&bs[j].sending);
		obuf_fini(&bs[j].out);
		obuf_fini(&bs[j].psend);
	}
	free(bs);
	tls_ctx_free(ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? 1 : 0;
}
