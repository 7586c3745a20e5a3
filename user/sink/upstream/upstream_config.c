// SPDX-License-Identifier: MIT
/* upstream_config.c -- an upstream's settings: defaults, `key = value` parsing, checking
 *
 * One lib/confparse table; its breaker.* and retry.* rows hold the breaker's and the retry
 * policy's own tables, so one section of the config file describes everything about one
 * upstream and an error names the key as written ("breaker.failure_rate = 150: ..."). Checks that
 * need several fields (URL scheme, template placeholders, breaker ranges) run once, in
 * upstream_config_check, which upstream_new calls.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
	status_set_parse(&cfg->retryable, "408,425,429,5xx", NULL, 0);
	status_set_parse(&cfg->recovering, "404", NULL, 0);
	cfg->recovering_window_ns = 60ULL * 1000000000ULL;
}

bool upstream_status_retryable(const struct upstream_config *cfg, int status, bool recovering)
{
	return status_set_has(&cfg->retryable, status) ||
	       (recovering && status_set_has(&cfg->recovering, status));
}

bool upstream_status_breaker_failure(const struct upstream_config *cfg, int status, bool recovering)
{
	const struct status_set *f =
	    cfg->breaker_failures_set ? &cfg->breaker_failures : &cfg->retryable;

	return status_set_has(f, status) ||
	       (recovering && status_set_has(&cfg->recovering, status));
}

/* breaker_failures = LIST: stored, and no longer following retryable. */
static int set_breaker_failures(void *obj, const char *value, char *why, size_t whylen)
{
	struct upstream_config *cfg = obj;
	int err = status_set_parse(&cfg->breaker_failures, value, why, whylen);

	if (!err)
		cfg->breaker_failures_set = true;
	return err;
}

/* "Name: value": a token name, a colon, no CR/LF anywhere (no header injection). Appends. */
static int add_header(void *obj, const char *value, char *why, size_t whylen)
{
	struct upstream_config *cfg = obj;
	size_t name = strspn(value, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ");

	if (!name || value[name] != ':' || strpbrk(value, "\r\n")) {
		snprintf(why, whylen, "expected Name: value, e.g. Authorization: Bearer TOKEN");
		return -EINVAL;
	}
	if (strlen(value) >= sizeof(cfg->headers[0])) {
		snprintf(why, whylen, "too long (at most %zu characters)",
			 sizeof(cfg->headers[0]) - 1);
		return -EINVAL;
	}
	if (cfg->n_headers >= UPSTREAM_MAX_HEADERS) {
		snprintf(why, whylen, "too many headers (at most %d)", UPSTREAM_MAX_HEADERS);
		return -E2BIG;
	}
	snprintf(cfg->headers[cfg->n_headers++], sizeof(cfg->headers[0]), "%s", value);
	return 0;
}

static const char *const methods[] = {"POST", "PUT", "PATCH", NULL};

#define F(f) CONFPARSE_FIELD(struct upstream_config, f)

static const struct confparse_opt upstream_opts[] = {
    {"url", NULL, NULL, CONFPARSE_STR, F(url)},
    {"header", NULL, NULL, CONFPARSE_FUNC, .set = add_header},
    {"method", NULL, NULL, CONFPARSE_STR, F(method), .choices = methods},
    {"template", NULL, NULL, CONFPARSE_STR, F(template), .check = upstream_template_check},
    {"score_field", NULL, NULL, CONFPARSE_STR, F(score_field)},
    {"timeout_ms", NULL, NULL, CONFPARSE_INT, F(timeout_ms), 1, 600000},
    {"connect_timeout_ms", NULL, NULL, CONFPARSE_INT, F(connect_timeout_ms), 1, 600000},
    {"max_concurrent", NULL, NULL, CONFPARSE_INT, F(max_concurrent), 1, 10000},
    {"max_body", NULL, NULL, CONFPARSE_INT, F(max_body), 64, 64 << 20},
    {"retryable", NULL, NULL, CONFPARSE_FUNC, F(retryable), .set = status_set_conf},
    {"breaker_failures", NULL, NULL, CONFPARSE_FUNC, .set = set_breaker_failures},
    {"recovering", NULL, NULL, CONFPARSE_FUNC, F(recovering), .set = status_set_conf},
    {"recovering_window_ms", NULL, NULL, CONFPARSE_INT, F(recovering_window_ns), 0, 86400000,
     .scale = 1000000},
    {"breaker.", NULL, NULL, CONFPARSE_TABLE, F(breaker), .sub = &breaker_config_table},
    {"retry.", NULL, NULL, CONFPARSE_TABLE, F(retry), .sub = &retry_policy_table},
};

static const struct confparse_table upstream_table = CONFPARSE_TABLE_OF(upstream_opts);

int upstream_config_set(struct upstream_config *cfg, const char *key, const char *value, char *err,
			size_t errlen)
{
	return confparse_set(&upstream_table, cfg, key, value, err, errlen);
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
	if (upstream_template_check(cfg->template, sub, sizeof(sub))) {
		snprintf(err, errlen, "upstream %s: template = %.60s: %s", cfg->name, cfg->template,
			 sub);
		return -EINVAL;
	}
	if (breaker_config_check(&cfg->breaker, sub, sizeof(sub))) {
		snprintf(err, errlen, "upstream %s: %s", cfg->name, sub);
		return -EINVAL;
	}
	return 0;
}
