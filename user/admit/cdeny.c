// SPDX-License-Identifier: MIT
/* cdeny.c -- the deny list cluster-wide: one Redis stream of auto-denies, copied by every node
 *
 * The ring is filled by request threads (cdeny_note) and drained by the cluster thread under
 * one mutex held only for copies. Every appended entry names its node, so a node skips its
 * own when it reads the stream back; an entry whose deadline passed is skipped too. The
 * last id read is kept across outages, so nothing is copied twice; when Redis loses the
 * stream (a restart without persistence) the new entries' ids are time-based and larger,
 * so reading goes on from there.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit/admission.h"
#include "admit/cdeny.h"
#include "lib/clock.h"
#include "lib/cluster.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "sluice/abi.h"

#define MS 1000000ULL

struct pending {
	struct sluice_addr addr;
	uint64_t until_ms; /* wall clock */
};

struct cdeny {
	struct cluster *cl;
	struct admission *adm;
	char key[96], node[64];
	char last_id[48];	 /* cluster thread only */
	uint64_t refused_logged; /* cluster thread: the last "refused" log line, 0: none */
	pthread_mutex_t lock;
	struct pending ring[CDENY_RING];
	unsigned head, tail;
	struct cdeny_stats st;
	struct metric_series *m_sent, *m_received, *m_dropped;
};

static uint64_t wall_ms(void)
{
	return clock_real_ns() / MS;
}

/* Redis answered with an error (an ACL without streams, a wrong type at the key): once a
 * minute while it lasts. Cluster thread. */
static void refused(struct cdeny *c, const char *what, const redisReply *rep)
{
	uint64_t now = clock_mono_ns();

	if (c->refused_logged && now - c->refused_logged < 60000ULL * MS)
		return;
	c->refused_logged = now;
	log_error("cluster deny: Redis refused a command (logged every minute while it lasts)",
		  "op=%s err=\"%s\"", what,
		  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
}

static void count(struct cdeny *c, uint64_t *field, struct metric_series *s, uint64_t n)
{
	pthread_mutex_lock(&c->lock);
	*field += n;
	pthread_mutex_unlock(&c->lock);
	if (s && n)
		metric_add(s, (double)n);
}

static int register_metrics(struct cdeny *c, struct metrics *m)
{
	struct metric_family *f;
	const char *v[1];

	if (!m)
		return 0;
	f = metrics_family(m, METRIC_COUNTER, "sluice_cluster_denies_total",
			   "Auto-denies shared through the cluster: sent (this node's, appended to "
			   "the stream), received (other nodes', put on this node's deny list), "
			   "dropped (queue full or Redis did not take them).",
			   "direction", NULL, 0);
	if (!f)
		return -errno;
	v[0] = "sent";
	c->m_sent = metrics_series(f, v);
	v[0] = "received";
	c->m_received = metrics_series(f, v);
	v[0] = "dropped";
	c->m_dropped = metrics_series(f, v);
	return c->m_sent && c->m_received && c->m_dropped ? 0 : -ENOMEM;
}

struct cdeny *cdeny_new(struct cluster *cl, struct admission *adm, struct metrics *m)
{
	struct cdeny *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return NULL;
	c->cl = cl;
	c->adm = adm;
	cluster_key(c->key, sizeof(c->key), "deny");
	snprintf(c->node, sizeof(c->node), "%s", cluster_config(cl)->node);
	snprintf(c->last_id, sizeof(c->last_id), "0-0");
	pthread_mutex_init(&c->lock, NULL);
	ret = register_metrics(c, m);
	if (!ret)
		ret = cluster_add_hook(cl, cdeny_hook, c);
	if (ret) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		errno = -ret;
		return NULL;
	}
	admission_on_auto_deny(adm, cdeny_note, c);
	return c;
}

