// SPDX-License-Identifier: MIT
/* cshed.c -- one overload controller for the cluster: a Redis lease lock, a published decision
 *
 * A candidate's tick is one script call: take the lock when it is free, renew it when the
 * token is ours, and as holder publish the decision (the operator's pin if there is one,
 * else the controller's offer) with the lease's expiry, then open or close the cluster's
 * incident to match the published level. Everything a holder does is checked against its
 * token inside the script, so a holder that paused past its lease (and lost the lock to a
 * standby) changes nothing when it wakes. Non-candidates (ingress nodes) read the pin and
 * the decision with its remaining time (PTTL) in one call. What was read stays in force
 * locally until that remaining time runs out, so a node that loses Redis follows the last
 * decision for at most one lease and then its own controller.
 *
 * The sequence number moves when the published body (level, shares, pinned) changes or a
 * new holder takes over; decided_ms is the wall-clock time of the decision (the offer's, or
 * the pin's first publication), kept by a new holder that publishes the same body.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "control/cshed.h"
#include "lib/clock.h"
#include "lib/cluster.h"
#include "lib/log.h"
#include "lib/redis.h"

#define MS		 1000000ULL
#define KEY_LEN		 160
#define INCIDENT_TTL_MS	 (7ULL * 24 * 3600 * 1000)
#define REFUSED_LOG_NS	 (60ULL * 1000 * MS) /* a refused script is logged once a minute */
#define INCIDENT_KEY_FMT "sluice-overload-cluster-%s"

/* Candidates. KEYS: lock decision seq pin incident incident_seq lags; ARGV: token lease_ms
 * offer_body offer_decided_ms node incident_key_prefix now_ms decision_ttl_ms own_lag ("crit
 * normal low" in ms, or "" without a worker sample). Returns {role, pin, decision, pttl,
 * incident_action, incident_id, lags}: role 0 standby, 1 renewed, 2 taken; lags (holder
 * only) the largest lag per class any candidate reported within the lease, "crit normal
 * low" in ms. */
static const char tick_script[] =
    "if ARGV[9] ~= '' then redis.call('HSET', KEYS[7], ARGV[5], ARGV[9] .. ' ' .. ARGV[7]) end\n"
    "local held = redis.call('GET', KEYS[1])\n"
    "local took = 0\n"
    "if not held then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "  took = 1\n"
    "elseif held ~= ARGV[1] then\n"
    "  return {0, redis.call('GET', KEYS[4]), redis.call('GET', KEYS[2]),\n"
    "          redis.call('PTTL', KEYS[2]), 0, false, false}\n"
    "else\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "local pin = redis.call('GET', KEYS[4])\n"
    "local body, decided = ARGV[3] .. ' 0', ARGV[4]\n"
    "if pin then body, decided = pin .. ' 1', ARGV[7] end\n"
    "local cur = redis.call('GET', KEYS[2])\n"
    "local seq, was, curbody\n"
    "if cur then seq, was, curbody = string.match(cur, '^(%d+) (%d+) %S+ (.*)$') end\n"
    "if not seq or curbody ~= body then\n"
    "  seq = redis.call('INCR', KEYS[3])\n"
    "else\n"
    "  decided = was\n"
    "  if took == 1 then seq = redis.call('INCR', KEYS[3]) end\n"
    "end\n"
    "local val = seq .. ' ' .. decided .. ' ' .. ARGV[5] .. ' ' .. body\n"
    "redis.call('SET', KEYS[2], val, 'PX', ARGV[8])\n"
    "local act, id = 0, false\n"
    "local open = redis.call('GET', KEYS[5])\n"
    "local emergency = string.sub(body, 1, 2) == '2 '\n"
    "if emergency and not open then\n"
    "  id = tostring(redis.call('INCR', KEYS[6]))\n"
    "  redis.call('SET', KEYS[5], id)\n"
    "  if redis.call('SET', ARGV[6] .. id .. ':trigger', ARGV[5], 'NX', 'PX', 604800000)\n"
    "  then act = 1 end\n"
    "elseif open and not emergency then\n"
    "  redis.call('DEL', KEYS[5])\n"
    "  id = open\n"
    "  if redis.call('SET', ARGV[6] .. id .. ':resolve', ARGV[5], 'NX', 'PX', 604800000)\n"
    "  then act = 2 end\n"
    "end\n"
    "local lag, all, now = {0, 0, 0}, redis.call('HGETALL', KEYS[7]), tonumber(ARGV[7])\n"
    "for i = 1, #all, 2 do\n"
    "  local c, n, l, at = string.match(all[i + 1], '^(%d+) (%d+) (%d+) (%d+)$')\n"
    "  if not at or now - tonumber(at) > tonumber(ARGV[2]) then\n"
    "    redis.call('HDEL', KEYS[7], all[i])\n"
    "  else\n"
    "    lag[1] = math.max(lag[1], tonumber(c))\n"
    "    lag[2] = math.max(lag[2], tonumber(n))\n"
    "    lag[3] = math.max(lag[3], tonumber(l))\n"
    "  end\n"
    "end\n"
    "return {took + 1, pin, val, tonumber(ARGV[8]), act, id,\n"
    "        lag[1] .. ' ' .. lag[2] .. ' ' .. lag[3]}\n";

