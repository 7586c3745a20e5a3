// SPDX-License-Identifier: MIT
/* upstream.c -- HTTP/1.1 client for one upstream with its breaker, bulkhead and budget
 *
 * Threads: callers (pool workers) only take permits, render the body and push the call on
 * a pending list, then curl_multi_wakeup(); the driver thread owns the multi handle and
 * every easy handle (libcurl handles are not thread-safe), adds pending calls, runs
 * curl_multi_perform/poll and finishes calls. Order on the way in: breaker (cheapest
 * refusal), then bulkhead (a permit not used is given back), and on the way out: breaker
 * record, bulkhead release, then the callback, so a caller woken by its result already
 * sees its slot free. Easy handles are recycled: with the multi handle's connection cache
 * that keeps connections (and TCP keep-alive) to the upstream alive between calls.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/sha256.h"
#include "sink/upstream/upstream.h"
#include "sink/upstream/upstream_body.h"

struct call {
	struct call *next;
	CURL *easy;
	struct curl_slist *headers;
	char *req_body;
	size_t req_len;
	char *resp;
	size_t resp_len, resp_cap;
	size_t max_body;
	bool too_big;
	uint64_t retry_after_ns;
	uint64_t start_ns;
	struct breaker_permit permit;
	char url[512], method[8];
	upstream_done_fn *done;
	void *ctx;
	char errbuf[CURL_ERROR_SIZE];
};

struct upstream {
	struct upstream_config cfg;
	struct breaker *breaker;
	struct retry_budget budget;
	breaker_transition_fn *user_cb;
	void *user_ctx;
	CURLM *multi;
	pthread_t driver;
	bool driver_started;
	pthread_mutex_t lock; /* pending list and stopping */
	struct call *pending, *active;
	bool stopping;
	CURL **idle; /* recycled easy handles (driver thread only) */
	uint32_t n_idle;
	uint64_t unreachable_ns; /* last connect refused/reset (mono ns; driver thread) */
	uint32_t in_flight;	 /* atomic */
	uint64_t calls, ok, slow, failed, rejected, bulkhead_full, budget_waits; /* atomic */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

#define COUNT(u, field) __atomic_fetch_add(&(u)->field, 1, __ATOMIC_RELAXED)

static void on_breaker(void *ctx, const char *name, enum breaker_state from, enum breaker_state to,
		       const struct breaker_snapshot *why)
{
	struct upstream *u = ctx;

	if (to == BREAKER_OPEN)
		log_warn("upstream: breaker opened",
			 "upstream=%s from=%s calls=%u failed=%u "
			 "slow=%u failure_rate=%u slow_rate=%u",
			 name, breaker_state_name(from), why->calls, why->failed, why->slow,
			 why->failure_rate_pct, why->slow_rate_pct);
	else
		log_info("upstream: breaker state",
			 "upstream=%s from=%s to=%s calls=%u failed=%u "
			 "slow=%u",
			 name, breaker_state_name(from), breaker_state_name(to), why->calls,
			 why->failed, why->slow);
	if (u->user_cb)
		u->user_cb(u->user_ctx, name, from, to, why);
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	size_t len = size * n;
	char value[128];

	if (len > 12 && len < 12 + sizeof(value) && !strncasecmp(buf, "Retry-After:", 12)) {
		snprintf(value, sizeof(value), "%.*s", (int)(len - 12), buf + 12);
		value[strcspn(value, "\r\n")] = 0;
		if (retry_after_parse(value, time(NULL), &c->retry_after_ns))
			c->retry_after_ns = 0;
	}
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	size_t len = size * n, want = c->resp_len + len + 1;
	char *p;

	if (c->resp_len + len > c->max_body) {
		c->too_big = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (want > c->resp_cap) {
		size_t cap = c->resp_cap ? c->resp_cap : 1024;

		while (cap < want)
			cap *= 2;
		p = realloc(c->resp, cap);
		if (!p)
			return 0;
		c->resp = p;
		c->resp_cap = cap;
	}
	memcpy(c->resp + c->resp_len, buf, len);
	c->resp_len += len;
	c->resp[c->resp_len] = 0;
	return len;
}

/* Driver thread: give c an easy handle and hand it to the multi handle. */
static int call_start(struct upstream *u, struct call *c)
{
	CURL *e = u->n_idle ? u->idle[--u->n_idle] : curl_easy_init();

	if (!e)
		return -ENOMEM;
	curl_easy_reset(e);
	c->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req_body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->req_len);
	if (strcmp(c->method, "POST"))
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)u->cfg.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->cfg.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
		return -EIO;
	c->next = u->active;
	u->active = c;
	return 0;
}

