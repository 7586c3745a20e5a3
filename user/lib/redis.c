// SPDX-License-Identifier: MIT
/* redis.c -- Redis client for the fast-path duplicate check and the fallback cache
 *
 * Every command goes through redis_vcommand(), which owns the whole failure policy: take a
 * pooled connection, connect it lazily with connect_timeout_ms, bound each command with
 * SO_RCVTIMEO/SO_SNDTIMEO (op_timeout_ms, set by hiredis), and on any transport error drop the
 * connection, start the backoff and (once per outage) warn. A reply of type ERROR is the server
 * answering, so it is an error for that call but not an outage. Keys are passed as binary-safe %b
 * arguments, each field length-prefixed in its own namespace (make_key): idempotency keys and
 * payload values may hold any byte and still never make another tenant's or user's key.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/confparse.h"
#include "lib/log.h"
#include "lib/redis.h"

#define MS	1000000ULL
#define KEY_MAX 512

struct redis_conn {
	pthread_mutex_t lock;
	redisContext *c; /* NULL until connected, and after a transport error */
};

struct redis {
	struct redis_config cfg;
	struct redis_conn *conns;
	uint32_t n, next;      /* pool size; round-robin start (atomic) */
	pthread_mutex_t state; /* in_outage and st.up, taken only on failure and recovery */
	uint64_t down_until;   /* monotonic ns, atomic; no attempt before it */
	bool in_outage;
	struct redis_stats st; /* counters updated with atomics */
};

#define STAT_ADD(r, field) __atomic_fetch_add(&(r)->st.field, 1, __ATOMIC_RELAXED)

static struct timeval tv_ms(uint32_t ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

void redis_config_default(struct redis_config *cfg)
{
	*cfg = (struct redis_config){
	    .host = "127.0.0.1",
	    .port = 6379,
	    .connect_timeout_ms = 100,
	    .op_timeout_ms = 50,
	    .down_backoff_ms = 1000,
	    .pool_size = 4,
	    .prefix = "sluice:",
	};
}

#define F(f) CONFPARSE_FIELD(struct redis_config, f)

static int set_addr(void *obj, const char *value, char *why, size_t whylen);

static const struct confparse_opt redis_opts[] = {
    {"addr", NULL, NULL, CONFPARSE_FUNC, .set = set_addr},
    {"host", NULL, NULL, CONFPARSE_STR, F(host), 1},
    {"port", NULL, NULL, CONFPARSE_INT, F(port), 1, 65535},
    {"connect_timeout_ms", NULL, NULL, CONFPARSE_INT, F(connect_timeout_ms), 1, 60000},
    {"op_timeout_ms", NULL, NULL, CONFPARSE_INT, F(op_timeout_ms), 1, 60000},
    {"down_backoff_ms", NULL, NULL, CONFPARSE_INT, F(down_backoff_ms), 0, 3600000},
    {"pool_size", NULL, NULL, CONFPARSE_INT, F(pool_size), 1, 64},
    {"prefix", NULL, NULL, CONFPARSE_STR, F(prefix)},
    {"user", NULL, NULL, CONFPARSE_STR, F(user)},
    {"password", NULL, NULL, CONFPARSE_STR, F(password)},
};

static const struct confparse_table redis_table = CONFPARSE_TABLE_OF(redis_opts);

/* "HOST:PORT" or "[V6]:PORT" into host and port, both or neither. */
static int set_addr(void *obj, const char *value, char *why, size_t whylen)
{
	struct redis_config *cfg = obj, tmp = *cfg;
	const char *colon = strrchr(value, ':'), *host = value;
	size_t hlen = colon ? (size_t)(colon - value) : 0;
	char sub[128];

	if (*host == '[' && hlen >= 2 && host[hlen - 1] == ']')
		host++, hlen -= 2;
	if (!colon || !hlen || hlen >= sizeof(cfg->host)) {
		snprintf(why, whylen, "expected HOST:PORT, e.g. 127.0.0.1:6379 or [::1]:6379");
		return -EINVAL;
	}
	if (confparse_apply(confparse_find(&redis_table, "port", NULL), &tmp, colon + 1, sub,
			    sizeof(sub))) {
		snprintf(why, whylen, "port %s: %s", colon + 1, sub);
		return -EINVAL;
	}
	snprintf(cfg->host, sizeof(cfg->host), "%.*s", (int)hlen, host);
	cfg->port = tmp.port;
	return 0;
}

int redis_config_set(struct redis_config *cfg, const char *key, const char *value, char *err,
		     size_t errlen)
{
	return confparse_set(&redis_table, cfg, key, value, err, errlen);
}

struct redis *redis_new(const struct redis_config *cfg)
{
	struct redis *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->n = cfg->pool_size ? cfg->pool_size : 1;
	r->conns = calloc(r->n, sizeof(*r->conns));
	if (!r->conns) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < r->n; i++)
		pthread_mutex_init(&r->conns[i].lock, NULL);
	pthread_mutex_init(&r->state, NULL);
	return r;
}

