// SPDX-License-Identifier: MIT
/* config.c -- sluiced settings: command-line flags and the same keys in a config file
 *
 * Parsing runs in three steps over one option table (lib/confparse): defaults, the flags
 * (each recorded in a "seen" bitmap), then the config file named by --config, which skips
 * every key a flag already set. Every value goes through the same confparse setter, which
 * checks ranges and names the offending input in its message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ingress/loop_features.h"
#include "lib/array_size.h"
#include "lib/confparse.h"
#include "lib/log.h"
#include "sluice/abi.h"
#include "work/routes.h"

#define SHARES_NORMAL	 "critical=70,normal=25,low=5"
#define SHARES_EMERGENCY "critical=100,normal=0,low=0"
#define MAX_WAIT	 "critical=0,normal=5s,low=30s"

#define S(f) CONFPARSE_FIELD(struct sluiced_cfg, f)

static const char *const queue_kinds[] = {"journal", "kafka", NULL};

/* --kafka kafka.KEY=VALUE: appends one librdkafka property (repeatable). */
static int set_kafka_conf(void *obj, const char *value, char *why, size_t whylen)
{
	return kafka_opts_add_conf(obj, value, why, whylen);
}

static const struct confparse_opt opts[] = {
    {"config", "FILE", "read settings from FILE (INI, same keys as the flags)", CONFPARSE_STR,
     S(config), 0, 0, .def = ""},
    {"listen", "ADDR:PORT", "HTTP listen address: the API (/v1/events) and /healthz", CONFPARSE_STR,
     S(listen), 0, 0, .def = "0.0.0.0:8080"},
    {"admin-listen", "ADDR:PORT",
     "admin listen address: /metrics, /readyz and /healthz (the public port answers 404 for "
     "the first two); off = none",
     CONFPARSE_STR, S(admin_listen), 0, 0, .def = "127.0.0.1:9464"},
    {"threads", "N", "ingress threads, 0 = one per CPU", CONFPARSE_INT, S(threads), 0, 256,
     .def = "0"},
    {"tenants", "FILE", "tenants file (format below)", CONFPARSE_STR, S(tenants), 0, 0, .def = ""},
    {"iface", "IF",
     "attach XDP admission to IF, or addr:IP for the interface holding IP (one manifest for "
     "every node); without it: limits in userspace only",
     CONFPARSE_STR, S(iface), 0, 0, .def = ""},
    {"pin-dir", "DIR", "BPF pin directory", CONFPARSE_STR, S(pin_dir), 0, 0,
     .def = "/sys/fs/bpf/sluice"},
    {"journal-dir", "DIR", "durable journal directory (events are 202'd once written there)",
     CONFPARSE_STR, S(journal_dir), 0, 0, .def = ""},
    {"pg", "CONNINFO", "PostgreSQL connection string (readiness check)", CONFPARSE_STR, S(pg), 0, 0,
     .def = ""},
    {"redis", "HOST:PORT", "Redis: duplicate fast path at intake, upstream fallback cache",
     CONFPARSE_STR, S(redis), 0, 0, .def = ""},
    {"redis-user", "NAME", "Redis ACL user for AUTH (default: the default user)", CONFPARSE_STR,
     S(redis_user), 0, 0, .def = ""},
    {"redis-password-file", "FILE",
     "Redis AUTH password, first line of FILE (else $SLUICE_REDIS_PASSWORD; neither: no AUTH)",
     CONFPARSE_STR, S(redis_password_file), 0, 0, .def = ""},
    {"cluster-redis", "HOST:PORT",
     "Redis shared by the cluster: unique --node names, tenant rates split across the nodes "
     "(leases); without it every node enforces the full rates alone",
     CONFPARSE_STR, S(cluster_redis), 0, 0, .def = ""},
    {"cluster-redis-user", "NAME", "Redis ACL user for --cluster-redis (default: the default user)",
     CONFPARSE_STR, S(cluster_redis_user), 0, 0, .def = ""},
    {"cluster-redis-password-file", "FILE",
     "--cluster-redis AUTH password, first line of FILE (else $SLUICE_CLUSTER_REDIS_PASSWORD)",
     CONFPARSE_STR, S(cluster_redis_password_file), 0, 0, .def = ""},
    {"lease-period-ms", "MS", "cluster: report demand and renew shares this often", CONFPARSE_INT,
     S(lease_period_ms), 10, 60000, .def = "250"},
    {"lease-grace-ms", "MS",
     "cluster: Redis unreachable this long keeps the last shares, then rate / nodes last seen",
     CONFPARSE_INT, S(lease_grace_ms), 0, 3600000, .def = "2000"},
    {"log-level", "LEVEL", "debug, info, warn or error", CONFPARSE_STR, S(log_level), 0, 0,
     .def = "info"},
    {"dry-run-limits", NULL, "count what the request limits would do, enforce nothing",
     CONFPARSE_BOOL, S(dry_run_limits), 0, 1, .def = "0"},
    {"max-body", "BYTES", "largest request body (413 above)", CONFPARSE_INT, S(max_body), 1,
     1LL << 30, .def = "1048576"},
    {"max-conns", "N",
     "open connections; more are refused at accept and counted; lowered to fit RLIMIT_NOFILE",
     CONFPARSE_INT, S(max_conns), 1, 10000000, .def = "65536"},
    {"max-conns-per-source", "N",
     "open connections from one address, 0 = no limit; a tenant's configured sources are "
     "exempt (set 0 behind a proxy that hides client addresses)",
     CONFPARSE_INT, S(max_conns_per_source), 0, 10000000, .def = "256"},
    {"max-header-bytes", "BYTES", "request line + headers (431 above)", CONFPARSE_INT,
     S(max_header_bytes), 256, 1 << 20, .def = "16384"},
    {"max-line", "BYTES", "one request or header line (431 above)", CONFPARSE_INT, S(max_line), 64,
     1 << 20, .def = "8192"},
    {"max-headers", "N", "header fields per request (431 above)", CONFPARSE_INT, S(max_headers), 1,
     128, .def = "64"},
    {"header-timeout-ms", "MS",
     "time to receive a whole request (408); a new connection silent this long is closed",
     CONFPARSE_INT, S(header_timeout_ms), 10, 3600000, .def = "10000"},
    {"idle-timeout-ms", "MS", "keep-alive idle time before closing", CONFPARSE_INT,
     S(idle_timeout_ms), 10, 86400000, .def = "60000"},
    {"send-timeout-ms", "MS", "time a client may take to read a response", CONFPARSE_INT,
     S(send_timeout_ms), 10, 3600000, .def = "10000"},
    {"drain-timeout-ms", "MS", "on SIGTERM/SIGINT: time to finish in-flight requests",
     CONFPARSE_INT, S(drain_timeout_ms), 0, 3600000, .def = "10000"},
    {"deny-after", "N",
     "consecutive 429s before the source is denied, if it is the tenant's alone (0 = never)",
     CONFPARSE_INT, S(deny_after), 0, 100000000, .def = "0"},
    {"deny-secs", "S", "how long such a deny lasts", CONFPARSE_INT, S(deny_secs), 1, 86400 * 365,
     .def = "60"},
    {"queue-max-entries", "N", "unacknowledged events before the queue is full (503), 0 = none",
     CONFPARSE_INT, S(queue_max_entries), 0, 1LL << 40, .def = "0"},
    {"queue-max-bytes", "BYTES",
     "unacknowledged bytes before the queue is full (503), 0 = none; -1 = half the journal "
     "filesystem's free space at start, at most 256 GiB and never below the backlog found there",
     CONFPARSE_INT, S(queue_max_bytes), -1, 1LL << 50, .def = "-1"},
    {"journal-segment-bytes", "BYTES",
     "journal segment size; fully acknowledged segments are deleted, so smaller ones give "
     "disk back sooner",
     CONFPARSE_INT, S(journal_segment_bytes), 65536, 1LL << 40, .def = "67108864"},
    {"queue", "KIND",
     "durable queue: journal (--journal-dir, this node) or kafka (--kafka-brokers; roles "
     "ingress and worker scale apart)",
     CONFPARSE_STR, S(queue), 0, 0, .def = "journal", .choices = queue_kinds},
    {"kafka-brokers", "LIST", "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]", CONFPARSE_STR,
     S(kafka.brokers), 0, 0, .def = ""},
    {"kafka-topic-prefix", "P", "class topics are P.critical, P.normal and P.low", CONFPARSE_STR,
     S(kafka.topic_prefix), 1, 0, .def = "sluice"},
    {"kafka", "kafka.KEY=VALUE",
     "a librdkafka property for every Kafka client (repeat; kafka.security.protocol=SSL)",
     CONFPARSE_FUNC, S(kafka), 0, 0, .set = set_kafka_conf},
    {"kafka-spill", NULL,
     "while no broker takes writes, 202 from the local journal (--journal-dir) and forward "
     "to Kafka in order once one does",
     CONFPARSE_BOOL, S(kafka.spill), 0, 1, .def = "0"},
    {"kafka-queue-max", "N", "records produced and not yet acknowledged by Kafka; more: 503",
     CONFPARSE_INT, S(kafka.queue_max), 1, 10000000, .def = "10000"},
    {"kafka-hot-share", "PERMILLE",
     "a tenant above this share of its class topic's rate is spread over partitions, 0 = never",
     CONFPARSE_INT, S(kafka.hot_share_permille), 0, 1000, .def = "0"},
    {"kafka-hot-salts", "K", "partitions a hot tenant is spread over", CONFPARSE_INT,
     S(kafka.hot_salts), 2, KAFKA_HOT_SALT_MAX, .def = "6"},
    {"kafka-group", "NAME", "consumer group of the worker role; its members share the partitions",
     CONFPARSE_STR, S(kafka_group), 1, 0, .def = "sluice-workers"},
    {"retry-after-503", "S", "Retry-After seconds when the queue refuses an event", CONFPARSE_INT,
     S(retry_after_503), 1, 3600, .def = "1"},
    {"role", "ROLE", "all (ingress + worker), ingress, or worker", CONFPARSE_STR, S(role), 0, 0,
     .def = "all"},
    {"routes", "FILE", "routes file: event type -> class, steps, pools, upstreams (README)",
     CONFPARSE_STR, S(routes), 0, 0, .def = ""},
    {"max-messages", "N", "worker: finish in-flight work and exit 0 after N events, 0 = never",
     CONFPARSE_INT, S(max_messages), 0, 1LL << 50, .def = "0"},
    {"max-age", "DURATION", "worker: finish in-flight work and exit 0 after running this long",
     CONFPARSE_STR, S(max_age), 0, 0, .def = ""},
    {"overload-period-ms", "MS", "overload controller sampling period", CONFPARSE_INT,
     S(overload_period_ms), 10, 60000, .def = "250"},
    {"thin-lag-ms", "MS", "THIN when the normal class waits longer than this", CONFPARSE_INT,
     S(thin_lag_ms), 1, 86400000, .def = "30000"},
    {"emergency-lag-ms", "MS", "EMERGENCY when the critical class waits longer than this",
     CONFPARSE_INT, S(emergency_lag_ms), 1, 86400000, .def = "60000"},
    {"overload-hold-ms", "MS", "lag under half the threshold this long before stepping down",
     CONFPARSE_INT, S(overload_hold_ms), 0, 86400000, .def = "30000"},
    {"overload-dry-run", NULL, "log what the overload controller would do, do nothing",
     CONFPARSE_BOOL, S(overload_dry_run), 0, 1, .def = "0"},
    {"controller-lease-ms", "MS",
     "cluster: the overload controller's lease; a dead holder's decision expires and a standby "
     "worker takes over after it",
     CONFPARSE_INT, S(controller_lease_ms), 100, 600000, .def = "2000"},
    {"shares-normal", "SHARES", "class shares of every pool at NORMAL, percent adding up to 100",
     CONFPARSE_STR, S(shares_normal), 0, 0, .def = SHARES_NORMAL},
    {"shares-thin", "SHARES", "class shares at THIN (low is paused there)", CONFPARSE_STR,
     S(shares_thin), 0, 0, .def = SHARES_NORMAL},
    {"shares-emergency", "SHARES",
     "class shares at EMERGENCY; a class at 0 gets only what the others leave", CONFPARSE_STR,
     S(shares_emergency), 0, 0, .def = SHARES_EMERGENCY},
    {"class-max-wait", "WAITS",
     "aging: a class with work waiting is served at least once per this time (0: never); "
     "a paused class waits",
     CONFPARSE_STR, S(class_max_wait), 0, 0, .def = MAX_WAIT},
    {"alert-url", "URL", "POST PagerDuty Events v2 alerts here on EMERGENCY enter/exit",
     CONFPARSE_STR, S(alert_url), 0, 0, .def = ""},
    {"alert-key", "KEY", "PagerDuty routing key for --alert-url", CONFPARSE_STR, S(alert_key), 0, 0,
     .def = ""},
    {"node", "NAME",
     "this node's name in alerts and the cluster, unique there (default: the host name)",
     CONFPARSE_STR, S(node), 0, 0, .def = ""},
    {"tls-listen", "ADDR:PORT",
     "HTTPS listen address (beside --listen; needs --tls-cert/--tls-key)", CONFPARSE_STR,
     S(tls_listen), 0, 0, .def = ""},
    {"tls-cert", "FILE", "PEM certificate chain, leaf first (reloaded on SIGHUP)", CONFPARSE_STR,
     S(tls_cert), 0, 0, .def = ""},
    {"tls-key", "FILE", "PEM private key of --tls-cert (unencrypted)", CONFPARSE_STR, S(tls_key), 0,
     0, .def = ""},
    {"tls-sni", "CERT:KEY,...", "more certificates, each served for the names it carries",
     CONFPARSE_STR, S(tls_sni), 0, 0, .def = ""},
    {"tls-client-ca", "FILE", "ask clients for certificates issued by this CA (mTLS tenants)",
     CONFPARSE_STR, S(tls_client_ca), 0, 0, .def = ""},
    {"tls-handshake-timeout-ms", "MS", "time from accept to a finished TLS handshake",
     CONFPARSE_INT, S(tls_handshake_timeout_ms), 10, 600000, .def = "10000"},
    {"tls-max-handshakes", "N", "TLS handshakes in progress at once; more are refused at accept",
     CONFPARSE_INT, S(tls_max_handshakes), 1, 10000000, .def = "4096"},
    {"tls-handshake-rate", "N",
     "TLS handshakes a source may start per second before it is denied for --deny-secs, 0 = off",
     CONFPARSE_INT, S(tls_handshake_rate), 0, 1000000, .def = "0"},
    {"tls-ticket-rotate-s", "S", "a new session ticket key this often (the last 3 are accepted)",
     CONFPARSE_INT, S(tls_ticket_rotate_s), 10, 86400 * 7, .def = "3600"},
    {"tls-watch-s", "S",
     "look at the certificate files this often and reload when they changed (a Kubernetes "
     "Secret update), 0 = on SIGHUP only",
     CONFPARSE_INT, S(tls_watch_s), 0, 86400, .def = "0"},
    {"uring-off", "LIST",
     "io_uring features to leave unused, as on older kernels: buf_ring,multishot_accept,"
     "multishot_recv or all",
     CONFPARSE_STR, S(uring_off), 0, 0, .def = ""},
};

