/* SPDX-License-Identifier: MIT */
/* tls_metrics.h -- sluice_tls_* metrics, read from a TLS context at each scrape
 *
 *	sluice_tls_handshakes_total{protocol}          finished handshakes, tls1.2 / tls1.3
 *	sluice_tls_resumed_total                       of those, resumed from a session ticket
 *	sluice_tls_handshake_failures_total{reason}    failed handshakes (tls_fail_name)
 *	sluice_tls_handshakes_in_progress              gauge
 *	sluice_tls_client_certs_total                  handshakes with a verified client cert
 *	sluice_tls_reloads_total{result}               SIGHUP reloads: ok / refused
 *	sluice_tls_ticket_key_rotations_total
 *	sluice_tls_cert_expiry_timestamp_seconds{cert,file}  earliest expiry of each chain
 *
 * The engine keeps plain atomic counters; the collect hook copies them into the registry
 * right before rendering, so the handshake path never touches the registry.
 */
#ifndef SLUICE_TLS_METRICS_H
#define SLUICE_TLS_METRICS_H

#include "ingress/tls.h"
#include "lib/metrics.h"

struct tls_metrics;

/* Register the families in m and a collect hook reading ctx. NULL + errno. Free it after the
 * last render of m (the hook refers to it); NULL is a no-op. */
struct tls_metrics *tls_metrics_new(struct metrics *m, struct tls_ctx *ctx);
void tls_metrics_free(struct tls_metrics *t);

#endif /* SLUICE_TLS_METRICS_H */
