// SPDX-License-Identifier: MIT
/* test_cshed.c -- the cluster's overload controller against a real private redis-server: the
 * lease lock and its takeover, a dead controller's decision expiring back to NORMAL, the
 * cluster pin over the controller, one incident trigger and one resolve across a takeover,
 * and a paused holder that wakes after losing the lease changing nothing.
 *
 * Nodes are cshed instances in this process, each with its own Redis client, ticked by hand
 * (a node that stops ticking is a dead node: it neither renews nor releases).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "admit/admission.h"
#include "admit/cdeny.h"
#include "admit/tenants.h"
#include "control/cshed.h"
#include "lib/clock.h"
#include "lib/cluster.h"
#include "lib/redis.h"
#include "redisharness.h"
#include "test_progs.h"

#define LEASE_MS  600
#define PERIOD_MS 100

struct node {
	struct cluster
	    *cl;	 /* the node's cluster connection (its thread is not run: ticks by hand) */
	struct redis *r; /* an operator's client (sluicectl's pin) */
	struct cshed *c;
	int triggers, resolves, changes;
	char key[64];
};

static void on_incident(void *arg, enum cshed_incident what, const char *key,
			const struct cshed_decision *d)
{
	struct node *n = arg;

	if (what == CSHED_TRIGGER)
		n->triggers++;
	else
		n->resolves++;
	snprintf(n->key, sizeof(n->key), "%s", key);
}

static void on_change(void *arg)
{
	((struct node *)arg)->changes++;
}

static bool node_up(struct node *n, uint16_t port, const char *name, bool candidate)
{
	struct redis_config rc;
	struct cluster_config clc = {.period_ms = PERIOD_MS};
	char err[256];
	struct cshed_config cc = {.candidate = candidate,
				  .lease_ms = LEASE_MS,
				  .on_change = on_change,
				  .on_change_arg = n,
				  .on_incident = on_incident,
				  .on_incident_arg = n};

	memset(n, 0, sizeof(*n));
	redis_config_default(&rc);
	rc.port = port;
	rc.op_timeout_ms = 500;
	rc.connect_timeout_ms = 500;
	rc.down_backoff_ms = 0;
	n->r = redis_new(&rc);
	if (!ASSERT_OK_PTR(n->r, "redis client"))
		return false;
	clc.redis = rc;
	snprintf(clc.node, sizeof(clc.node), "%s", name);
	n->cl = cluster_new(&clc);
	if (!ASSERT_OK_PTR(n->cl, "cluster client") ||
	    !ASSERT_OK(cluster_register(n->cl, err, sizeof(err)), err))
		return false;
	n->c = cshed_new(n->cl, &cc);
	if (!ASSERT_OK_PTR(n->c, "cshed_new"))
		return false;
	/* what the daemon does: a first read, then the controller's offer every period */
	cshed_tick(n->c);
	cshed_offer(n->c, SLUICE_SHED_NORMAL, (const uint32_t[SLUICE_CLASS_MAX]){0});
	return true;
}

static void node_down(struct node *n)
{
	cshed_free(n->c);
	cluster_free(n->cl);
	redis_free(n->r);
	n->c = NULL;
	n->cl = NULL;
	n->r = NULL;
}

static const uint32_t pm_none[3] = {0, 0, 0}, pm_emerg[3] = {0, 0, 500};

/* Tick n until its decision is in force at level (or 3 s pass). */
static bool wait_level(struct node *n, uint32_t level, struct cshed_decision *d)
{
	uint64_t until = clock_mono_ns() + 3000000000ULL;

	while (clock_mono_ns() < until) {
		cshed_tick(n->c);
		if (cshed_get(n->c, d) && d->level == level)
			return true;
		usleep(20000);
	}
	return false;
}

