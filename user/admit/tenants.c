// SPDX-License-Identifier: MIT
/* tenants.c -- the tenants file: who may send, with which keys, class, limits and sources
 *
 * Loading builds a complete new table off to the side (inih calls one handler per key; a
 * section change starts a tenant), then validates it as a whole (duplicate names, a key
 * digest used by two tenants, a source claimed twice), sorts the key digests for binary
 * search and assigns slots. Only a table that passed everything is ever returned, so a
 * broken file on SIGHUP leaves the running table untouched. inih reports the line of the
 * first handler error; the handler records the message of that first error.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nic/bpf_loader.h"
#include "nic/xdp_config.h"
#include "admit/tenants.h"

struct tenants {
	int refs;
	unsigned n, nkeys, ncerts;
	struct tenant *v;
	struct digest_ix {
		uint8_t d[SHA256_LEN];
		unsigned tenant;
	} * keys, *certs; /* sorted by digest */
	int32_t *by_slot; /* slot -> index into v, -1 = free */
};

struct load_ctx {
	struct tenants *t;
	unsigned cap;
	char section[64];
	double rate[SLUICE_LIMIT_MAX];
	long long burst[SLUICE_LIMIT_MAX];
	char msg[256]; /* first error */
};

static const char *const limit_keys[SLUICE_LIMIT_MAX] = {"syn", "pkt", "req", "crit"};
static const char *const class_names[SLUICE_CLASS_MAX] = {"critical", "normal", "low"};

const char *tenants_class_name(enum sluice_class c)
{
	return c < SLUICE_CLASS_MAX ? class_names[c] : "?";
}

int tenants_class_parse(const char *s)
{
	for (int i = 0; i < SLUICE_CLASS_MAX; i++)
		if (!strcmp(s, class_names[i]))
			return i;
	return -EINVAL;
}

int tenants_parse_source(const char *s, struct sluice_lpm_key *k)
{
	char addr[INET6_ADDRSTRLEN + 8], *slash, *end;
	long bits = -1;
	struct in_addr a4;

	if (strlen(s) >= sizeof(addr))
		return -EINVAL;
	strcpy(addr, s);
	slash = strchr(addr, '/');
	if (slash) {
		*slash = '\0';
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || bits < 0)
			return -EINVAL;
	}
	memset(k, 0, sizeof(*k));
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		if (bits > 32)
			return -EINVAL;
		k->a[10] = k->a[11] = 0xff;
		memcpy(&k->a[12], &a4, 4);
		k->prefixlen = 96 + (bits < 0 ? 32 : (uint32_t)bits);
	} else if (inet_pton(AF_INET6, addr, k->a) == 1) {
		if (bits > 128)
			return -EINVAL;
		k->prefixlen = bits < 0 ? 128 : (uint32_t)bits;
	} else {
		return -EINVAL;
	}
	/* host bits beyond the prefix must be zero: 10.1.2.3/8 is almost always a typo */
	for (uint32_t b = k->prefixlen; b < 128; b++)
		if (k->a[b / 8] & (0x80 >> (b % 8)))
			return -EINVAL;
	return 0;
}

/* Record the first error (inih reports its line) and stop accepting keys. */
__attribute__((format(printf, 2, 3))) static int fail(struct load_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->msg[0]) {
		va_start(ap, fmt);
		vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
		va_end(ap);
	}
	return 0;
}

/* Close the tenant being read: turn rate/burst pairs into GCRA limits. */
static int finish_tenant(struct load_ctx *c)
{
	struct tenant *tn;

	if (!c->section[0])
		return 1;
	tn = &c->t->v[c->t->n - 1];
	for (int i = 0; i < SLUICE_LIMIT_MAX; i++) {
		if (c->rate[i] <= 0) {
			if (c->burst[i] > 0)
				return fail(c, "[%s]: %s_burst without a %s_rate", tn->name,
					    limit_keys[i], limit_keys[i]);
			continue;
		}
		tn->limit[i].interval_ns = (__u64)llround(1e9 / c->rate[i]);
		if (!tn->limit[i].interval_ns)
			tn->limit[i].interval_ns = 1;
		tn->limit[i].burst =
		    c->burst[i] > 0 ? (__u64)c->burst[i] : (__u64)(c->rate[i] < 1 ? 1 : c->rate[i]);
	}
	return 1;
}