/* " : first bytes of the body", printable ASCII only (it ends up in logs and SQL text). */
static void body_snippet(const struct call *c, char *out, size_t cap)
{
	size_t n = 0, max = cap > 4 ? cap - 4 : 0;

	out[0] = 0;
	if (!c->resp || !c->resp_len || cap < 8)
		return;
	out[n++] = ':';
	out[n++] = ' ';
	for (size_t i = 0; i < c->resp_len && n < max; i++) {
		unsigned char ch = (unsigned char)c->resp[i];

		out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
	}
	out[n] = 0;
}

static bool recovering(const struct upstream *u)
{
	return u->unreachable_ns &&
	       clock_mono_ns() - u->unreachable_ns < u->cfg.recovering_window_ns;
}

static void classify_http(const struct upstream *u, struct call *c, long status,
			  struct upstream_result *r, bool *upstream_fault)
{
	char body[96];
	bool rec = recovering(u);
	int err;

	r->http_status = (int)status;
	if (status >= 200 && status < 300) {
		if (!u->cfg.score_field[0])
			return;
		err = upstream_answer_number(c->resp ? c->resp : "", c->resp_len,
					     u->cfg.score_field, &r->score);
		r->has_score = !err;
		if (!err)
			return;
		r->outcome = UPSTREAM_FAILED;
		*upstream_fault = true;
		snprintf(r->reason, sizeof(r->reason), "answer: %s \"%s\"",
			 err == -EINVAL	  ? "not JSON, no field"
			 : err == -ENOENT ? "no field"
					  : "not a number:",
			 u->cfg.score_field);
		return;
	}
	r->outcome = UPSTREAM_FAILED;
	r->retryable = upstream_status_retryable(&u->cfg, (int)status, rec);
	*upstream_fault = upstream_status_breaker_failure(&u->cfg, (int)status, rec);
	if (status == 429 || status == 503)
		r->retry_after_ns = c->retry_after_ns;
	body_snippet(c, body, sizeof(body));
	snprintf(r->reason, sizeof(r->reason), "http %ld%s%s%s", status,
		 status >= 300 && status < 400 ? " (redirects are not followed)" : "",
		 rec && status_set_has(&u->cfg.recovering, (int)status) ? " (recovering)" : "",
		 body);
}

static void classify(struct upstream *u, struct call *c, CURLcode rc, struct upstream_result *r,
		     bool *upstream_fault)
{
	long status = 0;

	*upstream_fault = false;
	r->outcome = UPSTREAM_OK;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		classify_http(u, c, status, r, upstream_fault);
		return;
	}
	r->outcome = UPSTREAM_FAILED;
	r->retryable = true;
	*upstream_fault = true;
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
	    rc == CURLE_GOT_NOTHING)
		u->unreachable_ns = clock_mono_ns(); /* a restart: its routes may come later */
	if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(r->reason, sizeof(r->reason), "timeout after %u ms", u->cfg.timeout_ms);
	else if (rc == CURLE_WRITE_ERROR && c->too_big)
		snprintf(r->reason, sizeof(r->reason), "answer larger than %u bytes",
			 u->cfg.max_body);
	else if (rc == CURLE_COULDNT_CONNECT)
		snprintf(r->reason, sizeof(r->reason), "connect failed: %.120s", c->errbuf);
	else if (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING)
		snprintf(r->reason, sizeof(r->reason), "connection reset: %.120s", c->errbuf);
	else
		snprintf(r->reason, sizeof(r->reason), "%.30s: %.120s", curl_easy_strerror(rc),
			 c->errbuf);
}

static void call_free(struct call *c)
{
	curl_slist_free_all(c->headers);
	free(c->req_body);
	free(c->resp);
	free(c);
}

static void deliver(struct upstream *u, struct call *c, struct upstream_result *r)
{
	switch (r->outcome) {
	case UPSTREAM_OK:
		COUNT(u, ok);
		break;
	case UPSTREAM_SLOW:
		COUNT(u, slow);
		break;
	case UPSTREAM_FAILED:
		COUNT(u, failed);
		break;
	case UPSTREAM_REJECTED:
		COUNT(u, rejected);
		break;
	case UPSTREAM_BULKHEAD_FULL:
		COUNT(u, bulkhead_full);
		break;
	case UPSTREAM_BUDGET_WAIT:
		COUNT(u, budget_waits);
		break;
	}
	c->done(c->ctx, r);
	call_free(c);
}