static void subtest_lock(uint16_t port)
{
	struct node a, b, r;
	struct cshed_decision d;
	struct cshed_stats st;
	uint64_t dead, took = 0;

	if (!node_up(&a, port, "w-a", true) || !node_up(&b, port, "w-b", true) ||
	    !node_up(&r, port, "in-1", false))
		goto out;
	ASSERT_OK(cshed_tick(a.c), "a ticks");
	ASSERT_OK(cshed_tick(b.c), "b ticks");
	ASSERT_TRUE(cshed_leader(a.c), "the first candidate holds the lease");
	ASSERT_FALSE(cshed_leader(b.c), "the second stands by");
	cshed_offer(a.c, SLUICE_SHED_EMERGENCY, pm_emerg);
	cshed_offer(b.c, SLUICE_SHED_THIN, pm_none); /* a standby's offer is not published */
	cshed_tick(a.c);
	dead = clock_mono_ns(); /* a's last renewal: it dies here */
	if (ASSERT_TRUE(wait_level(&r, SLUICE_SHED_EMERGENCY, &d),
			"the reader sees the decision")) {
		ASSERT_STREQ(d.node, "w-a", "published by the holder");
		ASSERT_EQ(d.permille[2], 500, "its low share");
		ASSERT_FALSE(d.pinned, "not a pin");
	}
	ASSERT_GT(r.changes, 0, "the reader was told of the change");
	/* a died: no renewal, no release; b takes over once the lease runs out, not before */
	while (clock_mono_ns() - dead < 3ULL * LEASE_MS * 1000000) {
		cshed_tick(b.c);
		if (cshed_leader(b.c)) {
			took = clock_mono_ns() - dead;
			break;
		}
		usleep(20000);
	}
	printf("takeover after %.0f ms (lease %d ms)\n", took / 1e6, LEASE_MS);
	ASSERT_GT(took, 0, "b took over");
	ASSERT_GE(took, (uint64_t)LEASE_MS / 2 * 1000000, "not while a's lease held");
	cshed_stats(b.c, &st);
	ASSERT_EQ(st.takeovers, 1, "one takeover counted");
	ASSERT_TRUE(wait_level(&r, SLUICE_SHED_THIN, &d), "the reader follows the new holder");
	ASSERT_STREQ(d.node, "w-b", "now published by b");
	/* a wakes up (a pause, not a death): its token is stale, it publishes nothing */
	cshed_tick(a.c);
	ASSERT_FALSE(cshed_leader(a.c), "a woke up as a standby");
	cshed_tick(r.c);
	ASSERT_TRUE(cshed_get(r.c, &d) && !strcmp(d.node, "w-b") && d.level == SLUICE_SHED_THIN,
		    "b's decision stands");
out:
	node_down(&a);
	node_down(&b);
	node_down(&r);
}

/* The holder dies at EMERGENCY and no standby takes over: every node is back to its own
 * controller (NORMAL on an ingress) once the lease runs out. */
static void subtest_expiry(uint16_t port)
{
	struct node a, r;
	struct cshed_decision d;
	uint64_t dead, gone = 0;

	if (!node_up(&a, port, "w-a", true) || !node_up(&r, port, "in-1", false))
		goto out;
	cshed_offer(a.c, SLUICE_SHED_EMERGENCY, pm_emerg);
	cshed_tick(a.c);
	dead = clock_mono_ns(); /* a's last renewal: it dies here */
	if (!ASSERT_TRUE(wait_level(&r, SLUICE_SHED_EMERGENCY, &d), "emergency published"))
		goto out;
	while (clock_mono_ns() - dead < 3ULL * LEASE_MS * 1000000) {
		cshed_tick(r.c);
		if (!cshed_get(r.c, &d)) {
			gone = clock_mono_ns() - dead;
			break;
		}
		usleep(20000);
	}
	printf("decision expired %.0f ms after the holder died (lease %d ms)\n", gone / 1e6,
	       LEASE_MS);
	ASSERT_GT(gone, 0, "the dead holder's decision expired");
	ASSERT_GE(gone, (uint64_t)LEASE_MS / 2 * 1000000, "it held for the lease first");
out:
	node_down(&a);
	node_down(&r);
}

/* The operator's cluster pin wins over the controller everywhere, and clearing it hands
 * the level back. */
