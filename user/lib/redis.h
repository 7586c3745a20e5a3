/* SPDX-License-Identifier: MIT */
/* redis.h -- Redis client for the fast-path duplicate check and the fallback cache
 *
 * Redis is an accelerator, never the authority (Postgres is): every operation has a short
 * timeout, and when Redis is down or slow the client says so at once (-ETIMEDOUT,
 * -ECONNREFUSED, ...) and callers go on without it. After a failure the client stops
 * trying for down_backoff_ms (operations return -EAGAIN without touching the network), so
 * a dead Redis costs each caller nothing, not a timeout per call. Each outage logs one
 * warning when it starts and one info line when Redis answers again.
 *
 * A small pool of connections (pool_size, default 4), each under its own mutex: a caller
 * takes a free one or waits for the next in turn, so threads do their round trips in
 * parallel instead of queueing on one socket. The outage state is shared by the pool.
 *
 * With a password, every new connection authenticates first (AUTH user password, or AUTH
 * password for the default user); a refused AUTH counts as an outage (the log says
 * "redis: AUTH refused" with Redis's reply, never the password) and is retried after the
 * backoff, so credentials fixed on the server are picked up without a restart.
 */
#ifndef SLUICE_REDIS_H
#define SLUICE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redis_config {
	char host[64];
	uint16_t port;
	uint32_t connect_timeout_ms; /* default 100 */
	uint32_t op_timeout_ms;	     /* default 50: one command, send to reply */
	uint32_t down_backoff_ms;    /* default 1000: no attempts for this long after a failure */
	char prefix[32];	     /* key prefix, default "sluice:" */
	uint32_t pool_size;	     /* connections, default 4 */
	char user[64];		     /* ACL user; "" = the default user */
	char password[256];	     /* "" = no AUTH */
};

struct redis_stats {
	uint64_t ops, errors, timeouts, skipped; /* skipped: refused during the backoff */
	uint64_t outages, reconnects;
	bool up;
};

enum redis_idem { REDIS_IDEM_NEW = 0, REDIS_IDEM_DUPLICATE = 1 };

/* Key namespaces under the prefix. Each user has its own, so no user's keys can meet
 * another's: an upstream named "dedupe" caches under "cache", never under "dedupe". */
enum redis_space {
	REDIS_DEDUPE, /* "dedupe": intake's fast-path duplicates (tenant, idempotency key) */
	REDIS_CACHE,  /* "cache": upstream fallback answers (upstream, tenant, key value) */
	REDIS_IDEM,   /* "idem": redis_idem_check (tenant, key) */
	REDIS_SPACE_MAX,
};

struct redis;

/* Defaults for 127.0.0.1:6379. */
void redis_config_default(struct redis_config *cfg);
/* Set one field from text (keys: addr = HOST:PORT or [V6]:PORT, host, port,
 * connect_timeout_ms, op_timeout_ms, down_backoff_ms, pool_size, prefix, user, password). 0,
 * -ENOENT (unknown key) or -EINVAL (err names the input). */
int redis_config_set(struct redis_config *cfg, const char *key, const char *value, char *err,
		     size_t errlen);

/* Create a client; it connects lazily, so a Redis that is down now is not an error.
 * Returns NULL with errno ENOMEM only. */
struct redis *redis_new(const struct redis_config *cfg);
void redis_free(struct redis *r);

/* A key is prefix + space name + one ":<length>:<bytes>" per field (e.g.
 * sluice:dedupe:4:acme:6:eu:123), so two field lists never make the same key whatever
 * bytes they hold. Fields are NUL-terminated; -ENAMETOOLONG past 512 bytes of key. */

/* Fast-path duplicate check: SET key(REDIS_IDEM, tenant, key) id NX PX ttl_ms. Returns
 * REDIS_IDEM_NEW (the key is now ours), REDIS_IDEM_DUPLICATE with the id stored first
 * copied to orig_id (NUL-terminated, may be truncated), or -errno when Redis did not answer
 * (the caller must then treat the event as new and rely on Postgres). */
int redis_idem_check(struct redis *r, const char *tenant, const char *key, const char *id,
		     uint64_t ttl_ms, char *orig_id, size_t orig_len);
/* GET of the key (space, fields). Returns 1 with *value (malloc'd, caller frees), 0 on a
 * miss, -errno when Redis did not answer. */
int redis_kv_get(struct redis *r, enum redis_space space, const char *const *fields,
		 unsigned nfields, char **value);
/* SET of the key (space, fields) with a TTL (ms, >= 1). 0 or -errno. */
int redis_kv_set(struct redis *r, enum redis_space space, const char *const *fields,
		 unsigned nfields, const char *value, uint64_t ttl_ms);

void redis_stats(struct redis *r, struct redis_stats *st);

/* Any command, for the cluster modules (control/cshed, admit/cdeny) that own their keys
 * under redis_prefix(): hiredis format (%s, %b with length), the same pool, timeouts and
 * outage policy as above. The reply (caller frees with freeReplyObject), or NULL with
 * *err = -errno (-EPROTO: Redis answered with an error, logged with `what`). */
struct redisReply;
struct redisReply *redis_cmd(struct redis *r, int *err, const char *what, const char *fmt, ...);
/* The key prefix (e.g. "sluice:"). */
const char *redis_prefix(const struct redis *r);

#endif /* SLUICE_REDIS_H */
