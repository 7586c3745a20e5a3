// SPDX-License-Identifier: MIT
/* admission.c -- stage-2 admission: request credits and critical credits per tenant
 *
 * The state array is either the mmapped BPF map (shared with XDP and sluicectl) or a
 * 64-byte-aligned private array of the same layout; the admission code cannot tell them
 * apart, which is the point: one code path, one arithmetic (include/sluice/gcra.h).
 *
 * Deny list: a fixed open-addressing table of (address, expiry) under a mutex, consulted
 * at accept, so it is only touched once per connection. Expired entries are overwritten in
 * place; when the table is full the entry closest to expiry is replaced.
 *
 * --deny-after denies only a source that is the offending tenant's alone: one XDP resolves
 * to that tenant (its configured address or prefix, the longest match over every tenant), or
 * one no tenant lists that carried only that tenant's requests in the last SEEN_WINDOW_NS.
 * A NAT or load balancer address that other tenants also use is never denied for one
 * tenant's excess. The "seen" table records, per recent source, the first tenant and whether
 * another one came along: a set-associative array (SEEN_WAYS per bucket, the oldest way
 * replaced) under striped locks, kept only when --deny-after is on. A source it forgot is
 * not denied.
 *
 * Cluster shares (issue 14): the share array is the mmapped SLUICE_M_TENANT_SHARE map (or a
 * private one without BPF). A limit whose bit is set there is enforced at the node's share
 * instead of the tenant's rate, against the same tat. Its one writer is the lease agent,
 * through admission_share_set(); requests read it with plain atomic loads. Demand (every
 * REQ and CRIT decision, passed or not) is counted per slot for the agent's reports.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "admit/admission.h"
#include "lib/addr_hash.h"
#include "nic/bpf_loader.h"
#include "nic/xdp_config.h"
#include "lib/log.h"
#include "sluice/gcra.h"

#define DENY_SLOTS 4096

#define SEEN_BUCKETS   1024 /* x SEEN_WAYS recent sources, for --deny-after */
#define SEEN_WAYS      8
#define SEEN_LOCKS     64
#define SEEN_WINDOW_NS (600ULL * 1000000000ULL) /* sharing remembered this long */

struct deny_entry {
	struct sluice_addr addr;
	uint64_t until;
};

struct seen {
	struct sluice_addr addr;
	uint32_t slot;	 /* the first tenant seen from addr in this window */
	uint32_t shared; /* another tenant sent from addr too */
	uint64_t at;	 /* its last request; 0: a free way */
};

struct admission {
	struct admission_opts o;
	struct sluice_tenant_state *state;
	bool shared;
	int deny_fd;
	struct sluice_config *xcfg;	   /* the mmapped XDP config entry (shared mode) */
	struct sluice_tenant_share *share; /* this node's cluster shares, by slot */
	uint64_t (*demand)[2];		   /* REQ, CRIT decisions by slot */
	uint32_t *streak;		   /* consecutive rejects per slot */
	pthread_mutex_t lock;
	struct deny_entry deny[DENY_SLOTS];
	uint64_t denials, spared;   /* spared: threshold crossed from a shared source */
	struct seen *seen;	    /* [SEEN_BUCKETS][SEEN_WAYS], with deny_after only */
	admission_deny_fn *on_deny; /* atomic: set after on_deny_arg */
	void *on_deny_arg;
	pthread_mutex_t seen_lock[SEEN_LOCKS];
};

static const char *const outcome_names[ADMISSION_MAX] = {
    "passed", "demoted", "rejected", "passed_dry_run", "demoted_dry_run", "rejected_dry_run",
};

const char *admission_outcome_name(enum admission_outcome o)
{
	return o < ADMISSION_MAX ? outcome_names[o] : "?";
}

