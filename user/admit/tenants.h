/* SPDX-License-Identifier: MIT */
/* tenants.h -- the tenants file: who may send, with which keys, class, limits and sources
 *
 * Format (INI, read with inih; one section per tenant, keys may repeat):
 *
 *	# acme sends critical leads from its office and one server
 *	[acme]
 *	key = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08   ; sluicectl key
 *hash key = <second digest while rotating> class = critical          ; critical | normal | low
 *(default normal) req_rate = 1000           ; HTTP requests/s, 0 or absent = unlimited req_burst =
 *10000         ; credits banked when idle (default: one second's worth) crit_rate = 100           ;
 *critical events/s before demotion to normal crit_burst = 100 syn_rate = 200            ; new TCP
 *connections/s (XDP) syn_burst = 400 pkt_rate = 20000          ; packets/s to service ports (XDP)
 *	pkt_burst = 40000
 *	source = 203.0.113.7      ; address or prefix (v4 or v6), repeatable
 *	source = 2001:db8::/32
 *	cert_sha256 = 5d:41:...   ; a TLS client certificate's SHA-256 (hex, colons optional):
 *	                          ; mTLS as an alternative to a key, repeatable
 *
 * A loaded table is immutable and reference counted: request handlers hold the table they
 * started with while SIGHUP installs a new one (tenants_ref_swap). A tenant keeps its slot
 * across reloads (matched by name), so its GCRA state and counters carry over; new tenants
 * take the lowest free slot, in file order.
 */
#ifndef SLUICE_TENANTS_H
#define SLUICE_TENANTS_H

#include <linux/types.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/sha256.h"
#include "sluice/abi.h"

struct tenant {
	char name[SLUICE_NAME_LEN];
	uint32_t slot;
	enum sluice_class class;
	struct sluice_limit limit[SLUICE_LIMIT_MAX];
	unsigned nsources;
	struct tenant_digests {
		unsigned n;
		uint8_t (*d)[SHA256_LEN];
	} keys, certs; /* API key digests; client certificate fingerprints (mTLS) */
	struct sluice_lpm_key *sources; /* prefixlen 128 = one address (exact map) */
};

struct tenants;

/* Load path. prev (may be NULL) supplies the slots of tenants that already exist. Returns a
 * table with one reference, or NULL with errno set and err filled with "file:line: what is
 * wrong" (nothing else changes). */
struct tenants *tenants_load(const char *path, const struct tenants *prev, char *err,
			     size_t errlen);
/* The names and slots the pinned tenant config map (fd) holds, as a table to pass as prev to
 * tenants_load() at start: a restart then gives every tenant its old slot -- and so its
 * credit state and counters -- whatever order the file lists them in. Only names and
 * slots are filled. NULL + errno when out of memory. */
struct tenants *tenants_from_bpf(int cfg_fd);
/* Take / drop a reference; the last put frees the table. put(NULL) is a no-op. */
struct tenants *tenants_get(struct tenants *t);
void tenants_put(struct tenants *t);

/* Number of tenants (0 for NULL), and the i-th in file order (NULL past the end); the
 * pointers stay valid while the caller holds its reference to t. */
unsigned tenants_count(const struct tenants *t);
const struct tenant *tenants_at(const struct tenants *t, unsigned i);
/* Tenant owning the key with this SHA-256 digest, or NULL. */
const struct tenant *tenants_by_digest(const struct tenants *t, const uint8_t d[SHA256_LEN]);
/* Tenant owning the client certificate with this SHA-256 fingerprint, or NULL. */
const struct tenant *tenants_by_cert(const struct tenants *t, const uint8_t fp[SHA256_LEN]);
/* Tenant in a slot, or NULL. */
const struct tenant *tenants_by_slot(const struct tenants *t, uint32_t slot);
/* Tenant with a configured source (address or prefix) that a lies in, the longest prefix
 * winning, or NULL. A linear scan: for rare decisions (a refusal), not per packet. */
const struct tenant *tenants_by_source(const struct tenants *t, const struct sluice_addr *a);
/* The prefix length of tn's longest source that a lies in, or -1 when none. */
int tenant_source_covers(const struct tenant *tn, const struct sluice_addr *a);
/* Whether slot is held by a tenant of t that was not in prev under the same name (its
 * credit state must start fresh). */
int tenants_slot_is_new(const struct tenants *t, const struct tenants *prev, uint32_t slot);

/* Write t into the BPF maps (fds indexed by enum sluice_map_id): tenant config per slot,
 * source addresses and prefixes; entries of prev that t no longer has are removed, then the
 * config generation is bumped so XDP re-resolves cached sources. Returns 0 or -errno with
 * err filled; on failure the maps may hold a mix (the caller logs and retries). */
int tenants_apply_bpf(const struct tenants *t, const struct tenants *prev, const int *fds,
		      char *err, size_t errlen);

/* Whether name may name a tenant: 1-31 characters, letters, digits, '.', '_' and '-',
 * starting with a letter or digit, and neither "none" nor "anonymous" (sluicectl's names
 * for the reserved slots). Tenant names go into Redis keys, metric labels, log lines and
 * queue records, so nothing else is allowed. 0, or -EINVAL with why filled (no name in it). */
int tenants_name_check(const char *name, char *why, size_t len);
/* Parse a source "a.b.c.d[/n]" or "v6[/n]" into an LPM key (IPv4 mapped). -EINVAL. */
int tenants_parse_source(const char *s, struct sluice_lpm_key *k);
const char *tenants_class_name(enum sluice_class c);
/* "critical" -> SLUICE_CLASS_CRITICAL; -EINVAL for anything else. */
int tenants_class_parse(const char *s);

/* The current table, swappable from one thread while others read it. */
struct tenants_ref {
	pthread_mutex_t lock;
	struct tenants *cur;
	uint64_t version; /* bumped by every swap (read without the lock) */
};

void tenants_ref_init(struct tenants_ref *r, struct tenants *t);
void tenants_ref_fini(struct tenants_ref *r);
/* A reference to the current table (caller puts it). */
struct tenants *tenants_ref_acquire(struct tenants_ref *r);
/* Install t (its reference moves into r); the old table is put. */
void tenants_ref_swap(struct tenants_ref *r, struct tenants *t);

#endif /* SLUICE_TENANTS_H */
