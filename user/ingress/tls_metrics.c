// SPDX-License-Identifier: MIT
/* tls_metrics.c -- sluice_tls_* metrics, read from a TLS context at each scrape */
#include <errno.h>
#include <stdlib.h>

#include "ingress/tls_metrics.h"
#include "lib/array_size.h"

struct tls_metrics {
	struct tls_ctx *ctx;
	struct metric_family *hs, *resumed, *fail, *busy, *buffered, *mtls, *reloads, *rot, *expiry;
};

static void collect(struct metrics *m, void *arg)
{
	struct tls_metrics *t = arg;
	struct tls_cert_info certs[1 + TLS_SNI_MAX];
	struct tls_stats st;
	unsigned n;

	tls_ctx_stats(t->ctx, &st);
	for (int p = 0; p < TLS_PROTO_MAX; p++)
		metric_set(metrics_series(t->hs, (const char *[]){tls_proto_name(p)}),
			   (double)st.handshakes[p]);
	for (int f = TLS_FAIL_NONE + 1; f < TLS_FAIL_MAX; f++)
		metric_set(metrics_series(t->fail, (const char *[]){tls_fail_name(f)}),
			   (double)st.failures[f]);
	metric_set(metrics_series(t->resumed, NULL), (double)st.resumed);
	metric_set(metrics_series(t->busy, NULL), (double)st.handshaking);
	metric_set(metrics_series(t->buffered, NULL), (double)st.buffered);
	metric_set(metrics_series(t->mtls, NULL), (double)st.mtls_verified);
	metric_set(metrics_series(t->reloads, (const char *[]){"ok"}), (double)st.reloads);
	metric_set(metrics_series(t->reloads, (const char *[]){"refused"}),
		   (double)st.reload_failures);
	metric_set(metrics_series(t->rot, NULL), (double)st.ticket_rotations);
	n = tls_ctx_certs(t->ctx, certs, ARRAY_SIZE(certs));
	for (unsigned i = 0; i < n && i < ARRAY_SIZE(certs); i++)
		metric_set(
		    metrics_series(t->expiry, (const char *[]){certs[i].name, certs[i].file}),
		    (double)certs[i].not_after);
}

struct tls_metrics *tls_metrics_new(struct metrics *m, struct tls_ctx *ctx)
{
	struct tls_metrics *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ctx = ctx;
	t->hs = metrics_family(m, METRIC_COUNTER, "sluice_tls_handshakes_total",
			       "Finished TLS handshakes by protocol.", "protocol", NULL, 0);
	t->resumed =
	    metrics_family(m, METRIC_COUNTER, "sluice_tls_resumed_total",
			   "TLS handshakes that resumed a session from a ticket.", NULL, NULL, 0);
	t->fail = metrics_family(m, METRIC_COUNTER, "sluice_tls_handshake_failures_total",
				 "Failed TLS handshakes by reason.", "reason", NULL, 0);
	t->busy = metrics_family(m, METRIC_GAUGE, "sluice_tls_handshakes_in_progress",
				 "TLS handshakes in progress.", NULL, NULL, 0);
	t->buffered = metrics_family(
	    m, METRIC_GAUGE, "sluice_tls_buffered_connections",
	    "TLS connections holding OpenSSL record buffers (busy ones; idle ones give them back).",
	    NULL, NULL, 0);
	t->mtls =
	    metrics_family(m, METRIC_COUNTER, "sluice_tls_client_certs_total",
			   "TLS handshakes with a verified client certificate.", NULL, NULL, 0);
	t->reloads =
	    metrics_family(m, METRIC_COUNTER, "sluice_tls_reloads_total",
			   "TLS certificate reloads (SIGHUP) by result.", "result", NULL, 0);
	t->rot = metrics_family(m, METRIC_COUNTER, "sluice_tls_ticket_key_rotations_total",
				"Session ticket keys started.", NULL, NULL, 0);
	t->expiry = metrics_family(m, METRIC_GAUGE, "sluice_tls_cert_expiry_timestamp_seconds",
				   "When each served certificate chain expires (earliest in it).",
				   "cert,file", NULL, 0);
	if (!t->hs || !t->resumed || !t->fail || !t->busy || !t->buffered || !t->mtls ||
	    !t->reloads || !t->rot || !t->expiry || metrics_on_collect(m, collect, t)) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void tls_metrics_free(struct tls_metrics *t)
{
	free(t);
}