static const struct confparse_table table = CONFPARSE_TABLE_OF(opts);

void config_usage(FILE *out)
{
	fprintf(out, "Usage: sluiced [OPTIONS]\n"
		     "Sluice ingress daemon: HTTP/1.1 on io_uring, tenant auth, request credits,\n"
		     "durable enqueue. Every option can also be set in --config FILE as\n"
		     "`name = value`; flags win over the file.\n\nOptions:\n");
	confparse_usage(out, &table);
	fprintf(out,
		"  %-30s %s\n  %-30s %s\n\nSignals: SIGHUP reloads the tenants and routes files (a "
		"broken file is refused, the old one stays);\nSIGTERM/SIGINT drain within "
		"--drain-timeout-ms and exit 0.\n",
		"--help", "this text", "--version", "print the version and exit");
	fprintf(out, "Exit status: 0 stopped cleanly, 1 failed at run time (restarting may help), "
		     "2 configuration error\n(restarting will not: fix it).\n");
	fprintf(out,
		"SIGHUP also reloads the TLS certificates (a bad or expired one is refused, the "
		"old one stays;\nestablished connections keep theirs).\n");
	fprintf(
	    out,
	    "\nTenants file (INI, one section per tenant, key and source may repeat):\n"
	    "  [acme]\n"
	    "  key = <SHA-256 hex of an API key>   ; sluicectl key hash < keyfile\n"
	    "  class = critical                    ; critical | normal | low (default normal);\n"
	    "                                      ; no event of the tenant gets a higher class\n"
	    "  req_rate = 1000                     ; requests/s (absent or 0: unlimited)\n"
	    "  req_burst = 10000                   ; credits banked when idle (default: 1 s)\n"
	    "  crit_rate = 100                     ; critical events/s, beyond: demoted\n"
	    "  crit_burst = 100\n"
	    "  syn_rate, syn_burst, pkt_rate, pkt_burst ; XDP limits (with --iface)\n"
	    "  source = 203.0.113.7                ; address or prefix (v4/v6)\n"
	    "  cert_sha256 = <SHA-256 of a client certificate> ; mTLS instead of a key\n");
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
	const struct confparse_opt *o = confparse_find(&table, name, NULL);
	char why[384];

	if (f->msg[0])
		return 0;
	if (!o) {
		snprintf(f->msg, sizeof(f->msg), "unknown key '%s' (see sluiced --help)", name);
		return 0;
	}
	if (o == &opts[0] || f->seen[o - opts]) /* --config itself, or a flag overrides the file */
		return 1;
	if (confparse_apply(o, f->c, value, why, sizeof(why))) {
		snprintf(f->msg, sizeof(f->msg), "%s %.60s: %s", name, value, why);
		return 0;
	}
	return 1;
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
		snprintf(err, errlen, "sluiced: %s:%d: %s", c->config, line,
			 f.msg[0] ? f.msg : "syntax error");
		return -EINVAL;
	}
	return 0;
}

