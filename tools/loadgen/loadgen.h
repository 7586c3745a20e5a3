/* SPDX-License-Identifier: MIT */
/* loadgen.h -- the load generator's pieces: options, latency histogram, report
 *
 * loadgen.c runs the connections and the pacing; opts.c parses the command line into
 * struct lg_opts and checks it (every refusal names the flag); report.c keeps the
 * counters, the histogram and the per-second timeline and prints them as text or JSON.
 */
#ifndef SLUICE_LOADGEN_H
#define SLUICE_LOADGEN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define LG_MAX_KEYS    16
#define LG_MAX_MIX     16
#define LG_MAX_PHASES  64
#define LG_MAX_SECONDS 3600
#define LG_STATUS_MAX  600

struct lg_key {
	char key[128];
	uint32_t weight;
};

struct lg_mix {
	int priority; /* 0 critical, 1 normal, 2 low, -1: no "priority" field (tenant's class) */
	char type[128];
	uint32_t weight;
};

struct lg_phase {
	double rate; /* events/s, 0 = as fast as the connections go */
	double seconds;
};

struct lg_opts {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[128], path[256];
	int connections;
	struct lg_phase phases[LG_MAX_PHASES];
	int nphases;
	uint64_t count; /* stop after this many requests (0: phases decide) */
	struct lg_key keys[LG_MAX_KEYS];
	int nkeys;
	struct lg_mix mix[LG_MAX_MIX];
	int nmix;
	char prefix[64];   /* idempotency keys: PREFIX-SEQ */
	double dup_rate;   /* share of requests resending an earlier key */
	int payload_bytes; /* padding inside the payload */
	double drain_s;	   /* after the schedule: wait this long for answers */
	bool json, timeline, allow_remote;
	char log_path[512]; /* one line per answer: key type class status key_index */
};

/* Parse argv into o. Returns 0, 1 after --help (usage printed), or -EINVAL with the
 * reason (naming the flag) printed to stderr. */
int lg_opts_parse(struct lg_opts *o, int argc, char **argv);

/* Counters of one run, filled by loadgen.c, printed by report.c. */
struct lg_second {
	uint64_t sent, answered, ok2xx, s429, s503, other, errors;
	uint64_t hist_lat[64 * 8]; /* log2 buckets, 8 sub-buckets each, microseconds */
	uint32_t max_us;
};

struct lg_report {
	double elapsed_s;
	uint64_t sent, answered, errors, reconnects, dups_sent, late;
	uint64_t status[LG_STATUS_MAX];
	uint64_t retry_after[LG_STATUS_MAX]; /* answers with that status carrying Retry-After */
	uint64_t per_key[LG_MAX_KEYS][3];    /* [key]: 2xx, 429, 503 */
	uint64_t per_class[4][3];	     /* [critical, normal, low, none]: 2xx, 429, 503 */
	struct lg_second total;
	struct lg_second *seconds; /* one per whole second of the run */
	int nseconds;
};

/* Bucket of a latency in microseconds (about 12 % wide). */
int lg_bucket(uint32_t us);
/* Record one answer's latency into s. */
void lg_second_add(struct lg_second *s, uint32_t us);
/* Latency at quantile q (0..1) in microseconds, from the histogram (bucket upper bound). */
uint32_t lg_quantile(const struct lg_second *s, double q);
/* Print the report: JSON when o->json, text otherwise. */
void lg_report_print(FILE *out, const struct lg_opts *o, const struct lg_report *r);

#endif /* SLUICE_LOADGEN_H */
