/* SPDX-License-Identifier: MIT */
/* ingress_harness.h -- start the real sluiced on a free loopback port and talk HTTP to it
 *
 * sluiced_start() writes the tenants file into a fresh directory under test__tmpdir(),
 * runs the built binary with --listen 127.0.0.1:0 and --admin-listen 127.0.0.1:0 (its log
 * goes to a file there; a test's own --admin-listen wins) and reads the bound ports back
 * from the "sluiced: listening" and "sluiced: admin listening" log lines (and, with
 * --tls-listen, the TLS port from "sluiced: listening for TLS"). /metrics and /readyz are on
 * admin_port. Clients keep unread bytes, so pipelined responses are read one at a time.
 */
#ifndef SLUICE_INGRESS_HARNESS_H
#define SLUICE_INGRESS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* API keys of the default tenants: "test" (acme) and "hello" (beta). */
#define HARNESS_KEY_A_HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HARNESS_KEY_B_HEX "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

struct sluiced_proc {
	pid_t pid;
	int port;
	int admin_port; /* /metrics, /readyz; 0 with --admin-listen off */
	int tls_port;	/* with --tls-listen among the args: its bound port */
	char dir[512];	/* per-instance directory (tenants, journal, log) */
	char log[600];
	char tenants[600];
	char journal[600];
};

/* Start sluiced with the tenants text and extra args (NULL-terminated list). Returns 0 or
 * -errno (and prints the daemon's log). */
int sluiced_start(struct sluiced_proc *p, const char *tenants_text, const char *const *args);
/* Same, with RLIMIT_NOFILE (soft and hard) set to nofile. */
int sluiced_start_nofile(struct sluiced_proc *p, const char *tenants_text, const char *const *args,
			 unsigned nofile);
/* Same, started inside network namespace ns (NULL: this one) listening on listen. */
int sluiced_start_ns(struct sluiced_proc *p, const char *ns, const char *listen,
		     const char *tenants_text, const char *const *args);
/* SIGTERM and wait; returns the exit status (-1 if killed by a signal or still running
 * after timeout_ms, then SIGKILLed). */
int sluiced_stop(struct sluiced_proc *p, int timeout_ms);
/* Read the whole log into a malloc'd string. */
char *sluiced_log(const struct sluiced_proc *p);
/* Wait up to timeout_ms until the log contains needle. */
bool sluiced_log_wait(const struct sluiced_proc *p, const char *needle, int timeout_ms);
/* Rewrite the tenants file. */
int sluiced_write_tenants(const struct sluiced_proc *p, const char *text);

struct http_client {
	int fd;
	size_t len;
	char buf[1 << 16];
};

/* Connect to 127.0.0.1:port; -errno. */
int http_open(struct http_client *c, int port);
/* Connect to ip:port (IPv4) from the calling thread's network namespace. */
int http_open_ip(struct http_client *c, const char *ip, int port);
/* Same, from source address src (IPv4; NULL: any). */
int http_open_from(struct http_client *c, const char *src, const char *ip, int port);
void http_close(struct http_client *c);
int http_send(struct http_client *c, const char *data, size_t len);
/* Read one full response (head + Content-Length body) into out (NUL-terminated). Returns
 * its length, 0 on EOF before any byte, -ETIMEDOUT, or -errno. */
long http_read(struct http_client *c, char *out, size_t cap, int timeout_ms);
/* http_read() of the answer to a HEAD request: the head only (RFC 9110 §9.3.2), so bytes
 * after it are the next response's. */
long http_read_head(struct http_client *c, char *out, size_t cap, int timeout_ms);
/* Whether the server closed the connection (EOF or reset within timeout_ms). */
bool http_closed(struct http_client *c, int timeout_ms);
/* Status code of a response, 0 if unparseable. */
int http_status(const char *resp);
/* Value of header name in resp, copied into out; false when absent. */
bool http_header(const char *resp, const char *name, char *out, size_t cap);
/* One request on a fresh connection; returns the status, response in out. */
int http_once(int port, const char *req, char *out, size_t cap);
/* GET path (/metrics, /readyz) from the admin port of p on a fresh connection; returns the
 * status, response in out. */
int http_admin(const struct sluiced_proc *p, const char *path, char *out, size_t cap);
/* A POST /v1/events request for key and body into out. */
int http_event_request(char *out, size_t cap, const char *key, const char *body);

#endif /* SLUICE_INGRESS_HARNESS_H */
