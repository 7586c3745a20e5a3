// SPDX-License-Identifier: MIT
/* pg_bench.c -- writer-only rows/s against `psql \copy` of the same rows into the same table
 *
 * One private PostgreSQL 15 (fsync on: both sides pay for durable commits), schema applied
 * by the embedded migrations. The same N rows are loaded by `psql \copy` into `events`
 * (the anchor: the fastest way PostgreSQL takes rows, with no dedupe), by `psql \copy` into
 * `event_keys` and `events` (the same rows and indexes the writer fills), and by the writer
 * (batches of INSERT ... ON CONFLICT DO NOTHING into event_keys + events, durable COMMIT per
 * batch, every row reported). Each runs once per round on emptied tables, so a round's
 * ratios compare runs seconds apart (the machine is shared and noisy); the medians over
 * --rounds are the figures. Prints rows/s, both ratios (target: writer >= 0.6x \copy into
 * events) and the writer's batch-size and latency histograms.
 *
 *   pg_bench [--rows N] [--rounds R] [--pool K] [--batch B] [--linger MS] [--pgbouncer]
 *            [--no-fsync]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "lib/clock.h"
#include "sink/pg/migrate.h"
#include "netns.h"
#include "sink/pg/writer.h"
#include "pgharness.h"
#include "pgrows.h"

struct opts {
	int rows, rounds, pool, batch, linger;
	bool bouncer, no_fsync;
};

/* The same rows as the writer gets, in COPY text format (no tabs or backslashes in them):
 * path for events, keys_path for event_keys. */
