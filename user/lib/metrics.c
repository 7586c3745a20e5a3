// SPDX-License-Identifier: MIT
/* metrics.c -- a Prometheus text-format registry: counters, gauges, histograms with labels
 *
 * Values are doubles stored as their bit pattern in a uint64_t and updated with a
 * compare-and-swap loop, so updates from every ingress thread need no lock. Histogram
 * buckets are plain atomic counts (not cumulative; made cumulative when rendered). Series of
 * a family live in a small chained hash on the joined label values; series are never freed
 * before the registry, which is why callers may cache their pointers.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array_size.h"
#include "lib/metrics.h"

#define SERIES_HASH 64

struct metric_series {
	struct metric_series *next;  /* hash chain */
	struct metric_series *order; /* creation order, for stable output */
	char *key;		     /* label values joined by \x1f */
	char *values[METRICS_MAX_LABELS];
	uint64_t value; /* double bits: counter/gauge value or histogram sum */
	uint64_t count; /* histogram observations */
	uint64_t buckets[METRICS_MAX_BUCKETS];
	const struct metric_family *fam;
};

struct metric_family {
	struct metric_family *next;
	enum metric_type type;
	char *name, *help;
	int nlabels;
	char *labels[METRICS_MAX_LABELS];
	int nbuckets;
	double bounds[METRICS_MAX_BUCKETS];
	pthread_mutex_t lock;
	struct metric_series *hash[SERIES_HASH];
	struct metric_series *first, *last;
};

struct metrics {
	pthread_mutex_t lock;
	struct metric_family *first, *last;
	struct {
		metrics_collect_fn *fn;
		void *arg;
	} hooks[8];
	int nhooks;
};

