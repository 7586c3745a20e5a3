// SPDX-License-Identifier: MIT
/* test_tls_ingress.c -- the real sluiced with --tls-listen, against curl, openssl s_client
 * and an OpenSSL client of our own: TLS 1.2/1.3, ALPN, SNI, resumption, certificates refused
 * at load, plain HTTP to the TLS port, slow handshakes, reload under load, mTLS tenants, the
 * HTTP suite's smuggling and limit cases over TLS, a pipelined burst answered in order, and
 * idle connections giving their record buffers back, and certificate files replaced the way
 * kubelet updates a Secret volume picked up by --tls-watch-s.
 *
 * Certificates are made by `openssl req` in the test's scratch directory (tlscerts.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "lib/array_size.h"
#include "test_progs.h"
#include "tlscerts.h"

#define TENANTS                                                                                    \
	"[acme]\nkey = " HARNESS_KEY_A_HEX "\n"                                                    \
	"[beta]\nkey = " HARNESS_KEY_B_HEX "\n"

#define EVENT(key) "{\"type\":\"lead.created\",\"idempotency_key\":\"" key "\",\"payload\":{}}"

static struct tlscert cert_a, cert_b, cert_old, ca, client_acme, client_other;
static char trust[600]; /* a.crt + b.crt: what our client and curl trust */
static char resp[1 << 16];

static int cat_files(const char *out, const char *a, const char *b)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", a, b, out);
	return system(cmd) ? -EIO : 0;
}

static int make_certs(void)
{
	const char *d = test__tmpdir();

	snprintf(trust, sizeof(trust), "%s/trust.pem", d);
	if (tlscert_self(d, "a", "a.test", 30, &cert_a) ||
	    tlscert_self(d, "b", "b.test", 30, &cert_b) ||
	    tlscert_self(d, "old", "a.test", -1, &cert_old) ||
	    tlscert_ca(d, "ca", "Sluice Test CA", &ca) ||
	    tlscert_issue(d, "acme", "client-acme", &ca, 10, &client_acme) ||
	    tlscert_issue(d, "other", "client-other", &ca, 10, &client_other))
		return -EIO;
	return cat_files(trust, cert_a.crt, cert_b.crt);
}

static int start(struct sluiced_proc *p, const char *tenants, const char *const *more)
{
	char sni[1300];
	const char *args[40] = {"--threads",	"1",	       "--journal-dir",	     "@journal",
				"--tls-listen", "127.0.0.1:0", "--tls-cert",	     cert_a.crt,
				"--tls-key",	cert_a.key,    "--tls-sni",	     sni,
				"--max-body",	"512",	       "--max-header-bytes", "1024"};
	int n = 16;

	snprintf(sni, sizeof(sni), "%s:%s", cert_b.crt, cert_b.key);
	for (; more && *more && n < 38; more++)
		args[n++] = *more;
	args[n] = NULL;
	return sluiced_start(p, tenants, args);
}

/* ---- an OpenSSL client over a blocking socket ------------------------------------------- */

struct tcli {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	size_t len;
	char buf[1 << 15];
};

static void tcli_close(struct tcli *c)
{
	if (c->ssl)
		SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	if (c->fd > 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
}

/* Connect and handshake (TLS 1.3 unless max says otherwise); 0 or -EIO. */
static int tcli_open(struct tcli *c, int port, const char *sni, const struct tlscert *cert)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};

	memset(c, 0, sizeof(*c));
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)))
		return -errno;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_file(c->ctx, trust);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_alpn_protos(c->ctx, (const unsigned char *)"\x08http/1.1", 9);
	if (cert && (SSL_CTX_use_certificate_chain_file(c->ctx, cert->crt) != 1 ||
		     SSL_CTX_use_PrivateKey_file(c->ctx, cert->key, SSL_FILETYPE_PEM) != 1))
		return -EIO;
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	if (sni)
		SSL_set_tlsext_host_name(c->ssl, sni);
	if (SSL_connect(c->ssl) != 1) {
		ERR_print_errors_fp(stdout);
		return -EIO;
	}
	return 0;
}

/* Read one response (head + Content-Length body) into out; bytes after it stay for the
 * next. Its status, 0 when the connection ended first. */