/* Everyone else. KEYS: pin decision. Same reply shape, role 0. */
static const char read_script[] =
    "return {0, redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]),\n"
    "        redis.call('PTTL', KEYS[2]), 0, false, false}\n";

_Static_assert(INCIDENT_TTL_MS == 604800000ULL, "the scripts' claim TTL");

struct cshed {
	struct cshed_config cfg;
	struct cluster *cl;
	char node[64], token[96];
	char k_lock[KEY_LEN], k_decision[KEY_LEN], k_seq[KEY_LEN], k_pin[KEY_LEN];
	char k_incident[KEY_LEN], k_incident_seq[KEY_LEN], k_incident_pfx[KEY_LEN];
	char k_lags[KEY_LEN];

	pthread_mutex_t lock; /* everything below */
	uint32_t offer_level, offer_pm[SLUICE_CLASS_MAX];
	uint64_t offer_decided_ms;
	bool have_lag; /* own_lag_ms: a worker's sample */
	uint64_t own_lag_ms[SLUICE_CLASS_MAX];
	uint64_t cl_lag_ms[SLUICE_CLASS_MAX]; /* holder: the largest reported, per class */
	uint64_t cl_lag_until_ns;	      /* monotonic: cl_lag_ms valid until */
	bool have;			      /* a decision (or pin) was read */
	struct cshed_decision cur;	      /* it */
	uint64_t cur_until_ns;		      /* monotonic: in force until */
	bool reachable;			      /* the last tick reached Redis */
	uint64_t refused_logged;	      /* monotonic: the last "refused" log line, 0: none */
	struct cshed_stats st;

	bool read_once;	    /* a tick got the cluster's pin and decision */
	bool offered;	    /* the controller offered a level after that */
	bool leaving, left; /* cshed_leave: give the lease back, stand for it no more */
	pthread_cond_t cv;
};

const char *cshed_source_name(enum cshed_source s)
{
	static const char *const names[CSHED_SRC_MAX] = {"local controller", "cluster controller",
							 "cluster pin", "local pin"};

	return s < CSHED_SRC_MAX ? names[s] : "?";
}

static uint64_t wall_ms(void)
{
	return clock_real_ns() / MS;
}

static void keys(char *dst, const char *name)
{
	char what[64];

	snprintf(what, sizeof(what), "shed:%s", name);
	cluster_key(dst, KEY_LEN, what);
}

struct cshed *cshed_new(struct cluster *cl, const struct cshed_config *cfg)
{
	const char *node = cl ? cluster_config(cl)->node : NULL;
	struct cshed *c;
	uint8_t rnd[8] = {0};

