// SPDX-License-Identifier: MIT
/* opts.c -- loadgen's command line: parsing and checking, every refusal names the flag
 *
 * The run is always bounded: by --duration / --phase (at most an hour in all) or by
 * --count, and the target must be a loopback address unless --allow-remote says the
 * address belongs to a network namespace the caller created (tests).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: loadgen --port P | --url http://HOST:PORT/PATH [OPTIONS]\n"
	    "HTTP/1.1 keep-alive load for POST /v1/events, paced or as fast as possible.\n\n"
	    "  --connections N        keep-alive connections, one request in flight each (8)\n"
	    "  --rate R               events/s over all connections, 0 = unpaced (0)\n"
	    "  --duration S           seconds at --rate\n"
	    "  --phase R:S            S seconds at R events/s; repeatable, run in order\n"
	    "  --count N              stop after N requests (with or without a duration)\n"
	    "  --key KEY[:WEIGHT]     API key; repeatable, picked by weight (default weight 1)\n"
	    "  --mix P:TYPE:W[,...]   priority (critical|normal|low|tenant), event type and\n"
	    "                         weight; tenant = no priority field\n"
	    "  --type TYPE            without --mix: every event of this type (lead.created)\n"
	    "  --priority P           without --mix: this priority (default tenant)\n"
	    "  --prefix P             idempotency keys P-SEQ (default lg<pid>)\n"
	    "  --dup-rate F           share 0..1 of requests resending an earlier key (0)\n"
	    "  --payload-bytes N      padding added to the payload (0)\n"
	    "  --drain S              after the schedule, wait S seconds for answers (5)\n"
	    "  --log FILE             one line per answer: KEY TYPE CLASS STATUS KEY_INDEX\n"
	    "  --timeline             per-second rows (text) / \"timeline\" array (JSON)\n"
	    "  --json                 the report as one JSON object on stdout\n"
	    "  --allow-remote         allow a non-loopback target (a test's network namespace)\n");
}

static int bad(const char *flag, const char *value, const char *why)
{
	fprintf(stderr, "loadgen: %s %s: %s\n", flag, value ? value : "", why);
	return -EINVAL;
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || d < lo || d > hi) {
		char why[96];

		snprintf(why, sizeof(why), "expected a number %g..%g", lo, hi);
		return bad(flag, v, why);
	}
	*out = d;
	return 0;
}

static int parse_prio(const char *s, size_t n)
{
	static const char *const names[] = {"critical", "normal", "low"};

	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == n && !strncmp(s, names[i], n))
			return i;
	return n == 6 && !strncmp(s, "tenant", 6) ? -1 : -2;
}

/* One "P:TYPE:W" item of --mix. */
static int add_mix(struct lg_opts *o, const char *item, size_t len)
{
	const char *c1 = memchr(item, ':', len), *c2;
	struct lg_mix *m = &o->mix[o->nmix];
	char tmp[256];
	double w;

	snprintf(tmp, sizeof(tmp), "%.*s", (int)len, item);
	if (o->nmix >= LG_MAX_MIX)
		return bad("--mix", tmp, "at most 16 entries");
	c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - item)) : NULL;
	if (!c1 || !c2 || c2 == c1 + 1 || (size_t)(c2 - c1 - 1) >= sizeof(m->type))
		return bad("--mix", tmp, "expected PRIORITY:TYPE:WEIGHT");
	m->priority = parse_prio(item, (size_t)(c1 - item));
	if (m->priority == -2)
		return bad("--mix", tmp, "priority must be critical, normal, low or tenant");
	snprintf(m->type, sizeof(m->type), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	snprintf(tmp, sizeof(tmp), "%.*s", (int)(len - (size_t)(c2 + 1 - item)), c2 + 1);
	if (parse_num("--mix weight", tmp, 1, 1e6, &w))
		return -EINVAL;
	m->weight = (uint32_t)w;
	o->nmix++;
	return 0;
}

