// SPDX-License-Identifier: MIT
/* upstream.c -- benchmark: calls/s through one upstream pool against the mock, against a
 * raw io_uring keep-alive client as the anchor, and the latency of a breaker-open fallback
 *
 *   upstream-bench [--seconds S] [--concurrency C]
 *
 * (needs mock-upstream next to it in the build directory, and redis-server for the cache
 * figure).
 *
 * Both clients keep C calls in flight over keep-alive connections to the same mock, at 0 %
 * and 30 % injected 500s. The anchor is the least a client can do: one fixed request, one
 * io_uring send and recv per call, Content-Length framing, nothing else. Reported per run:
 * calls/s, client CPU per call (getrusage, this process only; the mock is another process)
 * and the ratio to the anchor measured in the same run. Then with the breaker forced open,
 * the time of upstream_call (REJECTED) + fallback_after_call, answered by the Redis cache
 * and by the model: p50/p99 over 20,000 calls.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "lib/clock.h"
#include "sink/upstream/fallback.h"
#include "sink/upstream/upstream.h"

#define MAXC	256
#define SAMPLES 20000

static const char request[] = "POST /score HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json"
			      "\r\nIdempotency-Key: bench\r\nContent-Length: 2\r\n\r\n{}";

struct run {
	double secs, calls_per_s, cpu_us_per_call;
	uint64_t calls, failed;
};

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static pid_t spawn(char *const argv[], int out_fd)
{
	pid_t pid;

	fflush(stdout); /* or the child's copy of the buffer is printed twice */
	pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out_fd >= 0)
			dup2(out_fd, 1);
		else if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int http_ctl(uint16_t port, const char *path)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[512], buf[1024];
	int fd = socket(AF_INET, SOCK_STREAM, 0), n, ok = -1;

	n = snprintf(req, sizeof(req),
		     "POST %s HTTP/1.1\r\nContent-Length: 0\r\n"
		     "Connection: close\r\n\r\n",
		     path);
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a)) && write(fd, req, (size_t)n) == n &&
	    read(fd, buf, sizeof(buf)) > 12)
		ok = strncmp(buf, "HTTP/1.1 200", 12) ? -1 : 0;
	close(fd);
	return ok;
}

/* A complete response in c? Returns its length and status, or 0. */
static size_t response_len(const char *buf, size_t have, int *status)
{
	const char *end = memmem(buf, have, "\r\n\r\n", 4), *cl;
	size_t hdr;

	if (!end)
		return 0;
	hdr = (size_t)(end - buf) + 4;
	cl = memmem(buf, hdr, "Content-Length: ", 16);
	if (!cl)
		return 0;
	sscanf(buf, "HTTP/1.1 %d", status);
	hdr += strtoul(cl + 16, NULL, 10);
	return hdr <= have ? hdr : 0;
}

struct conn {
	int fd;
	size_t have;
	char buf[2048];
};

static void queue_op(struct io_uring *ring, struct conn *c, int i, bool send)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (send)
		io_uring_prep_send(sqe, c->fd, request, sizeof(request) - 1, 0);
	else
		io_uring_prep_recv(sqe, c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)i << 1 | !send);
}

static int anchor_run(uint16_t port, int conc, double secs, struct run *r)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	static struct conn cs[MAXC];
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	double t0, c0, end;
	int one = 1, status;

	if (io_uring_queue_init(2 * MAXC, &ring, 0))
		return -1;
	for (int i = 0; i < conc; i++) {
		cs[i] = (struct conn){.fd = socket(AF_INET, SOCK_STREAM, 0)};
		setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(cs[i].fd, (struct sockaddr *)&a, sizeof(a)))
			return -1;
		queue_op(&ring, &cs[i], i, true);
	}
	memset(r, 0, sizeof(*r));
	t0 = clock_mono_s(), c0 = cpu_s(), end = t0 + secs;
	while (clock_mono_s() < end) {
		io_uring_submit_and_wait(&ring, 1);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			struct conn *c = &cs[ud >> 1];
			int res = cqe->res;
			size_t len;

			io_uring_cqe_seen(&ring, cqe);
			if (res <= 0)
				return -1;
			if (!(ud & 1)) {
				queue_op(&ring, c, (int)(ud >> 1), false);
				continue;
			}
			c->have += (size_t)res;
			len = response_len(c->buf, c->have, &status);
			if (!len) {
				queue_op(&ring, c, (int)(ud >> 1), false);
				continue;
			}
			r->calls++;
			r->failed += status != 200;
			c->have = 0;
			queue_op(&ring, c, (int)(ud >> 1), true);
		}
	}
	r->secs = clock_mono_s() - t0;
	r->cpu_us_per_call = (cpu_s() - c0) * 1e6 / (double)r->calls;
	r->calls_per_s = (double)r->calls / r->secs;
	io_uring_queue_exit(&ring);
	for (int i = 0; i < conc; i++)
		close(cs[i].fd);
	return 0;
}

