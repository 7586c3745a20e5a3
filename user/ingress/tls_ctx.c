// SPDX-License-Identifier: MIT
/* tls_ctx.c -- TLS configuration: certificates by SNI, client CA, ticket keys, reload
 *
 * Every load builds a whole generation off to the side: one SSL_CTX per certificate (the
 * default one carries the SNI callback that switches a connection to another), each
 * checked before it counts -- the files open, the chain and the key parse, the key matches
 * the leaf, no certificate of the chain is expired or not yet valid. Only a generation that
 * passed everything replaces the current one, so a bad file on SIGHUP changes nothing.
 *
 * The policy is the same in every SSL_CTX: TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers
 * only in 1.2 (every 1.3 suite is forward secret), renegotiation off, ALPN http/1.1 and
 * nothing else (a client offering only h2 gets no_application_protocol). Resumption is
 * stateless: no server session cache, tickets sealed with keys this context holds (AES-256
 * CBC + HMAC-SHA256 through SSL_CTX_set_tlsext_ticket_key_evp_cb). A new key starts every
 * rotate_s; the two before it still open tickets (and those sessions get a fresh ticket),
 * older ones do not, so a ticket resumes for at most three periods. The keys are the
 * context's, not a generation's: a reload does not end resumption.
 *
 * The session id context is the SHA-256 of the client CA file (or a constant without one):
 * a session whose client certificate was verified against another CA does not resume.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/sha256.h"
#include "ingress/tls_int.h"

#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS   "X25519:P-256:P-384"

/* OpenSSL's reason for the last error, for messages ("" when it gave none). */
static const char *ossl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	return r ? r : "";
}

static void fmt_time(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, len, "(unreadable date)");
}

static int64_t asn1_epoch(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* ---- ticket keys ------------------------------------------------------------------------ */

static int tkey_fill(struct tls_tkey *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return -EIO;
	k->born_s = (clock_mono_ns() / CLOCK_NS_PER_SEC);
	return 0;
}

/* Under ctx->lock: a new current key, the oldest dropped. */
static void tkeys_rotate_locked(struct tls_ctx *ctx)
{
	struct tls_tkey k;

	if (tkey_fill(&k))
		return; /* keep the current key; RAND failing is retried next time */
	memmove(&ctx->keys[1], &ctx->keys[0], sizeof(ctx->keys[0]) * (TLS_TICKET_KEYS - 1));
	ctx->keys[0] = k;
	if (ctx->n_keys < TLS_TICKET_KEYS)
		ctx->n_keys++;
	OPENSSL_cleanse(&k, sizeof(k));
	TLS_COUNT(ctx, ticket_rotations);
}

void tls_ctx_rotate_tickets(struct tls_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	tkeys_rotate_locked(ctx);
	pthread_mutex_unlock(&ctx->lock);
}

static int ticket_mac_init(EVP_MAC_CTX *hctx, uint8_t *key)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};

	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -EIO;
}

/* enc: seal a new ticket with the current key (rotating first when it is due). !enc: find
 * the key the ticket names; 0 = unknown (full handshake), 1 = current, 2 = older (resume and
 * issue a new ticket), -1 = error. */
static int ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
	int ivlen = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
	struct tls_tkey k;
	int ret = 1, i = 0;

	pthread_mutex_lock(&ctx->lock);
	if (enc) {
		if ((clock_mono_ns() / CLOCK_NS_PER_SEC) - ctx->keys[0].born_s >= ctx->rotate_s)
			tkeys_rotate_locked(ctx);
	} else {
		for (i = 0; i < (int)ctx->n_keys; i++)
			if (!memcmp(ctx->keys[i].name, name, sizeof(ctx->keys[i].name)))
				break;
		if (i == (int)ctx->n_keys)
			ret = 0;
		else if (i > 0)
			ret = 2;
	}
	if (ret)
		k = ctx->keys[i];
	pthread_mutex_unlock(&ctx->lock);
	if (!ret)
		return 0;

	if (enc) {
		if (RAND_bytes(iv, ivlen) != 1)
			ret = -1;
		memcpy(name, k.name, sizeof(k.name));
		if (ret > 0 && EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
			ret = -1;
	} else if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
		ret = -1;
	}
	if (ret > 0 && ticket_mac_init(hctx, k.hmac))
		ret = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* ---- handshake callbacks ---------------------------------------------------------------- */