static int add_key(struct lg_opts *o, const char *v)
{
	const char *colon = strrchr(v, ':');
	struct lg_key *k = &o->keys[o->nkeys];
	double w = 1;

	if (o->nkeys >= LG_MAX_KEYS)
		return bad("--key", v, "at most 16 keys");
	if (colon && parse_num("--key weight", colon + 1, 1, 1e6, &w))
		return -EINVAL;
	if (!colon)
		colon = v + strlen(v);
	if (colon == v || (size_t)(colon - v) >= sizeof(k->key) || strpbrk(v, "\r\n "))
		return bad("--key", v, "expected KEY[:WEIGHT], no spaces, < 128 characters");
	snprintf(k->key, sizeof(k->key), "%.*s", (int)(colon - v), v);
	k->weight = (uint32_t)w;
	o->nkeys++;
	return 0;
}

static int add_phase(struct lg_opts *o, const char *v)
{
	char rate[64];
	const char *colon = strchr(v, ':');
	struct lg_phase *p = &o->phases[o->nphases];

	if (o->nphases >= LG_MAX_PHASES)
		return bad("--phase", v, "at most 64 phases");
	if (!colon || (size_t)(colon - v) >= sizeof(rate))
		return bad("--phase", v, "expected RATE:SECONDS");
	snprintf(rate, sizeof(rate), "%.*s", (int)(colon - v), v);
	if (parse_num("--phase rate", rate, 0, 1e7, &p->rate) ||
	    parse_num("--phase seconds", colon + 1, 0.001, LG_MAX_SECONDS, &p->seconds))
		return -EINVAL;
	o->nphases++;
	return 0;
}

/* http://HOST:PORT/PATH with HOST an IPv4 address or [IPv6]. */
static int parse_url(struct lg_opts *o, const char *url)
{
	const char *h = url + 7, *slash, *colon;
	char host[128];
	long port;

	if (strncmp(url, "http://", 7))
		return bad("--url", url, "must start with http:// (no TLS)");
	slash = strchr(h, '/');
	snprintf(o->path, sizeof(o->path), "%s", slash ? slash : "/v1/events");
	snprintf(host, sizeof(host), "%.*s", (int)(slash ? slash - h : (long)strlen(h)), h);
	colon = strrchr(host, ':');
	if (!colon || (host[0] == '[' && colon < strchr(host, ']')))
		return bad("--url", url, "needs an explicit :PORT");
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return bad("--url", url, "port out of range (1-65535)");
	*strrchr(host, ':') = '\0';
	snprintf(o->host, sizeof(o->host), "%s", host);
	memset(&o->addr, 0, sizeof(o->addr));
	if (host[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&o->addr;

		host[strlen(host) - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		o->addrlen = sizeof(*a6);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1)
			return 0;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&o->addr;

		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		o->addrlen = sizeof(*a4);
		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1)
			return 0;
	}
	return bad("--url", url, "host must be an IPv4 address or [IPv6] address (no DNS)");
}

