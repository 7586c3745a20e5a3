// SPDX-License-Identifier: MIT
/* ingress_harness.c -- start the real sluiced on a free loopback port and talk HTTP to it */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ingress_harness.h"
#include "lib/clock.h"
#include "netns.h"
#include "test_progs.h"

int sluiced_write_tenants(const struct sluiced_proc *p, const char *text)
{
	char tmp[700];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", p->tenants);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	fclose(f);
	return rename(tmp, p->tenants) ? -errno : 0;
}

char *sluiced_log(const struct sluiced_proc *p)
{
	FILE *f = fopen(p->log, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return strdup("");
	do {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 16384);

			if (!nb) {
				free(buf);
				fclose(f);
				return strdup("");
			}
			buf = nb;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

bool sluiced_log_wait(const struct sluiced_proc *p, const char *needle, int timeout_ms)
{
	double end = clock_mono_ms() + timeout_ms;

	do {
		char *log = sluiced_log(p);
		bool found = strstr(log, needle) != NULL;

		free(log);
		if (found)
			return true;
		usleep(10000);
	} while (clock_mono_ms() < end);
	return false;
}

/* The port= of the log line with message msg, 0 when absent. */
static int logged_port(const char *log, const char *msg)
{
	const char *s = strstr(log, msg);

	return s && (s = strstr(s, " port=")) ? atoi(s + 6) : 0;
}

/* A deadline, not a measurement: under emulation (make test-kernels) loading and verifying
 * the XDP program alone has taken over 5 s on a loaded host. */
static int read_port(struct sluiced_proc *p, const char *msg)
{
	double end = clock_mono_ms() + 30000;

	while (clock_mono_ms() < end) {
		char *log = sluiced_log(p);
		int port = logged_port(log, msg), status;

		free(log);
		if (port > 0)
			return port;
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return -ECHILD;
		}
		usleep(5000);
	}
	return -ETIMEDOUT;
}

static int start(struct sluiced_proc *p, const char *ns, const char *listen,
		 const char *tenants_text, const char *const *args, unsigned nofile);

int sluiced_start(struct sluiced_proc *p, const char *tenants_text, const char *const *args)
{
	return start(p, NULL, "127.0.0.1:0", tenants_text, args, 0);
}

int sluiced_start_nofile(struct sluiced_proc *p, const char *tenants_text, const char *const *args,
			 unsigned nofile)
{
	return start(p, NULL, "127.0.0.1:0", tenants_text, args, nofile);
}

int sluiced_start_ns(struct sluiced_proc *p, const char *ns, const char *listen,
		     const char *tenants_text, const char *const *args)
{
	return start(p, ns, listen, tenants_text, args, 0);
}

static int start(struct sluiced_proc *p, const char *ns, const char *listen,
		 const char *tenants_text, const char *const *args, unsigned nofile)
{
	static int instance;
	const char *argv[64];
	char bin[600];
	int n = 0, fd;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s/d%d", test__tmpdir(), instance++);
	mkdir(p->dir, 0755);
	snprintf(p->log, sizeof(p->log), "%s/sluiced.log", p->dir);
	snprintf(p->tenants, sizeof(p->tenants), "%s/tenants.ini", p->dir);
	snprintf(p->journal, sizeof(p->journal), "%s/journal", p->dir);
	snprintf(bin, sizeof(bin), "%s/sluiced", test__outdir());
	if (sluiced_write_tenants(p, tenants_text))
		return -EIO;
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--admin-listen"; /* never the fixed default port: tests run side by side */
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--tenants";
	argv[n++] = p->tenants;
	for (; args && *args && n < 62; args++)
		argv[n++] = strcmp(*args, "@journal") ? *args : p->journal;
	argv[n] = NULL;
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (!p->pid) {
		fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		if (ns && netns_enter(ns) < 0)
			_exit(126);
		if (nofile && setrlimit(RLIMIT_NOFILE, &(struct rlimit){nofile, nofile}))
			_exit(126);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	p->port = read_port(p, "msg=\"sluiced: listening\"");
	if (p->port > 0) { /* logged before the public line, so it is there when that one is */
		char *log = sluiced_log(p);

		p->admin_port = logged_port(log, "msg=\"sluiced: admin listening\"");
		free(log);
	}
	for (const char *const *a = argv; p->port > 0 && *a; a++)
		if (!strcmp(*a, "--tls-listen") &&
		    (p->tls_port = read_port(p, "msg=\"sluiced: listening for TLS\"")) < 0)
			p->port = p->tls_port;
	if (p->port < 0) {
		char *log = sluiced_log(p);

		printf("sluiced did not start (%s):\n%s\n", strerror(-p->port), log);
		free(log);
		sluiced_stop(p, 1000);
		return -EIO;
	}
	return 0;
}

int sluiced_stop(struct sluiced_proc *p, int timeout_ms)
{
	double end = clock_mono_ms() + timeout_ms;
	int status;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	while (clock_mono_ms() < end) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		usleep(5000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	p->pid = 0;
	return -1;
}

int http_open(struct http_client *c, int port)
{
	return http_open_ip(c, "127.0.0.1", port);
}

int http_open_ip(struct http_client *c, const char *ip, int port)
{
	return http_open_from(c, NULL, ip, port);
}

int http_open_from(struct http_client *c, const char *src, const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in b = {.sin_family = AF_INET};

	c->len = 0;
	c->fd = -1;
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
	    (src && inet_pton(AF_INET, src, &b.sin_addr) != 1))
		return -EINVAL;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if ((src && bind(c->fd, (struct sockaddr *)&b, sizeof(b))) ||
	    connect(c->fd, (struct sockaddr *)&a, sizeof(a))) {
		int err = -errno;

		close(c->fd);
		c->fd = -1;
		return err;
	}
	return 0;
}

void http_close(struct http_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int http_send(struct http_client *c, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fill(struct http_client *c, double end)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	long left = (long)(end - clock_mono_ms());
	ssize_t n;

	if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
		return -ETIMEDOUT;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1, 0);
	if (n < 0)
		return -errno;
	c->len += (size_t)n;
	return (int)n;
}

/* Length of the first complete response in c->buf, 0 if incomplete. A response to HEAD
 * (head_only) ends with its head, whatever its Content-Length says. */
static size_t complete(const struct http_client *c, bool head_only)
{
	char *end, *cl;
	size_t head, body = 0;

	((char *)c->buf)[c->len] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (!end)
		return 0;
	head = (size_t)(end - c->buf) + 4;
	if (!strncmp(c->buf, "HTTP/1.1 100 ", 13) || head_only)
		return head;
	cl = strcasestr(c->buf, "\r\nContent-Length:");
	if (cl && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	return c->len >= head + body ? head + body : 0;
}

static long read_response(struct http_client *c, char *out, size_t cap, int timeout_ms,
			  bool head_only)
{
	double end = clock_mono_ms() + timeout_ms;
	size_t n;
	int r;

	while (!(n = complete(c, head_only))) {
		r = fill(c, end);
		if (r == 0)
			return c->len ? -EPROTO : 0;
		if (r < 0)
			return r;
	}
	if (n >= cap)
		return -ENOSPC;
	memcpy(out, c->buf, n);
	out[n] = '\0';
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return (long)n;
}

long http_read(struct http_client *c, char *out, size_t cap, int timeout_ms)
{
	return read_response(c, out, cap, timeout_ms, false);
}

long http_read_head(struct http_client *c, char *out, size_t cap, int timeout_ms)
{
	return read_response(c, out, cap, timeout_ms, true);
}

bool http_closed(struct http_client *c, int timeout_ms)
{
	double end = clock_mono_ms() + timeout_ms;
	int r;

	do {
		c->len = 0; /* whatever still arrives is discarded: only the end matters */
		r = fill(c, end);
		if (r == 0 || (r < 0 && r != -ETIMEDOUT))
			return true;
	} while (r > 0);
	return false;
}

int http_status(const char *resp)
{
	return strncmp(resp, "HTTP/1.1 ", 9) ? 0 : atoi(resp + 9);
}

bool http_header(const char *resp, const char *name, char *out, size_t cap)
{
	char pat[128];
	const char *s, *e, *end = strstr(resp, "\r\n\r\n");

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	s = strcasestr(resp, pat);
	if (!s || (end && s > end))
		return false;
	s += strlen(pat);
	while (*s == ' ')
		s++;
	e = strstr(s, "\r\n");
	snprintf(out, cap, "%.*s", (int)(e ? e - s : (long)strlen(s)), s);
	return true;
}

int http_once(int port, const char *req, char *out, size_t cap)
{
	static struct http_client c;
	long n;

	if (http_open(&c, port))
		return -1;
	if (http_send(&c, req, strlen(req))) {
		http_close(&c);
		return -1;
	}
	n = http_read(&c, out, cap, 3000);
	http_close(&c);
	return n > 0 ? http_status(out) : (int)n;
}

int http_admin(const struct sluiced_proc *p, const char *path, char *out, size_t cap)
{
	char req[256];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	return http_once(p->admin_port, req, out, cap);
}

int http_event_request(char *out, size_t cap, const char *key, const char *body)
{
	return snprintf(out, cap,
			"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
			"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			key, strlen(body), body);
}