struct admission *admission_new(const struct admission_opts *o, const int *fds,
				const char *why_userspace)
{
	struct admission *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->o = *o;
	a->deny_fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	for (int i = 0; i < SEEN_LOCKS; i++)
		pthread_mutex_init(&a->seen_lock[i], NULL);
	a->streak = calloc(SLUICE_MAX_TENANTS, sizeof(*a->streak));
	if (o->deny_after && !(a->seen = calloc(SEEN_BUCKETS * SEEN_WAYS, sizeof(*a->seen))))
		goto fail;
	if (fds) {
		a->state = sluice_bpf_map_state(fds[SLUICE_M_TENANT_STATE]);
		if (!a->state) {
			log_error("admission: cannot mmap the tenant state map", "err=\"%s\"",
				  strerror(errno));
			goto fail;
		}
		a->shared = true;
		a->deny_fd = fds[SLUICE_M_DENY_EXACT];
		a->xcfg = xdp_config_map(fds[SLUICE_M_CONFIG]);
		if (!a->xcfg) {
			log_error("admission: cannot mmap the XDP config map", "err=\"%s\"",
				  strerror(errno));
			goto fail;
		}
		a->share = sluice_bpf_map_share(fds[SLUICE_M_TENANT_SHARE]);
		if (!a->share) {
			log_error("admission: cannot mmap the tenant share map", "err=\"%s\"",
				  strerror(errno));
			goto fail;
		}
	} else {
		a->state = aligned_alloc(64, sizeof(*a->state) * SLUICE_MAX_TENANTS);
		a->share = calloc(SLUICE_MAX_TENANTS, sizeof(*a->share));
		if (!a->state || !a->share)
			goto fail;
		memset(a->state, 0, sizeof(*a->state) * SLUICE_MAX_TENANTS);
		log_warn("admission: request limits enforced in userspace only", "why=\"%s\"",
			 why_userspace ? why_userspace : "no BPF");
	}
	a->demand = calloc(SLUICE_MAX_TENANTS, sizeof(*a->demand));
	if (!a->streak || !a->demand)
		goto fail;
	return a;
fail:
	admission_free(a);
	errno = errno ? errno : ENOMEM;
	return NULL;
}