static double bits_to_d(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t d_to_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void family_free(struct metric_family *f)
{
	struct metric_series *s, *n;

	for (s = f->first; s; s = n) {
		n = s->order;
		for (int i = 0; i < f->nlabels; i++)
			free(s->values[i]);
		free(s->key);
		free(s);
	}
	for (int i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	pthread_mutex_destroy(&f->lock);
	free(f->name);
	free(f->help);
	free(f);
}

void metrics_free(struct metrics *m)
{
	struct metric_family *f, *n;

	if (!m)
		return;
	for (f = m->first; f; f = n) {
		n = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static bool valid_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return false;
	return true;
}

static int family_labels(struct metric_family *f, const char *labels)
{
	char *copy, *tok, *save = NULL;

	if (!labels || !*labels)
		return 0;
	copy = strdup(labels);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (f->nlabels == METRICS_MAX_LABELS || !valid_name(tok) || strchr(tok, ':')) {
			free(copy);
			return -EINVAL;
		}
		f->labels[f->nlabels++] = strdup(tok);
	}
	free(copy);
	return 0;
}

struct metric_family *metrics_family(struct metrics *m, enum metric_type type, const char *name,
				     const char *help, const char *labels, const double *buckets,
				     int nbuckets)
{
	struct metric_family *f;
	int err;

	if (!valid_name(name) || nbuckets < 0 || nbuckets > METRICS_MAX_BUCKETS ||
	    (type == METRIC_HISTOGRAM && !nbuckets)) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	if ((err = family_labels(f, labels)) || !f->name || !f->help) {
		family_free(f);
		errno = err ? -err : ENOMEM;
		return NULL;
	}
	f->nbuckets = type == METRIC_HISTOGRAM ? nbuckets : 0;
	for (int i = 0; i < f->nbuckets; i++)
		f->bounds[i] = buckets[i];
	pthread_mutex_lock(&m->lock);
	if (m->last)
		m->last->next = f;
	else
		m->first = f;
	m->last = f;
	pthread_mutex_unlock(&m->lock);
	return f;
}

/* Join the label values into buf (or a malloc'd string when longer than cap): the lookup
 * key. Returns NULL only when out of memory. */
static char *join_values(const struct metric_family *f, const char *const *values, char *buf,
			 size_t cap, unsigned *h)
{
	size_t len = 1;
	char *key, *p;

	for (int i = 0; i < f->nlabels; i++)
		len += strlen(values[i] ? values[i] : "") + 1;
	key = p = len <= cap ? buf : malloc(len);
	if (!key)
		return NULL;
	*h = 2166136261u;
	for (int i = 0; i < f->nlabels; i++) {
		const char *v = values[i] ? values[i] : "";

		p = stpcpy(p, v);
		*p++ = '\x1f';
	}
	*p = '\0';
	for (p = key; *p; p++)
		*h = (*h ^ (unsigned char)*p) * 16777619u;
	return key;
}

static struct metric_series *series_create(struct metric_family *f, char *key,
					   const char *const *values)
{
	struct metric_series *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->key = key;
	s->fam = f;
	for (int i = 0; i < f->nlabels; i++) {
		s->values[i] = strdup(values[i] ? values[i] : "");
		if (!s->values[i]) {
			while (i--)
				free(s->values[i]);
			free(s);
			return NULL;
		}
	}
	return s;
}

struct metric_series *metrics_series(struct metric_family *f, const char *const *values)
{
	struct metric_series *s;
	char buf[256], *key, *owned;
	unsigned h;

	/* the hot path (an existing series) allocates nothing */
	key = join_values(f, values, buf, sizeof(buf), &h);
	if (!key)
		return NULL;
	pthread_mutex_lock(&f->lock);
	for (s = f->hash[h % SERIES_HASH]; s; s = s->next)
		if (!strcmp(s->key, key))
			break;
	if (!s && (owned = key == buf ? strdup(buf) : key)) {
		if ((s = series_create(f, owned, values))) {
			s->next = f->hash[h % SERIES_HASH];
			f->hash[h % SERIES_HASH] = s;
			if (f->last)
				f->last->order = s;
			else
				f->first = s;
			f->last = s;
			key = buf; /* owned by the series now */
		} else {
			free(owned);
			key = buf;
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (key != buf)
		free(key);
	return s;
}

static void atomic_add_double(uint64_t *slot, double v)
{
	uint64_t old = __atomic_load_n(slot, __ATOMIC_RELAXED), new;

	do {
		new = d_to_bits(bits_to_d(old) + v);
	} while (!__atomic_compare_exchange_n(slot, &old, new, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

void metric_add(struct metric_series *s, double v)
{
	if (s)
		atomic_add_double(&s->value, v);
}

void metric_set(struct metric_series *s, double v)
{
	if (s)
		__atomic_store_n(&s->value, d_to_bits(v), __ATOMIC_RELAXED);
}

double metric_value(const struct metric_series *s)
{
	return s ? bits_to_d(__atomic_load_n(&s->value, __ATOMIC_RELAXED)) : 0;
}

void metric_observe(struct metric_series *s, double v)
{
	const struct metric_family *f;
	int i;

	if (!s)
		return;
	f = s->fam;
	for (i = 0; i < f->nbuckets && v > f->bounds[i]; i++)
		;
	if (i < f->nbuckets)
		__atomic_fetch_add(&s->buckets[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
	atomic_add_double(&s->value, v);
}

int metric_hist_set(struct metric_series *s, const uint64_t *buckets, int n, uint64_t count,
		    double sum)
{
	if (!s || s->fam->type != METRIC_HISTOGRAM || n != s->fam->nbuckets)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		__atomic_store_n(&s->buckets[i], buckets[i], __ATOMIC_RELAXED);
	__atomic_store_n(&s->count, count, __ATOMIC_RELAXED);
	__atomic_store_n(&s->value, d_to_bits(sum), __ATOMIC_RELAXED);
	return 0;
}

int metrics_on_collect(struct metrics *m, metrics_collect_fn *fn, void *arg)
{
	if (m->nhooks == (int)(ARRAY_SIZE(m->hooks)))
		return -ENOSPC;
	m->hooks[m->nhooks].fn = fn;
	m->hooks[m->nhooks++].arg = arg;
	return 0;
}

static void print_escaped(FILE *o, const char *s, bool label)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", o);
		else if (*s == '\n')
			fputs("\\n", o);
		else if (*s == '"' && label)
			fputs("\\\"", o);
		else
			fputc(*s, o);
	}
}

/* The shortest %g that reads back as the same double: le="0.00025", not 0.000250000...1 */
static void format_shortest(char *buf, size_t len, double v)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void print_value(FILE *o, double v)
{
	if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", o);
	else if (isnan(v))
		fputs("NaN", o);
	else if (v == (double)(int64_t)v && fabs(v) < 1e15)
		fprintf(o, "%lld", (long long)v);
	else {
		char buf[32];

		format_shortest(buf, sizeof(buf), v);
		fputs(buf, o);
	}
}

/* name{labels[,le="x"]} */
static void print_head(FILE *o, const char *name, const char *suffix, const struct metric_series *s,
		       const char *le)
{
	const struct metric_family *f = s->fam;

	fprintf(o, "%s%s", name, suffix);
	if (!f->nlabels && !le)
		return;
	fputc('{', o);
	for (int i = 0; i < f->nlabels; i++) {
		fprintf(o, "%s%s=\"", i ? "," : "", f->labels[i]);
		print_escaped(o, s->values[i], true);
		fputc('"', o);
	}
	if (le)
		fprintf(o, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	fputc('}', o);
}

static void print_histogram(FILE *o, const struct metric_family *f, const struct metric_series *s)
{
	uint64_t cum = 0, count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
	char le[48];

	for (int i = 0; i < f->nbuckets; i++) {
		cum += __atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
		format_shortest(le, sizeof(le), f->bounds[i]);
		print_head(o, f->name, "_bucket", s, le);
		fprintf(o, " %llu\n", (unsigned long long)(cum < count ? cum : count));
	}
	print_head(o, f->name, "_bucket", s, "+Inf");
	fprintf(o, " %llu\n", (unsigned long long)count);
	print_head(o, f->name, "_sum", s, NULL);
	fputc(' ', o);
	print_value(o, metric_value(s));
	fputc('\n', o);
	print_head(o, f->name, "_count", s, NULL);
	fprintf(o, " %llu\n", (unsigned long long)count);
}

static void print_family(FILE *o, struct metric_family *f)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};

	fprintf(o, "# HELP %s ", f->name);
	print_escaped(o, f->help, false);
	fprintf(o, "\n# TYPE %s %s\n", f->name, types[f->type]);
	pthread_mutex_lock(&f->lock);
	for (const struct metric_series *s = f->first; s; s = s->order) {
		if (f->type == METRIC_HISTOGRAM) {
			print_histogram(o, f, s);
			continue;
		}
		print_head(o, f->name, "", s, NULL);
		fputc(' ', o);
		print_value(o, metric_value(s));
		fputc('\n', o);
	}
	pthread_mutex_unlock(&f->lock);
}

char *metrics_render(struct metrics *m, size_t *len)
{
	char *buf = NULL;
	FILE *o;

	for (int i = 0; i < m->nhooks; i++)
		m->hooks[i].fn(m, m->hooks[i].arg);
	o = open_memstream(&buf, len);
	if (!o)
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (struct metric_family *f = m->first; f; f = f->next)
		print_family(o, f);
	pthread_mutex_unlock(&m->lock);
	if (fclose(o)) {
		free(buf);
		return NULL;
	}
	return buf;
}
