// SPDX-License-Identifier: MIT
/* test_ingress_uring.c -- the real sluiced on the io_uring paths of older kernels
 *
 * --uring-off makes the loop take the fallbacks a kernel without buffer rings, multishot
 * accept or multishot recv gets (loop.c), so they run here on a new kernel too: all three
 * off (Linux 5.7-5.18), and only multishot recv off (5.19). Each run must show the choice
 * in the log and then serve what exercises each fallback: fresh connections (an accept is
 * re-armed per connection), more requests on one connection than there are receive buffers
 * (every buffer goes back to the kernel), a body several buffers long, and pipelining.
 */
#include <stdlib.h>
#include <unistd.h>

#include "ingress/loop_features.h"
#include "ingress_harness.h"
#include "test_progs.h"

#define TENANTS "[acme]\nkey = " HARNESS_KEY_A_HEX "\n"
#define ROUNDS	1100 /* more than the loop's 1024 receive buffers */

static char resp[1 << 16];

static void exercise(int port)
{
	static struct http_client c;
	static char big[24 * 1024], req[sizeof(big) + 1024];
	const char *get = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
	int i, ok = 0;
	size_t n;

	for (i = 0; i < 3; i++) {
		char body[128];

		snprintf(body, sizeof(body),
			 "{\"type\":\"t\",\"idempotency_key\":\"conn-%d\",\"payload\":{}}", i);
		http_event_request(req, sizeof(req), "test", body);
		ASSERT_EQ(http_once(port, req, resp, sizeof(resp)), 202, "a fresh connection");
	}
	if (!ASSERT_OK(http_open(&c, port), "connect"))
		return;
	for (i = 0; i < ROUNDS; i++) {
		if (http_send(&c, get, strlen(get)) ||
		    http_read(&c, resp, sizeof(resp), 3000) <= 0 || http_status(resp) != 200)
			break;
		ok++;
	}
	ASSERT_EQ(ok, ROUNDS, "keep-alive requests answered (receive buffers recycled)");

	/* a payload of ~24 KB: six 4 KB receive buffers */
	n = (size_t)snprintf(big, sizeof(big),
			     "{\"type\":\"t\",\"idempotency_key\":\"big\","
			     "\"payload\":{\"s\":\"");
	memset(big + n, 'x', sizeof(big) - n - 8);
	memcpy(big + sizeof(big) - 8, "\"}}", 4);
	http_event_request(req, sizeof(req), "test", big);
	ASSERT_OK(http_send(&c, req, strlen(req)), "send a large body");
	ASSERT_GT(http_read(&c, resp, sizeof(resp), 5000), 0, "large body answered");
	ASSERT_EQ(http_status(resp), 202, "large body accepted");

	/* three requests in one write */
	n = 0;
	for (i = 0; i < 3; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", get);
	ASSERT_OK(http_send(&c, req, n), "send pipelined");
	for (i = 0; i < 3; i++)
		ASSERT_EQ(http_read(&c, resp, sizeof(resp), 3000) > 0 ? http_status(resp) : -1, 200,
			  "pipelined answer");
	http_close(&c);
}

static void run_with(const char *off, const char *const *want_log)
{
	const char *args[] = {"--threads", "1", "--journal-dir", "@journal", "--uring-off",
			      off,	   NULL};
	struct sluiced_proc p = {0};

	if (!ASSERT_OK(sluiced_start(&p, TENANTS, args), "start"))
		return;
	for (; *want_log; want_log++)
		ASSERT_TRUE(sluiced_log_wait(&p, *want_log, 3000), *want_log);
	exercise(p.port);
	ASSERT_EQ(sluiced_stop(&p, 5000), 0, "exit 0");
}

static void subtest_parse(void)
{
	unsigned bits = 99;

	ASSERT_OK(loop_features_parse("", &bits), "empty");
	ASSERT_EQ(bits, 0, "nothing off");
	ASSERT_OK(loop_features_parse("all", &bits), "all");
	ASSERT_EQ(bits, LOOP_FEAT_ALL, "everything off");
	ASSERT_OK(loop_features_parse("buf_ring,multishot_recv", &bits), "two");
	ASSERT_EQ(bits, LOOP_FEAT_BUF_RING | LOOP_FEAT_MULTISHOT_RECV, "those two");
	ASSERT_EQ(loop_features_parse("multishot_accept,bogus", &bits), -EINVAL, "unknown name");
	ASSERT_EQ(loop_features_parse("buf_ring,", &bits), 0, "trailing comma");
	ASSERT_EQ(loop_features_parse("buf_ring,,all", &bits), -EINVAL, "empty name");
	ASSERT_EQ(loop_features_parse("buf_rings", &bits), -EINVAL, "a longer name");
}

void test_ingress_uring(void)
{
	static const char *const all_off[] = {
	    "buffers=\"provide_buffers (buffer ring turned off)\"",
	    "accept=\"one-shot (multishot accept turned off)\"",
	    "recv=\"one-shot (multishot recv turned off)\"", NULL};
	/* buffers and accept as the kernel has them (test-kernels runs this on 5.10 too) */
	static const char *const recv_off[] = {"recv=\"one-shot (multishot recv turned off)\"",
					       NULL};

	if (test__start_subtest("parse"))
		subtest_parse();
	if (test__start_subtest("all_off"))
		run_with("all", all_off);
	if (test__start_subtest("recv_off"))
		run_with("multishot_recv", recv_off);
}