void admission_free(struct admission *a)
{
	if (!a)
		return;
	if (a->shared) {
		sluice_bpf_unmap_state(a->state);
		sluice_bpf_unmap_share(a->share);
	} else {
		free(a->state);
		free(a->share);
	}
	free(a->demand);
	xdp_config_unmap(a->xcfg);
	free(a->streak);
	free(a->seen);
	for (int i = 0; i < SEEN_LOCKS; i++)
		pthread_mutex_destroy(&a->seen_lock[i]);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Record that slot sent from peer at now; return whether peer has carried only slot's
 * requests within the window (false when it is shared). */
static bool note_seen(struct admission *a, uint32_t slot, const struct sluice_addr *peer,
		      uint64_t now)
{
	unsigned b = addr_hash(peer) % SEEN_BUCKETS;
	struct seen *w = &a->seen[b * SEEN_WAYS], *e = NULL, *oldest = w;
	bool alone;

	pthread_mutex_lock(&a->seen_lock[b % SEEN_LOCKS]);
	for (int i = 0; i < SEEN_WAYS && !e; i++) {
		if (w[i].at && !memcmp(&w[i].addr, peer, sizeof(*peer)))
			e = &w[i];
		else if (w[i].at < oldest->at)
			oldest = &w[i];
	}
	if (e && now - e->at > SEEN_WINDOW_NS)
		*e = (struct seen){.addr = *peer, .slot = slot}; /* a new window */
	if (!e) {
		e = oldest;
		*e = (struct seen){.addr = *peer, .slot = slot};
	}
	if (e->slot != slot)
		e->shared = 1;
	e->at = now;
	alone = !e->shared;
	pthread_mutex_unlock(&a->seen_lock[b % SEEN_LOCKS]);
	return alone;
}

/* Whether peer is t's alone (see the file comment): its source as XDP resolves it, or an
 * unlisted source only t has used lately. all NULL: t's own sources, else the seen table. */
static bool source_alone(const struct tenant *t, const struct tenants *all,
			 const struct sluice_addr *peer, bool seen_alone)
{
	const struct tenant *owner;

	if (all) {
		owner = tenants_by_source(all, peer);
		return owner ? owner->slot == t->slot : seen_alone;
	}
	return tenant_source_covers(t, peer) >= 0 || seen_alone;
}

static void note_result(struct admission *a, const struct tenant *t, const struct tenants *all,
			const struct sluice_addr *peer, bool rejected, uint64_t now)
{
	bool alone = true;
	uint32_t n;

	if (a->seen && peer)
		alone = note_seen(a, t->slot, peer, now);
	if (!rejected) {
		if (__atomic_load_n(&a->streak[t->slot], __ATOMIC_RELAXED))
			__atomic_store_n(&a->streak[t->slot], 0, __ATOMIC_RELAXED);
		return;
	}
	n = __atomic_add_fetch(&a->streak[t->slot], 1, __ATOMIC_RELAXED);
	if (!a->o.deny_after || n < a->o.deny_after || !peer)
		return;
	__atomic_store_n(&a->streak[t->slot], 0, __ATOMIC_RELAXED);
	if (!source_alone(t, all, peer, alone)) {
		__atomic_add_fetch(&a->spared, 1, __ATOMIC_RELAXED);
		log_warn("admission: tenant keeps exceeding its request credits from a source it "
			 "shares: not denied",
			 "tenant=%s rejects=%u", t->name, n);
		return;
	}
	if (!admission_deny(a, peer, now, a->o.deny_secs)) {
		admission_deny_fn *fn = __atomic_load_n(&a->on_deny, __ATOMIC_ACQUIRE);

		log_warn("admission: tenant keeps exceeding its request credits: source denied",
			 "tenant=%s rejects=%u deny_secs=%u", t->name, n, a->o.deny_secs);
		if (fn)
			fn(a->on_deny_arg, peer, a->o.deny_secs);
	}
}

void admission_on_auto_deny(struct admission *a, admission_deny_fn *fn, void *arg)
{
	a->on_deny_arg = arg;
	__atomic_store_n(&a->on_deny, fn, __ATOMIC_RELEASE);
}

/* The limit of kind in force for t: this node's cluster share when the lease agent set one. */
static struct sluice_limit limit_in_force(const struct admission *a, const struct tenant *t,
					  unsigned kind)
{
	const struct sluice_tenant_share *sh = &a->share[t->slot];

	if (!(__atomic_load_n(&sh->mask, __ATOMIC_ACQUIRE) & (1u << kind)))
		return t->limit[kind];
	return (struct sluice_limit){
	    .interval_ns = __atomic_load_n(&sh->limit[kind].interval_ns, __ATOMIC_RELAXED),
	    .burst = __atomic_load_n(&sh->limit[kind].burst, __ATOMIC_RELAXED)};
}

void admission_share_set(struct admission *a, uint32_t slot, unsigned kind,
			 const struct sluice_limit *l, enum sluice_share_source source,
			 uint64_t now)
{
	struct sluice_tenant_share *sh;

	if (slot >= SLUICE_MAX_TENANTS || kind >= SLUICE_LIMIT_MAX)
		return;
	sh = &a->share[slot];
	if (!l) {
		__atomic_and_fetch(&sh->mask, ~(1u << kind), __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&sh->limit[kind].interval_ns, l->interval_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&sh->limit[kind].burst, l->burst, __ATOMIC_RELAXED);
		__atomic_or_fetch(&sh->mask, 1u << kind, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&sh->source, (uint32_t)source, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->updated_ns, now, __ATOMIC_RELAXED);
}

void admission_share_clear(struct admission *a)
{
	for (uint32_t slot = 0; slot < SLUICE_MAX_TENANTS; slot++) {
		if (!__atomic_load_n(&a->share[slot].mask, __ATOMIC_RELAXED) &&
		    !a->share[slot].source)
			continue;
		__atomic_store_n(&a->share[slot].mask, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&a->share[slot].source, SLUICE_SHARE_LOCAL, __ATOMIC_RELAXED);
	}
}

void admission_share_get(const struct admission *a, uint32_t slot, struct sluice_tenant_share *out)
{
	const struct sluice_tenant_share *sh = &a->share[slot % SLUICE_MAX_TENANTS];

	out->mask = __atomic_load_n(&sh->mask, __ATOMIC_ACQUIRE);
	for (int k = 0; k < SLUICE_LIMIT_MAX; k++) {
		out->limit[k].interval_ns =
		    __atomic_load_n(&sh->limit[k].interval_ns, __ATOMIC_RELAXED);
		out->limit[k].burst = __atomic_load_n(&sh->limit[k].burst, __ATOMIC_RELAXED);
	}
	out->source = __atomic_load_n(&sh->source, __ATOMIC_RELAXED);
	out->updated_ns = __atomic_load_n(&sh->updated_ns, __ATOMIC_RELAXED);
}

uint64_t admission_demand(const struct admission *a, uint32_t slot, unsigned kind)
{
	if (slot >= SLUICE_MAX_TENANTS || (kind != SLUICE_LIMIT_REQ && kind != SLUICE_LIMIT_CRIT))
		return 0;
	return __atomic_load_n(&a->demand[slot][kind == SLUICE_LIMIT_CRIT], __ATOMIC_RELAXED);
}

enum admission_outcome admission_request(struct admission *a, const struct tenant *t,
					 const struct tenants *all, const struct sluice_addr *peer,
					 uint64_t now, uint64_t *retry_ns)
{
	const struct sluice_limit lim = limit_in_force(a, t, SLUICE_LIMIT_REQ), *l = &lim;
	__u64 retry = 0;
	int r;

	*retry_ns = 0;
	__atomic_add_fetch(&a->demand[t->slot][0], 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&a->o.dry_run, __ATOMIC_RELAXED)) {
		/* decide without charging: the credits of a dry run stay untouched */
		__u64 nt;

		r = gcra_decide(
		    __atomic_load_n(&a->state[t->slot].tat[SLUICE_LIMIT_REQ], __ATOMIC_RELAXED),
		    now, l->interval_ns, l->burst, &nt, &retry);
		*retry_ns = r == GCRA_PASS ? 0 : retry;
		return r == GCRA_PASS ? ADMISSION_PASSED_DRY_RUN : ADMISSION_REJECTED_DRY_RUN;
	}
	r = gcra_admit(&a->state[t->slot].tat[SLUICE_LIMIT_REQ], now, l->interval_ns, l->burst,
		       &retry);
	note_result(a, t, all, peer, r != GCRA_PASS, now);
	if (r == GCRA_PASS)
		return ADMISSION_PASSED;
	*retry_ns = retry ? retry : l->interval_ns; /* lost CAS races: one interval is honest */
	return ADMISSION_REJECTED;
}

enum admission_outcome admission_critical(struct admission *a, const struct tenant *t, uint64_t now)
{
	const struct sluice_limit lim = limit_in_force(a, t, SLUICE_LIMIT_CRIT), *l = &lim;
	__u64 retry, nt;
	int r;

	__atomic_add_fetch(&a->demand[t->slot][1], 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&a->o.dry_run, __ATOMIC_RELAXED)) {
		r = gcra_decide(
		    __atomic_load_n(&a->state[t->slot].tat[SLUICE_LIMIT_CRIT], __ATOMIC_RELAXED),
		    now, l->interval_ns, l->burst, &nt, &retry);
		return r == GCRA_PASS ? ADMISSION_PASSED_DRY_RUN : ADMISSION_DEMOTED_DRY_RUN;
	}
	r = gcra_admit(&a->state[t->slot].tat[SLUICE_LIMIT_CRIT], now, l->interval_ns, l->burst,
		       &retry);
	return r == GCRA_PASS ? ADMISSION_PASSED : ADMISSION_DEMOTED;
}

