// SPDX-License-Identifier: MIT
/* pgrows.c -- test rows for the PostgreSQL writer, and a ledger of the outcomes it reports */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgrows.h"

int pgr_ledger_init(struct pgr_ledger *l, int n)
{
	memset(l, 0, sizeof(*l));
	l->n = n;
	l->status = calloc(n, 1);
	pthread_mutex_init(&l->mu, NULL);
	return l->status ? 0 : -ENOMEM;
}

void pgr_ledger_fini(struct pgr_ledger *l)
{
	free(l->status);
	l->status = NULL;
	pthread_mutex_destroy(&l->mu);
}

void pgr_done(void *ctx, void *cookie, enum pg_row_status status)
{
	struct pgr_ledger *l = ctx;
	long i = (long)(uintptr_t)cookie - 1;

	pthread_mutex_lock(&l->mu);
	if (i >= 0 && i < l->n) {
		if (l->status[i])
			l->twice++;
		l->status[i] = 1 + status;
	}
	l->count[status]++;
	pthread_mutex_unlock(&l->mu);
}

int pgr_missing(struct pgr_ledger *l)
{
	int missing = 0;

	pthread_mutex_lock(&l->mu);
	for (int i = 0; i < l->n; i++)
		missing += !l->status[i];
	pthread_mutex_unlock(&l->mu);
	return missing;
}

void pgr_make(struct pg_row *row, char *buf, size_t buflen, const char *prefix, int i)
{
	static const char *const classes[] = {"critical", "normal", "low"};
	int klen = snprintf(buf, buflen, "t%d%c%s-%d%c", i % 4, 0, prefix, i, 0);
	char *payload = buf + klen;
	int plen = snprintf(payload, buflen - klen,
			    "{\"lead\":{\"id\":%d,\"email\":\"lead%d@example.com\",\"score\":%d},"
			    "\"source\":\"web-form\",\"utm\":[\"spring\",\"sale\"]}",
			    i, i, i % 100);

	*row = (struct pg_row){
	    .tenant = buf,
	    .idempotency_key = buf + strlen(buf) + 1,
	    .type = "lead.created",
	    .class_name = classes[i % 3],
	    .payload = payload,
	    .payload_len = plen,
	    .received_us = (int64_t)time(NULL) * 1000000 + i % 1000000,
	    .cookie = (void *)(uintptr_t)(i + 1),
	};
}

int pgr_submit_range(struct pg_writer *w, const char *prefix, int from, int to)
{
	char buf[512];
	struct pg_row row;

	for (int i = from; i < to; i++) {
		int ret;

		pgr_make(&row, buf, sizeof(buf), prefix, i);
		while ((ret = pg_writer_submit(w, &row)) == -EAGAIN)
			usleep(1000);
		if (ret)
			return ret;
	}
	return 0;
}

bool pgr_wait_health(struct pg_writer *w, enum pg_health h, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (pg_writer_health(w) == h)
			return true;
		usleep(10000);
	}
	return pg_writer_health(w) == h;
}
