/* SPDX-License-Identifier: MIT */
/* status.h -- sets of HTTP status codes, written as an upstream's settings read them
 *
 * `retryable = 408,425,429,5xx`: codes and classes (4xx, 5xx) separated by commas, spaces
 * allowed, "none" for the empty set. A set is a 600-bit bitmap (codes 100-599), so a lookup
 * is one shift and a set is copied with its upstream's config. status_set_format writes the
 * shortest form back (whole classes as 5xx), for logs and docs.
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATUS_MIN 100
#define STATUS_MAX 599

struct status_set {
	uint64_t bits[10]; /* bit (code - 100) */
};

/* Parse text into *s (replacing it). 0, or -EINVAL with why naming the bad item and the
 * form expected; *s is unchanged on failure. */
int status_set_parse(struct status_set *s, const char *text, char *why, size_t whylen);
/* confparse FUNC setter over a struct status_set field. */
int status_set_conf(void *obj, const char *value, char *why, size_t whylen);
bool status_set_has(const struct status_set *s, int code);
bool status_set_empty(const struct status_set *s);
/* "408,425,429,5xx" into out (truncated to cap). */
void status_set_format(const struct status_set *s, char *out, size_t cap);

#endif /* SLUICE_STATUS_H */
