// SPDX-License-Identifier: MIT
/* routes.c -- the routes file: event type -> class, steps and pools; upstream and pool sections
 *
 * Parsed with inih through a line-counting reader, so every message can name file:line even
 * for checks that need the whole file (a step naming an upstream defined further down).
 * Two passes: the first collects [pool] and [upstream] names, the second parses routes and
 * checks every reference. The result is immutable; a reload builds a new one and swaps it,
 * so a broken file never replaces a good configuration.
 */
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink/upstream/upstream_body.h"
#include "work/routes.h"

#define DEFAULT_POOL "db"

struct parse {
	const char *name;	/* file name for messages */
	const char *text, *pos; /* reader cursor */
	int line;		/* line most recently handed to inih */
	int section_line;	/* line of the last [section] header read */
	int pass;
	struct routes *r;
	struct route *cur; /* route section being parsed (pass 2) */
	char *err;
	size_t errlen;
	bool failed;
};

static char *reader(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	const char *nl;
	size_t n;

	if (!*p->pos)
		return NULL;
	nl = strchr(p->pos, '\n');
	n = nl ? (size_t)(nl - p->pos + 1) : strlen(p->pos);
	if (n >= (size_t)size)
		n = size - 1;
	memcpy(buf, p->pos, n);
	buf[n] = 0;
	p->pos += n;
	p->line++;
	if (buf[strspn(buf, " \t")] == '[')
		p->section_line = p->line;
	return buf;
}

__attribute__((format(printf, 2, 3))) static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return 0;
	p->failed = true;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen > (size_t)n ? p->errlen - n : 0, fmt, ap);
	va_end(ap);
	return 0;
}

const char *routes_class_name(uint32_t class)
{
	static const char *const names[] = {"critical", "normal", "low"};

	return class < 3 ? names[class] : "?";
}

int routes_parse_class(const char *s, uint32_t *class)
{
	for (uint32_t c = 0; c < 3; c++) {
		if (!strcmp(s, routes_class_name(c))) {
			*class = c;
			return 0;
		}
	}
	return -EINVAL;
}

int routes_pool_index(const struct routes *r, const char *name)
{
	for (int i = 0; i < r->npools; i++)
		if (!strcmp(r->pools[i].name, name))
			return i;
	return -1;
}

static bool has_upstream(const struct routes *r, const char *name)
{
	for (int i = 0; i < r->nupstreams; i++)
		if (!strcmp(r->upstreams[i], name))
			return true;
	return false;
}

static int add_pool(struct parse *p, const char *name)
{
	struct route_pool *np;

	if (routes_pool_index(p->r, name) >= 0)
		return routes_pool_index(p->r, name);
	np = realloc(p->r->pools, sizeof(*np) * (p->r->npools + 1));
	if (!np)
		return -ENOMEM;
	p->r->pools = np;
	np += p->r->npools;
	memset(np, 0, sizeof(*np));
	snprintf(np->name, sizeof(np->name), "%s", name);
	np->threads = 2;
	np->inflight = 32;
	return p->r->npools++;
}

static int positive(struct parse *p, const char *key, const char *value, int *out)
{
	char *end;
	long v = strtol(value, &end, 10);

	if (*end || v < 1 || v > 100000)
		return fail(p, "%s = %s: want a whole number from 1 to 100000", key, value);
	*out = (int)v;
	return 1;
}

/* Split "[kind name]" headers: kind must be route, pool or upstream. */
static bool section_is(const char *section, const char *kind, const char **name)
{
	size_t n = strlen(kind);

	if (strncmp(section, kind, n) || section[n] != ' ')
		return false;
	*name = section + n + 1;
	while (**name == ' ')
		(*name)++;
	return **name != 0;
}

static int pass1(struct parse *p, const char *section, const char *key, const char *value)
{
	const char *name;
	int idx;

	if (section_is(section, "pool", &name)) {
		idx = add_pool(p, name);
		if (idx < 0)
			return fail(p, "out of memory");
		if (!strcmp(key, "threads"))
			return positive(p, key, value, &p->r->pools[idx].threads);
		if (!strcmp(key, "inflight"))
			return positive(p, key, value, &p->r->pools[idx].inflight);
		return fail(p, "[pool %s] %s: unknown key (valid: threads, inflight)", name, key);
	}
	if (section_is(section, "upstream", &name)) {
		struct route_kv *kv =
		    realloc(p->r->upstream_kv, sizeof(*kv) * (p->r->nupstream_kv + 1));
		if (!kv)
			return fail(p, "out of memory");
		p->r->upstream_kv = kv;
		kv += p->r->nupstream_kv++;
		snprintf(kv->section, sizeof(kv->section), "%s", name);
		snprintf(kv->key, sizeof(kv->key), "%s", key);
		snprintf(kv->value, sizeof(kv->value), "%s", value);
		kv->line = p->line;
		if (!has_upstream(p->r, name)) {
			char **u = realloc(p->r->upstreams, sizeof(*u) * (p->r->nupstreams + 1));

			if (!u || !(u[p->r->nupstreams] = strdup(name)))
				return fail(p, "out of memory");
			p->r->upstreams = u;
			p->r->nupstreams++;
		}
		return 1;
	}
	if (section_is(section, "route", &name))
		return 1;
	return fail(p, "[%s]: unknown section (valid: [route TYPE], [pool NAME], [upstream NAME])",
		    section);
}