	if (!node || !*node || strpbrk(node, " \t\r\n") || strlen(node) >= sizeof(c->node)) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	if (!c->cfg.lease_ms)
		c->cfg.lease_ms = CSHED_LEASE_MS_DEFAULT;
	if (c->cfg.lease_ms < 2 * cluster_config(cl)->period_ms) {
		free(c);
		errno = EINVAL;
		return NULL;
	}
	c->cl = cl;
	snprintf(c->node, sizeof(c->node), "%s", node);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memcpy(rnd, &(uint64_t){clock_mono_ns()}, sizeof(rnd));
	snprintf(c->token, sizeof(c->token), "%s/%02x%02x%02x%02x%02x%02x%02x%02x", c->node, rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	keys(c->k_lock, "lock");
	keys(c->k_decision, "decision");
	keys(c->k_seq, "seq");
	keys(c->k_pin, "pin");
	keys(c->k_incident, "incident");
	keys(c->k_incident_seq, "incident:seq");
	keys(c->k_incident_pfx, "incident:");
	keys(c->k_lags, "lags");
	c->offer_decided_ms = wall_ms();
	c->reachable = true;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	return c;
}

/* "seq decided_ms node level pm pm pm pinned" into d; false when malformed. */
static bool parse_decision(const char *s, struct cshed_decision *d)
{
	unsigned long long seq, decided;
	unsigned level, pm[3], pinned;
	char node[64];

	if (sscanf(s, "%llu %llu %63s %u %u %u %u %u", &seq, &decided, node, &level, &pm[0], &pm[1],
		   &pm[2], &pinned) != 8 ||
	    level > SLUICE_SHED_EMERGENCY || pm[0] > 1000 || pm[1] > 1000 || pm[2] > 1000)
		return false;
	*d = (struct cshed_decision){.level = level,
				     .permille = {pm[0], pm[1], pm[2]},
				     .pinned = pinned != 0,
				     .seq = seq,
				     .decided_ms = decided};
	snprintf(d->node, sizeof(d->node), "%s", node);
	return true;
}

/* "level pm pm pm" (a pin) into d. */
static bool parse_pin(const char *s, struct cshed_decision *d)
{
	unsigned level, pm[3];

	if (sscanf(s, "%u %u %u %u", &level, &pm[0], &pm[1], &pm[2]) != 4 ||
	    level > SLUICE_SHED_EMERGENCY || pm[0] > 1000 || pm[1] > 1000 || pm[2] > 1000)
		return false;
	*d =
	    (struct cshed_decision){.level = level, .permille = {pm[0], pm[1], pm[2]}, .pinned = 1};
	snprintf(d->node, sizeof(d->node), "operator");
	return true;
}

static const char *str_of(const redisReply *e)
{
	return e && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) ? e->str
										     : NULL;
}

static long long int_of(const redisReply *e)
{
	return e && e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
}

static bool same_decision(const struct cshed_decision *a, const struct cshed_decision *b)
{
	return a->seq == b->seq && a->level == b->level && a->pinned == b->pinned &&
	       !memcmp(a->permille, b->permille, sizeof(a->permille));
}

/* Take in a tick's reply (lock held). Returns true when what is in force changed. */
static bool take_reply(struct cshed *c, const redisReply *rep, uint64_t now)
{
	const char *pin = str_of(rep->element[1]), *dec = str_of(rep->element[2]);
	long long pttl = int_of(rep->element[3]);
	struct cshed_decision d, p;
	bool had = c->have, changed;
	struct cshed_decision before = c->cur;
	bool ok_dec = dec && pttl > 0 && parse_decision(dec, &d);
	bool ok_pin = pin && parse_pin(pin, &p);

	c->have = ok_dec || ok_pin;
	if (ok_pin && !(ok_dec && d.pinned && d.level == p.level &&
			!memcmp(d.permille, p.permille, sizeof(d.permille)))) {
		/* a pin the holder has not published yet (or no holder): in force at once */
		if (ok_dec)
			p.seq = d.seq;
		d = p;
	}
	if (c->have) {
		c->cur = d;
		/* a pin has no expiry; it stays in force as long as a decision would */
		c->cur_until_ns = now + (ok_dec ? (uint64_t)pttl : c->cfg.lease_ms) * MS;
		c->st.seq = d.seq;
	}
	changed = had != c->have || (c->have && !same_decision(&before, &c->cur));
	return changed;
}

