// SPDX-License-Identifier: MIT
/* cmd_tenant.c -- sluicectl tenant add|set|del|list|show
 *
 * A tenant is a slot in the tenant config array whose name is non-empty; slots 0 and 1
 * are the reserved "(none)" and "(anonymous)" rows (addressable as none and anonymous;
 * their limits can be set, they cannot be added or deleted). add takes the first free
 * slot from SLUICE_SLOT_FIRST, clears its credits and counters before the name makes it
 * visible, and defaults each limit it is not given to unlimited; a rate without a burst
 * banks one second of that rate. set changes only what it is given. Limits are read by
 * the XDP program on every packet, so a change applies to the next one. del also removes
 * the sources and prefixes that point at the slot (and bumps the generation), so a slot
 * reused later never inherits another tenant's addresses. Live credit is computed from
 * the shared GCRA state exactly as the XDP program would (include/sluice/gcra.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "admit/tenants.h"
#include "cli.h"
#include "lib/clock.h"
#include "sluice/gcra.h"

static const char *const kind_names[SLUICE_LIMIT_MAX] = {"syn", "pkt", "req", "crit"};

static void check_name(const char *name)
{
	char why[128];

	if (tenants_name_check(name, why, sizeof(why)))
		ctl_bad_arg("tenant name \"%s\": %s", name, why);
}

/* Apply --KIND-rate/--KIND-burst and --class from a to tc. */
static void apply_limits(const struct ctl_args *a, struct sluice_tenant_cfg *tc)
{
	char opt[32];
	int k;

	for (k = 0; k < SLUICE_LIMIT_MAX; k++) {
		struct sluice_limit *l = &tc->limit[k];
		const char *rate, *burst;

		snprintf(opt, sizeof(opt), "%s-rate", kind_names[k]);
		rate = ctl_opt_get(a, opt);
		snprintf(opt, sizeof(opt), "%s-burst", kind_names[k]);
		burst = ctl_opt_get(a, opt);
		if (rate) {
			snprintf(opt, sizeof(opt), "--%s-rate", kind_names[k]);
			l->interval_ns = ctl_parse_rate(opt, rate);
		}
		if (burst) {
			snprintf(opt, sizeof(opt), "--%s-burst", kind_names[k]);
			l->burst = ctl_parse_uint(opt, burst, 1, 0xffffffffULL);
		} else if (rate && l->interval_ns && !l->burst) {
			/* one second's worth, at least one */
			double per_s = ctl_rate_per_s(l->interval_ns);

			l->burst = per_s < 1 ? 1 : (__u64)ceil(per_s);
		}
	}
	if (ctl_opt_get(a, "class"))
		tc->class = ctl_parse_class("--class", ctl_opt_get(a, "class"));
}

static int write_cfg(struct ctl *c, __u32 slot, const struct sluice_tenant_cfg *tc)
{
	if (bpf_map_update_elem(ctl_map(c, SLUICE_M_TENANT_CFG), &slot, tc, BPF_ANY))
		return -errno;
	return 0;
}

