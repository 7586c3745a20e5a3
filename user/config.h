/* SPDX-License-Identifier: MIT */
/* config.h -- sluiced settings: command-line flags and the same keys in a config file
 *
 * One table describes every setting (flag name = config key, argument, help, type, range),
 * so --help, the flag parser and the config-file reader cannot disagree. Order of
 * precedence: built-in default < config file (--config FILE, INI without sections:
 * `listen = 0.0.0.0:8080`) < command-line flag.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "queue/kafka/kafka.h"

struct sluiced_cfg {
	char config[PATH_MAX];
	char listen[128];
	struct sockaddr_storage addr; /* parsed listen */
	socklen_t addrlen;
	char admin_listen[128];		    /* "off": no admin listener */
	struct sockaddr_storage admin_addr; /* parsed admin_listen */
	socklen_t admin_addrlen;	    /* 0 when off */
	int threads;			    /* 0 = number of online CPUs */
	char tenants[PATH_MAX];
	char iface[64];
	char pin_dir[PATH_MAX];
	char journal_dir[PATH_MAX];
	char pg[512];
	char redis[256];
	char redis_user[64];
	char redis_password_file[PATH_MAX];
	char cluster_redis[256]; /* --cluster-redis: leases, unique node names */
	char cluster_redis_user[64];
	char cluster_redis_password_file[PATH_MAX];
	long long lease_period_ms;
	long long lease_grace_ms;
	char log_level[16];
	bool dry_run_limits;
	long long max_body;
	long long max_conns;
	long long max_conns_per_source; /* 0 = no limit */
	long long max_header_bytes;	/* whole head */
	long long max_line;
	long long max_headers;
	long long header_timeout_ms;
	long long idle_timeout_ms;
	long long send_timeout_ms;
	long long drain_timeout_ms;
	long long deny_after; /* consecutive 429s of a tenant before the deny list */
	long long deny_secs;
	long long retry_after_503;	 /* seconds in Retry-After when the queue refuses */
	long long queue_max_entries;	 /* journal "full" limits, 0 = none */
	long long queue_max_bytes;	 /* -1: half the journal filesystem's free space */
	long long journal_segment_bytes; /* rotate segments at this size */
	char queue[16];			 /* journal | kafka */
	struct kafka_opts kafka;	 /* --kafka-* (queue/kafka/kafka.h) */
	char kafka_group[128];		 /* --kafka-group: the workers' consumer group */
	/* the worker side and the overload controller */
	char role[16]; /* all | ingress | worker */
	char routes[PATH_MAX];
	long long max_messages; /* worker retirement, 0 = never */
	char max_age[32];	/* worker retirement, a duration, "" = never */
	uint64_t max_age_ns;	/* parsed max_age */
	long long overload_period_ms;
	long long thin_lag_ms;
	long long emergency_lag_ms;
	long long overload_hold_ms;
	bool overload_dry_run;
	long long controller_lease_ms; /* --controller-lease-ms: cluster shedding */
	char shares_normal[96];	       /* class shares per state, "critical=70,normal=25,low=5" */
	char shares_thin[96];
	char shares_emergency[96];
	uint32_t shares[3][3];	 /* parsed: [state normal/thin/emergency][class], percent */
	char class_max_wait[96]; /* aging bound per class, "critical=0,normal=5s,low=30s" */
	uint64_t max_wait_ns[3]; /* parsed, per class (0: none) */
	char alert_url[512];
	char alert_key[128];
	char node[64];
	/* TLS (issue 20): a second listener on the same ingress threads */
	char tls_listen[128];
	struct sockaddr_storage tls_addr; /* parsed tls_listen (when set) */
	socklen_t tls_addrlen;
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	char tls_sni[2048]; /* CERT:KEY[,CERT:KEY...] served by the names they carry */
	char tls_client_ca[PATH_MAX];
	long long tls_handshake_timeout_ms;
	long long tls_max_handshakes;
	long long tls_handshake_rate; /* per source and second, 0 = off */
	long long tls_ticket_rotate_s;
	long long tls_watch_s;	 /* reload when the files change, checked this often; 0 = off */
	char uring_off[128];	 /* io_uring features not to use (loop_features_parse) */
	unsigned uring_off_bits; /* parsed uring_off, LOOP_FEAT_* */
};

/* Parse a duration ("500ms", "30s", "5m", "6h", "2d", or plain seconds) into ns. 0 or
 * -EINVAL. */
int config_parse_duration(const char *s, uint64_t *ns);

/* Fill c from defaults, the config file named by --config (if any) and argv. Returns 0,
 * 1 when --help was printed to out (the caller exits 0), or -EINVAL with err naming the
 * flag or file:line and the fix. */
int config_parse(struct sluiced_cfg *c, int argc, char **argv, FILE *out, char *err, size_t errlen);
/* Print the usage text documenting every flag. */
void config_usage(FILE *out);
/* Parse "ADDR:PORT" / "[V6]:PORT" into addr; -EINVAL with err filled. */
int config_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *len, char *err,
			size_t errlen);

#endif /* SLUICE_CONFIG_H */
