// SPDX-License-Identifier: MIT
/* config.c -- sluiced settings: command-line flags and the same keys in a config file
 *
 * Parsing runs in three steps over one option table: defaults, the flags (each recorded in
 * a "seen" bitmap), then the config file named by --config, which skips every key a flag
 * already set. Every value goes through the same setter, which checks ranges and names the
 * offending input in its message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ingress/loop.h"
#include "lib/log.h"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL };

struct opt {
	const char *name, *arg, *help;
	enum opt_type type;
	size_t off, size;
	long long min, max;
	const char *def;
};

#define S(f) offsetof(struct sluiced_cfg, f), sizeof(((struct sluiced_cfg *)0)->f)

static const struct opt opts[] = {
    {"config", "FILE", "read settings from FILE (INI, same keys as the flags)", OPT_STR, S(config),
     0, 0, ""},
    {"listen", "ADDR:PORT", "HTTP listen address", OPT_STR, S(listen), 0, 0, "0.0.0.0:8080"},
    {"threads", "N", "ingress threads, 0 = one per CPU", OPT_INT, S(threads), 0, 256, "0"},
    {"tenants", "FILE", "tenants file (format below)", OPT_STR, S(tenants), 0, 0, ""},
    {"iface", "IF", "attach XDP admission to IF (without it: limits in userspace only)", OPT_STR,
     S(iface), 0, 0, ""},
    {"pin-dir", "DIR", "BPF pin directory", OPT_STR, S(pin_dir), 0, 0, "/sys/fs/bpf/sluice"},
    {"journal-dir", "DIR", "durable journal directory (events are 202'd once written there)",
     OPT_STR, S(journal_dir), 0, 0, ""},
    {"pg", "CONNINFO", "PostgreSQL connection string (readiness check)", OPT_STR, S(pg), 0, 0, ""},
    {"redis", "HOST:PORT", "Redis: duplicate fast path at intake, upstream fallback cache", OPT_STR,
     S(redis), 0, 0, ""},
    {"log-level", "LEVEL", "debug, info, warn or error", OPT_STR, S(log_level), 0, 0, "info"},
    {"dry-run-limits", NULL, "count what the request limits would do, enforce nothing", OPT_BOOL,
     S(dry_run_limits), 0, 1, "0"},
    {"max-body", "BYTES", "largest request body (413 above)", OPT_INT, S(max_body), 1, 1LL << 30,
     "1048576"},
    {"max-conns", "N", "open connections; more are refused at accept and counted", OPT_INT,
     S(max_conns), 1, 10000000, "65536"},
    {"max-header-bytes", "BYTES", "request line + headers (431 above)", OPT_INT,
     S(max_header_bytes), 256, 1 << 20, "16384"},
    {"max-line", "BYTES", "one request or header line (431 above)", OPT_INT, S(max_line), 64,
     1 << 20, "8192"},
    {"max-headers", "N", "header fields per request (431 above)", OPT_INT, S(max_headers), 1, 128,
     "64"},
    {"header-timeout-ms", "MS", "time to receive a whole request (408)", OPT_INT,
     S(header_timeout_ms), 10, 3600000, "10000"},
    {"idle-timeout-ms", "MS", "keep-alive idle time before closing", OPT_INT, S(idle_timeout_ms),
     10, 86400000, "60000"},
    {"send-timeout-ms", "MS", "time a client may take to read a response", OPT_INT,
     S(send_timeout_ms), 10, 3600000, "10000"},
    {"drain-timeout-ms", "MS", "on SIGTERM/SIGINT: time to finish in-flight requests", OPT_INT,
     S(drain_timeout_ms), 0, 3600000, "10000"},
    {"deny-after", "N", "consecutive 429s before the tenant's source is denied (0 = never)",
     OPT_INT, S(deny_after), 0, 100000000, "0"},
    {"deny-secs", "S", "how long such a deny lasts", OPT_INT, S(deny_secs), 1, 86400 * 365, "60"},
    {"queue-max-entries", "N", "unacknowledged events before the queue is full (503), 0 = none",
     OPT_INT, S(queue_max_entries), 0, 1LL << 40, "0"},
    {"queue-max-bytes", "BYTES", "unacknowledged bytes before the queue is full (503), 0 = none",
     OPT_INT, S(queue_max_bytes), 0, 1LL << 50, "0"},
    {"journal-segment-bytes", "BYTES",
     "journal segment size; fully acknowledged segments are deleted, so smaller ones give "
     "disk back sooner",
     OPT_INT, S(journal_segment_bytes), 65536, 1LL << 40, "67108864"},
    {"retry-after-503", "S", "Retry-After seconds when the queue refuses an event", OPT_INT,
     S(retry_after_503), 1, 3600, "1"},
    {"role", "ROLE", "all (ingress + worker), ingress, or worker", OPT_STR, S(role), 0, 0, "all"},
    {"routes", "FILE", "routes file: event type -> class, steps, pools, upstreams (README)",
     OPT_STR, S(routes), 0, 0, ""},
    {"max-messages", "N", "worker: finish in-flight work and exit 0 after N events, 0 = never",
     OPT_INT, S(max_messages), 0, 1LL << 50, "0"},
    {"max-age", "DURATION", "worker: finish in-flight work and exit 0 after running this long",
     OPT_STR, S(max_age), 0, 0, ""},
    {"overload-period-ms", "MS", "overload controller sampling period", OPT_INT,
     S(overload_period_ms), 10, 60000, "250"},
    {"thin-lag-ms", "MS", "THIN when the normal class waits longer than this", OPT_INT,
     S(thin_lag_ms), 1, 86400000, "30000"},
    {"emergency-lag-ms", "MS", "EMERGENCY when the critical class waits longer than this", OPT_INT,
     S(emergency_lag_ms), 1, 86400000, "60000"},
    {"overload-hold-ms", "MS", "lag under half the threshold this long before stepping down",
     OPT_INT, S(overload_hold_ms), 0, 86400000, "30000"},
    {"overload-dry-run", NULL, "log what the overload controller would do, do nothing", OPT_BOOL,
     S(overload_dry_run), 0, 1, "0"},
    {"alert-url", "URL", "POST PagerDuty Events v2 alerts here on EMERGENCY enter/exit", OPT_STR,
     S(alert_url), 0, 0, ""},
    {"alert-key", "KEY", "PagerDuty routing key for --alert-url", OPT_STR, S(alert_key), 0, 0, ""},
    {"node", "NAME", "this node's name in alerts (default: the host name)", OPT_STR, S(node), 0, 0,
     ""},
    {"uring-off", "LIST",
     "io_uring features to leave unused, as on older kernels: buf_ring,multishot_accept,"
     "multishot_recv or all",
     OPT_STR, S(uring_off), 0, 0, ""},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int set_opt(struct sluiced_cfg *c, const struct opt *o, const char *v, const char *where,
		   char *err, size_t errlen)
{
	char *p = (char *)c + o->off, *end;
	long long n;

	if (o->type == OPT_STR) {
		if (strlen(v) >= o->size) {
			snprintf(err, errlen, "sluiced: %s%s: value too long (max %zu)", where,
				 o->name, o->size - 1);
			return -EINVAL;
		}
		strcpy(p, v);
		return 0;
	}
	if (o->type == OPT_BOOL && (!strcmp(v, "true") || !strcmp(v, "yes")))
		v = "1";
	else if (o->type == OPT_BOOL && (!strcmp(v, "false") || !strcmp(v, "no")))
		v = "0";
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < o->min || n > o->max) {
		snprintf(err, errlen, "sluiced: %s%s %s: expected %s %lld..%lld", where, o->name, v,
			 o->type == OPT_BOOL ? "a boolean" : "a whole number", o->min, o->max);
		return -EINVAL;
	}
	if (o->type == OPT_BOOL)
		*(bool *)p = n;
	else if (o->size == sizeof(int))
		*(int *)p = (int)n;
	else
		*(long long *)p = n;
	return 0;
}

void config_usage(FILE *out)
{
	fprintf(out, "Usage: sluiced [OPTIONS]\n"
		     "Sluice ingress daemon: HTTP/1.1 on io_uring, tenant auth, request credits,\n"
		     "durable enqueue. Every option can also be set in --config FILE as\n"
		     "`name = value`; flags win over the file.\n\nOptions:\n");
	for (size_t i = 0; i < NOPTS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
			 opts[i].arg ? opts[i].arg : "");
		fprintf(out, "  %-30s %s", left, opts[i].help);
		if (opts[i].def[0] && opts[i].type != OPT_BOOL)
			fprintf(out, " (default %s)", opts[i].def);
		fputc('\n', out);
	}
	fprintf(out,
		"  %-30s %s\n\nSignals: SIGHUP reloads the tenants and routes files (a broken "
		"file is refused, the old one stays);\nSIGTERM/SIGINT drain within "
		"--drain-timeout-ms and exit 0.\n",
		"--help", "this text");
	fprintf(out,
		"\nTenants file (INI, one section per tenant, key and source may repeat):\n"
		"  [acme]\n"
		"  key = <SHA-256 hex of an API key>   ; sluicectl key hash < keyfile\n"
		"  class = critical                    ; critical | normal | low (default normal)\n"
		"  req_rate = 1000                     ; requests/s (absent or 0: unlimited)\n"
		"  req_burst = 10000                   ; credits banked when idle (default: 1 s)\n"
		"  crit_rate = 100                     ; critical events/s, beyond: demoted\n"
		"  crit_burst = 100\n"
		"  syn_rate, syn_burst, pkt_rate, pkt_burst ; XDP limits (with --iface)\n"
		"  source = 203.0.113.7                ; address or prefix (v4/v6)\n");
}

struct file_ctx {
	struct sluiced_cfg *c;
	const bool *seen;
	char *err;
	size_t errlen;
	char msg[512];
};

static int on_file_key(void *user, const char *section, const char *name, const char *value)
{
	struct file_ctx *f = user;

	if (f->msg[0])
		return 0;
	for (size_t i = 0; i < NOPTS; i++) {
		if (strcmp(opts[i].name, name))
			continue;
		if (i == 0 || f->seen[i]) /* --config itself, or a flag overrides the file */
			return 1;
		return set_opt(f->c, &opts[i], value, "", f->msg, sizeof(f->msg)) ? 0 : 1;
	}
	snprintf(f->msg, sizeof(f->msg), "unknown key '%s' (see sluiced --help)", name);
	return 0;
}

