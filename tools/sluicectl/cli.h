/* SPDX-License-Identifier: MIT */
/* cli.h -- sluicectl internals: command tables, argument parsing, pinned-map access
 *
 * Every command is one row of a `struct ctl_cmd` table (object, verb, positional
 * arguments, option table, help, handler); main.c parses argv against those rows and
 * generates `sluicectl help` and `sluicectl OBJECT help` from them, so the help can
 * never disagree with what is accepted. Handlers get the parsed strings and convert
 * them with the ctl_parse_* helpers.
 *
 * sluicectl is a short-lived process, so two kinds of error end it on the spot instead
 * of being passed up: a bad argument (ctl_bad_arg: one line naming the argument and what
 * is valid, exit 2) and missing pins (ctl_map: "not attached (no pins under DIR)", exit 1).
 * Everything else returns 0 or -errno and the handler prints what went wrong.
 */
#ifndef SLUICECTL_CLI_H
#define SLUICECTL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <jansson.h>

#include "sluice/abi.h"
#include "nic/bpf_loader.h"
#include "nic/xdp_config.h"

#define CTL_EXIT_USAGE 2
#define CTL_MAX_OPTS   16 /* options per command */
#define CTL_MAX_REPEAT 8  /* values of one repeatable option */
#define CTL_MAX_POS    4  /* positional arguments */

enum {
	CTL_OPT_VALUE = 0,  /* --name VALUE */
	CTL_OPT_FLAG = 1,   /* --name, no value */
	CTL_OPT_REPEAT = 2, /* may be given several times */
	CTL_OPT_REQUIRED = 4,
};

struct ctl_opt {
	const char *name;    /* without the leading "--" */
	const char *metavar; /* NULL for flags */
	unsigned flags;
	const char *help;
};

struct ctl_args {
	int npos;
	const char *pos[CTL_MAX_POS];
	int nval[CTL_MAX_OPTS];
	const char *val[CTL_MAX_OPTS][CTL_MAX_REPEAT];
	const struct ctl_opt *opts;
	const struct ctl_cmd *cmd; /* whose option table opts is (names it in an abort) */
};

struct ctl;
typedef int ctl_run_fn(struct ctl *c, const struct ctl_args *a);

struct ctl_cmd {
	const char *object; /* "tenant", or "attach" for a top-level command */
	const char *verb;   /* "add", or NULL for a top-level command */
	const char *args;   /* positional usage, e.g. "NAME ADDR" */
	int min_pos, max_pos;
	const struct ctl_opt *opts; /* { NULL } terminated, may be NULL */
	const char *help;
	ctl_run_fn *run;
};

/* Per-file command tables, each ending with a row whose object is NULL. */
extern const struct ctl_cmd ctl_attach_cmds[];
extern const struct ctl_cmd ctl_tenant_cmds[];
extern const struct ctl_cmd ctl_addr_cmds[];
extern const struct ctl_cmd ctl_shed_cmds[];
extern const struct ctl_cmd ctl_stats_cmds[];
extern const struct ctl_cmd ctl_dlq_cmds[];

/* One invocation: global options and the pinned maps opened so far (-1: not yet). */
struct ctl {
	const char *pin_dir;
	bool json;
	int fd[SLUICE_M_COUNT];
	struct sluice_config *cfg; /* the config entry, mmapped on first use */
};

/* ---- arguments (args.c) ---------------------------------------------------------------- */

/* Print "sluicectl: " and the message on one line to stderr and exit 2. */
void ctl_bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A failure that ends the process with exit 1; code names it in --json mode
 * ("not_attached", "failed"). */