/* The holder's view of the cluster's lag (lock held): valid for two periods. */
static void take_lags(struct cshed *c, const char *lags, uint64_t now)
{
	unsigned long long l[SLUICE_CLASS_MAX];

	if (!lags || sscanf(lags, "%llu %llu %llu", &l[0], &l[1], &l[2]) != 3)
		return;
	for (int k = 0; k < SLUICE_CLASS_MAX; k++)
		c->cl_lag_ms[k] = l[k];
	c->cl_lag_until_ns = now + 2ULL * cluster_config(c->cl)->period_ms * MS;
}

static void on_role(struct cshed *c, long long role)
{
	bool was = c->st.leader;

	c->st.leader = role > 0;
	if (role == 2) {
		c->st.takeovers++;
		log_warn("cluster shed: this node took the controller lease", "node=%s lease_ms=%u",
			 c->node, c->cfg.lease_ms);
	} else if (was && !c->st.leader) {
		log_warn("cluster shed: this node no longer holds the controller lease", "node=%s",
			 c->node);
	}
}

/* The script's reply shape: {role, pin, decision, pttl, incident_action, incident_id, lags}. */
static bool reply_ok(const redisReply *rep)
{
	return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 7;
}

static redisReply *run_tick(struct cshed *c)
{
	char body[64], decided[24], lease[16], now[24], ttl[16], lag[80] = "";
	uint64_t offer_ms;
	bool offered;

	pthread_mutex_lock(&c->lock);
	if (c->have_lag)
		snprintf(lag, sizeof(lag), "%" PRIu64 " %" PRIu64 " %" PRIu64, c->own_lag_ms[0],
			 c->own_lag_ms[1], c->own_lag_ms[2]);
	snprintf(body, sizeof(body), "%u %u %u %u", c->offer_level, c->offer_pm[0], c->offer_pm[1],
		 c->offer_pm[2]);
	offer_ms = c->offer_decided_ms;
	offered = c->offered;
	pthread_mutex_unlock(&c->lock);
	/* a candidate stands for the lease only once its controller has offered a level after
	 * seeing the cluster's (cshed_offer): a worker starting in the middle of an emergency
	 * must not take a free lease and publish its fresh NORMAL first */
	if (!c->cfg.candidate || !offered)
		return cluster_command(c->cl, "EVAL %s 2 %s %s", read_script, c->k_pin,
				       c->k_decision);
	snprintf(decided, sizeof(decided), "%" PRIu64, offer_ms);
	snprintf(lease, sizeof(lease), "%u", c->cfg.lease_ms);
	/* the decision outlives the lock by two periods: a standby takes the lock over at its
	 * next period and renews the decision before the nodes fall back to their own */
	snprintf(ttl, sizeof(ttl), "%u", c->cfg.lease_ms + 2 * cluster_config(c->cl)->period_ms);
	snprintf(now, sizeof(now), "%" PRIu64, wall_ms());
	return cluster_command(c->cl, "EVAL %s 7 %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s",
			       tick_script, c->k_lock, c->k_decision, c->k_seq, c->k_pin,
			       c->k_incident, c->k_incident_seq, c->k_lags, c->token, lease, body,
			       decided, c->node, c->k_incident_pfx, now, ttl, lag);
}

/* Redis did not answer (rep NULL or not the script's reply): the last decision holds until
 * it expires; no renewal, so no longer the holder. Lock held. Returns whether what is in
 * force changed. */
