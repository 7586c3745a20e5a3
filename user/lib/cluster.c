// SPDX-License-Identifier: MIT
/* cluster.c -- this node's membership in a Sluice cluster, over one Redis (--cluster-redis)
 *
 * Everything Redis-side about membership is one script per period (RENEW), so the check
 * "the key is still ours", the renewal, the live-node set and its expiry happen atomically:
 * two nodes racing for one name can never both believe they hold it.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/cluster.h"
#include "lib/log.h"
#include "lib/ticker.h"

#define MS		  1000000ULL
#define SCRIPT_ERR_LOG_NS (60ULL * 1000 * MS) /* a failing script is logged once a minute */

/* KEYS[1] node key, KEYS[2] live-node set; ARGV token, ttl_ms, node name.
 * {1, live nodes} when the name is ours (now renewed), {0, ms left} when another holds it. */
static const char RENEW[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and cur ~= ARGV[1] then return {0, redis.call('PTTL', KEYS[1])} end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZADD', KEYS[2], now, ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))\n"
    "redis.call('PEXPIRE', KEYS[2], 10 * tonumber(ARGV[2]))\n"
    "return {1, redis.call('ZCARD', KEYS[2])}\n";

/* KEYS as RENEW; ARGV token, node name: give the name back if it is still ours. */
static const char RELEASE[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
			      "  redis.call('DEL', KEYS[1])\n"
			      "  redis.call('ZREM', KEYS[2], ARGV[2])\n"
			      "  return 1\n"
			      "end\n"
			      "return 0\n";

struct hook {
	cluster_hook_fn *fn;
	void *arg;
};

struct cluster {
	struct cluster_config cfg;
	char token[33];
	char key_node[200], key_nodes[64];
	redisContext *rc; /* the cluster thread's (or the starter's before cluster_run) */
	struct hook hooks[CLUSTER_HOOKS_MAX];
	unsigned nhooks;
	struct ticker *ticker;
	pthread_mutex_t lock; /* st, and the outage/conflict log state */
	struct cluster_status st;
	bool in_outage, in_conflict;
	uint64_t script_err_logged; /* CLOCK_MONOTONIC ns of the last such log line, 0: none */
};

char *cluster_key(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s%s", CLUSTER_PREFIX, what);
	return buf;
}

uint32_t cluster_ttl_ms(const struct cluster_config *cfg)
{
	uint32_t ttl = 4 * cfg->period_ms;

	return ttl < 1000 ? 1000 : ttl;
}

static struct timeval tv_ms(uint32_t ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

struct cluster *cluster_new(const struct cluster_config *cfg)
{
	struct cluster *c = calloc(1, sizeof(*c));
	unsigned char rnd[16];
	char what[160];

	if (!c)
		return NULL;
	if (!cfg->node[0] || !cfg->period_ms) {
		free(c);
		errno = EINVAL;
		return NULL;
	}
	c->cfg = *cfg;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(c->token + 2 * i, 3, "%02x", rnd[i]);
	snprintf(what, sizeof(what), "node:%s", cfg->node);
	cluster_key(c->key_node, sizeof(c->key_node), what);
	cluster_key(c->key_nodes, sizeof(c->key_nodes), "nodes");
	pthread_mutex_init(&c->lock, NULL);
	c->st.nodes = 1;
	return c;
}

const struct cluster_config *cluster_config(const struct cluster *c)
{
	return &c->cfg;
}

void cluster_status(struct cluster *c, struct cluster_status *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}

static void count_error(struct cluster *c)
{
	pthread_mutex_lock(&c->lock);
	c->st.errors++;
	pthread_mutex_unlock(&c->lock);
}

/* The connection failed: drop it, warn once per outage. */
static void conn_lost(struct cluster *c, const char *what)
{
	const char *why = c->rc && c->rc->errstr[0] ? c->rc->errstr : "no answer";
	bool warn;

	pthread_mutex_lock(&c->lock);
	warn = !c->in_outage;
	c->in_outage = true;
	c->st.up = false;
	c->st.errors++;
	pthread_mutex_unlock(&c->lock);
	if (warn)
		log_warn("cluster: Redis unavailable", "addr=%s:%u op=%s err=\"%s\"",
			 c->cfg.redis.host, c->cfg.redis.port, what, why);
	if (c->rc)
		redisFree(c->rc);
	c->rc = NULL;
}

/* Connect and authenticate if not connected. 0 or -EIO (logged once per outage). */
static int conn_open(struct cluster *c)
{
	const struct redis_config *r = &c->cfg.redis;
	redisReply *rep;

	if (c->rc)
		return 0;
	c->rc = redisConnectWithTimeout(r->host, r->port, tv_ms(r->connect_timeout_ms));
	if (!c->rc || c->rc->err || redisSetTimeout(c->rc, tv_ms(r->op_timeout_ms)) != REDIS_OK) {
		conn_lost(c, "connect");
		return -EIO;
	}
	if (!r->password[0])
		return 0;
	rep = r->user[0] ? redisCommand(c->rc, "AUTH %s %s", r->user, r->password)
			 : redisCommand(c->rc, "AUTH %s", r->password);
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		if (rep && !c->in_outage)
			log_warn("cluster: Redis AUTH refused", "addr=%s:%u user=%s reply=\"%s\"",
				 r->host, r->port, r->user[0] ? r->user : "default", rep->str);
		if (rep)
			freeReplyObject(rep);
		conn_lost(c, "auth");
		return -EACCES;
	}
	freeReplyObject(rep);
	return 0;
}

struct redisReply *cluster_command_argv(struct cluster *c, int argc, const char **argv,
					const size_t *argvlen)
{
	redisReply *rep;

	if (!c->rc)
		return NULL;
	rep = redisCommandArgv(c->rc, argc, argv, argvlen);
	if (!rep)
		conn_lost(c, argc ? argv[0] : "command");
	return rep;
}

struct redisReply *cluster_command(struct cluster *c, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	if (!c->rc)
		return NULL;
	va_start(ap, fmt);
	rep = redisvCommand(c->rc, fmt, ap);
	va_end(ap);
	if (!rep)
		conn_lost(c, "command");
	return rep;
}

/* One RENEW. 1 ours (nodes filled), 0 held by another (ms_left filled), -errno no answer. */
static int renew(struct cluster *c, long long *nodes, long long *ms_left)
{
	char ttl[16];
	uint64_t t0;
	redisReply *rep;
	int ret = conn_open(c);

	if (ret)
		return ret;
	ret = -EPROTO; /* until the reply is the script's */
	snprintf(ttl, sizeof(ttl), "%u", cluster_ttl_ms(&c->cfg));
	t0 = clock_mono_ns();
	rep = cluster_command(c, "EVAL %s 2 %s %s %s %s %s", RENEW, c->key_node, c->key_nodes,
			      c->token, ttl, c->cfg.node);
	if (!rep)
		return -EIO;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER &&
	    rep->element[1]->type == REDIS_REPLY_INTEGER) {
		ret = rep->element[0]->integer ? 1 : 0;
		*nodes = *ms_left = rep->element[1]->integer;
		pthread_mutex_lock(&c->lock);
		c->st.last_rtt_ns = clock_mono_ns() - t0;
		pthread_mutex_unlock(&c->lock);
	} else {
		if (clock_mono_ns() - c->script_err_logged >= SCRIPT_ERR_LOG_NS ||
		    !c->script_err_logged) {
			log_error("cluster: unexpected reply to the renewal script (logged every "
				  "minute while it lasts)",
				  "type=%d err=\"%s\"", rep->type,
				  rep->type == REDIS_REPLY_ERROR ? rep->str : "");
			c->script_err_logged = clock_mono_ns();
		}
		count_error(c);
	}
	freeReplyObject(rep);
	return ret;
}

/* The outcome of a renewal into the status (and the log, once per change). */
static void note_renewal(struct cluster *c, int ret, long long n)
{
	bool was_out, was_conflict;

	pthread_mutex_lock(&c->lock);
	was_out = c->in_outage;
	was_conflict = c->in_conflict;
	if (ret >= 0) {
		c->in_outage = false;
		c->st.renewals++;
	}
	c->st.up = ret == 1;
	c->st.registered = ret == 1;
	c->in_conflict = ret == 0;
	if (ret == 1)
		c->st.nodes = n > 0 ? (uint32_t)n : 1;
	pthread_mutex_unlock(&c->lock);
	if (ret >= 0 && was_out)
		log_info("cluster: Redis available again", "addr=%s:%u", c->cfg.redis.host,
			 c->cfg.redis.port);
	if (ret == 0 && !was_conflict)
		log_error(
		    "cluster: another live sluiced holds this node name; this node does not "
		    "take part in the cluster until it is free (give each node its own --node)",
		    "node=%s", c->cfg.node);
	else if (ret == 1 && was_conflict)
		log_info("cluster: node name registered", "node=%s", c->cfg.node);
}

int cluster_register(struct cluster *c, char *err, size_t errlen)
{
	uint64_t deadline =
	    clock_mono_ns() + (cluster_ttl_ms(&c->cfg) + 2ULL * c->cfg.period_ms) * MS;
	long long n = 0;
	int ret;

	for (;;) {
		ret = renew(c, &n, &n);
		if (ret < 0) {
			snprintf(err, errlen, "Redis %s:%u did not answer (%s)", c->cfg.redis.host,
				 c->cfg.redis.port,
				 ret == -EACCES ? "AUTH refused" : "unreachable");
			pthread_mutex_lock(&c->lock);
			c->st.up = false;
			pthread_mutex_unlock(&c->lock);
			return ret;
		}
		if (ret == 1 || clock_mono_ns() >= deadline)
			break;
		usleep(c->cfg.period_ms * 1000);
	}
	if (ret == 0) {
		snprintf(err, errlen,
			 "node name '%s' is already used by another live sluiced in the cluster "
			 "(Redis %s:%u key %s); give each node its own --node",
			 c->cfg.node, c->cfg.redis.host, c->cfg.redis.port, c->key_node);
		return -EEXIST;
	}
	note_renewal(c, ret, n);
	log_info("cluster: node registered", "node=%s redis=%s:%u nodes=%lld ttl_ms=%u",
		 c->cfg.node, c->cfg.redis.host, c->cfg.redis.port, n, cluster_ttl_ms(&c->cfg));
	return 0;
}

int cluster_add_hook(struct cluster *c, cluster_hook_fn *fn, void *arg)
{
	if (c->nhooks == CLUSTER_HOOKS_MAX)
		return -ENOSPC;
	c->hooks[c->nhooks++] = (struct hook){fn, arg};
	return 0;
}

static void tick(void *arg)
{
	struct cluster *c = arg;
	long long n = 0;
	int ret = renew(c, &n, &n);

	note_renewal(c, ret, n);
	for (unsigned i = 0; i < c->nhooks; i++)
		c->hooks[i].fn(c, ret == 1 && c->rc, c->hooks[i].arg);
}

int cluster_run(struct cluster *c)
{
	c->ticker = ticker_start((uint64_t)c->cfg.period_ms * MS, tick, c);
	return c->ticker ? 0 : -errno;
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	ticker_stop(c->ticker);
	if (c->rc && c->st.registered) {
		redisReply *rep = cluster_command(c, "EVAL %s 2 %s %s %s %s", RELEASE, c->key_node,
						  c->key_nodes, c->token, c->cfg.node);

		if (rep)
			freeReplyObject(rep);
	}
	if (c->rc)
		redisFree(c->rc);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
