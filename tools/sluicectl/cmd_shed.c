// SPDX-License-Identifier: MIT
/* cmd_shed.c -- sluicectl shed set|show and dry-run on|off|show: the global config knobs
 *
 * The shed level has an owner (config.shed_mode): `shed set normal|thin|emergency` makes
 * it manual, so the operator's level and drop shares are in force and sluiced's overload
 * controller follows them; `shed set auto` hands it back (the controller's own level and
 * shares, which it keeps in fields of its own). At EMERGENCY the XDP program drops
 * permille[class]/1000 of each class's SYNs (sampled per packet), and creates no
 * per-source state for unknown sources. Both are read by the program on every packet. Dry
 * run (SLUICE_CFG_DRY_RUN) keeps counting verdicts but passes every packet. Only the
 * operator's fields are stored, each on its own (nic/xdp_config.h): sluiced writes the
 * others at the same time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control/cshed.h"
#include "lib/redis.h"

/* Whose level is in force on this node, in words (`shed show`). */
static const char *source_name(const struct sluice_config *cfg)
{
	if (cfg->shed_mode == SLUICE_SHED_MANUAL)
		return "local pin";
	switch (cfg->auto_source) {
	case SLUICE_SHED_SRC_CLUSTER:
		return "cluster controller";
	case SLUICE_SHED_SRC_CLUSTER_PIN:
		return "cluster pin";
	default:
		return "local controller";
	}
}

static json_t *shed_json(const struct sluice_config *cfg)
{
	json_t *pm = json_object(), *j;
	__u32 k;

	for (k = 0; k < SLUICE_CLASS_MAX; k++)
		json_object_set_new(pm, ctl_class_name(k),
				    json_integer(sluice_config_permille(cfg, k)));
	j = json_pack("{s:s, s:s, s:o, s:s}", "level", ctl_shed_name(sluice_config_level(cfg)),
		      "mode", cfg->shed_mode == SLUICE_SHED_MANUAL ? "manual" : "auto", "permille",
		      pm, "source", source_name(cfg));
	if (cfg->shed_mode != SLUICE_SHED_MANUAL && cfg->auto_source != SLUICE_SHED_SRC_LOCAL) {
		json_object_set_new(j, "cluster_node", json_string(cfg->auto_node));
		json_object_set_new(j, "cluster_seq", json_integer(cfg->auto_seq));
	}
	return j;
}

static void print_shed(const struct sluice_config *cfg)
{
	__u32 k;

	printf("shed level %s (", ctl_shed_name(sluice_config_level(cfg)));
	if (cfg->shed_mode == SLUICE_SHED_MANUAL)
		printf("local pin: set by an operator on this node");
	else if (cfg->auto_source == SLUICE_SHED_SRC_CLUSTER)
		printf("cluster controller %s, decision %u", cfg->auto_node, cfg->auto_seq);
	else if (cfg->auto_source == SLUICE_SHED_SRC_CLUSTER_PIN)
		printf("cluster pin: set by an operator for every node, decision %u",
		       cfg->auto_seq);
	else
		printf("local controller: owned by sluiced's overload controller");
	printf(")\nSYNs dropped at emergency:");
	for (k = 0; k < SLUICE_CLASS_MAX; k++)
		printf(" %s %u.%u%%", ctl_class_name(k), sluice_config_permille(cfg, k) / 10,
		       sluice_config_permille(cfg, k) % 10);
	printf("\n");
}

/* --cluster-redis ADDR: a client for the cluster's Redis (AUTH from
 * $SLUICE_CLUSTER_REDIS_USER and $SLUICE_CLUSTER_REDIS_PASSWORD). */
static struct redis *cluster_client(const char *addr)
{
	const char *user = getenv("SLUICE_CLUSTER_REDIS_USER");
	const char *pw = getenv("SLUICE_CLUSTER_REDIS_PASSWORD");
	struct redis_config rc;
	struct redis *r;
	char err[256];

	redis_config_default(&rc);
	rc.connect_timeout_ms = 1000;
	rc.op_timeout_ms = 1000;
	rc.down_backoff_ms = 0;
	rc.pool_size = 1;
	if (redis_config_set(&rc, "addr", addr, err, sizeof(err)))
		ctl_bad_arg("--cluster-redis %s: %s", addr, err);
	if ((user && *user && redis_config_set(&rc, "user", user, err, sizeof(err))) ||
	    (pw && *pw && redis_config_set(&rc, "password", pw, err, sizeof(err))))
		ctl_bad_arg("--cluster-redis %s: %s", addr, err);
	r = redis_new(&rc);
	if (!r)
		ctl_bad_arg("--cluster-redis %s: %s", addr, strerror(errno));
	return r;
}

