// SPDX-License-Identifier: MIT
/* args.c -- sluicectl argument values: rates, durations, addresses, prefixes, classes
 *
 * Every parser takes the name of what it parses (an option such as "--syn-rate" or a
 * positional such as "ADDR") and, on bad input, ends the process with one line that names
 * that argument, repeats the value and says what would be valid (exit 2). Parsers never
 * accept a prefix of the input: "10x" is not 10. Rates become GCRA intervals
 * (1e9 / rate ns); addresses are stored IPv4-mapped as the XDP program sees them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/array_size.h"
#include "lib/clock.h"

static bool json_errors;

void ctl_json_errors(bool on)
{
	json_errors = on;
}

/* One error line on stderr, or with --json one {"error":code,"detail":...} on stdout (where
 * a script reading --json output looks). */
static void vmsg(const char *code, const char *fmt, va_list ap)
{
	char msg[1024];
	json_t *j;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!json_errors) {
		fprintf(stderr, "sluicectl: %s\n", msg);
		return;
	}
	j = json_pack("{s:s, s:s}", "error", code, "detail", msg);
	if (j)
		json_dumpf(j, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(j);
}

void ctl_bad_arg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("usage", fmt, ap);
	va_end(ap);
	exit(CTL_EXIT_USAGE);
}

int ctl_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("failed", fmt, ap);
	va_end(ap);
	return 1;
}

void ctl_die(const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(code, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Index of option name in the command's table. A name the table lacks is a bug in the
 * command's code, never bad input: abort, naming both, rather than read "not given". */
static int opt_index(const struct ctl_args *a, const char *name)
{
	const struct ctl_cmd *c = a->cmd;

	for (int i = 0; a->opts && a->opts[i].name; i++)
		if (!strcmp(a->opts[i].name, name))
			return i;
	fprintf(stderr,
		"sluicectl: internal error: `%s%s%s` reads option --%s, which its option table "
		"does not declare\n",
		c ? c->object : "?", c && c->verb ? " " : "", c && c->verb ? c->verb : "", name);
	abort();
}

const char *ctl_opt_get(const struct ctl_args *a, const char *name)
{
	int i = opt_index(a, name);

	return a->nval[i] ? a->val[i][a->nval[i] - 1] : NULL;
}

int ctl_opt_count(const struct ctl_args *a, const char *name)
{
	return a->nval[opt_index(a, name)];
}

const char *ctl_opt_nth(const struct ctl_args *a, const char *name, int n)
{
	int i = opt_index(a, name);

	return n < a->nval[i] ? a->val[i][n] : NULL;
}

__u64 ctl_parse_uint(const char *what, const char *s, __u64 min, __u64 max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v < min || v > max)
		ctl_bad_arg("%s %s: expected a whole number from %llu to %llu", what, s,
			    (unsigned long long)min, (unsigned long long)max);
	return v;
}

__u64 ctl_parse_rate(const char *what, const char *s)
{
	static const struct {
		const char *suffix;
		double per_s;
	} units[] = {{"", 1},	       {"/s", 1},	  {"/sec", 1}, {"/min", 1 / 60.0},
		     {"/m", 1 / 60.0}, {"/h", 1 / 3600.0}};
	char *end;
	double v;
	size_t i;

	if (!strcmp(s, "unlimited"))
		return 0;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0 || !isfinite(v))
		goto bad;
	for (i = 0; i < ARRAY_SIZE(units); i++) {
		double per_s = v * units[i].per_s;

		if (strcmp(end, units[i].suffix))
			continue;
		if (v == 0)
			return 0;
		if (per_s > 1e9 || 1e9 / per_s > 1e18)
			break;
		return (__u64)(1e9 / per_s + 0.5);
	}
bad:
	ctl_bad_arg("%s %s: expected a rate such as 1000, 1000/s, 60000/min or unlimited "
		    "(at most 1000000000/s, at least 1/h)",
		    what, s);
}

__u64 ctl_parse_duration(const char *what, const char *s)
{
	static const struct {
		const char *suffix;
		double ns;
	} units[] = {{"", 1e9},	  {"ns", 1},	 {"us", 1e3},	{"ms", 1e6},   {"s", 1e9},
		     {"m", 60e9}, {"min", 60e9}, {"h", 3600e9}, {"d", 86400e9}};
	char *end;
	double v;
	size_t i;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v <= 0 || !isfinite(v))
		goto bad;
	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (v * units[i].ns < 1 || v * units[i].ns > 1e18)
			break;
		return (__u64)(v * units[i].ns + 0.5);
	}
bad:
	ctl_bad_arg("%s %s: expected a positive duration such as 500ms, 30s, 5m or 1h", what, s);
}

__u32 ctl_parse_class(const char *what, const char *s)
{
	__u32 c;

	for (c = 0; c < SLUICE_CLASS_MAX; c++)
		if (!strcmp(s, ctl_class_name(c)))
			return c;
	ctl_bad_arg("%s %s: expected critical, normal or low", what, s);
}

