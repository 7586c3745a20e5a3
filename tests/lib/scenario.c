// SPDX-License-Identifier: MIT
/* scenario.c -- shared pieces of the scenario tests: services, loadgen runs, /metrics timelines
 *
 * loadgen runs as a child with its stdout in a file, so the test thread stays free to
 * sample /metrics while it runs; the report is parsed with jansson when it exits. Its
 * answer log goes into PostgreSQL with COPY, so "every 202'd key is stored" is one query
 * against `events`. /metrics is fetched on a fresh connection with Connection: close and
 * read to the end (the page grows with tenants, no fixed buffer in between), from the
 * daemon's admin listener.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "scenario.h"
#include "test_progs.h"

int scn_start_pg(struct scn *s)
{
	char base[600];

	snprintf(base, sizeof(base), "%s/pg", test__tmpdir());
	mkdir(base, 0755);
	return pgh_server_start(&s->pg, base, NULL);
}

int scn_write(const char *name, const char *text, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", test__tmpdir(), name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

int scn_start_daemon(struct scn *s, const char *tenants, const char *routes_text,
		     const char *const *extra)
{
	const char *args[64] = {"--journal-dir", "@journal", "--pg",	  s->pg.conninfo,
				"--routes",	 s->routes,  "--threads", "1"};
	int n = 8;

	if (scn_write("routes.ini", routes_text, s->routes, sizeof(s->routes)))
		return -EIO;
	for (; extra && *extra && n < 63; extra++)
		args[n++] = *extra;
	return sluiced_start(&s->d, tenants, args);
}

long long scn_step_p99_ms(const struct pgh_server *pg, const char *step, const char *cond)
{
	char sql[800];

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY "
		 "extract(epoch FROM r.updated_at - e.received_at))), -1) FROM events e JOIN "
		 "step_results r USING (tenant, idempotency_key) WHERE r.step = '%s' AND %s",
		 step, cond);
	return pgh_query_ll(pg, sql);
}

void scn_stop(struct scn *s)
{
	if (s->d.pid > 0 &&
	    !ASSERT_EQ(sluiced_stop(&s->d, 20000), 0, "sluiced exits 0 on SIGTERM")) {
		char *log = sluiced_log(&s->d);
		size_t n = strlen(log);

		printf("sluiced log (tail):\n%s\n", log + (n > 4000 ? n - 4000 : 0));
		free(log);
	}
	mock_upstream_stop(&s->ai);
	mock_upstream_stop(&s->crm);
	redis_harness_stop(&s->redis);
	pgh_server_destroy(&s->pg);
}

/* ---- loadgen ---- */

