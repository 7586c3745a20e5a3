// SPDX-License-Identifier: MIT
/* cmd_addr.c -- sluicectl source, prefix and deny: the address maps
 *
 * Sources (exact hash) and prefixes (LPM trie) map an address to a tenant slot; the deny
 * maps hold an expiry (CLOCK_MONOTONIC, 0 = never). IPv4 is stored IPv4-mapped, so an
 * IPv4 /24 is LPM prefixlen 120. The XDP program caches each source's resolution, so
 * every change here bumps config.generation: the cache is redone on the next packet.
 * A deny entry that has expired is ignored by the program and listed as expired; deny
 * del removes it. A bare address is an exact entry; ADDR/LEN a prefix entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "cli.h"
#include "lib/clock.h"

/* Print the result of a change, or fail; returns the exit code. */
static int done(struct ctl *c, int err, const char *what, const char *obj, const char *name)
{
	if (!err)
		err = ctl_bump_generation(c);
	if (err)
		return ctl_fail("%s %s: %s", what, obj, strerror(-err));
	if (c->json)
		ctl_json_print(
		    json_pack("{s:s, s:s, s:s?}", "done", what, "address", obj, "tenant", name));
	else if (name)
		printf("%s %s (tenant %s)\n", what, obj, name);
	else
		printf("%s %s\n", what, obj);
	return 0;
}

static int map_update(int fd, const void *key, const void *val)
{
	return bpf_map_update_elem(fd, key, val, BPF_ANY) ? -errno : 0;
}

/* Delete key, refusing when it maps to another slot than want (want < 0: any). */
static int map_delete_checked(int fd, const void *key, int want, const char *obj, const char *name)
{
	__u32 val;

	if (bpf_map_lookup_elem(fd, key, &val)) {
		if (errno == ENOENT)
			ctl_bad_arg("%s: not configured%s%s", obj, name ? " for tenant " : "",
				    name ? name : "");
		return -errno;
	}
	if (want >= 0 && (int)val != want)
		ctl_bad_arg("%s: belongs to slot %u, not to tenant %s", obj, val, name);
	return bpf_map_delete_elem(fd, key) ? -errno : 0;
}

static int run_source(struct ctl *c, const struct ctl_args *a, bool add)
{
	struct sluice_addr addr;
	__u32 slot;
	int fd;

	ctl_parse_addr("ADDR", a->pos[1], &addr);
	slot = (__u32)ctl_tenant_need(c, a->pos[0], NULL);
	fd = ctl_map(c, SLUICE_M_SRC_EXACT);
	return done(c,
		    add ? map_update(fd, &addr, &slot)
			: map_delete_checked(fd, &addr, (int)slot, a->pos[1], a->pos[0]),
		    add ? "source added" : "source removed", a->pos[1], a->pos[0]);
}

static int run_source_add(struct ctl *c, const struct ctl_args *a)
{
	return run_source(c, a, true);
}

static int run_source_del(struct ctl *c, const struct ctl_args *a)
{
	return run_source(c, a, false);
}

static int run_prefix(struct ctl *c, const struct ctl_args *a, bool add)
{
	struct sluice_lpm_key key;
	char norm[64];
	__u32 slot;
	int fd;

	ctl_parse_cidr("CIDR", a->pos[1], &key);
	ctl_format_cidr(&key, norm, sizeof(norm));
	slot = (__u32)ctl_tenant_need(c, a->pos[0], NULL);
	fd = ctl_map(c, SLUICE_M_SRC_PREFIX);
	return done(c,
		    add ? map_update(fd, &key, &slot)
			: map_delete_checked(fd, &key, (int)slot, norm, a->pos[0]),
		    add ? "prefix added" : "prefix removed", norm, a->pos[0]);
}

static int run_prefix_add(struct ctl *c, const struct ctl_args *a)
{
	return run_prefix(c, a, true);
}

static int run_prefix_del(struct ctl *c, const struct ctl_args *a)
{
	return run_prefix(c, a, false);
}

/* Parse ADDR or ADDR/LEN into the exact or prefix key; returns the map to use. */
static enum sluice_map_id deny_key(const char *s, struct sluice_lpm_key *key, char *norm,
				   size_t len)
{
	if (strchr(s, '/')) {
		ctl_parse_cidr("ADDR|CIDR", s, key);
		ctl_format_cidr(key, norm, len);
		return SLUICE_M_DENY_PREFIX;
	}
	ctl_parse_addr("ADDR|CIDR", s, (struct sluice_addr *)key->a);
	ctl_format_addr(key->a, norm, len);
	return SLUICE_M_DENY_EXACT;
}

