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

static json_t *shed_json(const struct sluice_config *cfg)
{
	json_t *pm = json_object();
	__u32 k;

	for (k = 0; k < SLUICE_CLASS_MAX; k++)
		json_object_set_new(pm, ctl_class_name(k),
				    json_integer(sluice_config_permille(cfg, k)));
	return json_pack("{s:s, s:s, s:o}", "level", ctl_shed_name(sluice_config_level(cfg)),
			 "mode", cfg->shed_mode == SLUICE_SHED_MANUAL ? "manual" : "auto",
			 "permille", pm);
}

static void print_shed(const struct sluice_config *cfg)
{
	__u32 k;

	printf("shed level %s (%s)\nSYNs dropped at emergency:",
	       ctl_shed_name(sluice_config_level(cfg)),
	       cfg->shed_mode == SLUICE_SHED_MANUAL ? "set by an operator"
						    : "owned by sluiced's overload controller");
	for (k = 0; k < SLUICE_CLASS_MAX; k++)
		printf(" %s %u.%u%%", ctl_class_name(k), sluice_config_permille(cfg, k) / 10,
		       sluice_config_permille(cfg, k) % 10);
	printf("\n");
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
	int ret = ctl_config_read(c, &cfg);

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
    {NULL},
};

const struct ctl_cmd ctl_shed_cmds[] = {
    {"shed", "set", "normal|thin|emergency|auto", 1, 1, shed_opts,
     "set the shed level by hand, or give it back to sluiced (auto)", run_shed_set},
    {"shed", "show", NULL, 0, 0, NULL, "shed level, who owns it, per-class drop shares",
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