void ctl_die(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* With --json, errors are {"error":"usage"|"failed"|...,"detail":"..."} on stdout. */
void ctl_json_errors(bool on);

/* The last value given for option `name`, or NULL; ctl_opt_count() how many were given.
 * `name` must be in the command's option table: a name that is not (a typo in a command's
 * code, which would otherwise read as "not given" forever) aborts with a message naming the
 * command and the name, so the first test that runs the command finds it. */
const char *ctl_opt_get(const struct ctl_args *a, const char *name);
int ctl_opt_count(const struct ctl_args *a, const char *name);
const char *ctl_opt_nth(const struct ctl_args *a, const char *name, int i);

/* "1000", "1000/s", "60000/min", "3600/h", "unlimited" or "0" (no limit) -> interval ns.
 * `what` names the argument in the error. */
__u64 ctl_parse_rate(const char *what, const char *s);
/* "500ms", "30s", "5m", "1h", "250us"; a bare number is seconds. -> ns, at least 1 ns. */
__u64 ctl_parse_duration(const char *what, const char *s);
/* Decimal integer in [min, max]. */
__u64 ctl_parse_uint(const char *what, const char *s, __u64 min, __u64 max);
/* enum sluice_class from "critical", "normal", "low". */
__u32 ctl_parse_class(const char *what, const char *s);
/* An IPv4 or IPv6 address, stored IPv4-mapped. */
void ctl_parse_addr(const char *what, const char *s, struct sluice_addr *out);
/* ADDR/LEN (IPv4 or IPv6; a bare address is a host prefix) -> LPM key, host bits cleared. */
void ctl_parse_cidr(const char *what, const char *s, struct sluice_lpm_key *out);

const char *ctl_class_name(__u32 class);
const char *ctl_verdict_name(int verdict);
const char *ctl_shed_name(__u32 level);
/* Address (IPv4-mapped shown as IPv4) into buf (>= 48 bytes). */
const char *ctl_format_addr(const __u8 a[16], char *buf, size_t len);
/* Prefix "a.b.c.d/n" or "x::/n" into buf (>= 52 bytes). */
const char *ctl_format_cidr(const struct sluice_lpm_key *k, char *buf, size_t len);
/* "1000/s", "0.5/s" or "unlimited" for an interval. */
const char *ctl_format_rate(__u64 interval_ns, char *buf, size_t len);
/* Requests per second of an interval (0 = unlimited). */
double ctl_rate_per_s(__u64 interval_ns);
/* "1.5s", "250ms", "2m30s" for a duration in ns. */
const char *ctl_format_duration(__u64 ns, char *buf, size_t len);

/* ---- pinned maps (maps.c) ------------------------------------------------------------ */

/* fd of pinned map id under c->pin_dir, opened on first use; exits 1 with "not attached
 * (no pins under DIR)" and how to attach when the pins are missing. */
int ctl_map(struct ctl *c, enum sluice_map_id id);
/* Whether the pins exist at all (no exit). */
bool ctl_attached(struct ctl *c);
void ctl_close(struct ctl *c);

/* The config entry, mmapped on first use (exits 1 like ctl_map when it cannot be). Writers
 * change their own fields in place with the nic/xdp_config.h helpers, never the whole entry:
 * sluiced changes other fields of it at the same time. */
struct sluice_config *ctl_config(struct ctl *c);
/* A copy of the config entry. 0 (kept for the callers' error paths). */
int ctl_config_read(struct ctl *c, struct sluice_config *cfg);
/* Bump config.generation (atomic add) so cached source resolutions are redone on the next
 * packet. 0. */
int ctl_bump_generation(struct ctl *c);

/* The whole tenant config array (SLUICE_MAX_TENANTS entries, caller frees), NULL + errno. */
struct sluice_tenant_cfg *ctl_tenants_read(struct ctl *c);
/* Slot of the tenant called name (reserved slots answer to "none"/"anonymous" too), or
 * -ENOENT. Fills *cfg when non-NULL. */
int ctl_tenant_find(struct ctl *c, const char *name, struct sluice_tenant_cfg *cfg);
/* The slot of name, or exit 2 naming the tenant and pointing to `tenant list`. */
int ctl_tenant_need(struct ctl *c, const char *name, struct sluice_tenant_cfg *cfg);

/* Per-CPU counters summed over CPUs for every slot (SLUICE_MAX_TENANTS entries, caller
 * frees), NULL + errno. */
struct sluice_counters *ctl_counters_read(struct ctl *c);
/* Zero the counters of one slot on every CPU. */
int ctl_counters_reset(struct ctl *c, __u32 slot);

/* Number of entries of a hash/LPM/LRU map (walks the keys). */
long ctl_map_count(struct ctl *c, enum sluice_map_id id);

/* ---- output ------------------------------------------------------------------------------ */

/* Print j as indented JSON plus a newline to stdout and release it. */
void ctl_json_print(json_t *j);
/* Print "sluicectl: " + message to stderr; returns 1 (the exit code of a failed command). */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* SLUICECTL_CLI_H */
