// SPDX-License-Identifier: MIT
/* mock-upstream.c -- an HTTP/1.1 stand-in for an AI scoring API and a CRM, with faults
 *
 *   mock-upstream [--bind 127.0.0.1] [--port 0] [--control-port 0] [--faults QUERY]
 *
 * prints "mock-upstream: listening port=P control=C" once both listeners are up (port 0
 * picks a free one). The service port answers any POST with
 *	{"score":S,"id":"m-N","applied":K,"replayed":false}
 * where S in [0, 1) is a pure function of the Idempotency-Key header (the same lead scores
 * the same), N is the sequence number of the key's first application and K how often the
 * key has been applied. With dedupe=1 a key applied before is answered with its original
 * id and "replayed":true, and not applied again (a CRM honouring Idempotency-Key). Faults
 * (faults.h) decide per request: reset, hang, 429 + Retry-After, error status, latency,
 * or down (service listener closed). Receiver-like faults: restart_down_ms=N&restart_404_ms=M
 * starts a restart now (down N ms, then 404 "webhook not registered" for M ms, as n8n does
 * while it registers its webhooks, then OK); lose_rate=P answers 200 and does not record the
 * request ("acknowledge then lose", counted in lost). The control port:
 * With require_auth=TOKEN set, a request without "Authorization: Bearer TOKEN" gets 401.
 * A 429 and a 503 carry Retry-After (setting retry_after: seconds or an HTTP-date).
 *	GET /stats		counters (received, applied, dup_keys, max_applied, ...)
 *	GET /count?key=K	{"received":n,"applied":m,"lost":l,"path":..,"webhook_id":..}
 *				for one idempotency key (path and Webhook-Id: the last seen)
 *	GET /faults		current settings
 *	POST /faults?k=v&...	change settings at run time (also accepted as the body)
 *	POST /reset		settings to defaults, counters to zero
 * One thread per connection, keep-alive and pipelining; requests up to 60 KiB.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"

#define BUF_SIZE 65536

struct request {
	char method[8], target[512], key[256], auth[192], webhook_id[64];
	size_t body_len, total_len;
	const char *body;
	bool close;
};

struct listener {
	struct in_addr addr;
	uint16_t port;
	int fd;
	bool control;
};

static int listen_on(struct in_addr addr, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1024)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void respond(int fd, int status, const char *extra_hdr, const char *body, bool close_conn)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n%s%s\r\n",
			 status,
			 status < 300	 ? "OK"
			 : status == 429 ? "Too Many Requests"
					 : "Error",
			 strlen(body), extra_hdr ? extra_hdr : "",
			 close_conn ? "Connection: close\r\n" : "");

	write_all(fd, hdr, (size_t)n);
	write_all(fd, body, strlen(body));
}

/* Parse one request from buf[0..have); 1 when complete, 0 when more bytes are needed,
 * -1 when malformed or too large. */
static int parse(char *buf, size_t have, struct request *rq)
{
	char *end = memmem(buf, have, "\r\n\r\n", 4), *line, *save = NULL;

	memset(rq, 0, sizeof(*rq));
	if (!end)
		return have >= BUF_SIZE - 1 ? -1 : 0;
	*end = 0;
	line = strtok_r(buf, "\r\n", &save);
	if (!line || sscanf(line, "%7s %511s", rq->method, rq->target) != 2)
		return -1;
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		char *colon = strchr(line, ':'), *v;

		if (!colon)
			return -1;
		*colon = 0;
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (!strcasecmp(line, "Content-Length"))
			rq->body_len = strtoul(v, NULL, 10);
		else if (!strcasecmp(line, "Authorization"))
			snprintf(rq->auth, sizeof(rq->auth), "%s", v);
		else if (!strcasecmp(line, "Idempotency-Key"))
			snprintf(rq->key, sizeof(rq->key), "%s", v);
		else if (!strcasecmp(line, "Webhook-Id"))
			snprintf(rq->webhook_id, sizeof(rq->webhook_id), "%s", v);
		else if (!strcasecmp(line, "Connection") && !strcasecmp(v, "close"))
			rq->close = true;
	}
	if (rq->body_len > BUF_SIZE / 2)
		return -1;
	rq->total_len = (size_t)(end + 4 - buf) + rq->body_len;
	if (rq->total_len > have)
		return 0;
	rq->body = end + 4;
	return 1;
}