static int run_add(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	struct sluice_tenant_cfg *all, tc = {.class = SLUICE_CLASS_NORMAL};
	struct sluice_tenant_state zero = {};
	int slot, ret;

	check_name(name);
	apply_limits(a, &tc);
	all = ctl_tenants_read(c);
	if (!all)
		return ctl_fail("tenant add %s: read tenants: %s", name, strerror(errno));
	for (slot = 0; slot < SLUICE_MAX_TENANTS; slot++)
		if (!strncmp(all[slot].name, name, SLUICE_NAME_LEN)) {
			free(all);
			return ctl_fail("tenant add %s: exists in slot %d (use tenant set %s)",
					name, slot, name);
		}
	for (slot = SLUICE_SLOT_FIRST; slot < SLUICE_MAX_TENANTS && all[slot].name[0]; slot++)
		;
	free(all);
	if (slot >= SLUICE_MAX_TENANTS)
		return ctl_fail("tenant add %s: all %d tenant slots are in use (tenant del one)",
				name, SLUICE_MAX_TENANTS - SLUICE_SLOT_FIRST);
	memcpy(tc.name, name, strlen(name) + 1);
	/* clean state first: the name is what makes the slot live */
	if (bpf_map_update_elem(ctl_map(c, SLUICE_M_TENANT_STATE), &(__u32){(__u32)slot}, &zero,
				BPF_ANY))
		return ctl_fail("tenant add %s: reset credits: %s", name, strerror(errno));
	ret = ctl_counters_reset(c, slot);
	if (!ret)
		ret = write_cfg(c, slot, &tc);
	if (ret)
		return ctl_fail("tenant add %s: %s", name, strerror(-ret));
	if (c->json)
		ctl_json_print(json_pack("{s:s, s:i}", "added", name, "slot", slot));
	else
		printf("tenant %s added (slot %d)\n", name, slot);
	return 0;
}

static int run_set(struct ctl *c, const struct ctl_args *a)
{
	struct sluice_tenant_cfg tc = {};
	int slot, ret;

	apply_limits(a, &tc); /* bad values fail before any map is touched */
	slot = ctl_tenant_need(c, a->pos[0], &tc);
	apply_limits(a, &tc);
	ret = write_cfg(c, slot, &tc);
	if (ret)
		return ctl_fail("tenant set %s: %s", a->pos[0], strerror(-ret));
	if (c->json)
		ctl_json_print(json_pack("{s:s, s:i}", "updated", tc.name, "slot", slot));
	else
		printf("tenant %s updated (slot %d)\n", tc.name, slot);
	return 0;
}

/* Delete every entry of a source map whose value is slot; returns how many, or -errno.
 * Keys are collected in one walk and deleted afterwards: deleting while walking would
 * restart an LPM trie's walk from the top. */
static int remove_sources_of(struct ctl *c, enum sluice_map_id id, __u32 slot)
{
	struct sluice_lpm_key *keys = NULL, *grown;
	int fd = ctl_map(c, id), n = 0, cap = 0, i, ret = 0;
	__u8 key[32] = {}, next[32] = {};
	void *prev = NULL;
	__u32 val;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (!bpf_map_lookup_elem(fd, next, &val) && val == slot) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				grown = realloc(keys, cap * sizeof(*keys));
				if (!grown) {
					free(keys);
					return -ENOMEM;
				}
				keys = grown;
			}
			memcpy(&keys[n++], next, sizeof(*keys));
		}
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	for (i = 0; i < n && !ret; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT)
			ret = -errno;
	free(keys);
	return ret ? ret : n;
}

static int run_del(struct ctl *c, const struct ctl_args *a)
{
	struct sluice_tenant_cfg tc, empty = {};
	int slot = ctl_tenant_need(c, a->pos[0], &tc), n1, n2, ret;

	if (slot < SLUICE_SLOT_FIRST)
		ctl_bad_arg("tenant del %s: slot %d is reserved and cannot be deleted", a->pos[0],
			    slot);
	n1 = remove_sources_of(c, SLUICE_M_SRC_EXACT, slot);
	n2 = remove_sources_of(c, SLUICE_M_SRC_PREFIX, slot);
	if (n1 < 0 || n2 < 0)
		return ctl_fail("tenant del %s: remove its sources: %s", a->pos[0],
				strerror(-(n1 < 0 ? n1 : n2)));
	ret = write_cfg(c, slot, &empty);
	if (!ret)
		ret = ctl_bump_generation(c);
	if (ret)
		return ctl_fail("tenant del %s: %s", a->pos[0], strerror(-ret));
	if (c->json)
		ctl_json_print(json_pack("{s:s, s:i, s:i, s:i}", "deleted", tc.name, "slot", slot,
					 "sources_removed", n1, "prefixes_removed", n2));
	else
		printf("tenant %s deleted (slot %d, %d sources and %d prefixes removed)\n", tc.name,
		       slot, n1, n2);
	return 0;
}