static int parse_addr(const char *flag, const char *s, struct sockaddr_storage *addr,
		      socklen_t *len, char *err, size_t errlen)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	memset(addr, 0, sizeof(*addr));
	if (!colon || (size_t)(colon - s) >= sizeof(host)) {
		snprintf(err, errlen, "sluiced: --%s %s: expected ADDR:PORT", flag, s);
		return -EINVAL;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535) {
		snprintf(err, errlen, "sluiced: --%s %s: port out of range (0-65535)", flag, s);
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
	snprintf(err, errlen, "sluiced: --%s %s: not an IPv4 address or [IPv6] address", flag, s);
	return -EINVAL;
}

/* One "CLASS=VALUE" item of a class list: a share (0-100) or a duration. */
static int parse_class_item(const char *flag, const char *item, bool duration, uint64_t *out,
			    uint32_t *cls, const char *example, char *err, size_t errlen)
{
	const char *eq = strchr(item, '=');
	char name[16], *end;

	if (!eq || (size_t)(eq - item) >= sizeof(name)) {
		snprintf(err, errlen, "sluiced: %s %s: expected CLASS=VALUE (%s)", flag, item,
			 example);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(eq - item), item);
	if (routes_parse_class(name, cls)) {
		snprintf(err, errlen,
			 "sluiced: %s %s: unknown class, expected critical, normal or low (%s)",
			 flag, item, example);
		return -EINVAL;
	}
	if (duration) {
		if (!config_parse_duration(eq + 1, out))
			return 0;
		snprintf(err, errlen, "sluiced: %s %s: not a duration such as 500ms, 5s or 2m (%s)",
			 flag, item, example);
		return -EINVAL;
	}
	errno = 0;
	*out = strtoull(eq + 1, &end, 10);
	if (errno || end == eq + 1 || *end || eq[1] == '-') {
		snprintf(err, errlen, "sluiced: %s %s: not a number (%s)", flag, item, example);
		return -EINVAL;
	}
	if (*out > 100) {
		snprintf(err, errlen, "sluiced: %s %s: a share is a percent, 0-100 (%s)", flag,
			 item, example);
		return -EINVAL;
	}
	return 0;
}

