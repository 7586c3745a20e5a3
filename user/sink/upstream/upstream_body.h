/* SPDX-License-Identifier: MIT */
/* upstream_body.h -- the upstream request template and the reading of its answer
 *
 * Pure functions, no I/O. A template is JSON text with placeholders:
 *	{{payload}}		the event payload, inserted as-is (it is already JSON)
 *	{{idempotency_key}}	{{tenant}}	{{type}}
 *				inserted JSON-string-escaped, without quotes, so a template
 *				writes "key":"{{idempotency_key}}"
 * The default template is "{{payload}}". An answer is read by a dotted path to a number.
 */
#ifndef SLUICE_UPSTREAM_BODY_H
#define SLUICE_UPSTREAM_BODY_H

#include <stddef.h>

struct upstream_request;

/* Check that every {{...}} in tmpl is a known placeholder. 0 or -EINVAL (err names it). */
int upstream_template_check(const char *tmpl, char *err, size_t errlen);
/* Render tmpl for req into a malloc'd string (*len bytes, NUL-terminated). Missing
 * request fields render as empty ("null" for the payload). NULL + errno on failure. */
char *upstream_template_render(const char *tmpl, const struct upstream_request *req, size_t *len);
/* Read the number at path from a JSON answer. 0, -EINVAL (not JSON), -ENOENT (no such
 * field) or -EDOM (the field is not a number). */
int upstream_answer_number(const char *body, size_t len, const char *path, double *out);

#endif /* SLUICE_UPSTREAM_BODY_H */