static int write_copy_files(const char *path, const char *keys_path, int rows)
{
	FILE *f = fopen(path, "w"), *k = fopen(keys_path, "w");
	char buf[512], ts[64];
	struct pg_row r;
	int ret = 0;

	if (!f || !k) {
		ret = -errno;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		time_t sec;
		struct tm tm;

		pgr_make(&r, buf, sizeof(buf), "bench", i);
		sec = r.received_us / 1000000;
		gmtime_r(&sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(f, "%s\t%s\t%s\t%s\t%.*s\t%s.%06lld+00\n", r.tenant, r.idempotency_key,
			r.type, r.class_name, (int)r.payload_len, r.payload, ts,
			(long long)(r.received_us % 1000000));
		fprintf(k, "%s\t%s\t%s.%06lld+00\n", r.tenant, r.idempotency_key, ts,
			(long long)(r.received_us % 1000000));
	}
out:
	if (f && fclose(f) && !ret)
		ret = -errno;
	if (k && fclose(k) && !ret)
		ret = -errno;
	return ret;
}

static int empty_tables(const struct pgh_server *s)
{
	char out[512];
	int ret = pgh_psql(s, out, sizeof(out), "TRUNCATE events, event_keys; CHECKPOINT");

	if (ret)
		fprintf(stderr, "pg_bench: TRUNCATE: %s\n", out);
	return ret;
}

/* \copy into events; with keys_file, first the keys into event_keys in the same session
 * (the same tables and indexes the writer fills, without the dedupe). */
static double run_copy(const struct pgh_server *s, const char *file, const char *keys_file,
		       int rows)
{
	char out[1024], keys[400] = "";
	double t0, dt;
	int ret;

	if (keys_file)
		snprintf(keys, sizeof(keys),
			 "-c '\\copy event_keys (tenant, idempotency_key, received_at) FROM "
			 "'\\''%s'\\'''",
			 keys_file);
	t0 = clock_mono_s();
	ret = pgh_psql_args(s, out, sizeof(out),
			    "%s -c '\\copy events (tenant, idempotency_key, type, class, payload, "
			    "received_at) FROM '\\''%s'\\'''",
			    keys, file);
	dt = clock_mono_s() - t0;
	if (ret || pgh_query_ll(s, "SELECT count(*) FROM events") != rows ||
	    (keys_file && pgh_query_ll(s, "SELECT count(*) FROM event_keys") != rows)) {
		fprintf(stderr, "pg_bench: \\copy failed: %s\n", out);
		return -1;
	}
	return rows / dt;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double run_writer(const char *conninfo, const struct opts *o, struct pg_writer_stats *st,
			 double *client_cpu)
{
	struct pg_writer_config cfg = {.conninfo = conninfo,
				       .pool_size = o->pool,
				       .batch_max = o->batch,
				       .linger_ms = o->linger};
	struct pgr_ledger l;
	struct pg_writer *w;
	double t0, dt;
	int ret;

	if (pgr_ledger_init(&l, o->rows))
		return -1;
	w = pg_writer_new(&cfg, pgr_done, &l);
	if (!w) {
		pgr_ledger_fini(&l);
		return -1;
	}
	/* wait for the pool so the clock measures writing, not connecting */
	for (int i = 0; i < 500 && pg_writer_health(w) != PG_HEALTH_READY; i++)
		usleep(10000);
	t0 = clock_mono_s();
	*client_cpu = cpu_s();
	ret = pgr_submit_range(w, "bench", 0, o->rows);
	if (!ret)
		ret = pg_writer_drain(w, 600000);
	dt = clock_mono_s() - t0;
	*client_cpu = cpu_s() - *client_cpu;
	pg_writer_get_stats(w, st);
	pg_writer_free(w);
	if (ret || l.count[PG_ROW_STORED] != (uint64_t)o->rows) {
		fprintf(stderr, "pg_bench: writer stored %llu of %d (%d)\n",
			(unsigned long long)l.count[PG_ROW_STORED], o->rows, ret);
		dt = -1;
	}
	pgr_ledger_fini(&l);
	return dt > 0 ? o->rows / dt : -1;
}

static void print_hist(const char *name, const char *unit, const struct pg_hist *h)
{
	printf("%s (count %llu, mean %.1f %s)\n", name, (unsigned long long)h->count,
	       h->count ? (double)h->sum / h->count : 0.0, unit);
	for (int i = 0; i <= h->nbounds; i++) {
		if (!h->bucket[i])
			continue;
		if (i < h->nbounds)
			printf("  <= %-8llu %8llu\n", (unsigned long long)h->bounds[i],
			       (unsigned long long)h->bucket[i]);
		else
			printf("  >  %-8llu %8llu\n", (unsigned long long)h->bounds[i - 1],
			       (unsigned long long)h->bucket[i]);
	}
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"rows", 1, 0, 'n'},     {"rounds", 1, 0, 'r'}, {"pool", 1, 0, 'p'},
	    {"batch", 1, 0, 'b'},    {"linger", 1, 0, 'l'}, {"pgbouncer", 0, 0, 'B'},
	    {"no-fsync", 0, 0, 'F'}, {0, 0, 0, 0},
	};
	int c;

	*o = (struct opts){.rows = 200000, .rounds = 3, .pool = 4, .batch = 500, .linger = 5};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int *v = c == 'n'   ? &o->rows
			 : c == 'r' ? &o->rounds
			 : c == 'p' ? &o->pool
			 : c == 'b' ? &o->batch
			 : c == 'l' ? &o->linger
				    : NULL;

		if (c == 'B' || c == 'F') {
			*(c == 'B' ? &o->bouncer : &o->no_fsync) = true;
		} else if (v && (*v = atoi(optarg)) > 0 && (v != &o->rounds || *v <= 64)) {
			continue;
		} else {
			fprintf(stderr,
				"pg_bench: %s: expected a positive number\n"
				"usage: pg_bench [--rows N] [--rounds R] [--pool K] [--batch B] "
				"[--linger MS] [--pgbouncer] [--no-fsync]\n",
				v ? optarg : "option");
			return -EINVAL;
		}
	}
	return 0;
}