/* The cluster's pin and decision, as `shed set/show --cluster-redis` print them. */
static int print_cluster(struct ctl *c, struct redis *r, const char *addr)
{
	struct cshed_decision pin, dec;
	int p = cshed_pin_get(r, &pin), d = p < 0 ? p : cshed_decision_read(r, &dec);

	if (p < 0 || d < 0)
		return ctl_fail("--cluster-redis %s: %s", addr, strerror(-(p < 0 ? p : d)));
	if (c->json) {
		ctl_json_print(json_pack(
		    "{s:o, s:o}", "cluster_pin",
		    p ? json_string(ctl_shed_name(pin.level)) : json_null(), "cluster_decision",
		    d ? json_pack("{s:s, s:I, s:s, s:b, s:[iii]}", "level",
				  ctl_shed_name(dec.level), "seq", (json_int_t)dec.seq, "node",
				  dec.node, "pinned", dec.pinned, "permille", dec.permille[0],
				  dec.permille[1], dec.permille[2])
		      : json_null()));
		return 0;
	}
	if (p)
		printf("cluster pin: %s (every node without a local pin), SYN drop permille "
		       "critical %u normal %u low %u\n",
		       ctl_shed_name(pin.level), pin.permille[0], pin.permille[1], pin.permille[2]);
	else
		printf("cluster pin: none (the cluster controller decides)\n");
	if (d)
		printf("cluster decision: %s, seq %llu, published by %s%s\n",
		       ctl_shed_name(dec.level), (unsigned long long)dec.seq, dec.node,
		       dec.pinned ? " (the pin)" : "");
	else
		printf("cluster decision: none (no controller holds the lease: every node decides "
		       "alone)\n");
	return 0;
}

/* shed set LEVEL --cluster-redis ADDR: the pin every node follows (auto clears it). The
 * shares not given are the defaults of the level (500 for low at EMERGENCY). */
static int cluster_set(struct ctl *c, const char *addr, __u32 level, const int pm[SLUICE_CLASS_MAX])
{
	struct redis *r = cluster_client(addr);
	uint32_t share[SLUICE_CLASS_MAX] = {0, 0, level == SLUICE_SHED_EMERGENCY ? 500 : 0};
	int ret;

	for (int k = 0; k < SLUICE_CLASS_MAX; k++)
		if (pm[k] >= 0)
			share[k] = (uint32_t)pm[k];
	ret = level <= SLUICE_SHED_EMERGENCY ? cshed_pin_set(r, level, share) : cshed_pin_clear(r);
	if (ret)
		ret = ctl_fail("shed set --cluster-redis %s: %s", addr, strerror(-ret));
	else
		ret = print_cluster(c, r, addr);
	redis_free(r);
	return ret;
}

/* --permille CLASS=N (N in 0..1000) into pm[class]; classes not given stay -1. */
static void parse_permille(const struct ctl_args *a, int pm[SLUICE_CLASS_MAX])
{
	int i, n = ctl_opt_count(a, "permille");

	for (i = 0; i < n; i++) {
		const char *s = ctl_opt_nth(a, "permille", i), *eq = strchr(s, '=');
		char cls[16], what[64];
		__u32 k;

		if (!eq || eq == s || (size_t)(eq - s) >= sizeof(cls))
			ctl_bad_arg(
			    "--permille %s: expected CLASS=N, e.g. low=500 (CLASS critical, "
			    "normal or low; N 0-1000)",
			    s);
		memcpy(cls, s, eq - s);
		cls[eq - s] = 0;
		snprintf(what, sizeof(what), "--permille %s: class", s);
		k = ctl_parse_class(what, cls);
		snprintf(what, sizeof(what), "--permille %s: share", s);
		pm[k] = (int)ctl_parse_uint(what, eq + 1, 0, 1000);
	}
}

static int run_shed_set(struct ctl *c, const struct ctl_args *a)
{
	const char *level = a->pos[0];
	int pm[SLUICE_CLASS_MAX] = {-1, -1, -1}, ret;
	struct sluice_config cfg;
	__u32 l, k;

	for (l = 0; l <= SLUICE_SHED_EMERGENCY; l++)
		if (!strcmp(level, ctl_shed_name(l)))
			break;
	if (l > SLUICE_SHED_EMERGENCY && strcmp(level, "auto"))
		ctl_bad_arg("shed set %s: expected normal, thin, emergency or auto", level);
	parse_permille(a, pm);
	if (ctl_opt_get(a, "cluster-redis"))
		return cluster_set(c, ctl_opt_get(a, "cluster-redis"), l, pm);
	/* the shares first, then the level, then the mode: a packet that sees the new mode
	 * sees the level and shares it stands for */
	for (k = 0; k < SLUICE_CLASS_MAX; k++)
		if (pm[k] >= 0)
			xdp_config_set_permille(ctl_config(c), k, (__u32)pm[k]);
	if (l <= SLUICE_SHED_EMERGENCY)
		xdp_config_set_manual(ctl_config(c), l);
	else
		xdp_config_set_auto(ctl_config(c));
	ret = ctl_config_read(c, &cfg);
	if (ret)
		return ctl_fail("shed set: read config: %s", strerror(-ret));
	if (c->json)
		ctl_json_print(shed_json(&cfg));
	else
		print_shed(&cfg);
	return 0;
}

