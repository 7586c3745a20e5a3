// SPDX-License-Identifier: MIT
/* hot.c -- hot-tenant detector of the Kafka producer (see hot.h)
 *
 * One small table per class: the tenants seen in the current window with their counts,
 * kept across windows while hot (so a hot tenant is remembered even in a quiet window).
 * Decisions happen when a record arrives after its window ended, under one lock: the
 * cost on the intake path is a lookup in at most KAFKA_HOT_TENANTS names.
 */
#include <string.h>

#include "queue/kafka/hot.h"

void kafka_hot_init(struct kafka_hot *h, const struct kafka_hot_cfg *cfg)
{
	memset(h, 0, sizeof(*h));
	h->cfg = *cfg;
	if (h->cfg.salts < 2)
		h->cfg.salts = 2;
	if (h->cfg.salts > 10)
		h->cfg.salts = 10;
	if (!h->cfg.window_ns)
		h->cfg.window_ns = 1000000000ULL;
	if (!h->cfg.min_records)
		h->cfg.min_records = 50;
	if (!h->cfg.cool_windows)
		h->cfg.cool_windows = 5;
	pthread_mutex_init(&h->lock, NULL);
}

void kafka_hot_fini(struct kafka_hot *h)
{
	pthread_mutex_destroy(&h->lock);
}

unsigned kafka_hot_key_salt(const char *idem_key, unsigned salts)
{
	uint32_t x = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)idem_key; p && *p; p++)
		x = (x ^ *p) * 16777619u;
	return salts ? x % salts : 0;
}

/* The window of c ended: decide who is hot, keep only the hot ones for the next. */
static void close_window(const struct kafka_hot_cfg *cfg, struct kafka_hot_class *c)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < c->used; i++) {
		struct kafka_hot_slot *s = &c->slot[i];
		/* share in permille of this window's records */
		uint64_t share = c->total ? s->count * 1000 / c->total : 0;
		bool decided = c->total >= cfg->min_records;

		if (!s->hot && decided && share >= cfg->share_permille)
			s->hot = true, s->cool = 0;
		else if (s->hot && (!decided || share * 2 < cfg->share_permille))
			s->cool++;
		else if (s->hot)
			s->cool = 0;
		if (s->hot && s->cool >= cfg->cool_windows)
			s->hot = false;
		if (s->hot) {
			s->count = 0;
			c->slot[keep++] = *s;
		}
	}
	c->used = keep;
	c->total = 0;
}

static struct kafka_hot_slot *find(struct kafka_hot_class *c, const char *tenant)
{
	for (unsigned i = 0; i < c->used; i++)
		if (!strcmp(c->slot[i].tenant, tenant))
			return &c->slot[i];
	if (c->used == KAFKA_HOT_TENANTS)
		return NULL;
	memset(&c->slot[c->used], 0, sizeof(c->slot[0]));
	strncpy(c->slot[c->used].tenant, tenant, sizeof(c->slot[0].tenant) - 1);
	return &c->slot[c->used++];
}

int kafka_hot_salt(struct kafka_hot *h, unsigned cls, const char *tenant, const char *idem_key,
		   uint64_t now_ns)
{
	struct kafka_hot_class *c;
	struct kafka_hot_slot *s;
	bool hot;

	if (!h->cfg.share_permille || cls >= 3)
		return -1;
	c = &h->cls[cls];
	pthread_mutex_lock(&h->lock);
	if (!c->window_start)
		c->window_start = now_ns;
	for (unsigned n = 0; now_ns - c->window_start >= h->cfg.window_ns; n++) {
		close_window(&h->cfg, c);
		c->window_start += h->cfg.window_ns;
		if (n > h->cfg.cool_windows) /* idle for long: everyone cooled, skip ahead */
			c->window_start = now_ns;
	}
	c->total++;
	s = find(c, tenant);
	if (s)
		s->count++;
	hot = s && s->hot;
	pthread_mutex_unlock(&h->lock);
	return hot ? (int)kafka_hot_key_salt(idem_key, h->cfg.salts) : -1;
}

unsigned kafka_hot_count(struct kafka_hot *h)
{
	unsigned n = 0;

	pthread_mutex_lock(&h->lock);
	for (int k = 0; k < 3; k++)
		for (unsigned i = 0; i < h->cls[k].used; i++)
			n += h->cls[k].slot[i].hot;
	pthread_mutex_unlock(&h->lock);
	return n;
}
