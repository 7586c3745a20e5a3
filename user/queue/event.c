// SPDX-License-Identifier: MIT
/* event.c -- the queue record of one accepted event, and its decoded view for the steps
 *
 * The record is tiny on purpose: the ingress already validated the envelope, so the worker
 * re-parses it only to read type, key and payload, and fails loudly (dead letter) rather
 * than guessing if a record ever does not parse.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "queue/event.h"

size_t event_encoded_len(const char *tenant, size_t body_len)
{
	return strlen(tenant) + 1 + body_len;
}

int event_encode(const char *tenant, const void *body, size_t body_len, void *out, size_t cap)
{
	size_t tl = strlen(tenant);

	if (!tl || tl > EVENT_TENANT_MAX || strchr(tenant, '\n'))
		return -EINVAL;
	if (tl + 1 + body_len > cap)
		return -ENOSPC;
	memcpy(out, tenant, tl);
	((char *)out)[tl] = '\n';
	memcpy((char *)out + tl + 1, body, body_len);
	return (int)(tl + 1 + body_len);
}

int event_decode(const void *data, size_t len, struct event_view *v, char *err, size_t errlen)
{
	const char *p = data,
		   *nl = memchr(p, '\n', len < EVENT_TENANT_MAX + 1 ? len : EVENT_TENANT_MAX + 1);
	json_error_t je;
	json_t *t, *k;

	memset(v, 0, sizeof(*v));
	if (!nl || nl == p) {
		snprintf(err, errlen, "record has no tenant line");
		return -EINVAL;
	}
	memcpy(v->tenant, p, nl - p);
	v->tenant[nl - p] = 0;
	v->body = nl + 1;
	v->body_len = len - (size_t)(nl + 1 - p);
	v->root = json_loadb(v->body, v->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!v->root) {
		snprintf(err, errlen, "envelope is not JSON: %s (column %d)", je.text, je.column);
		return -EINVAL;
	}
	t = json_object_get(v->root, "type");
	k = json_object_get(v->root, "idempotency_key");
	v->payload = json_object_get(v->root, "payload");
	if (!json_is_string(t) || !json_is_string(k) || !json_is_object(v->payload)) {
		snprintf(err, errlen, "envelope lacks type, idempotency_key or payload");
		event_view_fini(v);
		return -EINVAL;
	}
	v->type = json_string_value(t);
	v->idempotency_key = json_string_value(k);
	return 0;
}

void event_view_fini(struct event_view *v)
{
	json_decref(v->root);
	v->root = NULL;
	v->payload = NULL;
}
