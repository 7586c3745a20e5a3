// SPDX-License-Identifier: MIT
/* lease.c -- cluster-wide tenant credits: this node's share of every tenant's limits
 *
 * Two layers: lease_exchange() is the ledger (one EVAL of SPLIT for all tenants), the agent
 * (tick) measures demand, calls it and writes the shares. The agent's state is touched only
 * on the cluster thread (and by lease_new before the thread runs), so it needs no lock.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit/lease.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "nic/bpf_loader.h"

#define NS 1000000000.0

/* KEYS[i]: one tenant's ledger hash, field = node, value struct.pack('<ddddd', Redis TIME ms,
 * demand per second of SYN, PKT, REQ, CRIT; -1 where the node has no such limit). ARGV[1]
 * node, ARGV[2] expiry ms, ARGV[3] floor fraction, ARGV[4] hash TTL ms; then per key 8 values:
 * the 4 demands and the 4 global rates (0: none). Returns per key 8 integers: this node's 4
 * shares in thousandths per second (-1 where it has no such limit), and the 4 counts of
 * nodes sharing each. (Binary values, reused tables and integer replies: tools/bench/lease
 * measured the string version at about twice the Redis CPU.)
 * Max-min fair: every live node first gets floor x rate / nodes; the rest is water-filled:
 * the level L where the demands below it plus L for each of the others use it all up, each
 * node gets min(demand, L); when every demand is met what is left is split evenly, so the
 * shares always add up to the rate. The TTL is refreshed one second in eight (not per call):
 * a tenant every node dropped goes away with its hash. */
static const char SPLIT[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local node, expire = ARGV[1], tonumber(ARGV[2])\n"
    "local floorf, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local refresh = math.floor(now / 1000) % 8 == 0\n"
    "local pack, unpk, sort, min = struct.pack, struct.unpack, table.sort, math.min\n"
    "local out, o, a = {}, 0, 5\n"
    "local dem = {{}, {}, {}, {}}\n"
    "local my = {0, 0, 0, 0}\n"
    "for i = 1, #KEYS do\n"
    "  local key = KEYS[i]\n"
    "  for k = 1, 4 do my[k] = tonumber(ARGV[a + k - 1]) end\n"
    "  redis.call('HSET', key, node, pack('<ddddd', now, my[1], my[2], my[3], my[4]))\n"
    "  if refresh then redis.call('PEXPIRE', key, ttl) end\n"
    "  local all = redis.call('HGETALL', key)\n"
    "  local n1, n2, n3, n4, stale = 0, 0, 0, 0, nil\n"
    "  local d1, d2, d3, d4 = dem[1], dem[2], dem[3], dem[4]\n"
    "  for f = 2, #all, 2 do\n"
    "    local v = all[f]\n"
    "    local ts, x1, x2, x3, x4 = 0\n"
    "    if #v == 40 then ts, x1, x2, x3, x4 = unpk('<ddddd', v) end\n"
    "    if ts > 0 and now - ts <= expire then\n"
    "      if x1 >= 0 then n1 = n1 + 1; d1[n1] = x1 end\n"
    "      if x2 >= 0 then n2 = n2 + 1; d2[n2] = x2 end\n"
    "      if x3 >= 0 then n3 = n3 + 1; d3[n3] = x3 end\n"
    "      if x4 >= 0 then n4 = n4 + 1; d4[n4] = x4 end\n"
    "    else\n"
    "      stale = stale or {}\n"
    "      stale[#stale + 1] = all[f - 1]\n"
    "    end\n"
    "  end\n"
    "  if stale then redis.call('HDEL', key, unpack(stale)) end\n"
    "  local cnt = {n1, n2, n3, n4}\n"
    "  for k = 1, 4 do\n"
    "    local rate, n, share, d = tonumber(ARGV[a + 3 + k]), cnt[k], -1, dem[k]\n"
    "    if rate > 0 and my[k] >= 0 and n > 0 then\n"
    "      if n == 1 then\n"
    "        share = rate\n"
    "      else\n"
    "        for j = #d, n + 1, -1 do d[j] = nil end\n"
    "        local floor = rate * floorf / n\n"
    "        local rest, left, level = rate - floor * n, n, nil\n"
    "        sort(d)\n"
    "        for j = 1, n do\n"
    "          local fair = rest / left\n"
    "          if d[j] < fair then\n"
    "            rest, left = rest - d[j], left - 1\n"
    "          else\n"
    "            level = fair\n"
    "            break\n"
    "          end\n"
    "        end\n"
    "        if level then share = min(my[k], level) + floor\n"
    "        else share = my[k] + floor + rest / n end\n"
    "      end\n"
    "    end\n"
    "    o = o + 1\n"
    "    out[o] = share < 0 and -1 or math.floor(share * 1000 + 0.5)\n"
    "  end\n"
    "  for k = 1, 4 do o = o + 1; out[o] = cnt[k] end\n"
    "  a = a + 8\n"
    "end\n"
    "return out\n";

static const char *const limit_names[SLUICE_LIMIT_MAX] = {"syn", "pkt", "req", "crit"};

const char *lease_limit_name(unsigned limit)
{
	return limit < SLUICE_LIMIT_MAX ? limit_names[limit] : "?";
}

/* Argument list of one exchange: malloc'd strings in one arena. */
struct args {
	size_t n, cap;
	const char **v;
	size_t *len;
	char **own;
	size_t nown;
};

static int arg_push(struct args *a, const char *s, size_t len, bool own)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		const char **v = realloc(a->v, cap * sizeof(*v));
		size_t *l = v ? realloc(a->len, cap * sizeof(*l)) : NULL;
		char **o = l ? realloc(a->own, cap * sizeof(*o)) : NULL;

		if (v)
			a->v = v;
		if (l)
			a->len = l;
		if (!o)
			return -ENOMEM;
		a->own = o;
		a->cap = cap;
	}
	if (own) {
		char *copy = strndup(s, len);

		if (!copy)
			return -ENOMEM;
		a->own[a->nown++] = copy;
		s = copy;
	}
	a->v[a->n] = s;
	a->len[a->n++] = len;
	return 0;
}