void cdeny_free(struct cdeny *c)
{
	if (!c)
		return;
	admission_on_auto_deny(c->adm, NULL, NULL);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void cdeny_note(void *arg, const struct sluice_addr *peer, unsigned secs)
{
	struct cdeny *c = arg;
	bool full;

	pthread_mutex_lock(&c->lock);
	full = c->head - c->tail >= CDENY_RING;
	if (full) {
		c->st.dropped++;
	} else {
		c->ring[c->head % CDENY_RING] =
		    (struct pending){.addr = *peer, .until_ms = wall_ms() + (uint64_t)secs * 1000};
		c->head++;
	}
	pthread_mutex_unlock(&c->lock);
	if (full && c->m_dropped)
		metric_add(c->m_dropped, 1);
}

/* Append the queued denies; what Redis did not take is dropped (and counted): the source
 * stays denied here, and it will be denied again on another node if it goes on there. */
static void send_pending(struct cdeny *c)
{
	struct pending batch[CDENY_RING];
	unsigned n = 0, sent = 0;

	pthread_mutex_lock(&c->lock);
	while (c->tail != c->head)
		batch[n++] = c->ring[c->tail++ % CDENY_RING];
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < n; i++) {
		char hex[2 * sizeof(batch[i].addr.a) + 1];
		redisReply *rep;

		for (size_t k = 0; k < sizeof(batch[i].addr.a); k++)
			snprintf(hex + 2 * k, 3, "%02x", batch[i].addr.a[k]);
		rep = cluster_command(c->cl,
				      "XADD %s MAXLEN ~ %d * node %s addr %s until_ms %" PRIu64,
				      c->key, CDENY_STREAM_MAXLEN, c->node, hex, batch[i].until_ms);
		if (rep && rep->type == REDIS_REPLY_STRING)
			sent++;
		else if (rep)
			refused(c, "XADD", rep);
		if (rep)
			freeReplyObject(rep);
	}
	count(c, &c->st.sent, c->m_sent, sent);
	count(c, &c->st.dropped, c->m_dropped, n - sent);
}

static const char *field(const redisReply *fields, const char *name)
{
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING &&
		    fields->element[i + 1]->type == REDIS_REPLY_STRING &&
		    !strcmp(fields->element[i]->str, name))
			return fields->element[i + 1]->str;
	return NULL;
}

static bool parse_addr(const char *hex, struct sluice_addr *a)
{
	if (!hex || strlen(hex) != 2 * sizeof(a->a))
		return false;
	for (size_t k = 0; k < sizeof(a->a); k++) {
		int hi = hex_digit((unsigned char)hex[2 * k]),
		    lo = hex_digit((unsigned char)hex[2 * k + 1]);

		if (hi < 0 || lo < 0)
			return false;
		a->a[k] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* One stream entry [id, [field, value, ...]]: another node's deny still running goes on
 * this node's list. Returns 1 when copied. */
static int copy_entry(struct cdeny *c, const redisReply *e, uint64_t now_ms)
{
	const redisReply *fields;
	const char *node, *until;
	struct sluice_addr addr;
	uint64_t until_ms;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
		return 0;
	snprintf(c->last_id, sizeof(c->last_id), "%s", e->element[0]->str);
	fields = e->element[1];
	node = field(fields, "node");
	until = field(fields, "until_ms");
	if (!node || !strcmp(node, c->node) || !until || !parse_addr(field(fields, "addr"), &addr))
		return 0;
	until_ms = strtoull(until, NULL, 10);
	if (until_ms <= now_ms)
		return 0;
	if (admission_deny(c->adm, &addr, clock_mono_ns(),
			   (unsigned)((until_ms - now_ms + 999) / 1000)))
		return 0;
	log_info("cluster deny: source denied by another node, denied here too",
		 "from_node=%s until_ms=%" PRIu64, node, until_ms);
	return 1;
}

/* Copy what was appended since the last id (a page at a time, a few pages per period). */
static void read_new(struct cdeny *c)
{
	for (int page = 0; page < 8; page++) {
		redisReply *rep =
		    cluster_command(c->cl, "XREAD COUNT 256 STREAMS %s %s", c->key, c->last_id);
		const redisReply *entries;
		unsigned got = 0;
		size_t n = 0;

		if (!rep)
			return;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
		    rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2) {
			uint64_t now_ms = wall_ms();

			entries = rep->element[0]->element[1];
			n = entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
			for (size_t i = 0; i < n; i++)
				got += copy_entry(c, entries->element[i], now_ms);
		} else if (rep->type == REDIS_REPLY_ERROR) {
			refused(c, "XREAD", rep);
		}
		freeReplyObject(rep);
		count(c, &c->st.received, c->m_received, got);
		if (n < 256)
			return;
	}
}

void cdeny_hook(struct cluster *cl, bool up, void *arg)
{
	struct cdeny *c = arg;

	if (!up)
		return; /* the ring keeps the denies (up to its size) until Redis answers */
	send_pending(c);
	read_new(c);
}

void cdeny_stats(struct cdeny *c, struct cdeny_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}