static json_t *limit_json(const struct sluice_limit *l, const __u64 *tat, __u64 now)
{
	char rate[32];
	json_t *j = json_pack("{s:s, s:f, s:I, s:I}", "rate",
			      ctl_format_rate(l->interval_ns, rate, sizeof(rate)), "rate_per_s",
			      ctl_rate_per_s(l->interval_ns), "interval_ns",
			      (json_int_t)l->interval_ns, "burst", (json_int_t)l->burst);

	if (tat) {
		__u64 cr = gcra_credits(*tat, now, l->interval_ns, l->burst);

		json_object_set_new(j, "credits",
				    l->interval_ns ? json_integer((json_int_t)cr) : json_null());
		json_object_set_new(j, "tat_ns", json_integer((json_int_t)*tat));
	}
	return j;
}

static json_t *counters_json(const struct sluice_counters *ct)
{
	json_t *j = json_object();
	int v;

	for (v = 0; v < SLUICE_V_MAX; v++)
		json_object_set_new(j, ctl_verdict_name(v),
				    json_pack("{s:I, s:I}", "packets", (json_int_t)ct->packets[v],
					      "bytes", (json_int_t)ct->bytes[v]));
	return j;
}

static const char *const share_sources[SLUICE_SHARE_MAX] = {"local", "lease", "fallback"};

/* This node's share of limit k (abi.h sluice_tenant_share): null when the global limit is in
 * force. */
static json_t *share_json(const struct sluice_tenant_share *sh, int k)
{
	char rate[32];

	if (!sh || !(sh->mask & (1u << k)))
		return json_null();
	return json_pack("{s:s, s:f, s:I, s:I}", "rate",
			 ctl_format_rate(sh->limit[k].interval_ns, rate, sizeof(rate)),
			 "rate_per_s", ctl_rate_per_s(sh->limit[k].interval_ns), "interval_ns",
			 (json_int_t)sh->limit[k].interval_ns, "burst",
			 (json_int_t)sh->limit[k].burst);
}

static json_t *tenant_json(__u32 slot, const struct sluice_tenant_cfg *tc,
			   const struct sluice_tenant_state *st, const struct sluice_counters *ct,
			   const struct sluice_tenant_share *sh)
{
	json_t *j = json_pack("{s:i, s:s, s:s}", "slot", (int)slot, "name", tc->name, "class",
			      ctl_class_name(tc->class)),
	       *lim = json_object();
	__u64 now = clock_mono_ns();
	int k;

	for (k = 0; k < SLUICE_LIMIT_MAX; k++) {
		/* credits count against the limit in force: the node's share when it has one */
		json_t *l = limit_json(&tc->limit[k], NULL, now), *in_force;

		if (st) {
			in_force =
			    limit_json(sluice_limit_in_force(tc, sh, (__u32)k), &st->tat[k], now);
			json_object_set(l, "credits", json_object_get(in_force, "credits"));
			json_object_set(l, "tat_ns", json_object_get(in_force, "tat_ns"));
			json_decref(in_force);
		}
		if (sh)
			json_object_set_new(l, "share", share_json(sh, k));
		json_object_set_new(lim, kind_names[k], l);
	}
	json_object_set_new(j, "limits", lim);
	if (sh)
		json_object_set_new(
		    j, "share_source",
		    json_string(sh->source < SLUICE_SHARE_MAX ? share_sources[sh->source] : "?"));
	if (ct)
		json_object_set_new(j, "counters", counters_json(ct));
	return j;
}