static int start_tenant(struct load_ctx *c, const char *section)
{
	struct tenant *tn;
	char why[128];

	if (!finish_tenant(c))
		return 0;
	if (tenants_name_check(section, why, sizeof(why)))
		return fail(c, "tenant name [%s]: %s", section, why);
	for (unsigned i = 0; i < c->t->n; i++)
		if (!strcmp(c->t->v[i].name, section))
			return fail(c, "tenant [%s] defined twice", section);
	if (c->t->n == c->cap) {
		unsigned cap = c->cap ? c->cap * 2 : 16;
		void *v = realloc(c->t->v, cap * sizeof(*c->t->v));

		if (!v || cap > SLUICE_MAX_TENANTS - SLUICE_SLOT_FIRST)
			return fail(c, "too many tenants");
		c->t->v = v;
		c->cap = cap;
	}
	tn = &c->t->v[c->t->n++];
	memset(tn, 0, sizeof(*tn));
	strcpy(tn->name, section);
	tn->class = SLUICE_CLASS_NORMAL;
	snprintf(c->section, sizeof(c->section), "%s", section);
	memset(c->rate, 0, sizeof(c->rate));
	memset(c->burst, 0, sizeof(c->burst));
	return 1;
}

/* A digest into list (keys or certs); certificate fingerprints may come with colons, as
 * `openssl x509 -fingerprint -sha256` prints them. */
static int add_digest(struct load_ctx *c, const char *name, const char *value,
		      struct tenant_digests *list)
{
	char hex[2 * SHA256_LEN + 1];
	uint8_t d[SHA256_LEN];
	size_t len = 0;
	void *k;

	for (const char *p = value; *p && len < sizeof(hex) - 1; p++)
		if (*p != ':' || strcmp(name, "cert_sha256"))
			hex[len++] = *p;
	hex[len] = '\0';
	if (strlen(value) > 3 * SHA256_LEN || sha256_from_hex(hex, d))
		return fail(
		    c, "%s '%s' is not a SHA-256 hex digest (64 hex digits; %s)", name, value,
		    strcmp(name, "key") ? "openssl x509 -noout -fingerprint -sha256 -in CERT"
					: "make one with: sluicectl key hash");
	k = realloc(list->d, (list->n + 1) * sizeof(*list->d));
	if (!k)
		return fail(c, "out of memory");
	list->d = k;
	memcpy(list->d[list->n++], d, SHA256_LEN);
	return 1;
}

static int add_source(struct load_ctx *c, struct tenant *tn, const char *value)
{
	struct sluice_lpm_key k;
	void *s;

	if (tenants_parse_source(value, &k))
		return fail(c,
			    "source '%s' is not an address or prefix with zero host bits "
			    "(e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)",
			    value);
	s = realloc(tn->sources, (tn->nsources + 1) * sizeof(*tn->sources));
	if (!s)
		return fail(c, "out of memory");
	tn->sources = s;
	tn->sources[tn->nsources++] = k;
	return 1;
}

static int set_limit(struct load_ctx *c, const char *name, const char *value)
{
	char *end;

	for (int i = 0; i < SLUICE_LIMIT_MAX; i++) {
		size_t l = strlen(limit_keys[i]);

		if (strncmp(name, limit_keys[i], l) || name[l] != '_')
			continue;
		errno = 0;
		if (!strcmp(name + l, "_rate")) {
			c->rate[i] = strtod(value, &end);
			if (errno || end == value || *end || c->rate[i] < 0 || c->rate[i] > 1e9)
				return fail(c, "%s = %s: expected a rate 0..1e9 per second", name,
					    value);
			return 1;
		}
		if (!strcmp(name + l, "_burst")) {
			c->burst[i] = strtoll(value, &end, 10);
			if (errno || end == value || *end || c->burst[i] < 1 ||
			    c->burst[i] > 1000000000)
				return fail(c, "%s = %s: expected a whole number 1..1e9", name,
					    value);
			return 1;
		}
	}
	return fail(
	    c,
	    "unknown key '%s' (expected key, cert_sha256, class, source, syn|pkt|req|crit_rate, "
	    "syn|pkt|req|crit_burst)",
	    name);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *c = user;
	struct tenant *tn;
	int cls;

	if (c->msg[0])
		return 0;
	if (!section[0])
		return fail(c, "'%s' outside a [tenant] section", name);
	if (strcmp(section, c->section) && !start_tenant(c, section))
		return 0;
	tn = &c->t->v[c->t->n - 1];
	if (!strcmp(name, "key"))
		return add_digest(c, name, value, &tn->keys);
	if (!strcmp(name, "cert_sha256"))
		return add_digest(c, name, value, &tn->certs);
	if (!strcmp(name, "source"))
		return add_source(c, tn, value);
	if (!strcmp(name, "class")) {
		if ((cls = tenants_class_parse(value)) < 0)
			return fail(c, "class = %s: expected critical, normal or low", value);
		tn->class = (enum sluice_class)cls;
		return 1;
	}
	return set_limit(c, name, value);
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, SHA256_LEN);
}

