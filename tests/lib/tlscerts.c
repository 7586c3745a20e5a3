// SPDX-License-Identifier: MIT
/* tlscerts.c -- test certificates made at test time with the openssl command line
 *
 * Each certificate is a key and a request made by `openssl req`, then signed by `openssl x509
 * -req` (by its own key, or by a CA): x509 takes a negative -days, which is how an already
 * expired certificate is made without faking the clock.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlscerts.h"

#define NEWKEY "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

static int run(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int run(const char *dir, const char *fmt, ...)
{
	char cmd[4096], log[600];
	va_list ap;
	int n;

	snprintf(log, sizeof(log), "%s/openssl.log", dir);
	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - sizeof(log) - 16, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd) - sizeof(log) - 16)
		return -E2BIG;
	strcat(cmd, " >>");
	strcat(cmd, log);
	strcat(cmd, " 2>&1");
	if (system(cmd) != 0) {
		char show[700];

		fprintf(stdout, "tlscerts: failed: %s\n", cmd);
		snprintf(show, sizeof(show), "tail -5 %s", log);
		if (system(show) != 0)
			fprintf(stdout, "tlscerts: no log\n");
		return -EIO;
	}
	return 0;
}

static void paths(const char *dir, const char *name, struct tlscert *out)
{
	snprintf(out->crt, sizeof(out->crt), "%s/%s.crt", dir, name);
	snprintf(out->key, sizeof(out->key), "%s/%s.key", dir, name);
}

/* A key and a request for cn (also its DNS SAN) by `openssl req`, signed by `openssl x509
 * -req`: by ca, or by its own key when ca is NULL. */
static int make(const char *dir, const char *name, const char *cn, const struct tlscert *ca,
		int days, struct tlscert *out)
{
	static unsigned serial = 1000;
	char signer[1200];
	int err;

	paths(dir, name, out);
	err = run(dir,
		  "openssl req -new " NEWKEY " -keyout '%s' -out '%s/%s.csr' -subj '/CN=%s' "
		  "-addext 'subjectAltName=DNS:%s'",
		  out->key, dir, name, cn, cn);
	if (err)
		return err;
	if (ca)
		snprintf(signer, sizeof(signer), "-CA '%s' -CAkey '%s' -set_serial %u", ca->crt,
			 ca->key, serial++);
	else
		snprintf(signer, sizeof(signer), "-signkey '%s'", out->key);
	return run(dir,
		   "openssl x509 -req -in '%s/%s.csr' %s -days %d -copy_extensions copy -out '%s'",
		   dir, name, signer, days, out->crt);
}

int tlscert_self(const char *dir, const char *name, const char *dns, int days, struct tlscert *out)
{
	return make(dir, name, dns, NULL, days, out);
}

int tlscert_ca(const char *dir, const char *name, const char *cn, struct tlscert *out)
{
	paths(dir, name, out);
	return run(dir,
		   "openssl req -x509 " NEWKEY " -keyout '%s' -out '%s' -subj '/CN=%s' -days 30",
		   out->key, out->crt, cn);
}

int tlscert_issue(const char *dir, const char *name, const char *cn, const struct tlscert *ca,
		  int days, struct tlscert *out)
{
	return make(dir, name, cn, ca, days, out);
}

int tlscert_sha256_hex(const char *crt, char hex[65])
{
	char cmd[700], line[256];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -noout -fingerprint -sha256", crt);
	p = popen(cmd, "r");
	if (!p)
		return -EIO;
	if (fgets(line, sizeof(line), p)) {
		/* "sha256 Fingerprint=AB:CD:..." */
		for (char *s = strchr(line, '='); s && *s && n < 64; s++)
			if (isxdigit((unsigned char)*s))
				hex[n++] = (char)tolower((unsigned char)*s);
	}
	hex[n] = '\0';
	return pclose(p) == 0 && n == 64 ? 0 : -EIO;
}

SSL *tlscert_mem_client(SSL_CTX *ctx, BIO **rb, BIO **wb)
{
	SSL *ssl = SSL_new(ctx);

	*rb = BIO_new(BIO_s_mem());
	*wb = BIO_new(BIO_s_mem());
	if (!ssl || !*rb || !*wb) {
		BIO_free(*rb);
		BIO_free(*wb);
		SSL_free(ssl);
		return NULL;
	}
	BIO_set_mem_eof_return(*rb, -1);
	SSL_set_bio(ssl, *rb, *wb);
	SSL_set_connect_state(ssl);
	return ssl;
}
