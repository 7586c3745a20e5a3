// SPDX-License-Identifier: MIT
/* cmd_stats.c -- sluicectl stats [--watch INTERVAL]: packets and bytes per tenant x verdict
 *
 * One snapshot sums the per-CPU counters of every slot. Rows: every named tenant (also at
 * zero, so scripts find them) and any unnamed slot that still has counts (a deleted
 * tenant's leftovers). With --watch the command prints a snapshot every INTERVAL with
 * rates computed from the previous one over the measured (not the requested) time; with
 * --json each snapshot is one line of JSON. --count bounds the number of snapshots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/clock.h"

struct snap {
	struct sluice_tenant_cfg *t;
	struct sluice_counters *ct;
	__u64 at_ns;
};

static int snap_take(struct ctl *c, struct snap *s)
{
	s->t = ctl_tenants_read(c);
	s->ct = s->t ? ctl_counters_read(c) : NULL;
	s->at_ns = clock_mono_ns();
	if (!s->ct) {
		free(s->t);
		s->t = NULL;
		return -errno;
	}
	return 0;
}

static void snap_fini(struct snap *s)
{
	free(s->t);
	free(s->ct);
	s->t = NULL;
	s->ct = NULL;
}

static bool slot_shown(const struct snap *s, int slot)
{
	int v;

	if (s->t[slot].name[0])
		return true;
	for (v = 0; v < SLUICE_V_MAX; v++)
		if (s->ct[slot].packets[v])
			return true;
	return false;
}

/* The JSON of one snapshot; rates against prev when non-NULL. */
static json_t *snap_json(const struct snap *s, const struct snap *prev)
{
	double dt = prev ? (double)(s->at_ns - prev->at_ns) / 1e9 : 0;
	struct sluice_counters total = {};
	json_t *rows = json_array(), *tot = json_object();
	int slot, v;

	for (slot = 0; slot < SLUICE_MAX_TENANTS; slot++) {
		json_t *verdicts;

		if (!slot_shown(s, slot))
			continue;
		verdicts = json_object();
		for (v = 0; v < SLUICE_V_MAX; v++) {
			const struct sluice_counters *c = &s->ct[slot];
			json_t *e = json_pack("{s:I, s:I}", "packets", (json_int_t)c->packets[v],
					      "bytes", (json_int_t)c->bytes[v]);

			if (prev && dt > 0) {
				const struct sluice_counters *p = &prev->ct[slot];

				json_object_set_new(
				    e, "pps", json_real((c->packets[v] - p->packets[v]) / dt));
				json_object_set_new(
				    e, "bps", json_real((c->bytes[v] - p->bytes[v]) * 8 / dt));
			}
			json_object_set_new(verdicts, ctl_verdict_name(v), e);
			total.packets[v] += c->packets[v];
			total.bytes[v] += c->bytes[v];
		}
		json_array_append_new(rows, json_pack("{s:i, s:s, s:o}", "slot", slot, "name",
						      s->t[slot].name[0] ? s->t[slot].name : "",
						      "verdicts", verdicts));
	}
	for (v = 0; v < SLUICE_V_MAX; v++)
		json_object_set_new(tot, ctl_verdict_name(v),
				    json_pack("{s:I, s:I}", "packets", (json_int_t)total.packets[v],
					      "bytes", (json_int_t)total.bytes[v]));
	return json_pack("{s:I, s:f, s:o, s:o}", "time_ns", (json_int_t)s->at_ns, "interval_s", dt,
			 "tenants", rows, "total", tot);
}

static void print_text(json_t *j, bool rates)
{
	json_t *rows = json_object_get(j, "tenants");
	void *it;
	size_t i;

	if (rates)
		printf("%-20s %-10s %14s %16s %12s %14s\n", "TENANT", "VERDICT", "PACKETS", "BYTES",
		       "PKT/S", "BIT/S");
	else
		printf("%-20s %-10s %14s %16s\n", "TENANT", "VERDICT", "PACKETS", "BYTES");
	for (i = 0; i < json_array_size(rows); i++) {
		json_t *row = json_array_get(rows, i), *verdicts = json_object_get(row, "verdicts");
		const char *name = json_string_value(json_object_get(row, "name"));
		char slotname[32];

		if (!*name) {
			snprintf(slotname, sizeof(slotname), "slot %lld",
				 json_integer_value(json_object_get(row, "slot")));
			name = slotname;
		}
		for (it = json_object_iter(verdicts); it;
		     it = json_object_iter_next(verdicts, it)) {
			json_t *e = json_object_iter_value(it);
			const char *verdict = json_object_iter_key(it);
			json_int_t pk = json_integer_value(json_object_get(e, "packets"));

			if (!pk)
				continue;
			printf("%-20s %-10s %14lld %16lld", name, verdict, (long long)pk,
			       (long long)json_integer_value(json_object_get(e, "bytes")));
			if (rates)
				printf(" %12.0f %14.0f", json_real_value(json_object_get(e, "pps")),
				       json_real_value(json_object_get(e, "bps")));
			printf("\n");
		}
	}
	fflush(stdout);
}

static void sleep_ns(__u64 ns)
{
	struct timespec ts = clock_ts(ns);

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int run_stats(struct ctl *c, const struct ctl_args *a)
{
	const char *watch = ctl_opt_get(a, "watch"), *count_s = ctl_opt_get(a, "count");
	__u64 interval = watch ? ctl_parse_duration("--watch", watch) : 0;
	__u64 count = count_s ? ctl_parse_uint("--count", count_s, 1, 1000000000ULL) : 0, n;
	struct snap prev = {}, cur = {};
	int ret;

	if (count_s && !watch)
		ctl_bad_arg("--count %s: only with --watch INTERVAL", count_s);
	ret = snap_take(c, &cur);
	if (ret)
		return ctl_fail("stats: read counters: %s", strerror(-ret));
	if (!watch) {
		json_t *j = snap_json(&cur, NULL);

		if (c->json)
			ctl_json_print(j);
		else
			print_text(j, false), json_decref(j);
		snap_fini(&cur);
		return 0;
	}
	for (n = 0; !count || n < count; n++) {
		json_t *j;

		prev = cur;
		sleep_ns(interval);
		ret = snap_take(c, &cur);
		if (ret) {
			snap_fini(&prev);
			return ctl_fail("stats: read counters: %s", strerror(-ret));
		}
		j = snap_json(&cur, &prev);
		if (c->json) {
			json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			printf("\n");
			fflush(stdout);
		} else {
			printf("\n");
			print_text(j, true);
		}
		json_decref(j);
		snap_fini(&prev);
	}
	snap_fini(&cur);
	return 0;
}

static const struct ctl_opt stats_opts[] = {
    {"watch", "INTERVAL", 0, "print every INTERVAL (1s, 500ms) with rates"},
    {"count", "N", 0, "stop after N snapshots (with --watch)"},
    {NULL},
};

const struct ctl_cmd ctl_stats_cmds[] = {
    {"stats", NULL, NULL, 0, 0, stats_opts,
     "packets and bytes per tenant and verdict; rates in watch mode", run_stats},
    {NULL},
};