static bool unreachable(struct cshed *c, const redisReply *rep, uint64_t now)
{
	bool changed = false;

	if (rep && rep->type == REDIS_REPLY_ERROR &&
	    (!c->refused_logged || now - c->refused_logged >= REFUSED_LOG_NS)) {
		log_error("cluster shed: Redis refused the script (logged every minute while it "
			  "lasts)",
			  "err=\"%s\"", rep->str);
		c->refused_logged = now;
	}
	if (c->reachable)
		log_warn(
		    "cluster shed: Redis unreachable, the last decision holds until it expires",
		    "node=%s", c->node);
	c->reachable = false;
	c->st.unreachable++;
	on_role(c, 0);
	if (c->have && now >= c->cur_until_ns) {
		c->have = false;
		changed = true;
	}
	return changed;
}

/* A holder that stops gives the lease back, so a standby takes over at its next tick
 * rather than after the lease (a script: only with our token). On the cluster thread. */
static void release(struct cshed *c)
{
	static const char script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
				     "return redis.call('DEL', KEYS[1]) end return 0";
	redisReply *rep = cluster_command(c->cl, "EVAL %s 1 %s %s", script, c->k_lock, c->token);

	if (rep)
		freeReplyObject(rep);
	log_info("cluster shed: controller lease given back", "node=%s", c->node);
}

/* cshed_leave asked: give the lease back, stand for it no more. Lock held. */
static void leave(struct cshed *c, bool up)
{
	if (c->st.leader && up) {
		pthread_mutex_unlock(&c->lock);
		release(c);
		pthread_mutex_lock(&c->lock);
	}
	c->st.leader = false;
	c->left = true;
	c->cfg.candidate = false;
	pthread_cond_broadcast(&c->cv);
}

static int tick(struct cshed *c, bool up)
{
	redisReply *rep;
	uint64_t now;
	bool changed = false, ok;
	long long act = 0;
	char id[32] = "";
	struct cshed_decision d;

	pthread_mutex_lock(&c->lock);
	if (c->leaving && !c->left)
		leave(c, up);
	pthread_mutex_unlock(&c->lock);
	rep = up ? run_tick(c) : NULL;
	ok = reply_ok(rep);
	now = clock_mono_ns();
	pthread_mutex_lock(&c->lock);
	if (!ok) {
		changed = unreachable(c, rep, now);
	} else {
		if (!c->reachable)
			log_info("cluster shed: Redis answers again", "node=%s", c->node);
		c->reachable = true;
		c->read_once = true;
		on_role(c, int_of(rep->element[0]));
		changed = take_reply(c, rep, now);
		take_lags(c, str_of(rep->element[6]), now);
		act = int_of(rep->element[4]);
		if (str_of(rep->element[5]))
			snprintf(id, sizeof(id), "%s", str_of(rep->element[5]));
		if (act)
			c->st.incidents++;
	}
	d = c->cur;
	pthread_mutex_unlock(&c->lock);
	if (act && c->cfg.on_incident) {
		char key[64];

		snprintf(key, sizeof(key), INCIDENT_KEY_FMT, id);
		log_warn(act == CSHED_TRIGGER ? "cluster shed: incident opened"
					      : "cluster shed: incident resolved",
			 "dedup_key=%s node=%s seq=%" PRIu64, key, c->node, d.seq);
		c->cfg.on_incident(c->cfg.on_incident_arg, (enum cshed_incident)act, key, &d);
	}
	if (changed && c->cfg.on_change)
		c->cfg.on_change(c->cfg.on_change_arg);
	if (rep)
		freeReplyObject(rep);
	return ok ? 0 : -EIO;
}

int cshed_tick(struct cshed *c)
{
	return tick(c, true);
}

void cshed_hook(struct cluster *cl, bool up, void *arg)
{
	tick(arg, up);
}

void cshed_offer(struct cshed *c, uint32_t level, const uint32_t permille[SLUICE_CLASS_MAX])
{
	pthread_mutex_lock(&c->lock);
	c->offered = c->read_once;
	if (level != c->offer_level || memcmp(permille, c->offer_pm, sizeof(c->offer_pm))) {
		c->offer_level = level;
		memcpy(c->offer_pm, permille, sizeof(c->offer_pm));
		c->offer_decided_ms = wall_ms();
	}
	pthread_mutex_unlock(&c->lock);
}

