// SPDX-License-Identifier: MIT
/* upstream_config.c -- an upstream's settings: defaults, `key = value` parsing, checking
 *
 * The breaker.* and retry.* keys are handed to breaker_config_set and retry_policy_set,
 * so one section of the config file describes everything about one upstream. Checks that
 * need several fields (URL scheme, template placeholders, breaker ranges) run once, in
 * upstream_config_check, which upstream_new calls.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/array_size.h"
#include "lib/confparse.h"
#include "sink/upstream/upstream.h"
#include "sink/upstream/upstream_body.h"

void upstream_config_default(struct upstream_config *cfg, const char *name, const char *url)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "%s", name);
	snprintf(cfg->url, sizeof(cfg->url), "%s", url ? url : "");
	cfg->timeout_ms = 2000;
	cfg->connect_timeout_ms = 500;
	cfg->max_concurrent = 25;
	snprintf(cfg->template, sizeof(cfg->template), "{{payload}}");
	cfg->max_body = 1 << 20;
	snprintf(cfg->method, sizeof(cfg->method), "POST");
	breaker_config_default(&cfg->breaker);
	retry_policy_default(&cfg->retry);
}

static int set_string(char *dst, size_t cap, const char *key, const char *value, char *err,
		      size_t errlen)
{
	if (strlen(value) >= cap) {
		char why[64];

		snprintf(why, sizeof(why), "too long (at most %zu characters)", cap - 1);
		return confparse_error(err, errlen, key, value, why);
	}
	snprintf(dst, cap, "%s", value);
	return 0;
}

/* "Name: value": a token name, a colon, no CR/LF anywhere (no header injection). */
static int add_header(struct upstream_config *cfg, const char *value, char *err, size_t errlen)
{
	size_t name = strspn(value, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ");

	if (!name || value[name] != ':' || strpbrk(value, "\r\n"))
		return confparse_error(err, errlen, "header", value,
				       "expected Name: value, e.g. Authorization: Bearer TOKEN");
	if (cfg->n_headers >= UPSTREAM_MAX_HEADERS) {
		confparse_error(err, errlen, "header", value, "too many headers (at most 8)");
		return -E2BIG;
	}
	if (set_string(cfg->headers[cfg->n_headers], sizeof(cfg->headers[0]), "header", value, err,
		       errlen))
		return -EINVAL;
	cfg->n_headers++;
	return 0;
}

int upstream_config_set(struct upstream_config *cfg, const char *key, const char *value, char *err,
			size_t errlen)
{
	static const struct confparse_field fields[] = {
	    {"timeout_ms", 1, 600000, 1},
	    {"connect_timeout_ms", 1, 600000, 1},
	    {"max_concurrent", 1, 10000, 1},
	    {"max_body", 64, 64 << 20, 1},
	};
	uint64_t v;
	int i;

	if (!strncmp(key, "breaker.", 8) || !strncmp(key, "retry.", 6)) {
		char sub[200] = "";
		int ret = key[0] == 'b'
			      ? breaker_config_set(&cfg->breaker, key + 8, value, sub, sizeof(sub))
			      : retry_policy_set(&cfg->retry, key + 6, value, sub, sizeof(sub));

		/* name the key as it was written: "breaker.failure_rate = 150: ..." */
		if (ret == -EINVAL && err)
			snprintf(err, errlen, "%.*s%s", (int)(strchr(key, '.') - key + 1), key,
				 sub);
		return ret;
	}
	if (!strcmp(key, "url"))
		return set_string(cfg->url, sizeof(cfg->url), key, value, err, errlen);
	if (!strcmp(key, "header"))
		return add_header(cfg, value, err, errlen);
	if (!strcmp(key, "method")) {
		if (strcmp(value, "POST") && strcmp(value, "PUT") && strcmp(value, "PATCH"))
			return confparse_error(err, errlen, key, value,
					       "must be POST, PUT or PATCH");
		snprintf(cfg->method, sizeof(cfg->method), "%s", value);
		return 0;
	}
	if (!strcmp(key, "template"))
		return set_string(cfg->template, sizeof(cfg->template), key, value, err, errlen)
			   ?: upstream_template_check(cfg->template, err, errlen);
	if (!strcmp(key, "score_field"))
		return set_string(cfg->score_field, sizeof(cfg->score_field), key, value, err,
				  errlen);
	i = confparse_lookup(fields, ARRAY_SIZE(fields), key, value, &v, err, errlen);
	switch (i) {
	case 0:
		cfg->timeout_ms = (uint32_t)v;
		break;
	case 1:
		cfg->connect_timeout_ms = (uint32_t)v;
		break;
	case 2:
		cfg->max_concurrent = (uint32_t)v;
		break;
	case 3:
		cfg->max_body = (uint32_t)v;
		break;
	default:
		return i;
	}
	return 0;
}

int upstream_config_check(const struct upstream_config *cfg, char *err, size_t errlen)
{
	char sub[160];

	if (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8)) {
		snprintf(err, errlen, "upstream %s: url = %s: must start with http:// or https://",
			 cfg->name, cfg->url);
		return -EINVAL;
	}
	if (!cfg->max_concurrent || !cfg->timeout_ms) {
		snprintf(err, errlen, "upstream %s: max_concurrent and timeout_ms must be >= 1",
			 cfg->name);
		return -EINVAL;
	}
	if (upstream_template_check(cfg->template, sub, sizeof(sub)) ||
	    breaker_config_check(&cfg->breaker, sub, sizeof(sub))) {
		snprintf(err, errlen, "upstream %s: %s", cfg->name, sub);
		return -EINVAL;
	}
	return 0;
}