static __u64 dropped(const struct sluice_counters *ct)
{
	return ct->packets[SLUICE_V_DENY] + ct->packets[SLUICE_V_SHED] +
	       ct->packets[SLUICE_V_SYN_LIMIT] + ct->packets[SLUICE_V_PKT_LIMIT];
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	struct sluice_tenant_cfg *t = ctl_tenants_read(c);
	struct sluice_counters *ct = t ? ctl_counters_read(c) : NULL;
	json_t *arr = json_array();
	char r[SLUICE_LIMIT_MAX][32];
	int slot, k;

	if (!t || !ct) {
		free(t);
		json_decref(arr);
		return ctl_fail("tenant list: %s", strerror(errno));
	}
	if (!c->json)
		printf("%-5s %-20s %-8s %-14s %-14s %-14s %-14s %12s %12s\n", "SLOT", "NAME",
		       "CLASS", "SYN", "PKT", "REQ", "CRIT", "PASSED", "DROPPED");
	for (slot = 0; slot < SLUICE_MAX_TENANTS; slot++) {
		if (!t[slot].name[0])
			continue;
		if (c->json) {
			json_array_append_new(arr,
					      tenant_json(slot, &t[slot], NULL, &ct[slot], NULL));
			continue;
		}
		for (k = 0; k < SLUICE_LIMIT_MAX; k++) {
			char rate[24];

			ctl_format_rate(t[slot].limit[k].interval_ns, rate, sizeof(rate));
			if (t[slot].limit[k].interval_ns)
				snprintf(r[k], sizeof(r[k]), "%s b%llu", rate,
					 (unsigned long long)t[slot].limit[k].burst);
			else
				snprintf(r[k], sizeof(r[k]), "%s", rate);
		}
		printf("%-5d %-20s %-8s %-14s %-14s %-14s %-14s %12llu %12llu\n", slot,
		       t[slot].name, ctl_class_name(t[slot].class), r[0], r[1], r[2], r[3],
		       (unsigned long long)ct[slot].packets[SLUICE_V_PASS],
		       (unsigned long long)dropped(&ct[slot]));
	}
	if (c->json)
		ctl_json_print(arr);
	else
		json_decref(arr);
	free(t);
	free(ct);
	return 0;
}

/* Addresses (exact) or prefixes pointing at slot, as strings. */
static json_t *sources_json(struct ctl *c, enum sluice_map_id id, __u32 slot)
{
	int fd = ctl_map(c, id);
	__u8 key[32] = {}, next[32] = {};
	void *prev = NULL;
	json_t *arr = json_array();
	char buf[64];
	__u32 val;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (!bpf_map_lookup_elem(fd, next, &val) && val == slot)
			json_array_append_new(
			    arr,
			    json_string(id == SLUICE_M_SRC_EXACT
					    ? ctl_format_addr(next, buf, sizeof(buf))
					    : ctl_format_cidr((void *)next, buf, sizeof(buf))));
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	return arr;
}

/* "label a, b, c" and a newline. */
static void print_list(const char *label, json_t *arr)
{
	size_t i;

	printf("%s", label);
	for (i = 0; i < json_array_size(arr); i++)
		printf("%s%s", i ? ", " : "", json_string_value(json_array_get(arr, i)));
	printf("\n");
}