static int tcli_read(struct tcli *c, char *out, size_t cap)
{
	size_t need = 0;
	char *end, *cl;

	for (;;) {
		int n;

		c->buf[c->len] = '\0';
		end = strstr(c->buf, "\r\n\r\n");
		if (end && !need) {
			cl = strcasestr(c->buf, "\r\nContent-Length:");
			need = (size_t)(end + 4 - c->buf) +
			       (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (need && c->len >= need)
			break;
		n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - 1 - c->len));
		if (n <= 0) {
			printf("SSL_read: %d (%s) after %zu bytes\n", SSL_get_error(c->ssl, n),
			       strerror(errno), c->len);
			ERR_print_errors_fp(stdout);
			return 0;
		}
		c->len += (size_t)n;
	}
	snprintf(out, cap, "%.*s", (int)need, c->buf);
	memmove(c->buf, c->buf + need, c->len - need);
	c->len -= need;
	return atoi(out + 9);
}

/* Send req, read one response into out (tcli_read). */
static int tcli_request(struct tcli *c, const char *req, char *out, size_t cap)
{
	if (SSL_write(c->ssl, req, (int)strlen(req)) != (int)strlen(req)) {
		printf("SSL_write failed: %s\n", strerror(errno));
		ERR_print_errors_fp(stdout);
		return -EIO;
	}
	return tcli_read(c, out, cap);
}

static int tls_once(int port, const char *req, char *out, size_t cap)
{
	struct tcli c;
	int st = tcli_open(&c, port, "a.test", NULL) ? -EIO : tcli_request(&c, req, out, cap);

	tcli_close(&c);
	return st;
}

/* Output of a shell command into out; its exit status. */
static int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int sh(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[4096];
	size_t n = 0;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), f))
		n += strlen(out + n);
	out[n] = '\0';
	return pclose(f);
}

static char out[1 << 16];

/* ---- subtests ----------------------------------------------------------------------------- */

