/* SPDX-License-Identifier: MIT */
/* envelope.h -- validation of the POST /v1/events JSON envelope
 *
 *	{"type":"lead.created","idempotency_key":"...","priority":"critical","payload":{...}}
 *
 * type: 1-128 characters of [A-Za-z0-9._:-]; idempotency_key: 1-200 bytes of UTF-8, no control
 * characters; priority: optional, critical | normal | low; payload: a JSON object. Nothing
 * else at the top level. The JSON itself must be valid UTF-8 without \u0000 and without
 * duplicate keys (what PostgreSQL jsonb will later accept).
 */
#ifndef SLUICE_ENVELOPE_H
#define SLUICE_ENVELOPE_H

#include <stddef.h>

/* The same limits as the PostgreSQL columns (user/sink/pg/migrations: type varchar(128),
 * idempotency_key varchar(200), counted in characters, so bytes here are never more): an
 * event accepted here can always be stored. test_pg_migrate checks they agree. 200, not
 * more: the key is part of event_keys' partition key, which PostgreSQL cannot widen. */
#define ENVELOPE_TYPE_MAX 128
#define ENVELOPE_KEY_MAX  200

struct envelope {
	char type[ENVELOPE_TYPE_MAX + 1];
	char idempotency_key[ENVELOPE_KEY_MAX + 1];
	int priority; /* enum sluice_class, or -1 when absent */
};

/* Validate body[0..len). Returns 0 and fills *ev, or -EINVAL with *code set to a stable
 * error code (invalid_json, missing_field, invalid_field, unknown_field) and detail filled
 * with a sentence naming the field. */
int envelope_parse(const char *body, size_t len, struct envelope *ev, const char **code,
		   char *detail, size_t detail_len);

#endif /* SLUICE_ENVELOPE_H */