static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08http/1.1";
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* Serve the first SNI certificate that names the host asked for; else the default. */
static int sni_cb(SSL *s, int *alert, void *arg)
{
	struct tls_gen *g = arg;
	const char *host = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

	if (!host)
		return SSL_TLSEXT_ERR_OK;
	for (unsigned i = 0; i < g->n_sni; i++) {
		if (X509_check_host(SSL_CTX_get0_certificate(g->sni[i]), host, 0, 0, NULL) == 1) {
			if (!SSL_set_SSL_CTX(s, g->sni[i])) {
				*alert = SSL_AD_INTERNAL_ERROR;
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			}
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* ---- loading ---------------------------------------------------------------------------- */

static void cert_name(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n = names ? sk_GENERAL_NAME_num(names) : 0;

	buf[0] = '\0';
	for (int i = 0; i < n && !buf[0]; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type == GEN_DNS)
			snprintf(buf, len, "%.*s", ASN1_STRING_length(gn->d.dNSName),
				 (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
	}
	GENERAL_NAMES_free(names);
	if (!buf[0] &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len) < 0)
		buf[0] = '\0';
}

/* One certificate of the chain in its validity period; the earliest expiry into *not_after. */
static int check_dates(X509 *x, const char *file, int64_t *not_after, char *err, size_t errlen)
{
	char when[40], name[TLS_CERT_NAME_MAX];
	int64_t na = asn1_epoch(X509_get0_notAfter(x));

	cert_name(x, name, sizeof(name));
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		fmt_time(X509_get0_notAfter(x), when, sizeof(when));
		snprintf(err, errlen, "%s: certificate \"%s\" expired on %s (renew it)", file, name,
			 when);
		return -EINVAL;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		fmt_time(X509_get0_notBefore(x), when, sizeof(when));
		snprintf(err, errlen,
			 "%s: certificate \"%s\" is not valid before %s (check the clock)", file,
			 name, when);
		return -EINVAL;
	}
	if (!*not_after || na < *not_after)
		*not_after = na;
	return 0;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

static int load_key(SSL_CTX *sc, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	EVP_PKEY *key;
	int ret = 0;

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open the key: %s", file, strerror(errno));
		return ret;
	}
	key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!key) {
		snprintf(err, errlen,
			 "%s: no readable PEM private key: %s (give an unencrypted PEM key)", file,
			 ossl_reason());
		return -EINVAL;
	}
	if (X509_check_private_key(SSL_CTX_get0_certificate(sc), key) != 1) {
		snprintf(err, errlen,
			 "%s: the key does not match the certificate (give the key the certificate "
			 "was issued for)",
			 file);
		ret = -EINVAL;
	} else if (SSL_CTX_use_PrivateKey(sc, key) != 1) {
		snprintf(err, errlen, "%s: key refused: %s", file, ossl_reason());
		ret = -EINVAL;
	}
	EVP_PKEY_free(key);
	return ret;
}

/* Certificate chain and key of one SSL_CTX, checked; its facts into *info. */
static int load_cert(SSL_CTX *sc, const struct tls_cert_files *f, struct tls_cert_info *info,
		     char *err, size_t errlen)
{
	STACK_OF(X509) *chain = NULL;
	FILE *probe;
	X509 *leaf;
	int ret;

	if (!f->cert || !f->key) {
		snprintf(err, errlen, "a certificate needs both a cert and a key file");
		return -EINVAL;
	}
	probe = fopen(f->cert, "r");
	if (!probe) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open the certificate: %s", f->cert,
			 strerror(errno));
		return ret;
	}
	fclose(probe);
	if (SSL_CTX_use_certificate_chain_file(sc, f->cert) != 1) {
		snprintf(err, errlen,
			 "%s: no PEM certificate chain: %s (give the chain in PEM, leaf first)",
			 f->cert, ossl_reason());
		return -EINVAL;
	}
	leaf = SSL_CTX_get0_certificate(sc);
	memset(info, 0, sizeof(*info));
	snprintf(info->file, sizeof(info->file), "%s", f->cert);
	cert_name(leaf, info->name, sizeof(info->name));
	ret = check_dates(leaf, f->cert, &info->not_after, err, errlen);
	SSL_CTX_get0_chain_certs(sc, &chain);
	for (int i = 0; !ret && i < sk_X509_num(chain); i++)
		ret = check_dates(sk_X509_value(chain, i), f->cert, &info->not_after, err, errlen);
	return ret ? ret : load_key(sc, f->key, err, errlen);
}