/* "critical=70,normal=25,low=5" into out[class]; a class left out is 0, one named twice is
 * an error. Messages name the flag, the item and an example. */
static int parse_class_list(const char *flag, const char *s, bool duration, uint64_t out[3],
			    const char *example, char *err, size_t errlen)
{
	bool seen[3] = {false};
	char item[96];

	memset(out, 0, 3 * sizeof(*out));
	if (!*s) {
		snprintf(err, errlen, "sluiced: %s: empty, expected e.g. %s", flag, example);
		return -EINVAL;
	}
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, ",");
		uint32_t cls;
		uint64_t v;

		snprintf(item, sizeof(item), "%.*s", (int)n, p);
		if (parse_class_item(flag, item, duration, &v, &cls, example, err, errlen))
			return -EINVAL;
		if (seen[cls]) {
			snprintf(err, errlen, "sluiced: %s %s: class %s given twice (%s)", flag, s,
				 routes_class_name(cls), example);
			return -EINVAL;
		}
		seen[cls] = true;
		out[cls] = v;
		p += n + (p[n] == ',');
	}
	return 0;
}

/* --shares-{normal,thin,emergency} (each adding up to 100) and --class-max-wait. */
static int parse_class_settings(struct sluiced_cfg *c, char *err, size_t errlen)
{
	const struct {
		const char *flag, *value;
	} shares[3] = {{"--shares-normal", c->shares_normal},
		       {"--shares-thin", c->shares_thin},
		       {"--shares-emergency", c->shares_emergency}};
	uint64_t v[3];

	for (int st = 0; st < 3; st++) {
		if (parse_class_list(shares[st].flag, shares[st].value, false, v,
				     st == 2 ? SHARES_EMERGENCY : SHARES_NORMAL, err, errlen))
			return -EINVAL;
		if (v[0] + v[1] + v[2] != 100) {
			snprintf(err, errlen,
				 "sluiced: %s %s: shares add up to %llu, expected 100 (%s)",
				 shares[st].flag, shares[st].value,
				 (unsigned long long)(v[0] + v[1] + v[2]),
				 st == 2 ? SHARES_EMERGENCY : SHARES_NORMAL);
			return -EINVAL;
		}
		for (int k = 0; k < 3; k++)
			c->shares[st][k] = (uint32_t)v[k];
	}
	return parse_class_list("--class-max-wait", c->class_max_wait, true, c->max_wait_ns,
				MAX_WAIT, err, errlen);
}