void redis_free(struct redis *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->conns[i].c)
			redisFree(r->conns[i].c);
		pthread_mutex_destroy(&r->conns[i].lock);
	}
	pthread_mutex_destroy(&r->state);
	free(r->conns);
	free(r);
}

/* Transport failure on conn: drop its connection, back off, warn once per outage. */
static int mark_down(struct redis *r, struct redis_conn *conn, int err, const char *what)
{
	if (conn->c)
		redisFree(conn->c);
	conn->c = NULL;
	STAT_ADD(r, errors);
	if (err == -ETIMEDOUT)
		STAT_ADD(r, timeouts);
	pthread_mutex_lock(&r->state);
	r->st.up = false;
	__atomic_store_n(&r->down_until, clock_mono_ns() + r->cfg.down_backoff_ms * MS,
			 __ATOMIC_RELAXED);
	if (!r->in_outage) {
		r->in_outage = true;
		r->st.outages++;
		log_warn("redis: unavailable, continuing without it",
			 "addr=%s:%u op=%s err=\"%s\" backoff_ms=%u", r->cfg.host, r->cfg.port,
			 what, strerror(-err), r->cfg.down_backoff_ms);
	}
	pthread_mutex_unlock(&r->state);
	return err;
}

/* A command was answered: end the outage if there was one. */
static void mark_up(struct redis *r)
{
	if (!__atomic_load_n(&r->in_outage, __ATOMIC_RELAXED) && r->st.up)
		return;
	pthread_mutex_lock(&r->state);
	if (r->in_outage)
		log_info("redis: available again", "addr=%s:%u", r->cfg.host, r->cfg.port);
	r->in_outage = false;
	r->st.up = true;
	pthread_mutex_unlock(&r->state);
}

/* hiredis reports errors through the context; map them to -errno. */
static int context_errno(const redisContext *c, int saved_errno)
{
	if (c && c->err == REDIS_ERR_EOF)
		return -ECONNRESET;
	if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == EINPROGRESS ||
	    saved_errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return saved_errno > 0 ? -saved_errno : -EIO;
}

/* AUTH on a fresh connection. A refusal is an outage like a dead server: back off, retry. */
static int conn_auth(struct redis *r, struct redis_conn *conn)
{
	redisReply *reply;
	int saved, ret = 0;

	errno = 0;
	reply = r->cfg.user[0] ? redisCommand(conn->c, "AUTH %s %s", r->cfg.user, r->cfg.password)
			       : redisCommand(conn->c, "AUTH %s", r->cfg.password);
	saved = errno;
	if (!reply)
		return mark_down(r, conn, context_errno(conn->c, saved), "auth");
	if (reply->type == REDIS_REPLY_ERROR) {
		if (!__atomic_load_n(&r->in_outage, __ATOMIC_RELAXED))
			log_warn("redis: AUTH refused", "addr=%s:%u user=%s reply=\"%s\"",
				 r->cfg.host, r->cfg.port, r->cfg.user[0] ? r->cfg.user : "default",
				 reply->str);
		ret = -EACCES;
	}
	freeReplyObject(reply);
	return ret ? mark_down(r, conn, ret, "auth") : 0;
}

/* Ready conn for a command (its lock held): -EAGAIN during the backoff, even with a
 * connection still open, so a stalled server costs one timeout, not one per connection. */
static int conn_ready(struct redis *r, struct redis_conn *conn)
{
	int saved;

	if (clock_mono_ns() < __atomic_load_n(&r->down_until, __ATOMIC_RELAXED)) {
		STAT_ADD(r, skipped);
		return -EAGAIN;
	}
	if (conn->c)
		return 0;
	errno = 0;
	conn->c =
	    redisConnectWithTimeout(r->cfg.host, r->cfg.port, tv_ms(r->cfg.connect_timeout_ms));
	saved = errno;
	if (!conn->c || conn->c->err)
		return mark_down(r, conn, context_errno(conn->c, saved), "connect");
	if (redisSetTimeout(conn->c, tv_ms(r->cfg.op_timeout_ms)) != REDIS_OK)
		return mark_down(r, conn, -EIO, "set timeout");
	if (r->cfg.password[0]) {
		int ret = conn_auth(r, conn);

		if (ret)
			return ret;
	}
	STAT_ADD(r, reconnects);
	return 0;
}

/* A free connection if there is one, else wait for the next in turn. Returned locked. */
static struct redis_conn *conn_get(struct redis *r)
{
	uint32_t first = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);

	for (uint32_t i = 0; i < r->n; i++) {
		struct redis_conn *conn = &r->conns[(first + i) % r->n];

		if (!pthread_mutex_trylock(&conn->lock))
			return conn;
	}
	pthread_mutex_lock(&r->conns[first % r->n].lock);
	return &r->conns[first % r->n];
}