/* One round: \copy (events), \copy (event_keys + events), writer, each on emptied tables. */
static int run_round(const struct pgh_server *s, const char *conninfo, const char *file,
		     const char *keys_file, const struct opts *o, double res[3],
		     struct pg_writer_stats *st)
{
	double cpu;

	if (empty_tables(s) || (res[0] = run_copy(s, file, NULL, o->rows)) < 0 || empty_tables(s) ||
	    (res[1] = run_copy(s, file, keys_file, o->rows)) < 0 || empty_tables(s) ||
	    (res[2] = run_writer(conninfo, o, st, &cpu)) < 0)
		return -1;
	printf("round: \\copy events %.0f rows/s, \\copy event_keys+events %.0f rows/s, "
	       "writer %.0f rows/s (%.2fx, %.2fx), writer process CPU %.2f us/row\n",
	       res[0], res[1], res[2], res[2] / res[0], res[2] / res[1], cpu * 1e6 / o->rows);
	return 0;
}

static void print_summary(double *ratio_events, double *ratio_both, int rounds,
			  const struct pg_writer_stats *st)
{
	printf("ratio writer / \\copy into events (the same table), median of %d rounds: %.2f "
	       "(target >= 0.60)\n",
	       rounds, bench_median(ratio_events, rounds));
	printf("ratio writer / \\copy into event_keys + events (the same rows and indexes), "
	       "median: %.2f\n",
	       bench_median(ratio_both, rounds));
	printf("writer (best round): %llu batches, %llu failed\n",
	       (unsigned long long)st->batches_committed, (unsigned long long)st->batches_failed);
	print_hist("batch size", "rows", &st->batch_rows);
	print_hist("batch latency (send to COMMIT read)", "us", &st->batch_latency_us);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/sluice-pg-bench-XXXXXX", file[300], keys_file[300], err[512];
	double best_writer = 0, ratio_events[64], ratio_both[64];
	struct pg_writer_stats st = {0}, best_st = {0};
	struct pgh_options po = {.fsync = true};
	struct pgh_bouncer b = {0};
	struct pgh_server s = {0};
	struct opts o;
	int ret = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_opts(argc, argv, &o))
		return 2;
	po.fsync = !o.no_fsync;
	if (getuid() != 0) {
		fprintf(stderr,
			"pg_bench: must run as root (it starts PostgreSQL as `postgres`)\n");
		return 2;
	}
	if (!mkdtemp(dir) || chmod(dir, 0755) || pgh_server_start(&s, dir, &po))
		goto out;
	if (pg_migrate_conninfo(s.conninfo, err, sizeof(err)) < 0) {
		fprintf(stderr, "pg_bench: %s\n", err);
		goto out;
	}
	if (o.bouncer && pgh_bouncer_start(&b, &s, dir, o.pool))
		goto out;
	snprintf(file, sizeof(file), "%s/rows.copy", s.dir);
	snprintf(keys_file, sizeof(keys_file), "%s/keys.copy", s.dir);
	if (write_copy_files(file, keys_file, o.rows))
		goto out;
	printf("pg_bench: %d rows, %d rounds, pool %d, batch %d, linger %d ms%s, fsync %s\n",
	       o.rows, o.rounds, o.pool, o.batch, o.linger, o.bouncer ? ", via PgBouncer" : "",
	       o.no_fsync ? "off" : "on");
	for (int r = 0; r < o.rounds; r++) {
		double res[3];

		if (run_round(&s, o.bouncer ? b.conninfo : s.conninfo, file, keys_file, &o, res,
			      &st))
			goto out;
		ratio_events[r] = res[2] / res[0];
		ratio_both[r] = res[2] / res[1];
		if (res[2] > best_writer) {
			best_writer = res[2];
			best_st = st;
		}
	}
	print_summary(ratio_events, ratio_both, o.rounds, &best_st);
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "pg_bench: failed (see above)\n");
	pgh_bouncer_stop(&b);
	pgh_server_destroy(&s);
	netns_run(NULL, NULL, 0, "rm -rf %s", dir);
	return ret;
}