static const struct tenant_digests *digests_of(const struct tenant *tn, bool certs)
{
	return certs ? &tn->certs : &tn->keys;
}

/* A sorted index of one digest list (keys, or certs) of every tenant; a digest shared by two
 * tenants is an error. */
static int index_digests(struct tenants *t, bool certs, struct digest_ix **ix, unsigned *nix,
			 char *msg, size_t len)
{
	unsigned n = 0;

	for (unsigned i = 0; i < t->n; i++)
		n += digests_of(&t->v[i], certs)->n;
	*ix = calloc(n ? n : 1, sizeof(**ix));
	if (!*ix)
		return -ENOMEM;
	for (unsigned i = 0; i < t->n; i++) {
		const struct tenant_digests *l = digests_of(&t->v[i], certs);

		for (unsigned k = 0; k < l->n; k++) {
			memcpy((*ix)[*nix].d, l->d[k], SHA256_LEN);
			(*ix)[(*nix)++].tenant = i;
		}
	}
	qsort(*ix, *nix, sizeof(**ix), cmp_key);
	for (unsigned i = 1; i < *nix; i++)
		if (!memcmp((*ix)[i - 1].d, (*ix)[i].d, SHA256_LEN)) {
			snprintf(msg, len, "the same %s is listed for [%s] and [%s]",
				 certs ? "cert_sha256" : "key digest",
				 t->v[(*ix)[i - 1].tenant].name, t->v[(*ix)[i].tenant].name);
			return -EINVAL;
		}
	return 0;
}

static int index_keys(struct tenants *t, char *msg, size_t len)
{
	int err = index_digests(t, false, &t->keys, &t->nkeys, msg, len);

	return err ? err : index_digests(t, true, &t->certs, &t->ncerts, msg, len);
}

/* Same slot as in prev for a known name, else the lowest free one, in file order. */
static int assign_slots(struct tenants *t, const struct tenants *prev)
{
	uint32_t next = SLUICE_SLOT_FIRST;

	t->by_slot = malloc(SLUICE_MAX_TENANTS * sizeof(*t->by_slot));
	if (!t->by_slot)
		return -ENOMEM;
	memset(t->by_slot, 0xff, SLUICE_MAX_TENANTS * sizeof(*t->by_slot));
	for (unsigned i = 0; i < t->n; i++) {
		t->v[i].slot = 0;
		for (unsigned j = 0; prev && j < prev->n; j++)
			if (!strcmp(prev->v[j].name, t->v[i].name))
				t->v[i].slot = prev->v[j].slot;
		if (t->v[i].slot)
			t->by_slot[t->v[i].slot] = (int32_t)i;
	}
	for (unsigned i = 0; i < t->n; i++) {
		if (t->v[i].slot)
			continue;
		/* skip slots still held by the previous table: their credit state is live */
		while (next < SLUICE_MAX_TENANTS &&
		       (t->by_slot[next] >= 0 || (prev && prev->by_slot[next] >= 0)))
			next++;
		if (next == SLUICE_MAX_TENANTS)
			return -ENOSPC;
		t->v[i].slot = next;
		t->by_slot[next] = (int32_t)i;
	}
	return 0;
}

static void tenants_free(struct tenants *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n; i++) {
		free(t->v[i].keys.d);
		free(t->v[i].certs.d);
		free(t->v[i].sources);
	}
	free(t->v);
	free(t->keys);
	free(t->certs);
	free(t->by_slot);
	free(t);
}

struct tenants *tenants_from_bpf(int cfg_fd)
{
	struct tenants *t = calloc(1, sizeof(*t));
	struct sluice_tenant_cfg tc;
	unsigned cap = 0;