/* Run one command; returns the reply (caller frees) or NULL with *err = -errno. */
static redisReply *redis_vcommand(struct redis *r, int *err, const char *what, const char *fmt,
				  va_list ap)
{
	struct redis_conn *conn = conn_get(r);
	redisReply *reply = NULL;
	int saved;

	*err = conn_ready(r, conn);
	if (*err)
		goto out;
	STAT_ADD(r, ops);
	errno = 0;
	reply = redisvCommand(conn->c, fmt, ap);
	saved = errno;
	if (!reply) {
		*err = mark_down(r, conn, context_errno(conn->c, saved), what);
		goto out;
	}
	mark_up(r);
	if (reply->type == REDIS_REPLY_ERROR) {
		log_warn("redis: command refused", "op=%s reply=\"%s\"", what, reply->str);
		STAT_ADD(r, errors);
		freeReplyObject(reply);
		reply = NULL;
		*err = -EPROTO;
	}
out:
	pthread_mutex_unlock(&conn->lock);
	return reply;
}

struct redisReply *redis_cmd(struct redis *r, int *err, const char *what, const char *fmt, ...)
{
	redisReply *reply;
	va_list ap;

	va_start(ap, fmt);
	reply = redis_vcommand(r, err, what, fmt, ap);
	va_end(ap);
	return reply;
}

const char *redis_prefix(const struct redis *r)
{
	return r->cfg.prefix;
}

static const char *const space_names[REDIS_SPACE_MAX] = {"dedupe", "cache", "idem"};

/* prefix + space + one "<length>:<bytes>" per field, joined by ':'. The lengths make the
 * key unambiguous whatever bytes the fields hold: tenant "acme" with key "eu:123" is
 * "4:acme:6:eu:123", tenant "acme:eu" with key "123" would be "7:acme:eu:3:123". */
static int make_key(const struct redis *r, char *buf, enum redis_space space,
		    const char *const *fields, unsigned nfields)
{
	int n;

	if (space >= REDIS_SPACE_MAX)
		return -EINVAL;
	n = snprintf(buf, KEY_MAX, "%s%s", r->cfg.prefix, space_names[space]);
	for (unsigned i = 0; i < nfields && n >= 0 && n < KEY_MAX; i++) {
		size_t len = strlen(fields[i]);

		n += snprintf(buf + n, KEY_MAX - (size_t)n, ":%zu:%s", len, fields[i]);
	}
	return n < 0 || n >= KEY_MAX ? -ENAMETOOLONG : n;
}

int redis_idem_check(struct redis *r, const char *tenant, const char *key, const char *id,
		     uint64_t ttl_ms, char *orig_id, size_t orig_len)
{
	char k[KEY_MAX];
	redisReply *rep;
	int n = make_key(r, k, REDIS_IDEM, (const char *const[]){tenant, key}, 2), err;

	if (n < 0)
		return n;
	/* one retry covers the key expiring between the SET and the GET */
	for (int tries = 0; tries < 2; tries++) {
		rep = redis_cmd(r, &err, "idem set", "SET %b %s NX PX %llu", k, (size_t)n, id,
				(unsigned long long)(ttl_ms ? ttl_ms : 1));
		if (!rep)
			return err;
		bool created = rep->type == REDIS_REPLY_STATUS;

		freeReplyObject(rep);
		if (created)
			return REDIS_IDEM_NEW;
		rep = redis_cmd(r, &err, "idem get", "GET %b", k, (size_t)n);
		if (!rep)
			return err;
		if (rep->type == REDIS_REPLY_STRING) {
			if (orig_len)
				snprintf(orig_id, orig_len, "%.*s", (int)rep->len, rep->str);
			freeReplyObject(rep);
			return REDIS_IDEM_DUPLICATE;
		}
		freeReplyObject(rep);
	}
	return -EAGAIN;
}

int redis_kv_get(struct redis *r, enum redis_space space, const char *const *fields,
		 unsigned nfields, char **value)
{
	char k[KEY_MAX];
	redisReply *rep;
	int n = make_key(r, k, space, fields, nfields), err, ret = 0;

	if (n < 0)
		return n;
	rep = redis_cmd(r, &err, "get", "GET %b", k, (size_t)n);
	if (!rep)
		return err;
	if (rep->type == REDIS_REPLY_STRING) {
		*value = strndup(rep->str, rep->len);
		ret = *value ? 1 : -ENOMEM;
	}
	freeReplyObject(rep);
	return ret;
}

int redis_kv_set(struct redis *r, enum redis_space space, const char *const *fields,
		 unsigned nfields, const char *value, uint64_t ttl_ms)
{
	char k[KEY_MAX];
	redisReply *rep;
	int n = make_key(r, k, space, fields, nfields), err;

	if (n < 0)
		return n;
	rep = redis_cmd(r, &err, "set", "SET %b %s PX %llu", k, (size_t)n, value,
			(unsigned long long)(ttl_ms ? ttl_ms : 1));
	if (!rep)
		return err;
	freeReplyObject(rep);
	return 0;
}

void redis_stats(struct redis *r, struct redis_stats *st)
{
	pthread_mutex_lock(&r->state);
	*st = r->st;
	pthread_mutex_unlock(&r->state);
}
