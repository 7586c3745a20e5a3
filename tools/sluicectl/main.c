// SPDX-License-Identifier: MIT
/* main.c -- sluicectl: argv against the command tables, and the generated help
 *
 *	sluicectl [--pin-dir DIR] [--json] OBJECT COMMAND [ARGS] [OPTIONS]
 *
 * The global options may stand anywhere on the line. OBJECT picks the rows of the command
 * tables whose object matches; a top-level command (attach, detach, status, stats) is a
 * row without a verb. Options are matched exactly against the row's option table (each
 * takes one value, except flags); anything else is a bad argument (exit 2) naming the
 * option and listing the valid ones. `sluicectl help` and `sluicectl OBJECT help` are
 * printed from the same tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lib/array_size.h"
#include "lib/log.h"

static const struct {
	const char *name;
	const char *help;
	const struct ctl_cmd *cmds;
} objects[] = {
    {"attach", "load the XDP program, pin its maps and attach it", ctl_attach_cmds},
    {"detach", "take the XDP program off an interface", ctl_attach_cmds},
    {"status", "where it is attached, ABI version, map fill levels, shed level", ctl_attach_cmds},
    {"tenant", "tenants: limits, class, live credits, counters", ctl_tenant_cmds},
    {"source", "exact source addresses of a tenant", ctl_addr_cmds},
    {"prefix", "source prefixes of a tenant", ctl_addr_cmds},
    {"deny", "the deny list, with expiry", ctl_addr_cmds},
    {"shed", "emergency shedding level and per-class drop shares", ctl_shed_cmds},
    {"dry-run", "count verdicts without dropping anything", ctl_shed_cmds},
    {"stats", "packets and bytes per tenant and verdict", ctl_stats_cmds},
    {"clock", "how the XDP program reads the clock for credits", ctl_shed_cmds},
    {"dlq", "dead letters in PostgreSQL: list, show, replay, purge", ctl_dlq_cmds},
    {"key", "API keys: the digest the tenants file stores", ctl_dlq_cmds},
};
#define NOBJECTS (ARRAY_SIZE(objects))

static void print_cmd_usage(FILE *f, const struct ctl_cmd *cmd)
{
	const struct ctl_opt *o;
	char line[256];
	int n;

	n = snprintf(line, sizeof(line), "sluicectl %s%s%s%s%s", cmd->object, cmd->verb ? " " : "",
		     cmd->verb ? cmd->verb : "", cmd->args ? " " : "", cmd->args ? cmd->args : "");
	for (o = cmd->opts; o && o->name && n < (int)sizeof(line); o++) {
		bool req = o->flags & CTL_OPT_REQUIRED;

		n += snprintf(line + n, sizeof(line) - n, " %s--%s%s%s%s%s", req ? "" : "[",
			      o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "",
			      o->flags & CTL_OPT_REPEAT ? " ..." : "", req ? "" : "]");
	}
	fprintf(f, "  %s\n      %s\n", line, cmd->help);
	for (o = cmd->opts; o && o->name; o++)
		fprintf(f, "        --%-12s %s\n", o->name, o->help);
}

static void print_object_help(FILE *f, const char *object)
{
	size_t i;
	const struct ctl_cmd *cmd;

	for (i = 0; i < NOBJECTS; i++) {
		if (strcmp(objects[i].name, object))
			continue;
		for (cmd = objects[i].cmds; cmd->object; cmd++)
			if (!strcmp(cmd->object, object))
				print_cmd_usage(f, cmd);
	}
}

static void print_help(FILE *f)
{
	size_t i;

	fprintf(f,
		"Usage: sluicectl [--pin-dir DIR] [--json] OBJECT [COMMAND] [ARGS] [OPTIONS]\n"
		"Tune a running Sluice through its pinned BPF maps (default pin dir %s).\n"
		"Rates: 1000, 1000/s, 60000/min, unlimited. Durations: 500ms, 30s, 5m.\n\n"
		"Objects:\n",
		SLUICE_PIN_DIR_DEFAULT);
	for (i = 0; i < NOBJECTS; i++)
		fprintf(f, "  %-8s %s\n", objects[i].name, objects[i].help);
	fprintf(f, "\nCommands:\n");
	for (i = 0; i < NOBJECTS; i++)
		print_object_help(f, objects[i].name);
	fprintf(f,
		"\n`sluicectl OBJECT help` shows one object. --json prints JSON on every command.\n"
		"Exit status: 0 ok, 1 failed, 2 bad argument.\n");
}

/* List the valid verbs of an object for an error line. */
static void verbs_of(const char *object, char *buf, size_t len)
{
	const struct ctl_cmd *cmd;
	size_t i, n = 0;

	buf[0] = 0;
	for (i = 0; i < NOBJECTS; i++)
		if (!strcmp(objects[i].name, object))
			for (cmd = objects[i].cmds; cmd->object; cmd++)
				if (!strcmp(cmd->object, object) && cmd->verb && n < len)
					n += snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
						      cmd->verb);
}