int config_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *len, char *err,
			size_t errlen)
{
	return parse_addr("listen", s, addr, len, err, errlen);
}

/* --tls-listen needs a certificate and a key; the files are read by the TLS context. */
static int check_tls(struct sluiced_cfg *c, char *err, size_t errlen)
{
	if (!c->tls_listen[0]) {
		if (c->tls_cert[0] || c->tls_key[0] || c->tls_sni[0] || c->tls_client_ca[0]) {
			snprintf(err, errlen,
				 "sluiced: --tls-cert/--tls-key/--tls-sni/--tls-client-ca given "
				 "without --tls-listen ADDR:PORT (add it, or drop them)");
			return -EINVAL;
		}
		return 0;
	}
	if (!c->tls_cert[0] || !c->tls_key[0]) {
		snprintf(err, errlen,
			 "sluiced: --tls-listen %s: needs --tls-cert FILE and --tls-key FILE",
			 c->tls_listen);
		return -EINVAL;
	}
	return parse_addr("tls-listen", c->tls_listen, &c->tls_addr, &c->tls_addrlen, err, errlen);
}

/* --queue kafka needs brokers; --kafka-spill needs Kafka and a journal to spill to. */
static int check_kafka(struct sluiced_cfg *c, char *err, size_t errlen)
{
	if (strcmp(c->queue, "kafka")) {
		if (c->kafka.brokers[0] || c->kafka.spill || c->kafka.nconf) {
			snprintf(
			    err, errlen,
			    "sluiced: --kafka-brokers/--kafka-spill/--kafka given with --queue "
			    "%s (add --queue kafka, or drop them)",
			    c->queue);
			return -EINVAL;
		}
		return 0;
	}
	if (!c->kafka.brokers[0]) {
		snprintf(err, errlen,
			 "sluiced: --queue kafka: needs --kafka-brokers HOST:PORT[,HOST:PORT...]");
		return -EINVAL;
	}
	if (c->kafka.spill && !c->journal_dir[0]) {
		snprintf(err, errlen,
			 "sluiced: --kafka-spill: needs --journal-dir DIR to spill to");
		return -EINVAL;
	}
	return 0;
}

