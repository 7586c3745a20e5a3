// SPDX-License-Identifier: MIT
/* alert.c -- overload alerts as PagerDuty Events v2 JSON POSTed to a configured URL
 *
 * A small ring of pending events served by one thread with libcurl's easy interface:
 * each event is POSTed in order (a resolve never overtakes its trigger), retried up to
 * three times with a short backoff, then counted as failed. The body follows Events v2:
 *	{"routing_key":…,"event_action":"trigger"|"resolve","dedup_key":"sluice-overload-<node>",
 *	 "payload":{"summary":…,"source":…,"severity":"critical","component":"sluiced",
 *	            "custom_details":{…}}}
 * (resolve carries only routing_key, event_action and dedup_key).
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/alert.h"
#include "lib/log.h"

#define ALERT_RING	 16
#define ALERT_TRIES	 3
#define ALERT_TIMEOUT_MS 5000

struct alert {
	char *url, *routing_key, *source, *dedup_key;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *ring[ALERT_RING]; /* JSON bodies, owned */
	unsigned head, tail;
	int stopping;
	struct alert_stats stats;
};

static size_t discard(char *ptr, size_t size, size_t n, void *arg)
{
	return size * n;
}

static int post(struct alert *a, CURL *c, const char *body)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	long code = 0;
	CURLcode rc;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, a->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ALERT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	if (rc != CURLE_OK) {
		log_warn("alert: POST failed", "url=%s err=\"%s\"", a->url, curl_easy_strerror(rc));
		return -EIO;
	}
	if (code < 200 || code > 299) {
		log_warn("alert: receiver refused", "url=%s status=%ld", a->url, code);
		return -EIO;
	}
	return 0;
}

static void *alert_thread(void *arg)
{
	struct alert *a = arg;
	CURL *c = curl_easy_init();

	pthread_mutex_lock(&a->lock);
	for (;;) {
		char *body;
		int i, ret = -EIO;

		while (a->head == a->tail && !a->stopping)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->head == a->tail)
			break;
		body = a->ring[a->tail % ALERT_RING];
		pthread_mutex_unlock(&a->lock);
		for (i = 0; i < ALERT_TRIES && ret && c; i++) {
			if (i)
				nanosleep(&(struct timespec){.tv_nsec = 200000000L * i}, NULL);
			ret = post(a, c, body);
		}
		pthread_mutex_lock(&a->lock);
		a->ring[a->tail % ALERT_RING] = NULL;
		a->tail++;
		if (ret)
			a->stats.failed++;
		else
			a->stats.sent++;
		free(body);
	}
	pthread_mutex_unlock(&a->lock);
	curl_easy_cleanup(c);
	return NULL;
}

struct alert *alert_new(const char *url, const char *routing_key, const char *source)
{
	struct alert *a;
	char key[256];

	if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	snprintf(key, sizeof(key), "sluice-overload-%s", source && *source ? source : "node");
	a->url = strdup(url);
	a->routing_key = strdup(routing_key ? routing_key : "");
	a->source = strdup(source && *source ? source : "node");
	a->dedup_key = strdup(key);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (!a->url || !a->routing_key || !a->source || !a->dedup_key ||
	    pthread_create(&a->thread, NULL, alert_thread, a)) {
		free(a->url);
		free(a->routing_key);
		free(a->source);
		free(a->dedup_key);
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	return a;
}

void alert_free(struct alert *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = 1;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	for (unsigned i = a->tail; i != a->head; i++)
		free(a->ring[i % ALERT_RING]);
	free(a->url);
	free(a->routing_key);
	free(a->source);
	free(a->dedup_key);
	free(a);
}

static int enqueue(struct alert *a, json_t *ev)
{
	char *body = json_dumps(ev, JSON_COMPACT);
	int ret = 0;

	json_decref(ev);
	if (!body)
		return -ENOMEM;
	pthread_mutex_lock(&a->lock);
	if (a->head - a->tail >= ALERT_RING) {
		a->stats.dropped++;
		ret = -ENOBUFS;
		free(body);
	} else {
		a->ring[a->head % ALERT_RING] = body;
		a->head++;
		pthread_cond_signal(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
	return ret;
}

int alert_trigger(struct alert *a, const char *summary, const char *details_json)
{
	return alert_trigger_key(a, a->dedup_key, summary, details_json);
}

int alert_trigger_key(struct alert *a, const char *dedup_key, const char *summary,
		      const char *details_json)
{
	json_t *details = NULL;

	if (details_json) {
		details = json_loads(details_json, 0, NULL);
		if (!details || !json_is_object(details)) {
			json_decref(details);
			return -EINVAL;
		}
	}
	return enqueue(a, json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:o}}", "routing_key",
				    a->routing_key, "event_action", "trigger", "dedup_key",
				    dedup_key, "payload", "summary", summary, "source", a->source,
				    "severity", "critical", "component", "sluiced",
				    "custom_details", details ? details : json_object()));
}

int alert_resolve(struct alert *a)
{
	return alert_resolve_key(a, a->dedup_key);
}

int alert_resolve_key(struct alert *a, const char *dedup_key)
{
	return enqueue(a, json_pack("{s:s, s:s, s:s}", "routing_key", a->routing_key,
				    "event_action", "resolve", "dedup_key", dedup_key));
}

void alert_stats(struct alert *a, struct alert_stats *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->stats;
	pthread_mutex_unlock(&a->lock);
}

const char *alert_dedup_key(const struct alert *a)
{
	return a->dedup_key;
}
