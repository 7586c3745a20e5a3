// SPDX-License-Identifier: MIT
/* opts.c -- loadgen's command line: parsing and checking, every refusal names the flag
 *
 * The flags are one lib/confparse table (so --help is generated from it) over struct
 * lg_args: the options proper plus what only the checks after parsing need. The run is
 * always bounded: by --duration / --phase (at most an hour in all) or by --count, and the
 * target must be a loopback address unless --allow-remote says the address belongs to a
 * network namespace the caller created (tests).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/confparse.h"
#include "loadgen.h"

/* The options, and the flags that only matter until they are checked. */
struct lg_args {
	struct lg_opts o;
	double rate, duration;
	char type[128], priority[16];
	bool have_url;
};

static int bad(const char *flag, const char *value, const char *why)
{
	fprintf(stderr, "loadgen: %s %s: %s\n", flag, value ? value : "", why);
	return -EINVAL;
}

/* A number in [lo, hi] for a part of a value ("weight", "rate"); why names the part. */
static int parse_num(const char *part, const char *v, double lo, double hi, double *out, char *why,
		     size_t whylen)
{
	const struct confparse_opt num = {
	    part, NULL, NULL, CONFPARSE_DOUBLE, .size = sizeof(double), .min = lo, .max = hi};
	char sub[96];

	if (!confparse_apply(&num, out, v, sub, sizeof(sub)))
		return 0;
	snprintf(why, whylen, "%s %s: %s", part, v, sub);
	return -EINVAL;
}

static int parse_prio(const char *s, size_t n)
{
	static const char *const names[] = {"critical", "normal", "low"};

	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == n && !strncmp(s, names[i], n))
			return i;
	return n == 6 && !strncmp(s, "tenant", 6) ? -1 : -2;
}

/* One "P:TYPE:W" item of --mix (len bytes at item). */
static int add_mix(struct lg_opts *o, const char *item, size_t len, char *why, size_t whylen)
{
	const char *c1 = memchr(item, ':', len), *c2;
	struct lg_mix *m = &o->mix[o->nmix];
	char tmp[256];
	double w;

	if (o->nmix >= LG_MAX_MIX) {
		snprintf(why, whylen, "at most %d entries", LG_MAX_MIX);
		return -EINVAL;
	}
	c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - item)) : NULL;
	if (!c1 || !c2 || c2 == c1 + 1 || (size_t)(c2 - c1 - 1) >= sizeof(m->type)) {
		snprintf(why, whylen, "expected PRIORITY:TYPE:WEIGHT");
		return -EINVAL;
	}
	m->priority = parse_prio(item, (size_t)(c1 - item));
	if (m->priority == -2) {
		snprintf(why, whylen, "priority must be critical, normal, low or tenant");
		return -EINVAL;
	}
	snprintf(m->type, sizeof(m->type), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	snprintf(tmp, sizeof(tmp), "%.*s", (int)(len - (size_t)(c2 + 1 - item)), c2 + 1);
	if (parse_num("weight", tmp, 1, 1e6, &w, why, whylen))
		return -EINVAL;
	m->weight = (uint32_t)w;
	o->nmix++;
	return 0;
}

/* --mix P:TYPE:W[,...]: every item, or why names the one refused (when there are several). */
static int set_mix(void *obj, const char *value, char *why, size_t whylen)
{
	char sub[160];

	for (const char *s = value, *e; *s; s = *e ? e + 1 : e) {
		e = s + strcspn(s, ",");
		if (add_mix(obj, s, (size_t)(e - s), sub, sizeof(sub))) {
			if (strchr(value, ','))
				snprintf(why, whylen, "%.*s: %s", (int)(e - s), s, sub);
			else
				snprintf(why, whylen, "%s", sub);
			return -EINVAL;
		}
	}
	return 0;
}

/* --key KEY[:WEIGHT], appended. */
static int add_key(void *obj, const char *v, char *why, size_t whylen)
{
	struct lg_opts *o = obj;
	const char *colon = strrchr(v, ':');
	struct lg_key *k = &o->keys[o->nkeys];
	double w = 1;

	if (o->nkeys >= LG_MAX_KEYS) {
		snprintf(why, whylen, "at most %d keys", LG_MAX_KEYS);
		return -EINVAL;
	}
	if (colon && parse_num("weight", colon + 1, 1, 1e6, &w, why, whylen))
		return -EINVAL;
	if (!colon)
		colon = v + strlen(v);
	if (colon == v || (size_t)(colon - v) >= sizeof(k->key) || strpbrk(v, "\r\n ")) {
		snprintf(why, whylen, "expected KEY[:WEIGHT], no spaces, < 128 characters");
		return -EINVAL;
	}
	snprintf(k->key, sizeof(k->key), "%.*s", (int)(colon - v), v);
	k->weight = (uint32_t)w;
	o->nkeys++;
	return 0;
}

