// SPDX-License-Identifier: MIT
/* test_config.c -- sluiced settings: defaults, config file, flags win, errors name the input */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "config.h"
#include "lib/array_size.h"
#include "test_progs.h"

static struct sluiced_cfg cfg;
static char err[512];

static int parse(int argc, const char **argv)
{
	FILE *out = fopen("/dev/null", "w");
	int r = config_parse(&cfg, argc, (char **)argv, out, err, sizeof(err));

	fclose(out);
	return r;
}

static const char *write_conf(const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sluiced.conf", test__tmpdir());
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return path;
}

void test_config(void)
{
	if (test__start_subtest("defaults")) {
		const char *argv[] = {"sluiced"};

		ASSERT_OK(parse(1, argv), err);
		ASSERT_STREQ(cfg.listen, "0.0.0.0:8080", "listen");
		ASSERT_EQ(cfg.max_body, 1048576, "max body 1 MiB");
		ASSERT_EQ(cfg.threads, 0, "threads = cores");
		ASSERT_STREQ(cfg.pin_dir, "/sys/fs/bpf/sluice", "pin dir");
		ASSERT_EQ(ntohs(((struct sockaddr_in *)&cfg.addr)->sin_port), 8080, "port parsed");
		ASSERT_FALSE(cfg.dry_run_limits, "enforcing");
		ASSERT_EQ(cfg.queue_max_bytes, -1, "queue bytes: from the free disk space");
	}
	if (test__start_subtest("file_and_flags")) {
		const char *conf = write_conf("# sluiced\nlisten = 127.0.0.1:9000\nthreads = 3\n"
					      "max-body = 2048\ndry-run-limits = yes\n");
		const char *argv[] = {"sluiced", "--threads", "5", "--config", conf};

		ASSERT_OK(parse(5, argv), err);
		ASSERT_EQ(cfg.threads, 5, "flag wins over file");
		ASSERT_EQ(cfg.max_body, 2048, "file applies");
		ASSERT_STREQ(cfg.listen, "127.0.0.1:9000", "file listen");
		ASSERT_TRUE(cfg.dry_run_limits, "file boolean");
	}
	if (test__start_subtest("errors")) {
		const char *a1[] = {"sluiced", "--listen", "0.0.0.0:99999"};
		const char *a2[] = {"sluiced", "--threads", "lots"};
		const char *a3[] = {"sluiced", "--frobnicate"};
		const char *a4[] = {"sluiced", "--listen", "example.com:80"};
		const char *a5[] = {"sluiced", "--log-level", "loud"};
		const char *a6[] = {"sluiced", "--config", NULL};
		const char *a7[] = {"sluiced", "--admin-listen", "localhost:9464"};

		ASSERT_EQ(parse(3, a1), -EINVAL, "port");
		ASSERT_STREQ(err, "sluiced: --listen 0.0.0.0:99999: port out of range (0-65535)",
			     "port message");
		ASSERT_EQ(parse(3, a2), -EINVAL, "threads");
		ASSERT_HAS_STR(err, "--threads lots: expected a whole number in 0-256",
			       "threads msg");
		ASSERT_EQ(parse(2, a3), -EINVAL, "unknown");
		ASSERT_HAS_STR(err, "--frobnicate: unknown option", "unknown msg");
		ASSERT_EQ(parse(3, a4), -EINVAL, "hostname");
		ASSERT_HAS_STR(err, "not an IPv4 address or [IPv6] address", "address msg");
		ASSERT_EQ(parse(3, a5), -EINVAL, "log level");
		ASSERT_EQ(parse(3, a7), -EINVAL, "admin address");
		ASSERT_STREQ(
		    err,
		    "sluiced: --admin-listen localhost:9464: not an IPv4 address or [IPv6] "
		    "address",
		    "admin address message");
		a6[2] = write_conf("listen = 127.0.0.1:1\n\nmax-conns = -4\n");
		ASSERT_EQ(parse(3, a6), -EINVAL, "file range");
		ASSERT_HAS_STR(err, "sluiced.conf:3: max-conns -4: expected a whole number",
			       "file:line");
		a6[2] = write_conf("colour = blue\n");
		ASSERT_EQ(parse(3, a6), -EINVAL, "file unknown key");
		ASSERT_HAS_STR(err, "sluiced.conf:1: unknown key 'colour'", "unknown key msg");
	}
	if (test__start_subtest("class_shares")) {
		const char *a0[] = {"sluiced"};
		const char *conf = write_conf("shares-thin = critical=80,normal=20\n"
					      "class-max-wait = normal=250ms,low=2s\n");
		const char *a1[] = {"sluiced", "--config", conf, "--shares-emergency",
				    "normal=10,critical=90"};
		const char *bad[][2] = {
		    {"--shares-thin", "critical=x"},
		    {"--shares-thin", "critical=70,normal=25,low=10"},
		    {"--shares-normal", "critical=70,normal=25,urgent=5"},
		    {"--shares-emergency", "critical=100,critical=0"},
		    {"--shares-normal", "critical=170"},
		    {"--shares-normal", "critical"},
		    {"--class-max-wait", "normal=soon"},
		};
		const char *want[] = {
		    "sluiced: --shares-thin critical=x: not a number (critical=70,normal=25,low=5)",
		    "sluiced: --shares-thin critical=70,normal=25,low=10: shares add up to 105, "
		    "expected 100 (critical=70,normal=25,low=5)",
		    "sluiced: --shares-normal urgent=5: unknown class, expected critical, normal "
		    "or "
		    "low (critical=70,normal=25,low=5)",
		    "sluiced: --shares-emergency critical=100,critical=0: class critical given "
		    "twice "
		    "(critical=100,normal=0,low=0)",
		    "sluiced: --shares-normal critical=170: a share is a percent, 0-100 "
		    "(critical=70,normal=25,low=5)",
		    "sluiced: --shares-normal critical: expected CLASS=VALUE "
		    "(critical=70,normal=25,low=5)",
		    "sluiced: --class-max-wait normal=soon: not a duration such as 500ms, 5s or 2m "
		    "(critical=0,normal=5s,low=30s)",
		};

		ASSERT_OK(parse(1, a0), err);
		ASSERT_EQ(cfg.shares[0][0] * 10000 + cfg.shares[0][1] * 100 + cfg.shares[0][2],
			  702505, "NORMAL 70/25/5");
		ASSERT_EQ(cfg.shares[1][0] * 10000 + cfg.shares[1][1] * 100 + cfg.shares[1][2],
			  702505, "THIN 70/25/5");
		ASSERT_EQ(cfg.shares[2][0] * 10000 + cfg.shares[2][1] * 100 + cfg.shares[2][2],
			  1000000, "EMERGENCY 100/0/0");
		ASSERT_EQ(cfg.max_wait_ns[1], 5000000000ULL, "normal ages after 5 s");
		ASSERT_EQ(cfg.max_wait_ns[2], 30000000000ULL, "low after 30 s");
		ASSERT_OK(parse(5, a1), err);
		ASSERT_EQ(cfg.shares[1][0] * 10000 + cfg.shares[1][1] * 100 + cfg.shares[1][2],
			  802000, "file: THIN 80/20, low left out = 0");
		ASSERT_EQ(cfg.shares[2][0] * 10000 + cfg.shares[2][1] * 100, 901000,
			  "flag: EMERGENCY 90/10 in any order");
		ASSERT_EQ(cfg.max_wait_ns[0], 0, "critical left out: no aging");
		ASSERT_EQ(cfg.max_wait_ns[1], 250000000ULL, "normal 250 ms");
		for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
			const char *a[] = {"sluiced", bad[i][0], bad[i][1]};

			ASSERT_EQ(parse(3, a), -EINVAL, bad[i][1]);
			ASSERT_STREQ(err, want[i], bad[i][0]);
		}
	}
	if (test__start_subtest("help_and_v6")) {
		const char *a1[] = {"sluiced", "--help"};
		const char *a2[] = {"sluiced", "--listen", "[::1]:0"};
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);

		ASSERT_EQ(config_parse(&cfg, 2, (char **)a1, out, err, sizeof(err)), 1, "help");
		fclose(out);
		/* --help documents every flag the issue asks for */
		static const char *const flags[] = {"--listen",
						    "--threads",
						    "--tenants",
						    "--iface",
						    "--pin-dir",
						    "--journal-dir",
						    "--pg",
						    "--redis",
						    "--log-level",
						    "--dry-run-limits",
						    "--max-body",
						    "--max-conns",
						    "--drain-timeout-ms",
						    "--config",
						    "--shares-normal",
						    "--shares-thin",
						    "--shares-emergency",
						    "--class-max-wait",
						    "--admin-listen",
						    "--max-conns-per-source"};

		for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
			/* cppcheck-suppress AssignmentAddressToInteger ; statement-expr scopes */
			ASSERT_HAS_STR(text, flags[i], flags[i]);
		free(text);
		ASSERT_OK(parse(3, a2), err);
		ASSERT_EQ(cfg.addr.ss_family, AF_INET6, "v6");
		/* the admin listener: loopback 9464 unless told otherwise, or off */
		ASSERT_STREQ(cfg.admin_listen, "127.0.0.1:9464", "admin default");
		ASSERT_EQ(ntohs(((struct sockaddr_in *)&cfg.admin_addr)->sin_port), 9464,
			  "admin port");
		{
			const char *a3[] = {"sluiced", "--admin-listen", "off"};

			ASSERT_OK(parse(3, a3), err);
			ASSERT_EQ(cfg.admin_addrlen, 0, "admin off");
		}
	}
}