static const struct ctl_cmd *find_cmd(const char *object, const char *verb, bool *is_object)
{
	const struct ctl_cmd *cmd;
	size_t i;

	*is_object = false;
	for (i = 0; i < NOBJECTS; i++) {
		if (strcmp(objects[i].name, object))
			continue;
		*is_object = true;
		for (cmd = objects[i].cmds; cmd->object; cmd++) {
			if (strcmp(cmd->object, object))
				continue;
			if (!cmd->verb || (verb && !strcmp(cmd->verb, verb)))
				return cmd;
		}
	}
	return NULL;
}

static void options_of(const struct ctl_cmd *cmd, char *buf, size_t len)
{
	const struct ctl_opt *o;
	size_t n = 0;

	n += snprintf(buf, len, "--json, --pin-dir");
	for (o = cmd->opts; o && o->name && n < len; o++)
		n += snprintf(buf + n, len - n, ", --%s", o->name);
}

static const char *cmd_name(const struct ctl_cmd *cmd, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", cmd->object, cmd->verb ? " " : "", cmd->verb ? cmd->verb : "");
	return buf;
}

/* Match argv (after OBJECT [VERB]) against the command's options and positionals. */
static void parse_cmd_args(const struct ctl_cmd *cmd, int argc, char **argv, struct ctl_args *a)
{
	char valid[512], name[64];
	int i, j;

	memset(a, 0, sizeof(*a));
	a->opts = cmd->opts;
	a->cmd = cmd;
	cmd_name(cmd, name, sizeof(name));
	for (i = 0; i < argc; i++) {
		const struct ctl_opt *o = NULL;

		if (strncmp(argv[i], "--", 2) || !argv[i][2]) {
			if (a->npos >= cmd->max_pos || a->npos >= CTL_MAX_POS)
				ctl_bad_arg("%s: unexpected argument %s (usage: sluicectl %s%s%s)",
					    name, argv[i], name, cmd->args ? " " : "",
					    cmd->args ? cmd->args : "");
			a->pos[a->npos++] = argv[i];
			continue;
		}
		for (j = 0; cmd->opts && cmd->opts[j].name; j++)
			if (!strcmp(cmd->opts[j].name, argv[i] + 2))
				o = &cmd->opts[j];
		if (!o) {
			options_of(cmd, valid, sizeof(valid));
			ctl_bad_arg("%s: unknown option %s (valid: %s)", name, argv[i], valid);
		}
		j = (int)(o - cmd->opts);
		if (a->nval[j] && !(o->flags & CTL_OPT_REPEAT))
			ctl_bad_arg("%s: --%s given twice", name, o->name);
		if (a->nval[j] >= CTL_MAX_REPEAT)
			ctl_bad_arg("%s: --%s given more than %d times", name, o->name,
				    CTL_MAX_REPEAT);
		if (o->flags & CTL_OPT_FLAG) {
			a->val[j][a->nval[j]++] = "";
			continue;
		}
		if (i + 1 >= argc)
			ctl_bad_arg("%s: --%s needs a value (%s)", name, o->name, o->metavar);
		a->val[j][a->nval[j]++] = argv[++i];
	}
	if (a->npos < cmd->min_pos)
		ctl_bad_arg("%s: missing %s (usage: sluicectl %s %s)", name, cmd->args, name,
			    cmd->args);
	for (j = 0; cmd->opts && cmd->opts[j].name; j++)
		if ((cmd->opts[j].flags & CTL_OPT_REQUIRED) && !a->nval[j])
			ctl_bad_arg("%s: --%s %s is required", name, cmd->opts[j].name,
				    cmd->opts[j].metavar);
}