/* Driver thread: the transfer of c is over (rc), or abandoned at shutdown (rc < 0). */
static void call_finish(struct upstream *u, struct call *c, int rc)
{
	struct upstream_result r = {.duration_ns = clock_mono_ns() - c->start_ns};
	bool fault = false;

	if (rc >= 0) {
		classify(u, c, (CURLcode)rc, &r, &fault);
		if (breaker_record(u->breaker, &c->permit, fault, r.duration_ns) &&
		    r.outcome == UPSTREAM_OK)
			r.outcome = UPSTREAM_SLOW;
	} else {
		breaker_release(u->breaker, &c->permit);
		r.outcome = UPSTREAM_FAILED;
		r.retryable = true;
		snprintf(r.reason, sizeof(r.reason), "shutting down");
	}
	if (c->easy) {
		curl_multi_remove_handle(u->multi, c->easy);
		if (u->n_idle < u->cfg.max_concurrent)
			u->idle[u->n_idle++] = c->easy;
		else
			curl_easy_cleanup(c->easy);
	}
	r.body = c->resp;
	r.body_len = c->resp_len;
	c->resp = NULL;
	__atomic_fetch_sub(&u->in_flight, 1, __ATOMIC_RELEASE);
	deliver(u, c, &r);
}

static void unlink_active(struct upstream *u, struct call *c)
{
	for (struct call **pp = &u->active; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			return;
		}
	}
}

static void drain_done(struct upstream *u)
{
	struct call *c;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(u->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		unlink_active(u, c);
		call_finish(u, c, m->data.result);
	}
}

/* Take the pending list in submission order. */
static struct call *take_pending(struct upstream *u, bool *stopping)
{
	struct call *list, *rev = NULL;

	pthread_mutex_lock(&u->lock);
	list = u->pending;
	u->pending = NULL;
	*stopping = u->stopping;
	pthread_mutex_unlock(&u->lock);
	while (list) {
		struct call *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	return rev;
}

static void *driver_main(void *arg)
{
	struct upstream *u = arg;
	bool stopping = false;
	int running;

	while (!stopping) {
		struct call *c = take_pending(u, &stopping), *next;

		for (; c; c = next) {
			next = c->next;
			if (stopping || call_start(u, c))
				call_finish(u, c, -1);
		}
		curl_multi_perform(u->multi, &running);
		drain_done(u);
		if (!stopping)
			curl_multi_poll(u->multi, NULL, 0, 1000, NULL);
	}
	while (u->active) {
		struct call *c = u->active;

		u->active = c->next;
		call_finish(u, c, -1);
	}
	return NULL;
}

struct upstream *upstream_new(const struct upstream_config *cfg,
			      breaker_transition_fn *on_transition, void *cb_ctx, char *err,
			      size_t errlen)
{
	struct upstream *u;

	if (upstream_config_check(cfg, err, errlen)) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&curl_once, curl_init_once);
	u = calloc(1, sizeof(*u));
	if (!u)
		goto nomem;
	u->cfg = *cfg;
	u->user_cb = on_transition;
	u->user_ctx = cb_ctx;
	pthread_mutex_init(&u->lock, NULL);
	retry_budget_init(&u->budget, &cfg->retry);
	u->breaker = breaker_new(cfg->name, &cfg->breaker, NULL, NULL, on_breaker, u);
	u->idle = calloc(cfg->max_concurrent, sizeof(*u->idle));
	u->multi = curl_multi_init();
	if (!u->breaker || !u->idle || !u->multi)
		goto fail;
	curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_concurrent);
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)cfg->max_concurrent);
	if (pthread_create(&u->driver, NULL, driver_main, u))
		goto fail;
	u->driver_started = true;
	if (cfg->breaker.slow_call_ns >= (uint64_t)cfg->timeout_ms * 1000000)
		log_warn("upstream: slow calls can never be counted",
			 "upstream=%s "
			 "breaker.slow_call_ms=%llu timeout_ms=%u hint=\"set breaker.slow_call_ms "
			 "below timeout_ms\"",
			 cfg->name, (unsigned long long)(cfg->breaker.slow_call_ns / 1000000),
			 cfg->timeout_ms);
	return u;
fail:
	upstream_free(u);
nomem:
	snprintf(err, errlen, "upstream %s: out of memory", cfg->name);
	errno = ENOMEM;
	return NULL;
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	if (u->driver_started) {
		pthread_mutex_lock(&u->lock);
		u->stopping = true;
		pthread_mutex_unlock(&u->lock);
		curl_multi_wakeup(u->multi);
		pthread_join(u->driver, NULL);
	}
	for (uint32_t i = 0; i < u->n_idle; i++)
		curl_easy_cleanup(u->idle[i]);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	breaker_free(u->breaker);
	pthread_mutex_destroy(&u->lock);
	free(u->idle);
	free(u);
}

