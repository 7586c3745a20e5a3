// SPDX-License-Identifier: MIT
/* mockharness.c -- run tools/mock-upstream for a test and talk to its control port
 *
 * The control client is a plain blocking socket with "Connection: close": one request,
 * read to EOF, so no HTTP client library sits between a test and what it checks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mockharness.h"
#include "test_progs.h"

int mock_upstream_start(struct mock_upstream *m, const char *faults)
{
	char bin[512], line[128] = "";
	int pfd[2];
	FILE *f;

	memset(m, 0, sizeof(*m));
	snprintf(bin, sizeof(bin), "%s/mock-upstream", test__outdir());
	if (access(bin, X_OK))
		return -ENOENT;
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	m->pid = fork();
	if (m->pid < 0)
		return -errno;
	if (m->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		execl(bin, "mock-upstream", "--port", "0", "--control-port", "0", "--faults",
		      faults && *faults ? faults : "error_rate=0", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (!f || !fgets(line, sizeof(line), f) ||
	    sscanf(line, "mock-upstream: listening port=%hu control=%hu", &m->port, &m->control) !=
		2) {
		if (f)
			fclose(f);
		else
			close(pfd[0]);
		mock_upstream_stop(m);
		return -EIO;
	}
	fclose(f);
	snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%u/score", m->port);
	return 0;
}

void mock_upstream_stop(struct mock_upstream *m)
{
	if (!m || m->pid <= 0)
		return;
	kill(m->pid, SIGKILL);
	waitpid(m->pid, NULL, 0);
	m->pid = 0;
}

int mock_upstream_control(const struct mock_upstream *m, const char *method, const char *path,
			  char *out, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(m->control),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char buf[4096], req[1024];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -EIO, n;
	size_t have = 0;
	ssize_t r;
	char *body;

	if (fd < 0)
		return -errno;
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: mock\r\nContent-Length: 0\r\n"
		     "Connection: close\r\n\r\n",
		     method, path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) || write(fd, req, (size_t)n) != n)
		goto out;
	while (have < sizeof(buf) - 1 && (r = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0)
		have += (size_t)r;
	buf[have] = 0;
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		status = -EIO;
	body = strstr(buf, "\r\n\r\n");
	if (out && len)
		snprintf(out, len, "%s", body ? body + 4 : "");
out:
	close(fd);
	return status;
}

int mock_upstream_faults(const struct mock_upstream *m, const char *query)
{
	char path[900], out[512];
	int st;

	snprintf(path, sizeof(path), "/faults?%s", query);
	st = mock_upstream_control(m, "POST", path, out, sizeof(out));
	if (st != 200)
		fprintf(stdout, "mock faults %s: %d %s\n", query, st, out);
	return st == 200 ? 0 : st < 0 ? st : -EINVAL;
}

static long long json_field(const char *text, const char *name)
{
	json_t *j = json_loads(text, 0, NULL), *v = j ? json_object_get(j, name) : NULL;
	long long n = json_is_integer(v) ? json_integer_value(v) : -1;

	json_decref(j);
	return n;
}

long long mock_upstream_stat(const struct mock_upstream *m, const char *name)
{
	char out[1024];

	if (mock_upstream_control(m, "GET", "/stats", out, sizeof(out)) != 200)
		return -1;
	return json_field(out, name);
}

long long mock_upstream_applied(const struct mock_upstream *m, const char *key)
{
	char out[256], path[512];

	snprintf(path, sizeof(path), "/count?key=%s", key);
	if (mock_upstream_control(m, "GET", path, out, sizeof(out)) != 200)
		return -1;
	return json_field(out, "applied");
}

int mock_upstream_key_str(const struct mock_upstream *m, const char *key, const char *field,
			  char *out, size_t cap)
{
	char body[512], path[512];
	json_t *j, *v;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/count?key=%s", key);
	if (mock_upstream_control(m, "GET", path, body, sizeof(body)) != 200)
		return -EIO;
	j = json_loads(body, 0, NULL);
	v = j ? json_object_get(j, field) : NULL;
	if (json_is_string(v)) {
		snprintf(out, cap, "%s", json_string_value(v));
		ret = 0;
	}
	json_decref(j);
	return ret;
}

long long mock_upstream_key_count(const struct mock_upstream *m, const char *key, const char *field)
{
	char out[512], path[512];

	snprintf(path, sizeof(path), "/count?key=%s", key);
	if (mock_upstream_control(m, "GET", path, out, sizeof(out)) != 200)
		return -1;
	return json_field(out, field);
}