	if (!t || !(t->by_slot = malloc(SLUICE_MAX_TENANTS * sizeof(*t->by_slot)))) {
		free(t);
		return NULL;
	}
	t->refs = 1;
	memset(t->by_slot, 0xff, SLUICE_MAX_TENANTS * sizeof(*t->by_slot));
	for (uint32_t slot = SLUICE_SLOT_FIRST; slot < SLUICE_MAX_TENANTS; slot++) {
		if (bpf_map_lookup_elem(cfg_fd, &slot, &tc) || !tc.name[0])
			continue;
		if (t->n == cap) {
			struct tenant *nv = realloc(t->v, (cap = cap ? 2 * cap : 64) * sizeof(*nv));

			if (!nv) {
				tenants_free(t);
				return NULL;
			}
			t->v = nv;
		}
		memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
		memcpy(t->v[t->n].name, tc.name, sizeof(tc.name));
		t->v[t->n].name[SLUICE_NAME_LEN - 1] = 0;
		t->v[t->n].slot = slot;
		t->by_slot[slot] = (int32_t)t->n++;
	}
	return t;
}

struct tenants *tenants_load(const char *path, const struct tenants *prev, char *err, size_t errlen)
{
	struct load_ctx c = {0};
	int line, e = EINVAL;

	c.t = calloc(1, sizeof(*c.t));
	if (!c.t)
		return NULL;
	c.t->refs = 1;
	line = ini_parse(path, on_key, &c);
	if (line < 0) {
		e = line == -1 ? errno ? errno : ENOENT : ENOMEM;
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
		goto fail;
	}
	if (line > 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line, c.msg[0] ? c.msg : "syntax error");
		goto fail;
	}
	if (!finish_tenant(&c)) {
		snprintf(err, errlen, "%s: %s", path, c.msg);
		goto fail;
	}
	if ((e = -index_keys(c.t, c.msg, sizeof(c.msg)))) {
		snprintf(err, errlen, "%s: %s", path, c.msg[0] ? c.msg : strerror(e));
		goto fail;
	}
	if ((e = -assign_slots(c.t, prev))) {
		snprintf(err, errlen, "%s: no free tenant slot (max %d)", path,
			 SLUICE_MAX_TENANTS - SLUICE_SLOT_FIRST);
		goto fail;
	}
	return c.t;
fail:
	tenants_free(c.t);
	errno = e;
	return NULL;
}

struct tenants *tenants_get(struct tenants *t)
{
	if (t)
		__atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

void tenants_put(struct tenants *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		tenants_free(t);
}

unsigned tenants_count(const struct tenants *t)
{
	return t ? t->n : 0;
}

const struct tenant *tenants_at(const struct tenants *t, unsigned i)
{
	return t && i < t->n ? &t->v[i] : NULL;
}

/* Whether the first bits bits of a and p are equal. */
static bool prefix_match(const uint8_t *a, const uint8_t *p, uint32_t bits)
{
	uint32_t bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, p, bytes))
		return false;
	return !rest || !((a[bytes] ^ p[bytes]) & (uint8_t)(0xff << (8 - rest)));
}

const struct tenant *tenants_by_source(const struct tenants *t, const struct sluice_addr *a)
{
	const struct tenant *best = NULL;
	int best_len = -1;

	for (unsigned i = 0; i < tenants_count(t); i++) {
		int len = tenant_source_covers(&t->v[i], a);

		if (len > best_len) {
			best = &t->v[i];
			best_len = len;
		}
	}
	return best;
}

static const struct tenant *lookup(const struct tenants *t, const struct digest_ix *ix, unsigned n,
				   const uint8_t d[SHA256_LEN])
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		int c = memcmp(d, ix[mid].d, SHA256_LEN);

		if (!c)
			return &t->v[ix[mid].tenant];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct tenant *tenants_by_digest(const struct tenants *t, const uint8_t d[SHA256_LEN])
{
	return t ? lookup(t, t->keys, t->nkeys, d) : NULL;
}

const struct tenant *tenants_by_cert(const struct tenants *t, const uint8_t fp[SHA256_LEN])
{
	return t ? lookup(t, t->certs, t->ncerts, fp) : NULL;
}