static void subtest_pin(uint16_t port)
{
	struct node a, r;
	struct cshed_decision d;
	const uint32_t pm[3] = {0, 100, 900};

	if (!node_up(&a, port, "w-a", true) || !node_up(&r, port, "in-1", false))
		goto out;
	cshed_offer(a.c, SLUICE_SHED_NORMAL, pm_none);
	cshed_tick(a.c);
	ASSERT_EQ(cshed_pin_set(r.r, 5, pm), -EINVAL, "level out of range refused");
	ASSERT_OK(cshed_pin_set(r.r, SLUICE_SHED_EMERGENCY, pm), "pin emergency");
	if (ASSERT_TRUE(wait_level(&r, SLUICE_SHED_EMERGENCY, &d), "a reader applies the pin")) {
		ASSERT_TRUE(d.pinned, "as a pin");
		ASSERT_EQ(d.permille[2], 900, "with the pin's shares");
	}
	cshed_tick(a.c);
	ASSERT_TRUE(cshed_get(a.c, &d) && d.pinned && d.level == SLUICE_SHED_EMERGENCY,
		    "the holder publishes the pin over its own NORMAL");
	ASSERT_EQ(a.triggers, 1, "a pinned emergency is a cluster emergency: one trigger");
	ASSERT_EQ(cshed_pin_get(r.r, &d), 1, "pin readable");
	ASSERT_OK(cshed_pin_clear(r.r), "unpin");
	ASSERT_EQ(cshed_pin_get(r.r, &d), 0, "no pin");
	cshed_tick(a.c);
	ASSERT_TRUE(wait_level(&r, SLUICE_SHED_NORMAL, &d) && !d.pinned,
		    "the controller's level again");
	ASSERT_EQ(a.resolves, 1, "and its resolve");
out:
	node_down(&a);
	node_down(&r);
}

/* One incident per cluster emergency: the holder triggers once, the node that takes over
 * during the emergency does not trigger again, and the one that sees it end resolves once,
 * with the same cluster-wide dedup_key. */
static void subtest_incident(uint16_t port)
{
	struct node a, b;
	struct cshed_decision d;
	uint64_t dead;

	if (!node_up(&a, port, "w-a", true) || !node_up(&b, port, "w-b", true))
		goto out;
	cshed_offer(a.c, SLUICE_SHED_EMERGENCY, pm_emerg);
	for (int i = 0; i < 5; i++)
		cshed_tick(a.c);
	cshed_tick(b.c);
	ASSERT_EQ(a.triggers, 1, "the holder triggered once in five periods");
	ASSERT_HAS_STR(a.key, "sluice-overload-cluster-", "a cluster dedup_key");
	/* b stands by at the cluster's level (as its controller would adopt it) */
	cshed_offer(b.c, SLUICE_SHED_EMERGENCY, pm_emerg);
	dead = clock_mono_ns();
	while (!cshed_leader(b.c) && clock_mono_ns() - dead < 3ULL * LEASE_MS * 1000000) {
		usleep(50000);
		cshed_tick(b.c);
	}
	if (!ASSERT_TRUE(cshed_leader(b.c), "b took over"))
		goto out;
	for (int i = 0; i < 3; i++)
		cshed_tick(b.c);
	ASSERT_EQ(b.triggers, 0, "the takeover did not trigger again");
	cshed_offer(b.c, SLUICE_SHED_THIN, pm_none);
	for (int i = 0; i < 3; i++)
		cshed_tick(b.c);
	ASSERT_EQ(b.resolves, 1, "one resolve, by the holder of the day");
	ASSERT_STREQ(b.key, a.key, "for the same incident");
	ASSERT_TRUE(cshed_get(b.c, &d) && d.level == SLUICE_SHED_THIN, "thin published");
	ASSERT_EQ(a.triggers + b.triggers, 1, "one trigger in all");
	ASSERT_EQ(a.resolves + b.resolves, 1, "one resolve in all");
out:
	node_down(&a);
	node_down(&b);
}

/* Redis goes away: the reader keeps the last decision for at most a lease, then drops it;
 * the holder stops calling itself one. */