/* --phase RATE:SECONDS, appended. */
static int add_phase(void *obj, const char *v, char *why, size_t whylen)
{
	struct lg_opts *o = obj;
	char rate[64];
	const char *colon = strchr(v, ':');
	struct lg_phase *p = &o->phases[o->nphases];

	if (o->nphases >= LG_MAX_PHASES) {
		snprintf(why, whylen, "at most %d phases", LG_MAX_PHASES);
		return -EINVAL;
	}
	if (!colon || (size_t)(colon - v) >= sizeof(rate)) {
		snprintf(why, whylen, "expected RATE:SECONDS");
		return -EINVAL;
	}
	snprintf(rate, sizeof(rate), "%.*s", (int)(colon - v), v);
	if (parse_num("rate", rate, 0, 1e7, &p->rate, why, whylen) ||
	    parse_num("seconds", colon + 1, 0.001, LG_MAX_SECONDS, &p->seconds, why, whylen))
		return -EINVAL;
	o->nphases++;
	return 0;
}

/* --url http://HOST:PORT/PATH with HOST an IPv4 address or [IPv6]. */
static int set_url(void *obj, const char *url, char *why, size_t whylen)
{
	struct lg_args *a = obj;
	struct lg_opts *o = &a->o;
	const char *h = url + 7, *slash, *colon;
	char host[128];
	long port;

	if (strncmp(url, "http://", 7)) {
		snprintf(why, whylen, "must start with http:// (no TLS)");
		return -EINVAL;
	}
	slash = strchr(h, '/');
	snprintf(o->path, sizeof(o->path), "%s", slash ? slash : "/v1/events");
	snprintf(host, sizeof(host), "%.*s", (int)(slash ? slash - h : (long)strlen(h)), h);
	colon = strrchr(host, ':');
	if (!colon || (host[0] == '[' && colon < strchr(host, ']'))) {
		snprintf(why, whylen, "needs an explicit :PORT");
		return -EINVAL;
	}
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535) {
		snprintf(why, whylen, "port out of range (1-65535)");
		return -EINVAL;
	}
	*strrchr(host, ':') = '\0';
	snprintf(o->host, sizeof(o->host), "%s", host);
	memset(&o->addr, 0, sizeof(o->addr));
	if (host[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&o->addr;

		host[strlen(host) - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		o->addrlen = sizeof(*a6);
		a->have_url = inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&o->addr;

		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		o->addrlen = sizeof(*a4);
		a->have_url = inet_pton(AF_INET, host, &a4->sin_addr) == 1;
	}
	if (a->have_url)
		return 0;
	snprintf(why, whylen, "host must be an IPv4 address or [IPv6] address (no DNS)");
	return -EINVAL;
}

/* --port P: the same as --url http://127.0.0.1:P/v1/events. */
static int set_port(void *obj, const char *value, char *why, size_t whylen)
{
	static const struct confparse_opt port_opt = {
	    "port", NULL, NULL, CONFPARSE_INT, .size = sizeof(int), .min = 1, .max = 65535};
	char url[64];
	int port;

	if (confparse_apply(&port_opt, &port, value, why, whylen))
		return -EINVAL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/events", port);
	return set_url(obj, url, why, whylen);
}

/* Idempotency keys go into JSON unescaped. */
static int no_quotes(const char *value, char *why, size_t whylen)
{
	if (!strpbrk(value, "\"\\"))
		return 0;
	snprintf(why, whylen, "no quotes or backslashes (the keys go into JSON as they are)");
	return -EINVAL;
}

static const char *const priorities[] = {"critical", "normal", "low", "tenant", NULL};

#define F(f)  CONFPARSE_FIELD(struct lg_args, f)
#define FO(f) CONFPARSE_FIELD(struct lg_args, o.f)

static const struct confparse_opt opts[] = {
    {"port", "P", "target http://127.0.0.1:P/v1/events", CONFPARSE_FUNC, .set = set_port},
    {"url", "URL", "target http://HOST:PORT/PATH (HOST an address, no DNS)", CONFPARSE_FUNC,
     .set = set_url},
    {"connections", "N", "keep-alive connections, one request in flight each", CONFPARSE_INT,
     FO(connections), 1, 4096, "8"},
    {"rate", "R", "events/s over all connections, 0 = unpaced", CONFPARSE_DOUBLE, F(rate), 0, 1e7,
     "0"},
    {"duration", "S", "seconds at --rate", CONFPARSE_DOUBLE, F(duration), 0.001, LG_MAX_SECONDS},
    {"phase", "R:S", "S seconds at R events/s; repeatable, run in order", CONFPARSE_FUNC, F(o),
     .set = add_phase},
    {"count", "N", "stop after N requests (with or without a duration)", CONFPARSE_INT, FO(count),
     1, 1e9},
    {"key", "KEY[:WEIGHT]", "API key; repeatable, picked by weight (default weight 1)",
     CONFPARSE_FUNC, F(o), .set = add_key},
    {"mix", "P:TYPE:W[,...]", "priority (critical|normal|low|tenant: none), type, weight",
     CONFPARSE_FUNC, F(o), .set = set_mix},
    {"type", "TYPE", "without --mix: every event of this type", CONFPARSE_STR, F(type),
     .def = "lead.created"},
    {"priority", "P", "without --mix: this priority", CONFPARSE_STR, F(priority), .def = "tenant",
     .choices = priorities},
    {"prefix", "P", "idempotency keys P-SEQ (default lg<pid>)", CONFPARSE_STR, FO(prefix), 1,
     .check = no_quotes},
    {"dup-rate", "F", "share 0..1 of requests resending an earlier key", CONFPARSE_DOUBLE,
     FO(dup_rate), 0, 1, "0"},
    {"payload-bytes", "N", "padding added to the payload", CONFPARSE_INT, FO(payload_bytes), 0,
     1 << 20, "0"},
    {"drain", "S", "after the schedule, wait S seconds for answers", CONFPARSE_DOUBLE, FO(drain_s),
     0, 600, "5"},
    {"log", "FILE", "one line per answer: KEY TYPE CLASS STATUS KEY_INDEX", CONFPARSE_STR,
     FO(log_path)},
    {"timeline", NULL, "per-second rows (text) / \"timeline\" array (JSON)", CONFPARSE_BOOL,
     FO(timeline)},
    {"json", NULL, "the report as one JSON object on stdout", CONFPARSE_BOOL, FO(json)},
    {"allow-remote", NULL, "allow a non-loopback target (a test's network namespace)",
     CONFPARSE_BOOL, FO(allow_remote)},
};

static const struct confparse_table table = CONFPARSE_TABLE_OF(opts);

static void usage(FILE *out)
{
	fprintf(out, "Usage: loadgen --port P | --url http://HOST:PORT/PATH [OPTIONS]\n"
		     "HTTP/1.1 keep-alive load for POST /v1/events, paced or as fast as "
		     "possible.\n\n");
	confparse_usage(out, &table);
}

static bool is_loopback(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* Everything that needs all flags seen (argv[] tells which of --type/--priority were given). */
static int check(struct lg_args *a, const bool *seen)
{
	struct lg_opts *o = &a->o;
	bool typed = seen[confparse_find(&table, "type", NULL) - opts] ||
		     seen[confparse_find(&table, "priority", NULL) - opts];
	char one[200], why[160];
	double total = 0;

	if (!a->have_url)
		return bad("--port", "", "give --port P or --url http://HOST:PORT/PATH");
	if (!o->allow_remote && !is_loopback(&o->addr))
		return bad("--url", o->host,
			   "not a loopback address (--allow-remote for a test's "
			   "network namespace)");
	if (a->duration > 0) {
		if (o->nphases)
			return bad("--duration", "", "use either --duration or --phase");
		o->phases[o->nphases++] = (struct lg_phase){a->rate, a->duration};
	} else if (!o->nphases && o->count) {
		o->phases[o->nphases++] = (struct lg_phase){a->rate, LG_MAX_SECONDS};
	}
	if (!o->nphases)
		return bad("--duration", "",
			   "the run needs a bound: --duration, --phase or --count");
	for (int i = 0; i < o->nphases; i++)
		total += o->phases[i].seconds;
	if (total > LG_MAX_SECONDS)
		return bad("--phase", "", "the phases last more than an hour in all");
	if (!o->nkeys)
		return bad("--key", "", "at least one API key is needed");
	if (o->nmix && typed)
		return bad("--type", a->type, "use either --mix or --type/--priority");
	if (o->nmix)
		return 0;
	snprintf(one, sizeof(one), "%s:%s:1", a->priority, a->type);
	if (add_mix(o, one, strlen(one), why, sizeof(why)))
		return bad("--type", a->type, why);
	return 0;
}

int lg_opts_parse(struct lg_opts *o, int argc, char **argv)
{
	struct lg_args *a = calloc(1, sizeof(*a));
	bool seen[ARRAY_SIZE(opts)] = {false};
	char err[512];
	int ret;

	if (!a)
		return bad("loadgen", "", "out of memory");
	ret = confparse_defaults(&table, a, err, sizeof(err));
	snprintf(a->o.prefix, sizeof(a->o.prefix), "lg%d", (int)getpid());
	ret = ret ?: confparse_argv(&table, a, argc, argv, "loadgen", seen, err, sizeof(err));
	if (ret == 1)
		usage(stdout);
	else if (ret)
		fprintf(stderr, "%s\n", err);
	else
		ret = check(a, seen);
	*o = a->o;
	free(a);
	return ret < 0 ? -EINVAL : ret;
}