static int run_shed_show(struct ctl *c, const struct ctl_args *a)
{
	struct sluice_config cfg;
	int ret;

	if (ctl_opt_get(a, "cluster-redis")) {
		struct redis *r = cluster_client(ctl_opt_get(a, "cluster-redis"));

		ret = print_cluster(c, r, ctl_opt_get(a, "cluster-redis"));
		redis_free(r);
		return ret;
	}
	ret = ctl_config_read(c, &cfg);

	if (ret)
		return ctl_fail("shed show: read config: %s", strerror(-ret));
	if (c->json)
		ctl_json_print(shed_json(&cfg));
	else
		print_shed(&cfg);
	return 0;
}

/* dry-run on|off|show; verb NULL means show. */
/* A config flag on (1), off (0) or shown (-1); what it means in words for each state. */
static int config_flag(struct ctl *c, int on, __u32 flag, const char *name, const char *on_text,
		       const char *off_text)
{
	struct sluice_config cfg;
	int ret = ctl_config_read(c, &cfg);

	if (ret)
		return ctl_fail("%s: read config: %s", name, strerror(-ret));
	if (on >= 0) {
		xdp_config_set_flag(ctl_config(c), flag, on);
		ctl_config_read(c, &cfg);
	}
	on = (cfg.flags & flag) != 0;
	if (c->json)
		ctl_json_print(json_pack("{s:b}", name, on));
	else
		printf("%s %s\n", name, on ? on_text : off_text);
	return 0;
}

static int dry_run(struct ctl *c, int on)
{
	return config_flag(c, on, SLUICE_CFG_DRY_RUN, "dry_run",
			   "on: verdicts are counted, nothing is dropped",
			   "off: drop verdicts drop");
}

static int exact_clock(struct ctl *c, int on)
{
	return config_flag(c, on, SLUICE_CFG_EXACT_CLOCK, "exact_clock",
			   "on: the XDP program reads the clock on every packet (bursts exact)",
			   "off: the clock is read once per tick, refusals re-checked exactly");
}

static int run_clock_exact(struct ctl *c, const struct ctl_args *a)
{
	return exact_clock(c, 1);
}

static int run_clock_tick(struct ctl *c, const struct ctl_args *a)
{
	return exact_clock(c, 0);
}

static int run_clock_show(struct ctl *c, const struct ctl_args *a)
{
	return exact_clock(c, -1);
}

static int run_dry_on(struct ctl *c, const struct ctl_args *a)
{
	return dry_run(c, 1);
}

static int run_dry_off(struct ctl *c, const struct ctl_args *a)
{
	return dry_run(c, 0);
}

static int run_dry_show(struct ctl *c, const struct ctl_args *a)
{
	return dry_run(c, -1);
}

static const struct ctl_opt shed_opts[] = {
    {"permille", "CLASS=N", CTL_OPT_REPEAT,
     "share of CLASS's SYNs dropped at an emergency set by hand, 0-1000 (e.g. low=500 "
     "critical=0)"},
    {"cluster-redis", "HOST:PORT", CTL_OPT_VALUE,
     "pin the level for every node of the cluster (auto: unpin; AUTH from "
     "$SLUICE_CLUSTER_REDIS_USER/$SLUICE_CLUSTER_REDIS_PASSWORD); a node's local pin still wins"},
    {NULL},
};

static const struct ctl_opt show_opts[] = {
    {"cluster-redis", "HOST:PORT", CTL_OPT_VALUE, "show the cluster's pin and decision instead"},
    {NULL},
};

const struct ctl_cmd ctl_shed_cmds[] = {
    {"shed", "set", "normal|thin|emergency|auto", 1, 1, shed_opts,
     "set the shed level by hand, or give it back to sluiced (auto)", run_shed_set},
    {"shed", "show", NULL, 0, 0, show_opts,
     "shed level, whose it is (local pin, cluster pin, cluster controller, local controller), "
     "per-class drop shares",
     run_shed_show},
    {"dry-run", "on", NULL, 0, 0, NULL, "count verdicts but drop nothing", run_dry_on},
    {"dry-run", "off", NULL, 0, 0, NULL, "drop again", run_dry_off},
    {"dry-run", "show", NULL, 0, 0, NULL, "whether dry run is on", run_dry_show},
    {"clock", "exact", NULL, 0, 0, NULL,
     "XDP reads the clock on every packet: bursts exact, ~30 ns more per packet", run_clock_exact},
    {"clock", "tick", NULL, 0, 0, NULL,
     "XDP reads the clock once per tick (default): a fast idle limit may pass one tick's "
     "worth beyond its burst",
     run_clock_tick},
    {"clock", "show", NULL, 0, 0, NULL, "which clock the XDP program uses", run_clock_show},
    {NULL},
};
