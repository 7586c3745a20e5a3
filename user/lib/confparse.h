/* SPDX-License-Identifier: MIT */
/* confparse.h -- settings declared once, as a table: name, help, type, range, default, field
 *
 * Every `key = value` setting and every command-line flag of Sluice is one row of a
 * struct confparse_opt table that binds the name to a field of a settings struct by offset
 * and size, with its type, accepted range or words, default and help text. Parsing (of a
 * config-file key or of argv), the defaults and the --help text all come from the row, so
 * they cannot disagree. Types that need more than a range (an address, a list entry that
 * appends) are a row too, with a setter function.
 *
 * Messages: a failing value gets "what is wrong (the fix)" (the "why"); confparse_set frames
 * it as "KEY = VALUE: why" for config files, confparse_argv as "PROG: --KEY VALUE: why" for
 * flags. A row of type CONFPARSE_TABLE carries a whole sub-table under a prefix ("breaker."
 * in an upstream section holds the breaker's own table), so a key is found as written.
 */
#ifndef SLUICE_CONFPARSE_H
#define SLUICE_CONFPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/array_size.h"

enum confparse_type {
	CONFPARSE_STR,	  /* char[size]: shorter than size; min 1: not empty; choices: one of */
	CONFPARSE_INT,	  /* whole number in [min, max], times scale, into a 1/2/4/8-byte field */
	CONFPARSE_BOOL,	  /* bool: on/off, true/false, yes/no, 1/0; a flag without value is on */
	CONFPARSE_DOUBLE, /* finite number in [min, max] into a double */
	CONFPARSE_ENUM,	  /* an enum (int) field: the index of the value in choices */
	CONFPARSE_FUNC,	  /* set() parses and stores (appending to a list, several fields) */
	CONFPARSE_TABLE,  /* name is a prefix ("breaker."); the rest of the key is in sub */
};

/* Parse value into obj (the row's field, or the whole settings struct for a row at offset 0). 0, or
 * -errno (-EINVAL, or -E2BIG for a full list) with why filled: what is wrong and the fix, without
 * the key (the caller adds it). */
typedef int confparse_set_fn(void *obj, const char *value, char *why, size_t whylen);
/* Extra check of a CONFPARSE_STR value before it is stored; 0 or -EINVAL with why. */
typedef int confparse_check_fn(const char *value, char *why, size_t whylen);

struct confparse_table;

struct confparse_opt {
	const char *name; /* key in files, --name on the command line */
	const char *arg;  /* the value's name in --help ("MS"); NULL for a flag (BOOL) */
	const char *help; /* one line for --help; NULL: not listed */
	enum confparse_type type;
	size_t off, size;	    /* the field: CONFPARSE_FIELD(struct settings, member) */
	double min, max;	    /* INT, DOUBLE: accepted range; STR: min 1 = not empty */
	const char *def;	    /* default as written; NULL: the field is left alone */
	unsigned long long scale;   /* INT: stored = written * scale (ms -> ns); 0 means 1 */
	const char *const *choices; /* STR, ENUM: the accepted words, NULL-terminated */
	confparse_set_fn *set;	    /* FUNC: gets obj + off (off 0, size 0: the whole struct) */
	confparse_check_fn *check;  /* STR: optional */
	const struct confparse_table *sub; /* TABLE: the table of the field at off */
};

struct confparse_table {
	const struct confparse_opt *opts;
	size_t n;
};

/* Offset and size of a member, the two fields of a row that locate its value. Designated, so
 * a row may stop after them (or go on with min, max, def in order) without -Wextra asking
 * for every later field. */
#define CONFPARSE_FIELD(type, member)                                                              \
	.off = offsetof(type, member), .size = sizeof(((type *)0)->member)
/* A table over a whole array of rows. */
#define CONFPARSE_TABLE_OF(rows)                                                                   \
	{                                                                                          \
		(rows), ARRAY_SIZE(rows)                                                           \
	}

/* The row for key (a TABLE row's sub-table is searched with the prefix taken off), or
 * NULL. When obj is given, *obj is moved to the struct that row's offset applies to. */
const struct confparse_opt *confparse_find(const struct confparse_table *t, const char *key,
					   void **obj);
/* Parse value into o's field of obj. 0, or -EINVAL/-E2BIG (from a setter) with why filled;
 * the field is unchanged on failure. */
int confparse_apply(const struct confparse_opt *o, void *obj, const char *value, char *why,
		    size_t whylen);
/* key = value into obj. 0; -ENOENT for a key the table does not have, err saying so and
 * listing the valid keys; or the error of confparse_apply with err "KEY = VALUE: why". */
int confparse_set(const struct confparse_table *t, void *obj, const char *key, const char *value,
		  char *err, size_t errlen);
/* Every row's default into obj (rows without one are left alone). 0 or -EINVAL: a default
 * the row itself refuses, a bug in the table, named in err. */
int confparse_defaults(const struct confparse_table *t, void *obj, char *err, size_t errlen);
/* One line per row with help: "  --name ARG   help (default D)". */
void confparse_usage(FILE *out, const struct confparse_table *t);
/* Parse argv[1..] as --name VALUE / --name=VALUE / --flag[=BOOL] flags of t into obj, and
 * --help / -h. Returns 0, 1 when help was asked for (nothing printed), or -EINVAL (-ENOMEM)
 * with err "PROG: --name VALUE: why" (or naming an unknown option or a stray argument).
 * seen (may be NULL) gets true at the index of every row given. TABLE rows are not flags.
 * Not reentrant (getopt). */
int confparse_argv(const struct confparse_table *t, void *obj, int argc, char **argv,
		   const char *prog, bool *seen, char *err, size_t errlen);

#endif /* SLUICE_CONFPARSE_H */
