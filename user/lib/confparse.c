// SPDX-License-Identifier: MIT
/* confparse.c -- settings declared once, as a table: name, help, type, range, default, field
 *
 * Numbers go through strtoll/strtod with the checks those leave to the caller: empty input,
 * trailing junk, overflow, NaN and the range. A value is parsed completely before anything is
 * stored, so a refused value leaves the field as it was. Fields are written with memcpy at
 * their offset, by size, so one row type serves uint16_t ports, uint32_t counts, int, long
 * long and uint64_t nanoseconds alike.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/confparse.h"

static void *field(const struct confparse_opt *o, void *obj)
{
	return (char *)obj + o->off;
}

/* "a, b or c" from a NULL-terminated list. */
static void join_choices(const char *const *c, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; c[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s",
				      i == 0	 ? ""
				      : c[i + 1] ? ", "
						 : " or ",
				      c[i]);
}

/* Index of value in the choices, or -1 (why filled). */
static int choose(const struct confparse_opt *o, const char *value, char *why, size_t whylen)
{
	char all[160];

	for (int i = 0; o->choices[i]; i++)
		if (!strcmp(o->choices[i], value))
			return i;
	join_choices(o->choices, all, sizeof(all));
	snprintf(why, whylen, "must be %s", all);
	return -1;
}

static void store_int(void *p, size_t size, long long v)
{
	int8_t v8 = (int8_t)v;
	int16_t v16 = (int16_t)v;
	int32_t v32 = (int32_t)v;

	switch (size) {
	case 1:
		memcpy(p, &v8, 1);
		break;
	case 2:
		memcpy(p, &v16, 2);
		break;
	case 4:
		memcpy(p, &v32, 4);
		break;
	default:
		memcpy(p, &v, sizeof(v));
	}
}

static int set_str(const struct confparse_opt *o, void *obj, const char *value, char *why,
		   size_t whylen)
{
	size_t len = strlen(value);

	if (len >= o->size) {
		snprintf(why, whylen, "too long (at most %zu characters)", o->size - 1);
		return -EINVAL;
	}
	if (!len && o->min >= 1) {
		snprintf(why, whylen, "must not be empty");
		return -EINVAL;
	}
	if ((o->choices && choose(o, value, why, whylen) < 0) ||
	    (o->check && o->check(value, why, whylen)))
		return -EINVAL;
	memcpy(field(o, obj), value, len + 1);
	return 0;
}

static int set_int(const struct confparse_opt *o, void *obj, const char *value, char *why,
		   size_t whylen)
{
	unsigned long long scale = o->scale ? o->scale : 1;
	char *end;
	long long n;

	errno = 0;
	n = strtoll(value, &end, 10);
	if (errno || end == value || *end || (double)n < o->min || (double)n > o->max) {
		snprintf(why, whylen, "expected a whole number in %lld-%lld", (long long)o->min,
			 (long long)o->max);
		return -EINVAL;
	}
	store_int(field(o, obj), o->size, n * (long long)scale);
	return 0;
}

static int set_bool(const struct confparse_opt *o, void *obj, const char *value, char *why,
		    size_t whylen)
{
	static const char *const on[] = {"on", "true", "yes", "1"}, *const off[] = {"off", "false",
										    "no", "0"};

	for (size_t i = 0; i < ARRAY_SIZE(on); i++) {
		if (!strcmp(value, on[i]) || !strcmp(value, off[i])) {
			*(bool *)field(o, obj) = !strcmp(value, on[i]);
			return 0;
		}
	}
	snprintf(why, whylen, "must be on or off (or true/false, yes/no, 1/0)");
	return -EINVAL;
}

static int set_double(const struct confparse_opt *o, void *obj, const char *value, char *why,
		      size_t whylen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (end == value || *end || errno || !isfinite(v) || v < o->min || v > o->max) {
		snprintf(why, whylen, "expected a number in %g-%g", o->min, o->max);
		return -EINVAL;
	}
	memcpy(field(o, obj), &v, sizeof(v));
	return 0;
}

int confparse_apply(const struct confparse_opt *o, void *obj, const char *value, char *why,
		    size_t whylen)
{
	int i;

	switch (o->type) {
	case CONFPARSE_STR:
		return set_str(o, obj, value, why, whylen);
	case CONFPARSE_INT:
		return set_int(o, obj, value, why, whylen);
	case CONFPARSE_BOOL:
		return set_bool(o, obj, value, why, whylen);
	case CONFPARSE_DOUBLE:
		return set_double(o, obj, value, why, whylen);
	case CONFPARSE_ENUM:
		i = choose(o, value, why, whylen);
		if (i < 0)
			return -EINVAL;
		store_int(field(o, obj), o->size, i);
		return 0;
	case CONFPARSE_FUNC:
		return o->set(field(o, obj), value, why, whylen);
	case CONFPARSE_TABLE:
		break;
	}
	snprintf(why, whylen, "is a group of settings, not one (%sKEY)", o->name);
	return -EINVAL;
}