/* Take --pin-dir and --json out of argv wherever they are; returns the new argc. */
static int take_globals(int argc, char **argv, struct ctl *c)
{
	int i, n = 0;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			c->json = true;
		} else if (!strcmp(argv[i], "--pin-dir")) {
			if (i + 1 >= argc || !argv[i + 1][0])
				ctl_bad_arg("--pin-dir needs a directory (default %s)",
					    SLUICE_PIN_DIR_DEFAULT);
			c->pin_dir = argv[++i];
		} else if (!strncmp(argv[i], "--pin-dir=", 10)) {
			c->pin_dir = argv[i] + 10;
		} else {
			argv[n++] = argv[i];
		}
	}
	return n;
}

/* "attach, detach, ..., key" from the object table, so the list can never miss one. */
static void object_names(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NOBJECTS && n < len; i++)
		n += snprintf(buf + n, len - n, "%s%s", i ? ", " : "", objects[i].name);
}

static bool is_help(const char *s)
{
	return !strcmp(s, "help") || !strcmp(s, "--help") || !strcmp(s, "-h");
}

int main(int argc, char **argv)
{
	struct ctl c = {.pin_dir = SLUICE_PIN_DIR_DEFAULT};
	const struct ctl_cmd *cmd;
	struct ctl_args a;
	char verbs[256], names[256];
	bool known;
	int i, ret, skip;

	for (i = 0; i < SLUICE_M_COUNT; i++)
		c.fd[i] = -1;
	/* the loader's info lines repeat what each command prints; warnings still show */
	log_set_level(LOG_WARN);
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			ctl_json_errors(true); /* before anything can fail */
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--version")) {
			printf("sluicectl %s (BPF ABI v%u)\n", SLUICE_VERSION, SLUICE_ABI_VERSION);
			return 0;
		}
	argv++;
	argc = take_globals(argc - 1, argv, &c);
	if (!argc || is_help(argv[0])) {
		print_help(argc ? stdout : stderr);
		return argc ? 0 : CTL_EXIT_USAGE;
	}
	if (argc > 1 && is_help(argv[1])) {
		find_cmd(argv[0], NULL, &known);
		if (!known)
			ctl_bad_arg("%s: unknown object (sluicectl help lists them)", argv[0]);
		print_object_help(stdout, argv[0]);
		return 0;
	}
	cmd = find_cmd(argv[0], argc > 1 ? argv[1] : NULL, &known);
	object_names(names, sizeof(names));
	if (!known)
		ctl_bad_arg("%s: unknown object (valid: %s, help)", argv[0], names);
	if (!cmd) {
		verbs_of(argv[0], verbs, sizeof(verbs));
		if (argc < 2)
			ctl_bad_arg("%s: missing command (valid: %s, help)", argv[0], verbs);
		ctl_bad_arg("%s %s: unknown command (valid: %s, help)", argv[0], argv[1], verbs);
	}
	skip = cmd->verb ? 2 : 1;
	parse_cmd_args(cmd, argc - skip, argv + skip, &a);
	ret = cmd->run(&c, &a);
	ctl_close(&c);
	return ret;
}