static int load_file(struct sluiced_cfg *c, const bool *seen, char *err, size_t errlen)
{
	struct file_ctx f = {.c = c, .seen = seen};
	int line = ini_parse(c->config, on_file_key, &f);

	if (line < 0) {
		snprintf(err, errlen, "sluiced: --config %s: cannot read: %s", c->config,
			 strerror(line == -1 ? errno : ENOMEM));
		return -EINVAL;
	}
	if (line > 0) {
		/* "sluiced: " from set_opt is noise inside a file:line message */
		const char *m = strncmp(f.msg, "sluiced: ", 9) ? f.msg : f.msg + 9;

		snprintf(err, errlen, "sluiced: %s:%d: %s", c->config, line,
			 f.msg[0] ? m : "syntax error");
		return -EINVAL;
	}
	return 0;
}

int config_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *len, char *err,
			size_t errlen)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	memset(addr, 0, sizeof(*addr));
	if (!colon || (size_t)(colon - s) >= sizeof(host)) {
		snprintf(err, errlen, "sluiced: --listen %s: expected ADDR:PORT", s);
		return -EINVAL;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535) {
		snprintf(err, errlen, "sluiced: --listen %s: port out of range (0-65535)", s);
		return -EINVAL;
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;

		host[strlen(host) - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1)
			return 0;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)addr;

		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1)
			return 0;
	}
	snprintf(err, errlen, "sluiced: --listen %s: not an IPv4 address or [IPv6] address", s);
	return -EINVAL;
}

