// SPDX-License-Identifier: MIT
/* test_kafka_hot.c -- the producer's hot-tenant detector (queue/kafka/hot.c) on a fake
 * clock: a tenant over the share turns hot at the end of its window, its keys spread
 * over the salts (one key always on one salt), it stays hot while it is above half the
 * share (no flapping) and cools after cool_windows windows below it; a window with too
 * few records decides nothing; classes are apart.
 */
#include "queue/kafka/hot.h"
#include "queue/kafka/kafka.h"
#include "test_progs.h"

#define SEC 1000000000ULL

/* n records of tenant spread evenly over one window starting at t; the last salt. */
static int feed(struct kafka_hot *h, unsigned cls, const char *tenant, int n, uint64_t t,
		uint64_t off)
{
	char key[32];
	int salt = -1;

	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s-%llu-%d", tenant, (unsigned long long)t, i);
		salt = kafka_hot_salt(h, cls, tenant, key, t + off + (uint64_t)i * (SEC / 2 / n));
	}
	return salt;
}

/* One window: a, b, c records of tenants A, B, C in class 1 at second w. */
static void window(struct kafka_hot *h, int w, int a, int b, int c)
{
	uint64_t t = (uint64_t)w * SEC + SEC; /* not 0: the detector's "unset" */

	feed(h, 1, "A", a, t, 0);
	feed(h, 1, "B", b, t, 1000);
	feed(h, 1, "C", c, t, 2000);
}

static bool hot(struct kafka_hot *h, const char *tenant, int w)
{
	/* a probe record in the next window's second half, after the window closed */
	return kafka_hot_salt(h, 1, tenant, "probe", (uint64_t)w * SEC + SEC + SEC * 9 / 10) >= 0;
}

void test_kafka_hot(void)
{
	struct kafka_hot h;
	int salts[6] = {0}, spread = 0, w = 0;

	kafka_hot_init(&h, &(struct kafka_hot_cfg){.share_permille = 300, .salts = 6});
	window(&h, w++, 80, 10, 10);
	ASSERT_EQ(kafka_hot_count(&h), 0, "nothing hot within the first window");
	ASSERT_TRUE(hot(&h, "A", w), "A at 80% turns hot when its window ends");
	ASSERT_FALSE(hot(&h, "B", w), "B at 10% is not");
	ASSERT_EQ(kafka_hot_count(&h), 1, "one hot tenant");
	/* A's keys spread; one key always the same salt; others keep their plain key */
	for (int i = 0; i < 120; i++) {
		char key[16];
		int s;

		snprintf(key, sizeof(key), "k%d", i);
		s = kafka_hot_salt(&h, 1, "A", key, (uint64_t)w * SEC + SEC + 1);
		if (!ASSERT_TRUE(s >= 0 && s < 6, "salt in 0..5"))
			break;
		ASSERT_EQ(s, (int)kafka_hot_key_salt(key, 6), "salt = hash(key) mod k");
		ASSERT_EQ(kafka_hot_salt(&h, 1, "A", key, (uint64_t)w * SEC + SEC + 2), s,
			  "same key, same salt");
		salts[s]++;
	}
	for (int i = 0; i < 6; i++)
		spread += salts[i] > 0;
	ASSERT_EQ(spread, 6, "120 keys reach every salt");
	ASSERT_EQ(kafka_hot_salt(&h, 1, "B", "k1", (uint64_t)w * SEC + SEC + 3), -1, "B unsalted");
	ASSERT_EQ(kafka_hot_salt(&h, 0, "A", "k1", (uint64_t)w * SEC + SEC + 3), -1,
		  "A is hot in class 1 only");
	/* 20%: under the share, over half of it -- stays hot (hysteresis) */
	for (int i = 0; i < 8; i++)
		window(&h, w++, 20, 40, 40);
	ASSERT_TRUE(hot(&h, "A", w), "A at 20% stays hot");
	/* 10%: under half the share; hot for cool_windows - 1 more windows, then cool */
	for (int i = 0; i < 4; i++)
		window(&h, w++, 10, 45, 45);
	ASSERT_TRUE(hot(&h, "A", w), "4 cool windows: still hot");
	window(&h, w++, 10, 45, 45);
	ASSERT_FALSE(hot(&h, "A", w), "5 cool windows: cooled");
	ASSERT_EQ(kafka_hot_count(&h), 2, "B and C at 45% are hot now");
	/* too few records to decide: 100% of 20 records is not hot */
	window(&h, w++, 20, 0, 0);
	ASSERT_FALSE(hot(&h, "A", w), "20 records decide nothing");
	kafka_hot_fini(&h);
	/* share 0: never hot */
	kafka_hot_init(&h, &(struct kafka_hot_cfg){.share_permille = 0, .salts = 6});
	window(&h, 0, 100, 0, 0);
	ASSERT_FALSE(hot(&h, "A", 1), "share 0: off");
	kafka_hot_fini(&h);
}