/* template=NAME of a call step: the upstream section's `template.NAME` line, checked. */
static int step_template(struct parse *p, struct route_step *s, const char *value, const char *name)
{
	char key[ROUTES_NAME_LEN + 16], why[160];

	snprintf(key, sizeof(key), "template.%s", name);
	for (int i = 0; i < p->r->nupstream_kv; i++) {
		const struct route_kv *kv = &p->r->upstream_kv[i];

		if (strcmp(kv->section, s->upstream) || strcmp(kv->key, key))
			continue;
		if (upstream_template_check(kv->value, why, sizeof(why)))
			return fail(p, "step = %s: %s: %s", value, key, why);
		snprintf(s->template, sizeof(s->template), "%s", kv->value);
		return 1;
	}
	return fail(p, "step = %s: [upstream %s] has no `%s = ...` line (write it above)", value,
		    s->upstream, key);
}

/* "store pool=db" | "call UPSTREAM pool=NAME [optional] [path=/p] [method=M] [template=T]" */
static int parse_step(struct parse *p, struct route *rt, const char *value)
{
	char buf[256], *tok, *save;
	struct route_step *s;
	int i = 0;

	if (rt->nsteps >= ROUTES_MAX_STEPS)
		return fail(p, "route %s: more than %d steps", rt->type, ROUTES_MAX_STEPS);
	s = &rt->steps[rt->nsteps];
	memset(s, 0, sizeof(*s));
	snprintf(s->pool, sizeof(s->pool), DEFAULT_POOL);
	snprintf(buf, sizeof(buf), "%s", value);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save), i++) {
		if (i == 0 && !strcmp(tok, "store")) {
			s->kind = STEP_STORE;
		} else if (i == 0 && !strcmp(tok, "call")) {
			s->kind = STEP_CALL;
			tok = strtok_r(NULL, " \t", &save);
			if (!tok || strchr(tok, '='))
				return fail(p, "step = %s: `call` needs an upstream name", value);
			if (!has_upstream(p->r, tok))
				return fail(p, "step = %s: no [upstream %s] section", value, tok);
			snprintf(s->upstream, sizeof(s->upstream), "%s", tok);
		} else if (i == 0) {
			return fail(p, "step = %s: want `store` or `call UPSTREAM`", value);
		} else if (!strncmp(tok, "pool=", 5) && tok[5]) {
			snprintf(s->pool, sizeof(s->pool), "%s", tok + 5);
		} else if (s->kind == STEP_CALL && !strncmp(tok, "path=", 5)) {
			if (tok[5] != '/' || strlen(tok + 5) >= sizeof(s->path))
				return fail(p,
					    "step = %s: path must start with / (at most %zu bytes)",
					    value, sizeof(s->path) - 1);
			snprintf(s->path, sizeof(s->path), "%s", tok + 5);
		} else if (s->kind == STEP_CALL && !strncmp(tok, "method=", 7)) {
			if (strcmp(tok + 7, "POST") && strcmp(tok + 7, "PUT") &&
			    strcmp(tok + 7, "PATCH"))
				return fail(p, "step = %s: method must be POST, PUT or PATCH",
					    value);
			snprintf(s->method, sizeof(s->method), "%s", tok + 7);
		} else if (s->kind == STEP_CALL && !strncmp(tok, "template=", 9) && tok[9]) {
			if (!step_template(p, s, value, tok + 9))
				return 0;
		} else if (!strcmp(tok, "optional")) {
			s->optional = true;
		} else if (!strcmp(tok, "essential")) {
			s->optional = false;
		} else {
			return fail(
			    p,
			    "step = %s: unknown word `%s` (valid: pool=NAME, optional, essential; "
			    "for call: path=/PATH, method=POST|PUT|PATCH, template=NAME)",
			    value, tok);
		}
	}
	if (!i)
		return fail(p, "step: empty (want `store` or `call UPSTREAM`)");
	if (routes_pool_index(p->r, s->pool) < 0 && strcmp(s->pool, DEFAULT_POOL))
		return fail(p, "step = %s: no [pool %s] section", value, s->pool);
	s->pool_idx = add_pool(p, s->pool);
	if (s->pool_idx < 0)
		return fail(p, "out of memory");
	rt->nsteps++;
	return 1;
}

static struct route *route_for(struct parse *p, const char *type)
{
	struct route *nr;