static unsigned deny_hash(const struct sluice_addr *p)
{
	return addr_hash(p) % DENY_SLOTS;
}

bool admission_denied(struct admission *a, const struct sluice_addr *peer, uint64_t now)
{
	unsigned h = deny_hash(peer);
	bool denied = false;

	if (!__atomic_load_n(&a->denials, __ATOMIC_RELAXED))
		return false; /* the common case: nobody was ever denied, no lock */
	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < 16; i++) {
		struct deny_entry *e = &a->deny[(h + i) % DENY_SLOTS];

		if (e->until > now && !memcmp(&e->addr, peer, sizeof(*peer))) {
			denied = true;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return denied;
}

static void deny_bpf(struct admission *a, const struct sluice_addr *peer, uint64_t now,
		     uint64_t until)
{
	struct sluice_deny d = {.expires_ns = until, .added_ns = now};

	if (bpf_map_update_elem(a->deny_fd, peer, &d, 0)) {
		log_warn("admission: cannot write the XDP deny map", "err=\"%s\"", strerror(errno));
		return;
	}
	xdp_config_bump(a->xcfg); /* cached source resolutions must see the new deny entry */
}

int admission_deny(struct admission *a, const struct sluice_addr *peer, uint64_t now, unsigned secs)
{
	unsigned h = deny_hash(peer), best = h;
	uint64_t until = now + (uint64_t)secs * 1000000000ULL;

	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < 16; i++) {
		struct deny_entry *e = &a->deny[(h + i) % DENY_SLOTS];

		if (e->until <= now || !memcmp(&e->addr, peer, sizeof(*peer))) {
			best = (h + i) % DENY_SLOTS;
			break;
		}
		if (e->until < a->deny[best].until)
			best = (h + i) % DENY_SLOTS;
	}
	a->deny[best].addr = *peer;
	a->deny[best].until = until;
	__atomic_add_fetch(&a->denials, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&a->lock);
	if (a->shared)
		deny_bpf(a, peer, now, until);
	return 0;
}

void admission_reset_slot(struct admission *a, uint32_t slot)
{
	if (slot < SLUICE_MAX_TENANTS) {
		__atomic_store_n(&a->state[slot].tat[SLUICE_LIMIT_REQ], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&a->state[slot].tat[SLUICE_LIMIT_CRIT], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&a->streak[slot], 0, __ATOMIC_RELAXED);
	}
}

void admission_set_dry_run(struct admission *a, bool dry_run)
{
	__atomic_store_n(&a->o.dry_run, dry_run, __ATOMIC_RELAXED);
}

uint64_t admission_denials(const struct admission *a)
{
	return __atomic_load_n(&a->denials, __ATOMIC_RELAXED);
}

uint64_t admission_spared(const struct admission *a)
{
	return __atomic_load_n(&a->spared, __ATOMIC_RELAXED);
}

bool admission_shared(const struct admission *a)
{
	return a->shared;
}