static void subtest_s_client(void)
{
	struct sluiced_proc p = {0};
	char sess[600];

	if (!ASSERT_OK(start(&p, TENANTS, NULL), "start"))
		return;
	snprintf(sess, sizeof(sess), "%s/sess.pem", p.dir);
#define S_CLIENT                                                                                   \
	"printf 'GET /healthz HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n' | "   \
	"openssl s_client -connect 127.0.0.1:%d -CAfile %s -ign_eof -alpn http/1.1 "
	sh(out, sizeof(out), S_CLIENT "-tls1_3 -servername a.test 2>&1", p.tls_port, trust);
	ASSERT_HAS_STR(out, "Protocol  : TLSv1.3", "TLS 1.3");
	ASSERT_HAS_STR(out, "ALPN protocol: http/1.1", "ALPN");
	ASSERT_HAS_STR(out, "Verify return code: 0 (ok)", "a.test verifies");
	ASSERT_HAS_STR(out, "subject=CN = a.test", "default certificate");
	ASSERT_HAS_STR(out, "HTTP/1.1 200 OK", "answered over TLS 1.3");
	sh(out, sizeof(out), S_CLIENT "-tls1_2 -servername b.test 2>&1", p.tls_port, trust);
	ASSERT_HAS_STR(out, "Protocol  : TLSv1.2", "TLS 1.2");
	ASSERT_HAS_STR(out, "Cipher is ECDHE-", "forward-secret cipher");
	ASSERT_HAS_STR(out, "subject=CN = b.test", "SNI picks b.test");
	ASSERT_HAS_STR(out, "HTTP/1.1 200 OK", "answered over TLS 1.2");
	sh(out, sizeof(out), S_CLIENT "-tls1_1 2>&1", p.tls_port, trust);
	ASSERT_TRUE(!strstr(out, "HTTP/1.1 200"), "TLS 1.1 refused");
	/* resumption, both protocols */
	for (int v = 0; v < 2; v++) {
		const char *flag = v ? "-tls1_2" : "-tls1_3";

		sh(out, sizeof(out), S_CLIENT "%s -sess_out %s 2>&1", p.tls_port, trust, flag,
		   sess);
		ASSERT_HAS_STR(out, "New, TLSv1.", "first is a full handshake");
		sh(out, sizeof(out), S_CLIENT "%s -sess_in %s 2>&1", p.tls_port, trust, flag, sess);
		ASSERT_HAS_STR(out, "Reused, TLSv1.", v ? "TLS 1.2 resumed" : "TLS 1.3 resumed");
		ASSERT_HAS_STR(out, "HTTP/1.1 200 OK", "answered after resumption");
	}
	http_admin(&p, "/metrics", resp, sizeof(resp));
	ASSERT_HAS_STR(resp, "sluice_tls_resumed_total 2", "resumptions counted");
	ASSERT_HAS_STR(resp, "sluice_tls_handshake_failures_total{reason=\"version\"} 1",
		       "TLS 1.1 counted");
	ASSERT_HAS_STR(resp, "sluice_tls_cert_expiry_timestamp_seconds{cert=\"b.test\"",
		       "expiry of the SNI certificate");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_curl(void)
{
	struct sluiced_proc p = {0};

	if (!ASSERT_OK(start(&p, TENANTS, NULL), "start"))
		return;
	sh(out, sizeof(out),
	   "curl -sS --cacert %s --resolve a.test:%d:127.0.0.1 -H 'Authorization: Bearer test' "
	   "-H 'Content-Type: application/json' -d '" EVENT(
	       "c1") "' -w '\\n%%{http_code} "
		     "%%{http_version}\\n' https://a.test:%d/v1/events 2>&1",
	   trust, p.tls_port, p.tls_port);
	ASSERT_HAS_STR(out, "\n202 1.1", "202 over HTTPS");
	sh(out, sizeof(out),
	   "curl -sS --cacert %s --resolve b.test:%d:127.0.0.1 -w '\\n%%{http_code}\\n' "
	   "https://b.test:%d/healthz 2>&1",
	   trust, p.tls_port, p.tls_port);
	ASSERT_HAS_STR(out, "\n200", "SNI name verified by curl");
	/* plain HTTP to the TLS port: a clear 400 and a close */
	ASSERT_EQ(
	    http_once(p.tls_port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", resp, sizeof(resp)),
	    400, "plain HTTP gets 400");
	ASSERT_HAS_STR(resp, "\"error\":\"tls_required\"", "says TLS");
	ASSERT_HAS_STR(resp, "Connection: close", "and closes");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* A client that connects and says nothing, one that stops in the middle of its hello. */
static void subtest_slow_handshake(void)
{
	const char *more[] = {"--tls-handshake-timeout-ms", "300", NULL};
	struct sluiced_proc p = {0};
	struct http_client silent, partial;

	if (!ASSERT_OK(start(&p, TENANTS, more), "start"))
		return;
	if (!ASSERT_OK(http_open(&silent, p.tls_port), "connect") ||
	    !ASSERT_OK(http_open(&partial, p.tls_port), "connect"))
		goto out;
	http_send(&partial, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
	ASSERT_TRUE(http_closed(&silent, 5000), "silent client closed");
	ASSERT_TRUE(http_closed(&partial, 5000), "partial hello closed");
	http_admin(&p, "/metrics", resp, sizeof(resp));
	ASSERT_HAS_STR(resp, "sluice_tls_handshake_failures_total{reason=\"timeout\"} 2",
		       "timeouts counted");
	http_close(&silent);
	http_close(&partial);
out:
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* A source starting handshakes faster than --tls-handshake-rate goes on the deny list: its
 * further connections, TLS or plain, are refused at accept. */
static void subtest_handshake_rate(void)
{
	const char *more[] = {"--tls-handshake-rate", "3", "--deny-secs", "60", NULL};
	struct sluiced_proc p = {0};
	int done = 0;

	signal(SIGPIPE, SIG_IGN); /* refused connections are closed under the client's writes */
	if (!ASSERT_OK(start(&p, TENANTS, more), "start"))
		return;
	for (int i = 0; i < 10; i++) {
		struct tcli c;

		done += tcli_open(&c, p.tls_port, "a.test", NULL) == 0;
		tcli_close(&c);
	}
	ASSERT_GE(done, 3, "the burst passes");
	ASSERT_LT(done, 10, "then the source is refused");
	ASSERT_LT(http_once(p.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", resp, sizeof(resp)),
		  200, "denied on the plain port too");
	/* /metrics cannot be asked from the denied address: read the log instead */
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void expect_refused_at_load(const struct tlscert *c, const char *key, const char *want)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "%s/sluiced --listen 127.0.0.1:0 --admin-listen off --tls-listen 127.0.0.1:0 "
		 "--tls-cert %s "
		 "--tls-key %s 2>&1",
		 test__outdir(), c->crt, key);
	ASSERT_NEQ(sh(out, sizeof(out), "%s", cmd), 0, "does not start");
	ASSERT_HAS_STR(out, want, want);
}

static void subtest_refused_at_load(void)
{
	expect_refused_at_load(&cert_old, cert_old.key, "certificate \"a.test\" expired on");
	expect_refused_at_load(&cert_a, cert_b.key, "the key does not match the certificate");
}

/* One worker posting events over TLS (a fresh connection every 10) while the main thread
 * reloads the certificate again and again, some reloads with an expired one. */
struct load {
	int port, n, ok, sent;
	int reloads; /* atomic: the main thread's SIGHUPs so far */
	bool done;
};

static void *poster(void *arg)
{
	struct load *l = arg;
	struct tcli c = {0};
	char req[512], body[128], r[4096] = "";
	sigset_t chld;

	/* the main thread's system() children end with SIGCHLD: not this thread's business */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, NULL);

	/* at least n requests, and on until nine reloads happened under them, however fast */
	for (int i = 0; i < l->n || __atomic_load_n(&l->reloads, __ATOMIC_ACQUIRE) < 9; i++) {
		l->sent++;
		if (i % 10 == 0) {
			tcli_close(&c);
			if (tcli_open(&c, l->port, "a.test", NULL))
				continue;
		}
		snprintf(body, sizeof(body),
			 "{\"type\":\"lead.created\",\"idempotency_key\":\"r%d\",\"payload\":{}}",
			 i);
		http_event_request(req, sizeof(req), "test", body);
		if (tcli_request(&c, req, r, sizeof(r)) == 202) {
			l->ok++;
			continue;
		}
		printf("request %d: %.200s\n", i, r);
		tcli_close(&c);
		tcli_open(&c, l->port, "a.test", NULL);
	}
	tcli_close(&c);
	__atomic_store_n(&l->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static int install(const char *dir, const struct tlscert *c)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cp '%s' '%s/cur.crt.tmp' && cp '%s' '%s/cur.key.tmp' && "
		 "mv '%s/cur.key.tmp' '%s/cur.key' && mv '%s/cur.crt.tmp' '%s/cur.crt'",
		 c->crt, dir, c->key, dir, dir, dir, dir, dir);
	return system(cmd) ? -EIO : 0;
}

static void subtest_reload_under_load(void)
{
	char crt[600], key[600];
	const char *args[] = {"--threads",
			      "1",
			      "--journal-dir",
			      "@journal",
			      "--tls-listen",
			      "127.0.0.1:0",
			      "--tls-cert",
			      crt,
			      "--tls-key",
			      key,
			      NULL};
	struct sluiced_proc p = {0};
	struct load l = {.n = 300};
	pthread_t th;
	char *log;
	int reloads = 0;

	snprintf(crt, sizeof(crt), "%s/cur.crt", test__tmpdir());
	snprintf(key, sizeof(key), "%s/cur.key", test__tmpdir());
	if (!ASSERT_OK(install(test__tmpdir(), &cert_a), "install a") ||
	    !ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	l.port = p.tls_port;
	if (!ASSERT_OK(pthread_create(&th, NULL, poster, &l), "thread"))
		goto out;
	while (!__atomic_load_n(&l.done, __ATOMIC_ACQUIRE) && reloads < 1000) {
		/* every third reload is an expired certificate: refused, the old one stays */
		install(test__tmpdir(), reloads % 3 == 2 ? &cert_old
					: reloads % 3	 ? &cert_b
							 : &cert_a);
		kill(p.pid, SIGHUP);
		__atomic_store_n(&l.reloads, ++reloads, __ATOMIC_RELEASE);
		usleep(20000);
	}
	pthread_join(th, NULL);
	ASSERT_GE(l.sent, l.n, "requests sent");
	ASSERT_EQ(l.ok, l.sent, "every request answered 202 across the reloads");
	ASSERT_GE(reloads, 9, "reloads happened meanwhile");
	ASSERT_TRUE(sluiced_log_wait(&p, "tls: certificates reloaded", 2000), "reloaded");
	ASSERT_TRUE(sluiced_log_wait(&p, "tls: reload refused", 2000), "expired refused");
	log = sluiced_log(&p);
	ASSERT_TRUE(log && !strstr(log, "level=error msg=\"loop"), "no loop errors");
	free(log);
out:
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_mtls(void)
{
	char fp[65], tenants[1024], caarg[600];
	const char *more[] = {"--tls-client-ca", caarg, NULL};
	struct sluiced_proc p = {0};
	struct tcli c;
	char req[1024];

	snprintf(caarg, sizeof(caarg), "%s", ca.crt);
	if (!ASSERT_OK(tlscert_sha256_hex(client_acme.crt, fp), "fingerprint"))
		return;
	/* acme by key or certificate; beta by key only; client-other is no tenant's */
	snprintf(tenants, sizeof(tenants), "[acme]\nkey = %s\ncert_sha256 = %s\n[beta]\nkey = %s\n",
		 HARNESS_KEY_A_HEX, fp, HARNESS_KEY_B_HEX);
	if (!ASSERT_OK(start(&p, tenants, more), "start"))
		return;
	static const struct {
		const struct tlscert *cert;
		const char *key; /* NULL: no API key */
		int status;
		const char *code;
	} cases[] = {
	    {&client_acme, NULL, 202, NULL},
	    {&client_acme, "test", 202, NULL},
	    {&client_acme, "hello", 401, "key_cert_mismatch"},
	    {NULL, "hello", 202, NULL},
	    {&client_other, NULL, 401, "unknown_client_cert"},
	    {&client_other, "test", 401, "key_cert_mismatch"},
	    {NULL, NULL, 401, "missing_api_key"},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		char name[64], body[128];

		snprintf(name, sizeof(name), "case %u", i);
		snprintf(body, sizeof(body),
			 "{\"type\":\"lead.created\",\"idempotency_key\":\"m%u\",\"payload\":{}}",
			 i);
		if (cases[i].key)
			http_event_request(req, sizeof(req), cases[i].key, body);
		else
			snprintf(req, sizeof(req),
				 "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: "
				 "application/json\r\nContent-Length: %zu\r\n\r\n%s",
				 strlen(body), body);
		if (!ASSERT_OK(tcli_open(&c, p.tls_port, "a.test", cases[i].cert), name)) {
			tcli_close(&c);
			continue;
		}
		ASSERT_EQ(tcli_request(&c, req, resp, sizeof(resp)), cases[i].status, name);
		if (cases[i].code)
			ASSERT_HAS_STR(resp, cases[i].code, name);
		tcli_close(&c);
	}
	/* a certificate from another CA is refused in the handshake (with TLS 1.3 the client
	 * learns it at its first read: the server checks after the client's Finished) */
	http_event_request(req, sizeof(req), "test", EVENT("foreign"));
	ASSERT_TRUE(tcli_open(&c, p.tls_port, "a.test", &cert_b) ||
			tcli_request(&c, req, resp, sizeof(resp)) <= 0,
		    "foreign client cert refused");
	tcli_close(&c);
	http_admin(&p, "/metrics", resp, sizeof(resp));
	ASSERT_HAS_STR(resp, "sluice_tls_handshake_failures_total{reason=\"client_cert\"} 1",
		       "counted as client_cert");
	/* curl with the client certificate alone */
	sh(out, sizeof(out),
	   "curl -sS --cacert %s --cert %s --key %s --resolve a.test:%d:127.0.0.1 -H "
	   "'Content-Type: application/json' -d '" EVENT("mc") "' -w '\\n%%{http_code}\\n' "
							       "https://a.test:%d/v1/events 2>&1",
	   trust, client_acme.crt, client_acme.key, p.tls_port, p.tls_port);
	ASSERT_HAS_STR(out, "\n202", "curl with a client certificate");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* test_ingress_api's smuggling and limit cases, over TLS. */
static void subtest_http_cases(void)
{
	struct sluiced_proc p = {0};
	char big[2048];

	if (!ASSERT_OK(start(&p, TENANTS, NULL), "start"))
		return;
#define EXPECT(req, status, part, name)                                                            \
	do {                                                                                       \
		ASSERT_EQ(tls_once(p.tls_port, req, resp, sizeof(resp)), status, name);            \
		ASSERT_HAS_STR(resp, part, name);                                                  \
	} while (0)
	EXPECT("POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	       400, "Content-Length and Transfer-Encoding", "CL+TE");
	ASSERT_HAS_STR(resp, "Connection: close", "smuggling closes");
	EXPECT("POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
	       "\r\n{}",
	       400, "\"error\"", "duplicate Content-Length");
	EXPECT("GET /healthz HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400,
	       "obsolete line folding", "obs-fold");
	snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %01100d\r\n\r\n", 0);
	EXPECT(big, 431, "header_too_large", "431");
	snprintf(big, sizeof(big),
		 "POST /v1/events HTTP/1.1\r\nHost: t\r\nX-Api-Key: test\r\nContent-Type: "
		 "application/json\r\nContent-Length: 600\r\n\r\n%0600d",
		 0);
	EXPECT(big, 413, "body_too_large", "413");
	EXPECT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "http2_not_supported", "h2 preface");
	EXPECT("GET /healthz\r\n", 400, "http09_not_supported", "0.9");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* A pipelined burst over TLS, as one record and as one record per request, is answered in
 * order; the durable POSTs in it hold the requests behind them until they are written. */
static void subtest_pipelined(void)
{
	struct sluiced_proc p = {0};
	static char burst[8192];
	char reqs[5][512];
	const int want[5] = {200, 202, 404, 202, 200};
	struct tcli c;

	if (!ASSERT_OK(start(&p, TENANTS, NULL), "start"))
		return;
	if (!ASSERT_OK(tcli_open(&c, p.tls_port, "a.test", NULL), "handshake"))
		goto out;
	for (int round = 0; round < 2; round++) {
		size_t bl = 0;

		snprintf(reqs[0], sizeof(reqs[0]), "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
		http_event_request(reqs[1], sizeof(reqs[1]), "test",
				   round ? EVENT("p3") : EVENT("p1"));
		snprintf(reqs[2], sizeof(reqs[2]), "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
		http_event_request(reqs[3], sizeof(reqs[3]), "test",
				   round ? EVENT("p4") : EVENT("p2"));
		snprintf(reqs[4], sizeof(reqs[4]), "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
		for (int i = 0; i < 5; i++) {
			size_t n = strlen(reqs[i]);

			if (round) { /* one record each */
				ASSERT_EQ(SSL_write(c.ssl, reqs[i], (int)n), (int)n,
					  "write a record");
			} else {
				memcpy(burst + bl, reqs[i], n);
				bl += n;
			}
		}
		if (!round)
			ASSERT_EQ(SSL_write(c.ssl, burst, (int)bl), (int)bl, "one record");
		for (int i = 0; i < 5; i++)
			ASSERT_EQ(tcli_read(&c, resp, sizeof(resp)), want[i],
				  round ? "records: answered in order"
					: "record: answered in order");
	}
	tcli_close(&c);
out:
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* sluice_tls_buffered_connections from a /metrics page, -1 when absent. */
static long buffered_conns(const struct sluiced_proc *p)
{
	static const char name[] = "\nsluice_tls_buffered_connections ";
	const char *v;

	if (http_admin(p, "/metrics", resp, sizeof(resp)) != 200 || !(v = strstr(resp, name)))
		return -1;
	return strtol(v + sizeof(name) - 1, NULL, 10);
}

/* Idle TLS connections give OpenSSL's record buffers back (the gauge reaches 0 while all
 * stay open, whatever the machine's speed), and answer again afterwards. */
static void subtest_idle_release(void)
{
	enum { N = 12 };
	struct sluiced_proc p = {0};
	struct tcli c[N] = {0};
	long b = -1;
	int opened = 0;

	if (!ASSERT_OK(start(&p, TENANTS, NULL), "start"))
		return;
	for (; opened < N; opened++)
		if (!ASSERT_OK(tcli_open(&c[opened], p.tls_port, "a.test", NULL), "handshake") ||
		    !ASSERT_EQ(tcli_request(&c[opened], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
					    resp, sizeof(resp)),
			       200, "a request"))
			goto out;
	for (int i = 0; i < 300 && (b = buffered_conns(&p)) != 0; i++)
		usleep(100 * 1000);
	ASSERT_EQ(b, 0, "every idle connection released its record buffers");
	for (int i = 0; i < N; i++)
		ASSERT_EQ(tcli_request(&c[i], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", resp,
				       sizeof(resp)),
			  200, "answers again after the release");
	http_admin(&p, "/metrics", resp, sizeof(resp));
	ASSERT_HAS_STR(resp, "sluice_http_connections 12", "all stayed open");
out:
	for (int i = 0; i < N; i++) /* a zeroed one is a no-op */
		tcli_close(&c[i]);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

/* Put c into DIR/NAME/ and point DIR/..data at it, the way kubelet updates a Secret volume
 * (DIR/tls.crt -> ..data/tls.crt stays; ..data is swapped by a rename). */
static int secret_update(const char *dir, const char *name, const struct tlscert *c)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && mkdir '%s' && cp '%s' '%s/tls.crt' && cp '%s' '%s/tls.key' && "
		 "ln -sfn '%s' ..data_tmp && mv -T ..data_tmp ..data && "
		 "ln -sfn ..data/tls.crt tls.crt && ln -sfn ..data/tls.key tls.key",
		 dir, name, c->crt, name, c->key, name, name);
	return system(cmd) ? -EIO : 0;
}

/* The name on the certificate a fresh handshake gets (its first DNS name). */
static void served_cert(int port, char *name, size_t cap)
{
	struct tcli c;
	X509 *x;

	snprintf(name, cap, "?");
	if (!tcli_open(&c, port, "a.test", NULL) && (x = SSL_get0_peer_certificate(c.ssl)))
		X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, name, (int)cap);
	tcli_close(&c);
}

/* --tls-watch-s: a Secret updated by kubelet (a symlink swap) is served without a signal; a
 * broken update is refused once and the served certificate stays. */
static void subtest_watch(void)
{
	char dir[600], crt[700], key[700], name[64] = "";
	const char *args[] = {
	    "--threads",  "1", "--journal-dir", "@journal", "--tls-listen",  "127.0.0.1:0",
	    "--tls-cert", crt, "--tls-key",	key,	    "--tls-watch-s", "1",
	    NULL};
	struct sluiced_proc p = {0};

	snprintf(dir, sizeof(dir), "%s/secret", test__tmpdir());
	snprintf(crt, sizeof(crt), "%s/tls.crt", dir);
	snprintf(key, sizeof(key), "%s/tls.key", dir);
	if (!ASSERT_OK(mkdir(dir, 0700), "mkdir") ||
	    !ASSERT_OK(secret_update(dir, "v1", &cert_a), "first version") ||
	    !ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	served_cert(p.tls_port, name, sizeof(name));
	ASSERT_STREQ(name, "a.test", "serves the first version");
	ASSERT_OK(secret_update(dir, "v2", &cert_b), "second version");
	for (int i = 0; i < 200 && strcmp(name, "b.test"); i++) {
		usleep(100 * 1000);
		served_cert(p.tls_port, name, sizeof(name));
	}
	ASSERT_STREQ(name, "b.test", "serves the second version without a SIGHUP");
	ASSERT_TRUE(sluiced_log_wait(&p, "tls: certificate files changed, reloading", 1000),
		    "says why it reloaded");
	ASSERT_OK(secret_update(dir, "v3", &cert_old), "an expired version");
	ASSERT_TRUE(sluiced_log_wait(&p, "tls: reload refused", 20000), "refused");
	served_cert(p.tls_port, name, sizeof(name));
	ASSERT_STREQ(name, "b.test", "the running certificate stays");
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

void test_tls_ingress(void)
{
	if (!ASSERT_OK(make_certs(), "openssl req makes the test certificates"))
		return;
	if (test__start_subtest("s_client"))
		subtest_s_client();
	if (test__start_subtest("curl"))
		subtest_curl();
	if (test__start_subtest("slow_handshake"))
		subtest_slow_handshake();
	if (test__start_subtest("handshake_rate"))
		subtest_handshake_rate();
	if (test__start_subtest("refused_at_load"))
		subtest_refused_at_load();
	if (test__start_subtest("reload_under_load"))
		subtest_reload_under_load();
	if (test__start_subtest("mtls"))
		subtest_mtls();
	if (test__start_subtest("http_cases"))
		subtest_http_cases();
	if (test__start_subtest("pipelined"))
		subtest_pipelined();
	if (test__start_subtest("idle_release"))
		subtest_idle_release();
	if (test__start_subtest("watch"))
		subtest_watch();
}