static bool bulkhead_enter(struct upstream *u)
{
	uint32_t cur = __atomic_load_n(&u->in_flight, __ATOMIC_RELAXED);

	do {
		if (cur >= u->cfg.max_concurrent)
			return false;
	} while (!__atomic_compare_exchange_n(&u->in_flight, &cur, cur + 1, true, __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	return true;
}

/* Refuse without I/O, in the caller's thread. */
static int refuse(struct upstream *u, struct call *c, enum upstream_outcome o)
{
	struct upstream_result r = {.outcome = o, .retryable = true};
	struct breaker_stats st;

	if (o == UPSTREAM_REJECTED) {
		breaker_stats(u->breaker, &st);
		snprintf(r.reason, sizeof(r.reason), "breaker %s", breaker_state_name(st.state));
	} else if (o == UPSTREAM_BUDGET_WAIT) {
		snprintf(r.reason, sizeof(r.reason), "retry budget empty: waiting for a token");
	} else {
		snprintf(r.reason, sizeof(r.reason), "bulkhead full (%u calls in flight)",
			 u->cfg.max_concurrent);
	}
	deliver(u, c, &r);
	return 0;
}

static int add_header(struct call *c, const char *h)
{
	struct curl_slist *l = curl_slist_append(c->headers, h);

	if (!l)
		return -ENOMEM; /* c->headers is intact and freed with the call */
	c->headers = l;
	return 0;
}

void upstream_url_with_path(const char *url, const char *path, char *out, size_t cap)
{
	const char *host = strstr(url, "://"), *end;

	if (!path || !*path || !host) {
		snprintf(out, cap, "%s", url);
		return;
	}
	end = host + 3 + strcspn(host + 3, "/?#");
	snprintf(out, cap, "%.*s%s", (int)(end - url), url, path);
}

/* "Webhook-Id: msg_<32 hex>": the same for every attempt of one event (tenant and key),
 * different between tenants that use the same key (Standard Webhooks' webhook-id). */
static void webhook_id(const struct upstream_request *req, char *out, size_t cap)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	struct sha256 h;

	sha256_init(&h);
	sha256_update(&h, req->tenant ? req->tenant : "", req->tenant ? strlen(req->tenant) : 0);
	sha256_update(&h, "", 1);
	sha256_update(&h, req->idempotency_key, strlen(req->idempotency_key));
	sha256_final(&h, d);
	sha256_hex(d, hex);
	snprintf(out, cap, "Webhook-Id: msg_%.32s", hex);
}

static int build_request(struct upstream *u, struct call *c, const struct upstream_request *req)
{
	char hdr[320];

	upstream_url_with_path(u->cfg.url, req->path, c->url, sizeof(c->url));
	snprintf(c->method, sizeof(c->method), "%s",
		 req->method && *req->method ? req->method : u->cfg.method);
	c->req_body = upstream_template_render(
	    req->template && *req->template ? req->template : u->cfg.template, req, &c->req_len);
	if (!c->req_body)
		return -ENOMEM;
	if (add_header(c, "Content-Type: application/json") || add_header(c, "Expect:"))
		return -ENOMEM;
	for (uint32_t i = 0; i < u->cfg.n_headers; i++)
		if (add_header(c, u->cfg.headers[i]))
			return -ENOMEM;
	if (req->idempotency_key && *req->idempotency_key) {
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", req->idempotency_key);
		hdr[strcspn(hdr, "\r\n")] = 0; /* no header injection from a key */
		if (add_header(c, hdr))
			return -ENOMEM;
		webhook_id(req, hdr, sizeof(hdr));
		if (add_header(c, hdr))
			return -ENOMEM;
	}
	return 0;
}

int upstream_call_async(struct upstream *u, const struct upstream_request *req,
			upstream_done_fn *done, void *ctx)
{
	struct call *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->done = done;
	c->ctx = ctx;
	c->max_body = u->cfg.max_body;
	COUNT(u, calls);
	if (req->attempt <= 1)
		retry_budget_on_call(&u->budget);
	if (breaker_acquire(u->breaker, &c->permit))
		return refuse(u, c, UPSTREAM_REJECTED);
	/* a retry takes a budget token when it is made, so an empty bucket delays it */
	if (req->attempt > 1 && !req->budget_free && !retry_budget_withdraw(&u->budget)) {
		breaker_release(u->breaker, &c->permit);
		return refuse(u, c, UPSTREAM_BUDGET_WAIT);
	}
	if (!bulkhead_enter(u)) {
		breaker_release(u->breaker, &c->permit);
		return refuse(u, c, UPSTREAM_BULKHEAD_FULL);
	}
	err = build_request(u, c, req);
	if (err) {
		breaker_release(u->breaker, &c->permit);
		__atomic_fetch_sub(&u->in_flight, 1, __ATOMIC_RELEASE);
		call_free(c);
		return err;
	}
	c->start_ns = clock_mono_ns();
	pthread_mutex_lock(&u->lock);
	c->next = u->pending;
	u->pending = c;
	pthread_mutex_unlock(&u->lock);
	curl_multi_wakeup(u->multi);
	return 0;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct upstream_result *res;
};

static void wake(void *ctx, struct upstream_result *res)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	*w->res = *res;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int upstream_call(struct upstream *u, const struct upstream_request *req,
		  struct upstream_result *res)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, res};
	int err = upstream_call_async(u, req, wake, &w);

	if (err)
		return err;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return 0;
}

