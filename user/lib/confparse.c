// SPDX-License-Identifier: MIT
/* confparse.c -- typed parsing of `key = value` settings with messages that name the input
 *
 * strtoull/strtod with the checks they leave to the caller: empty input, trailing junk,
 * a leading minus sign (which strtoull silently wraps), overflow, range and NaN.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/confparse.h"

int confparse_error(char *err, size_t errlen, const char *key, const char *value, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "%s = %s: %s", key, value ? value : "", why);
	return -EINVAL;
}

static int parse_u64(const char *value, uint64_t *out)
{
	char *end;

	while (isspace((unsigned char)*value))
		value++;
	if (!isdigit((unsigned char)*value))
		return -EINVAL;
	errno = 0;
	*out = strtoull(value, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

int confparse_lookup(const struct confparse_field *fields, size_t n, const char *key,
		     const char *value, uint64_t *out, char *err, size_t errlen)
{
	char why[96];
	uint64_t v;

	for (size_t i = 0; i < n; i++) {
		const struct confparse_field *f = &fields[i];

		if (strcmp(f->key, key))
			continue;
		if (parse_u64(value, &v) || v < f->min || v > f->max) {
			snprintf(why, sizeof(why), "expected a whole number in %llu-%llu",
				 (unsigned long long)f->min, (unsigned long long)f->max);
			return confparse_error(err, errlen, key, value, why);
		}
		*out = v * (f->scale ? f->scale : 1);
		return (int)i;
	}
	return -ENOENT;
}

int confparse_double(const char *key, const char *value, double min, double max, double *out,
		     char *err, size_t errlen)
{
	char why[96], *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (end == value || *end || errno || !isfinite(v) || v < min || v > max) {
		snprintf(why, sizeof(why), "expected a number in %g-%g", min, max);
		return confparse_error(err, errlen, key, value, why);
	}
	*out = v;
	return 0;
}