const struct confparse_opt *confparse_find(const struct confparse_table *t, const char *key,
					   void **obj)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct confparse_opt *o = &t->opts[i];
		size_t len = strlen(o->name);

		if (o->type == CONFPARSE_TABLE && !strncmp(key, o->name, len)) {
			void *inner = obj ? field(o, *obj) : NULL;
			const struct confparse_opt *r = confparse_find(o->sub, key + len, &inner);

			if (r && obj)
				*obj = inner;
			return r;
		}
		if (o->type != CONFPARSE_TABLE && !strcmp(key, o->name))
			return o;
	}
	return NULL;
}

/* Values are repeated in messages up to this many characters, then "...": a value refused
 * for being too long would otherwise crowd out the reason. */
#define VALUE_SHOWN 60

static int shown_len(const char *value)
{
	return strlen(value) > VALUE_SHOWN ? VALUE_SHOWN : (int)strlen(value);
}

static const char *shown_more(const char *value)
{
	return strlen(value) > VALUE_SHOWN ? "..." : "";
}

/* "a, b, breaker.*" for an unknown-key message. */
static void list_keys(const struct confparse_table *t, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < t->n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s%s", i ? ", " : "", t->opts[i].name,
				      t->opts[i].type == CONFPARSE_TABLE ? "*" : "");
}

int confparse_set(const struct confparse_table *t, void *obj, const char *key, const char *value,
		  char *err, size_t errlen)
{
	const struct confparse_opt *o = confparse_find(t, key, &obj);
	char why[384];
	int ret;

	if (!o) {
		list_keys(t, why, sizeof(why));
		if (err && errlen)
			snprintf(err, errlen, "%s: unknown key (valid: %s)", key, why);
		return -ENOENT;
	}
	ret = confparse_apply(o, obj, value, why, sizeof(why));
	if (ret && err && errlen)
		snprintf(err, errlen, "%s = %.*s%s: %s", key, shown_len(value), value,
			 shown_more(value), why);
	return ret;
}

int confparse_defaults(const struct confparse_table *t, void *obj, char *err, size_t errlen)
{
	char why[256];

	for (size_t i = 0; i < t->n; i++) {
		const struct confparse_opt *o = &t->opts[i];

		if (o->def && confparse_apply(o, obj, o->def, why, sizeof(why))) {
			snprintf(err, errlen, "default %s = %s: %s", o->name, o->def, why);
			return -EINVAL;
		}
	}
	return 0;
}

void confparse_usage(FILE *out, const struct confparse_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct confparse_opt *o = &t->opts[i];
		char left[64];

		if (!o->help)
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		fprintf(out, "  %-30s %s", left, o->help);
		if (o->def && o->def[0] && o->type != CONFPARSE_BOOL)
			fprintf(out, " (default %s)", o->def);
		fputc('\n', out);
	}
}

/* getopt_long's val for row i: above every character, so no row is mistaken for '?'. */
#define ROW_VAL 256

int confparse_argv(const struct confparse_table *t, void *obj, int argc, char **argv,
		   const char *prog, bool *seen, char *err, size_t errlen)
{
	struct option *lopts = calloc(t->n + 2, sizeof(*lopts));
	char why[384];
	int c, ret = 0;

	if (!lopts) {
		snprintf(err, errlen, "%s: out of memory", prog);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n; i++)
		lopts[i] = (struct option){t->opts[i].name,
					   t->opts[i].type == CONFPARSE_BOOL ? optional_argument
									     : required_argument,
					   NULL, ROW_VAL + (int)i};
	lopts[t->n] = (struct option){"help", no_argument, NULL, 'h'};
	optind = 0; /* GNU: start over, whatever an earlier parse left */
	opterr = 0;
	while (!ret && (c = getopt_long(argc, argv, "+:h", lopts, NULL)) != -1) {
		const struct confparse_opt *o;
		const char *v = optarg ? optarg : "on";

		if (c == 'h') {
			ret = 1;
			break;
		}
		if (c < ROW_VAL) { /* '?' or ':' */
			snprintf(err, errlen, "%s: %s: %s (see %s --help)", prog, argv[optind - 1],
				 c == ':' ? "needs a value" : "unknown option", prog);
			ret = -EINVAL;
			break;
		}
		o = &t->opts[c - ROW_VAL];
		if (confparse_apply(o, obj, v, why, sizeof(why))) {
			snprintf(err, errlen, "%s: --%s %.*s%s: %s", prog, o->name, shown_len(v), v,
				 shown_more(v), why);
			ret = -EINVAL;
		} else if (seen) {
			seen[c - ROW_VAL] = true;
		}
	}
	if (!ret && optind < argc) {
		snprintf(err, errlen, "%s: %s: unexpected argument (see %s --help)", prog,
			 argv[optind], prog);
		ret = -EINVAL;
	}
	free(lopts);
	return ret;
}
