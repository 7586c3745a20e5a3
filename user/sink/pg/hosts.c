// SPDX-License-Identifier: MIT
/* hosts.c -- split a multi-host libpq conninfo into one conninfo per host (hosts.h)
 *
 * libpq's rules for the lists: host and hostaddr are comma-separated and, when both are
 * given, have the same length; port is one value for every host or one per host; an empty
 * element means the default. The count of hosts is that of host, else of hostaddr, else 1.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/pg/hosts.h"

/* Element i of a comma-separated list into out ("" for an empty element). Returns the
 * number of elements in list. */
static int list_item(const char *list, int i, char *out, size_t outlen)
{
	int n = 1;

	if (out && outlen)
		*out = 0;
	for (const char *p = list;; p++) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (n - 1 == i && out && outlen)
			snprintf(out, outlen, "%.*s", (int)(len < outlen ? len : outlen - 1), p);
		if (!end)
			return n;
		p = end;
		n++;
	}
}

static int count_items(const char *list)
{
	return list && *list ? list_item(list, -1, NULL, 0) : 0;
}

/* Append keyword='value' (libpq quoting) to buf at *len. */
static int put(char **buf, size_t *len, size_t *cap, const char *kw, const char *val)
{
	size_t need = *len + strlen(kw) + 2 * strlen(val) + 6;

	if (need > *cap) {
		char *nb = realloc(*buf, need * 2);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = need * 2;
	}
	*len += sprintf(*buf + *len, "%s%s='", *len ? " " : "", kw);
	for (const char *p = val; *p; p++) {
		if (*p == '\'' || *p == '\\')
			(*buf)[(*len)++] = '\\';
		(*buf)[(*len)++] = *p;
	}
	(*buf)[(*len)++] = '\'';
	(*buf)[*len] = 0;
	return 0;
}

static const char *opt(const PQconninfoOption *o, const char *kw)
{
	for (; o->keyword; o++)
		if (!strcmp(o->keyword, kw))
			return o->val && *o->val ? o->val : NULL;
	return NULL;
}

/* The conninfo for host i: every option but the lists, then element i of each list. */
static char *host_conninfo(const PQconninfoOption *opts, int i, int nport)
{
	static const char *const lists[] = {"host", "hostaddr", "port"};
	char *buf = NULL, item[256];
	size_t len = 0, cap = 0;

	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		bool is_list = false;

		for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++)
			is_list |= !strcmp(o->keyword, lists[k]);
		if (!o->val || !*o->val || is_list)
			continue;
		if (put(&buf, &len, &cap, o->keyword, o->val))
			goto nomem;
	}
	for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
		const char *list = opt(opts, lists[k]);

		if (!list)
			continue;
		list_item(list, !strcmp(lists[k], "port") && nport == 1 ? 0 : i, item,
			  sizeof(item));
		if (*item && put(&buf, &len, &cap, lists[k], item))
			goto nomem;
	}
	if (!buf)
		buf = strdup("");
	return buf;
nomem:
	free(buf);
	return NULL;
}

int pg_hosts_parse(struct pg_hosts *h, const char *conninfo, char *err, size_t errlen)
{
	char *perr = NULL, host[64], port[16];
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	int nhost, naddr, nport, timeout;
	const char *v;

	memset(h, 0, sizeof(*h));
	if (!opts) {
		snprintf(err, errlen, "conninfo: %s", perr ? perr : "out of memory");
		if (perr)
			PQfreemem(perr);
		return perr ? -EINVAL : -ENOMEM;
	}
	nhost = count_items(opt(opts, "host"));
	naddr = count_items(opt(opts, "hostaddr"));
	nport = count_items(opt(opts, "port"));
	h->n = nhost ? nhost : naddr ? naddr : 1;
	if (h->n > PG_HOSTS_MAX || (nhost && naddr && nhost != naddr) ||
	    (nport > 1 && nport != h->n)) {
		snprintf(
		    err, errlen,
		    "conninfo: %d hosts, %d hostaddrs, %d ports (at most %d hosts; hostaddr and "
		    "port lists: one element, or one per host)",
		    nhost, naddr, nport, PG_HOSTS_MAX);
		PQconninfoFree(opts);
		h->n = 0;
		return -EINVAL;
	}
	v = opt(opts, "connect_timeout");
	timeout = v ? atoi(v) : 0;
	/* libpq: 0 or unset waits forever, 1 means 2; the writer never waits forever */
	h->connect_timeout_ms =
	    timeout <= 0 ? PG_HOSTS_DEFAULT_TIMEOUT_MS : (timeout < 2 ? 2 : timeout) * 1000;
	for (int i = 0; i < h->n; i++) {
		h->conninfo[i] = host_conninfo(opts, i, nport);
		if (!h->conninfo[i]) {
			PQconninfoFree(opts);
			pg_hosts_free(h);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		list_item(opt(opts, "host") ?: opt(opts, "hostaddr") ?: "", i, host, sizeof(host));
		list_item(opt(opts, "port") ?: "", nport == 1 ? 0 : i, port, sizeof(port));
		snprintf(h->label[i], sizeof(h->label[i]), "%s:%s", *host ? host : "default",
			 *port ? port : "default");
	}
	PQconninfoFree(opts);
	return 0;
}

void pg_hosts_free(struct pg_hosts *h)
{
	if (!h)
		return;
	for (int i = 0; i < PG_HOSTS_MAX; i++) {
		free(h->conninfo[i]);
		h->conninfo[i] = NULL;
	}
	h->n = 0;
}
