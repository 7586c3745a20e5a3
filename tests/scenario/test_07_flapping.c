// SPDX-License-Identifier: MIT
/* test_07_flapping.c -- issue 8 "Flapping guard": load oscillating around the THIN threshold
 *
 * Leads are scored by `call ai` on a two-thread pool against a mock answering in 20 ms
 * (about 100/s). The load alternates 1 s at 200/s (the normal lag climbs past the 500 ms
 * THIN threshold) with 3 s or 5 s at 30/s (the backlog drains and the lag falls under
 * half the threshold for about 1.5 s or 3.5 s), four times. With a 2 s hold the
 * controller may step up at every burst but must step down only after 2 s of calm: not
 * in the short quiet spells, once in each long one. Asserted from the daemon's own log (millisecond
 * timestamps of every "overload: state changed"): the lag really crossed the threshold
 * several times, THIN engaged, every step down came at least the hold time after the
 * transition before it, transitions in the same direction are at least the hold time
 * apart, at least one step down happened (the guard does not just pin THIN), and the
 * count of transitions matches /metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenario.h"
#include "test_progs.h"

#define HOLD_S	  2.0
#define THIN_S	  0.5
#define MAX_TRANS 64

struct transition {
	double t; /* seconds of the day, from the log's ts= */
	bool up;
};

static int parse_transitions(const char *log, struct transition *tr, int max)
{
	static const char *const order[] = {"normal", "thin", "emergency"};
	int n = 0;

	for (const char *p = log; (p = strstr(p, "msg=\"overload: state changed\"")) && n < max;
	     p++) {
		const char *bol = p, *from = strstr(p, " from="), *to = strstr(p, " to=");
		int h, m, lf = -1, lt = -1;
		double sec;

		while (bol > log && bol[-1] != '\n')
			bol--;
		if (!from || !to || sscanf(bol, "ts=%*d-%*d-%*dT%d:%d:%lfZ", &h, &m, &sec) != 3)
			continue;
		from += 6 + (from[6] == '"'); /* logfmt: from="thin" */
		to += 4 + (to[4] == '"');
		for (int i = 0; i < 3; i++) {
			lf = strncmp(from, order[i], strlen(order[i])) ? lf : i;
			lt = strncmp(to, order[i], strlen(order[i])) ? lt : i;
		}
		tr[n].t = h * 3600 + m * 60 + sec;
		tr[n++].up = lt > lf;
	}
	return n;
}

static int crossings(const struct scn_timeline *tl)
{
	bool above = false;
	int n = 0;

	for (int i = 0; i < tl->n; i++) {
		if (!above && tl->rows[i].lag[1] > THIN_S)
			above = true, n++;
		else if (above && tl->rows[i].lag[1] < THIN_S / 2)
			above = false;
	}
	return n;
}

void test_07_flapping(void)
{
	struct scn s = {0};
	struct scn_load l = {0};
	static struct scn_timeline tl;
	struct transition tr[MAX_TRANS];
	static char m[1 << 20];
	char routes[1024], *log = NULL;
	int n, ups = 0;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(scn_start_pg(&s), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&s.ai, "latency_ms=20"), "mock ai"))
		goto out;
	snprintf(routes, sizeof(routes),
		 "[pool db]\nthreads = 2\ninflight = 256\n[pool ai]\nthreads = 2\ninflight = 2\n"
		 "[upstream ai]\nurl = %s\nscore_field = score\n"
		 "[route lead.created]\nclass = normal\nstep = store pool=db\n"
		 "step = call ai pool=ai\n",
		 s.ai.url);
	{
		const char *extra[] = {"--overload-period-ms",
				       "100",
				       "--thin-lag-ms",
				       "500",
				       "--emergency-lag-ms",
				       "60000",
				       "--overload-hold-ms",
				       "2000",
				       NULL};

		if (!ASSERT_OK(scn_start_daemon(&s, SCN_TENANT_ACME, routes, extra), "sluiced"))
			goto out;
	}
	{
		/* quiet spells of 3 s leave ~1.5 s of calm (under the hold), 5 s leave ~3.5 s */
		const char *args[] = {
		    "--key",   "test",	"--connections", "32",	  "--phase", "200:1",
		    "--phase", "30:3",	"--phase",	 "200:1", "--phase", "30:5",
		    "--phase", "200:1", "--phase",	 "30:3",  "--phase", "200:1",
		    "--phase", "30:5",	"--prefix",	 "flap",  NULL};

		scn_timeline_init(&tl);
		if (!ASSERT_OK(scn_load_start(&l, s.d.port, args), "loadgen"))
			goto out;
		scn_timeline_follow(&tl, s.d.admin_port, &l, 100, 22); /* + the last hold */
	}
	if (!ASSERT_OK(scn_load_wait(&l, 10000), "loadgen report"))
		goto out;
	for (int i = 0; i < tl.n; i += 3) /* every 300 ms is enough to read */
		tl.rows[i / 3] = tl.rows[i];
	tl.n = (tl.n + 2) / 3;
	scn_timeline_print(&tl, stdout);
	log = sluiced_log(&s.d);
	n = parse_transitions(log, tr, MAX_TRANS);
	for (int i = 0; i < n; i++) {
		printf("flapping: transition %d %s at +%.3f s\n", i, tr[i].up ? "up" : "down",
		       tr[i].t - tr[0].t);
		ups += tr[i].up;
		if (i && !tr[i].up)
			ASSERT_GE(tr[i].t - tr[i - 1].t, HOLD_S - 0.05,
				  "a step down only after the hold time of calm");
		for (int j = i - 1; j >= 0; j--) {
			if (tr[j].up != tr[i].up)
				continue;
			ASSERT_GE(tr[i].t - tr[j].t, HOLD_S - 0.05,
				  "same-direction changes at least the hold time apart");
			break;
		}
	}
	printf("flapping: normal lag crossed the THIN threshold %d times; %d transitions (%d up)\n",
	       crossings(&tl), n, ups);
	ASSERT_GE(crossings(&tl), 3, "the load oscillated around the threshold");
	ASSERT_GE(ups, 1, "THIN engaged");
	ASSERT_GE(n - ups, 1, "stepped down after a calm spell longer than the hold");
	if (ASSERT_OK(scn_metrics(s.d.admin_port, m, sizeof(m)), "metrics"))
		ASSERT_EQ(scn_metric(m, "sluice_overload_transitions_total"), n,
			  "transitions counted = transitions logged");
out:
	free(log);
	scn_load_fini(&l);
	scn_stop(&s);
}