int scn_load_start(struct scn_load *l, int port, const char *const *args)
{
	static int seq;
	const char *argv[64];
	char bin[600], ports[16];
	int n = 0, fd;

	memset(l, 0, sizeof(*l));
	snprintf(bin, sizeof(bin), "%s/loadgen", test__outdir());
	snprintf(ports, sizeof(ports), "%d", port);
	snprintf(l->out, sizeof(l->out), "%s/load%d.json", test__tmpdir(), seq);
	snprintf(l->log, sizeof(l->log), "%s/load%d.log", test__tmpdir(), seq++);
	argv[n++] = bin;
	argv[n++] = "--port";
	argv[n++] = ports;
	argv[n++] = "--json";
	argv[n++] = "--log";
	argv[n++] = l->log;
	for (; args && *args && n < 63; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	fflush(NULL);
	l->pid = fork();
	if (l->pid < 0)
		return -errno;
	if (!l->pid) {
		fd = open(l->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return 0;
}

bool scn_load_running(struct scn_load *l)
{
	int status;

	if (l->pid <= 0)
		return false;
	if (waitpid(l->pid, &status, WNOHANG) != l->pid)
		return true;
	l->pid = -status - 1; /* reaped: keep the status for scn_load_wait */
	return false;
}

int scn_load_wait(struct scn_load *l, int timeout_ms)
{
	double end = clock_mono_s() + timeout_ms / 1e3;
	json_error_t jerr;
	int status;

	while (scn_load_running(l) && clock_mono_s() < end)
		usleep(20000);
	if (l->pid > 0) {
		kill(l->pid, SIGKILL);
		waitpid(l->pid, &status, 0);
		l->pid = 0;
		printf("loadgen did not finish within %d ms\n", timeout_ms);
		return -ETIMEDOUT;
	}
	status = -(l->pid + 1);
	l->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		printf("loadgen failed (status 0x%x)\n", status);
		return -EIO;
	}
	l->report = json_load_file(l->out, 0, &jerr);
	if (!l->report) {
		printf("loadgen report %s: %s\n", l->out, jerr.text);
		return -EINVAL;
	}
	return 0;
}

int scn_load_run(struct scn_load *l, int port, const char *const *args, int timeout_ms)
{
	int ret = scn_load_start(l, port, args);

	return ret ?: scn_load_wait(l, timeout_ms);
}

void scn_load_fini(struct scn_load *l)
{
	if (l->pid > 0) {
		kill(l->pid, SIGKILL);
		waitpid(l->pid, NULL, 0);
	}
	l->pid = 0;
	json_decref(l->report);
	l->report = NULL;
}

static json_t *report_at(const struct scn_load *l, const char *path)
{
	json_t *v = l->report;
	char key[64];

	while (v && *path) {
		size_t n = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		v = json_is_array(v) ? json_array_get(v, strtoul(key, NULL, 10))
				     : json_object_get(v, key);
		path += n + (path[n] == '.');
	}
	return v;
}

long long scn_report_ll(const struct scn_load *l, const char *path)
{
	json_t *v = report_at(l, path);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

double scn_report_f(const struct scn_load *l, const char *path)
{
	return json_number_value(report_at(l, path));
}

int scn_load_log_to_pg(const struct scn_load *l, const struct pgh_server *pg, const char *table)
{
	PGconn *c = PQconnectdb(pg->conninfo);
	char sql[256], buf[8192];
	PGresult *res;
	FILE *f = fopen(l->log, "r");
	int ret = -1;
	size_t n;

	if (!f || PQstatus(c) != CONNECTION_OK)
		goto out;
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %s (key text, type text, class text, status int, kidx int); "
		 "COPY %s FROM STDIN WITH (FORMAT text, DELIMITER ' ')",
		 table, table);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		printf("%s: %s", sql, PQresultErrorMessage(res));
		PQclear(res);
		goto out;
	}
	PQclear(res);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (PQputCopyData(c, buf, (int)n) != 1)
			goto out;
	if (PQputCopyEnd(c, NULL) != 1)
		goto out;
	res = PQgetResult(c);
	ret = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
	if (ret)
		printf("COPY %s: %s", table, PQresultErrorMessage(res));
	PQclear(res);
out:
	if (f)
		fclose(f);
	PQfinish(c);
	return ret;
}

/* ---- /metrics ---- */

int scn_metrics(int admin_port, char *buf, size_t cap)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)admin_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = -EIO;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t len = 0;
	char *body;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
		goto out;
	while (len + 1 < cap && poll(&p, 1, 3000) == 1) {
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (body && !strncmp(buf, "HTTP/1.1 200", 12)) {
		memmove(buf, body + 4, len - (size_t)(body + 4 - buf) + 1);
		ret = 0;
	}
out:
	close(fd);
	return ret;
}

double scn_metric(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	double sum = 0;
	bool found = false;

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
		const char *v;

		if (*line == '#' || strncmp(line, prefix, n))
			continue;
		/* a whole name must end there: "x" must not match "x_total" */
		if (prefix[n - 1] != '}' && prefix[n - 1] != ',' && line[n] != ' ' &&
		    line[n] != '{')
			continue;
		v = strchr(line, ' ');
		if (!v || v > strchr(line, '\n'))
			continue;
		sum += strtod(v + 1, NULL);
		found = true;
	}
	return found ? sum : -1;
}

/* ---- timeline ---- */

static const char *const classes[3] = {"critical", "normal", "low"};