static int run_deny_add(struct ctl *c, const struct ctl_args *a)
{
	const char *ttl_s = ctl_opt_get(a, "ttl");
	struct sluice_lpm_key key;
	struct sluice_deny d;
	char norm[64], ttl_txt[32];
	enum sluice_map_id id = deny_key(a->pos[0], &key, norm, sizeof(norm));
	__u64 ttl = ttl_s ? ctl_parse_duration("--ttl", ttl_s) : 0;
	const void *k = id == SLUICE_M_DENY_PREFIX ? (void *)&key : (void *)key.a;
	int ret;

	d.added_ns = clock_mono_ns();
	d.expires_ns = ttl ? d.added_ns + ttl : 0;
	ret = map_update(ctl_map(c, id), k, &d);
	if (!ret)
		ret = ctl_bump_generation(c);
	if (ret)
		return ctl_fail("deny add %s: %s", a->pos[0], strerror(-ret));
	if (c->json)
		ctl_json_print(json_pack("{s:s, s:s, s:I}", "denied", norm, "kind",
					 id == SLUICE_M_DENY_PREFIX ? "prefix" : "exact", "ttl_ns",
					 (json_int_t)ttl));
	else if (ttl)
		printf("denied %s for %s\n", norm,
		       ctl_format_duration(ttl, ttl_txt, sizeof(ttl_txt)));
	else
		printf("denied %s until deny del\n", norm);
	return 0;
}

static int run_deny_del(struct ctl *c, const struct ctl_args *a)
{
	struct sluice_lpm_key key;
	char norm[64];
	enum sluice_map_id id = deny_key(a->pos[0], &key, norm, sizeof(norm));
	const void *k = id == SLUICE_M_DENY_PREFIX ? (void *)&key : (void *)key.a;

	if (bpf_map_delete_elem(ctl_map(c, id), k)) {
		if (errno == ENOENT)
			ctl_bad_arg("deny del %s: not on the deny list (deny list shows it)", norm);
		return ctl_fail("deny del %s: %s", norm, strerror(errno));
	}
	return done(c, 0, "deny removed", norm, NULL);
}

/* Append every entry of a deny map to arr. */
static void deny_entries(struct ctl *c, enum sluice_map_id id, json_t *arr, __u64 now)
{
	int fd = ctl_map(c, id);
	struct sluice_lpm_key key = {}, next = {};
	void *prev = NULL, *np = id == SLUICE_M_DENY_PREFIX ? (void *)&next : (void *)next.a;
	struct sluice_deny d;
	char buf[64];

	while (!bpf_map_get_next_key(fd, prev, np)) {
		if (!bpf_map_lookup_elem(fd, np, &d)) {
			const char *s = id == SLUICE_M_DENY_PREFIX
					    ? ctl_format_cidr(&next, buf, sizeof(buf))
					    : ctl_format_addr(next.a, buf, sizeof(buf));
			json_t *e =
			    json_pack("{s:s, s:s, s:I, s:I}", "address", s, "kind",
				      id == SLUICE_M_DENY_PREFIX ? "prefix" : "exact", "expires_ns",
				      (json_int_t)d.expires_ns, "added_ns", (json_int_t)d.added_ns);

			json_object_set_new(
			    e, "left_ns",
			    !d.expires_ns
				? json_null()
				: json_integer(d.expires_ns > now ? (json_int_t)(d.expires_ns - now)
								  : 0));
			json_object_set_new(e, "expired",
					    json_boolean(d.expires_ns && d.expires_ns <= now));
			json_array_append_new(arr, e);
		}
		key = next;
		prev = id == SLUICE_M_DENY_PREFIX ? (void *)&key : (void *)key.a;
	}
}

static int run_deny_list(struct ctl *c, const struct ctl_args *a)
{
	json_t *arr = json_array();
	__u64 now = clock_mono_ns();
	char left[32];
	size_t i;

	deny_entries(c, SLUICE_M_DENY_EXACT, arr, now);
	deny_entries(c, SLUICE_M_DENY_PREFIX, arr, now);
	if (c->json) {
		ctl_json_print(arr);
		return 0;
	}
	printf("%-44s %-7s %s\n", "ADDRESS", "KIND", "TIME LEFT");
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *e = json_array_get(arr, i), *l = json_object_get(e, "left_ns");

		printf("%-44s %-7s %s\n", json_string_value(json_object_get(e, "address")),
		       json_string_value(json_object_get(e, "kind")),
		       json_is_null(l) ? "never expires"
		       : json_is_true(json_object_get(e, "expired"))
			   ? "expired"
			   : ctl_format_duration((__u64)json_integer_value(l), left, sizeof(left)));
	}
	json_decref(arr);
	return 0;
}

static const struct ctl_opt deny_opts[] = {
    {"ttl", "DURATION", 0, "drop for this long (500ms, 30s, 5m); without it, until deny del"},
    {NULL},
};

const struct ctl_cmd ctl_addr_cmds[] = {
    {"source", "add", "NAME ADDR", 2, 2, NULL, "attribute an IPv4/IPv6 address to a tenant",
     run_source_add},
    {"source", "del", "NAME ADDR", 2, 2, NULL, "remove a tenant's source address", run_source_del},
    {"prefix", "add", "NAME CIDR", 2, 2, NULL,
     "attribute a prefix (10.1.0.0/16, 2001:db8::/32) to a tenant; longest match wins",
     run_prefix_add},
    {"prefix", "del", "NAME CIDR", 2, 2, NULL, "remove a tenant's prefix", run_prefix_del},
    {"deny", "add", "ADDR|CIDR", 1, 1, deny_opts, "drop everything from a source or prefix",
     run_deny_add},
    {"deny", "del", "ADDR|CIDR", 1, 1, NULL, "remove a deny entry", run_deny_del},
    {"deny", "list", NULL, 0, 0, NULL, "deny entries with the time left", run_deny_list},
    {NULL},
};
