// SPDX-License-Identifier: MIT
/* test_loadgen.c -- tools/loadgen against the real sluiced (journal only, no worker)
 *
 * The scenario tests trust loadgen's counts, so they are checked here against what is
 * knowable: a --count run sends exactly that many requests and every one is answered and
 * logged; duplicates reuse earlier keys (distinct keys in the log = sent - dups_sent);
 * a tenant over its credits gets 429 with Retry-After and the other does not; the
 * per-second timeline adds up to the totals; --rate paces (a 1 s run at 200/s sends at
 * most 200 and lasts at least a second); SIGTERM in the middle of a 60 s run ends it
 * early with the report printed and every request sent answered (the report's runs stop
 * loadgen that way); and bad flags are refused naming the flag.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/array_size.h"
#include "scenario.h"
#include "netns.h"
#include "test_progs.h"

#define TENANTS                                                                                    \
	SCN_TENANT_ACME "[beta]\nkey = " HARNESS_KEY_B_HEX "\nreq_rate = 20\nreq_burst = 10\n"

static long long distinct_keys(const char *log, long long *lines)
{
	char out[64];

	if (netns_run(NULL, out, sizeof(out), "cut -d' ' -f1 %s | sort -u | wc -l; wc -l < %s", log,
		      log))
		return -1;
	*lines = atoll(strchr(out, '\n') ? strchr(out, '\n') + 1 : "-1");
	return atoll(out);
}

static void bad_flags(void)
{
	static const struct {
		const char *args, *msg;
	} cases[] = {
	    {"--url http://10.1.2.3:80/v1/events --key k --duration 1", "not a loopback"},
	    {"--port 8080 --key k", "needs a bound"},
	    {"--port 8080 --key k --count 5 --mix urgent:x:1", "priority must be"},
	    {"--port 8080 --key k --count 5 --dup-rate 2", "--dup-rate 2"},
	    {"--port 70000 --key k --count 5", "--port 70000"},
	};
	char out[1024];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int st = netns_run(NULL, out, sizeof(out), "%s/loadgen %s", test__outdir(),
				   cases[i].args);

		ASSERT_EQ(st, 2, cases[i].args);
		ASSERT_HAS_STR(out, cases[i].msg, cases[i].msg);
	}
}

void test_loadgen(void)
{
	struct sluiced_proc p = {0};
	struct scn_load l = {0};
	long long sent, lines = -1, distinct, tl_sent = 0;
	json_t *tl;

	if (!test__require_root())
		return;
	bad_flags();
	{
		const char *args[] = {"--journal-dir", "@journal", "--threads", "1", NULL};

		if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "sluiced"))
			goto out;
	}
	{
		const char *args[] = {"--count",    "300",     "--connections",
				      "4",	    "--key",   "test:3",
				      "--key",	    "hello:1", "--dup-rate",
				      "0.3",	    "--mix",   "critical:lead.created:1,low:x.y:1",
				      "--timeline", NULL};

		if (!ASSERT_OK(scn_load_run(&l, p.port, args, 30000), "loadgen --count"))
			goto out;
	}
	sent = scn_report_ll(&l, "sent");
	ASSERT_EQ(sent, 300, "--count 300 sends 300");
	ASSERT_EQ(scn_report_ll(&l, "answered"), 300, "all answered");
	ASSERT_EQ(scn_report_ll(&l, "errors"), 0, "no errors");
	ASSERT_EQ(scn_report_ll(&l, "status.202") + scn_report_ll(&l, "status.429"), 300,
		  "202 or 429");
	ASSERT_GT(scn_report_ll(&l, "per_key.1.429"), 0, "beta over its credits");
	ASSERT_EQ(scn_report_ll(&l, "per_key.0.429"), 0, "acme never limited");
	ASSERT_EQ(scn_report_ll(&l, "retry_after.429"), scn_report_ll(&l, "status.429"),
		  "429s carry Retry-After");
	ASSERT_EQ(scn_report_ll(&l, "per_class.critical.2xx") +
		      scn_report_ll(&l, "per_class.low.2xx"),
		  scn_report_ll(&l, "status.202"), "per-class counts add up");
	ASSERT_GT(scn_report_ll(&l, "dups_sent"), 0, "duplicates sent");
	distinct = distinct_keys(l.log, &lines);
	ASSERT_EQ(lines, 300, "one log line per answer");
	ASSERT_EQ(distinct, 300 - scn_report_ll(&l, "dups_sent"), "duplicates reuse earlier keys");
	tl = json_object_get(l.report, "timeline");
	for (size_t i = 0; i < json_array_size(tl); i++)
		tl_sent += json_integer_value(json_object_get(json_array_get(tl, i), "sent"));
	ASSERT_EQ(tl_sent, 300, "the timeline adds up");
	scn_load_fini(&l);
	{
		const char *args[] = {"--rate", "200", "--duration", "1", "--key", "test", NULL};

		if (!ASSERT_OK(scn_load_run(&l, p.port, args, 30000), "loadgen --rate"))
			goto out;
	}
	ASSERT_LE(scn_report_ll(&l, "sent"), 200, "paced: at most rate x duration");
	ASSERT_GE(scn_report_ll(&l, "sent"), 100, "paced: most of it sent");
	ASSERT_GE(scn_report_f(&l, "elapsed_s"), 0.99, "paced over the whole second");
	scn_load_fini(&l);
	{
		const char *args[] = {"--rate", "200", "--duration", "60", "--key", "test", NULL};

		if (!ASSERT_OK(scn_load_start(&l, p.port, args), "loadgen 60 s"))
			goto out;
		usleep(1500000);
		kill(l.pid, SIGTERM);
		if (!ASSERT_OK(scn_load_wait(&l, 20000), "SIGTERM: exits 0 with its report"))
			goto out;
	}
	ASSERT_LT(scn_report_f(&l, "elapsed_s"), 30, "SIGTERM ended the schedule early");
	ASSERT_GT(scn_report_ll(&l, "sent"), 0, "sent before the signal");
	ASSERT_EQ(scn_report_ll(&l, "answered"), scn_report_ll(&l, "sent"),
		  "drained: every request sent was answered");
out:
	scn_load_fini(&l);
	if (p.pid > 0)
		sluiced_stop(&p, 5000);
}
