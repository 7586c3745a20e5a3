/* SPDX-License-Identifier: MIT */
/* routes.h -- the routes file: event type -> class, steps and pools; upstream and pool sections
 *
 * Format (INI, one file, reloaded on SIGHUP with the tenants file):
 *
 *	[pool db]                    ; a bulkhead: its own threads and in-flight limit
 *	threads = 4
 *	inflight = 64
 *
 *	[upstream ai]                ; settings handed to the upstream module as key/value
 *	url = http://127.0.0.1:9000/score
 *
 *	[route lead.created]         ; an event type; "prefix.*" matches by prefix
 *	class = critical             ; critical | normal | low (default: the tenant's class)
 *	sheddable = no               ; yes: EMERGENCY may sample-drop these (analytics)
 *	step = store pool=db         ; in order; store | call UPSTREAM, pool=NAME, optional
 *	step = call ai pool=ai optional
 *	step = call n8n path=/webhook/lead method=PUT template=lead
 *	                             ; one upstream, many webhooks: path replaces the url's
 *	                             ; path, template=NAME uses the section's template.NAME
 *
 *	[route default]              ; used for every type no other route matches
 *
 * Matching: exact type, then the longest "prefix.*" route, then `default` (built in as
 * normal + store on pool db when the file has none). A step's pool must have a [pool]
 * section, except `db` (2 threads, 32 in flight unless configured). Every error names
 * file:line.
 */
#ifndef SLUICE_ROUTES_H
#define SLUICE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTES_MAX_STEPS 8
#define ROUTES_NAME_LEN	 64

enum step_kind {
	STEP_STORE,
	STEP_CALL,
};

struct route_step {
	enum step_kind kind;
	bool optional;			/* skipped in THIN mode */
	char upstream[ROUTES_NAME_LEN]; /* STEP_CALL */
	char path[192];			/* call: path=/webhook/lead ("" = the upstream's url) */
	char method[8];			/* call: method=PUT ("" = the upstream's method) */
	char template[256];		/* call: template=NAME, the upstream's template.NAME */
	char pool[ROUTES_NAME_LEN];
	int pool_idx; /* index into routes.pools */
};

struct route {
	char type[ROUTES_NAME_LEN]; /* exact, "prefix.*", or "default" */
	uint32_t class;		    /* enum sluice_class */
	bool class_set;		    /* the file gave a class (else the ingress decides) */
	bool sheddable;
	int nsteps;
	struct route_step steps[ROUTES_MAX_STEPS];
	int line;
};

struct route_pool {
	char name[ROUTES_NAME_LEN];
	int threads;
	int inflight;
};

/* A key = value of an [upstream NAME] section, in file order. */
struct route_kv {
	char section[ROUTES_NAME_LEN];
	char key[ROUTES_NAME_LEN];
	char value[256];
	int line;
};

struct routes {
	struct route *routes;
	int nroutes;
	const struct route *def;
	struct route_pool *pools;
	int npools;
	struct route_kv *upstream_kv;
	int nupstream_kv;
	char **upstreams; /* distinct [upstream NAME]s */
	int nupstreams;
	struct route builtin; /* the default route when the file defines none */
};

/* Parse and validate path. Returns a new routes (caller frees with routes_free) or NULL with
 * errno set and err = "path:line: what is wrong and what is valid". */
struct routes *routes_load(const char *path, char *err, size_t errlen);
/* The same from a string (name is used in messages). */
struct routes *routes_parse(const char *text, const char *name, char *err, size_t errlen);
void routes_free(struct routes *r);

/* The route for an event type (never NULL). */
const struct route *routes_match(const struct routes *r, const char *type);

/* Index of pool name, or -1. */
int routes_pool_index(const struct routes *r, const char *name);

const char *routes_class_name(uint32_t class);
/* Parse "critical" | "normal" | "low"; -EINVAL otherwise. */
int routes_parse_class(const char *s, uint32_t *class);

#endif /* SLUICE_ROUTES_H */
