/* SPDX-License-Identifier: MIT */
/* event.h -- the queue record of one accepted event, and its decoded view for the steps
 *
 * Record bytes (what the ingress appends to the queue, in the queue_rec data):
 *	tenant name, '\n', the request body (the JSON envelope, already validated)
 * The tenant travels by name, not slot, so a record replayed after the tenants file changed
 * is still stored under the tenant that sent it. Class, tenant slot and enqueue time live
 * in the queue entry header.
 */
#ifndef SLUICE_EVENT_H
#define SLUICE_EVENT_H

#include <jansson.h>
#include <stddef.h>

#define EVENT_TENANT_MAX 64

struct event_view {
	char tenant[EVENT_TENANT_MAX + 1];
	const char *type;	     /* owned by root */
	const char *idempotency_key; /* owned by root */
	json_t *root;		     /* the whole envelope */
	json_t *payload;	     /* borrowed from root */
	const char *body;	     /* the raw envelope bytes inside the record */
	size_t body_len;
};

/* Encode tenant + body into out (cap bytes). Returns the record length, -EINVAL for a tenant
 * name that is empty, too long or holds '\n', -ENOSPC when it does not fit. */
int event_encode(const char *tenant, const void *body, size_t body_len, void *out, size_t cap);
/* Bytes event_encode() needs. */
size_t event_encoded_len(const char *tenant, size_t body_len);

/* Decode a record and parse its envelope. 0, or -EINVAL (err says what is wrong: no tenant
 * line, invalid JSON, missing type/idempotency_key/payload). Free with event_view_fini(). */
int event_decode(const void *data, size_t len, struct event_view *v, char *err, size_t errlen);
void event_view_fini(struct event_view *v);

#endif /* SLUICE_EVENT_H */