static int arg_fmt(struct args *a, const char *fmt, double v)
{
	char buf[48];
	int len = snprintf(buf, sizeof(buf), fmt, v);

	return arg_push(a, buf, (size_t)len, true);
}

static void args_free(struct args *a)
{
	for (size_t i = 0; i < a->nown; i++)
		free(a->own[i]);
	free(a->own);
	free(a->v);
	free(a->len);
}

/* Group boundaries: entries of one tenant are adjacent. */
static size_t group_end(const struct lease_entry *e, size_t n, size_t i)
{
	size_t j = i + 1;

	while (j < n && !strcmp(e[j].tenant, e[i].tenant))
		j++;
	return j;
}

static int build(struct args *a, struct cluster *c, const struct lease_entry *e, size_t n)
{
	const struct cluster_config *cc = cluster_config(c);
	double expire = (double)LEASE_EXPIRE_PERIODS * cc->period_ms;
	size_t keys = 0, i;
	char key[200], what[100];
	int ret = arg_push(a, "EVAL", 4, false) ?: arg_push(a, SPLIT, sizeof(SPLIT) - 1, false);

	for (i = 0; i < n; i = group_end(e, n, i))
		keys++;
	ret = ret ?: arg_fmt(a, "%.0f", (double)keys);
	for (i = 0; !ret && i < n; i = group_end(e, n, i)) {
		snprintf(what, sizeof(what), "lease:%s", e[i].tenant);
		cluster_key(key, sizeof(key), what);
		ret = arg_push(a, key, strlen(key), true);
	}
	ret = ret ?: arg_push(a, cc->node, strlen(cc->node), false);
	ret = ret ?: arg_fmt(a, "%.0f", expire);
	ret = ret ?: arg_fmt(a, "%.4f", LEASE_FLOOR);
	ret = ret ?: arg_fmt(a, "%.0f", 20 * expire < 20000 ? 20000 : 20 * expire);
	for (i = 0; !ret && i < n;) {
		size_t end = group_end(e, n, i);
		double dem[SLUICE_LIMIT_MAX] = {-1, -1, -1, -1}, rate[SLUICE_LIMIT_MAX] = {0};

		for (; i < end; i++)
			if (e[i].limit < SLUICE_LIMIT_MAX) {
				dem[e[i].limit] = e[i].demand;
				rate[e[i].limit] = e[i].rate;
			}
		for (int k = 0; !ret && k < SLUICE_LIMIT_MAX; k++)
			ret = arg_fmt(a, dem[k] < 0 ? "%.0f" : "%.3f", dem[k]);
		for (int k = 0; !ret && k < SLUICE_LIMIT_MAX; k++)
			ret = arg_fmt(a, "%.6f", rate[k]);
	}
	return ret;
}