const struct tenant *tenants_by_slot(const struct tenants *t, uint32_t slot)
{
	if (!t || slot >= SLUICE_MAX_TENANTS || t->by_slot[slot] < 0)
		return NULL;
	return &t->v[t->by_slot[slot]];
}

int tenant_source_covers(const struct tenant *tn, const struct sluice_addr *a)
{
	int best = -1;

	for (unsigned k = 0; k < tn->nsources; k++) {
		const struct sluice_lpm_key *src = &tn->sources[k];

		if (src->prefixlen <= 128 && (int)src->prefixlen > best &&
		    prefix_match(a->a, src->a, src->prefixlen))
			best = (int)src->prefixlen;
	}
	return best;
}

int tenants_slot_is_new(const struct tenants *t, const struct tenants *prev, uint32_t slot)
{
	const struct tenant *a = tenants_by_slot(t, slot), *b = tenants_by_slot(prev, slot);

	return a && (!b || strcmp(a->name, b->name));
}

void tenants_ref_init(struct tenants_ref *r, struct tenants *t)
{
	pthread_mutex_init(&r->lock, NULL);
	r->cur = t;
	r->version = 1;
}

void tenants_ref_fini(struct tenants_ref *r)
{
	tenants_put(r->cur);
	r->cur = NULL;
	pthread_mutex_destroy(&r->lock);
}

struct tenants *tenants_ref_acquire(struct tenants_ref *r)
{
	struct tenants *t;

	pthread_mutex_lock(&r->lock);
	t = tenants_get(r->cur);
	pthread_mutex_unlock(&r->lock);
	return t;
}

void tenants_ref_swap(struct tenants_ref *r, struct tenants *t)
{
	struct tenants *old;

	pthread_mutex_lock(&r->lock);
	old = r->cur;
	r->cur = t;
	__atomic_add_fetch(&r->version, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
	tenants_put(old);
}

static int write_sources(const struct tenant *tn, const int *fds, bool del)
{
	for (unsigned i = 0; i < tn->nsources; i++) {
		const struct sluice_lpm_key *k = &tn->sources[i];
		int err;

		if (k->prefixlen == 128) {
			struct sluice_addr a;

			memcpy(a.a, k->a, sizeof(a.a));
			err = del ? bpf_map_delete_elem(fds[SLUICE_M_SRC_EXACT], &a)
				  : bpf_map_update_elem(fds[SLUICE_M_SRC_EXACT], &a, &tn->slot, 0);
		} else {
			err = del ? bpf_map_delete_elem(fds[SLUICE_M_SRC_PREFIX], k)
				  : bpf_map_update_elem(fds[SLUICE_M_SRC_PREFIX], k, &tn->slot, 0);
		}
		if (err && !(del && errno == ENOENT))
			return -errno;
	}
	return 0;
}

static int write_cfg(const struct tenant *tn, const int *fds)
{
	struct sluice_tenant_cfg cfg = {0};

	memcpy(cfg.name, tn->name, sizeof(cfg.name));
	memcpy(cfg.limit, tn->limit, sizeof(cfg.limit));
	cfg.class = tn->class;
	return bpf_map_update_elem(fds[SLUICE_M_TENANT_CFG], &tn->slot, &cfg, 0) ? -errno : 0;
}

int tenants_apply_bpf(const struct tenants *t, const struct tenants *prev, const int *fds,
		      char *err, size_t errlen)
{
	int e = 0;

	/* removals first, so a source that moved between tenants ends up with its new owner */
	for (unsigned i = 0; prev && i < prev->n && !e; i++) {
		const struct tenant *old = &prev->v[i];

		if ((e = write_sources(old, fds, true)))
			break;
		if (tenants_by_slot(t, old->slot) == NULL) {
			struct sluice_tenant_cfg empty = {0};

			if (bpf_map_update_elem(fds[SLUICE_M_TENANT_CFG], &old->slot, &empty, 0))
				e = -errno;
		}
	}
	for (unsigned i = 0; i < t->n && !e; i++)
		if (!(e = write_cfg(&t->v[i], fds)))
			e = write_sources(&t->v[i], fds, false);
	if (!e) /* an atomic add in place: other writers share the entry (nic/xdp_config.h) */
		e = xdp_config_bump_fd(fds[SLUICE_M_CONFIG]);
	if (e)
		snprintf(err, errlen, "writing tenants into the BPF maps: %s", strerror(-e));
	return e;
}