	if (p->cur && p->cur->line == p->section_line)
		return p->cur;
	for (int i = 0; i < p->r->nroutes; i++)
		if (!strcmp(p->r->routes[i].type, type)) {
			p->line = p->section_line;
			fail(p, "[route %s]: defined twice (first at line %d)", type,
			     p->r->routes[i].line);
			return NULL;
		}
	nr = realloc(p->r->routes, sizeof(*nr) * (p->r->nroutes + 1));
	if (!nr)
		return NULL;
	p->r->routes = nr;
	p->cur = nr + p->r->nroutes++;
	memset(p->cur, 0, sizeof(*p->cur));
	snprintf(p->cur->type, sizeof(p->cur->type), "%s", type);
	p->cur->class = 1; /* normal */
	p->cur->line = p->section_line;
	return p->cur;
}

static int pass2(struct parse *p, const char *section, const char *key, const char *value)
{
	const char *type;
	struct route *rt;

	if (!section_is(section, "route", &type))
		return 1;
	rt = route_for(p, type);
	if (!rt)
		return p->failed ? 0 : fail(p, "out of memory");
	if (!strcmp(key, "class")) {
		if (routes_parse_class(value, &rt->class))
			return fail(p, "class = %s: want critical, normal or low", value);
		rt->class_set = true;
		return 1;
	}
	if (!strcmp(key, "sheddable")) {
		if (!strcasecmp(value, "yes") || !strcasecmp(value, "true"))
			rt->sheddable = true;
		else if (!strcasecmp(value, "no") || !strcasecmp(value, "false"))
			rt->sheddable = false;
		else
			return fail(p, "sheddable = %s: want yes or no", value);
		return 1;
	}
	if (!strcmp(key, "step"))
		return parse_step(p, rt, value);
	return fail(p, "[route %s] %s: unknown key (valid: class, sheddable, step)", type, key);
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;

	if (p->failed)
		return 0;
	return p->pass == 1 ? pass1(p, section, key, value) : pass2(p, section, key, value);
}

static int finish(struct parse *p)
{
	struct routes *r = p->r;

	for (int i = 0; i < r->nroutes; i++) {
		if (!r->routes[i].nsteps) {
			p->line = r->routes[i].line;
			return fail(p, "[route %s]: no steps (add e.g. `step = store pool=db`)",
				    r->routes[i].type);
		}
		if (!strcmp(r->routes[i].type, "default"))
			r->def = &r->routes[i];
	}
	if (!r->def) {
		int idx = add_pool(p, DEFAULT_POOL);

		if (idx < 0)
			return fail(p, "out of memory");
		r->builtin = (struct route){.type = "default", .class = 1, .nsteps = 1};
		r->builtin.steps[0] =
		    (struct route_step){.kind = STEP_STORE, .pool = DEFAULT_POOL, .pool_idx = idx};
		r->def = &r->builtin;
	}
	return 1;
}

struct routes *routes_parse(const char *text, const char *name, char *err, size_t errlen)
{
	struct parse p = {.name = name, .text = text, .err = err, .errlen = errlen};
	int ret;

	p.r = calloc(1, sizeof(*p.r));
	if (!p.r)
		return NULL;
	for (p.pass = 1; p.pass <= 2 && !p.failed; p.pass++) {
		p.pos = text;
		p.line = 0;
		p.section_line = 0;
		p.cur = NULL;
		ret = ini_parse_stream(reader, &p, handler, &p);
		if (ret > 0 && !p.failed) {
			p.line = ret;
			fail(&p, "syntax error (want `[section]`, `key = value` or a ; comment)");
		}
	}
	if (!p.failed)
		finish(&p);
	if (p.failed) {
		routes_free(p.r);
		errno = EINVAL;
		return NULL;
	}
	return p.r;
}

struct routes *routes_load(const char *path, char *err, size_t errlen)
{
	struct routes *r;
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return NULL;
	}
	n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(text);
		text = strdup("");
	}
	r = text ? routes_parse(text, path, err, errlen) : NULL;
	free(text);
	return r;
}

void routes_free(struct routes *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->nupstreams; i++)
		free(r->upstreams[i]);
	free(r->upstreams);
	free(r->upstream_kv);
	free(r->pools);
	free(r->routes);
	free(r);
}

const struct route *routes_match(const struct routes *r, const char *type)
{
	const struct route *best = NULL;
	size_t best_len = 0;

	for (int i = 0; i < r->nroutes; i++) {
		const char *t = r->routes[i].type;
		size_t n = strlen(t);

		if (!strcmp(t, type))
			return &r->routes[i];
		if (n >= 2 && t[n - 1] == '*' && t[n - 2] == '.' && !strncmp(t, type, n - 1) &&
		    n - 1 > best_len) {
			best = &r->routes[i];
			best_len = n - 1;
		}
	}
	return best ? best : r->def;
}