/* The shares of reply into e (one group of 8 values per tenant). */
static int parse(const redisReply *rep, struct lease_entry *e, size_t n)
{
	size_t g = 0;

	for (size_t i = 0; i < n; i = group_end(e, n, i), g++) {
		if (rep->elements < 8 * (g + 1))
			return -EPROTO;
		for (size_t j = i; j < group_end(e, n, i); j++) {
			const redisReply *s = rep->element[8 * g + e[j].limit],
					 *k = rep->element[8 * g + 4 + e[j].limit];

			if (e[j].limit >= SLUICE_LIMIT_MAX || s->type != REDIS_REPLY_INTEGER ||
			    k->type != REDIS_REPLY_INTEGER)
				return -EPROTO;
			e[j].share = s->integer < 0 ? -1 : (double)s->integer / 1000;
			e[j].nodes = (unsigned)k->integer;
		}
	}
	return rep->elements == 8 * g ? 0 : -EPROTO;
}

int lease_exchange(struct cluster *c, struct lease_entry *e, size_t n)
{
	struct args a = {0};
	redisReply *rep;
	int ret;

	if (!n)
		return 0;
	ret = build(&a, c, e, n);
	if (ret) {
		args_free(&a);
		return ret;
	}
	rep = cluster_command_argv(c, (int)a.n, a.v, a.len);
	args_free(&a);
	if (!rep)
		return -EIO;
	ret = rep->type == REDIS_REPLY_ARRAY ? parse(rep, e, n) : -EPROTO;
	if (ret) {
		static uint64_t logged; /* once a minute while it lasts, not once a period */
		uint64_t now = clock_mono_ns(), last = __atomic_load_n(&logged, __ATOMIC_RELAXED);

		if ((!last || now - last >= 60 * 1000000000ULL) &&
		    __atomic_compare_exchange_n(&logged, &last, now, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			log_error("lease: unexpected reply from the ledger script (logged every "
				  "minute while it lasts)",
				  "type=%d err=\"%s\"", rep->type,
				  rep->type == REDIS_REPLY_ERROR ? rep->str : "");
	}
	freeReplyObject(rep);
	return ret;
}

/* ---- the agent ------------------------------------------------------------------- */

struct slot_state {
	uint64_t last[SLUICE_LIMIT_MAX]; /* cumulative demand counters at the last tick */
	double demand[SLUICE_LIMIT_MAX]; /* per second, smoothed */
	bool seen;			 /* last[] is valid */
	bool shared;			 /* a share was written for this slot */
	uint32_t gen;			 /* tick that last saw the tenant */
};

/* What one tick needs per (tenant, limit) beyond the ledger entry. */
struct pending {
	uint32_t slot;
	uint64_t burst; /* global */
};

struct lease {
	struct lease_opts o;
	struct slot_state *slots; /* by slot */
	uint32_t gen;
	uint64_t last_tick, last_ok; /* CLOCK_MONOTONIC ns */
	bool in_fallback, ever_ok;
	struct lease_entry *e;
	struct pending *p;
	size_t cap;
	struct metric_family *f_share, *f_source, *f_errors, *f_rtt, *f_nodes;
};

static void set_source_metric(struct lease *l, enum sluice_share_source src)
{
	static const char *const names[SLUICE_SHARE_MAX] = {"local", "lease", "fallback"};

	for (int s = 0; s < SLUICE_SHARE_MAX; s++)
		metric_set(metrics_series(l->f_source, (const char *[]){names[s]}), s == (int)src);
}

/* The global limits of tn: the config map's (sluicectl tenant set) when there is one. */
static void global_limits(const struct lease *l, const struct tenant *tn,
			  struct sluice_limit out[SLUICE_LIMIT_MAX])
{
	struct sluice_tenant_cfg cfg;

	memcpy(out, tn->limit, sizeof(tn->limit));
	if (l->o.cfg_fd >= 0 && !bpf_map_lookup_elem(l->o.cfg_fd, &tn->slot, &cfg) &&
	    !strcmp(cfg.name, tn->name))
		memcpy(out, cfg.limit, sizeof(cfg.limit));
}

/* Cumulative demand of slot per limit: admitted + refused. */
static void demand_counters(const struct lease *l, uint32_t slot, uint64_t out[SLUICE_LIMIT_MAX])
{
	struct sluice_counters ct;

	memset(out, 0, sizeof(uint64_t) * SLUICE_LIMIT_MAX);
	if (l->o.counters_fd >= 0 && !sluice_bpf_counters_sum(l->o.counters_fd, slot, &ct)) {
		out[SLUICE_LIMIT_SYN] = ct.syn_passed + ct.packets[SLUICE_V_SYN_LIMIT];
		out[SLUICE_LIMIT_PKT] = ct.packets[SLUICE_V_PASS] + ct.packets[SLUICE_V_PKT_LIMIT] +
					ct.packets[SLUICE_V_SYN_LIMIT] + ct.packets[SLUICE_V_SHED];
	}
	out[SLUICE_LIMIT_REQ] = admission_demand(l->o.adm, slot, SLUICE_LIMIT_REQ);
	out[SLUICE_LIMIT_CRIT] = admission_demand(l->o.adm, slot, SLUICE_LIMIT_CRIT);
}

static int reserve(struct lease *l, size_t n)
{
	struct lease_entry *e;
	struct pending *p;

	if (n <= l->cap)
		return 0;
	e = realloc(l->e, n * sizeof(*e));
	if (e)
		l->e = e;
	p = e ? realloc(l->p, n * sizeof(*p)) : NULL;
	if (!p)
		return -ENOMEM;
	l->p = p;
	l->cap = n;
	return 0;
}

/* Measure and list every (tenant, finite limit); limits without a rate lose their share.
 * Returns the number of entries (tenants stays acquired: the names are its). */
static size_t collect(struct lease *l, const struct tenants *t, uint64_t now, double dt)
{
	size_t n = 0;

	if (reserve(l, (size_t)tenants_count(t) * SLUICE_LIMIT_MAX))
		return 0;
	l->gen++;
	for (unsigned i = 0; i < tenants_count(t); i++) {
		const struct tenant *tn = tenants_at(t, i);
		struct slot_state *ss = &l->slots[tn->slot % SLUICE_MAX_TENANTS];
		struct sluice_limit g[SLUICE_LIMIT_MAX];
		uint64_t cur[SLUICE_LIMIT_MAX];

		global_limits(l, tn, g);
		demand_counters(l, tn->slot, cur);
		for (unsigned k = 0; k < SLUICE_LIMIT_MAX; k++) {
			double rate = ss->seen && dt > 0 && cur[k] >= ss->last[k]
					  ? (double)(cur[k] - ss->last[k]) / dt
					  : 0;

			ss->demand[k] = ss->seen ? 0.5 * ss->demand[k] + 0.5 * rate : 0;
			ss->last[k] = cur[k];
			if (!g[k].interval_ns) {
				if (ss->shared)
					admission_share_set(l->o.adm, tn->slot, k, NULL,
							    SLUICE_SHARE_LOCAL, now);
				continue;
			}
			l->e[n] = (struct lease_entry){.tenant = tn->name,
						       .limit = k,
						       .demand = ss->demand[k],
						       .rate = NS / (double)g[k].interval_ns};
			l->p[n++] = (struct pending){tn->slot, g[k].burst};
		}
		ss->seen = true;
		ss->gen = l->gen;
	}
	return n;
}

/* Write share (per second) of entry i with source src. */
static void apply(struct lease *l, size_t i, double share, enum sluice_share_source src,
		  uint64_t now)
{
	const struct lease_entry *e = &l->e[i];
	double frac = e->rate > 0 ? share / e->rate : 1;
	double burst = round((double)l->p[i].burst * frac);
	struct sluice_limit lim = {.interval_ns = share > 0
						      ? (uint64_t)fmin(NS / share, 3600.0 * NS)
						      : 3600ULL * 1000000000,
				   .burst = burst < 1 ? 1 : (uint64_t)burst};

	if (!lim.interval_ns)
		lim.interval_ns = 1;
	admission_share_set(l->o.adm, l->p[i].slot, e->limit, &lim, src, now);
	l->slots[l->p[i].slot % SLUICE_MAX_TENANTS].shared = true;
	metric_set(
	    metrics_series(l->f_share, (const char *[]){e->tenant, lease_limit_name(e->limit)}),
	    share);
}

/* Slots whose tenant left the table: back to local (nothing enforces them anyway). */
static void forget_gone(struct lease *l, uint64_t now)
{
	for (uint32_t s = 0; s < SLUICE_MAX_TENANTS; s++) {
		struct slot_state *ss = &l->slots[s];

		if (!ss->seen || ss->gen == l->gen)
			continue;
		if (ss->shared)
			for (unsigned k = 0; k < SLUICE_LIMIT_MAX; k++)
				admission_share_set(l->o.adm, s, k, NULL, SLUICE_SHARE_LOCAL, now);
		memset(ss, 0, sizeof(*ss));
	}
}

/* No answer this period: keep the last shares within the grace, then rate / nodes. */
static void no_answer(struct lease *l, size_t n, uint64_t now, unsigned nodes)
{
	metric_add(metrics_series(l->f_errors, NULL), 1);
	if (l->ever_ok && now - l->last_ok < (uint64_t)l->o.grace_ms * 1000000ULL)
		return;
	if (!l->in_fallback)
		log_warn("lease: cluster ledger unreachable past the grace time; each tenant limit "
			 "falls back to its global rate / nodes last seen",
			 "grace_ms=%u nodes=%u", l->o.grace_ms, nodes);
	l->in_fallback = true;
	for (size_t i = 0; i < n; i++)
		apply(l, i, l->e[i].rate / nodes, SLUICE_SHARE_FALLBACK, now);
	set_source_metric(l, SLUICE_SHARE_FALLBACK);
}

static void tick(struct cluster *c, bool up, void *arg)
{
	struct lease *l = arg;
	struct tenants *t = tenants_ref_acquire(l->o.tenants);
	struct cluster_status cs;
	uint64_t now = clock_mono_ns(), t0;
	double dt = l->last_tick ? (double)(now - l->last_tick) / NS : 0;
	size_t n = collect(l, t, now, dt);
	int ret = -EIO;

	l->last_tick = now;
	cluster_status(c, &cs);
	t0 = clock_mono_ns();
	if (up)
		ret = lease_exchange(c, l->e, n);
	if (!ret) {
		metric_set(metrics_series(l->f_rtt, NULL), (double)(clock_mono_ns() - t0) / NS);
		for (size_t i = 0; i < n; i++)
			apply(l, i, l->e[i].share, SLUICE_SHARE_LEASE, now);
		if (l->in_fallback)
			log_info("lease: cluster ledger answers again; shares from the lease",
				 "nodes=%u", cs.nodes);
		l->in_fallback = false;
		l->ever_ok = true;
		l->last_ok = now;
		set_source_metric(l, SLUICE_SHARE_LEASE);
	} else {
		no_answer(l, n, now, cs.nodes ? cs.nodes : 1);
	}
	metric_set(metrics_series(l->f_nodes, NULL), cs.nodes);
	forget_gone(l, now);
	tenants_put(t);
}

struct lease *lease_new(const struct lease_opts *o)
{
	struct lease *l = calloc(1, sizeof(*l));
	struct cluster_status cs;
	struct tenants *t;
	size_t n;

	if (!l)
		return NULL;
	l->o = *o;
	l->slots = calloc(SLUICE_MAX_TENANTS, sizeof(*l->slots));
	l->f_share =
	    metrics_family(o->metrics, METRIC_GAUGE, "sluice_lease_share",
			   "This node's share of a tenant's cluster-wide rate, per second.",
			   "tenant,limit", NULL, 0);
	l->f_source = metrics_family(o->metrics, METRIC_GAUGE, "sluice_lease_source",
				     "Where the shares come from: 1 for the source in force.",
				     "source", NULL, 0);
	l->f_errors = metrics_family(o->metrics, METRIC_COUNTER, "sluice_lease_redis_errors_total",
				     "Lease periods without an answer from the cluster ledger.",
				     NULL, NULL, 0);
	l->f_rtt = metrics_family(o->metrics, METRIC_GAUGE, "sluice_lease_rtt_seconds",
				  "Round trip of the last ledger exchange.", NULL, NULL, 0);
	l->f_nodes = metrics_family(o->metrics, METRIC_GAUGE, "sluice_lease_nodes",
				    "Live nodes at the last answered renewal.", NULL, NULL, 0);
	if (!l->slots || !l->f_share || !l->f_source || !l->f_errors || !l->f_rtt || !l->f_nodes) {
		lease_free(l);
		errno = ENOMEM;
		return NULL;
	}
	/* until the first lease (one round trip away): a new node among live ones starts at
	 * the floor the ledger keeps for it, so joining never over-admits; alone (or with Redis
	 * unreachable at start) it has the whole rate, as rate / nodes seen */
	cluster_status(o->cluster, &cs);
	t = tenants_ref_acquire(o->tenants);
	n = collect(l, t, clock_mono_ns(), 0);
	for (size_t i = 0; i < n; i++)
		apply(l, i, cs.nodes > 1 ? l->e[i].rate * LEASE_FLOOR / cs.nodes : l->e[i].rate,
		      SLUICE_SHARE_FALLBACK, clock_mono_ns());
	tenants_put(t);
	set_source_metric(l, SLUICE_SHARE_FALLBACK);
	metric_add(metrics_series(l->f_errors, NULL), 0);
	if (cluster_add_hook(o->cluster, tick, l)) {
		lease_free(l);
		errno = ENOSPC;
		return NULL;
	}
	return l;
}

void lease_free(struct lease *l)
{
	if (!l)
		return;
	free(l->slots);
	free(l->e);
	free(l->p);
	free(l);
}