static void print_show_text(json_t *j)
{
	json_t *lims = json_object_get(j, "limits"), *cnt = json_object_get(j, "counters");
	void *it;

	printf("tenant %s (slot %lld, class %s)\n", json_string_value(json_object_get(j, "name")),
	       json_integer_value(json_object_get(j, "slot")),
	       json_string_value(json_object_get(j, "class")));
	printf("  share source: %s\n", json_string_value(json_object_get(j, "share_source")));
	for (it = json_object_iter(lims); it; it = json_object_iter_next(lims, it)) {
		json_t *v = json_object_iter_value(it), *cr = json_object_get(v, "credits"),
		       *sh = json_object_get(v, "share");

		printf("  %-5s global %-12s burst %-10lld", json_object_iter_key(it),
		       json_string_value(json_object_get(v, "rate")),
		       json_integer_value(json_object_get(v, "burst")));
		if (json_is_object(sh))
			printf(" this node %-12s burst %-8lld",
			       json_string_value(json_object_get(sh, "rate")),
			       json_integer_value(json_object_get(sh, "burst")));
		else
			printf(" this node %-21s", "(global)");
		printf(" credits left %s", json_is_null(cr) ? "-" : "");
		if (!json_is_null(cr))
			printf("%lld", json_integer_value(cr));
		printf("\n");
	}
	for (it = json_object_iter(cnt); it; it = json_object_iter_next(cnt, it)) {
		json_t *v = json_object_iter_value(it);

		printf("  %-10s %12lld packets %14lld bytes\n", json_object_iter_key(it),
		       json_integer_value(json_object_get(v, "packets")),
		       json_integer_value(json_object_get(v, "bytes")));
	}
	print_list("  sources: ", json_object_get(j, "sources"));
	print_list("  prefixes: ", json_object_get(j, "prefixes"));
}

static int run_show(struct ctl *c, const struct ctl_args *a)
{
	struct sluice_tenant_cfg tc;
	struct sluice_tenant_state st;
	struct sluice_tenant_share sh;
	struct sluice_counters *ct;
	int slot = ctl_tenant_need(c, a->pos[0], &tc);
	json_t *j;

	if (bpf_map_lookup_elem(ctl_map(c, SLUICE_M_TENANT_STATE), &slot, &st))
		return ctl_fail("tenant show %s: read credits: %s", a->pos[0], strerror(errno));
	if (bpf_map_lookup_elem(ctl_map(c, SLUICE_M_TENANT_SHARE), &slot, &sh))
		return ctl_fail("tenant show %s: read this node's share: %s", a->pos[0],
				strerror(errno));
	ct = ctl_counters_read(c);
	if (!ct)
		return ctl_fail("tenant show %s: read counters: %s", a->pos[0], strerror(errno));
	j = tenant_json(slot, &tc, &st, &ct[slot], &sh);
	free(ct);
	json_object_set_new(j, "sources", sources_json(c, SLUICE_M_SRC_EXACT, slot));
	json_object_set_new(j, "prefixes", sources_json(c, SLUICE_M_SRC_PREFIX, slot));
	if (c->json) {
		ctl_json_print(j);
	} else {
		print_show_text(j);
		json_decref(j);
	}
	return 0;
}

#define LIMIT_OPTS(kind, what)                                                                     \
	{kind "-rate", "RATE", 0, what ": 1000, 1000/s, 60000/min or unlimited"},                  \
	{                                                                                          \
		kind "-burst", "N", 0, "credits banked when idle (default: 1 s of the rate)"       \
	}

static const struct ctl_opt limit_opts[] = {
    LIMIT_OPTS("syn", "new TCP connections to service ports (XDP)"),
    LIMIT_OPTS("pkt", "packets to service ports (XDP)"),
    LIMIT_OPTS("req", "HTTP requests (sluiced, answers 429)"),
    LIMIT_OPTS("crit", "critical events (sluiced, demotes the rest to normal)"),
    {"class", "CLASS", 0, "critical, normal or low (shedding drops low first)"},
    {NULL},
};

const struct ctl_cmd ctl_tenant_cmds[] = {
    {"tenant", "add", "NAME", 1, 1, limit_opts,
     "create a tenant; limits not given are unlimited, class normal", run_add},
    {"tenant", "set", "NAME", 1, 1, limit_opts,
     "change a tenant's limits or class (applies to the next packet)", run_set},
    {"tenant", "del", "NAME", 1, 1, NULL, "delete a tenant and its sources and prefixes", run_del},
    {"tenant", "list", NULL, 0, 0, NULL, "every tenant with limits and packet totals", run_list},
    {"tenant", "show", "NAME", 1, 1, NULL,
     "limits: global, this node's cluster share and its source, live credits left; counters "
     "per verdict, sources and prefixes",
     run_show},
    {NULL},
};