void scn_timeline_init(struct scn_timeline *tl)
{
	memset(tl, 0, sizeof(*tl));
	tl->t0 = clock_mono_s();
}

void scn_timeline_watch(struct scn_timeline *tl, const char *label, const char *series)
{
	if (tl->nx >= SCN_EXTRA)
		return;
	tl->xlabel[tl->nx] = label;
	snprintf(tl->xseries[tl->nx++], sizeof(tl->xseries[0]), "%s", series);
}

double scn_timeline_now(const struct scn_timeline *tl)
{
	return clock_mono_s() - tl->t0;
}

int scn_timeline_sample(struct scn_timeline *tl, int admin_port)
{
	static char text[1 << 20];
	struct scn_row *r;
	char name[160];
	int ret;

	if (tl->n >= SCN_MAX_ROWS)
		return -ENOSPC;
	ret = scn_metrics(admin_port, text, sizeof(text));
	if (ret)
		return ret;
	r = &tl->rows[tl->n++];
	r->t = scn_timeline_now(tl);
	r->state = (int)scn_metric(text, "sluice_overload_state");
	for (int c = 0; c < 3; c++) {
		snprintf(name, sizeof(name), "sluice_queue_lag_seconds{class=\"%s\"}", classes[c]);
		r->lag[c] = scn_metric(text, name);
		snprintf(name, sizeof(name), "sluice_queue_waiting{class=\"%s\"}", classes[c]);
		r->waiting[c] = scn_metric(text, name);
	}
	r->done = scn_metric(text, "sluice_worker_events_total{outcome=\"done\"}");
	r->shed = scn_metric(text, "sluice_worker_events_total{outcome=\"shed\"}");
	r->skipped = scn_metric(text, "sluice_worker_events_total{outcome=\"step_skipped\"}");
	r->transitions = scn_metric(text, "sluice_overload_transitions_total");
	r->transitions = r->transitions < 0 ? 0 : r->transitions; /* no series before the first */
	r->accepted = scn_metric(text, "sluice_events_accepted_total");
	for (int i = 0; i < tl->nx; i++)
		r->x[i] = scn_metric(text, tl->xseries[i]);
	return 0;
}

void scn_timeline_follow(struct scn_timeline *tl, int admin_port, struct scn_load *l, int period_ms,
			 double min_s)
{
	while (scn_load_running(l) || scn_timeline_now(tl) < min_s) {
		double next = scn_timeline_now(tl) + period_ms / 1e3;

		scn_timeline_sample(tl, admin_port);
		while (scn_timeline_now(tl) < next)
			usleep(10000);
	}
}

void scn_timeline_print(const struct scn_timeline *tl, FILE *out)
{
	static const char *const states[] = {"NORMAL", "THIN", "EMERGENCY"};

	fprintf(out, "%6s %-9s %7s %7s %7s %6s %6s %6s %8s %8s %6s %5s", "t_s", "state", "lag_cr",
		"lag_no", "lag_lo", "wt_cr", "wt_no", "wt_lo", "in/s", "done/s", "shed", "trans");
	for (int i = 0; i < tl->nx; i++)
		fprintf(out, " %6s", tl->xlabel[i]);
	fputc('\n', out);
	for (int i = 0; i < tl->n; i++) {
		const struct scn_row *r = &tl->rows[i], *p = i ? &tl->rows[i - 1] : NULL;
		double dt = p ? r->t - p->t : 0;

		fprintf(out,
			"%6.2f %-9s %7.2f %7.2f %7.2f %6.0f %6.0f %6.0f %8.0f %8.0f %6.0f %5.0f",
			r->t, r->state >= 0 && r->state < 3 ? states[r->state] : "?", r->lag[0],
			r->lag[1], r->lag[2], r->waiting[0], r->waiting[1], r->waiting[2],
			dt > 0 ? (r->accepted - p->accepted) / dt : 0,
			dt > 0 ? (r->done - p->done) / dt : 0, r->shed, r->transitions);
		for (int k = 0; k < tl->nx; k++)
			fprintf(out, " %6.2f", r->x[k]);
		fputc('\n', out);
	}
}