void test_kafka_conf(void)
{
	struct kafka_opts o;
	rd_kafka_conf_t *c;
	char buf[64], err[512], v[64];
	size_t vl = sizeof(v);

	kafka_opts_default(&o);
	ASSERT_EQ(kafka_topic_name(&o, 0, buf, sizeof(buf)), 15, "length");
	ASSERT_STREQ(buf, "sluice.critical", "critical topic");
	snprintf(o.topic_prefix, sizeof(o.topic_prefix), "prod");
	kafka_topic_name(&o, 2, buf, sizeof(buf));
	ASSERT_STREQ(buf, "prod.low", "prefix");
	ASSERT_EQ(kafka_topic_class(&o, "prod.normal"), 1, "class of a topic");
	ASSERT_EQ(kafka_topic_class(&o, "sluice.normal"), -ENOENT, "other prefix");
	ASSERT_EQ(kafka_topic_name(&o, 3, buf, sizeof(buf)), -EINVAL, "no class 3");
	ASSERT_EQ(kafka_topic_name(&o, 0, buf, 5), -ENOSPC, "too small");
	kafka_record_key("acme", -1, buf, sizeof(buf));
	ASSERT_STREQ(buf, "acme", "key = tenant");
	kafka_record_key("acme", 4, buf, sizeof(buf));
	ASSERT_STREQ(buf, "acme#4", "hot key = tenant#salt");
	kafka_id_format(0xabcULL, buf);
	ASSERT_STREQ(buf, "0000000000000abc", "id as in the 202");
	/* passthrough items */
	ASSERT_EQ(kafka_opts_add_conf(&o, "security.protocol=SSL", err, sizeof(err)), -EINVAL,
		  "needs kafka. prefix");
	ASSERT_EQ(kafka_opts_add_conf(&o, "kafka.linger.ms", err, sizeof(err)), -EINVAL, "needs =");
	ASSERT_OK(kafka_opts_add_conf(&o, "kafka.linger.ms=7", err, sizeof(err)), "linger");
	snprintf(o.brokers, sizeof(o.brokers), "127.0.0.1:9092");
	c = kafka_conf_new(&o, err, sizeof(err));
	if (!ASSERT_TRUE(c, "conf"))
		return;
	ASSERT_OK(kafka_conf_default(c, &o, "linger.ms", "2", err, sizeof(err)), "default");
	rd_kafka_conf_get(c, "linger.ms", v, &vl);
	ASSERT_STREQ(v, "7", "the operator's value wins over a default");
	ASSERT_OK(kafka_conf_require(c, &o, "acks", "all", err, sizeof(err)), "require");
	rd_kafka_conf_destroy(c);
	ASSERT_OK(kafka_opts_add_conf(&o, "kafka.acks=1", err, sizeof(err)), "acks=1 item");
	c = kafka_conf_new(&o, err, sizeof(err));
	if (ASSERT_TRUE(c, "conf 2")) {
		ASSERT_EQ(kafka_conf_require(c, &o, "acks", "all", err, sizeof(err)), -EINVAL,
			  "acks=1 refused");
		ASSERT_HAS_STR(err, "kafka.acks=1", "names the pair");
		rd_kafka_conf_destroy(c);
	}
	ASSERT_OK(kafka_opts_add_conf(&o, "kafka.no.such=1", err, sizeof(err)), "item");
	ASSERT_FALSE(kafka_conf_new(&o, err, sizeof(err)), "unknown property refused");
	ASSERT_HAS_STR(err, "--kafka kafka.no.such=1", "names the flag and key");
	o.nconf = 0;
	o.brokers[0] = 0;
	ASSERT_FALSE(kafka_conf_new(&o, err, sizeof(err)), "no brokers");
	ASSERT_HAS_STR(err, "--kafka-brokers", "names --kafka-brokers");
}