static int scan_flags(struct sluiced_cfg *c, int argc, char **argv, bool *seen, char *err,
		      size_t errlen)
{
	struct option lopts[NOPTS + 2];
	int o, idx;

	for (size_t i = 0; i < NOPTS; i++)
		lopts[i] = (struct option){
		    opts[i].name, opts[i].type == OPT_BOOL ? optional_argument : required_argument,
		    NULL, (int)i};
	lopts[NOPTS] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[NOPTS + 1] = (struct option){0};
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:h", lopts, &idx)) != -1) {
		if (o == 'h')
			return 1;
		if (o == '?' || o == ':') {
			snprintf(err, errlen, "sluiced: %s: %s (see sluiced --help)",
				 argv[optind - 1], o == ':' ? "needs a value" : "unknown option");
			return -EINVAL;
		}
		seen[o] = true;
		if (set_opt(c, &opts[o], optarg ? optarg : "1", "--", err, errlen))
			return -EINVAL;
	}
	if (optind < argc) {
		snprintf(err, errlen, "sluiced: %s: unexpected argument (see sluiced --help)",
			 argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int config_parse(struct sluiced_cfg *c, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	bool seen[NOPTS] = {false};
	int r;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NOPTS; i++)
		if (set_opt(c, &opts[i], opts[i].def, "default --", err, errlen))
			return -EINVAL;
	/* flags first (they record what they set), then the file fills in the rest */
	r = scan_flags(c, argc, argv, seen, err, errlen);
	if (r == 1)
		config_usage(out);
	if (r)
		return r;
	if (c->config[0] && load_file(c, seen, err, errlen))
		return -EINVAL;
	if (log_set_level_name(c->log_level)) {
		snprintf(err, errlen,
			 "sluiced: --log-level %s: expected debug, info, warn or error",
			 c->log_level);
		return -EINVAL;
	}
	if (strcmp(c->role, "all") && strcmp(c->role, "ingress") && strcmp(c->role, "worker")) {
		snprintf(err, errlen, "sluiced: --role %s: expected all, ingress or worker",
			 c->role);
		return -EINVAL;
	}
	if (c->max_age[0] && config_parse_duration(c->max_age, &c->max_age_ns)) {
		snprintf(err, errlen,
			 "sluiced: --max-age %s: expected a duration such as 90s, 30m, 6h or 2d",
			 c->max_age);
		return -EINVAL;
	}
	if (loop_features_parse(c->uring_off, &c->uring_off_bits)) {
		snprintf(err, errlen,
			 "sluiced: --uring-off %s: expected buf_ring, multishot_accept, "
			 "multishot_recv or all, comma-separated",
			 c->uring_off);
		return -EINVAL;
	}
	if (!c->node[0] && gethostname(c->node, sizeof(c->node) - 1))
		snprintf(c->node, sizeof(c->node), "node");
	return config_parse_listen(c->listen, &c->addr, &c->addrlen, err, errlen);
}

int config_parse_duration(const char *s, uint64_t *ns)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {{"ms", 1000000ULL},      {"s", 1000000000ULL},	{"m", 60000000000ULL},
		     {"h", 3600000000000ULL}, {"d", 86400000000000ULL}, {"", 1000000000ULL}};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].suffix)) {
			if (v * (double)units[i].mult > 1.8e19)
				return -EINVAL;
			*ns = (uint64_t)(v * (double)units[i].mult);
			return 0;
		}
	}
	return -EINVAL;
}