struct curl_state {
	struct upstream *u;
	double end;
	uint64_t calls, failed;
	int in_flight;
};

static void resubmit(struct curl_state *s);

static void curl_done(void *ctx, struct upstream_result *res)
{
	struct curl_state *s = ctx;

	__atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
	s->failed += res->outcome != UPSTREAM_OK;
	upstream_result_fini(res);
	if (clock_mono_s() < s->end)
		resubmit(s);
	else
		__atomic_fetch_sub(&s->in_flight, 1, __ATOMIC_RELEASE);
}

static void resubmit(struct curl_state *s)
{
	struct upstream_request req = {.payload = "{}", .idempotency_key = "bench", .attempt = 1};

	upstream_call_async(s->u, &req, curl_done, s);
}

static int curl_run(const char *url, int conc, double secs, struct run *r)
{
	struct curl_state s = {.in_flight = conc};
	struct upstream_config cfg;
	char err[256];
	double t0, c0;

	upstream_config_default(&cfg, "bench", url);
	cfg.max_concurrent = (uint32_t)conc;
	/* a window of 100 does not open by chance at 30 % failures (P ~ 1e-5 per window) */
	cfg.breaker.window_size = 100;
	cfg.breaker.minimum_calls = 100;
	s.u = upstream_new(&cfg, NULL, NULL, err, sizeof(err));
	if (!s.u)
		return fprintf(stderr, "upstream-bench: %s\n", err), -1;
	t0 = clock_mono_s(), c0 = cpu_s();
	s.end = t0 + secs;
	for (int i = 0; i < conc; i++)
		resubmit(&s);
	while (__atomic_load_n(&s.in_flight, __ATOMIC_ACQUIRE) > 0)
		usleep(1000);
	r->secs = clock_mono_s() - t0;
	r->calls = s.calls;
	r->failed = s.failed;
	r->calls_per_s = (double)r->calls / r->secs;
	r->cpu_us_per_call = (cpu_s() - c0) * 1e6 / (double)r->calls;
	upstream_free(s.u);
	return 0;
}

/* Breaker open: time REJECTED + fallback for SAMPLES calls; p50/p99 in us. */
static void fallback_latency(const char *url, struct redis *redis, const char *label)
{
	static double lat[SAMPLES];
	const char *lead = "{\"email\":\"x@acme.example\",\"company_size\":250}";
	struct upstream_request req = {.payload = lead, .idempotency_key = "fb", .attempt = 1};
	struct fallback_config fcfg;
	struct upstream_config cfg;
	struct fallback_answer a;
	struct upstream_result r = {0};
	struct upstream *u;
	struct fallback *fb;
	struct model m;
	char err[256];
	int src[4] = {0};

	upstream_config_default(&cfg, "bench", url);
	cfg.breaker.open_wait_ns = 3600ULL * 1000000000ULL;
	cfg.breaker.minimum_calls = cfg.breaker.window_size = 1;
	u = upstream_new(&cfg, NULL, NULL, err, sizeof(err));
	model_init_default(&m);
	fallback_config_default(&fcfg);
	fcfg.use_model = true; /* opt-in since issue 18 */
	snprintf(fcfg.key_field, sizeof(fcfg.key_field), "email");
	fb = fallback_new("bench", &fcfg, redis, &m);
	if (!u || !fb)
		return;
	fallback_remember(fb, "bench", lead, 0.5);
	upstream_call(u, &req, &r); /* the mock answers 500: one failure opens the breaker */
	upstream_result_fini(&r);
	for (int i = 0; i < SAMPLES; i++) {
		double t0 = clock_mono_s();

		upstream_call(u, &req, &r);
		fallback_after_call(fb, "bench", lead, &r, &a);
		lat[i] = (clock_mono_s() - t0) * 1e6;
		src[a.source]++;
		upstream_result_fini(&r);
	}
	bench_sort(lat, SAMPLES);
	printf("breaker-open fallback, %-22s p50 %7.1f us  p99 %7.1f us  (n=%d, cache %d, "
	       "model %d)\n",
	       label, bench_quantile(lat, SAMPLES, 0.5), bench_quantile(lat, SAMPLES, 0.99),
	       SAMPLES, src[1], src[2]);
	fallback_free(fb);
	upstream_free(u);
}

