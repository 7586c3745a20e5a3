// SPDX-License-Identifier: MIT
/* test_02_break_ai.c -- issue 7 "Break the AI API": the scoring upstream goes down under load
 *
 * Steady 40 leads/s (30 % critical), each stored then scored by `call ai`. After 6 s the
 * mock goes down (listener closed, connections reset); after 14 s it comes back. The
 * breaker (default window and thresholds, open wait scaled to 3 s) must open within 5 s
 * of the outage, the local model must answer meanwhile (step_results 'fallback' with
 * source model), critical events must keep their end-to-end latency (received -> scored)
 * within a second of what they had before, and once the mock is back the breaker goes
 * half-open, probes and closes. Nothing is lost: every 202'd lead is stored and scored,
 * nothing dead-lettered.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "scenario.h"
#include "test_progs.h"

#define DOWN_AT 6.0
#define UP_AT	14.0
#define LOAD_S	"22"

/* p99 in ms of received -> call:ai result for critical events received in [from, to). */
static long long crit_p99_ms(struct scn *s, double from, double to)
{
	char cond[200];

	snprintf(cond, sizeof(cond),
		 "e.class = 'critical' AND e.received_at >= to_timestamp(%.3f) AND "
		 "e.received_at < to_timestamp(%.3f)",
		 from, to);
	return scn_step_p99_ms(&s->pg, "call:ai", cond);
}

static double first_at(const struct scn_timeline *tl, double after, double value)
{
	for (int i = 0; i < tl->n; i++)
		if (tl->rows[i].t >= after && tl->rows[i].x[0] == value)
			return tl->rows[i].t;
	return -1;
}

void test_02_break_ai(void)
{
	struct scn s = {0};
	struct scn_load l = {0};
	static struct scn_timeline tl;
	double wall0, t_down = 0, t_up = 0, t_open, t_closed;
	long long accepted, p99_before, p99_outage;
	char routes[1024], *log = NULL;

	if (!test__require_root())
		return;
	if (!ASSERT_OK(scn_start_pg(&s), "postgres") ||
	    !ASSERT_OK(mock_upstream_start(&s.ai, "latency_ms=5"), "mock upstream"))
		goto out;
	snprintf(
	    routes, sizeof(routes),
	    "[pool db]\nthreads = 2\ninflight = 256\n[pool ai]\nthreads = 4\ninflight = 8\n"
	    "[upstream ai]\nurl = %s\nscore_field = score\ntimeout_ms = 1000\nfallback.model = on\n"
	    "breaker.open_wait_ms = 3000\n"
	    "[route lead.created]\nclass = normal\nstep = store pool=db\n"
	    "step = call ai pool=ai\n",
	    s.ai.url);
	if (!ASSERT_OK(scn_start_daemon(&s, SCN_TENANT_ACME, routes, NULL), "sluiced"))
		goto out;
	{
		const char *args[] = {"--key",
				      "test",
				      "--connections",
				      "8",
				      "--rate",
				      "40",
				      "--duration",
				      LOAD_S,
				      "--mix",
				      "critical:lead.created:30,normal:lead.created:70",
				      "--prefix",
				      "ai",
				      NULL};

		scn_timeline_init(&tl);
		scn_timeline_watch(&tl, "brk_ai", "sluice_breaker_state{upstream=\"ai\"}");
		scn_timeline_watch(
		    &tl, "fb_mod",
		    "sluice_fallback_answers_total{upstream=\"ai\",source=\"model\"}");
		scn_timeline_watch(&tl, "ai_ok",
				   "sluice_upstream_calls_total{upstream=\"ai\",outcome=\"ok\"}");
		wall0 = (double)clock_real_ns() / 1e9;
		if (!ASSERT_OK(scn_load_start(&l, s.d.port, args), "loadgen"))
			goto out;
	}
	while (scn_timeline_now(&tl) < 45) {
		double now = scn_timeline_now(&tl);

		if (!t_down && now >= DOWN_AT) {
			ASSERT_OK(mock_upstream_faults(&s.ai, "down=1"), "mock down");
			t_down = scn_timeline_now(&tl);
		}
		if (!t_up && now >= UP_AT) {
			ASSERT_OK(mock_upstream_faults(&s.ai, "down=0"), "mock back");
			t_up = scn_timeline_now(&tl);
		}
		scn_timeline_sample(&tl, s.d.admin_port);
		if (!scn_load_running(&l) && tl.rows[tl.n - 1].x[0] == 0 &&
		    tl.rows[tl.n - 1].waiting[0] + tl.rows[tl.n - 1].waiting[1] == 0)
			break;
		usleep(250000);
	}
	scn_timeline_print(&tl, stdout);
	if (!ASSERT_OK(scn_load_wait(&l, 10000), "loadgen report"))
		goto out;
	t_open = first_at(&tl, t_down, 1);
	t_closed = first_at(&tl, t_up, 0);
	accepted = scn_report_ll(&l, "status.202");
	ASSERT_EQ(accepted, scn_report_ll(&l, "sent"), "every lead answered 202");
	ASSERT_GT(t_open, 0, "breaker opened");
	ASSERT_LE(t_open - t_down, 5.0, "breaker open within 5 s of the outage");
	ASSERT_GT(t_closed, 0, "breaker closed again after the mock came back");
	log = sluiced_log(&s.d);
	ASSERT_HAS_STR(log, "from=open to=half_open", "half-open after the open wait");
	ASSERT_HAS_STR(log, "from=half_open to=closed", "probes closed it");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM events", accepted, 30),
		    "every 202'd lead stored");
	ASSERT_TRUE(pgh_wait_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:ai'",
				accepted, 30),
		    "every lead scored (upstream or fallback)");
	ASSERT_GT(pgh_query_ll(&s.pg, "SELECT count(*) FROM step_results WHERE step = 'call:ai' "
				      "AND status = 'fallback' AND result->>'source' = 'model'"),
		  0, "the local model answered during the outage");
	ASSERT_EQ(pgh_query_ll(&s.pg, "SELECT count(*) FROM dead_letters"), 0,
		  "nothing dead-lettered");
	p99_before = crit_p99_ms(&s, wall0 + 1, wall0 + t_down);
	p99_outage = crit_p99_ms(&s, wall0 + t_down, wall0 + t_up);
	printf("break_ai: breaker open %.2f s after the outage, closed %.2f s after the mock came "
	       "back; critical received->scored p99 %lld ms before, %lld ms during the outage\n",
	       t_open - t_down, t_closed - t_up, p99_before, p99_outage);
	ASSERT_GE(p99_outage, 0, "critical events during the outage");
	ASSERT_LT(p99_outage, p99_before + 1000, "critical latency kept during the outage");
out:
	free(log);
	scn_load_fini(&l);
	scn_stop(&s);
}