static bool is_loopback(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* Everything that needs all flags seen. */
static int check(struct lg_opts *o, bool have_url, double rate, double duration, const char *type,
		 const char *prio)
{
	char one[200];
	double total = 0;

	if (!have_url)
		return bad("--port", "", "give --port P or --url http://HOST:PORT/PATH");
	if (!o->allow_remote && !is_loopback(&o->addr))
		return bad("--url", o->host,
			   "not a loopback address (--allow-remote for a test's "
			   "network namespace)");
	if (duration > 0) {
		if (o->nphases)
			return bad("--duration", "", "use either --duration or --phase");
		o->phases[o->nphases++] = (struct lg_phase){rate, duration};
	} else if (!o->nphases && o->count) {
		o->phases[o->nphases++] = (struct lg_phase){rate, LG_MAX_SECONDS};
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
	if (o->nmix && (type || prio))
		return bad("--type", type ? type : prio, "use either --mix or --type/--priority");
	if (o->nmix)
		return 0;
	snprintf(one, sizeof(one), "%s:%s:1", prio ? prio : "tenant", type ? type : "lead.created");
	return add_mix(o, one, strlen(one));
}

int lg_opts_parse(struct lg_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"url", 1, 0, 'u'},	   {"port", 1, 0, 'p'},		{"connections", 1, 0, 'c'},
	    {"rate", 1, 0, 'r'},   {"duration", 1, 0, 'd'},	{"phase", 1, 0, 'P'},
	    {"count", 1, 0, 'n'},  {"key", 1, 0, 'k'},		{"mix", 1, 0, 'm'},
	    {"prefix", 1, 0, 'x'}, {"dup-rate", 1, 0, 'D'},	{"payload-bytes", 1, 0, 'b'},
	    {"drain", 1, 0, 'w'},  {"log", 1, 0, 'l'},		{"timeline", 0, 0, 't'},
	    {"json", 0, 0, 'j'},   {"allow-remote", 0, 0, 'R'}, {"help", 0, 0, 'h'},
	    {"type", 1, 0, 'T'},   {"priority", 1, 0, 'Y'},	{0},
	};
	double rate = 0, duration = 0, v;
	const char *type = NULL, *prio = NULL;
	bool have_url = false;
	char url[64];
	int c, ret = 0;

	memset(o, 0, sizeof(*o));
	o->connections = 8;
	o->drain_s = 5;
	snprintf(o->prefix, sizeof(o->prefix), "lg%d", (int)getpid());
	opterr = 0;
	while (!ret && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
			ret = parse_url(o, optarg);
			have_url = !ret;
			break;
		case 'p':
			ret = parse_num("--port", optarg, 1, 65535, &v);
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/events", (int)v);
			ret = ret ?: parse_url(o, url);
			have_url = !ret;
			break;
		case 'c':
			ret = parse_num("--connections", optarg, 1, 4096, &v);
			o->connections = (int)v;
			break;
		case 'r':
			ret = parse_num("--rate", optarg, 0, 1e7, &rate);
			break;
		case 'd':
			ret = parse_num("--duration", optarg, 0.001, LG_MAX_SECONDS, &duration);
			break;
		case 'P':
			ret = add_phase(o, optarg);
			break;
		case 'n':
			ret = parse_num("--count", optarg, 1, 1e9, &v);
			o->count = (uint64_t)v;
			break;
		case 'k':
			ret = add_key(o, optarg);
			break;
		case 'm':
			for (const char *s = optarg, *e; !ret && *s; s = *e ? e + 1 : e) {
				e = s + strcspn(s, ",");
				ret = add_mix(o, s, (size_t)(e - s));
			}
			break;
		case 'x':
			if (!*optarg || strlen(optarg) >= sizeof(o->prefix) ||
			    strpbrk(optarg, "\"\\"))
				ret = bad("--prefix", optarg, "1-63 characters, no quotes");
			else
				snprintf(o->prefix, sizeof(o->prefix), "%s", optarg);
			break;
		case 'D':
			ret = parse_num("--dup-rate", optarg, 0, 1, &o->dup_rate);
			break;
		case 'b':
			ret = parse_num("--payload-bytes", optarg, 0, 1 << 20, &v);
			o->payload_bytes = (int)v;
			break;
		case 'w':
			ret = parse_num("--drain", optarg, 0, 600, &o->drain_s);
			break;
		case 'l':
			snprintf(o->log_path, sizeof(o->log_path), "%s", optarg);
			break;
		case 't':
			o->timeline = true;
			break;
		case 'T':
			type = optarg;
			break;
		case 'Y':
			prio = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'R':
			o->allow_remote = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			ret = bad(argv[optind - 1], "",
				  "unknown option or missing value (see --help)");
		}
	}
	if (!ret && optind < argc)
		ret = bad(argv[optind], "", "unexpected argument (see --help)");
	return ret ?: check(o, have_url, rate, duration, type, prio);
}
