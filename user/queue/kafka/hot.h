/* SPDX-License-Identifier: MIT */
/* hot.h -- hot-tenant detector of the Kafka producer: which tenants to spread
 *
 * Keyed by tenant, a class topic puts all of one tenant on one partition, read by one
 * worker. The detector counts each class topic's records by tenant over windows of
 * window_ns; at the end of a window a tenant whose share of the topic's records is at
 * least share_permille (and the topic saw at least min_records) turns hot; a hot tenant
 * cools down only after cool_windows windows in a row under half that share (hysteresis:
 * a tenant near the line does not flap). While hot, its records are keyed
 * "tenant#salt", salt = FNV-1a(idempotency key) mod salts: copies of one key still land
 * on one partition, and the true tenant stays in the sluice-tenant header.
 */
#ifndef SLUICE_KAFKA_HOT_H
#define SLUICE_KAFKA_HOT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define KAFKA_HOT_TENANTS 64 /* tenants tracked per class and window; others count as rest */

struct kafka_hot_cfg {
	unsigned share_permille; /* 0 = never hot */
	unsigned salts;		 /* 2..10 */
	uint64_t window_ns;	 /* default 1 s */
	uint64_t min_records;	 /* a window with fewer records decides nothing (default 50) */
	unsigned cool_windows;	 /* default 5 */
};

struct kafka_hot_slot {
	char tenant[65];
	uint64_t count; /* this window */
	bool hot;
	unsigned cool; /* windows in a row under half the share, while hot */
};

struct kafka_hot_class {
	uint64_t window_start, total;
	struct kafka_hot_slot slot[KAFKA_HOT_TENANTS];
	unsigned used;
};

struct kafka_hot {
	struct kafka_hot_cfg cfg;
	pthread_mutex_t lock;
	struct kafka_hot_class cls[3];
};

/* Fill h (embedded) with cfg; zero fields of cfg take the defaults. */
void kafka_hot_init(struct kafka_hot *h, const struct kafka_hot_cfg *cfg);
void kafka_hot_fini(struct kafka_hot *h);
/* Count one record of tenant in class cls at now_ns (CLOCK_MONOTONIC) and return the salt
 * to key it with: -1 (not hot: key = tenant) or 0..salts-1. Thread-safe. */
int kafka_hot_salt(struct kafka_hot *h, unsigned cls, const char *tenant, const char *idem_key,
		   uint64_t now_ns);
/* Tenants hot now, over all classes. */
unsigned kafka_hot_count(struct kafka_hot *h);
/* The salt of an idempotency key: FNV-1a(key) mod salts. */
unsigned kafka_hot_key_salt(const char *idem_key, unsigned salts);

#endif /* SLUICE_KAFKA_HOT_H */
