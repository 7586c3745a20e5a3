/* SPDX-License-Identifier: MIT */
/* alert.h -- overload alerts as PagerDuty Events v2 JSON POSTed to a configured URL
 *
 * trigger on entering EMERGENCY, resolve on leaving it, one stable dedup_key per node so
 * the receiver folds repeats into one incident. Sending happens on the alert's own thread:
 * the controller never waits on the network.
 */
#ifndef SLUICE_ALERT_H
#define SLUICE_ALERT_H

#include <stdint.h>

struct alert;

struct alert_stats {
	uint64_t sent;	  /* accepted by the receiver (2xx) */
	uint64_t failed;  /* gave up after the retries */
	uint64_t dropped; /* queue full */
};

/* url: where to POST (http:// or https://); routing_key: the PagerDuty integration key
 * (may be empty for a generic webhook); source: this node's name, also part of the
 * dedup_key "sluice-overload-<source>". Returns NULL + errno (EINVAL: url not http(s)). */
struct alert *alert_new(const char *url, const char *routing_key, const char *source);
/* Stop the thread after sending what is queued (bounded by the per-request timeout). */
void alert_free(struct alert *a);

/* Queue a trigger with a summary and measurements (a JSON object text for
 * custom_details, or NULL). Returns 0, -ENOBUFS when the queue is full, -EINVAL on bad JSON. */
int alert_trigger(struct alert *a, const char *summary, const char *details_json);
/* Queue a resolve for the same dedup_key. */
int alert_resolve(struct alert *a);
/* The same with a dedup_key of the caller's: the cluster's incident (control/cshed.h), one
 * key for every node, so whichever node sends, the receiver sees one incident. */
int alert_trigger_key(struct alert *a, const char *dedup_key, const char *summary,
		      const char *details_json);
int alert_resolve_key(struct alert *a, const char *dedup_key);

void alert_stats(struct alert *a, struct alert_stats *out);
const char *alert_dedup_key(const struct alert *a);

#endif /* SLUICE_ALERT_H */
