// SPDX-License-Identifier: MIT
/* test_alert.c -- PagerDuty Events v2 alerts against a loopback receiver */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/alert.h"
#include "test_progs.h"

struct receiver {
	int lfd, port, status, expect;
	char bodies[8][2048];
	int got;
	pthread_t th;
};

static void *receive(void *arg)
{
	struct receiver *r = arg;

	while (r->got < r->expect) {
		char buf[4096], resp[128];
		int fd = accept(r->lfd, NULL, NULL), n = 0, k;
		char *hdr_end, *cl;

		if (fd < 0)
			break;
		while (n < (int)sizeof(buf) - 1 &&
		       (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
			n += k;
			buf[n] = 0;
			hdr_end = strstr(buf, "\r\n\r\n");
			cl = strcasestr(buf, "Content-Length:");
			if (hdr_end && cl && n - (hdr_end + 4 - buf) >= atoi(cl + 15))
				break;
		}
		hdr_end = strstr(buf, "\r\n\r\n");
		snprintf(r->bodies[r->got % 8], sizeof(r->bodies[0]), "%s",
			 hdr_end ? hdr_end + 4 : "");
		r->got++;
		k = snprintf(resp, sizeof(resp),
			     "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			     r->status);
		if (write(fd, resp, k) != k)
			break;
		close(fd);
	}
	return NULL;
}

static int receiver_start(struct receiver *r, int status, int expect)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(r, 0, sizeof(*r));
	r->status = status;
	r->expect = expect;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->lfd < 0 || bind(r->lfd, (void *)&a, sizeof(a)) || listen(r->lfd, 8) ||
	    getsockname(r->lfd, (void *)&a, &len))
		return -errno;
	r->port = ntohs(a.sin_port);
	return pthread_create(&r->th, NULL, receive, r) ? -EAGAIN : 0;
}

static void wait_stats(struct alert *a, uint64_t done, struct alert_stats *st)
{
	for (int i = 0; i < 500; i++) {
		alert_stats(a, st);
		if (st->sent + st->failed >= done)
			return;
		usleep(10000);
	}
}

static void subtest_trigger_resolve(void)
{
	struct receiver r;
	struct alert_stats st;
	struct alert *a = NULL;
	char url[64];
	json_t *ev = NULL;

	if (!ASSERT_OK(receiver_start(&r, 202, 2), "receiver"))
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/enqueue", r.port);
	a = alert_new(url, "KEY123", "node-7");
	if (!ASSERT_OK_PTR(a, "alert_new"))
		goto out;
	ASSERT_STREQ(alert_dedup_key(a), "sluice-overload-node-7", "stable dedup key");
	ASSERT_OK(alert_trigger(a, "sluice overload: emergency", "{\"lag_critical_ms\":61000}"),
		  "trigger");
	ASSERT_OK(alert_resolve(a), "resolve");
	wait_stats(a, 2, &st);
	ASSERT_EQ(st.sent, 2, "both delivered");
	pthread_join(r.th, NULL);
	ev = json_loads(r.bodies[0], 0, NULL);
	if (!ASSERT_OK_PTR(ev, "trigger body is JSON"))
		goto out;
	ASSERT_STREQ(json_string_value(json_object_get(ev, "event_action")), "trigger", "action");
	ASSERT_STREQ(json_string_value(json_object_get(ev, "routing_key")), "KEY123", "key");
	ASSERT_STREQ(json_string_value(json_object_get(ev, "dedup_key")), "sluice-overload-node-7",
		     "dedup");
	ASSERT_STREQ(json_string_value(json_object_get(json_object_get(ev, "payload"), "severity")),
		     "critical", "severity");
	ASSERT_EQ(json_integer_value(json_object_get(
		      json_object_get(json_object_get(ev, "payload"), "custom_details"),
		      "lag_critical_ms")),
		  61000, "details carried");
	json_decref(ev);
	ev = json_loads(r.bodies[1], 0, NULL);
	if (ASSERT_OK_PTR(ev, "resolve body is JSON"))
		ASSERT_STREQ(json_string_value(json_object_get(ev, "event_action")), "resolve",
			     "resolve in order after trigger");
out:
	json_decref(ev);
	alert_free(a);
	close(r.lfd);
}

static void subtest_receiver_refuses(void)
{
	struct receiver r;
	struct alert_stats st;
	struct alert *a;
	char url[64];

	if (!ASSERT_OK(receiver_start(&r, 500, 3), "receiver"))
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r.port);
	a = alert_new(url, "", "n");
	if (!ASSERT_OK_PTR(a, "alert_new"))
		return;
	ASSERT_OK(alert_trigger(a, "x", NULL), "trigger");
	wait_stats(a, 1, &st);
	ASSERT_EQ(st.failed, 1, "counted as failed after retries");
	ASSERT_EQ(st.sent, 0, "not sent");
	pthread_join(r.th, NULL);
	ASSERT_EQ(r.got, 3, "tried three times");
	ASSERT_EQ(alert_trigger(a, "x", "[1,2]"), -EINVAL, "details must be an object");
	alert_free(a);
	close(r.lfd);
}

static void subtest_bad_url(void)
{
	errno = 0;
	ASSERT_TRUE(alert_new("ftp://x", "", "n") == NULL && errno == EINVAL, "ftp refused");
	ASSERT_TRUE(alert_new(NULL, "", "n") == NULL, "NULL refused");
}

void test_alert(void)
{
	if (test__start_subtest("trigger_resolve"))
		subtest_trigger_resolve();
	if (test__start_subtest("receiver_refuses"))
		subtest_receiver_refuses();
	if (test__start_subtest("bad_url"))
		subtest_bad_url();
}
