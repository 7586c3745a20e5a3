// SPDX-License-Identifier: MIT
/* status.c -- sets of HTTP status codes ("408,425,429,5xx") for an upstream's settings
 *
 * Parsing builds a new set and copies it over the old one only when every item parsed, so a
 * bad line leaves the setting as it was (confparse's promise).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/upstream/status.h"

static void add(struct status_set *s, int code)
{
	unsigned int b = (unsigned int)(code - STATUS_MIN);

	s->bits[b / 64] |= 1ULL << (b % 64);
}

bool status_set_has(const struct status_set *s, int code)
{
	unsigned int b = (unsigned int)(code - STATUS_MIN);

	if (code < STATUS_MIN || code > STATUS_MAX)
		return false;
	return s->bits[b / 64] >> (b % 64) & 1;
}

bool status_set_empty(const struct status_set *s)
{
	for (size_t i = 0; i < sizeof(s->bits) / sizeof(s->bits[0]); i++)
		if (s->bits[i])
			return false;
	return true;
}

/* One item: "404" or "5xx". */
static int parse_item(struct status_set *s, const char *item, size_t len, char *why, size_t whylen)
{
	char buf[16];
	char *end;
	long v;

	if (len == 3 && item[0] >= '1' && item[0] <= '5' && (item[1] | 0x20) == 'x' &&
	    (item[2] | 0x20) == 'x') {
		for (int c = (item[0] - '0') * 100; c < (item[0] - '0') * 100 + 100; c++)
			add(s, c);
		return 0;
	}
	if (len && len < sizeof(buf)) {
		memcpy(buf, item, len);
		buf[len] = 0;
		v = strtol(buf, &end, 10);
		if (!*end && v >= STATUS_MIN && v <= STATUS_MAX) {
			add(s, (int)v);
			return 0;
		}
	}
	snprintf(why, whylen,
		 "\"%.*s\" is not a status (100-599) or a class (1xx-5xx), e.g. "
		 "408,425,429,5xx",
		 (int)(len > 20 ? 20 : len), item);
	return -EINVAL;
}

int status_set_parse(struct status_set *s, const char *text, char *why, size_t whylen)
{
	struct status_set n = {0};
	const char *p = text;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!strcmp(p, "none")) {
		*s = n;
		return 0;
	}
	while (*p) {
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		len = strcspn(p, ", \t");
		if (!len)
			break;
		if (parse_item(&n, p, len, why, whylen))
			return -EINVAL;
		p += len;
	}
	if (status_set_empty(&n)) {
		snprintf(why, whylen, "empty (write none for no status)");
		return -EINVAL;
	}
	*s = n;
	return 0;
}

int status_set_conf(void *obj, const char *value, char *why, size_t whylen)
{
	return status_set_parse(obj, value, why, whylen);
}

void status_set_format(const struct status_set *s, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = 0;
	for (int cls = 1; cls <= 5; cls++) {
		bool whole = true;

		for (int c = cls * 100; c < cls * 100 + 100 && whole; c++)
			whole = status_set_has(s, c);
		for (int c = cls * 100; c < cls * 100 + 100 && n < cap; c++) {
			if (!whole && !status_set_has(s, c))
				continue;
			n += (size_t)snprintf(out + n, cap - n, "%s%d%s", n ? "," : "",
					      whole ? cls : c, whole ? "xx" : "");
			if (whole)
				break;
		}
	}
	if (!n)
		snprintf(out, cap, "none");
}