static void subtest_unreachable(struct redis_harness *h)
{
	struct node a, r;
	struct cshed_decision d;
	struct cshed_stats st;

	if (!node_up(&a, h->port, "w-a", true) || !node_up(&r, h->port, "in-1", false))
		goto out;
	cshed_offer(a.c, SLUICE_SHED_THIN, pm_none);
	cshed_tick(a.c);
	if (!ASSERT_TRUE(wait_level(&r, SLUICE_SHED_THIN, &d), "thin published"))
		goto out;
	redis_harness_stop(h);
	ASSERT_ERR(cshed_tick(r.c), "the reader's tick fails");
	ASSERT_TRUE(cshed_get(r.c, &d), "the last decision holds for now");
	ASSERT_ERR(cshed_tick(a.c), "the holder's tick fails");
	ASSERT_FALSE(cshed_leader(a.c), "no renewal: no longer the holder");
	usleep((LEASE_MS + 2 * PERIOD_MS + 100) * 1000); /* the decision outlives the lease */
	cshed_tick(r.c);
	ASSERT_FALSE(cshed_get(r.c, &d), "expired: the node's own controller decides");
	cshed_stats(r.c, &st);
	ASSERT_GE(st.unreachable, 2, "unreachable ticks counted");
out:
	node_down(&a);
	node_down(&r);
}

/* An auto-deny on one node reaches the others' deny lists through the stream, and a node
 * that joins later gets the denies still running; its own entries and expired ones are
 * not copied. */
static void subtest_deny(struct redis_harness *h)
{
	struct admission_opts o = {.deny_after = 4, .deny_secs = 30};
	struct node a = {0}, b = {0}, late = {0};
	struct admission *adm_a = NULL, *adm_b = NULL, *adm_late = NULL;
	struct cdeny *cd_a = NULL, *cd_b = NULL, *cd_late = NULL;
	struct tenant t = {.name = "acme", .slot = SLUICE_SLOT_FIRST};
	struct sluice_addr peer = {.a = {[10] = 0xff, [11] = 0xff, [12] = 192, [15] = 7}};
	struct sluice_addr brief = {.a = {[15] = 9}};
	struct cdeny_stats st;
	uint64_t now = clock_mono_ns(), retry;

	t.limit[SLUICE_LIMIT_REQ] = (struct sluice_limit){.interval_ns = 1000000000ULL, .burst = 1};
	if (!node_up(&a, h->port, "in-a", false) || !node_up(&b, h->port, "in-b", false) ||
	    !node_up(&late, h->port, "in-late", false))
		goto out;
	adm_a = admission_new(&o, NULL, "test");
	adm_b = admission_new(&o, NULL, "test");
	adm_late = admission_new(&o, NULL, "test");
	if (!ASSERT_OK_PTR(adm_a, "admission") || !ASSERT_OK_PTR(adm_b, "admission") ||
	    !ASSERT_OK_PTR(adm_late, "admission"))
		goto out;
	cd_a = cdeny_new(a.cl, adm_a, NULL);
	cd_b = cdeny_new(b.cl, adm_b, NULL);
	if (!ASSERT_OK_PTR(cd_a, "cdeny a") || !ASSERT_OK_PTR(cd_b, "cdeny b"))
		goto out;
	/* one pass, then four 429s in a row: a denies the source on its own */
	for (int i = 0; i < 5; i++)
		admission_request(adm_a, &t, NULL, &peer, now, &retry);
	ASSERT_TRUE(admission_denied(adm_a, &peer, now), "a denied the source");
	ASSERT_FALSE(admission_denied(adm_b, &peer, clock_mono_ns()), "b not yet");
	cdeny_note(cd_a, &brief, 0); /* already over when read: not copied */
	cdeny_hook(a.cl, true, cd_a);
	cdeny_hook(b.cl, true, cd_b);
	ASSERT_TRUE(admission_denied(adm_b, &peer, clock_mono_ns()), "b denies it too");
	ASSERT_TRUE(admission_denied(adm_b, &peer, clock_mono_ns() + 25000000000ULL),
		    "for what is left of the 30 s");
	ASSERT_FALSE(admission_denied(adm_b, &peer, clock_mono_ns() + 31000000000ULL),
		     "and no longer");
	ASSERT_FALSE(admission_denied(adm_b, &brief, clock_mono_ns()), "expired entry skipped");
	cdeny_stats(cd_a, &st);
	ASSERT_EQ(st.sent, 2, "a sent both");
	cdeny_hook(a.cl, true, cd_a);
	cdeny_stats(cd_a, &st);
	ASSERT_EQ(st.received, 0, "a does not copy its own");
	cdeny_stats(cd_b, &st);
	ASSERT_EQ(st.received, 1, "b copied one");
	cd_late = cdeny_new(late.cl, adm_late, NULL);
	if (ASSERT_OK_PTR(cd_late, "cdeny late")) {
		cdeny_hook(late.cl, true, cd_late);
		ASSERT_TRUE(admission_denied(adm_late, &peer, clock_mono_ns()),
			    "a node that joins later gets it");
	}
out:
	cdeny_free(cd_a);
	cdeny_free(cd_b);
	cdeny_free(cd_late);
	admission_free(adm_a);
	admission_free(adm_b);
	admission_free(adm_late);
	node_down(&a);
	node_down(&b);
	node_down(&late);
}