int config_parse(struct sluiced_cfg *c, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	bool seen[ARRAY_SIZE(opts)] = {false};
	int r;

	memset(c, 0, sizeof(*c));
	kafka_opts_default(&c->kafka);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--version")) {
			fprintf(out, "sluiced %s (BPF ABI v%u)\n", SLUICE_VERSION,
				SLUICE_ABI_VERSION);
			return 1; /* printed, nothing to run */
		}
	if (confparse_defaults(&table, c, err, errlen))
		return -EINVAL;
	/* flags first (they record what they set), then the file fills in the rest */
	r = confparse_argv(&table, c, argc, argv, "sluiced", seen, err, errlen);
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
	if (check_kafka(c, err, errlen))
		return -EINVAL;
	if (c->max_age[0] && config_parse_duration(c->max_age, &c->max_age_ns)) {
		snprintf(err, errlen,
			 "sluiced: --max-age %s: expected a duration such as 90s, 30m, 6h or 2d",
			 c->max_age);
		return -EINVAL;
	}
	if (parse_class_settings(c, err, errlen))
		return -EINVAL;
	if (loop_features_parse(c->uring_off, &c->uring_off_bits)) {
		snprintf(err, errlen,
			 "sluiced: --uring-off %s: expected buf_ring, multishot_accept, "
			 "multishot_recv or all, comma-separated",
			 c->uring_off);
		return -EINVAL;
	}
	if (!c->node[0] && gethostname(c->node, sizeof(c->node) - 1))
		snprintf(c->node, sizeof(c->node), "node");
	if (strcmp(c->admin_listen, "off") &&
	    parse_addr("admin-listen", c->admin_listen, &c->admin_addr, &c->admin_addrlen, err,
		       errlen))
		return -EINVAL;
	if (config_parse_listen(c->listen, &c->addr, &c->addrlen, err, errlen))
		return -EINVAL;
	return check_tls(c, err, errlen);
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
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (!strcmp(end, units[i].suffix)) {
			if (v * (double)units[i].mult > 1.8e19)
				return -EINVAL;
			*ns = (uint64_t)(v * (double)units[i].mult);
			return 0;
		}
	}
	return -EINVAL;
}
