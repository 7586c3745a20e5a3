// SPDX-License-Identifier: MIT
/* loop_features.c -- the io_uring features newer than Sluice's floor, by name
 *
 * One table: the name --uring-off takes, what the feature is, the log key and the two
 * values it can show, and the release that added it (the kernels make test-kernels boots
 * confirm them: 5.10 has none, 6.1 and 6.12 all three).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ingress/loop_features.h"
#include "lib/array_size.h"

static const struct {
	unsigned bit;
	const char *name, *what, *key, *on, *off, *since;
} features[] = {
    {LOOP_FEAT_BUF_RING, "buf_ring", "buffer ring", "buffers", "ring", "provide_buffers", "5.19"},
    {LOOP_FEAT_MULTISHOT_ACCEPT, "multishot_accept", "multishot accept", "accept", "multishot",
     "one-shot", "5.19"},
    {LOOP_FEAT_MULTISHOT_RECV, "multishot_recv", "multishot recv", "recv", "multishot", "one-shot",
     "6.0"},
};

int loop_features_parse(const char *list, unsigned *bits)
{
	*bits = 0;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		unsigned bit = len == 3 && !strncmp(p, "all", 3) ? LOOP_FEAT_ALL : 0;

		for (size_t i = 0; !bit && i < ARRAY_SIZE(features); i++)
			if (strlen(features[i].name) == len && !strncmp(p, features[i].name, len))
				bit = features[i].bit;
		if (!bit)
			return -EINVAL;
		*bits |= bit;
		p += len + (p[len] == ',');
	}
	return 0;
}

const char *loop_features_describe(unsigned have, unsigned wanted, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(features) && n < len; i++) {
		if (have & features[i].bit)
			n += (size_t)snprintf(buf + n, len - n, " %s=%s", features[i].key,
					      features[i].on);
		else if (wanted & features[i].bit)
			n += (size_t)snprintf(buf + n, len - n, " %s=\"%s (%s needs Linux %s)\"",
					      features[i].key, features[i].off, features[i].what,
					      features[i].since);
		else
			n += (size_t)snprintf(buf + n, len - n, " %s=\"%s (%s turned off)\"",
					      features[i].key, features[i].off, features[i].what);
	}
	return buf;
}
