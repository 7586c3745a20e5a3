/* SPDX-License-Identifier: MIT */
/* mockharness.h -- run tools/mock-upstream for a test and talk to its control port
 *
 * The mock listens on free loopback ports it picks itself (port 0) and reports them on
 * stdout; the harness reads that line, so tests never guess ports. The process dies with
 * the test (PR_SET_PDEATHSIG) and is stopped by mock_upstream_stop.
 */
#ifndef SLUICE_TEST_MOCKHARNESS_H
#define SLUICE_TEST_MOCKHARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mock_upstream {
	pid_t pid;
	uint16_t port, control;
	char url[64]; /* http://127.0.0.1:PORT/score */
};

/* Start the mock (binary in test__outdir()) with initial faults (k=v&..., may be NULL).
 * Returns 0, -ENOENT when the binary was not built, or -errno. */
int mock_upstream_start(struct mock_upstream *m, const char *faults);
void mock_upstream_stop(struct mock_upstream *m);
/* One request to the control port; returns the HTTP status (body in out) or -errno. */
int mock_upstream_control(const struct mock_upstream *m, const char *method, const char *path,
			  char *out, size_t len);
/* POST /faults?query; 0 or -errno / -EINVAL when the mock refused it. */
int mock_upstream_faults(const struct mock_upstream *m, const char *query);
/* One counter from GET /stats (received, applied, connections, dup_keys...), or -1. */
long long mock_upstream_stat(const struct mock_upstream *m, const char *name);
/* Times key was applied (answered 2xx) by the mock, or -1. */
long long mock_upstream_applied(const struct mock_upstream *m, const char *key);
/* A number of GET /count?key=K (received, applied, lost), or -1. */
long long mock_upstream_key_count(const struct mock_upstream *m, const char *key,
				  const char *field);
/* A string of it (path, webhook_id: the last request's) into out; 0, -ENOENT, -EIO. */
int mock_upstream_key_str(const struct mock_upstream *m, const char *key, const char *field,
			  char *out, size_t cap);

#endif /* SLUICE_TEST_MOCKHARNESS_H */