/* 0 and the 16-byte form, or -1 when s is neither IPv4 nor IPv6. */
static int addr_from_string(const char *s, __u8 a[16], int *is_v4)
{
	struct in_addr v4;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		memset(a, 0, 10);
		a[10] = 0xff;
		a[11] = 0xff;
		memcpy(a + 12, &v4, 4);
		*is_v4 = 1;
		return 0;
	}
	*is_v4 = 0;
	return inet_pton(AF_INET6, s, a) == 1 ? 0 : -1;
}

void ctl_parse_addr(const char *what, const char *s, struct sluice_addr *out)
{
	int v4;

	if (addr_from_string(s, out->a, &v4))
		ctl_bad_arg("%s %s: expected an IPv4 or IPv6 address (10.0.0.1, 2001:db8::1)", what,
			    s);
}

void ctl_parse_cidr(const char *what, const char *s, struct sluice_lpm_key *out)
{
	char host[64], *slash;
	unsigned long len;
	char *end;
	int v4, i;

	snprintf(host, sizeof(host), "%s", s);
	slash = strchr(host, '/');
	if (slash)
		*slash = 0;
	if (strlen(s) >= sizeof(host) || addr_from_string(host, out->a, &v4))
		ctl_bad_arg("%s %s: expected ADDR/LEN such as 10.1.0.0/16 or 2001:db8::/32", what,
			    s);
	len = v4 ? 32 : 128;
	if (slash) {
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || len > (v4 ? 32u : 128u))
			ctl_bad_arg("%s %s: prefix length must be 0-%d for %s", what, s,
				    v4 ? 32 : 128, v4 ? "IPv4" : "IPv6");
	}
	out->prefixlen = (__u32)len + (v4 ? 96 : 0);
	for (i = 0; i < 16; i++) {
		int keep = (int)out->prefixlen - i * 8;

		if (keep <= 0)
			out->a[i] = 0;
		else if (keep < 8)
			out->a[i] &= (__u8)(0xff << (8 - keep));
	}
}

const char *ctl_class_name(__u32 class)
{
	static const char *const names[] = {"critical", "normal", "low"};

	return class < SLUICE_CLASS_MAX ? names[class] : "invalid";
}

const char *ctl_verdict_name(int verdict)
{
	static const char *const names[] = {"other", "pass",	  "deny",
					    "shed",  "syn_limit", "pkt_limit"};

	return verdict >= 0 && verdict < SLUICE_V_MAX ? names[verdict] : "invalid";
}

const char *ctl_shed_name(__u32 level)
{
	static const char *const names[] = {"normal", "thin", "emergency"};

	return level <= SLUICE_SHED_EMERGENCY ? names[level] : "invalid";
}

static bool is_v4_mapped(const __u8 a[16])
{
	static const __u8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return !memcmp(a, prefix, sizeof(prefix));
}

const char *ctl_format_addr(const __u8 a[16], char *buf, size_t len)
{
	if (is_v4_mapped(a))
		inet_ntop(AF_INET, a + 12, buf, len);
	else
		inet_ntop(AF_INET6, a, buf, len);
	return buf;
}

const char *ctl_format_cidr(const struct sluice_lpm_key *k, char *buf, size_t len)
{
	char addr[48];
	bool v4 = is_v4_mapped(k->a) && k->prefixlen >= 96;

	ctl_format_addr(k->a, addr, sizeof(addr));
	if (!v4 && is_v4_mapped(k->a))
		inet_ntop(AF_INET6, k->a, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, v4 ? k->prefixlen - 96 : k->prefixlen);
	return buf;
}

double ctl_rate_per_s(__u64 interval_ns)
{
	return interval_ns ? 1e9 / (double)interval_ns : 0;
}

const char *ctl_format_rate(__u64 interval_ns, char *buf, size_t len)
{
	double r = ctl_rate_per_s(interval_ns);

	if (!interval_ns)
		snprintf(buf, len, "unlimited");
	else if (r >= 1 && fabs(r - round(r)) < 1e-6 * r)
		snprintf(buf, len, "%.0f/s", r);
	else if (r * 60 >= 1 && fabs(r * 60 - round(r * 60)) < 1e-6 * r * 60)
		snprintf(buf, len, "%.0f/min", r * 60);
	else
		snprintf(buf, len, "%.3g/s", r);
	return buf;
}

const char *ctl_format_duration(__u64 ns, char *buf, size_t len)
{
	if (ns < 1000000ULL)
		snprintf(buf, len, "%lluus", (unsigned long long)(ns / 1000));
	else if (ns < 10000000000ULL)
		snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000));
	else if (ns < 600000000000ULL)
		snprintf(buf, len, "%llus", (unsigned long long)(ns / 1000000000ULL));
	else
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(ns / 60000000000ULL),
			 (unsigned long long)(ns / 1000000000ULL % 60));
	return buf;
}

void ctl_json_print(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(j);
}