void upstream_result_fini(struct upstream_result *res)
{
	free(res->body);
	res->body = NULL;
}

void upstream_retry_decide(struct upstream *u, const struct upstream_result *res, uint32_t attempt,
			   struct retry_decision *d)
{
	const struct retry_policy *p = &u->cfg.retry;
	uint64_t wait = retry_backoff_ns(p, 1, retry_rand()), open;

	switch (res->outcome) {
	case UPSTREAM_REJECTED:
		/* an open breaker is waited out rather than knocked on before it lets a probe
		 * through; the wait is spread so the probes are not one wave */
		open = breaker_open_remaining_ns(u->breaker);
		if (!open)
			open = u->cfg.breaker.open_wait_ns / 8; /* half-open, probes all out */
		*d = (struct retry_decision){RETRY_AFTER_DELAY,
					     open + retry_rand() % (open / 4 + 1), "breaker open"};
		return;
	case UPSTREAM_BULKHEAD_FULL:
		*d = (struct retry_decision){RETRY_AFTER_DELAY, wait / 8, "bulkhead full"};
		return;
	case UPSTREAM_BUDGET_WAIT:
		/* about one token's time, spread over the waiters */
		wait = p->budget_refill_per_s ? 1000000000ULL / p->budget_refill_per_s : p->base_ns;
		*d = (struct retry_decision){RETRY_AFTER_DELAY, wait + retry_rand() % (wait + 1),
					     "retry budget empty"};
		return;
	default:
		retry_decide(p, &u->budget, attempt, res->retryable, res->http_status,
			     res->retry_after_ns, retry_rand(), d);
	}
}

void upstream_stats(struct upstream *u, struct upstream_stats *st)
{
	st->calls = __atomic_load_n(&u->calls, __ATOMIC_RELAXED);
	st->ok = __atomic_load_n(&u->ok, __ATOMIC_RELAXED);
	st->slow = __atomic_load_n(&u->slow, __ATOMIC_RELAXED);
	st->failed = __atomic_load_n(&u->failed, __ATOMIC_RELAXED);
	st->rejected = __atomic_load_n(&u->rejected, __ATOMIC_RELAXED);
	st->bulkhead_full = __atomic_load_n(&u->bulkhead_full, __ATOMIC_RELAXED);
	st->budget_waits = __atomic_load_n(&u->budget_waits, __ATOMIC_RELAXED);
	st->in_flight = __atomic_load_n(&u->in_flight, __ATOMIC_RELAXED);
	breaker_stats(u->breaker, &st->breaker);
	st->budget = u->budget;
}

const struct upstream_config *upstream_config_of(const struct upstream *u)
{
	return &u->cfg;
}

enum breaker_state upstream_breaker_state(struct upstream *u)
{
	return breaker_state(u->breaker);
}

uint64_t upstream_breaker_open_remaining_ns(struct upstream *u)
{
	return breaker_open_remaining_ns(u->breaker);
}

const char *upstream_name(const struct upstream *u)
{
	return u->cfg.name;
}

const char *upstream_outcome_name(enum upstream_outcome o)
{
	static const char *const names[] = {"ok",	"slow",		 "failed",
					    "rejected", "bulkhead_full", "budget_wait"};

	return o <= UPSTREAM_BUDGET_WAIT ? names[o] : "unknown";
}