static void reset_close(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* Hang: answer nothing until the client gives up or the fault is switched off. */
static void hang(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	struct faults f;

	do {
		if (poll(&p, 1, 50) > 0)
			return;
		faults_get(&f);
	} while (f.hang_rate > 0);
}

static double key_score(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return (h % 1000) / 1000.0;
}

/* Service port: returns false when the connection is finished. */
static bool serve_upstream_counted(int fd, const struct request *rq)
{
	char body[256], hdr[96];
	uint32_t delay;
	enum mock_action a;
	struct faults f;
	uint64_t n;

	counts_received(rq->key, rq->target, rq->webhook_id);
	faults_get(&f);
	if (f.require_auth[0] &&
	    (strncmp(rq->auth, "Bearer ", 7) || strcmp(rq->auth + 7, f.require_auth))) {
		counts_unauthorized();
		respond(fd, 401, NULL, "{\"error\":\"unauthorized\"}", rq->close);
		return !rq->close;
	}
	a = faults_roll(&delay);
	counts_action(a);
	if (a == ACT_RESET || a == ACT_DOWN) {
		reset_close(fd);
		return false;
	}
	if (a == ACT_HANG) {
		hang(fd);
		close(fd);
		return false;
	}
	if (delay)
		usleep(delay * 1000);
	if (a == ACT_429) {
		faults_get(&f);
		snprintf(hdr, sizeof(hdr), "Retry-After: %s\r\n", f.retry_after);
		respond(fd, 429, hdr, "{\"error\":\"rate_limited\"}", rq->close);
	} else if (a == ACT_NOT_READY) {
		/* n8n's answer while it has not registered the webhook yet */
		respond(fd, 404, NULL,
			"{\"code\":404,\"message\":\"The requested webhook is not registered.\"}",
			rq->close);
	} else if (a == ACT_LOSE) {
		counts_lost(rq->key);
		respond(fd, 200, NULL, "{\"message\":\"Workflow was started\"}", rq->close);
	} else if (a == ACT_ERROR) {
		faults_get(&f);
		/* a 503 carries Retry-After like a 429 (RFC 9110 15.6.4) */
		snprintf(hdr, sizeof(hdr), "Retry-After: %s\r\n", f.retry_after);
		respond(fd, f.error_status, f.error_status == 503 ? hdr : NULL,
			"{\"error\":\"injected\"}", rq->close);
	} else {
		uint64_t id;
		bool replayed;

		n = counts_applied(rq->key, &replayed, &id);
		snprintf(body, sizeof(body),
			 "{\"score\":%.3f,\"id\":\"m-%llu\",\"applied\":%llu,\"replayed\":%s,"
			 "\"method\":\"%s\"}",
			 key_score(rq->key), (unsigned long long)id, (unsigned long long)n,
			 replayed ? "true" : "false", rq->method);
		respond(fd, 200, NULL, body, rq->close);
	}
	return !rq->close;
}

static bool serve_upstream(int fd, const struct request *rq)
{
	bool keep;

	counts_inflight(1);
	keep = serve_upstream_counted(fd, rq);
	counts_inflight(-1);
	return keep;
}

static void serve_control(int fd, const struct request *rq)
{
	char out[1024], err[256], arg[1024] = "";
	const char *q = strchr(rq->target, '?');
	size_t plen = q ? (size_t)(q - rq->target) : strlen(rq->target);
	if (q)
		snprintf(arg, sizeof(arg), "%s", q + 1);
	else if (rq->body_len && rq->body_len < sizeof(arg))
		snprintf(arg, sizeof(arg), "%.*s", (int)rq->body_len, rq->body);
	if (!strncmp(rq->target, "/stats", plen) && plen == 6) {
		counts_json(out, sizeof(out));
	} else if (!strncmp(rq->target, "/count", plen) && plen == 6 && !strncmp(arg, "key=", 4)) {
		struct key_info ki;

		counts_key(arg + 4, &ki);
		snprintf(out, sizeof(out),
			 "{\"received\":%llu,\"applied\":%llu,\"lost\":%llu,\"path\":\"%s\","
			 "\"webhook_id\":\"%s\"}\n",
			 (unsigned long long)ki.received, (unsigned long long)ki.applied,
			 (unsigned long long)ki.lost, ki.path, ki.webhook_id);
	} else if (!strncmp(rq->target, "/faults", plen) && plen == 7) {
		if (*arg && faults_set(arg, err, sizeof(err))) {
			snprintf(out, sizeof(out), "{\"error\":\"bad_fault\",\"detail\":\"%s\"}\n",
				 err);
			return respond(fd, 400, NULL, out, rq->close);
		}
		faults_json(out, sizeof(out));
	} else if (!strncmp(rq->target, "/reset", plen) && plen == 6) {
		faults_reset();
		snprintf(out, sizeof(out), "{\"reset\":true}\n");
	} else {
		return respond(fd, 404, NULL, "{\"error\":\"not_found\"}\n", rq->close);
	}
	respond(fd, 200, NULL, out, rq->close);
}

static void *conn_main(void *arg)
{
	struct listener *l = arg;
	int fd = l->fd, one = 1;
	char *buf = malloc(BUF_SIZE);
	struct request rq;
	size_t have = 0;
	ssize_t n;
	int ret;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (buf) {
		while ((ret = parse(buf, have, &rq)) == 0) {
			n = read(fd, buf + have, BUF_SIZE - 1 - have);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		if (ret < 0) {
			respond(fd, 400, NULL, "{\"error\":\"bad_request\"}", true);
			break;
		}
		if (l->control) {
			serve_control(fd, &rq);
			if (rq.close)
				break;
		} else if (!serve_upstream(fd, &rq)) {
			fd = -1;
			break;
		}
		have -= rq.total_len;
		memmove(buf, buf + rq.total_len, have);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(l);
	return NULL;
}

/* Accept loop; the service listener closes while "down" is set and reopens on the same
 * port when it is cleared, so clients see connection refused in between. */
static void *accept_main(void *arg)
{
	struct listener *l = arg;
	pthread_attr_t attr;
	struct faults f;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		struct listener *c;
		pthread_t t;
		int fd;

		faults_get(&f);
		if (!l->control && f.down != (l->fd < 0)) {
			if (f.down) {
				close(l->fd);
				l->fd = -1;
			} else {
				l->fd = listen_on(l->addr, l->port);
			}
		}
		if (l->fd < 0 || poll(&p, 1, 50) <= 0)
			goto idle;
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		c = fd >= 0 ? malloc(sizeof(*c)) : NULL;
		if (!c) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		*c = *l;
		c->fd = fd;
		if (!l->control)
			counts_connection();
		if (pthread_create(&t, &attr, conn_main, c)) {
			close(fd);
			free(c);
		}
		continue;
	idle:
		if (l->fd < 0)
			usleep(50000);
	}
	return NULL;
}

static int start_listener(struct listener *l, struct in_addr addr, long port, bool control)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	l->addr = addr;
	l->control = control;
	l->fd = listen_on(addr, (uint16_t)port);
	if (l->fd < 0)
		return l->fd;
	getsockname(l->fd, (struct sockaddr *)&a, &len);
	l->port = ntohs(a.sin_port);
	return 0;
}

static int usage(const char *why)
{
	fprintf(stderr,
		"mock-upstream: %s\nusage: mock-upstream [--bind ADDR] [--port N] "
		"[--control-port N] [--faults k=v&...]\n",
		why);
	return 2;
}

int main(int argc, char **argv)
{
	struct listener svc, ctl;
	struct in_addr addr = {htonl(INADDR_LOOPBACK)};
	long port = 0, cport = 0;
	pthread_t t1, t2;
	char err[256];
	int ret;

	signal(SIGPIPE, SIG_IGN);
	faults_init();
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;

		if (!v)
			return usage("missing value after the last option");
		if (!strcmp(argv[i], "--bind") && inet_pton(AF_INET, v, &addr) == 1)
			;
		else if (!strcmp(argv[i], "--port") && (port = strtol(v, &end, 10), !*end) &&
			 port >= 0 && port < 65536)
			;
		else if (!strcmp(argv[i], "--control-port") &&
			 (cport = strtol(v, &end, 10), !*end) && cport >= 0 && cport < 65536)
			;
		else if (!strcmp(argv[i], "--faults") && !faults_set(v, err, sizeof(err)))
			;
		else
			return usage(
			    !strcmp(argv[i], "--faults")
				? err
				: "bad option or value (ports 0-65535, --bind an IPv4 address)");
		i++;
	}
	if ((ret = start_listener(&svc, addr, port, false)) ||
	    (ret = start_listener(&ctl, addr, cport, true))) {
		fprintf(stderr, "mock-upstream: listen: %s\n", strerror(-ret));
		return 1;
	}
	printf("mock-upstream: listening port=%u control=%u\n", svc.port, ctl.port);
	fflush(stdout);
	pthread_create(&t1, NULL, accept_main, &svc);
	pthread_create(&t2, NULL, accept_main, &ctl);
	pthread_join(t1, NULL);
	return 0;
}
