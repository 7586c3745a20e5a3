// SPDX-License-Identifier: MIT
/* loadgen.c -- HTTP/1.1 keep-alive load generator for POST /v1/events
 *
 * One thread, epoll, N non-blocking connections with at most one request in flight each
 * (no pipelining, like most clients). Pacing is open-loop: event i of a phase is due at
 * phase_start + i / rate and goes out on the first idle connection; when none is idle it
 * waits and, if it leaves more than 100 ms after its due time, is counted `late` (the
 * connections, not the server, were the limit). Latency is measured from the send.
 * Each event gets a unique idempotency key PREFIX-SEQ, or with --dup-rate an earlier
 * event is resent unchanged (same key, tenant, type and priority). A connection the
 * server closes is reopened; a request lost with it counts as an error (status 0 in the
 * log). The run ends when the schedule is over and every answer is in, or --drain
 * seconds after the schedule. SIGINT/SIGTERM end the schedule early: nothing more is sent,
 * the answers in flight are awaited (--drain) and the report is printed as usual; a second
 * signal stops the wait.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "loadgen.h"

#define NS	 1000000000ULL
#define DUP_RING 4096
#define LATE_NS	 (100 * 1000000ULL)

/* SIGINT/SIGTERM seen: 1 ends the schedule, 2 also ends the drain. */
static volatile sig_atomic_t stop_signals;

struct conn {
	int fd;
	bool connecting, busy;
	uint64_t retry_at, sent_ns;
	int key_idx, mix_idx;
	uint64_t seq;
	char *out;
	size_t out_len, out_off, out_cap;
	char in[16384];
	size_t in_len;
};

struct run {
	struct lg_opts *o;
	struct lg_report r;
	struct conn *conns;
	int ep;
	FILE *log;
	uint64_t t0, phase_start, phase_issued, issued, inflight, rng;
	int phase;
	bool schedule_over;
	struct {
		uint64_t seq;
		int key, mix;
	} ring[DUP_RING];
	uint32_t key_total, mix_total;
};

static uint64_t rnd(struct run *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return g->rng;
}

static struct lg_second *second_at(struct run *g, uint64_t t)
{
	int i = (int)((t - g->t0) / NS);

	return i < g->r.nseconds ? &g->r.seconds[i] : &g->r.seconds[g->r.nseconds - 1];
}

static const char *prio_name(const struct run *g, int mix_idx)
{
	static const char *const names[] = {"critical", "normal", "low"};
	int p = g->o->mix[mix_idx].priority;

	return p < 0 ? "tenant" : names[p];
}

static void log_answer(struct run *g, const struct conn *c, int status)
{
	if (g->log)
		fprintf(g->log, "%s-%llu %s %s %d %d\n", g->o->prefix, (unsigned long long)c->seq,
			g->o->mix[c->mix_idx].type, prio_name(g, c->mix_idx), status, c->key_idx);
}

static void conn_close(struct run *g, struct conn *c, bool lost)
{
	if (c->fd >= 0) {
		epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->in_len = 0;
	if (c->busy) {
		c->busy = false;
		g->inflight--;
		if (lost) {
			g->r.errors++;
			second_at(g, clock_mono_ns())->errors++;
			log_answer(g, c, 0);
		}
	}
}

static int conn_open(struct run *g, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	int one = 1;

	c->fd = socket(g->o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->connecting = true;
	if (connect(c->fd, (struct sockaddr *)&g->o->addr, g->o->addrlen) && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -errno;
	}
	return epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) ? -errno : 0;
}

static int pick(struct run *g, bool key)
{
	uint32_t total = key ? g->key_total : g->mix_total, r = (uint32_t)(rnd(g) % total);
	int n = key ? g->o->nkeys : g->o->nmix;

	for (int i = 0; i < n; i++) {
		uint32_t w = key ? g->o->keys[i].weight : g->o->mix[i].weight;

		if (r < w)
			return i;
		r -= w;
	}
	return n - 1;
}

static int build(struct run *g, struct conn *c)
{
	static const char *const prio[] = {"critical", "normal", "low"};
	const struct lg_mix *m = &g->o->mix[c->mix_idx];
	char body[512], head[512], pr[40] = "";
	int blen, hlen;

	if (m->priority >= 0)
		snprintf(pr, sizeof(pr), "\"priority\":\"%s\",", prio[m->priority]);
	blen = snprintf(body, sizeof(body),
			"{\"type\":\"%s\",\"idempotency_key\":\"%s-%llu\",%s\"payload\":{\"email\":"
			"\"%s-%llu@load.test\",\"n\":%llu,\"pad\":\"",
			m->type, g->o->prefix, (unsigned long long)c->seq, pr, g->o->prefix,
			(unsigned long long)c->seq, (unsigned long long)c->seq);
	hlen = snprintf(head, sizeof(head),
			"POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			g->o->path, g->o->host, g->o->keys[c->key_idx].key,
			blen + g->o->payload_bytes + 3);
	c->out_len = (size_t)(hlen + blen + g->o->payload_bytes + 3);
	if (c->out_len > c->out_cap) {
		free(c->out);
		c->out = malloc(c->out_len);
		c->out_cap = c->out ? c->out_len : 0;
		if (!c->out)
			return -ENOMEM;
	}
	memcpy(c->out, head, (size_t)hlen);
	memcpy(c->out + hlen, body, (size_t)blen);
	memset(c->out + hlen + blen, 'x', (size_t)g->o->payload_bytes);
	memcpy(c->out + c->out_len - 3, "\"}}", 3);
	c->out_off = 0;
	return 0;
}

static void flush_out(struct run *g, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(g, c, true);
			return;
		}
		c->out_off += (size_t)n;
	}
}

