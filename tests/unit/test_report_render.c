// SPDX-License-Identifier: MIT
/* test_report_render.c -- tools/report/render.py on the committed fixture tests/report/results/
 *
 * The fixture holds three scenario results the way tools/report/run leaves them: sustained
 * (pass, with a timeline), spike (fail: one claim over its figure) and slow_kafka (skipped
 * with its reason), plus _run.json (machine, commit, date). Checked in the rendered
 * REPORT.md: each claim of tools/report/claims.json beside its measured value and verdict,
 * the failed claim as FAIL, the skipped scenario's claim as SKIPPED with the reason, a claim
 * whose scenario did not run as NOT RUN, the SLO cells, the machine and commit, and the
 * timeline drawn by gnuplot as plots/sustained.svg (rates, lag, state, CPU and RSS) and
 * embedded. Then broken copies of the fixture (a claim without its verdict, a skip without
 * a reason, a series file that is not there, a file that is not JSON, an unknown status)
 * must each be refused: exit 1, the message naming the file and the key, no report written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array_size.h"
#include "netns.h"
#include "test_progs.h"

#define FIXTURE "tests/report/results"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* The line of the claims table for claim text (NUL-terminated copy in line). */
static const char *claim_row(const char *md, const char *claim, char *line, size_t cap)
{
	char needle[200];
	const char *p, *e;

	snprintf(needle, sizeof(needle), "| %s |", claim);
	p = md ? strstr(md, needle) : NULL;
	if (!p)
		return "";
	while (p > md && p[-1] != '\n')
		p--;
	e = strchr(p, '\n');
	snprintf(line, cap, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
	return line;
}

/* Rows of the claims table: the claim, what must be beside it, the verdict. */
static const struct {
	const char *claim, *want, *verdict;
} rows[] = {
    {"6,000 req/s sustained", "| 5,990 req/s (202 answers/s at 6000/s offered)", "**PASS**"},
    {"p99 412 ms at 6,000 req/s", "| 28.67 ms (intake)", "**PASS**"},
    {"38 s of lag", "| 41.50 s (max critical lag)", "**FAIL**"},
    {"slow Kafka", "not run: needs the Kafka backend: this sluiced has no --queue option",
     "SKIPPED"},
    {"18,500 DB writes/s", "scenario `db_writes` not in this run", "NOT RUN"},
    {"database primary fails: <5 s of writes lost", "`db_failover`", "NOT RUN"},
};

static void good_fixture(const char *dir)
{
	char out[4096], path[600], line[1024];
	bool gnuplot = !netns_run(NULL, NULL, 0, "command -v gnuplot");
	char *md, *svg;
	int rc;

	rc = netns_run(NULL, out, sizeof(out),
		       "python3 tools/report/render.py %s %s/REPORT.md 2>&1", FIXTURE, dir);
	if (!ASSERT_EQ(rc, 0, "render.py on the fixture")) {
		printf("%s\n", out);
		return;
	}
	snprintf(path, sizeof(path), "%s/REPORT.md", dir);
	md = slurp(path);
	if (!ASSERT_TRUE(md != NULL, "REPORT.md written"))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		claim_row(md, rows[i].claim, line, sizeof(line));
		ASSERT_HAS_STR(line, rows[i].want, rows[i].claim);
		ASSERT_HAS_STR(line, rows[i].verdict, rows[i].claim);
	}
	ASSERT_HAS_STR(md, "| [sustained](#sustained) | 100.0 ✔ | 28.67 ✔ |", "SLO cells");
	ASSERT_HAS_STR(md, "41.50 ✔", "SLO cell of spike");
	ASSERT_HAS_STR(md, "Fixture CPU @ 2.0GHz, 2 cores, 7.8 GiB RAM, Linux 6.18.0-fixture",
		       "the machine");
	ASSERT_HAS_STR(md, "`0123456789ab`", "the commit");
	ASSERT_HAS_STR(md, "2026-12-05 08:00 UTC", "the date");
	ASSERT_HAS_STR(md, "busy machine", "a load average above the cores is called noisy");
	if (!gnuplot) {
		ASSERT_HAS_STR(md, "gnuplot is not installed", "says why there is no plot");
		test__skip("gnuplot not installed (tools/setup): SVG not checked");
		free(md);
		return;
	}
	ASSERT_HAS_STR(md, "![sustained timeline](plots/sustained.svg)", "svg embedded");
	ASSERT_TRUE(strstr(md, "plots/spike.svg") == NULL, "no plot without a series");
	snprintf(path, sizeof(path), "%s/plots/sustained.svg", dir);
	svg = slurp(path);
	ASSERT_HAS_STR(svg, "<svg", "plots/sustained.svg is an SVG");
	ASSERT_HAS_STR(svg, "admitted", "with the admitted series");
	ASSERT_HAS_STR(svg, "lag_normal", "and the lag panel");
	ASSERT_HAS_STR(svg, "rss_mb", "and sluiced's memory");
	free(svg);
	free(md);
}

/* A broken copy of the fixture: edit (python3 over d, the dict of file -> JSON) must make
 * render.py exit 1 naming want, and write no report. */
static void broken(const char *dir, const char *name, const char *edit, const char *want)
{
	char out[4096];
	int rc;

	rc = netns_run(NULL, out, sizeof(out),
		       "rm -rf %s/b && cp -r %s %s/b && cd %s/b && python3 -c '\n"
		       "import json, glob\n"
		       "d = {f: json.load(open(f)) for f in glob.glob(\"*.json\")}\n"
		       "%s\n"
		       "for f, v in d.items():\n"
		       "    if v is not None: json.dump(v, open(f, \"w\"))\n"
		       "' && cd - >/dev/null && python3 tools/report/render.py %s/b %s/b.md 2>&1",
		       dir, FIXTURE, dir, dir, edit, dir, dir);
	ASSERT_EQ(rc, 1, name);
	ASSERT_HAS_STR(out, want, name);
	ASSERT_NEQ(netns_run(NULL, NULL, 0, "test -e %s/b.md", dir), 0, "no report written");
}

void test_report_render(void)
{
	const char *dir = test__tmpdir();

	if (netns_run(NULL, NULL, 0, "command -v python3")) {
		test__skip("python3 not installed (tools/setup)");
		return;
	}
	good_fixture(dir);
	broken(dir, "claim without its verdict",
	       "del d[\"sustained.json\"][\"claims\"][0][\"pass\"]",
	       "sustained.json: claims[0]: missing \"pass\"");
	broken(dir, "skipped without a reason", "d[\"slow_kafka.json\"][\"reason\"] = \"\"",
	       "slow_kafka.json: status skipped needs a \"reason\"");
	broken(dir, "series file missing", "d[\"spike.json\"][\"series\"] = \"spike.tsv\"",
	       "spike.json: \"series\" spike.tsv does not exist");
	broken(dir, "unknown status", "d[\"spike.json\"][\"status\"] = \"ok\"",
	       "spike.json: \"status\" 'ok' is none of pass, fail, skipped");
	broken(dir, "not JSON",
	       "open(\"spike.json\", \"w\").write(\"{\"); d[\"spike.json\"] = None",
	       "spike.json: not JSON");
}
