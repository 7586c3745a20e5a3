// SPDX-License-Identifier: MIT
/* upstream_body.c -- the upstream request template and the reading of its answer
 *
 * Rendering is two passes over the template: measure, then write, so the buffer is
 * allocated once at its exact size. String placeholders are escaped per RFC 8259 (quote,
 * backslash, control characters); bytes >= 0x80 pass through, so UTF-8 stays UTF-8.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonpath.h"
#include "sink/upstream/upstream.h"
#include "sink/upstream/upstream_body.h"

enum ph { PH_PAYLOAD, PH_KEY, PH_TENANT, PH_TYPE, PH_NONE };

static const char *const ph_names[] = {"{{payload}}", "{{idempotency_key}}", "{{tenant}}",
				       "{{type}}"};

static enum ph placeholder_at(const char *p, size_t *len)
{
	for (int i = 0; i < PH_NONE; i++) {
		*len = strlen(ph_names[i]);
		if (!strncmp(p, ph_names[i], *len))
			return (enum ph)i;
	}
	return PH_NONE;
}

int upstream_template_check(const char *tmpl, char *err, size_t errlen)
{
	const char *p = tmpl;
	size_t len;

	while ((p = strstr(p, "{{"))) {
		if (placeholder_at(p, &len) == PH_NONE) {
			snprintf(err, errlen,
				 "unknown placeholder at \"%.20s\" "
				 "(use {{payload}}, {{idempotency_key}}, {{tenant}} or {{type}})",
				 p);
			return -EINVAL;
		}
		p += len;
	}
	return 0;
}

/* Write s JSON-escaped to out (when out is not NULL); return the escaped length. */
static size_t escape(const char *s, char *out)
{
	size_t n = 0;

	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[8];
		size_t k;

		if (c == '"' || c == '\\')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", c);
		else if (c < 0x20)
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
		else
			tmp[0] = (char)c, k = 1;
		if (out)
			memcpy(out + n, tmp, k);
		n += k;
	}
	return n;
}

static size_t render(const char *tmpl, const struct upstream_request *req, char *out)
{
	const char *strs[] = {NULL, req->idempotency_key, req->tenant, req->type};
	const char *payload = req->payload && *req->payload ? req->payload : "null";
	size_t n = 0, len;
	enum ph ph;

	for (const char *p = tmpl; *p;) {
		if (p[0] == '{' && p[1] == '{' && (ph = placeholder_at(p, &len)) != PH_NONE) {
			if (ph == PH_PAYLOAD) {
				if (out)
					memcpy(out + n, payload, strlen(payload));
				n += strlen(payload);
			} else {
				n += escape(strs[ph], out ? out + n : NULL);
			}
			p += len;
			continue;
		}
		if (out)
			out[n] = *p;
		n++;
		p++;
	}
	return n;
}

char *upstream_template_render(const char *tmpl, const struct upstream_request *req, size_t *len)
{
	size_t n = render(tmpl, req, NULL);
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	render(tmpl, req, out);
	out[n] = 0;
	*len = n;
	return out;
}

int upstream_answer_number(const char *body, size_t len, const char *path, double *out)
{
	json_t *root = json_loadb(body, len, 0, NULL), *v;
	int ret = 0;

	if (!root)
		return -EINVAL;
	v = json_path_get(root, path);
	if (!v)
		ret = -ENOENT;
	else if (!json_is_number(v))
		ret = -EDOM;
	else
		*out = json_number_value(v);
	json_decref(root);
	return ret;
}
