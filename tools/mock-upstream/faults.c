// SPDX-License-Identifier: MIT
/* faults.c -- the mock upstream's run-time fault settings and per-idempotency-key counters
 *
 * One mutex covers settings, dice and counters: the mock serves tests, not benchmarks of
 * itself, and a single lock makes "applied exactly once" trivially race-free. The dice
 * are checked in a fixed order (down, reset, hang, 429, error) against one uniform draw
 * each, so rates combine the way a reader of the settings expects.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "faults.h"

#define BUCKETS 4096

struct key_count {
	struct key_count *next;
	uint64_t received, applied, lost;
	char path[128], webhook_id[64];
	uint64_t id; /* sequence number of its first application */
	char key[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct faults cur;
static struct mock_counts counts;
static struct key_count *table[BUCKETS];
static uint64_t rng;

static double uniform(void)
{
	/* xorshift64*, 53 random bits */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (double)((rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Where a restart is now: 0 none (or over), 1 down, 2 not ready (404). Lock held. */
static int restart_phase(const struct faults *f)
{
	uint64_t t;

	if (!f->restart_at_ms)
		return 0;
	t = mono_ms() - f->restart_at_ms;
	return t < f->restart_down_ms				      ? 1
	       : t < (uint64_t)f->restart_down_ms + f->restart_404_ms ? 2
								      : 0;
}

static void defaults(void)
{
	cur = (struct faults){.error_status = 500, .retry_after = "1"};
}

void faults_init(void)
{
	if (getrandom(&rng, sizeof(rng), 0) != sizeof(rng) || !rng)
		rng = 0x9E3779B97F4A7C15ULL;
	defaults();
}

static int set_one(struct faults *f, const char *k, const char *v, char *err, size_t errlen)
{
	double d;
	char *end;

	if (!strcmp(k, "require_auth")) {
		if (strlen(v) >= sizeof(f->require_auth))
			goto bad;
		snprintf(f->require_auth, sizeof(f->require_auth), "%s", v);
		return 0;
	}
	if (!strcmp(k, "retry_after")) {
		if (!*v || strlen(v) >= sizeof(f->retry_after))
			goto bad;
		snprintf(f->retry_after, sizeof(f->retry_after), "%s", v);
		return 0;
	}
	d = strtod(v, &end);
	if (end == v || *end || !isfinite(d) || d < 0)
		goto bad;
	if (!strcmp(k, "error_rate") && d <= 1)
		f->error_rate = d;
	else if (!strcmp(k, "r429_rate") && d <= 1)
		f->r429_rate = d;
	else if (!strcmp(k, "reset_rate") && d <= 1)
		f->reset_rate = d;
	else if (!strcmp(k, "hang_rate") && d <= 1)
		f->hang_rate = d;
	else if (!strcmp(k, "slow_rate") && d <= 1)
		f->slow_rate = d;
	else if (!strcmp(k, "hang") && d <= 1)
		f->hang_rate = d;
	else if (!strcmp(k, "down") && d <= 1)
		f->down = d != 0;
	else if (!strcmp(k, "dedupe") && d <= 1)
		f->dedupe = d != 0;
	else if (!strcmp(k, "error_status") && d >= 400 && d <= 599)
		f->error_status = (int)d;
	else if (!strcmp(k, "latency_ms") && d <= 600000)
		f->latency_ms = (uint32_t)d;
	else if (!strcmp(k, "jitter_ms") && d <= 600000)
		f->jitter_ms = (uint32_t)d;
	else if (!strcmp(k, "slow_ms") && d <= 600000)
		f->slow_ms = (uint32_t)d;
	else if (!strcmp(k, "lose_rate") && d <= 1)
		f->lose_rate = d;
	else if ((!strcmp(k, "restart_down_ms") || !strcmp(k, "restart_404_ms")) && d <= 600000) {
		*(k[8] == 'd' ? &f->restart_down_ms : &f->restart_404_ms) = (uint32_t)d;
		f->restart_at_ms = mono_ms();
	} else
		goto bad;
	return 0;
bad:
	snprintf(err, errlen,
		 "%s=%s: unknown parameter or value out of range (rates 0-1, "
		 "error_status 400-599, *_ms 0-600000, down/hang/dedupe 0|1; restart_down_ms "
		 "and restart_404_ms start a restart now)",
		 k, v);
	return -EINVAL;
}

/* In place: %XX and '+' of a query value (an HTTP-date Retry-After has spaces). */
static void url_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		unsigned int c;

		if (*s == '%' && sscanf(s + 1, "%2x", &c) == 1 && s[1] && s[2]) {
			*w++ = (char)c;
			s += 2;
		} else {
			*w++ = *s == '+' ? ' ' : *s;
		}
	}
	*w = 0;
}

int faults_set(const char *query, char *err, size_t errlen)
{
	char buf[1024], *save = NULL, *kv;
	struct faults f;
	int ret = 0;

	if (strlen(query) >= sizeof(buf)) {
		snprintf(err, errlen, "query longer than %zu bytes", sizeof(buf));
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", query);
	pthread_mutex_lock(&lock);
	f = cur;
	for (kv = strtok_r(buf, "&", &save); kv && !ret; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq) {
			snprintf(err, errlen, "%s: expected name=value", kv);
			ret = -EINVAL;
			break;
		}
		*eq = 0;
		url_decode(eq + 1);
		ret = set_one(&f, kv, eq + 1, err, errlen);
	}
	if (!ret)
		cur = f; /* all or nothing */
	pthread_mutex_unlock(&lock);
	return ret;
}

void faults_get(struct faults *f)
{
	pthread_mutex_lock(&lock);
	*f = cur;
	f->down |= restart_phase(&cur) == 1; /* the accept loop closes the listener */
	pthread_mutex_unlock(&lock);
}

void faults_reset(void)
{
	pthread_mutex_lock(&lock);
	defaults();
	for (int i = 0; i < BUCKETS; i++) {
		while (table[i]) {
			struct key_count *k = table[i];

			table[i] = k->next;
			free(k);
		}
	}
	{
		uint64_t inflight = counts.inflight; /* requests still running stay counted */

		memset(&counts, 0, sizeof(counts));
		counts.inflight = counts.max_inflight = inflight;
	}
	pthread_mutex_unlock(&lock);
}

enum mock_action faults_roll(uint32_t *delay_ms)
{
	enum mock_action a = ACT_OK;

	pthread_mutex_lock(&lock);
	*delay_ms = cur.latency_ms + (uint32_t)(uniform() * (cur.jitter_ms + 1));
	if (cur.jitter_ms == 0)
		*delay_ms = cur.latency_ms;
	if (uniform() < cur.slow_rate)
		*delay_ms += cur.slow_ms;
	if (cur.down || restart_phase(&cur) == 1)
		a = ACT_DOWN;
	else if (restart_phase(&cur) == 2)
		a = ACT_NOT_READY;
	else if (uniform() < cur.reset_rate)
		a = ACT_RESET;
	else if (uniform() < cur.hang_rate)
		a = ACT_HANG;
	else if (uniform() < cur.r429_rate)
		a = ACT_429;
	else if (uniform() < cur.error_rate)
		a = ACT_ERROR;
	else if (uniform() < cur.lose_rate)
		a = ACT_LOSE;
	pthread_mutex_unlock(&lock);
	return a;
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Find or add key's counter; lock held. NULL only when out of memory. */
static struct key_count *key_get(const char *key)
{
	struct key_count **head = &table[hash(key) % BUCKETS], *k;

	for (k = *head; k; k = k->next)
		if (!strcmp(k->key, key))
			return k;
	k = calloc(1, sizeof(*k) + strlen(key) + 1);
	if (!k)
		return NULL;
	strcpy(k->key, key);
	k->next = *head;
	*head = k;
	counts.keys++;
	return k;
}

void counts_received(const char *key, const char *path, const char *webhook_id)
{
	struct key_count *k;

	pthread_mutex_lock(&lock);
	counts.received++;
	if (*key && (k = key_get(key))) {
		k->received++;
		snprintf(k->path, sizeof(k->path), "%s", path);
		snprintf(k->webhook_id, sizeof(k->webhook_id), "%s", webhook_id);
	}
	pthread_mutex_unlock(&lock);
}

void counts_lost(const char *key)
{
	struct key_count *k;

	pthread_mutex_lock(&lock);
	counts.lost++;
	if (*key && (k = key_get(key)))
		k->lost++;
	pthread_mutex_unlock(&lock);
}

uint64_t counts_applied(const char *key, bool *replayed, uint64_t *id)
{
	struct key_count *k = NULL;
	uint64_t n = 0;

	pthread_mutex_lock(&lock);
	if (*key)
		k = key_get(key);
	*replayed = cur.dedupe && k && k->applied;
	if (*replayed) {
		counts.replayed++;
		n = k->applied;
		*id = k->id;
		goto out;
	}
	*id = ++counts.applied;
	if (k) {
		n = ++k->applied;
		if (n == 1)
			k->id = *id;
		counts.dup_keys += n == 2;
		if (n > counts.max_applied)
			counts.max_applied = n;
	}
out:
	pthread_mutex_unlock(&lock);
	return n;
}

void counts_action(enum mock_action a)
{
	pthread_mutex_lock(&lock);
	counts.errors += a == ACT_ERROR;
	counts.r429 += a == ACT_429;
	counts.resets += a == ACT_RESET;
	counts.hangs += a == ACT_HANG;
	counts.downs += a == ACT_DOWN;
	counts.not_ready += a == ACT_NOT_READY;
	pthread_mutex_unlock(&lock);
}

void counts_unauthorized(void)
{
	pthread_mutex_lock(&lock);
	counts.unauthorized++;
	pthread_mutex_unlock(&lock);
}

void counts_connection(void)
{
	pthread_mutex_lock(&lock);
	counts.connections++;
	pthread_mutex_unlock(&lock);
}

void counts_inflight(int delta)
{
	pthread_mutex_lock(&lock);
	counts.inflight += (uint64_t)(int64_t)delta;
	if (counts.inflight > counts.max_inflight)
		counts.max_inflight = counts.inflight;
	pthread_mutex_unlock(&lock);
}

void counts_get(struct mock_counts *c)
{
	pthread_mutex_lock(&lock);
	*c = counts;
	pthread_mutex_unlock(&lock);
}

void counts_key(const char *key, struct key_info *ki)
{
	struct key_count *k;

	memset(ki, 0, sizeof(*ki));
	pthread_mutex_lock(&lock);
	for (k = table[hash(key) % BUCKETS]; k && strcmp(k->key, key); k = k->next)
		;
	if (k) {
		ki->received = k->received;
		ki->applied = k->applied;
		ki->lost = k->lost;
		snprintf(ki->path, sizeof(ki->path), "%s", k->path);
		snprintf(ki->webhook_id, sizeof(ki->webhook_id), "%s", k->webhook_id);
	}
	pthread_mutex_unlock(&lock);
}

int faults_json(char *buf, size_t len)
{
	struct faults f;

	faults_get(&f);
	return snprintf(
	    buf, len,
	    "{\"error_rate\":%g,\"error_status\":%d,\"r429_rate\":%g,"
	    "\"retry_after\":\"%s\",\"reset_rate\":%g,\"hang_rate\":%g,\"down\":%d,\"dedupe\":%d,"
	    "\"latency_ms\":%u,\"jitter_ms\":%u,\"slow_rate\":%g,\"slow_ms\":%u,"
	    "\"restart_down_ms\":%u,\"restart_404_ms\":%u,\"lose_rate\":%g}\n",
	    f.error_rate, f.error_status, f.r429_rate, f.retry_after, f.reset_rate, f.hang_rate,
	    f.down, f.dedupe, f.latency_ms, f.jitter_ms, f.slow_rate, f.slow_ms, f.restart_down_ms,
	    f.restart_404_ms, f.lose_rate);
}

int counts_json(char *buf, size_t len)
{
	struct mock_counts c;

	counts_get(&c);
	return snprintf(buf, len,
			"{\"received\":%llu,\"applied\":%llu,\"errors\":%llu,\"r429\":%llu,"
			"\"resets\":%llu,\"hangs\":%llu,\"downs\":%llu,\"keys\":%llu,"
			"\"dup_keys\":%llu,\"replayed\":%llu,\"unauthorized\":%llu,\"max_applied\":"
			"%llu,\"connections\":%"
			"llu,\"inflight\":%"
			"llu,\"max_inflight\":%llu,\"not_ready\":%llu,\"lost\":%llu}\n",
			(unsigned long long)c.received, (unsigned long long)c.applied,
			(unsigned long long)c.errors, (unsigned long long)c.r429,
			(unsigned long long)c.resets, (unsigned long long)c.hangs,
			(unsigned long long)c.downs, (unsigned long long)c.keys,
			(unsigned long long)c.dup_keys, (unsigned long long)c.replayed,
			(unsigned long long)c.unauthorized, (unsigned long long)c.max_applied,
			(unsigned long long)c.connections, (unsigned long long)c.inflight,
			(unsigned long long)c.max_inflight, (unsigned long long)c.not_ready,
			(unsigned long long)c.lost);
}
