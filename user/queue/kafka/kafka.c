// SPDX-License-Identifier: MIT
/* kafka.c -- Kafka settings, topic names, record keys and client configuration
 *
 * One place turns Sluice's Kafka settings into a librdkafka configuration, for the
 * producer (ingress) and the consumer (worker) alike: bootstrap.servers from
 * --kafka-brokers, then every --kafka kafka.KEY=VALUE pair in the order given. Defaults a
 * backend wants (linger.ms, reconnect backoff) give way to the operator's pairs; settings
 * its guarantees rest on (enable.idempotence, acks) do not, and a pair that contradicts
 * one is refused by name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "queue/kafka/kafka.h"

static const char *const class_names[] = {"critical", "normal", "low"};

void kafka_opts_default(struct kafka_opts *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->topic_prefix, sizeof(o->topic_prefix), "sluice");
	o->queue_max = 10000;
	o->hot_salts = 6;
}

int kafka_opts_add_conf(struct kafka_opts *o, const char *item, char *why, size_t whylen)
{
	const char *eq = strchr(item, '='), *key = item + 6;

	if (strncmp(item, "kafka.", 6) || !eq || eq == key) {
		snprintf(why, whylen,
			 "expected kafka.KEY=VALUE with a librdkafka property as KEY "
			 "(kafka.security.protocol=SSL)");
		return -EINVAL;
	}
	if ((size_t)(eq - key) >= sizeof(o->conf[0][0]) ||
	    strlen(eq + 1) >= sizeof(o->conf[0][1])) {
		snprintf(why, whylen, "key or value longer than %zu characters",
			 sizeof(o->conf[0][0]) - 1);
		return -EINVAL;
	}
	if (o->nconf >= KAFKA_CONF_MAX) {
		snprintf(why, whylen, "more than %d --kafka settings", KAFKA_CONF_MAX);
		return -E2BIG;
	}
	snprintf(o->conf[o->nconf][0], sizeof(o->conf[0][0]), "%.*s", (int)(eq - key), key);
	snprintf(o->conf[o->nconf][1], sizeof(o->conf[0][1]), "%s", eq + 1);
	o->nconf++;
	return 0;
}

const char *kafka_class_name(unsigned cls)
{
	return cls < sizeof(class_names) / sizeof(class_names[0]) ? class_names[cls] : NULL;
}

int kafka_topic_name(const struct kafka_opts *o, unsigned cls, char *buf, size_t len)
{
	const char *name = kafka_class_name(cls);
	int n;

	if (!name)
		return -EINVAL;
	n = snprintf(buf, len, "%s.%s", o->topic_prefix[0] ? o->topic_prefix : "sluice", name);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int kafka_topic_class(const struct kafka_opts *o, const char *topic)
{
	char t[128];

	for (unsigned c = 0; c < sizeof(class_names) / sizeof(class_names[0]); c++)
		if (kafka_topic_name(o, c, t, sizeof(t)) > 0 && !strcmp(t, topic))
			return (int)c;
	return -ENOENT;
}

int kafka_record_key(const char *tenant, int salt, char *buf, size_t len)
{
	int n =
	    salt < 0 ? snprintf(buf, len, "%s", tenant) : snprintf(buf, len, "%s#%d", tenant, salt);

	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

void kafka_id_format(uint64_t id, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)id);
}

/* The operator's value for key, or NULL. */
static const char *passed(const struct kafka_opts *o, const char *key)
{
	const char *v = NULL;

	for (int i = 0; i < o->nconf; i++)
		if (!strcmp(o->conf[i][0], key))
			v = o->conf[i][1]; /* the last one given wins, as librdkafka applies them */
	return v;
}

rd_kafka_conf_t *kafka_conf_new(const struct kafka_opts *o, char *err, size_t errlen)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char why[256];

	if (!c) {
		snprintf(err, errlen, "librdkafka: cannot allocate a configuration");
		return NULL;
	}
	if (!o->brokers[0]) {
		snprintf(err, errlen, "--kafka-brokers: empty, expected HOST:PORT[,HOST:PORT...]");
		goto fail;
	}
	if (rd_kafka_conf_set(c, "bootstrap.servers", o->brokers, why, sizeof(why))) {
		snprintf(err, errlen, "--kafka-brokers %s: %s", o->brokers, why);
		goto fail;
	}
	for (int i = 0; i < o->nconf; i++)
		if (rd_kafka_conf_set(c, o->conf[i][0], o->conf[i][1], why, sizeof(why))) {
			snprintf(err, errlen, "--kafka kafka.%s=%s: %s", o->conf[i][0],
				 o->conf[i][1], why);
			goto fail;
		}
	return c;
fail:
	rd_kafka_conf_destroy(c);
	return NULL;
}

int kafka_conf_default(rd_kafka_conf_t *c, const struct kafka_opts *o, const char *key,
		       const char *value, char *err, size_t errlen)
{
	char why[256];

	if (passed(o, key))
		return 0;
	if (rd_kafka_conf_set(c, key, value, why, sizeof(why))) {
		snprintf(err, errlen, "librdkafka: %s=%s: %s", key, value, why);
		return -EINVAL;
	}
	return 0;
}

/* The operator wrote the required value, possibly in another spelling. */
static bool same_value(const char *key, const char *v, const char *want)
{
	if (!strcmp(v, want))
		return true;
	if (!strcmp(key, "acks") && !strcmp(want, "all"))
		return !strcmp(v, "-1");
	if (!strcmp(want, "true"))
		return !strcmp(v, "1");
	return false;
}

int kafka_conf_require(rd_kafka_conf_t *c, const struct kafka_opts *o, const char *key,
		       const char *value, char *err, size_t errlen)
{
	const char *v = passed(o, key);
	char why[256];

	if (v && !same_value(key, v, value)) {
		snprintf(err, errlen,
			 "--kafka kafka.%s=%s: Sluice needs %s=%s (202 only for records the "
			 "cluster holds; drop the setting)",
			 key, v, key, value);
		return -EINVAL;
	}
	if (rd_kafka_conf_set(c, key, value, why, sizeof(why))) {
		snprintf(err, errlen, "librdkafka: %s=%s: %s", key, value, why);
		return -EINVAL;
	}
	return 0;
}