static void print_run(const char *what, const struct run *r, const struct run *anchor)
{
	printf("%-36s %8.0f calls/s  %6.1f us CPU/call  failed %5.1f %%", what, r->calls_per_s,
	       r->cpu_us_per_call, 100.0 * (double)r->failed / (double)r->calls);
	if (anchor)
		printf("  ratio %.2f (calls/s)  %.2f (CPU/call)",
		       r->calls_per_s / anchor->calls_per_s,
		       r->cpu_us_per_call / anchor->cpu_us_per_call);
	printf("\n");
}

static int start_redis(pid_t *pid, struct redis **r)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct redis_config cfg;
	char port[8], *v = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	char *argv[] = {
	    "/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
	    "--appendonly",	     "no",     NULL};
	*pid = spawn(argv, -1);
	redis_config_default(&cfg);
	cfg.port = ntohs(a.sin_port);
	cfg.down_backoff_ms = 0;
	*r = redis_new(&cfg);
	for (int i = 0; i < 100; i++, usleep(50000))
		if (redis_kv_get(*r, REDIS_CACHE, (const char *const[]){"ping"}, 1, &v) >= 0)
			return 0;
	return -1;
}

int main(int argc, char **argv)
{
	char mock_bin[4096], *mock_argv[] = {mock_bin, "--port", "0", "--control-port", "0", NULL};
	double secs = 3;
	int conc = 16, pfd[2];
	struct run anchor, curl;
	uint16_t port, cport;
	struct redis *redis = NULL;
	char line[128], url[64];
	pid_t mock, rpid = 0;
	FILE *f;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seconds"))
			secs = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--concurrency"))
			conc = atoi(argv[i + 1]);
	}
	if (secs <= 0 || conc < 1 || conc > MAXC)
		return fprintf(stderr, "upstream-bench: --seconds > 0, --concurrency 1-%d\n", MAXC),
		       2;
	/* mock-upstream sits next to this binary in the build directory */
	ssize_t n = readlink("/proc/self/exe", mock_bin, sizeof(mock_bin) - 32);

	if (n <= 0)
		return perror("upstream-bench: /proc/self/exe"), 1;
	mock_bin[n] = 0;
	strcpy(strrchr(mock_bin, '/') + 1, "mock-upstream");
	if (pipe(pfd) || (mock = spawn(mock_argv, pfd[1])) < 0)
		return 1;
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "mock-upstream: listening port=%hu control=%hu", &port, &cport) != 2)
		return fprintf(stderr, "upstream-bench: mock-upstream did not start (make)\n"), 1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/score", port);
	printf("upstream bench: mock %s, %d calls in flight, %.0f s per run\n", url, conc, secs);
	for (int fail = 0; fail <= 30; fail += 30) {
		char q[64], label[64];

		snprintf(q, sizeof(q), "/faults?error_rate=%.2f", fail / 100.0);
		http_ctl(cport, q);
		if (anchor_run(port, conc, secs, &anchor) || curl_run(url, conc, secs, &curl))
			return fprintf(stderr, "upstream-bench: run failed\n"), 1;
		snprintf(label, sizeof(label), "io_uring raw (anchor), %d %% fail", fail);
		print_run(label, &anchor, NULL);
		snprintf(label, sizeof(label), "libcurl multi (upstream), %d %% fail", fail);
		print_run(label, &curl, &anchor);
	}
	http_ctl(cport, "/faults?error_rate=1");
	if (!start_redis(&rpid, &redis))
		fallback_latency(url, redis, "redis cache hit:");
	else
		printf("breaker-open fallback via redis: skipped (redis-server did not start)\n");
	fallback_latency(url, NULL, "model (no redis):");
	redis_free(redis);
	if (rpid > 0)
		kill(rpid, SIGTERM), waitpid(rpid, NULL, 0);
	kill(mock, SIGTERM);
	waitpid(mock, NULL, 0);
	return 0;
}