/* The next event on idle connection c. */
static void issue(struct run *g, struct conn *c, uint64_t due, uint64_t now)
{
	uint64_t slot;

	if (g->o->dup_rate > 0 && g->issued > 0 &&
	    (double)(rnd(g) % 1000000) < g->o->dup_rate * 1e6) {
		slot = rnd(g) % (g->issued < DUP_RING ? g->issued : DUP_RING);
		c->seq = g->ring[slot].seq;
		c->key_idx = g->ring[slot].key;
		c->mix_idx = g->ring[slot].mix;
		g->r.dups_sent++;
	} else {
		c->seq = g->issued;
		c->key_idx = pick(g, true);
		c->mix_idx = pick(g, false);
		g->ring[g->issued % DUP_RING].seq = c->seq;
		g->ring[g->issued % DUP_RING].key = c->key_idx;
		g->ring[g->issued % DUP_RING].mix = c->mix_idx;
	}
	g->issued++;
	g->phase_issued++;
	if (now > due + LATE_NS)
		g->r.late++;
	if (build(g, c)) {
		g->r.errors++;
		return;
	}
	c->busy = true;
	c->sent_ns = now;
	g->inflight++;
	g->r.sent++;
	second_at(g, now)->sent++;
	flush_out(g, c);
}

/* When the next event is due (UINT64_MAX: the schedule is over). */
static uint64_t next_due(struct run *g, uint64_t now)
{
	for (;;) {
		const struct lg_phase *p;
		uint64_t end, due;

		if (stop_signals || g->phase >= g->o->nphases ||
		    (g->o->count && g->issued >= g->o->count))
			return UINT64_MAX;
		p = &g->o->phases[g->phase];
		end = g->phase_start + (uint64_t)(p->seconds * 1e9);
		due = p->rate > 0
			  ? g->phase_start + (uint64_t)((double)g->phase_issued * 1e9 / p->rate)
			  : now;
		if (due < end && now < end)
			return due;
		if (p->rate <= 0 && now < end)
			return now;
		g->phase++;
		g->phase_start = end;
		g->phase_issued = 0;
	}
}

static const char *head_value(const char *head, const char *end, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p && p + 2 < end; p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':')
			return p + 3 + n;
	return NULL;
}

static void answered(struct run *g, struct conn *c, int status, bool retry_after)
{
	uint64_t t = clock_mono_ns();
	uint32_t us = (uint32_t)((t - c->sent_ns) / 1000);
	struct lg_second *s = second_at(g, t);
	int prio = g->o->mix[c->mix_idx].priority, cls = prio < 0 ? 3 : prio;
	int idx = status / 100 == 2 ? 0 : status == 429 ? 1 : status == 503 ? 2 : -1;

	c->busy = false;
	g->inflight--;
	g->r.answered++;
	s->answered++;
	if (status > 0 && status < LG_STATUS_MAX) {
		g->r.status[status]++;
		g->r.retry_after[status] += retry_after;
	}
	if (idx >= 0) {
		g->r.per_key[c->key_idx][idx]++;
		g->r.per_class[cls][idx]++;
	}
	*(idx == 0 ? &s->ok2xx : idx == 1 ? &s->s429 : idx == 2 ? &s->s503 : &s->other) += 1;
	lg_second_add(s, us);
	lg_second_add(&g->r.total, us);
	log_answer(g, c, status);
}

/* Parse every complete response in c->in. */
static void on_readable(struct run *g, struct conn *c)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len - 1, 0);
	char *end;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(g, c, true);
		return;
	}
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	while ((end = strstr(c->in, "\r\n\r\n"))) {
		const char *cl = head_value(c->in, end, "Content-Length");
		const char *conn = head_value(c->in, end, "Connection");
		size_t total = (size_t)(end + 4 - c->in) + (cl ? strtoul(cl, NULL, 10) : 0);
		bool closing = conn && !strncasecmp(conn + strspn(conn, " "), "close", 5);

		if (total > c->in_len)
			return;
		if (strncmp(c->in, "HTTP/1.", 7) || !c->busy) {
			conn_close(g, c, true);
			return;
		}
		answered(g, c, atoi(c->in + 9), head_value(c->in, end, "Retry-After") != NULL);
		memmove(c->in, c->in + total, c->in_len - total + 1);
		c->in_len -= total;
		if (closing) {
			conn_close(g, c, false);
			return;
		}
	}
	if (c->in_len >= sizeof(c->in) - 1)
		conn_close(g, c, true);
}