void cshed_report_lag(struct cshed *c, const uint64_t lag_ns[SLUICE_CLASS_MAX])
{
	pthread_mutex_lock(&c->lock);
	for (int k = 0; k < SLUICE_CLASS_MAX; k++)
		c->own_lag_ms[k] = lag_ns[k] / MS;
	c->have_lag = true;
	pthread_mutex_unlock(&c->lock);
}

bool cshed_cluster_lag(struct cshed *c, uint64_t lag_ns[SLUICE_CLASS_MAX])
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = c->st.leader && clock_mono_ns() < c->cl_lag_until_ns;
	for (int k = 0; ok && k < SLUICE_CLASS_MAX; k++)
		lag_ns[k] = c->cl_lag_ms[k] * MS;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

bool cshed_get(struct cshed *c, struct cshed_decision *out)
{
	bool have;

	pthread_mutex_lock(&c->lock);
	have = c->have && clock_mono_ns() < c->cur_until_ns;
	if (have)
		*out = c->cur;
	pthread_mutex_unlock(&c->lock);
	return have;
}

bool cshed_leader(struct cshed *c)
{
	bool l;

	pthread_mutex_lock(&c->lock);
	l = c->st.leader;
	pthread_mutex_unlock(&c->lock);
	return l;
}

void cshed_stats(struct cshed *c, struct cshed_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}

void cshed_leave(struct cshed *c)
{
	struct timespec due;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->leaving = true;
	due =
	    clock_deadline(CLOCK_REALTIME, 2ULL * cluster_config(c->cl)->period_ms * MS + 100 * MS);
	while (c->st.leader && !c->left)
		if (pthread_cond_timedwait(&c->cv, &c->lock, &due))
			break;
	pthread_mutex_unlock(&c->lock);
}

void cshed_free(struct cshed *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	free(c);
}

int cshed_pin_set(struct redis *r, uint32_t level, const uint32_t permille[SLUICE_CLASS_MAX])
{
	char key[KEY_LEN], val[64];
	redisReply *rep;
	int err = 0;

	if (level > SLUICE_SHED_EMERGENCY)
		return -EINVAL;
	for (int k = 0; k < SLUICE_CLASS_MAX; k++)
		if (permille[k] > 1000)
			return -EINVAL;
	keys(key, "pin");
	snprintf(val, sizeof(val), "%u %u %u %u", level, permille[0], permille[1], permille[2]);
	rep = redis_cmd(r, &err, "cluster shed pin", "SET %s %s", key, val);
	if (rep)
		freeReplyObject(rep);
	return err;
}

int cshed_pin_clear(struct redis *r)
{
	char key[KEY_LEN];
	redisReply *rep;
	int err = 0;

	keys(key, "pin");
	rep = redis_cmd(r, &err, "cluster shed unpin", "DEL %s", key);
	if (rep)
		freeReplyObject(rep);
	return err;
}

int cshed_pin_get(struct redis *r, struct cshed_decision *out)
{
	char key[KEY_LEN];
	redisReply *rep;
	int err = 0, ret;

	keys(key, "pin");
	rep = redis_cmd(r, &err, "cluster shed pin", "GET %s", key);
	if (!rep)
		return err;
	ret = str_of(rep) ? (parse_pin(rep->str, out) ? 1 : -EBADMSG) : 0;
	freeReplyObject(rep);
	return ret;
}

int cshed_decision_read(struct redis *r, struct cshed_decision *out)
{
	char key[KEY_LEN];
	redisReply *rep;
	int err = 0, ret;

	keys(key, "decision");
	rep = redis_cmd(r, &err, "cluster shed decision", "GET %s", key);
	if (!rep)
		return err;
	ret = str_of(rep) ? (parse_decision(rep->str, out) ? 1 : -EBADMSG) : 0;
	freeReplyObject(rep);
	return ret;
}