static int set_client_ca(SSL_CTX *sc, const char *ca, char *err, size_t errlen)
{
	STACK_OF(X509_NAME) * names;

	if (SSL_CTX_load_verify_file(sc, ca) != 1) {
		snprintf(err, errlen, "%s: no PEM CA certificate: %s (give the CA bundle in PEM)",
			 ca, ossl_reason());
		return -EINVAL;
	}
	names = SSL_load_client_CA_file(ca);
	if (!names) {
		snprintf(err, errlen, "%s: no CA names: %s", ca, ossl_reason());
		return -EINVAL;
	}
	SSL_CTX_set_client_CA_list(sc, names);
	SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(sc, 4);
	return 0;
}

/* The session id context: SHA-256 of the CA file's bytes, so sessions verified against
 * another CA do not resume. */
static int sid_ctx_of(const char *ca, uint8_t out[SHA256_LEN], char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0;
	long sz;
	int ret = 0;

	if (!ca) {
		sha256("sluice", 6, out);
		return 0;
	}
	f = fopen(ca, "r");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open the client CA: %s", ca, strerror(errno));
		return ret;
	}
	if (fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		ret = -EIO;
	} else if (!(buf = malloc((size_t)sz + 1))) {
		ret = -ENOMEM;
	} else {
		len = fread(buf, 1, (size_t)sz, f);
		sha256(buf, len, out);
	}
	if (ret)
		snprintf(err, errlen, "%s: cannot read the client CA", ca);
	free(buf);
	fclose(f);
	return ret;
}