static void on_event(struct run *g, struct conn *c, uint32_t events)
{
	if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_close(g, c, false);
			g->r.errors++;
			c->retry_at = clock_mono_ns() + 100 * 1000000ULL;
			return;
		}
		c->connecting = false;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	if (c->fd >= 0 && (events & EPOLLIN))
		on_readable(g, c);
	if (c->fd >= 0 && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
		conn_close(g, c, true);
	if (c->fd >= 0 && c->busy && c->out_off < c->out_len)
		flush_out(g, c);
}

/* Open closed connections, send what is due. Returns the next wake-up (ns from now). */
static uint64_t service(struct run *g, uint64_t now)
{
	uint64_t due = next_due(g, now), wake = 10 * 1000000ULL;

	g->schedule_over = due == UINT64_MAX;
	for (int i = 0; i < g->o->connections; i++) {
		struct conn *c = &g->conns[i];

		if (c->fd < 0 && !g->schedule_over && now >= c->retry_at) {
			if (conn_open(g, c)) {
				g->r.errors++;
				c->retry_at = now + 100 * 1000000ULL;
			} else if (g->r.sent) {
				g->r.reconnects++;
			}
		}
		if (c->fd < 0 || c->connecting || c->busy)
			continue;
		due = next_due(g, now);
		if (due == UINT64_MAX || due > now)
			break;
		issue(g, c, due, now);
	}
	due = next_due(g, now);
	if (due != UINT64_MAX && due > now && due - now < wake)
		wake = due - now;
	return wake;
}

static int run_load(struct run *g)
{
	struct epoll_event evs[256];
	uint64_t stop_at = 0, now;

	g->t0 = g->phase_start = clock_mono_ns();
	for (;;) {
		uint64_t wake;
		int n;

		now = clock_mono_ns();
		wake = service(g, now);
		if (g->schedule_over) {
			if (!stop_at)
				stop_at = now + (uint64_t)(g->o->drain_s * 1e9);
			if (!g->inflight || now >= stop_at || stop_signals > 1)
				break;
		}
		n = epoll_wait(g->ep, evs, 256, (int)((wake + 999999) / 1000000));
		for (int i = 0; i < n; i++)
			on_event(g, evs[i].data.ptr, evs[i].events);
	}
	g->r.elapsed_s = (double)(clock_mono_ns() - g->t0) / 1e9;
	g->r.errors += g->inflight; /* never answered within --drain */
	return 0;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	if (stop_signals < 2)
		stop_signals++;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: wake epoll */
	static struct run g;
	struct lg_opts o;
	double total = 0;
	int ret;

	ret = lg_opts_parse(&o, argc, argv);
	if (ret)
		return ret == 1 ? 0 : 2;
	g.o = &o;
	g.rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < o.nkeys; i++)
		g.key_total += o.keys[i].weight;
	for (int i = 0; i < o.nmix; i++)
		g.mix_total += o.mix[i].weight;
	for (int i = 0; i < o.nphases; i++)
		total += o.phases[i].seconds;
	g.r.nseconds = (int)(total + o.drain_s) + 2;
	g.r.seconds = calloc((size_t)g.r.nseconds, sizeof(*g.r.seconds));
	g.conns = calloc((size_t)o.connections, sizeof(*g.conns));
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!g.r.seconds || !g.conns || g.ep < 0) {
		fprintf(stderr, "loadgen: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < o.connections; i++)
		g.conns[i].fd = -1;
	if (o.log_path[0] && !(g.log = fopen(o.log_path, "w"))) {
		fprintf(stderr, "loadgen: --log %s: %s\n", o.log_path, strerror(errno));
		return 2;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	run_load(&g);
	g.r.nseconds =
	    (int)g.r.elapsed_s + 1 < g.r.nseconds ? (int)g.r.elapsed_s + 1 : g.r.nseconds;
	if (g.log && fclose(g.log))
		fprintf(stderr, "loadgen: --log %s: %s\n", o.log_path, strerror(errno));
	lg_report_print(stdout, &o, &g.r);
	for (int i = 0; i < o.connections; i++) {
		if (g.conns[i].fd >= 0)
			close(g.conns[i].fd);
		free(g.conns[i].out);
	}
	free(g.conns);
	free(g.r.seconds);
	close(g.ep);
	return 0;
}
