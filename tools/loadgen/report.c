// SPDX-License-Identifier: MIT
/* report.c -- loadgen's latency histogram and its report (text table or one JSON object)
 *
 * Latencies go into log2 buckets split 8 ways (about 12 % wide), in microseconds, for the
 * whole run and for each second; quantiles report a bucket's upper bound, the maximum is
 * exact. The JSON object is what tests parse: totals, per-status counts, Retry-After
 * counts, per-key and per-class outcomes, latency and (with --timeline) one row a second.
 */
#include <jansson.h>
#include <string.h>

#include "loadgen.h"

int lg_bucket(uint32_t us)
{
	int log2 = 31 - __builtin_clz(us | 1);

	if (us < 8)
		return (int)us;
	return log2 * 8 + (int)((us >> (log2 - 3)) & 7);
}

static uint32_t bucket_upper(int b)
{
	int log2 = b / 8, sub = b % 8;

	if (log2 < 3) /* 0..7 are exact; 8..23 are never filled (lg_bucket) */
		return (uint32_t)b;
	return (uint32_t)(((uint64_t)(8 + sub + 1) << (log2 - 3)) - 1);
}

void lg_second_add(struct lg_second *s, uint32_t us)
{
	s->hist_lat[lg_bucket(us)]++;
	if (us > s->max_us)
		s->max_us = us;
}

uint32_t lg_quantile(const struct lg_second *s, double q)
{
	uint64_t n = 0, seen = 0, want;
	int b;

	for (b = 0; b < 64 * 8; b++)
		n += s->hist_lat[b];
	if (!n)
		return 0;
	want = (uint64_t)(q * (double)n + 0.5);
	if (want < 1)
		want = 1;
	for (b = 0; b < 64 * 8; b++) {
		seen += s->hist_lat[b];
		if (seen >= want)
			break;
	}
	return bucket_upper(b) < s->max_us ? bucket_upper(b) : s->max_us;
}

static const char *const class_names[4] = {"critical", "normal", "low", "tenant"};

static json_t *outcome3(const uint64_t v[3])
{
	return json_pack("{s:I,s:I,s:I}", "2xx", (json_int_t)v[0], "429", (json_int_t)v[1], "503",
			 (json_int_t)v[2]);
}

static json_t *latency(const struct lg_second *s)
{
	return json_pack("{s:f,s:f,s:f,s:f}", "p50_ms", lg_quantile(s, 0.50) / 1e3, "p99_ms",
			 lg_quantile(s, 0.99) / 1e3, "p999_ms", lg_quantile(s, 0.999) / 1e3,
			 "max_ms", s->max_us / 1e3);
}

static json_t *timeline_json(const struct lg_report *r)
{
	json_t *a = json_array();

	for (int i = 0; i < r->nseconds; i++) {
		const struct lg_second *s = &r->seconds[i];

		json_array_append_new(
		    a, json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "t", i, "sent",
				 (json_int_t)s->sent, "answered", (json_int_t)s->answered, "2xx",
				 (json_int_t)s->ok2xx, "429", (json_int_t)s->s429, "503",
				 (json_int_t)s->s503, "other", (json_int_t)s->other, "errors",
				 (json_int_t)s->errors, "p99_ms", lg_quantile(s, 0.99) / 1e3,
				 "max_ms", s->max_us / 1e3));
	}
	return a;
}

static void print_json(FILE *out, const struct lg_opts *o, const struct lg_report *r)
{
	json_t *root = json_object(), *st = json_object(), *ra = json_object(),
	       *keys = json_array();
	json_t *cls = json_object();
	char code[12];

	for (int i = 0; i < LG_STATUS_MAX; i++) {
		if (!r->status[i] && !r->retry_after[i])
			continue;
		snprintf(code, sizeof(code), "%d", i);
		json_object_set_new(st, code, json_integer((json_int_t)r->status[i]));
		if (r->retry_after[i])
			json_object_set_new(ra, code, json_integer((json_int_t)r->retry_after[i]));
	}
	for (int i = 0; i < o->nkeys; i++)
		json_array_append_new(keys, outcome3(r->per_key[i]));
	for (int i = 0; i < 4; i++)
		json_object_set_new(cls, class_names[i], outcome3(r->per_class[i]));
	json_object_set_new(root, "elapsed_s", json_real(r->elapsed_s));
	json_object_set_new(root, "sent", json_integer((json_int_t)r->sent));
	json_object_set_new(root, "answered", json_integer((json_int_t)r->answered));
	json_object_set_new(root, "errors", json_integer((json_int_t)r->errors));
	json_object_set_new(root, "reconnects", json_integer((json_int_t)r->reconnects));
	json_object_set_new(root, "dups_sent", json_integer((json_int_t)r->dups_sent));
	json_object_set_new(root, "late", json_integer((json_int_t)r->late));
	json_object_set_new(root, "rate",
			    json_real(r->elapsed_s > 0 ? r->answered / r->elapsed_s : 0));
	json_object_set_new(root, "status", st);
	json_object_set_new(root, "retry_after", ra);
	json_object_set_new(root, "per_key", keys);
	json_object_set_new(root, "per_class", cls);
	json_object_set_new(root, "latency", latency(&r->total));
	if (o->timeline)
		json_object_set_new(root, "timeline", timeline_json(r));
	json_dumpf(root, out, JSON_COMPACT);
	fputc('\n', out);
	json_decref(root);
}

static void print_text(FILE *out, const struct lg_opts *o, const struct lg_report *r)
{
	fprintf(out,
		"sent %llu, answered %llu in %.2f s (%.0f/s), errors %llu, reconnects %llu, "
		"duplicates sent %llu, late %llu\n",
		(unsigned long long)r->sent, (unsigned long long)r->answered, r->elapsed_s,
		r->elapsed_s > 0 ? r->answered / r->elapsed_s : 0, (unsigned long long)r->errors,
		(unsigned long long)r->reconnects, (unsigned long long)r->dups_sent,
		(unsigned long long)r->late);
	for (int i = 0; i < LG_STATUS_MAX; i++)
		if (r->status[i])
			fprintf(out, "  status %d: %llu (Retry-After on %llu)\n", i,
				(unsigned long long)r->status[i],
				(unsigned long long)r->retry_after[i]);
	fprintf(out, "latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
		lg_quantile(&r->total, 0.5) / 1e3, lg_quantile(&r->total, 0.99) / 1e3,
		lg_quantile(&r->total, 0.999) / 1e3, r->total.max_us / 1e3);
	if (!o->timeline)
		return;
	fprintf(out, "%4s %7s %7s %7s %6s %6s %6s %6s %9s\n", "t", "sent", "answer", "2xx", "429",
		"503", "other", "errors", "p99_ms");
	for (int i = 0; i < r->nseconds; i++) {
		const struct lg_second *s = &r->seconds[i];

		fprintf(out, "%4d %7llu %7llu %7llu %6llu %6llu %6llu %6llu %9.2f\n", i,
			(unsigned long long)s->sent, (unsigned long long)s->answered,
			(unsigned long long)s->ok2xx, (unsigned long long)s->s429,
			(unsigned long long)s->s503, (unsigned long long)s->other,
			(unsigned long long)s->errors, lg_quantile(s, 0.99) / 1e3);
	}
}

void lg_report_print(FILE *out, const struct lg_opts *o, const struct lg_report *r)
{
	if (o->json)
		print_json(out, o, r);
	else
		print_text(out, o, r);
}