static void redis_do(uint16_t port, const char *cmd)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *rep = c && !c->err ? redisCommand(c, cmd) : NULL;

	if (rep)
		freeReplyObject(rep);
	if (c)
		redisFree(c);
}

/* A worker that starts while the lease is free but the cluster is in an emergency reads
 * first and stands for the lease only after its controller offered (having adopted the
 * cluster's level): it goes on with the emergency, and its incident, instead of publishing
 * a fresh NORMAL. */
static void subtest_late_candidate(struct redis_harness *h)
{
	struct node a, c = {0};
	struct cshed_decision d;
	struct cshed_config cc = {.candidate = true,
				  .lease_ms = LEASE_MS,
				  .on_incident = on_incident,
				  .on_incident_arg = &c};
	struct cluster_config clc = {.period_ms = PERIOD_MS};
	char err[256];

	if (!node_up(&a, h->port, "w-a", true))
		goto out;
	cshed_offer(a.c, SLUICE_SHED_EMERGENCY, pm_emerg);
	cshed_tick(a.c);
	ASSERT_EQ(a.triggers, 1, "the emergency's incident is open");
	/* a dies and its lock is gone (as after the lease); its decision still runs */
	redis_do(h->port, "DEL sluice:cluster:shed:lock");
	redis_config_default(&clc.redis);
	clc.redis.port = h->port;
	snprintf(clc.node, sizeof(clc.node), "w-c");
	c.cl = cluster_new(&clc);
	if (!ASSERT_OK_PTR(c.cl, "cluster client") ||
	    !ASSERT_OK(cluster_register(c.cl, err, sizeof(err)), err))
		goto out;
	c.c = cshed_new(c.cl, &cc);
	if (!ASSERT_OK_PTR(c.c, "cshed_new"))
		goto out;
	cshed_tick(c.c);
	ASSERT_FALSE(cshed_leader(c.c), "no lease before its controller offered");
	if (!ASSERT_TRUE(cshed_get(c.c, &d) && d.level == SLUICE_SHED_EMERGENCY,
			 "it read the emergency"))
		goto out;
	cshed_offer(c.c, d.level, d.permille); /* its controller adopted it */
	cshed_tick(c.c);
	ASSERT_TRUE(cshed_leader(c.c), "then it takes the free lease");
	ASSERT_TRUE(cshed_get(c.c, &d) && d.level == SLUICE_SHED_EMERGENCY &&
			!strcmp(d.node, "w-c"),
		    "and goes on with the emergency");
	ASSERT_EQ(c.triggers + c.resolves, 0, "no new trigger, no resolve");
out:
	node_down(&a);
	node_down(&c);
}

/* The holder decides on the cluster's lag: every candidate reports its own each tick, the
 * holder gets the largest per class, and a silent candidate's report drops out after the
 * lease. */
static void subtest_cluster_lag(struct redis_harness *h)
{
	struct node a, b;
	uint64_t lag[3], none[3] = {0, 0, 0}, b_lag[3] = {5000000000ULL, 0, 0};
	uint64_t a_lag[3] = {100000000ULL, 40000000000ULL, 0};

	if (!node_up(&a, h->port, "w-a", true) || !node_up(&b, h->port, "w-b", true))
		goto out;
	cshed_tick(a.c);
	if (!ASSERT_TRUE(cshed_leader(a.c), "a holds the lease"))
		goto out;
	cshed_report_lag(a.c, a_lag);
	cshed_report_lag(b.c, b_lag);
	cshed_tick(b.c);
	cshed_tick(a.c);
	ASSERT_FALSE(cshed_cluster_lag(b.c, lag), "a standby has no cluster view");
	if (ASSERT_TRUE(cshed_cluster_lag(a.c, lag), "the holder has")) {
		ASSERT_EQ(lag[0], b_lag[0], "critical: b's");
		ASSERT_EQ(lag[1], a_lag[1], "normal: a's own");
		ASSERT_EQ(lag[2], 0, "low: nobody's");
	}
	/* b goes silent (dies); a keeps reporting a calm lag */
	cshed_report_lag(a.c, none);
	usleep((LEASE_MS + 100) * 1000);
	cshed_tick(a.c);
	ASSERT_TRUE(cshed_cluster_lag(a.c, lag) && lag[0] == 0 && lag[1] == 0,
		    "b's report dropped after the lease");
out:
	node_down(&a);
	node_down(&b);
}

