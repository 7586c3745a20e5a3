/* SPDX-License-Identifier: MIT */
/* confparse.h -- typed parsing of `key = value` settings with messages that name the input
 *
 * Modules that take settings from the config file (breaker, retry, upstream, model, redis)
 * describe their numeric keys in a small table and let confparse_lookup parse and
 * range-check them. Every failure writes "KEY = VALUE: what is wrong (the fix)" into err.
 */
#ifndef SLUICE_CONFPARSE_H
#define SLUICE_CONFPARSE_H

#include <stddef.h>
#include <stdint.h>

struct confparse_field {
	const char *key;
	uint64_t min, max; /* accepted range of the written number */
	uint64_t scale;	   /* stored value = written value * scale (e.g. ms -> ns) */
};

/* Find key in fields and parse value as an unsigned integer in [min, max]. Returns the
 * index of the field with *out = value * scale, -ENOENT when the key is not in the table
 * (err untouched), -EINVAL when the value is bad (err filled). */
int confparse_lookup(const struct confparse_field *fields, size_t n, const char *key,
		     const char *value, uint64_t *out, char *err, size_t errlen);
/* Parse a finite double in [min, max]; 0 or -EINVAL with err filled. */
int confparse_double(const char *key, const char *value, double min, double max, double *out,
		     char *err, size_t errlen);
/* Write "KEY = VALUE: why" into err (may be NULL) and return -EINVAL. */
int confparse_error(char *err, size_t errlen, const char *key, const char *value, const char *why);

#endif /* SLUICE_CONFPARSE_H */
