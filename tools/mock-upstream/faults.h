/* SPDX-License-Identifier: MIT */
/* faults.h -- the mock upstream's run-time fault settings and per-idempotency-key counters
 *
 * Shared by every connection thread under one mutex. Settings change through the control
 * endpoint (faults_set from a query string); counters record, per Idempotency-Key, how
 * many requests arrived and how many were applied (answered 2xx), so a test can prove
 * that no key took effect twice.
 */
#ifndef MOCK_FAULTS_H
#define MOCK_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct faults {
	double error_rate; /* answer error_status */
	int error_status;
	double r429_rate; /* answer 429 with Retry-After: retry_after */
	char retry_after[64];
	double reset_rate;	/* close with RST, no answer */
	double hang_rate;	/* never answer (until the client gives up) */
	bool down;		/* listener closed: connection refused; open connections reset */
	char require_auth[128]; /* non-empty: "Authorization: Bearer <it>" or 401 */
	bool dedupe;		/* a key applied before is answered again but not re-applied */
	uint32_t latency_ms, jitter_ms; /* every answer: latency + uniform [0, jitter] */
	double slow_rate;		/* ... plus slow_ms with this probability */
	uint32_t slow_ms;
	/* a receiver's restart (n8n): setting restart_down_ms / restart_404_ms starts it now:
	 * down (connection refused) for restart_down_ms, then listening but answering 404
	 * "webhook not registered" for restart_404_ms, then normal */
	uint32_t restart_down_ms, restart_404_ms;
	uint64_t restart_at_ms; /* CLOCK_MONOTONIC ms the restart began (0: none) */
	double lose_rate;	/* answer 200 but do not record it ("acknowledge then lose") */
};

enum mock_action {
	ACT_OK,
	ACT_ERROR,
	ACT_429,
	ACT_RESET,
	ACT_HANG,
	ACT_DOWN,
	ACT_NOT_READY, /* restart: listening, webhooks not registered yet (404) */
	ACT_LOSE,      /* answered 200, never recorded */
};

struct mock_counts {
	uint64_t received, applied, errors, r429, resets, hangs, downs, not_ready, lost;
	uint64_t keys, dup_keys, max_applied, replayed;
	uint64_t unauthorized;
	uint64_t connections;		 /* accepted on the service port */
	uint64_t inflight, max_inflight; /* requests being handled now / at most at once */
};

void faults_init(void);
/* Apply "k=v&k=v" settings; 0, or -EINVAL with err naming the parameter. */
int faults_set(const char *query, char *err, size_t errlen);
void faults_reset(void);
void faults_get(struct faults *f);
/* Roll the dice for one request: the action and the delay before answering (ms). */
enum mock_action faults_roll(uint32_t *delay_ms);
/* Count a received request / an applied one for key ("" when the header is absent); the
 * request's path and Webhook-Id header are kept per key (the last seen). */
void counts_received(const char *key, const char *path, const char *webhook_id);
/* A request for key answered 200 and lost ("acknowledge then lose"). */
void counts_lost(const char *key);
/* A request for key is answered 2xx: returns how many times key has now been applied.
 * With dedupe on, a key applied before is not applied again: *replayed is set, the count
 * returned is unchanged and the request is counted as replayed (a CRM honouring
 * Idempotency-Key). *id is the sequence number the key got when first applied. */
uint64_t counts_applied(const char *key, bool *replayed, uint64_t *id);
void counts_action(enum mock_action a);
void counts_connection(void);
void counts_unauthorized(void);
/* +1 when a request starts being handled, -1 when it is done (answered, reset, hung up). */
void counts_inflight(int delta);
void counts_get(struct mock_counts *c);
struct key_info {
	uint64_t received, applied, lost;
	char path[128], webhook_id[64];
};
void counts_key(const char *key, struct key_info *ki);
/* JSON renderings for the control endpoint; write into buf, return the length. */
int faults_json(char *buf, size_t len);
int counts_json(char *buf, size_t len);

#endif /* MOCK_FAULTS_H */
