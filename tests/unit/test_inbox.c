// SPDX-License-Identifier: MIT
/* test_inbox.c -- the loop's inbox: order, reservations, and one eventfd wake per burst */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "ingress/inbox.h"
#include "test_progs.h"

/* The eventfd's counter (reading it resets it, as the loop's armed read does); 0 when it
 * is not readable. */
static uint64_t wakes(struct inbox *ib)
{
	struct pollfd p = {.fd = inbox_fd(ib), .events = POLLIN};
	uint64_t v = 0;

	if (poll(&p, 1, 0) != 1)
		return 0;
	if (read(inbox_fd(ib), &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static void post(struct inbox *ib, uint64_t token)
{
	inbox_post(ib, &(struct inbox_msg){.token = token, .id = token * 10});
}

struct burst {
	struct inbox *ib;
	int n;
};

static void *poster(void *arg)
{
	struct burst *b = arg;

	for (int i = 0; i < b->n; i++)
		post(b->ib, (uint64_t)i);
	return NULL;
}

void test_inbox(void)
{
	struct inbox_msg out[8];
	struct inbox *ib = inbox_new();

	if (!ASSERT_OK_PTR(ib, "inbox_new"))
		return;
	if (test__start_subtest("burst_wakes_once")) {
		for (int i = 0; i < 5; i++)
			ASSERT_OK(inbox_reserve(ib), "reserve");
		ASSERT_EQ(wakes(ib), 0, "quiet before a post");
		post(ib, 1);
		post(ib, 2);
		post(ib, 3);
		/* one write for the burst: the reader drains all three on that wake */
		ASSERT_EQ(wakes(ib), 1, "one wake for three posts");
		ASSERT_EQ(inbox_take(ib, out, 2), 2, "take 2");
		ASSERT_EQ(out[0].token, 1, "oldest first");
		ASSERT_EQ(out[1].token, 2, "then the second");
		/* not empty yet: a post now rides on the wake being served */
		post(ib, 4);
		ASSERT_EQ(wakes(ib), 0, "no wake into a non-empty inbox");
		ASSERT_EQ(inbox_take(ib, out, 8), 2, "the rest");
		ASSERT_EQ(out[0].token, 3, "third");
		ASSERT_EQ(out[1].token, 4, "fourth");
		ASSERT_EQ(out[1].id, 40, "message carried");
		ASSERT_EQ(inbox_take(ib, out, 8), 0, "empty");
		/* empty again: the next post must wake the reader, or it would wait forever */
		post(ib, 5);
		ASSERT_EQ(wakes(ib), 1, "a post into an empty inbox wakes");
		ASSERT_EQ(inbox_take(ib, out, 8), 1, "taken");
	}
	if (test__start_subtest("wake_without_message")) {
		inbox_wake(ib);
		ASSERT_EQ(wakes(ib), 1, "inbox_wake always writes");
		ASSERT_EQ(inbox_take(ib, out, 8), 0, "nothing to take");
	}
	if (test__start_subtest("threaded_no_lost_wake")) {
		/* a reader that sleeps on the eventfd and drains after each wake sees every
		 * message a concurrent poster sends */
		struct burst b = {.ib = ib, .n = 20000};
		pthread_t t;
		int got = 0, idle = 0;

		for (int i = 0; i < b.n; i++)
			if (inbox_reserve(ib))
				break;
		if (!ASSERT_OK(pthread_create(&t, NULL, poster, &b), "thread"))
			goto out;
		while (got < b.n && idle < 100) {
			struct pollfd p = {.fd = inbox_fd(ib), .events = POLLIN};
			uint64_t v;
			size_t n;

			if (poll(&p, 1, 100) != 1) {
				idle++; /* 10 s without a wake while messages are missing: lost */
				continue;
			}
			if (read(inbox_fd(ib), &v, sizeof(v)) != sizeof(v))
				break;
			while ((n = inbox_take(ib, out, 8)))
				got += (int)n;
		}
		pthread_join(t, NULL);
		ASSERT_EQ(got, b.n, "every message reached the reader through a wake");
	}
out:
	inbox_free(ib);
}