static SSL_CTX *ssl_ctx_new(struct tls_ctx *ctx, const struct tls_opts *o, const uint8_t *sid,
			    char *err, size_t errlen)
{
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method());

	if (!sc) {
		snprintf(err, errlen, "tls: SSL_CTX_new: %s", ossl_reason());
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(sc, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(sc, TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(sc, TLS_GROUPS) != 1 ||
	    SSL_CTX_set_session_id_context(sc, sid, SHA256_LEN) != 1 ||
	    SSL_CTX_set_num_tickets(sc, 1) != 1) {
		snprintf(err, errlen, "tls: protocol settings refused: %s", ossl_reason());
		SSL_CTX_free(sc);
		return NULL;
	}
	SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* no SSL_MODE_RELEASE_BUFFERS: a busy connection keeps its record buffers, an idle one
	 * gives them back through tls_conn_trim() (tls.c) */
	SSL_CTX_set_read_ahead(sc, 1);
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(sc, (long)ctx->rotate_s * (TLS_TICKET_KEYS - 1));
	SSL_CTX_set_tlsext_ticket_key_evp_cb(sc, ticket_cb);
	SSL_CTX_set_alpn_select_cb(sc, alpn_cb, NULL);
	SSL_CTX_set_app_data(sc, ctx);
	if (o->client_ca && set_client_ca(sc, o->client_ca, err, errlen)) {
		SSL_CTX_free(sc);
		return NULL;
	}
	return sc;
}

static void gen_free(struct tls_gen *g)
{
	if (!g)
		return;
	for (unsigned i = 0; i < g->n_sni; i++)
		SSL_CTX_free(g->sni[i]);
	SSL_CTX_free(g->dflt);
	free(g);
}

void tls_gen_put(struct tls_gen *g)
{
	if (g && atomic_fetch_sub(&g->refs, 1) == 1)
		gen_free(g);
}

static struct tls_gen *gen_load(struct tls_ctx *ctx, const struct tls_opts *o, char *err,
				size_t errlen)
{
	uint8_t sid[SHA256_LEN];
	struct tls_gen *g;
	int ret;

	if (o->n_sni > TLS_SNI_MAX || (o->n_sni && !o->sni)) {
		snprintf(err, errlen, "tls: %u SNI certificates (at most %d)", o->n_sni,
			 TLS_SNI_MAX);
		errno = EINVAL;
		return NULL;
	}
	ret = sid_ctx_of(o->client_ca, sid, err, errlen);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	atomic_init(&g->refs, 1);
	g->mtls = o->client_ca != NULL;
	g->timeout_ns =
	    (uint64_t)(o->handshake_timeout_ms ? o->handshake_timeout_ms : 10000) * 1000000ull;
	g->max_handshakes = o->max_handshakes;
	ret = -EINVAL;
	g->dflt = ssl_ctx_new(ctx, o, sid, err, errlen);
	if (!g->dflt)
		goto fail;
	ret = load_cert(g->dflt, &o->dflt, &g->certs[0], err, errlen);
	if (ret)
		goto fail;
	g->n_certs = 1;
	for (unsigned i = 0; i < o->n_sni; i++) {
		ret = -EINVAL;
		g->sni[i] = ssl_ctx_new(ctx, o, sid, err, errlen);
		if (!g->sni[i])
			goto fail;
		g->n_sni++;
		ret = load_cert(g->sni[i], &o->sni[i], &g->certs[g->n_certs], err, errlen);
		if (ret)
			goto fail;
		g->certs[g->n_certs++].sni = true;
	}
	SSL_CTX_set_tlsext_servername_callback(g->dflt, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(g->dflt, g);
	ERR_clear_error();
	return g;
fail:
	ERR_clear_error();
	gen_free(g);
	errno = -ret;
	return NULL;
}

/* ---- public ----------------------------------------------------------------------------- */

struct tls_ctx *tls_ctx_new(const struct tls_opts *opts, char *err, size_t errlen)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
	int e;

	if (!ctx) {
		snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->rotate_s = opts->ticket_rotate_s ? opts->ticket_rotate_s : 3600;
	if (tkey_fill(&ctx->keys[0])) {
		snprintf(err, errlen, "tls: no random bytes for the ticket key: %s", ossl_reason());
		e = EIO;
		goto fail;
	}
	ctx->n_keys = 1;
	ctx->cur = gen_load(ctx, opts, err, errlen);
	if (!ctx->cur) {
		e = errno;
		goto fail;
	}
	return ctx;
fail:
	pthread_mutex_destroy(&ctx->lock);
	OPENSSL_cleanse(ctx->keys, sizeof(ctx->keys));
	free(ctx);
	errno = e;
	return NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	tls_gen_put(ctx->cur);
	pthread_mutex_destroy(&ctx->lock);
	OPENSSL_cleanse(ctx->keys, sizeof(ctx->keys));
	free(ctx);
}

int tls_ctx_reload(struct tls_ctx *ctx, const struct tls_opts *opts, char *err, size_t errlen)
{
	struct tls_gen *g, *old;
	unsigned rotate_s = opts->ticket_rotate_s ? opts->ticket_rotate_s : 3600;
	unsigned saved;

	/* the SSL_CTXs take the ticket lifetime from rotate_s while they are built */
	pthread_mutex_lock(&ctx->lock);
	saved = ctx->rotate_s;
	ctx->rotate_s = rotate_s;
	pthread_mutex_unlock(&ctx->lock);
	g = gen_load(ctx, opts, err, errlen);
	pthread_mutex_lock(&ctx->lock);
	if (!g) {
		ctx->rotate_s = saved;
		pthread_mutex_unlock(&ctx->lock);
		TLS_COUNT(ctx, reload_failures);
		return -errno;
	}
	old = ctx->cur;
	ctx->cur = g;
	pthread_mutex_unlock(&ctx->lock);
	tls_gen_put(old);
	TLS_COUNT(ctx, reloads);
	return 0;
}

struct tls_gen *tls_ctx_acquire(struct tls_ctx *ctx)
{
	struct tls_gen *g;

	pthread_mutex_lock(&ctx->lock);
	g = ctx->cur;
	atomic_fetch_add(&g->refs, 1);
	pthread_mutex_unlock(&ctx->lock);
	return g;
}

#define LOAD(field) atomic_load_explicit(&ctx->n.field, memory_order_relaxed)

void tls_ctx_stats(struct tls_ctx *ctx, struct tls_stats *out)
{
	for (int i = 0; i < TLS_PROTO_MAX; i++)
		out->handshakes[i] = LOAD(handshakes[i]);
	for (int i = 0; i < TLS_FAIL_MAX; i++)
		out->failures[i] = LOAD(failures[i]);
	out->resumed = LOAD(resumed);
	out->refused_busy = LOAD(refused_busy);
	out->handshaking = LOAD(handshaking);
	out->buffered = LOAD(buffered);
	out->reloads = LOAD(reloads);
	out->reload_failures = LOAD(reload_failures);
	out->ticket_rotations = LOAD(ticket_rotations);
	out->mtls_verified = LOAD(mtls_verified);
}

unsigned tls_ctx_certs(struct tls_ctx *ctx, struct tls_cert_info *out, unsigned max)
{
	struct tls_gen *g = tls_ctx_acquire(ctx);
	unsigned n = g->n_certs;

	memcpy(out, g->certs, sizeof(*out) * (n < max ? n : max));
	tls_gen_put(g);
	return n;
}

bool tls_ctx_mtls(struct tls_ctx *ctx)
{
	struct tls_gen *g = tls_ctx_acquire(ctx);
	bool m = g->mtls;

	tls_gen_put(g);
	return m;
}

bool tls_kernel_has_ktls(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool has;

	if (fd < 0)
		return false;
	/* an unconnected socket: ENOTCONN when the tls ULP exists, ENOENT when it does not */
	has = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3) == 0 || errno != ENOENT;
	close(fd);
	return has;
}

static uint64_t stamp_file(uint64_t h, const char *path)
{
	struct stat st;
	uint64_t v[5] = {0};

	if (!path)
		return h;
	if (stat(path, &st))
		v[0] = (uint64_t)errno;
	else {
		v[0] = (uint64_t)st.st_dev;
		v[1] = (uint64_t)st.st_ino;
		v[2] = (uint64_t)st.st_size;
		v[3] = (uint64_t)st.st_mtim.tv_sec;
		v[4] = (uint64_t)st.st_mtim.tv_nsec;
	}
	for (size_t i = 0; i < sizeof(v); i++) { /* FNV-1a */
		h ^= ((const uint8_t *)v)[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t tls_files_stamp(const struct tls_opts *o)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = stamp_file(h, o->dflt.cert);
	h = stamp_file(h, o->dflt.key);
	for (unsigned i = 0; i < o->n_sni; i++) {
		h = stamp_file(h, o->sni[i].cert);
		h = stamp_file(h, o->sni[i].key);
	}
	return stamp_file(h, o->client_ca);
}