struct leaver {
	struct cshed *c;
	volatile bool done;
};

static void *leave_thread(void *arg)
{
	struct leaver *l = arg;

	cshed_leave(l->c);
	l->done = true;
	return NULL;
}

/* A holder that stops cleanly gives the lease back at its next tick (cshed_leave waits for
 * it), and a standby takes over at once rather than after the lease. */
static void subtest_leave(struct redis_harness *h)
{
	struct node a, b;
	struct leaver l;
	pthread_t t;
	uint64_t t0;

	if (!node_up(&a, h->port, "w-a", true) || !node_up(&b, h->port, "w-b", true))
		goto out;
	cshed_tick(a.c);
	cshed_tick(b.c);
	if (!ASSERT_TRUE(cshed_leader(a.c), "a holds the lease"))
		goto out;
	l = (struct leaver){.c = a.c};
	if (!ASSERT_OK(pthread_create(&t, NULL, leave_thread, &l), "leave"))
		goto out;
	/* a's cluster thread: its next tick gives the lease back */
	for (int i = 0; i < 100 && !l.done; i++) {
		cshed_tick(a.c);
		usleep(10000);
	}
	pthread_join(t, NULL);
	ASSERT_FALSE(cshed_leader(a.c), "a gave it back");
	t0 = clock_mono_ns();
	cshed_tick(b.c);
	ASSERT_TRUE(cshed_leader(b.c), "b takes over at its next tick");
	ASSERT_LT(clock_mono_ns() - t0, (uint64_t)LEASE_MS / 2 * 1000000, "not after the lease");
	cshed_tick(a.c);
	ASSERT_FALSE(cshed_leader(a.c), "a stands for it no more");
out:
	node_down(&a);
	node_down(&b);
}

static void flush(uint16_t port)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *rep = c && !c->err ? redisCommand(c, "FLUSHALL") : NULL;

	if (rep)
		freeReplyObject(rep);
	if (c)
		redisFree(c);
}

static void lock_takeover(struct redis_harness *h)
{
	subtest_lock(h->port);
}

static void expiry_normal(struct redis_harness *h)
{
	subtest_expiry(h->port);
}

static void cluster_pin(struct redis_harness *h)
{
	subtest_pin(h->port);
}

static void incident_once(struct redis_harness *h)
{
	subtest_incident(h->port);
}

static const struct {
	const char *name;
	void (*run)(struct redis_harness *h);
} subtests[] = {
    {"lock_takeover", lock_takeover},
    {"expiry_normal", expiry_normal},
    {"cluster_pin", cluster_pin},
    {"incident_once", incident_once},
    {"deny_stream", subtest_deny},
    {"clean_leave", subtest_leave},
    {"late_candidate", subtest_late_candidate},
    {"cluster_lag", subtest_cluster_lag},
    {"unreachable", subtest_unreachable}, /* last: it stops Redis */
};

void test_cshed(void)
{
	struct redis_harness h = {0};
	int err = redis_harness_start(&h);

	if (err == -ENOENT) {
		test__skip("redis-server not installed (tools/setup installs it)");
		return;
	}
	if (!ASSERT_OK(err, "start redis-server"))
		return;
	for (size_t i = 0; i < sizeof(subtests) / sizeof(subtests[0]); i++) {
		if (!test__start_subtest(subtests[i].name))
			continue;
		flush(h.port);
		subtests[i].run(&h);
	}
	redis_harness_stop(&h);
}
